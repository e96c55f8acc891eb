"""ADTS headers for raw AAC frames (ISO/IEC 13818-7 6.2 / 14496-3 1.A.2.2).

A 7-byte header (no CRC) per frame; only frame_length changes between frames, so the fixed part is
computed once per stream. HE-AAC (SBR/PS) is signalled implicitly: the header carries the core
AAC-LC object type and rate, which is what HLS players expect.
"""

from __future__ import annotations

from vodorigin.errors import UnsupportedMedia
from vodorigin.media.model import CodecInfo
from vodorigin.mp4.codecs import parse_audio_specific_config

ADTS_HEADER_SIZE = 7
MAX_FRAME_LENGTH = (1 << 13) - 1  # frame_length is 13 bits, header included


class AdtsHeader:
    """Builds the header of each frame of one AAC stream."""

    __slots__ = ("_fixed",)

    def __init__(self, codec: CodecInfo) -> None:
        config = parse_audio_specific_config(codec.decoder_config)
        profile = config.core_object_type - 1  # ADTS profile = audio object type - 1
        if not 0 <= profile <= 3 or config.sampling_index > 12:
            raise UnsupportedMedia(f"AAC object type {config.object_type} cannot be carried in ADTS")
        channels = config.channels or codec.channels
        if not 1 <= channels <= 7:
            raise UnsupportedMedia(f"AAC with channel configuration {channels} cannot be carried in ADTS")
        # syncword 0xFFF, MPEG-4, layer 0, no CRC | profile, rate index, channel config (high bit)
        self._fixed = bytes(
            (0xFF, 0xF1, (profile << 6) | (config.sampling_index << 2) | (channels >> 2), (channels & 3) << 6)
        )

    def build(self, frame_size: int) -> bytes:
        length = frame_size + ADTS_HEADER_SIZE
        if length > MAX_FRAME_LENGTH:
            raise UnsupportedMedia(f"AAC frame of {frame_size} bytes is too large for ADTS")
        fixed = self._fixed
        return bytes(
            (
                fixed[0],
                fixed[1],
                fixed[2],
                fixed[3] | (length >> 11),
                (length >> 3) & 0xFF,
                ((length & 7) << 5) | 0x1F,  # low bits of length, buffer fullness 0x7FF (VBR)
                0xFC,  # rest of buffer fullness, one raw data block
            )
        )
