"""The H.264 decode plan: what it leaves undecoded, how it numbers frames, frames equal to a full decode."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from m2se.data import video
from m2se.data.h264 import AccessUnit, access_unit, decode_plan, nal_length_size
from m2se.data.video import read_video, scan_access_units, segment_centres

AVCC = bytes([1, 100, 0, 31, 0xFF, 0xE1, 0])  # avcC record head: 4-byte NAL lengths


def nal(header: int, payload: bytes = b"\x88\x84") -> bytes:
    return (1 + len(payload)).to_bytes(4, "big") + bytes([header]) + payload


@pytest.mark.parametrize(
    ("units", "disposable", "idr"),
    [
        ([nal(0x01)], True, False),  # non-IDR slice, nal_ref_idc 0
        ([nal(0x06), nal(0x01), nal(0x01)], True, False),  # SEI, then two unreferenced slices
        ([nal(0x41)], False, False),  # nal_ref_idc 2
        ([nal(0x01), nal(0x21)], False, False),  # one slice of the picture is referenced
        ([nal(0x67), nal(0x68), nal(0x65)], False, True),  # SPS, PPS, IDR slice
        ([nal(0x02)], False, False),  # a data partition: decoded to be safe
        ([nal(0x06)], False, False),  # no slice at all
        ([nal(0x65)[:-1]], False, False),  # a length running past the packet
        ([nal(0x01) + b"\x00"], False, False),  # a truncated length prefix at the end
        ([b"\x00\x00\x00\x00"], False, False),  # an empty NAL unit
    ],
)
def test_a_packet_is_disposable_only_when_every_slice_is_unreferenced(units, disposable, idr):
    assert access_unit(7, b"".join(units), 4) == AccessUnit(7, disposable, idr)


def test_the_plan_skips_what_no_wanted_frame_needs():
    """Three groups of four pictures, each opening with an IDR; frames 1 and 9 wanted."""
    units = [AccessUnit(pts, disposable=pts % 4 == 3, idr=pts % 4 == 0) for pts in range(12)]
    skipped, rank = decode_plan(units, [1, 9])
    # The first group up to frame 1, none of the second, the third up to frame 9.
    assert skipped == {2, 3, 4, 5, 6, 7, 10, 11} and rank == {pts: pts for pts in range(12)}
    assert decode_plan(units, [2, 7])[0] == {3, 8, 9, 10, 11}  # 7 is unreferenced, and wanted
    assert decode_plan(units, [5, 12])[0] == {0, 1, 2, 3, 6, 7}  # past the end: the last frame repeats


def test_only_length_prefixed_h264_is_read():
    assert nal_length_size("h264", AVCC) == 4
    assert nal_length_size("h264", AVCC[:4] + bytes([0xFD]) + AVCC[5:]) == 2
    assert nal_length_size("h264", AVCC[:4] + bytes([0xFE]) + AVCC[5:]) is None  # 3 is reserved
    assert nal_length_size("h264", b"\x00\x00\x00\x01\x67") is None  # Annex B: start codes
    assert nal_length_size("h264", None) is None
    assert nal_length_size("hevc", AVCC) is None


def write_bframe_clip(path: Path, frames: np.ndarray, x264: str = "", first_pts: int = 0) -> Path:
    """uint8 (N, 48, 64, 3) frames as lossy H.264 with 3 B-pictures between references (x264's
    b-pyramid leaves 2 of each 4 unreferenced); frame i at ``first_pts + i`` twelfths of a second;
    ``x264``: more of x264's parameters."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.options = {"preset": "veryfast", "x264-params": f"bframes=3:b-adapt=0{x264}"}
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            frame.pts, frame.time_base = first_pts + i, Fraction(1, 12)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


GROUPS = {"one group": "", "closed groups": ":keyint=8", "open groups": ":keyint=8:open-gop=1"}


def moving_frames(count: int = 40) -> np.ndarray:
    """uint8 (count, 48, 64, 3): a square crossing a drifting gradient."""
    y, x = np.mgrid[0:48, 0:64]
    frames = np.stack(
        [
            np.stack([(x * 3 + 5 * t) % 256, (y * 4 + 2 * t) % 256, np.full_like(x, 90)], -1)
            for t in range(count)
        ]
    )
    for t, frame in enumerate(frames):
        frame[10:26, t : t + 16] = (230, 40, 40)
    return frames.astype(np.uint8)


@pytest.fixture(scope="module", params=list(GROUPS))
def bframe_clip(tmp_path_factory, request) -> Path:
    """40 moving frames: one group of pictures, groups of 8 opening with an IDR picture, or groups of
    8 whose I-pictures are not IDR (open groups: none can be left out whole)."""
    folder = tmp_path_factory.mktemp("h264")
    return write_bframe_clip(folder / f"{request.param}.mp4", moving_frames(), GROUPS[request.param])


def test_x264s_unreferenced_and_idr_pictures_are_found(bframe_clip):
    with av.open(str(bframe_clip)) as container:
        length_size = nal_length_size("h264", container.streams.video[0].codec_context.extradata)
    units = scan_access_units(bframe_clip)
    assert len(units) == 40 and length_size == 4 and units[0].idr
    assert 10 <= sum(unit.disposable for unit in units) <= 30  # b-pyramid: 2 of every 4 pictures
    idrs = sum(unit.idr for unit in units)
    assert idrs == (5 if bframe_clip.stem == "closed groups" else 1)  # open groups' I-pictures are not IDR
    wanted = segment_centres(40, 8)
    skipped, ranks = decode_plan(units, wanted)
    assert ranks == {pts: i for i, pts in enumerate(sorted(unit.pts for unit in units))}
    assert skipped and not {ranks[pts] for pts in skipped} & set(wanted)
    # Some wanted frames are unreferenced pictures themselves: they are decoded all the same.
    assert any(unit.disposable and ranks[unit.pts] in wanted for unit in units)
    if idrs > 1:  # two wanted frames of 40: most groups are left out whole
        assert len(decode_plan(units, [3, 30])[0]) >= 25


