"""Which H.264 pictures a reader must decode to get the frames it wants, read off the NAL unit headers.

Two facts of the standard (ITU-T H.264) let a reader that keeps a few frames of a clip leave most of
it undecoded, every kept frame still bit for bit what a full decode gives:
- a coded slice whose ``nal_ref_idc`` is 0 belongs to a picture no other picture is predicted from
  (7.4.1); encoders mark most B-pictures so (x264's defaults: about half of a clip's pictures);
- an IDR picture (NAL unit type 5) starts afresh: nothing after it refers to anything before it
  (3.69), so the pictures between the last wanted one and the next IDR, and groups of pictures
  holding no wanted frame at all, are needed by nothing.
Only length-prefixed streams (the ``avcC`` layout of MP4, MOV and Matroska, ISO/IEC 14496-15,
5.3.3.1) are read; anything else (Annex B, another codec) has every picture decoded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

# Coded-slice NAL unit types (Table 7-1): non-IDR slice, data partitions A-C, IDR slice, and the SVC/MVC
# extension slices. A packet is disposable only if all of its slices are plain non-IDR slices that say
# so (partitioned and extension slices are rare: such packets are decoded).
SLICE_TYPES = frozenset({1, 2, 3, 4, 5, 20, 21})
NON_IDR_SLICE, IDR_SLICE = 1, 5


class AccessUnit(NamedTuple):
    """One packet of a stream: its presentation timestamp, whether another picture is predicted from
    it (``disposable`` False) and whether it is an IDR picture."""

    pts: int | None
    disposable: bool = False
    idr: bool = False


def nal_length_size(codec_name: str, extradata: bytes | None) -> int | None:
    """Bytes in each NAL unit's length prefix (1, 2 or 4) of an H.264 stream stored the ``avcC`` way;
    None for any other codec or layout (Annex B start codes carry no ``avcC`` record)."""
    if codec_name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    size = (extradata[4] & 3) + 1
    return size if size != 3 else None  # 3 is reserved by the standard


def access_unit(pts: int | None, data: bytes | memoryview, length_size: int) -> AccessUnit:
    """What the packet ``data`` holds: ``disposable`` when it has coded slices and every one is a
    non-IDR slice with ``nal_ref_idc`` 0; ``idr`` when it has an IDR slice. A malformed packet (a
    length running past its end) is neither: it is decoded, and the decoder reports it."""
    position, unreferenced, kept, idr = 0, 0, False, False
    while position < len(data):
        start = position + length_size
        length = int.from_bytes(data[position:start], "big") if start < len(data) else 0
        if length == 0 or start + length > len(data):
            return AccessUnit(pts)
        kind = data[start] & 0x1F
        if kind in SLICE_TYPES:
            idr |= kind == IDR_SLICE
            if kind == NON_IDR_SLICE and not data[start] & 0x60:
                unreferenced += 1
            else:
                kept = True  # referenced, IDR, partitioned or an extension: the picture is decoded
        position = start + length
    return AccessUnit(pts, unreferenced > 0 and not kept, idr)


def decode_plan(units: Sequence[AccessUnit], wanted: Sequence[int]) -> tuple[set[int], dict[int, int] | None]:
    """Which packets to leave undecoded, and how to number the frames the decoder then puts out.

    ``units``: every packet of the clip in decode order; ``wanted``: sorted frame indices, a frame's
    index being its rank by pts (as decord numbers frames). Returns the pts of the packets to skip
    (unneeded as above; the clip's last picture is kept when ``wanted`` runs past the end, which then
    repeats it) and every packet's frame index by pts, to number each frame out by its own pts (a
    picture the decoder drops then shifts no other). Nothing is skipped and the index is None (number
    frames as they come out) without a distinct pts on every packet, or with nothing to go by (no
    IDR nor unreferenced picture: not H.264 read by ``access_unit``).
    """
    stamps = [unit.pts for unit in units]
    if None in stamps or len(set(stamps)) < len(stamps) or not any(u.disposable or u.idr for u in units):
        return set(), None
    rank = {pts: i for i, pts in enumerate(sorted(stamps))}
    keep = {*wanted, len(units) - 1} if wanted and wanted[-1] >= len(units) else set(wanted)
    starts = [i for i, unit in enumerate(units) if i == 0 or unit.idr] + [len(units)]
    skipped = set()
    for start, end in itertools.pairwise(starts):
        group = [(unit, rank[unit.pts] in keep) for unit in units[start:end]]
        last = max((k for k, (_, kept) in enumerate(group) if kept), default=-1)
        skipped |= {u.pts for k, (u, kept) in enumerate(group) if k > last or (u.disposable and not kept)}
    return skipped, rank
