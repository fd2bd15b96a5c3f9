import struct
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from m2se.data.demo import write_clip
from m2se.data.video import (
    MediaError,
    MediaLoader,
    default_threads,
    read_image,
    read_video,
    segment_centres,
)

BACKENDS = ("decord", "pyav")


@pytest.fixture(scope="module")
def ramp_clip(tmp_path_factory) -> Path:
    """20 grey frames, frame i at brightness 20 + 10 i: a frame's mean tells its index."""
    frames = np.stack([np.full((40, 64, 3), 20 + 10 * i, np.uint8) for i in range(20)])
    path = tmp_path_factory.mktemp("video") / "ramp.mp4"
    write_clip(path, frames)
    return path


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory) -> Path:
    """A red square crossing a blue field over 24 frames."""
    frames = np.zeros((24, 64, 64, 3), np.uint8)
    frames[..., 2] = 160
    for i, frame in enumerate(frames):
        frame[20:40, 2 * i : 2 * i + 16] = (220, 30, 30)
    path = tmp_path_factory.mktemp("video") / "moving.mp4"
    write_clip(path, frames)
    return path


def test_segment_centres_follow_internvl():
    assert segment_centres(100, 8) == [6, 18, 31, 43, 56, 68, 80, 93]
    assert segment_centres(20, 8) == [1, 3, 6, 8, 11, 13, 15, 18]
    assert segment_centres(3, 8) == [0, 0, 0, 1, 1, 1, 2, 2]
    assert segment_centres(1, 4) == [0, 0, 0, 0]


@pytest.mark.parametrize("total", [1, 2, 7, 8, 9, 31, 300])
def test_segment_centres_are_sorted_frames_of_the_clip(total):
    indices = segment_centres(total, 8)
    assert len(indices) == 8 and indices == sorted(indices)
    assert indices[0] >= 0 and indices[-1] < total


