"""Length-prefixed NAL units (ISO/IEC 14496-15) -> Annex B byte streams (ITU-T H.264/H.265 Annex B).

Each 4-byte length becomes a 4-byte start code (3-byte lengths a 3-byte start code), so a frame
keeps its size and a segment's size is known from the sample table alone. Every access unit gets
an access unit delimiter; key frames are preceded by the parameter sets (VPS/SPS/PPS) from the
decoder configuration, as HLS requires for independently decodable segments (RFC 8216 3.2).
"""

from __future__ import annotations

from vodorigin.errors import UnsupportedMedia
from vodorigin.media.model import CodecInfo

START_CODE = b"\x00\x00\x00\x01"
AUD_H264 = START_CODE + b"\x09\xf0"  # nal_unit_type 9, primary_pic_type 7 (any), stop bit
AUD_HEVC = START_CODE + b"\x46\x01\x50"  # nal_unit_type 35, temporal id 1, pic_type 2, stop bit
HEVC_FOURCCS = ("hvc1", "hev1")


class AnnexBPrefix:
    """What goes before each access unit of one video stream, computed once per codec."""

    __slots__ = ("plain", "key", "length_size")

    def __init__(self, codec: CodecInfo) -> None:
        if codec.nal_length_size not in (3, 4):
            raise UnsupportedMedia(
                f"{codec.fourcc}: NAL length size {codec.nal_length_size} cannot be rewritten in place"
            )
        aud = AUD_HEVC if codec.fourcc in HEVC_FOURCCS else AUD_H264
        self.plain = aud
        self.key = aud + b"".join(START_CODE + nal for nal in codec.parameter_sets)
        self.length_size = codec.nal_length_size

    def size(self, key: bool) -> int:
        return len(self.key) if key else len(self.plain)
