"""Test-side MP4 surgery, independent of vodorigin's box code: find boxes by path, overwrite fields,
and build small hostile files. Used to make the regression files of tests/test_hostile.py."""

from __future__ import annotations

import struct
from pathlib import Path

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta", b"mvex"}


def walk(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the boxes in data[start:end], depth first, containers included."""
    found = []
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, position + 8)[0], 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            break
        found.append((kind, position, position + size))
        if kind in CONTAINERS:
            found += walk(data, position + header, position + size)
        position += size
    return found


def find(data: bytes, kind: bytes, within: tuple[int, int] | None = None) -> list[tuple[int, int]]:
    """(start, end) of every box of a type, optionally inside a range (such as one trak)."""
    low, high = within or (0, len(data))
    return [(s, e) for k, s, e in walk(data, 0, len(data)) if k == kind and low <= s and e <= high]


def trak_of(data: bytes, handler: bytes) -> tuple[int, int]:
    """The first trak whose hdlr names `handler` (b"vide", b"soun")."""
    for start, end in find(data, b"trak"):
        hdlr_start, _ = find(data, b"hdlr", (start, end))[0]
        if data[hdlr_start + 16 : hdlr_start + 20] == handler:
            return start, end
    raise LookupError(handler)


def put(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    """data with struct `fmt` written at offset."""
    changed = bytearray(data)
    struct.pack_into(fmt, changed, offset, *values)
    return bytes(changed)


def payload(data: bytes, handler: bytes, kind: bytes) -> int:
    """Offset of the payload (after the 8-byte header and, for full boxes, version/flags) of the
    first `kind` box in the track with that handler: the start of a full box's own fields."""
    start, _ = find(data, kind, trak_of(data, handler))[0]
    return start + 12


def box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, *parts: bytes) -> bytes:
    return box(kind, b"\0\0\0\0", *parts)


def sample_entry(fixture: Path, handler: bytes) -> bytes:
    """The first stsd sample entry of a fixture's track (an avc1 or mp4a box)."""
    data = fixture.read_bytes()
    start, _ = find(data, b"stsd", trak_of(data, handler))[0]
    size = struct.unpack_from(">I", data, start + 16)[0]
    return data[start + 16 : start + 16 + size]


def claiming_file(entry: bytes, count: int, sample_size: int = 1, delta: int = 1, timescale: int = 30,
                  tracks: int = 1, mdat_bytes: int = 1000) -> bytes:
    """A small MP4 whose video tracks claim `count` samples of `sample_size` bytes: one stts run,
    stsc (1, count, 1), a constant-size stsz, one stco entry, no stss (every sample a key frame).
    The mdat comes first, so the one chunk offset is known: 32."""
    head = box(b"ftyp", b"isom", b"\0\0\2\0", b"isomiso2avc1mp41") + box(b"mdat", bytes(mdat_bytes))
    stbl = box(b"stbl", full_box(b"stsd", struct.pack(">I", 1), entry),
               full_box(b"stts", struct.pack(">III", 1, count, delta)),
               full_box(b"stsc", struct.pack(">IIII", 1, 1, count, 1)),
               full_box(b"stsz", struct.pack(">II", sample_size, count)),
               full_box(b"stco", struct.pack(">II", 1, len(head) - mdat_bytes)))
    traks = []
    for track_id in range(1, tracks + 1):
        minf = box(b"minf", full_box(b"vmhd", bytes(8)),
                   box(b"dinf", full_box(b"dref", struct.pack(">I", 1), full_box(b"url "))), stbl)
        mdia = box(b"mdia", full_box(b"mdhd", struct.pack(">IIIIHH", 0, 0, timescale, 0, 0x55C4, 0)),
                   full_box(b"hdlr", struct.pack(">I4s12x", 0, b"vide"), b"v\0"), minf)
        tkhd = full_box(b"tkhd", struct.pack(">IIIII", 0, 0, track_id, 0, 0), bytes(52),
                        struct.pack(">II", 320 << 16, 180 << 16))
        traks.append(box(b"trak", tkhd, mdia))
    mvhd = full_box(b"mvhd", struct.pack(">IIII", 0, 0, 1000, 0), bytes(76), struct.pack(">I", tracks + 1))
    return head + box(b"moov", mvhd, *traks)