@pytest.mark.parametrize("size", [None, 40])
@pytest.mark.parametrize("threads", [0, 1])
@pytest.mark.parametrize("num_frames", [8, 40, 50])
def test_frames_equal_a_full_decode_bit_for_bit(bframe_clip, monkeypatch, size, threads, num_frames):
    fast = read_video(bframe_clip, num_frames, size, "pyav", threads=threads)
    monkeypatch.setattr(video, "access_unit", lambda pts, data, length_size: AccessUnit(pts))
    full = read_video(bframe_clip, num_frames, size, "pyav", threads=threads)
    np.testing.assert_array_equal(fast, full)
    if size is None and bframe_clip.stem != "open groups":  # and the same frames as decord's reader
        # (which seeks to I-pictures of open groups and decodes the pictures before them without
        # their references: other pixels than a full decode's)
        np.testing.assert_array_equal(fast, read_video(bframe_clip, num_frames, None, "decord"))


@pytest.mark.parametrize("num_frames", [3, 8])
def test_a_clip_too_large_to_hold_is_planned_from_a_second_read(bframe_clip, monkeypatch, num_frames):
    held = read_video(bframe_clip, num_frames, None, "pyav")
    monkeypatch.setattr(video, "HELD_BYTES", 0)
    scans = []
    monkeypatch.setattr(video, "scan_access_units", lambda *a: scans.append(a) or scan_access_units(*a))
    np.testing.assert_array_equal(read_video(bframe_clip, num_frames, None, "pyav"), held)
    assert len(scans) == 1


def test_without_usable_timestamps_nothing_is_skipped_and_frames_are_numbered_as_they_come():
    for stamps in ([0, 2, None], [0, 1, 1]):
        units = [AccessUnit(pts, disposable=k > 0, idr=k == 0) for k, pts in enumerate(stamps)]
        assert decode_plan(units, [1]) == (set(), None)
    assert decode_plan([AccessUnit(0), AccessUnit(1)], [1]) == (set(), None)  # nothing to go by


def test_a_frame_the_decoder_never_put_out_is_the_one_before_it():
    out = [(0, "f0"), (1, "f1"), (None, "stray"), (3, "f3"), (4, "f4")]  # 2 dropped
    assert video._pick(out, [0, 2, 2, 4]) == ["f0", "f1", "f1", "f4"]
    assert video._pick(out[3:], [1, 3]) == ["f3", "f3"]  # none before: the first out
    assert video._pick(out, [3, 6]) == ["f3", "f4"]  # past the end: the last out
    assert video._pick([], [0]) is None and video._pick([(None, "stray")], [0]) is None


def test_pictures_the_decoder_drops_shift_no_other_frame(tmp_path):
    """An open group cut at its I-picture, as a stream copy from a key frame makes: the decoder drops
    the leading B-pictures that refer to the group cut off. Every other frame keeps its number."""
    clip = write_bframe_clip(tmp_path / "open.mp4", moving_frames(), GROUPS["open groups"])
    with av.open(str(clip)) as source:
        whole = {f.pts: f.to_ndarray(format="rgb24") for f in source.decode(video=0)}
    with av.open(str(clip)) as source:
        packets = [p for p in source.demux(source.streams.video[0]) if p.size]
    keys = [k for k, p in enumerate(packets) if p.is_keyframe and k > 0]
    start = next(k for k in keys if any(p.pts < packets[k].pts for p in packets[k + 1 : k + 4]))
    cut = tmp_path / "cut.mkv"
    with av.open(str(clip)) as source, av.open(str(cut), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in packets[start:]:
            packet.stream = stream
            target.mux(packet)
    with av.open(str(cut)) as source:
        shown = {f.pts for f in source.decode(video=0)}
    with av.open(str(cut)) as source:
        stamps = sorted(p.pts for p in source.demux(video=0) if p.size)
    assert len(shown) < len(stamps)  # the leading pictures are dropped
    first = min(shown)
    wanted = segment_centres(len(stamps), 8)
    # A dropped leading picture is the first frame out; every other is the clip's own frame.
    expected = [stamps[i] if stamps[i] in shown else first for i in wanted]
    order = dict(zip(stamps, sorted(whole)[-len(stamps) :], strict=True))  # Matroska keeps milliseconds
    got = read_video(cut, 8, None, "pyav")
    np.testing.assert_array_equal(got, np.stack([whole[order[pts]] for pts in expected]))


def test_a_clip_whose_edit_list_drops_its_first_pictures_is_numbered_as_decoded(tmp_path, monkeypatch):
    """Pictures before the edit list's start are demuxed but never put out by the decoder: the clip is
    the 19 after it, numbered as they come out (nothing skipped), as for a full decode."""
    frames = np.stack([np.full((48, 64, 3), 10 * i, np.uint8) for i in range(24)])
    path = write_bframe_clip(tmp_path / "edited.mp4", frames, first_pts=-5)  # 5 before the start
    fast = read_video(path, 8, None, "pyav")
    # Frame i of the clip is picture 5 + i, of brightness 10 (5 + i), up to the codec's loss.
    np.testing.assert_allclose(
        fast.mean(axis=(1, 2, 3)), [10 * (5 + i) for i in segment_centres(19, 8)], atol=3
    )
    monkeypatch.setattr(video, "access_unit", lambda pts, data, length_size: AccessUnit(pts))
    np.testing.assert_array_equal(fast, read_video(path, 8, None, "pyav"))
