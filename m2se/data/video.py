"""Frames and images as uint8 RGB arrays, read the way InternVL2 (and so EmoVerse) reads them.

A video becomes ``num_frames`` frames at segment centres, each resized to one square tile; an image
becomes its dynamic tiles (``m2se.data.tiles.tile_image``). The tile side is the processor's
(``M2SEProcessor.tile_size``, read from the model directory). Every failure to read media is a
``MediaError`` naming the file, so a dataset can count it as a skip instead of crashing a worker.
A frame cache (``m2se.data.cache.FrameCache``) wraps a ``MediaLoader``; this module knows nothing of it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, TypeVar, get_args

import numpy as np
from PIL import Image, UnidentifiedImageError

from m2se.data.h264 import AccessUnit, access_unit, decode_plan, nal_length_size
from m2se.data.media_errors import MediaError, check_file

Backend = Literal["auto", "decord", "pyav"]
Frame = TypeVar("Frame")
HELD_BYTES = 64 << 20  # a clip file up to this size has its packets demuxed once and held while decoding
Resize = Literal["decoder", "pil"]
Kind = Literal["image", "video"]


def segment_centres(total: int, num_frames: int) -> list[int]:
    """InternVL2's frame indices: the centres of ``num_frames`` equal segments of the clip.

    Exactly InternVL's (and ms-swift's) ``get_index`` without a time bound: the span is
    [0, total - 1] and offsets use numpy's half-to-even rounding, so indices match the originals
    frame for frame. Indices repeat when ``total < num_frames``.
    """
    if total < 1 or num_frames < 1:
        raise ValueError(f"need total >= 1 and num_frames >= 1, got total={total}, num_frames={num_frames}")
    segment = (total - 1) / num_frames
    return [int(segment / 2 + np.round(segment * i)) for i in range(num_frames)]


# What PIL raises on a file it cannot decode; a decompression bomb is no OSError.
IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The image as uint8 (H, W, 3) RGB; transparency is dropped as InternVL does (``convert('RGB')``)."""
    check_file(path)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise MediaError(f"{path}: unreadable image (not a known image format)") from None
    except IMAGE_ERRORS as error:
        raise MediaError(f"{path}: corrupt image ({error})") from None


def read_video(
    path: str | os.PathLike,
    num_frames: int = 8,
    size: int | None = None,
    backend: Backend = "auto",
    resize: Resize = "decoder",
    threads: int | None = None,
) -> np.ndarray:
    """``num_frames`` frames at ``segment_centres`` as uint8 (N, size, size, 3) RGB.

    Each frame becomes one ``size`` x ``size`` tile (aspect not kept), as InternVL does for video;
    ``size=None`` keeps the decoded size. ``resize``:
    - ``decoder`` (default): FFmpeg's swscale turns each wanted frame from the decoder's YUV straight
      into the tile, bicubic, so no full-size RGB frame is ever made; only the wanted frames are
      converted. Against ``pil`` on the same frames (``python bench/data.py`` prints both): 720p clips
      to 448 px differ by 1.1 of 255 on average (max 163, on hard edges); the demo's 64-px clips of
      flat shapes, to 56 px, by 2.2 (max 95). Same frame indices either way.
    - ``pil``: full-size RGB frames resized with PIL's bicubic, InternVL's own code path, pixel for
      pixel (``tests/data/test_video.py``).
    ``backend``: ``pyav`` (``auto`` is the same) leaves undecoded the H.264 pictures no wanted frame
    needs (``m2se.data.h264``: unreferenced ones, often half of a clip, and whole stretches between
    IDR pictures); on an intact clip its frames equal a full decode's bit for bit. It numbers H.264
    frames by their pts, so a picture the decoder drops (the leading pictures of a clip cut inside an
    open group, a damaged one) shifts no other, and a wanted one it drops is the frame before it;
    other codecs' frames are numbered as they come out. ``decord`` is the reader InternVL's own code
    uses, which seeks to key frames and decodes every picture from there. Both number frames the same
    way and give the same full-size frames; their decoder-scaled tiles differ by about 0.3 of 255 on
    average at 720p and 1 on the demo's 56-px tiles (two builds of swscale).
    ``threads``: decoder and scaler threads; 0 for FFmpeg's choice, None for ``default_threads()``.
    A clip's display rotation (phone videos) is applied on every path. Errors: ``MediaError`` naming
    the file for a missing, unreadable or corrupt clip.
    """
    check_file(path)
    _check_settings("read_video", backend, resize, threads)
    threads = default_threads() if threads is None else threads
    scale = size if resize == "decoder" else None
    if backend == "decord":
        decord = _import_decord()  # not a fault of the file: an ImportError, raised as is
        try:
            frames = _read_decord(decord, path, num_frames, scale, threads)
        except MediaError:
            raise
        except Exception as error:
            raise _corrupt(path, error) from None
    else:
        frames = _read_pyav(path, num_frames, scale, threads)
    if size is None or frames.shape[1:3] == (size, size):  # decoder-scaled frames are the tiles already
        return frames
    return np.stack([resize_frame(frame, size) for frame in frames])


