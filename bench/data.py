"""Data-pipeline throughput: the project's video path against plain transformers on 720p clips.

Also the DataModule on the demo dataset.

    python bench/data.py [--frames 8] [--tile 448] [--clips 12] [--batches 40] [--workers 0 2] [--threads N]

Writes MELD-like clips itself (1280x720, 24 fps, 3 s, H.264) and times, in this process, best of two
repetitions, clip → float32 pixel values (``--frames`` tiles of ``--tile`` px, ImageNet-normalised):
- transformers: ``transformers.video_utils.load_video`` (decord) + ``GotOcr2ImageProcessorPil``;
- decode: ``MediaLoader`` (frames scaled to tiles in the decoder) + the InternVL processor's pixels,
  with ``--threads`` decoder threads (default: the reader's own, ``video.default_threads``; 0 is
  FFmpeg's choice, one more than the cores; transformers' decord reader keeps its own default);
- exact: the same with ``resize="pil"`` (InternVL's own pixels);
- cached: the frame cache (``m2se.data.cache``) built from the same clips, then the same pixels;
- decode all: PyAV decoding every picture up to the last wanted frame with the same threads, nothing
  converted: the floor of a reader that decodes every picture (transformers' does). The decode path
  leaves unreferenced H.264 pictures undecoded (``m2se.data.h264``), so it can beat this floor where
  there are many;
- transformers and decode again on the same clips written without noise, where x264 makes many of
  the pictures unreferenced B-pictures (the share of each set is printed);
- with CUDA, decode and cached again with the uint8 tiles pinned, moved to the GPU and normalised
  there (``data.processor.pixels=uint8``), synchronised per clip.
It prints how far the decoder-scaled pixels are from the exact ones (mean and max absolute difference,
0-255) on these clips and on the demo's, the DataModule's samples/s (second mixture, batch 4) decoding
and through a cache, and ends with ``data path vs transformers: decode <r>x, cached <r>x``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageDraw

from m2se.data import internvl
from m2se.data.cache import FrameCache, build_cache, cache_medium, settings_dir
from m2se.data.datamodule import MultiTaskDataModule
from m2se.data.demo import write_demo_dataset
from m2se.data.video import MediaLoader, default_threads, read_video, scan_access_units, segment_centres
from m2se.model.tiny import build_tiny_internvl

MIXTURES = {"second": [{"task": t, "weight": 1} for t in ("msa", "eri", "erc", "ecpe")]}
WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 24, 3


def write_720p_clips(folder: Path, count: int, noise: bool = True) -> list[Path]:
    """``count`` H.264 clips (x264's defaults) of moving shapes on drifting gradients, with light
    per-frame noise (seeded) unless ``noise`` is False; without it x264 makes about half the pictures
    unreferenced B-pictures, with it few."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    background[..., 2] = ((x + y) // 9 + 50) % 256
    clips = []
    for c in range(count):
        path = folder / f"clip{c:02d}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for t in range(FPS * SECONDS):
                background[..., 0] = (x[0] * 200 // WIDTH + 3 * t + 20 * c) % 256  # drifts along x
                background[..., 1] = ((y[:, 0] * 200 // HEIGHT + 2 * t) % 256)[:, None]  # and along y
                image = Image.fromarray(background)
                draw = ImageDraw.Draw(image)
                for k in range(5):
                    left, top = (150 * k + 13 * t * (k + 1) + 70 * c) % WIDTH, (90 * k + 7 * t) % HEIGHT
                    draw.ellipse(
                        [left, top, left + 160, top + 220], fill=(40 * k, 255 - 30 * k, 60 * c % 256)
                    )
                pixels = np.asarray(image)
                if noise:
                    pixels = (pixels + rng.integers(0, 4, (HEIGHT, WIDTH, 1))).clip(0, 255).astype(np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
            container.mux(stream.encode())
        clips.append(path)
    return clips


def clips_per_second(path_fn: Callable[[Path], object], clips: list[Path]) -> float:
    """Best of two passes over ``clips``."""
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for clip in clips:
            path_fn(clip)
        best = min(best, time.perf_counter() - start)
    return len(clips) / best


def transformers_path(frames: int, tile: int) -> Callable[[Path], object]:
    from transformers import GotOcr2ImageProcessorPil
    from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling
    from transformers.video_utils import load_video

    processor = GotOcr2ImageProcessorPil(
        size={"height": tile, "width": tile},
        resample=PILImageResampling.BICUBIC,
        image_mean=IMAGENET_DEFAULT_MEAN,
        image_std=IMAGENET_DEFAULT_STD,
    )

    def run(clip: Path):
        video, _ = load_video(str(clip), num_frames=frames, backend="decord")
        return processor(list(video), return_tensors="pt").pixel_values

    return run


def decode_only(frames: int, threads: int) -> Callable[[Path], object]:
    """PyAV decoding every picture up to the last wanted frame with ``threads`` threads, converting
    nothing: the floor of any reader that decodes every picture (transformers' does)."""

    def run(clip: Path):
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            stream.thread_count, stream.thread_type = threads, "AUTO"
            last = segment_centres(stream.frames, frames)[-1]
            for index, _ in enumerate(container.decode(stream)):
                if index >= last:
                    break

    return run


def unreferenced_share(clips: list[Path]) -> float:
    """The share of the clips' pictures that no other picture references (``h264.access_unit``)."""
    units = [unit for clip in clips for unit in scan_access_units(clip)]
    return sum(unit.disposable for unit in units) / len(units)


def pixel_gap(clips: list[Path], frames: int, tile: int) -> tuple[float, int]:
    """Mean and max |decoder - pil| over the clips' frames, in 0-255 steps."""
    gaps = [
        np.abs(
            read_video(c, frames, tile, resize="decoder").astype(np.int16)
            - read_video(c, frames, tile, resize="pil")
        )
        for c in clips
    ]
    return float(np.mean([g.mean() for g in gaps])), int(max(g.max() for g in gaps))


def loader_rate(root: Path, model: Path, args, workers: int, frame_cache: Path | None) -> float:
    processor = internvl.from_pretrained(model, max_length=None)
    processor.vision = dataclasses.replace(processor.vision, tile_size=args.tile)  # the tile size under test
    dm = MultiTaskDataModule(
        sources=[{"path": str(root / "second_stage.json")}],
        mixtures=MIXTURES,
        mixture="second",
        processor=processor,
        num_frames=args.frames,
        batch_size=4,
        num_workers=workers,
        val_fraction=0,
        frame_cache=str(frame_cache) if frame_cache else None,
    )
    dm.setup("fit")
    loader = iter(dm.train_dataloader())
    next(loader)  # start workers outside the timing
    start, samples = time.perf_counter(), 0
    for _ in range(args.batches):
        samples += len(next(loader)["records"])
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tile", type=int, default=448)
    parser.add_argument("--clips", type=int, default=12, help="720p clips to write and time")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="the reader's decoder threads: 0 for FFmpeg's choice (default: one per usable core, at most 16)",
    )
    args = parser.parse_args()
    if (
        min(args.frames, args.tile, args.clips, args.batches) < 1
        or min([*args.workers, args.threads or 0]) < 0
    ):
        parser.error("--frames, --tile, --clips and --batches must be >= 1, --workers and --threads >= 0")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)  # data tables
    with tempfile.TemporaryDirectory() as tmp:
        root = write_demo_dataset(Path(tmp) / "demo")
        model = build_tiny_internvl(Path(tmp) / "tiny")
        processor = internvl.from_pretrained(model, max_length=None)
        vision = dataclasses.replace(processor.vision, tile_size=args.tile)
        clips = write_720p_clips(Path(tmp) / "720p", args.clips)
        threads = default_threads() if args.threads is None else args.threads
        decoder, exact = (
            MediaLoader(args.frames, args.tile, threads=threads),
            MediaLoader(args.frames, args.tile, resize="pil", threads=threads),
        )
        cache = FrameCache(decoder, Path(tmp) / "cache-720p")
        cache.folder.mkdir(parents=True)
        for clip in clips:
            cache_medium(decoder, cache.folder, "video", clip)
        rates = {
            "transformers": clips_per_second(transformers_path(args.frames, args.tile), clips),
            "decode": clips_per_second(lambda c: vision.pixel_values(decoder.decode("video", c)), clips),
            "exact": clips_per_second(lambda c: vision.pixel_values(exact.decode("video", c)), clips),
            "decode all": clips_per_second(decode_only(args.frames, threads), clips),
            "cached": clips_per_second(lambda c: vision.pixel_values(cache.load([], [c])[1][0]), clips),
        }
        if (
            torch.cuda.is_available()
        ):  # uint8 tiles to the GPU, normalised there (data.processor.pixels=uint8)

            def on_gpu(frames):
                pixels = vision.normalise(vision.tiles(frames).pin_memory().cuda(non_blocking=True))
                torch.cuda.synchronize()
                return pixels

            rates["decode, GPU norm"] = clips_per_second(lambda c: on_gpu(decoder.decode("video", c)), clips)
            rates["cached, GPU norm"] = clips_per_second(lambda c: on_gpu(cache.load([], [c])[1][0]), clips)
        clean = write_720p_clips(Path(tmp) / "720p-clean", args.clips, noise=False)
        rates["transformers, clean"] = clips_per_second(transformers_path(args.frames, args.tile), clean)
        rates["decode, clean"] = clips_per_second(
            lambda c: vision.pixel_values(decoder.decode("video", c)), clean
        )
        assert cache.misses == 0, "the 720p frame cache missed"
        print(f"decoder threads: {threads} (transformers' decord reader: its own default)")
        for name, rate in rates.items():
            print(f"720p clip → {args.frames}x{args.tile}px float pixels, {name:<19} {rate:7.2f} clips/s")
        for label, some in (("noisy", clips), ("clean", clean)):
            print(f"unreferenced H.264 pictures, {label} clips: {unreferenced_share(some):.0%}")
        clean_ratio = rates["decode, clean"] / rates["transformers, clean"]
        print(f"data path vs transformers on the clean clips: decode {clean_ratio:.2f}x")
        demo_clips = sorted((root / "media" / "clips").glob("*.mp4"))[:20]
        for label, some, tile in (("720p", clips, args.tile), ("demo", demo_clips, processor.tile_size)):
            mean, peak = pixel_gap(some, args.frames, tile)
            print(f"decoder vs pil resize, {label} clips at {tile}px: mean {mean:.2f}, max {peak} (0-255)")
        cache_dir = Path(tmp) / "frame-cache"
        build_cache(
            [root / "second_stage.json"], cache_dir, args.frames, args.tile, workers=2, progress=False
        )
        folder = settings_dir(MediaLoader(args.frames, args.tile), cache_dir)
        sizes = [p.stat().st_size for p in folder.glob("v-*.npy")]
        print(f"frame cache: {sum(sizes) // len(sizes):,} bytes per clip at {args.tile}px")
        for workers in args.workers:
            for label, frame_cache in (("decoded", None), ("cached ", cache_dir)):
                rate = loader_rate(root, model, args, workers, frame_cache)
                print(
                    f"DataModule (second mixture, batch 4, {workers} workers, {label}): {rate:6.1f} samples/s"
                )
        decode, cached = rates["decode"] / rates["transformers"], rates["cached"] / rates["transformers"]
        print(f"data path vs transformers: decode {decode:.2f}x, cached {cached:.2f}x")


if __name__ == "__main__":
    main()
