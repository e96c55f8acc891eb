"""Reading movie fragments (ISO/IEC 14496-12 8.8 and 8.16.3): moof and sidx.

The fMP4 muxer's output is read back with this in tests (parse(build(x)) == x), and fragmented MP4
input will be read with it later. Every field the boxes may carry is handled, as each flag allows,
and every read is bounds-checked: a truncated or hostile box is a MediaError, never an IndexError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from vodorigin.errors import MediaError
from vodorigin.mp4.boxes import Box, full_box_header, iter_boxes

# tfhd flags (8.8.7.1)
TFHD_BASE_DATA_OFFSET = 0x000001
TFHD_SAMPLE_DESCRIPTION_INDEX = 0x000002
TFHD_DEFAULT_DURATION = 0x000008
TFHD_DEFAULT_SIZE = 0x000010
TFHD_DEFAULT_FLAGS = 0x000020
TFHD_DURATION_IS_EMPTY = 0x010000
TFHD_DEFAULT_BASE_IS_MOOF = 0x020000
# trun flags (8.8.8.1)
TRUN_DATA_OFFSET = 0x000001
TRUN_FIRST_SAMPLE_FLAGS = 0x000004
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_COMPOSITION_OFFSET = 0x000800


@dataclass(frozen=True, slots=True, eq=False)
class TrackRun:
    """One trun: per-sample columns (None where the run leaves the field to the defaults)."""

    count: int
    data_offset: int | None
    first_sample_flags: int | None
    durations: np.ndarray | None
    sizes: np.ndarray | None
    flags: np.ndarray | None
    composition_offsets: np.ndarray | None  # signed (version 1) or unsigned (version 0)


@dataclass(frozen=True, slots=True, eq=False)
class TrackFragment:
    """One traf: its tfhd fields, its tfdt decode time, and its runs."""

    track_id: int
    tfhd_flags: int
    base_data_offset: int | None = None
    sample_description_index: int | None = None
    default_duration: int | None = None
    default_size: int | None = None
    default_flags: int | None = None
    base_decode_time: int | None = None
    runs: list[TrackRun] = field(default_factory=list)


@dataclass(frozen=True, slots=True, eq=False)
class MovieFragment:
    sequence_number: int
    tracks: list[TrackFragment]


def _field(buf: bytes | memoryview, fmt: str, pos: int, end: int, box: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if pos + size > end:
        raise MediaError(f"{box}: truncated")
    return struct.unpack_from(fmt, buf, pos)


def parse_moof(buf: bytes | memoryview, moof: Box) -> MovieFragment:
    """A moof box (8.8.4): mfhd and every traf."""
    sequence_number = None
    tracks = []
    for child in iter_boxes(buf, moof.payload_start, moof.end, "moof"):
        if child.type == b"mfhd":
            full_box_header(buf, child)
            (sequence_number,) = _field(buf, ">I", child.payload_start + 4, child.end, "mfhd")
        elif child.type == b"traf":
            tracks.append(_parse_traf(buf, child))
    if sequence_number is None:
        raise MediaError("moof: no mfhd")
    return MovieFragment(sequence_number, tracks)


def _parse_traf(buf: bytes | memoryview, traf: Box) -> TrackFragment:
    children = list(iter_boxes(buf, traf.payload_start, traf.end, "traf"))
    tfhd = next((c for c in children if c.type == b"tfhd"), None)
    if tfhd is None:
        raise MediaError("traf: no tfhd")
    _, flags = full_box_header(buf, tfhd)
    pos = tfhd.payload_start + 4
    (track_id,) = _field(buf, ">I", pos, tfhd.end, "tfhd")
    pos += 4
    values: dict[str, int] = {}
    for flag, name, fmt in ((TFHD_BASE_DATA_OFFSET, "base_data_offset", ">Q"),
                            (TFHD_SAMPLE_DESCRIPTION_INDEX, "sample_description_index", ">I"),
                            (TFHD_DEFAULT_DURATION, "default_duration", ">I"),
                            (TFHD_DEFAULT_SIZE, "default_size", ">I"),
                            (TFHD_DEFAULT_FLAGS, "default_flags", ">I")):
        if flags & flag:
            (values[name],) = _field(buf, fmt, pos, tfhd.end, "tfhd")
            pos += struct.calcsize(fmt)
    base_decode_time = None
    runs = []
    for child in children:
        if child.type == b"tfdt":
            version, _ = full_box_header(buf, child)
            fmt = ">Q" if version == 1 else ">I"
            (base_decode_time,) = _field(buf, fmt, child.payload_start + 4, child.end, "tfdt")
        elif child.type == b"trun":
            runs.append(parse_trun(buf, child))
    return TrackFragment(track_id, flags, base_decode_time=base_decode_time, runs=runs, **values)


def parse_trun(buf: bytes | memoryview, trun: Box) -> TrackRun:
    """A TrackRunBox (8.8.8): optional data offset and first-sample flags, then a table whose
    columns are the ones its flags select."""
    version, flags = full_box_header(buf, trun)
    pos = trun.payload_start + 4
    (count,) = _field(buf, ">I", pos, trun.end, "trun")
    pos += 4
    data_offset = first_flags = None
    if flags & TRUN_DATA_OFFSET:
        (data_offset,) = _field(buf, ">i", pos, trun.end, "trun")
        pos += 4
    if flags & TRUN_FIRST_SAMPLE_FLAGS:
        (first_flags,) = _field(buf, ">I", pos, trun.end, "trun")
        pos += 4
    names = [name for flag, name in ((TRUN_DURATION, "d"), (TRUN_SIZE, "s"), (TRUN_FLAGS, "f"),
                                     (TRUN_COMPOSITION_OFFSET, "c")) if flags & flag]
    dtype = np.dtype([(n, ">i4" if n == "c" and version == 1 else ">u4") for n in names])
    if pos + count * dtype.itemsize > trun.end:
        raise MediaError(f"trun: {count} samples do not fit in the box")
    table = np.frombuffer(buf, dtype=dtype, count=count, offset=pos) if names else None

    def column(name: str) -> np.ndarray | None:
        return table[name].astype(np.int64) if table is not None and name in names else None

    return TrackRun(count, data_offset, first_flags, column("d"), column("s"), column("f"), column("c"))


@dataclass(frozen=True, slots=True)
class SegmentReference:
    reference_type: int  # 0: media, 1: another sidx
    referenced_size: int
    subsegment_duration: int
    starts_with_sap: bool
    sap_type: int
    sap_delta_time: int


@dataclass(frozen=True, slots=True)
class SegmentIndex:
    """A SegmentIndexBox (8.16.3)."""

    reference_id: int
    timescale: int
    earliest_presentation_time: int
    first_offset: int
    references: tuple[SegmentReference, ...]


def parse_sidx(buf: bytes | memoryview, sidx: Box) -> SegmentIndex:
    version, _ = full_box_header(buf, sidx)
    pos = sidx.payload_start + 4
    reference_id, timescale = _field(buf, ">II", pos, sidx.end, "sidx")
    pos += 8
    fmt = ">QQ" if version == 1 else ">II"
    earliest, first_offset = _field(buf, fmt, pos, sidx.end, "sidx")
    pos += struct.calcsize(fmt)
    _, count = _field(buf, ">HH", pos, sidx.end, "sidx")
    pos += 4
    references = []
    for _ in range(count):
        word, duration, sap = _field(buf, ">III", pos, sidx.end, "sidx")
        pos += 12
        references.append(SegmentReference(word >> 31, word & 0x7FFFFFFF, duration, bool(sap >> 31),
                                           (sap >> 28) & 0x7, sap & 0x0FFFFFFF))
    return SegmentIndex(reference_id, timescale, earliest, first_offset, tuple(references))
