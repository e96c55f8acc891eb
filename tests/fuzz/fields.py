"""The fields of the boxes the parser reads, and the values worth writing into them.

A Field is an offset and a width in a box's `data` (its payload, or a container's fixed fields), with
the values most likely to break arithmetic on it: zero, one, sign and width boundaries, and counts far
larger than the box. Layouts: ISO/IEC 14496-12 8.2.2 (mvhd), 8.3.2 (tkhd), 8.4.2 (mdhd), 8.4.3 (hdlr),
8.6.1.2 (stts), 8.6.1.3 (ctts), 8.6.2 (stss), 8.6.6 (elst), 8.7.3 (stsz, stz2), 8.7.4 (stsc),
8.7.5 (stco, co64), 12.1.3 / 12.2.3 (sample entries); ISO/IEC 14496-15 5.3.3.1 (avcC), 8.3.3.1 (hvcC);
ISO/IEC 14496-1 7.2.6 (esds descriptors).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from tests.fuzz.boxtree import Box

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
INTERESTING = {
    1: (0, 1, 2, 7, 0x7F, 0x80, 0xFE, 0xFF),
    2: (0, 1, 2, 7, 0x7F, 0xFF, 0x7FFF, 0x8000, 0xFFFF),
    4: (0, 1, 2, 7, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, U32_MAX),
    8: (0, 1, 2, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, U64_MAX - 1, U64_MAX),
}
TIMESCALES = (0, 1, 2, 7, 1000, 90000, 0x7FFFFFFF, 0x80000000, U32_MAX)
DURATIONS = (0, 1, 0x7FFFFFFF, 0x80000000, U32_MAX, (1 << 63) - 1, U64_MAX)
DELTAS = (0, 1, 2, 1 << 31, U32_MAX)
COUNTS = (0, 1, 2, 0x10000, 19_999_999, 20_000_000, 20_000_001, 0x10000000, 0x7FFFFFFF, U32_MAX)
SAMPLE_SIZES = (0, 1, 7, 32 * 1024 * 1024, 32 * 1024 * 1024 + 1, 0x7FFFFFFF, U32_MAX)
OFFSETS = (0, 1, 0x7FFFFFFF, 0x80000000, U32_MAX, (1 << 63) - 1, 1 << 63, U64_MAX)
MEDIA_TIMES = (-1, -2, -(1 << 31), (1 << 31) - 1, 1 << 30, -(1 << 63), (1 << 63) - 1, (1 << 62))
CTTS_OFFSETS = (0, 1, -1, -(1 << 31), (1 << 31) - 1, 1 << 30)
HANDLERS = (b"vide", b"soun", b"hint", b"text", b"sbtl", b"meta", b"\0\0\0\0", b"VIDE")
VERSIONS = (0, 1, 2, 0xFF)


@dataclass(frozen=True, slots=True)
class Field:
    """`width` bytes at `offset` of a box's data; `signed` values are written in two's complement."""

    name: str
    offset: int
    width: int
    values: tuple[int, ...] = ()
    signed: bool = False
    relative: bool = True  # current value +-1 is interesting too

    def read(self, data: bytes) -> int:
        return int.from_bytes(data[self.offset : self.offset + self.width], "big", signed=self.signed)

    def write(self, data: bytes, value: int) -> bytes:
        raw = (value & ((1 << (8 * self.width)) - 1)).to_bytes(self.width, "big")
        return data[: self.offset] + raw + data[self.offset + self.width :]

    def fits(self, data: bytes) -> bool:
        return self.offset + self.width <= len(data)


def choose_value(rng: random.Random, field: Field, current: int) -> int:
    """A value for a field: one of its own interesting values, a generic one, or current +- a little."""
    roll = rng.random()
    if field.values and roll < 0.6:
        return rng.choice(field.values)
    if field.relative and roll > 0.85:
        return current + rng.choice((-1, 1, -2, 2, -8, 8, 1 << 16))
    return rng.choice(INTERESTING[field.width])


def known_fields(box: Box, rng: random.Random) -> list[Field]:
    """The fields of `box` the parser reads (entry fields at a few chosen entries)."""
    data, kind = box.data, box.type
    version = data[0] if data else 0
    builder = _BUILDERS.get(kind)
    fields = builder(data, version, rng) if builder else []
    return [f for f in fields if f.fits(data)]


def _header_times(data: bytes, version: int, rng: random.Random) -> list[Field]:
    """mvhd and mdhd: version, timescale, duration."""
    if version == 1:
        times = [Field("timescale", 20, 4, TIMESCALES), Field("duration", 24, 8, DURATIONS)]
    else:
        times = [Field("timescale", 12, 4, TIMESCALES), Field("duration", 16, 4, DURATIONS)]
    return [Field("version", 0, 1, VERSIONS, relative=False), *times]


def _tkhd(data: bytes, version: int, rng: random.Random) -> list[Field]:
    first = 20 if version == 1 else 12
    width = 8 if version == 1 else 4
    return [Field("version", 0, 1, VERSIONS), Field("track_ID", first, 4, (0, 1, 2, U32_MAX)),
            Field("duration", first + 8, width, DURATIONS),
            Field("width", len(data) - 8, 4, (0, U32_MAX)), Field("height", len(data) - 4, 4, (0, U32_MAX))]


def _hdlr(data: bytes, version: int, rng: random.Random) -> list[Field]:
    values = tuple(int.from_bytes(h, "big") for h in HANDLERS)
    return [Field("handler_type", 8, 4, values, relative=False)]


def _entries(data: bytes, header: int, stride: int, columns: list[Field], rng: random.Random) -> list[Field]:
    """The count field at header - 4, and the columns of entries 0, 1, the last and a random one."""
    fields = [Field("entry_count", header - 4, 4, COUNTS)]
    available = max((len(data) - header) // stride, 0)
    if not available:
        return fields
    for index in sorted({0, min(1, available - 1), available - 1, rng.randrange(available)}):
        base = header + index * stride
        fields += [Field(f"{c.name}[{index}]", base + c.offset, c.width, c.values, c.signed) for c in columns]
    return fields


def _stts(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return _entries(data, 8, 8, [Field("sample_count", 0, 4, COUNTS), Field("sample_delta", 4, 4, DELTAS)],
                    rng)


def _ctts(data: bytes, version: int, rng: random.Random) -> list[Field]:
    columns = [Field("sample_count", 0, 4, COUNTS), Field("sample_offset", 4, 4, CTTS_OFFSETS, signed=True)]
    return [Field("version", 0, 1, (0, 1), relative=False), *_entries(data, 8, 8, columns, rng)]


def _stsz(data: bytes, version: int, rng: random.Random) -> list[Field]:
    fields = [Field("sample_size", 4, 4, SAMPLE_SIZES), Field("sample_count", 8, 4, COUNTS)]
    return fields + _entries(data, 12, 4, [Field("entry_size", 0, 4, SAMPLE_SIZES)], rng)[1:]


def _stz2(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return [Field("field_size", 7, 1, (0, 4, 8, 16, 32, 0xFF)), Field("sample_count", 8, 4, COUNTS)]


def _stsc(data: bytes, version: int, rng: random.Random) -> list[Field]:
    columns = [Field("first_chunk", 0, 4, (0, 1, 2, U32_MAX, 0x80000000)),
               Field("samples_per_chunk", 4, 4, COUNTS), Field("sample_description_index", 8, 4, (0, 2))]
    return _entries(data, 8, 12, columns, rng)


def _stco(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return _entries(data, 8, 4, [Field("chunk_offset", 0, 4, OFFSETS)], rng)


def _co64(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return _entries(data, 8, 8, [Field("chunk_offset", 0, 8, OFFSETS)], rng)


def _stss(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return _entries(data, 8, 4, [Field("sample_number", 0, 4, (0, 1, 2, 0x80000000, U32_MAX))], rng)


def _elst(data: bytes, version: int, rng: random.Random) -> list[Field]:
    wide = 8 if version == 1 else 4
    columns = [Field("segment_duration", 0, wide, DURATIONS),
               Field("media_time", wide, wide, MEDIA_TIMES, signed=True),
               Field("media_rate", 2 * wide, 4, (0, 0x10000, U32_MAX))]
    return [Field("version", 0, 1, (0, 1), relative=False), *_entries(data, 8, 2 * wide + 4, columns, rng)]


def _stsd(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return [Field("entry_count", 4, 4, COUNTS)]


def _visual_entry(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return [Field("data_reference_index", 6, 2), Field("width", 24, 2, (0, 1, 0xFFFF)),
            Field("height", 26, 2, (0, 1, 0xFFFF)), Field("depth", 74, 2)]


def _audio_entry(data: bytes, version: int, rng: random.Random) -> list[Field]:
    return [Field("sound_version", 8, 2, (0, 1, 2, 3, 0xFFFF)),
            Field("channel_count", 16, 2, (0, 1, 2, 8, 0xFFFF)),
            Field("sample_size", 18, 2, (0, 8, 16, 0xFFFF)),
            Field("sample_rate", 24, 4, (0, 0x10000, 44100 << 16, 48000 << 16, U32_MAX))]


def _avcc(data: bytes, version: int, rng: random.Random) -> list[Field]:
    fields = [Field("profile", 1, 1), Field("level", 3, 1),
              Field("length_size", 4, 1, (0xFC, 0xFD, 0xFE, 0xFF, 0), relative=False),
              Field("sps_count", 5, 1, (0xE0, 0xE1, 0xE2, 0xFF, 0))]
    fields += _nal_fields(data, 6, rng)
    return fields


def _nal_fields(data: bytes, pos: int, rng: random.Random) -> list[Field]:
    """The 16-bit lengths of the parameter sets found from pos, and the count byte after them."""
    fields: list[Field] = []
    while pos + 2 <= len(data) and len(fields) < 6:
        size = struct.unpack_from(">H", data, pos)[0]
        fields.append(Field("nal_length", pos, 2, (0, 1, 0xFFFF)))
        pos += 2 + size
        if pos < len(data):
            fields.append(Field("set_count", pos, 1, (0, 2, 0xFF)))
            pos += 1
    return fields


def _hvcc(data: bytes, version: int, rng: random.Random) -> list[Field]:
    fields = [Field("profile", 1, 1), Field("length_size", 21, 1, (0xFC, 0xFF, 0), relative=False),
              Field("array_count", 22, 1, (0, 4, 0xFF))]
    pos = 23
    while pos + 3 <= len(data) and len(fields) < 12:
        fields.append(Field("nal_count", pos + 1, 2, (0, 2, 0xFFFF)))
        count = struct.unpack_from(">H", data, pos + 1)[0]
        pos += 3
        for _ in range(count):
            if pos + 2 > len(data):
                break
            fields.append(Field("nal_length", pos, 2, (0, 1, 0xFFFF)))
            pos += 2 + struct.unpack_from(">H", data, pos)[0]
    return fields


def _esds(data: bytes, version: int, rng: random.Random) -> list[Field]:
    """Each descriptor's tag and length bytes; the object type and the AudioSpecificConfig."""
    fields: list[Field] = []
    pos = 4
    while pos + 2 <= len(data) and len(fields) < 24:
        tag = data[pos]
        fields.append(Field(f"tag{tag:02x}", pos, 1, (0, 3, 4, 5, 6, 0xFF), relative=False))
        pos += 1
        length = 0
        for _ in range(4):  # expandable size: 7 bits a byte, high bit = more
            if pos >= len(data):
                break
            fields.append(Field(f"length{tag:02x}", pos, 1, (0, 0x7F, 0x80, 0xFF)))
            length = (length << 7) | (data[pos] & 0x7F)
            pos += 1
            if not data[pos - 1] & 0x80:
                break
        if tag == 0x03:
            pos += 3  # ES_ID, flags (streams, URLs and OCR not expected from ffmpeg)
        elif tag == 0x04:
            fields.append(Field("object_type", pos, 1, (0x40, 0x66, 0x67, 0x69, 0x6B, 0xA5, 0)))
            pos += 13
        elif tag == 0x05:
            fields.append(Field("audio_specific_config", pos, 2, (0, 0x1190, 0x1210, 0xF800, 0xFFFF)))
            pos += length
        else:
            pos += length
    return fields


_BUILDERS = {
    b"mvhd": _header_times, b"mdhd": _header_times, b"tkhd": _tkhd, b"hdlr": _hdlr, b"stts": _stts,
    b"ctts": _ctts, b"stsz": _stsz, b"stz2": _stz2, b"stsc": _stsc, b"stco": _stco, b"co64": _co64,
    b"stss": _stss, b"elst": _elst, b"stsd": _stsd, b"avcC": _avcc, b"hvcC": _hvcc, b"esds": _esds,
    **{t: _visual_entry for t in (b"avc1", b"avc3", b"hvc1", b"hev1", b"av01")},
    **{t: _audio_entry for t in (b"mp4a", b"ac-3", b"ec-3", b"Opus", b".mp3")},
}
