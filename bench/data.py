"""Data-pipeline throughput on the demo dataset: decoded frames/s and samples/s through the DataModule.

    python bench/data.py [--frames 8] [--tile 448] [--batches 40] [--workers 0 2]

Builds the tiny model and the demo dataset in a temporary folder. ``--tile`` sets the tile size the
frames are decoded and normalised to (448 = InternVL2's; the tiny model's own is 56).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.demo import write_demo_dataset
from m2se.data.processor import M2SEProcessor
from m2se.data.video import read_video
from m2se.model.tiny import build_tiny_internvl

MIXTURES = {"second": [{"task": t, "weight": 1} for t in ("msa", "eri", "erc", "ecpe")]}


def decode_rate(clips: list[Path], frames: int, tile: int, backend: str) -> float:
    start = time.perf_counter()
    for clip in clips:
        read_video(clip, frames, tile, backend)
    return len(clips) * frames / (time.perf_counter() - start)


def loader_rate(root: Path, model: Path, frames: int, tile: int, batches: int, workers: int) -> float:
    processor = M2SEProcessor.from_pretrained(model, tile_size=tile, max_length=None)
    dm = MultiTaskDataModule(
        sources=[{"path": str(root / "second_stage.json")}],
        mixtures=MIXTURES,
        mixture="second",
        processor=processor,
        num_frames=frames,
        batch_size=4,
        num_workers=workers,
        val_fraction=0,
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
        for workers in args.workers:
            rate = loader_rate(root, model, args.frames, args.tile, args.batches, workers)
            print(
                f"DataModule (second mixture, batch 4, {workers} workers, {args.tile}px): {rate:6.1f} samples/s"
            )


if __name__ == "__main__":
    main()
