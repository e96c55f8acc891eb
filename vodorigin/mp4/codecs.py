"""Sample descriptions (stsd, ISO/IEC 14496-12 8.5.2) -> CodecInfo with RFC 6381 codec strings.

Decoder configurations: avcC (ISO/IEC 14496-15 5.3.3.1), hvcC (14496-15 8.3.3.1), av1C (AV1 Codec
ISO Media File Format Binding 2.3), esds (ISO/IEC 14496-1 7.2.6.5 with the AudioSpecificConfig of
14496-3 1.6.2.1), dac3/dec3 (ETSI TS 102 366 F.4/F.6), dOps (Opus in ISOBMFF 4.3.2).
"""

from __future__ import annotations

import math
import struct

from vodorigin.errors import MediaError
from vodorigin.media.model import CodecInfo, MediaType
from vodorigin.mp4.boxes import Box, iter_boxes, read_box_header

VISUAL_ENTRY_SIZE = 78  # VisualSampleEntry fields before its child boxes (12.1.3)
AUDIO_ENTRY_SIZE = 28  # AudioSampleEntry fields before its child boxes (12.2.3)
QUICKTIME_AUDIO_EXTRA = {1: 16, 2: 36}  # QuickTime sound description versions 1 and 2 add these

AAC_SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
AC3_CHANNELS = (2, 1, 2, 3, 3, 4, 4, 5)  # by acmod (ETSI TS 102 366 Table 4.3)
# Dolby's audio channel configuration masks by acmod (bit 15 L, 14 C, 13 R, 12 Ls, 11 Rs, 8 Cs; bit 0
# LFE), as DASH-IF IOP and ETSI TS 102 366 Annex I give them for the scheme
# tag:dolby.com,2014:dash:audio_channel_configuration:2011
AC3_CHANNEL_MASKS = (0xA000, 0x4000, 0xA000, 0xE000, 0xA100, 0xE100, 0xB800, 0xF800)
MP3_OBJECT_TYPES = (0x69, 0x6B)  # MPEG-2 and MPEG-1 audio in esds objectTypeIndication

VIDEO_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"av01"}
AUDIO_ENTRIES = {b"mp4a", b"ac-3", b"ec-3", b"Opus", b".mp3"}
# 3GPP timed text (TS 26.245 5.16; ffmpeg's mov_text) and WebVTT in ISO BMFF (ISO/IEC 14496-30)
SUBTITLE_ENTRIES = {b"tx3g", b"wvtt"}


def parse_sample_entry(entry: bytes, media_type: MediaType) -> CodecInfo | None:
    """The first stsd entry -> CodecInfo, or None for a codec we do not package."""
    box = read_box_header(entry, 0, len(entry))
    if box is None or box.size != len(entry):
        raise MediaError("stsd: truncated sample entry")
    if media_type is MediaType.VIDEO and box.type in VIDEO_ENTRIES:
        return _video_entry(entry, box)
    if media_type is MediaType.AUDIO and box.type in AUDIO_ENTRIES:
        return _audio_entry(entry, box)
    if media_type is MediaType.SUBTITLE and box.type in SUBTITLE_ENTRIES:
        fourcc = box.type.decode()
        return CodecInfo(fourcc=fourcc, codec_string=fourcc, sample_entry=entry)
    return None


def _children(entry: bytes, box: Box, skip: int) -> dict[bytes, bytes]:
    start = box.payload_start + skip
    if start > box.end:
        raise MediaError(f"{box.type!r}: sample entry too short")
    return {c.type: entry[c.payload_start : c.end] for c in iter_boxes(entry, start, box.end, "stsd")}


def _video_entry(entry: bytes, box: Box) -> CodecInfo | None:
    width, height = struct.unpack_from(">HH", entry, box.payload_start + 24)
    children = _children(entry, box, VISUAL_ENTRY_SIZE)
    fourcc = box.type.decode()
    common = {"fourcc": fourcc, "sample_entry": entry, "width": width, "height": height,
              "pixel_aspect": _pixel_aspect(children.get(b"pasp"))}
    if box.type in (b"avc1", b"avc3") and b"avcC" in children:
        config = children[b"avcC"]
        length_size, sets = _avc_parameter_sets(config)
        codec = f"{fourcc}.{config[1]:02x}{config[2]:02x}{config[3]:02x}"
        return CodecInfo(codec_string=codec, decoder_config=config, nal_length_size=length_size,
                         parameter_sets=sets, **common)
    if box.type in (b"hvc1", b"hev1") and b"hvcC" in children:
        config = children[b"hvcC"]
        length_size, sets = _hevc_parameter_sets(config)
        return CodecInfo(codec_string=f"{fourcc}.{_hevc_codec_suffix(config)}", decoder_config=config,
                         nal_length_size=length_size, parameter_sets=sets, **common)
    if box.type == b"av01" and b"av1C" in children:
        config = children[b"av1C"]
        return CodecInfo(codec_string=_av1_codec_string(config), decoder_config=config, **common)
    return None


