"""Which H.264 pictures no other picture needs, read off their NAL unit headers.

A coded slice whose ``nal_ref_idc`` is 0 belongs to a picture that is never used to predict another
(ITU-T H.264, 7.4.1): a reader that does not keep the picture can leave it undecoded and every other
picture decodes bit for bit as before. Encoders mark most B-pictures so (x264's defaults: about half
of a clip's pictures), so a reader that keeps 8 frames of a clip decodes roughly half as much.
Only length-prefixed streams (the ``avcC`` layout of MP4, MOV and Matroska, ISO/IEC 14496-15,
5.3.3.1) are read; anything else (Annex B, another codec) has every picture decoded.
"""

from __future__ import annotations

# Coded-slice NAL unit types (Table 7-1): non-IDR slice, data partitions A-C, IDR slice, and the SVC/MVC
# extension slices. A packet is disposable only if all of its slices are plain non-IDR slices that say so
# (partitioned and extension slices are rare: such packets are decoded).
SLICE_TYPES = frozenset({1, 2, 3, 4, 5, 20, 21})
NON_IDR_SLICE = 1


def nal_length_size(codec_name: str, extradata: bytes | None) -> int | None:
    """Bytes in each NAL unit's length prefix (1, 2 or 4) of an H.264 stream stored the ``avcC`` way;
    None for any other codec or layout (Annex B start codes carry no ``avcC`` record)."""
    if codec_name != "h264" or not extradata or len(extradata) < 7 or extradata[0] != 1:
        return None
    size = (extradata[4] & 3) + 1
    return size if size != 3 else None  # 3 is reserved by the standard


def is_disposable(data: bytes, length_size: int) -> bool:
    """True when the access unit ``data`` (one packet) holds coded slices and every one has
    ``nal_ref_idc`` 0, so no other picture is predicted from it. A malformed packet (a length running
    past its end, or no slice at all) is False: it is decoded, and the decoder reports it."""
    position, slices = 0, 0
    while position < len(data):
        start = position + length_size
        if start >= len(data):
            return False
        length = int.from_bytes(data[position:start], "big")
        if length == 0 or start + length > len(data):
            return False
        header = data[start]
        if header & 0x1F in SLICE_TYPES:
            if header & 0x60 or header & 0x1F != NON_IDR_SLICE:
                return False
            slices += 1
        position = start + length
    return slices > 0