def test_segment_centres_reject_an_empty_clip():
    with pytest.raises(ValueError, match="total"):
        segment_centres(0, 8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_video_samples_segment_centres_in_order(ramp_clip, backend):
    frames = read_video(ramp_clip, num_frames=8, size=32, backend=backend)
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    expected = [20 + 10 * i for i in segment_centres(20, 8)]
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_video_without_size_keeps_the_decoded_frame(ramp_clip, backend):
    assert read_video(ramp_clip, num_frames=3, size=None, backend=backend).shape == (3, 40, 64, 3)


def test_decord_and_pyav_agree(moving_clip):
    by_decord, by_pyav = (read_video(moving_clip, 8, 64, backend) for backend in BACKENDS)
    # Same frames; only YUV -> RGB conversion details may differ.
    difference = np.abs(by_decord.astype(int) - by_pyav.astype(int))
    assert difference.mean() < 2 and np.percentile(difference, 99) < 16
    np.testing.assert_array_equal(read_video(moving_clip, 8, 64, "auto"), by_pyav)
    full = [read_video(moving_clip, 8, None, backend) for backend in BACKENDS]
    np.testing.assert_array_equal(*full)  # the decoded frames themselves are the same


def test_auto_reads_with_pyav_what_decord_cannot(tmp_path):
    # decord 0.6 cannot copy out frames of some small widths (48 px: "The size must exactly match").
    write_clip(tmp_path / "narrow.mp4", np.full((6, 40, 48, 3), 100, np.uint8))
    with pytest.raises(MediaError, match="narrow.mp4: corrupt video"):
        read_video(tmp_path / "narrow.mp4", 4, None, "decord")
    frames = read_video(tmp_path / "narrow.mp4", 4, None, "auto")
    np.testing.assert_array_equal(frames, read_video(tmp_path / "narrow.mp4", 4, None, "pyav"))
    assert frames.shape == (4, 40, 48, 3)
    assert MediaLoader(4, 56).reader == "pyav" and MediaLoader(4, 56, backend="decord").reader == "decord"


def test_decord_asked_for_but_not_installed_is_one_error_when_the_loader_is_built(monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord raises ImportError
    with pytest.raises(ImportError, match="decord is not installed.*use the pyav backend"):
        MediaLoader(4, 56, backend="decord")
    MediaLoader(4, 56, backend="auto")  # needs no decord


def test_read_image_gives_rgb(tmp_path):
    rgba = np.zeros((10, 14, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(np.full((6, 5), 90, np.uint8)).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (10, 14, 3) and image.dtype == np.uint8 and image[0, 0].tolist() == [200, 0, 0]
    assert read_image(tmp_path / "grey.png").shape == (6, 5, 3)


def test_media_loader_tiles_images_and_reads_frames(tmp_path, moving_clip):
    Image.fromarray(np.zeros((64, 100, 3), np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(tmp_path / "small.png")
    loader = MediaLoader(num_frames=4, tile_size=28, max_tiles=6, use_thumbnail=True)
    images, videos = loader.load([tmp_path / "wide.png", tmp_path / "small.png"], [moving_clip])
    wide, small = images
    assert wide.shape[0] > 1 and wide.shape[1:] == (28, 28, 3) and wide.dtype == np.uint8
    assert small.shape == (1, 28, 28, 3)  # one tile: no thumbnail
    assert len(videos) == 1 and videos[0].shape == (4, 28, 28, 3)
    assert loader.load([], []) == ([], [])


def _broken_media(folder: Path) -> dict[str, Path]:
    """Files no reader can use, by what is wrong with them."""
    paths = {name: folder / name for name in ("empty.mp4", "garbage.mp4", "no_frames.avi", "no_video.mp4")}
    paths["missing"] = folder / "missing.mp4"
    paths["empty.mp4"].write_bytes(b"")
    paths["garbage.mp4"].write_bytes(np.random.default_rng(0).bytes(4000))
    with av.open(str(paths["no_frames.avi"]), "w", format="avi") as container:  # a video stream, no frame
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    with av.open(str(paths["no_video.mp4"]), "w", format="mp4") as container:  # header only
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()
    return paths


@pytest.mark.parametrize("backend", ("auto", *BACKENDS))
@pytest.mark.parametrize("case", ["missing", "empty.mp4", "garbage.mp4", "no_frames.avi", "no_video.mp4"])
def test_broken_video_raises_media_error_naming_the_file(tmp_path, case, backend):
    path = _broken_media(tmp_path)[case]
    with pytest.raises(MediaError) as caught:
        read_video(path, backend=backend)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_truncated_video_raises_media_error(tmp_path, moving_clip):
    data = moving_clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut.mp4: corrupt video"):
        read_video(tmp_path / "cut.mp4")


def test_broken_image_raises_media_error(tmp_path, moving_clip):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(
        tmp_path / "ok.png"
    )
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    for path, reason in [
        (tmp_path / "missing.png", "missing file"),
        (tmp_path, "a folder, not a file"),
        (tmp_path / "empty.png", "empty file"),
        (tmp_path / "cut.png", "corrupt image"),
        (moving_clip, "unreadable image"),
    ]:
        with pytest.raises(MediaError, match=f"^{path}: {reason}"):
            read_image(path)


def test_a_decompression_bomb_is_a_media_error_and_counts_one_tile(tmp_path, monkeypatch):
    from m2se.data.report import _image_tiles

    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    # PIL refuses images over twice MAX_IMAGE_PIXELS with DecompressionBombError, which is no OSError.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(MediaError, match="bomb.png: corrupt image"):
        read_image(path)
    assert _image_tiles(path, MediaLoader(num_frames=2, tile_size=28)) == 1  # the loader then skips it


@pytest.fixture(scope="module")
def smooth_clip(tmp_path_factory) -> Path:
    """12 frames of 96x128: a drifting colour gradient and a moving disc, like camera footage."""
    y, x = np.mgrid[0:96, 0:128]
    frames = []
    for t in range(12):
        frame = np.stack([x + 5 * t, y + 3 * t, (x + y) // 2], -1).clip(0, 255).astype(np.uint8)
        inside = (x - 30 - 6 * t) ** 2 + (y - 48) ** 2 < 20**2
        frame[inside] = (230, 200, 40)
        frames.append(frame)
    path = tmp_path_factory.mktemp("video") / "smooth.mp4"
    write_clip(path, np.stack(frames))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_pil_resize_is_the_decoded_frame_resized_by_pil(smooth_clip, backend):
    full = read_video(smooth_clip, 4, None, backend)
    expected = [np.asarray(Image.fromarray(f).resize((64, 64), Image.Resampling.BICUBIC)) for f in full]
    np.testing.assert_array_equal(read_video(smooth_clip, 4, 64, backend, resize="pil"), np.stack(expected))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [56, 64])
def test_decoder_resize_stays_close_to_pil(smooth_clip, backend, size):
    fast, exact = (read_video(smooth_clip, 4, size, backend, resize=r) for r in ("decoder", "pil"))
    assert fast.shape == exact.shape == (4, size, size, 3) and fast.dtype == np.uint8
    gap = np.abs(fast.astype(int) - exact.astype(int))
    # Same frames, another bicubic (FFmpeg's from YUV, PIL's from RGB): about 1 of 255 on average
    # (measured 1.2-1.4), more only along the disc's hard edge.
    assert gap.mean() < 2 and np.percentile(gap, 99) < 25, (gap.mean(), np.percentile(gap, 99))


def test_decoder_threads_do_not_change_pixels(smooth_clip):
    for backend in BACKENDS:
        one, auto, two = (read_video(smooth_clip, 4, 56, backend, threads=t) for t in (1, 0, 2))
        np.testing.assert_array_equal(one, auto)
        np.testing.assert_array_equal(one, two)  # the default outside workers on 2 cores


def test_decoder_threads_default_to_the_usable_cores_and_one_inside_a_worker():
    import os

    import torch

    class Threads(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return default_threads()

    usable = min(len(os.sched_getaffinity(0)), 16)
    assert default_threads() == usable  # not 0: FFmpeg's own choice runs one thread more than the cores
    in_worker = torch.utils.data.DataLoader(Threads(), num_workers=1, batch_size=None)
    assert list(in_worker) == [1]


def test_an_unknown_resize_or_backend_is_refused(smooth_clip):
    with pytest.raises(ValueError, match="resize must be decoder or pil.*got 'nearest', 'auto'"):
        read_video(smooth_clip, 4, 56, resize="nearest")
    with pytest.raises(ValueError, match="got 'decoder', 'ffmpeg'"):
        read_video(smooth_clip, 4, 56, backend="ffmpeg")
    with pytest.raises(ValueError, match="MediaLoader: .*got 'nearest'"):
        MediaLoader(4, 56, resize="nearest")


@pytest.mark.parametrize("threads", [-1, 2.5, True, "2"])
def test_a_wrong_thread_count_is_refused_not_read_as_a_corrupt_clip(smooth_clip, threads):
    # FFmpeg refused -1 at the first clip, which read as "corrupt video" naming the file.
    with pytest.raises(
        ValueError, match=f"read_video: threads must be None or an integer >= 0.*got {threads!r}"
    ):
        read_video(smooth_clip, 4, 56, threads=threads)
    with pytest.raises(ValueError, match="MediaLoader: threads must be"):
        MediaLoader(4, 56, threads=threads)


def test_a_phone_clips_rotation_is_applied_on_every_path(tmp_path):
    """A 96x48 clip flagged to display turned by 90 degrees: decord's scaler turns it, and so must
    PyAV and the PIL path (a tall bright top half becomes a bright side)."""
    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.height, stream.width, stream.pix_fmt = 48, 96, "yuv420p"
        for _ in range(4):
            frame = np.full((48, 96, 3), 40, np.uint8)
            frame[:24] = 220  # the top half bright
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    # The track header's display matrix turned by 90 degrees, as a phone writes it.
    identity = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    turned = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    data = path.read_bytes()
    track = data.index(b"tkhd")
    path.write_bytes(data[:track] + data[track:].replace(identity, turned, 1))
    tiles = {
        (b, r): read_video(path, 2, 56, b, r)
        for b in BACKENDS
        for r in ("decoder", "pil")
        if (b, r) != ("decord", "pil")
    }
    reference = tiles["decord", "decoder"].astype(int)
    for key, frames in tiles.items():
        assert np.abs(frames.astype(int) - reference).mean() < 3, key
    # Turned: the bright half is now a left or right half, not the top.
    columns, rows = reference.mean(axis=(0, 1, 3)), reference.mean(axis=(0, 2, 3))
    assert abs(columns[:28].mean() - columns[28:].mean()) > 100 > abs(rows[:28].mean() - rows[28:].mean())
