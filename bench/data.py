"""Data-pipeline throughput on the demo dataset: decoded frames/s and samples/s through the DataModule.

    python bench/data.py [--frames 8] [--tile 448] [--batches 40] [--workers 0 2]

Builds the tiny model and the demo dataset in a temporary folder. ``--tile`` sets the tile size the
frames are decoded and normalised to (448 = InternVL2's; the tiny model's own is 56). The DataModule
runs twice per worker count: decoding every medium, and reading a frame cache (``m2se.data.cache``)
built beforehand with the same settings; the cache's size per clip and per image is printed too.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from m2se.data import internvl
from m2se.data.cache import build_cache, settings_dir
from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.demo import write_demo_dataset
from m2se.data.video import MediaLoader, read_video
from m2se.model.tiny import build_tiny_internvl

MIXTURES = {"second": [{"task": t, "weight": 1} for t in ("msa", "eri", "erc", "ecpe")]}


def decode_rate(clips: list[Path], frames: int, tile: int, backend: str) -> float:
    start = time.perf_counter()
    for clip in clips:
        read_video(clip, frames, tile, backend)
    return len(clips) * frames / (time.perf_counter() - start)


def loader_rate(
    root: Path,
    model: Path,
    frames: int,
    tile: int,
    batches: int,
    workers: int,
    frame_cache: Path | None = None,
) -> float:
    processor = internvl.from_pretrained(model, max_length=None)
    processor.vision = dataclasses.replace(processor.vision, tile_size=tile)  # the tile size under test
    dm = MultiTaskDataModule(
        sources=[{"path": str(root / "second_stage.json")}],
        mixtures=MIXTURES,
        mixture="second",
        processor=processor,
        num_frames=frames,
        batch_size=4,
        num_workers=workers,
        val_fraction=0,
        frame_cache=str(frame_cache) if frame_cache else None,
    )
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    next(loader)  # start workers outside the timing
    start, samples = time.perf_counter(), 0
    for _ in range(batches):
        samples += len(next(loader)["records"])
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tile", type=int, default=448)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = write_demo_dataset(Path(tmp) / "demo")
        model = build_tiny_internvl(Path(tmp) / "tiny")
        clips = sorted((root / "media").rglob("*.mp4"))[:60]
        for backend in ("decord", "pyav"):
            rate = decode_rate(clips, args.frames, args.tile, backend)
            print(f"decode {backend:<6} {args.frames} frames/clip at {args.tile}px: {rate:8.0f} frames/s")
        start = time.perf_counter()
        cache = Path(tmp) / "frame-cache"
        summary = build_cache(
            [root / "second_stage.json"], cache, num_frames=args.frames, tile_size=args.tile, workers=2
        )
        seconds = time.perf_counter() - start
        folder = settings_dir(MediaLoader(args.frames, args.tile), cache)
        for kind, prefix in (("clip", "v-"), ("image", "i-")):
            sizes = [p.stat().st_size for p in folder.glob(f"{prefix}*.npy")]
            print(f"frame cache: {len(sizes)} {kind}s, {sum(sizes) // len(sizes):,} bytes per {kind}")
        print(f"frame cache build: {summary.counts['cached']} media in {seconds:.1f} s (2 workers)")
        for workers in args.workers:
            for label, frame_cache in (("decoded", None), ("cached ", cache)):
                rate = loader_rate(root, model, args.frames, args.tile, args.batches, workers, frame_cache)
                print(
                    f"DataModule (second mixture, batch 4, {workers} workers, {args.tile}px, {label}): "
                    f"{rate:6.1f} samples/s"
                )


if __name__ == "__main__":
    main()
