"""Frame cache: decode every medium of some EMT files once, then train from memory-mapped arrays.

    python -m m2se.data.cache data/emoverse/first_stage.json data/emoverse/second_stage.json \\
        --media-root data/emoverse --out cache/frames --num-frames 8 --model OpenGVLab/InternVL2-4B --workers 8

and then ``data.frame_cache=cache/frames``. Each medium is stored as MediaLoader.load returns it
(videos: uint8 (N, S, S, 3) frames; images: uint8 (T, S, S, 3) tiles), one ``.npy`` per medium under
a folder per settings (``n8-s448-t12-thumb-pyav-decoder``, with a ``cache.json`` saying what they are), named
by a hash of the medium's resolved path, size and mtime. A change of frame count, tile size, tiling,
video reader or frame resizing reads another folder, and a replaced or touched source file another name, so the loader
never serves stale frames: it decodes what is not there. Writes go through a temporary file and a
rename, so an interrupted build leaves whole files only and a rerun does the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from m2se.data.records import RecordError, load_records
from m2se.data.video import Kind, MediaError, MediaLoader
from m2se.files import first_line, read_json_object, write_json

FORMAT = 1


def settings_dir(loader: MediaLoader, cache: str | os.PathLike) -> Path:
    """The folder of the cache ``cache`` holding media decoded with exactly ``loader``'s settings."""
    thumb = "thumb" if loader.use_thumbnail else "nothumb"
    name = f"n{loader.num_frames}-s{loader.tile_size}-t{loader.max_tiles}-{thumb}-{loader.reader}-{loader.resize}"
    return Path(cache) / name


