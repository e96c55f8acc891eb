"""Box building by composition: a small function per box type (ISO/IEC 14496-12).

`box(b"moov", mvhd(...), trak(...))` - each function returns the bytes of one whole box.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import numpy as np

from vodorigin.media.languages import iso639_2

UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # 8.2.2.3


def box(box_type: bytes, *payloads: bytes) -> bytes:
    payload = b"".join(payloads)
    size = 8 + len(payload)
    if size > 0xFFFFFFFF:
        return struct.pack(">I4sQ", 1, box_type, size + 8) + payload  # 64-bit largesize
    return struct.pack(">I4s", size, box_type) + payload


def full_box(box_type: bytes, version: int, flags: int, *payloads: bytes) -> bytes:
    return box(box_type, struct.pack(">I", (version << 24) | flags), *payloads)


def ftyp(major: bytes = b"isom", minor: int = 512, compatible: tuple[bytes, ...] = (b"isom", b"iso2",
         b"avc1", b"mp41")) -> bytes:
    return box(b"ftyp", major, struct.pack(">I", minor), *compatible)


def mvhd(timescale: int, duration: int, next_track_id: int) -> bytes:
    """8.2.2; version 1 (64-bit times) so long durations fit."""
    return full_box(
        b"mvhd", 1, 0,
        struct.pack(">QQIQ", 0, 0, timescale, duration),
        struct.pack(">IH10x", 0x10000, 0x100),  # rate 1.0, volume 1.0, reserved
        UNITY_MATRIX, bytes(24),  # pre_defined
        struct.pack(">I", next_track_id),
    )


def next_track_id(track_ids: Iterable[int]) -> int:
    """mvhd next_track_ID (8.2.2.3): one more than the largest, or all ones ("search") when that
    would not fit in 32 bits."""
    return min(max(track_ids) + 1, 0xFFFFFFFF)


def tkhd(track_id: int, duration: int, width: int, height: int, audio: bool) -> bytes:
    """8.3.2; flags 3 = enabled, in movie."""
    return full_box(
        b"tkhd", 1, 3,
        struct.pack(">QQI4xQ8x", 0, 0, track_id, duration),
        struct.pack(">hhH2x", 0, 0, 0x100 if audio else 0),  # layer, alternate group, volume
        UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )


def elst(entries: list[tuple[int, int]]) -> bytes:
    """8.6.6: (segment_duration, media_time) pairs at rate 1; media_time -1 is an empty edit."""
    body = b"".join(struct.pack(">QqI", d, t, 0x10000) for d, t in entries)
    return box(b"edts", full_box(b"elst", 1, 0, struct.pack(">I", len(entries)), body))


def mdhd(timescale: int, duration: int, language: str) -> bytes:
    """8.4.2; the language (a BCP 47 tag) as three 5-bit letters of its ISO 639-2/T code."""
    letters = iso639_2(language).encode("latin-1")
    packed = ((letters[0] - 0x60) << 10) | ((letters[1] - 0x60) << 5) | (letters[2] - 0x60)
    return full_box(b"mdhd", 1, 0, struct.pack(">QQIQHH", 0, 0, timescale, duration, packed, 0))


def hdlr(handler: bytes, name: str) -> bytes:
    return full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, handler), name.encode() + b"\x00")


def media_header(audio: bool) -> bytes:
    """smhd (12.2.2) for sound, vmhd (12.1.2, flags 1) for video."""
    return full_box(b"smhd", 0, 0, bytes(4)) if audio else full_box(b"vmhd", 0, 1, bytes(8))


HANDLER_NAMES = {b"vide": "VideoHandler", b"soun": "SoundHandler", b"text": "TextHandler",
                 b"subt": "SubtitleHandler"}


def handler_and_header(handler: bytes) -> tuple[bytes, bytes]:
    """The hdlr box (8.4.3) of a handler type and the media header its minf needs: vmhd (12.1.2),
    smhd (12.2.2), nmhd for text (12.5.2: WebVTT, ISO/IEC 14496-30) or sthd for subtitles (12.6.2: TTML)."""
    headers = {b"vide": full_box(b"vmhd", 0, 1, bytes(8)), b"soun": full_box(b"smhd", 0, 0, bytes(4)),
               b"text": full_box(b"nmhd", 0, 0), b"subt": full_box(b"sthd", 0, 0)}
    return hdlr(handler, HANDLER_NAMES[handler]), headers[handler]


def dinf() -> bytes:
    """A data reference to this same file (8.7.2, url flags 1 = self-contained)."""
    return box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))


def stsd(*sample_entries: bytes) -> bytes:
    return full_box(b"stsd", 0, 0, struct.pack(">I", len(sample_entries)), *sample_entries)


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, values) of consecutive equal values."""
    if not len(values):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.concatenate(([0], np.nonzero(np.diff(values))[0] + 1))
    counts = np.diff(np.append(starts, len(values)))
    return counts, values[starts]


def _pairs_box(box_type: bytes, version: int, counts: np.ndarray, values: np.ndarray, dtype: str) -> bytes:
    table = np.empty((len(counts), 2), dtype=dtype)
    table[:, 0] = counts
    table[:, 1] = values
    return full_box(box_type, version, 0, struct.pack(">I", len(counts)), table.tobytes())


def stts(durations: np.ndarray) -> bytes:
    return _pairs_box(b"stts", 0, *run_lengths(durations), ">u4")


def ctts(offsets: np.ndarray) -> bytes:
    """Version 1: signed composition offsets (8.6.1.3)."""
    return _pairs_box(b"ctts", 1, *run_lengths(offsets), ">i4")


def stss(sync_numbers: np.ndarray) -> bytes:
    """Sync samples, numbered from 1."""
    return full_box(b"stss", 0, 0, struct.pack(">I", len(sync_numbers)), sync_numbers.astype(">u4").tobytes())


def stsz(sizes: np.ndarray) -> bytes:
    return full_box(b"stsz", 0, 0, struct.pack(">II", 0, len(sizes)), sizes.astype(">u4").tobytes())


def stsc_one_sample_per_chunk() -> bytes:
    return full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1))


def chunk_offsets(offsets: np.ndarray) -> bytes:
    """stco, or co64 when an offset needs more than 32 bits."""
    if len(offsets) and int(offsets.max()) > 0xFFFFFFFF:
        return full_box(b"co64", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u8").tobytes())
    return full_box(b"stco", 0, 0, struct.pack(">I", len(offsets)), offsets.astype(">u4").tobytes())


def mdat_header(payload_size: int) -> bytes:
    if payload_size + 8 > 0xFFFFFFFF:
        return struct.pack(">I4sQ", 1, b"mdat", payload_size + 16)
    return struct.pack(">I4s", payload_size + 8, b"mdat")
