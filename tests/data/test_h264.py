"""Leaving unreferenced H.264 pictures undecoded: the right packets, and frames equal to a full decode."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from m2se.data import video
from m2se.data.h264 import is_disposable, nal_length_size
from m2se.data.video import read_video, segment_centres

AVCC = bytes([1, 100, 0, 31, 0xFF, 0xE1, 0])  # avcC record head: 4-byte NAL lengths


def nal(header: int, payload: bytes = b"\x88\x84") -> bytes:
    return (1 + len(payload)).to_bytes(4, "big") + bytes([header]) + payload


@pytest.mark.parametrize(
    ("units", "disposable"),
    [
        ([nal(0x01)], True),  # non-IDR slice, nal_ref_idc 0
        ([nal(0x06), nal(0x01), nal(0x01)], True),  # SEI, then two unreferenced slices
        ([nal(0x41)], False),  # nal_ref_idc 2
        ([nal(0x01), nal(0x21)], False),  # one slice of the picture is referenced
        ([nal(0x65)], False),  # IDR
        ([nal(0x02)], False),  # a data partition: decoded to be safe
        ([nal(0x06)], False),  # no slice at all
        ([nal(0x01)[:-1]], False),  # a length running past the packet
        ([nal(0x01) + b"\x00"], False),  # a truncated length prefix at the end
        ([b"\x00\x00\x00\x00"], False),  # an empty NAL unit
    ],
)
def test_a_packet_is_disposable_only_when_every_slice_is_unreferenced(units, disposable):
    assert is_disposable(b"".join(units), 4) is disposable


def test_only_length_prefixed_h264_is_read():
    assert nal_length_size("h264", AVCC) == 4
    assert nal_length_size("h264", AVCC[:4] + bytes([0xFD]) + AVCC[5:]) == 2
    assert nal_length_size("h264", AVCC[:4] + bytes([0xFE]) + AVCC[5:]) is None  # 3 is reserved
    assert nal_length_size("h264", b"\x00\x00\x00\x01\x67") is None  # Annex B: start codes
    assert nal_length_size("h264", None) is None
    assert nal_length_size("hevc", AVCC) is None


def write_bframe_clip(path: Path, frames: np.ndarray, first_pts: int = 0) -> Path:
    """uint8 (N, 48, 64, 3) frames as lossy H.264 with 3 B-pictures between references (x264's
    b-pyramid leaves 2 of each 4 unreferenced); frame i at ``first_pts + i`` twelfths of a second."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"preset": "veryfast", "x264-params": "bframes=3:b-adapt=0"}
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = first_pts + i, Fraction(1, 12)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def bframe_clip(tmp_path_factory) -> Path:
    """40 frames of a square crossing a gradient."""
    y, x = np.mgrid[0:48, 0:64]
    frames = np.stack(
        [np.stack([(x * 3 + 5 * t) % 256, (y * 4 + 2 * t) % 256, np.full_like(x, 90)], -1) for t in range(40)]
    )
    for t, frame in enumerate(frames):
        frame[10:26, t : t + 16] = (230, 40, 40)
    return write_bframe_clip(tmp_path_factory.mktemp("h264") / "bframes.mp4", frames.astype(np.uint8))


def test_unreferenced_pictures_are_found_in_an_x264_clip(bframe_clip):
    with av.open(str(bframe_clip)) as container:
        length_size = nal_length_size("h264", container.streams.video[0].codec_context.extradata)
    packets = video._scan_packets(bframe_clip, length_size)
    assert len(packets) == 40 and length_size == 4
    assert 10 <= sum(disposable for _, disposable in packets) <= 30  # b-pyramid: 2 of every 4 pictures
    wanted = segment_centres(40, 8)
    skipped, indices = video._skip_plan(packets, wanted)
    ranks = {pts: i for i, pts in enumerate(sorted(pts for pts, _ in packets))}
    assert skipped and not {ranks[pts] for pts in skipped} & {*wanted, 39}
    # Some wanted frames are unreferenced pictures themselves: they are decoded all the same.
    assert any(disposable and ranks[pts] in wanted for pts, disposable in packets)
    assert list(indices) == sorted(set(range(40)) - {ranks[pts] for pts in skipped})


@pytest.mark.parametrize("size", [None, 40])
@pytest.mark.parametrize("threads", [0, 1])
@pytest.mark.parametrize("num_frames", [8, 40, 50])
def test_frames_equal_a_full_decode_bit_for_bit(bframe_clip, monkeypatch, size, threads, num_frames):
    fast = read_video(bframe_clip, num_frames, size, "pyav", threads=threads)
    monkeypatch.setattr(video, "is_disposable", lambda data, length_size: False)
    full = read_video(bframe_clip, num_frames, size, "pyav", threads=threads)
    np.testing.assert_array_equal(fast, full)
    if size is None:  # and the same frames as decord's reader (InternVL's)
        np.testing.assert_array_equal(fast, read_video(bframe_clip, num_frames, None, "decord"))


def test_without_usable_timestamps_nothing_is_skipped():
    wanted = [1]
    for packets in ([(0, False), (2, True), (None, True)], [(0, False), (1, True), (1, True)]):
        skipped, indices = video._skip_plan(packets, wanted)
        assert skipped == set() and [next(indices) for _ in range(3)] == [0, 1, 2]


def test_a_clip_whose_edit_list_drops_its_first_pictures_is_numbered_as_decoded(tmp_path, monkeypatch):
    """Pictures before the edit list's start are demuxed but never put out by the decoder: frames are
    then numbered as they come out (nothing skipped), as for a full decode."""
    frames = np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(24)])
    path = write_bframe_clip(tmp_path / "edited.mp4", frames, first_pts=-5)  # 5 before the start
    fast = read_video(path, 8, None, "pyav")
    monkeypatch.setattr(video, "is_disposable", lambda data, length_size: False)
    np.testing.assert_array_equal(fast, read_video(path, 8, None, "pyav"))