def entry_path(folder: Path, kind: Kind, path: str | os.PathLike) -> Path:
    """Where ``path``'s decoded array lives in the settings folder ``folder``; OSError when the source
    cannot be stat'ed."""
    source = Path(path).resolve()
    stat = source.stat()
    digest = hashlib.sha256(f"{kind}\0{source}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    return folder / f"{kind[0]}-{digest[:32]}.npy"


class FrameCache:
    """``loader``'s media read from the cache folder ``cache`` where it holds them for these settings
    and this exact source file (path, size, mtime), memory-mapped and read-only; anything else is
    decoded by ``loader``. ``hits`` and ``misses`` count both, per process (each DataLoader worker
    has its own copy). Reads ``loader``'s settings (``num_frames``, ``tile_size``, ...) as its own.
    """

    def __init__(self, loader: MediaLoader, cache: str | os.PathLike) -> None:
        self.loader, self.cache = loader, cache
        self.folder = settings_dir(loader, cache)
        self.counts: Counter = Counter()

    def __getattr__(self, name: str):
        if name in ("loader", "cache", "folder", "counts"):  # not set yet: being unpickled
            raise AttributeError(name)
        return getattr(self.loader, name)

    @property
    def hits(self) -> int:
        return self.counts["hits"]

    @property
    def misses(self) -> int:
        return self.counts["misses"]

    def load(
        self, images: Sequence[str | os.PathLike], videos: Sequence[str | os.PathLike]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return [self._load("image", p) for p in images], [self._load("video", p) for p in videos]

    def _load(self, kind: Kind, path: str | os.PathLike) -> np.ndarray:
        try:
            cached = np.load(entry_path(self.folder, kind, path), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, MemoryError):
            # Not cached (or the source is missing: decoding then names it as a MediaError).
            cached = None
        size = self.loader.tile_size
        if cached is not None and (
            cached.dtype != np.uint8 or cached.shape[1:] != (size, size, 3) or not len(cached)
        ):
            cached = None  # an entry of another layout (damaged, or foreign): decoded, never served
        self.counts["hits" if cached is not None else "misses"] += 1
        return cached if cached is not None else self.loader.decode(kind, path)

    def unbuilt(self) -> str | None:
        """What to say when the cache holds nothing for these settings (every medium would be decoded)."""
        if self.folder.is_dir():
            return None
        found = sorted(p.name for p in Path(self.cache).glob("n*-s*") if p.is_dir())
        media = self.loader
        return (
            f"frame cache {self.cache} has no entries for {self.folder.name} (it holds: "
            f"{', '.join(found) or 'nothing'}); decoding instead. Build it with the training settings: "
            f"python -m m2se.data.cache FILES --out {self.cache} --num-frames {media.num_frames} "
            f"--tile-size {media.tile_size} --max-tiles {media.max_tiles} --video-resize {media.resize} "
            f"--video-backend {media.backend}" + ("" if media.use_thumbnail else " --no-thumbnail")
        )


def cache_medium(loader: MediaLoader, folder: Path, kind: Kind, path: str | os.PathLike) -> tuple[str, str]:
    """Decode and store one medium in ``folder``: ("cached" | "already there" | "failed", failure reason or "")."""
    try:
        try:
            entry = entry_path(folder, kind, path)
        except OSError:
            raise MediaError(f"{path}: missing file") from None
        if entry.is_file():
            return "already there", ""
        array = np.ascontiguousarray(loader.decode(kind, path))
        temporary = entry.with_name(f".{entry.stem}.{os.getpid()}.tmp")
        with open(temporary, "wb") as file:
            np.save(file, array)
        os.replace(temporary, entry)
        return "cached", ""
    except MediaError as error:
        # "<path>: corrupt video (detail)" -> "corrupt video"; the message itself goes in the summary.
        reason = str(error).removeprefix(f"{path}: ").split(" (")[0]
        return "failed", f"{reason}\0{error}"
    except Exception as error:  # a long build counts what it cannot read rather than dying on it
        return "failed", f"{type(error).__name__}\0{path}: {error}"


@dataclass
class BuildSummary:
    folder: Path
    videos: int = 0
    images: int = 0
    counts: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    skipped_records: Counter = field(default_factory=Counter)
    bytes: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def render(self) -> str:
        lines = [
            f"frame cache {self.folder}: {self.videos} videos, {self.images} images",
            f"cached {self.counts['cached']}, already there {self.counts['already there']}, "
            f"failed {self.failed}; {self.bytes / 2**20:.1f} MiB in the folder",
        ]
        for reason, n in self.failures.most_common():
            lines.append(f"  failed, {reason}: {n} (e.g. {self.examples[reason]})")
        if self.skipped_records:
            skipped = ", ".join(f"{reason} {n}" for reason, n in self.skipped_records.most_common())
            lines.append(f"records skipped while loading: {skipped}")
        return "\n".join(lines)


def _cache_task(task: tuple[MediaLoader, Path, Kind, Path]) -> tuple[str, str]:
    return cache_medium(*task)


def build_cache(
    files: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    num_frames: int,
    tile_size: int,
    media_root: str | os.PathLike | None = None,
    max_tiles: int = 12,
    use_thumbnail: bool = True,
    backend: Literal["auto", "decord", "pyav"] = "auto",
    workers: int = 1,
    resize: Literal["decoder", "pil"] = "decoder",
    progress: bool = True,
    outside_ok: bool = False,
) -> BuildSummary:
    """Cache every medium the EMT ``files`` reference (malformed records are skipped and counted).

    Media paths must stay inside the media root unless ``outside_ok``. RecordError when the files
    hold no record at all; OSError naming the path when the cache folder cannot be written.
    """
    # Worker processes decode one clip each at a time: one decoder thread each, as in DataLoader workers.
    threads = 1 if workers > 1 else None
    loader = MediaLoader(num_frames, tile_size, max_tiles, use_thumbnail, backend, resize, threads)
    folder = settings_dir(loader, out)
    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(
        format=FORMAT,
        num_frames=num_frames,
        tile_size=tile_size,
        max_tiles=max_tiles,
        use_thumbnail=use_thumbnail,
        backend=loader.reader,
        resize=resize,
    )
    write_json(folder / "cache.json", settings, indent=2)
    for stale in folder.glob(".*.tmp"):  # left by a killed build
        stale.unlink(missing_ok=True)
    summary, media = BuildSummary(folder), {}
    loaded = 0
    for file in files:
        result = load_records(file, media_root, skip_errors=True, outside_ok=outside_ok)
        summary.skipped_records += result.skipped
        loaded += len(result.records)
        for record in result.records:
            media.update({("image", p): None for p in record.images})
            media.update({("video", p): None for p in record.videos})
    if not loaded:
        raise RecordError.no_records(", ".join(map(str, files)), summary.skipped_records)
    summary.videos = sum(kind == "video" for kind, _ in media)
    summary.images = len(media) - summary.videos
    tasks = [(loader, folder, kind, path) for kind, path in media]
    bar = tqdm(total=len(tasks), desc="caching media", unit="medium", disable=not progress)
    if workers > 1:
        with multiprocessing.get_context().Pool(workers) as pool:
            results = list(_tracked(pool.imap_unordered(_cache_task, tasks, chunksize=4), bar))
    else:
        results = list(_tracked(map(_cache_task, tasks), bar))
    bar.close()
    for status, detail in results:
        summary.counts[status] += 1
        if status == "failed":
            reason, message = detail.split("\0", 1)
            summary.failures[reason] += 1
            summary.examples.setdefault(reason, message)
    summary.bytes = sum(p.stat().st_size for p in folder.glob("*.npy"))
    return summary


def _tracked(results, bar: tqdm):
    for result in results:
        bar.update()
        yield result


def tile_size_of(model: str | os.PathLike) -> int:
    """The square input side of a model's vision tower (``vision_config.image_size`` in its config.json,
    as the processor reads it): the tile size training cuts media into. ``model`` is a folder or a hub id
    in the local Hugging Face cache; OSError or ValueError naming it otherwise."""
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(str(model), "config.json"))
        except Exception as err:  # huggingface_hub raises many types for an id it cannot find
            raise OSError(
                f"--model {model}: no config.json there or in the Hugging Face cache ({first_line(err)})"
            ) from None
    vision = read_json_object(path).get("vision_config")
    size = vision.get("image_size") if isinstance(vision, dict) else None
    size = size[0] if isinstance(size, list) and len(size) == 2 and size[0] == size[1] else size
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(
            f"{path}: no square vision_config.image_size to take the tile size from (got {size!r}); "
            "give --tile-size PIXELS (a family whose processor sets it: model.processor.frame_size) and "
            "--max-tiles as training reads images (the DataModule's unbuilt-cache warning prints both)"
        )
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="EMT files (JSON list or JSONL)")
    parser.add_argument(
        "--media-root", help="folder the records' media paths are relative to (default: each file's)"
    )
    parser.add_argument("--out", required=True, help="cache folder (data.frame_cache)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--tile-size", type=int, help="tile side in pixels (or --model)")
    parser.add_argument(
        "--model", help="model folder or cached hub id whose vision tower sets the tile size (as in training)"
    )
    parser.add_argument("--max-tiles", type=int, default=12)
    parser.add_argument("--no-thumbnail", action="store_true")
    parser.add_argument("--video-backend", choices=("auto", "decord", "pyav"), default="auto")
    parser.add_argument(
        "--video-resize",
        choices=("decoder", "pil"),
        default="decoder",
        help="frames to tiles in the decoder (fast) or with PIL from full-size frames (InternVL's pixels)",
    )
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--strict", action="store_true", help="exit 2 when any medium failed")
    parser.add_argument(
        "--allow-media-outside-root",
        action="store_true",
        help="let media paths be absolute, hold .. or follow symlinks out of the media root",
    )
    args = parser.parse_args(argv)
    if (args.tile_size is None) == (args.model is None):
        parser.error("give the tile size: --tile-size PIXELS or --model DIR (not both)")
    try:
        summary = build_cache(
            args.files,
            args.out,
            args.num_frames,
            args.tile_size or tile_size_of(args.model),
            args.media_root,
            args.max_tiles,
            not args.no_thumbnail,
            args.video_backend,
            args.workers,
            resize=args.video_resize,
            outside_ok=args.allow_media_outside_root,
        )
    except (RecordError, OSError, ValueError) as error:  # bad files, an unwritable --out, a bad --model
        print(f"error: {first_line(error)}", file=sys.stderr)
        return 1
    print(summary.render())
    return 2 if args.strict and summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