@dataclass(frozen=True)
class MediaLoader:
    """Reads a sample's media: per image its tiles (T, S, S, 3), per video its frames (N, S, S, 3).

    ``tile_size`` (S) is the processor's; ``max_tiles`` and ``use_thumbnail`` shape image tiling;
    ``backend`` and ``resize`` are ``read_video``'s. Every call decodes: ``m2se.data.cache.FrameCache``
    wraps a loader to read decoded media instead.
    """

    num_frames: int
    tile_size: int
    max_tiles: int = 12
    use_thumbnail: bool = True
    backend: Backend = "auto"
    resize: Resize = "decoder"
    threads: int | None = None  # read_video's; not a setting of the frames (a cache ignores it)

    def __post_init__(self) -> None:
        # When built, not at the first clip, where FFmpeg's refusal would read as a corrupt file.
        _check_settings("MediaLoader", self.backend, self.resize, self.threads)
        if self.backend == "decord":
            _import_decord()

    @property
    def reader(self) -> Literal["decord", "pyav"]:
        """The library that reads clips: ``auto`` is PyAV. Frames depend on it, not on the name given."""
        return "decord" if self.backend == "decord" else "pyav"

    def load(
        self, images: Sequence[str | os.PathLike], videos: Sequence[str | os.PathLike]
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        image_tiles = [self.decode("image", path) for path in images]
        video_frames = [self.decode("video", path) for path in videos]
        return image_tiles, video_frames

    def decode(self, kind: Kind, path: str | os.PathLike) -> np.ndarray:
        """One medium decoded: an image's tiles or a video's frames. MediaError naming the file."""
        if kind == "video":
            return read_video(path, self.num_frames, self.tile_size, self.backend, self.resize, self.threads)
        # Imported on first use: tiling pulls in transformers, which reading frames does not need.
        from m2se.data.tiles import tile_image

        return tile_image(read_image(path), self.tile_size, self.max_tiles, self.use_thumbnail)


def _import_decord() -> ModuleType:
    try:
        import decord
    except ImportError:
        raise ImportError(
            "video backend decord: decord is not installed (its wheels are for x86_64 Linux and Windows); "
            "use the pyav backend (the default), which numbers frames the same way"
        ) from None

    # Its FFmpeg would print a line per unreadable file; the MediaError says it once, naming the file.
    decord.logging.set_level(decord.logging.QUIET)
    return decord


def _check_settings(who: str, backend: str, resize: str, threads: int | None) -> None:
    if resize not in get_args(Resize) or backend not in get_args(Backend):
        raise ValueError(
            f"{who}: resize must be decoder or pil and backend auto, decord or pyav; got {resize!r}, {backend!r}"
        )
    if threads is not None and (type(threads) is not int or threads < 0):
        raise ValueError(
            f"{who}: threads must be None or an integer >= 0 (0: FFmpeg's choice), got {threads!r}"
        )


def default_threads() -> int:
    """The decoder threads ``read_video`` uses by default: 1 inside a DataLoader worker (the workers
    share the cores), else one per usable core, at most 16 (FFmpeg's own cap). FFmpeg's own choice
    (``threads=0``) is one thread more than the cores, which on 2 cores decodes 720p H.264 12-23%
    slower (``python bench/data.py --threads 0`` against the default, its ``decode all`` line)."""
    from torch.utils.data import get_worker_info

    if get_worker_info() is not None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(cores, 16)


def _read_decord(
    decord: ModuleType, path: str | os.PathLike, num_frames: int, size: int | None, threads: int
) -> np.ndarray:
    # decord scales in its FFmpeg filter graph (bicubic, swscale's default) when given a size.
    shape = {"width": size, "height": size} if size else {}
    reader = decord.VideoReader(str(path), num_threads=threads, **shape)
    if len(reader) == 0:
        raise MediaError(f"{path}: corrupt video (no decodable frames)")
    batch = reader.get_batch(segment_centres(len(reader), num_frames))
    # A process-wide decord.bridge.set_bridge("torch") elsewhere turns the batch into a tensor.
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


def _read_pyav(path: str | os.PathLike, num_frames: int, size: int | None, threads: int) -> np.ndarray:
    import av
    from av.video.reformatter import VideoReformatter

    scaler = VideoReformatter()  # one scaling context for the clip's frames, not one per frame

    def rgb(frame: av.VideoFrame) -> np.ndarray:
        if size is None:
            array = frame.to_ndarray(format="rgb24")
        else:
            array = scaler.reformat(frame, size, size, "rgb24", interpolation="BICUBIC", threads=threads)
            array = array.to_ndarray()
        # A phone clip's display rotation (degrees counter-clockwise), which decord's scaler applies too.
        turns = round((frame.rotation or 0) / 90) % 4
        return np.ascontiguousarray(np.rot90(array, turns)) if turns else array

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_count = threads
            if threads != 1:
                stream.thread_type = "AUTO"  # frame and slice threads
            context = stream.codec_context
            length_size = nal_length_size(context.name, context.extradata)
            source, units = container.demux(stream), []
            if length_size or not stream.frames:  # read every packet first, to plan or to count
                if os.path.getsize(path) <= HELD_BYTES:
                    source = list(source)  # demuxed once (the last ones flush the decoder)
                    units = _access_units(source, length_size)
                else:
                    units = scan_access_units(path)
            total = len(units) or stream.frames  # the packets themselves, where they were read
            if total == 0:
                raise MediaError(f"{path}: corrupt video (no decodable frames)")
            wanted = segment_centres(total, num_frames)
            skipped, rank = decode_plan(units, wanted)
            decoded = (f for p in source if p.pts not in skipped for f in p.decode())
            numbered = ((rank.get(f.pts), f) for f in decoded) if rank else enumerate(decoded)
            frames = _pick(numbered, wanted)
            if frames is None:
                raise MediaError(f"{path}: corrupt video (no decodable frames)")
            converted = {id(frame): rgb(frame) for frame in frames}  # a repeated frame converted once
            return np.stack([converted[id(frame)] for frame in frames])
    except MediaError:
        raise
    except Exception as error:
        raise _corrupt(path, error) from None


def _pick(numbered: Iterable[tuple[int | None, Frame]], wanted: list[int]) -> list[Frame] | None:
    """The ``wanted`` frames (sorted indices) out of (index, frame) pairs in presentation order. One
    the decoder never put out (a damaged picture it dropped, or past the end when the header
    overcounts) is the frame out before it, or the first one out if none was. None when no frame
    came out."""
    targets, picked, previous = sorted(set(wanted)), {}, None
    for index, frame in numbered:
        if index is None:  # a pts the clip's packets do not have
            continue
        while len(picked) < len(targets) and targets[len(picked)] <= index:
            at = targets[len(picked)]
            picked[at] = frame if at == index or previous is None else previous
        if len(picked) == len(targets):
            break
        previous = frame
    if previous is None and not picked:
        return None
    for at in targets[len(picked) :]:
        picked[at] = previous
    return [picked[i] for i in wanted]


def scan_access_units(path: str | os.PathLike) -> list[AccessUnit]:
    """The clip's packets as ``_access_units`` reads them, from an open of their own: how
    ``read_video`` plans a clip too large to hold in memory (some demuxers, avi's, cannot seek back),
    and what ``bench/data.py`` counts. Errors: FFmpeg's, for an unreadable file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        length_size = nal_length_size(stream.codec_context.name, stream.codec_context.extradata)
        return _access_units(container.demux(stream), length_size)


def _access_units(packets: Iterable, length_size: int | None) -> list[AccessUnit]:
    """Each packet holding a picture the decoder puts out, in decode order, read by
    ``h264.access_unit`` when ``length_size`` is given; none disposable or IDR in a clip whose edit
    list drops pictures (then nothing is skipped and frames are numbered as they come out)."""
    units, dropped = [], False
    for packet in packets:
        if packet.size and packet.is_discard:
            dropped = True  # before the edit list's start: decoded as a reference, never put out
        elif packet.size:
            read = length_size and not dropped
            units.append(
                access_unit(packet.pts, memoryview(packet), length_size) if read else AccessUnit(packet.pts)
            )
    return [AccessUnit(unit.pts) for unit in units] if dropped else units


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) → (size, size, 3) with PIL's bicubic, aspect not kept (InternVL's resize)."""
    if frame.shape[:2] == (size, size):
        return frame
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BICUBIC))


def _corrupt(path: str | os.PathLike, error: Exception) -> MediaError:
    # FFmpeg errors repeat the path in str(error); their strerror is the reason alone. decord
    # prefixes "[time] /its/source.cc:61: " and appends a C++ stack trace.
    lines = (getattr(error, "strerror", None) or str(error) or type(error).__name__).strip().splitlines()
    reason = re.sub(r"^\[[\d:]+\] \S+: ", "", lines[0]).strip()[:200] if lines else type(error).__name__
    return MediaError(f"{path}: corrupt video ({reason})")
