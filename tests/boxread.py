"""Test-side readers of ISO BMFF boxes, written from ISO/IEC 14496-12 independently of vodorigin's
own parser (tests should not trust the code they check to read its output)."""

from __future__ import annotations

import struct


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes of data[start:end] (32-bit sizes)."""
    end = len(data) if end is None else end
    found = []
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        assert size >= 8 and start + size <= end
        found.append((kind, start + 8, start + size))
        start += size
    return found


def trun_samples(fragment: bytes, trun: tuple[bytes, int, int] | None = None) -> list[dict[int, int]]:
    """The per-sample fields of a trun (8.8.8; the fragment's first one by default), each keyed by
    its flag: 0x100 duration, 0x200 size, 0x400 flags, 0x800 composition offset."""
    if trun is None:
        moof = next(b for b in boxes(fragment) if b[0] == b"moof")
        traf = next(b for b in boxes(fragment, moof[1], moof[2]) if b[0] == b"traf")
        trun = next(b for b in boxes(fragment, traf[1], traf[2]) if b[0] == b"trun")
    flags = int.from_bytes(fragment[trun[1] + 1 : trun[1] + 4], "big")
    count = struct.unpack_from(">I", fragment, trun[1] + 4)[0]
    fields = [bit for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit]
    position = trun[1] + 8 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
    samples = []
    for _ in range(count):
        values = struct.unpack_from(f">{len(fields)}I", fragment, position)
        samples.append(dict(zip(fields, values, strict=True)))
        position += 4 * len(fields)
    return samples


def trun_sizes(fragment: bytes) -> list[int]:
    """The sample sizes of a fragment's first trun."""
    return [sample[0x200] for sample in trun_samples(fragment)]