def _pixel_aspect(pasp: bytes | None) -> tuple[int, int]:
    """PixelAspectRatioBox (14496-12 12.1.4): hSpacing:vSpacing in lowest terms; 1:1 if absent or invalid."""
    if pasp is None or len(pasp) < 8:
        return (1, 1)
    h_spacing, v_spacing = struct.unpack_from(">II", pasp)
    if not h_spacing or not v_spacing:
        return (1, 1)
    divisor = math.gcd(h_spacing, v_spacing)
    return (h_spacing // divisor, v_spacing // divisor)


def _avc_parameter_sets(config: bytes) -> tuple[int, tuple[bytes, ...]]:
    """avcC -> (NAL length size, SPS and PPS units)."""
    if len(config) < 7:
        raise MediaError("avcC: truncated")
    length_size = (config[4] & 3) + 1
    sets: list[bytes] = []
    pos = 5
    for count_mask in (0x1F, 0xFF):  # numOfSequenceParameterSets (5 bits), numOfPictureParameterSets
        if pos >= len(config):
            raise MediaError("avcC: truncated")
        count = config[pos] & count_mask
        pos += 1
        for _ in range(count):
            pos = _read_nal(config, pos, sets, "avcC")
    return length_size, tuple(sets)


def _hevc_parameter_sets(config: bytes) -> tuple[int, tuple[bytes, ...]]:
    """hvcC -> (NAL length size, VPS/SPS/PPS units in array order)."""
    if len(config) < 23:
        raise MediaError("hvcC: truncated")
    length_size = (config[21] & 3) + 1
    sets: list[bytes] = []
    pos = 23
    for _ in range(config[22]):
        if pos + 3 > len(config):
            raise MediaError("hvcC: truncated")
        count = struct.unpack_from(">H", config, pos + 1)[0]
        pos += 3
        for _ in range(count):
            pos = _read_nal(config, pos, sets, "hvcC")
    return length_size, tuple(sets)


def _read_nal(config: bytes, pos: int, out: list[bytes], name: str) -> int:
    if pos + 2 > len(config):
        raise MediaError(f"{name}: truncated")
    size = struct.unpack_from(">H", config, pos)[0]
    if pos + 2 + size > len(config):
        raise MediaError(f"{name}: parameter set overruns the box")
    out.append(config[pos + 2 : pos + 2 + size])
    return pos + 2 + size


def _hevc_codec_suffix(config: bytes) -> str:
    """ISO/IEC 14496-15 E.3: profile.compatibility.tier+level.constraints, e.g. 1.6.L93.B0."""
    space = ("", "A", "B", "C")[config[1] >> 6]
    tier = "H" if config[1] & 0x20 else "L"
    profile = config[1] & 0x1F
    compatibility = int(f"{struct.unpack_from('>I', config, 2)[0]:032b}"[::-1], 2)
    constraints = list(config[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [f"{space}{profile}", f"{compatibility:X}", f"{tier}{config[12]}"]
    parts += [f"{b:X}" for b in constraints]
    return ".".join(parts)


def _av1_codec_string(config: bytes) -> str:
    """AV1 ISOBMFF binding, Codecs Parameter String: av01.P.LLT.DD."""
    if len(config) < 4:
        raise MediaError("av1C: truncated")
    profile, level = config[1] >> 5, config[1] & 0x1F
    tier = "H" if config[2] & 0x80 else "M"
    depth = (12 if config[2] & 0x20 else 10) if config[2] & 0x40 else 8
    return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"


def _audio_entry(entry: bytes, box: Box) -> CodecInfo | None:
    version = struct.unpack_from(">H", entry, box.payload_start + 8)[0]
    channels, _, _, _, rate = struct.unpack_from(">HHHHI", entry, box.payload_start + 16)
    children = _children(entry, box, AUDIO_ENTRY_SIZE + QUICKTIME_AUDIO_EXTRA.get(version, 0))
    fourcc = box.type.decode()
    common = {"fourcc": fourcc, "sample_entry": entry, "channels": channels, "sample_rate": rate >> 16}
    if box.type == b"mp4a" and b"esds" in children:
        return _mp4a_codec(children[b"esds"], common)
    if box.type == b".mp3":
        return CodecInfo(codec_string="mp4a.40.34", object_type=0x6B, **common)
    if box.type == b"ac-3" and b"dac3" in children:
        config = children[b"dac3"]
        if len(config) < 3:
            raise MediaError("dac3: truncated")
        acmod, lfe = (config[1] >> 3) & 7, (config[1] >> 2) & 1
        common["channels"] = AC3_CHANNELS[acmod] + lfe
        return CodecInfo(codec_string="ac-3", decoder_config=config, **common)
    if box.type == b"ec-3" and b"dec3" in children:
        config = children[b"dec3"]
        if len(config) >= 5:
            acmod, lfe = (config[3] >> 1) & 7, config[3] & 1
            common["channels"] = AC3_CHANNELS[acmod] + lfe
        return CodecInfo(codec_string="ec-3", decoder_config=config, **common)
    if box.type == b"Opus" and b"dOps" in children:
        common["sample_rate"] = 48000  # Opus always decodes at 48 kHz
        return CodecInfo(codec_string="opus", decoder_config=children[b"dOps"], **common)
    return None


def dolby_channel_mask(codec: CodecInfo) -> int | None:
    """The Dolby channel mask of an AC-3 (dac3) or E-AC-3 (dec3, first substream) stream."""
    config = codec.decoder_config
    if codec.fourcc == "ac-3" and len(config) >= 3:
        acmod, lfe = (config[1] >> 3) & 7, (config[1] >> 2) & 1
    elif codec.fourcc == "ec-3" and len(config) >= 5:
        acmod, lfe = (config[3] >> 1) & 7, config[3] & 1
    else:
        return None
    return AC3_CHANNEL_MASKS[acmod] | lfe


def _mp4a_codec(esds: bytes, common: dict) -> CodecInfo | None:
    object_type, config = parse_esds(esds)
    if object_type in MP3_OBJECT_TYPES:
        return CodecInfo(codec_string="mp4a.40.34", object_type=object_type, **common)
    if object_type != 0x40 or not config:  # 0x40: MPEG-4 audio (14496-1 Table 5)
        return None
    audio = parse_audio_specific_config(config)
    common.update(sample_rate=audio.sample_rate, channels=audio.channels or common["channels"])
    return CodecInfo(codec_string=f"mp4a.40.{audio.object_type}", decoder_config=config,
                     object_type=audio.object_type, **common)


def parse_esds(esds: bytes) -> tuple[int, bytes]:
    """esds payload (after the full-box header) -> (objectTypeIndication, DecoderSpecificInfo)."""
    pos = 4
    tag, size, pos = _descriptor(esds, pos)
    if tag != 0x03:  # ES_DescrTag
        raise MediaError("esds: no ES descriptor")
    if pos + 3 > len(esds):
        raise MediaError("esds: truncated")
    flags = esds[pos + 2]
    pos += 3 + (2 if flags & 0x80 else 0)  # ES_ID, flags, dependsOn_ES_ID
    if flags & 0x40:  # URL_Flag
        pos += 1 + esds[pos]
    pos += 2 if flags & 0x20 else 0  # OCR_ES_Id
    tag, size, pos = _descriptor(esds, pos)
    if tag != 0x04 or pos + 13 > len(esds):  # DecoderConfigDescrTag
        raise MediaError("esds: no decoder config descriptor")
    object_type = esds[pos]
    end = pos + size
    pos += 13
    if pos < end and pos < len(esds):
        tag, size, pos = _descriptor(esds, pos)
        if tag == 0x05:  # DecSpecificInfoTag
            return object_type, esds[pos : pos + size]
    return object_type, b""


def _descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, size, payload position) of an MPEG-4 descriptor with its 1-4 byte size."""
    if pos >= len(data):
        raise MediaError("esds: truncated descriptor")
    tag, size = data[pos], 0
    pos += 1
    for _ in range(4):
        if pos >= len(data):
            raise MediaError("esds: truncated descriptor")
        byte = data[pos]
        pos += 1
        size = (size << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    if pos + size > len(data):
        raise MediaError("esds: descriptor overruns the box")
    return tag, size, pos


class AudioConfig:
    """The AudioSpecificConfig fields ADTS headers and manifests use (14496-3 1.6.2.1)."""

    __slots__ = ("object_type", "sampling_index", "sample_rate", "channels", "core_object_type")

    def __init__(self, object_type: int, sampling_index: int, sample_rate: int, channels: int,
                 core_object_type: int) -> None:
        self.object_type = object_type
        self.sampling_index = sampling_index
        self.sample_rate = sample_rate
        self.channels = channels
        self.core_object_type = core_object_type


def parse_audio_specific_config(config: bytes) -> AudioConfig:
    bits = _BitReader(config)
    object_type = _object_type(bits)
    index, rate = _sampling(bits)
    channels = bits.read(4)
    core_type, core_index, core_rate = object_type, index, rate
    if object_type in (5, 29):  # SBR / PS: an extension rate, then the core object type
        _sampling(bits)
        core_type = _object_type(bits)
    return AudioConfig(object_type, core_index, core_rate, channels, core_type)


def _object_type(bits: _BitReader) -> int:
    value = bits.read(5)
    return 32 + bits.read(6) if value == 31 else value


def _sampling(bits: _BitReader) -> tuple[int, int]:
    index = bits.read(4)
    if index == 0x0F:
        return index, bits.read(24)
    if index >= len(AAC_SAMPLE_RATES):
        raise MediaError(f"AudioSpecificConfig: reserved sampling index {index}")
    return index, AAC_SAMPLE_RATES[index]


class _BitReader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def read(self, count: int) -> int:
        """The next `count` bits, most significant first: the bytes holding them, read as one
        integer, shifted and masked."""
        start, end = self.position, self.position + count
        if end > 8 * len(self.data):
            raise MediaError("AudioSpecificConfig: truncated")
        first, last = start >> 3, (end + 7) >> 3
        window = int.from_bytes(self.data[first:last], "big")
        self.position = end
        return (window >> (8 * last - end)) & ((1 << count) - 1)
