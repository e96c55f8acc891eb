"""An MP4's sample tables (ISO/IEC 14496-12 8.6 and 8.7) -> media/samples.SampleTable.

Parsed with numpy.frombuffer over big-endian dtypes: no Python object per sample, and the per-sample
and per-chunk tables (stsz, stco/co64, stsc) are kept as views into the moov rather than copied:
a 2-hour title's moov of 6 MB is parsed without allocating a column of its size. Entry counts are
checked against the box size, and claimed sample counts against the file's budget and size, before
anything is allocated. What only segments need waits until one is asked for (DeferredChunks): the
numbering of stsc's runs, and the checks that every sample lies inside the file and under
max_frame_size, which pass over stsz, stsc and stco, most of the moov.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.media.samples import ChunkMap, DecodeTimes, DeferredChunks, SampleTable, unread_chunks
from vodorigin.mp4 import tables_kernel

U32 = np.dtype(">u4")
I32 = np.dtype(">i4")
U64 = np.dtype(">u8")
Buffer = bytes | memoryview  # views into the moov


@dataclass(frozen=True, slots=True)
class RawTables:
    """The stbl children's payloads (after the full-box header), as found in the file."""

    stts: Buffer
    stsz: Buffer
    stsc: Buffer
    chunk_offsets: Buffer
    chunk_offsets_64bit: bool
    ctts: Buffer | None = None
    ctts_version: int = 0
    stss: Buffer | None = None
    compact_sizes: bool = False  # stz2 instead of stsz


def _entries(payload: Buffer, header: int, entry_size: int, name: str) -> tuple[int, memoryview]:
    """Entry count and the entries' bytes, checked against the payload length before any allocation."""
    if len(payload) < header:
        raise MediaError(f"{name}: truncated")
    count = struct.unpack_from(">I", payload, header - 4)[0]
    if count * entry_size > len(payload) - header:
        raise MediaError(f"{name}: {count} entries do not fit in {len(payload)} bytes")
    return count, memoryview(payload)[header : header + count * entry_size]


def _pairs(payload: Buffer, name: str, dtype: np.dtype = U32) -> tuple[np.ndarray, np.ndarray]:
    count, data = _entries(payload, 4, 8, name)
    table = np.frombuffer(data, dtype=dtype).reshape(count, 2)
    return table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)


def _check_described(counts: np.ndarray, total: int, name: str) -> None:
    if int(counts.sum()) != total:
        raise MediaError(f"{name}: describes {int(counts.sum())} samples, the track has {total}")


def _run_lengths(counts: np.ndarray, values: np.ndarray, total: int, name: str) -> np.ndarray:
    _check_described(counts, total, name)
    return np.repeat(values, counts)


@dataclass(frozen=True, slots=True)
class TableBounds:
    """What a track's tables may claim: at most `max_samples` samples (the limit named `limit`),
    none larger than max_frame_size, all of whose bytes lie inside a file of `file_size` bytes."""

    max_samples: int
    limit: str
    file_size: int
    max_frame_size: int = 2**63

    def check_count(self, count: int, box: str) -> None:
        if count > self.max_samples:
            raise LimitExceeded(f"{box}: {count} samples exceed {self.limit} ({self.max_samples})")


def parse_sample_sizes(raw: RawTables, bounds: TableBounds) -> np.ndarray:
    """stsz (8.7.3.2) or stz2 (8.7.3.3) -> unsigned size per sample (stsz's table: a view of it).

    Counts are checked before anything is allocated: against the bounds, and for a constant size
    (no table in the file) against the file's size, since every sample's bytes must be in the file.
    """
    payload = raw.stsz
    if len(payload) < 8:
        raise MediaError("stsz: truncated")
    if raw.compact_sizes:
        field_size = payload[3]
        count = struct.unpack_from(">I", payload, 4)[0]
        bounds.check_count(count, "stz2")
        if field_size not in (4, 8, 16) or (count * field_size + 7) // 8 > len(payload) - 8:
            raise MediaError(f"stz2: bad field size {field_size} or truncated")
        data = np.frombuffer(payload, dtype=np.uint8, offset=8, count=(count * field_size + 7) // 8)
        if field_size == 16:
            return data.view(">u2")[:count].astype(np.uint32)
        if field_size == 8:
            return data[:count].astype(np.uint32)
        nibbles = np.stack([data >> 4, data & 0x0F], axis=1).reshape(-1)
        return nibbles[:count].astype(np.uint32)
    uniform, count = struct.unpack_from(">II", payload, 0)
    bounds.check_count(count, "stsz")
    if uniform:
        if count * uniform > bounds.file_size:
            raise MediaError(f"stsz: {count} samples of {uniform} bytes do not fit in a file of "
                             f"{bounds.file_size} bytes")
        return np.full(count, uniform, dtype=np.uint32)
    _, entries = _entries(payload, 8, 4, "stsz")
    return np.frombuffer(entries, dtype=U32)


def parse_sample_table(raw: RawTables, bounds: TableBounds, context: str = "", timing_only: bool = False
                       ) -> SampleTable:
    """All of a track's tables -> SampleTable. Counts that disagree raise MediaError. The chunk
    map is derived when first asked for (DeferredChunks, whose failures `context` opens): it raises
    MediaError for runs of chunks that do not hold the track's samples, and for samples whose bytes
    would lie outside the file (a truncated upload, hostile offsets), LimitExceeded for a frame
    over max_frame_size. `timing_only`: stsz, stsc and stco/co64 hold zeros past their counts
    (a skeleton: mp4/skeleton.py), and asking where samples are is refused (unread_chunks)."""
    sizes = parse_sample_sizes(raw, bounds)
    count = len(sizes)
    decode_times = _decode_times(raw, count)
    ctts = None
    if raw.ctts is not None:
        ctts_counts, ctts_values = _pairs(raw.ctts, "ctts", I32 if raw.ctts_version else U32)
        if int(ctts_counts.sum()) == count and ctts_values.any():
            ctts = _run_lengths(ctts_counts, ctts_values, count, "ctts")
    sync = None
    if raw.stss is not None:
        n, data = _entries(raw.stss, 4, 4, "stss")
        sync = np.frombuffer(data, dtype=U32).astype(np.int64) - 1  # stss numbers samples from 1
        if n and (sync[0] < 0 or sync[-1] >= count or (sync[1:] <= sync[:-1]).any()):
            raise MediaError("stss: sample numbers out of range or not increasing")
    width = 8 if raw.chunk_offsets_64bit else 4
    n_chunks, offsets = _entries(raw.chunk_offsets, 4, width, "stco")
    n_runs, runs = _entries(raw.stsc, 4, 12, "stsc")
    tables = _ChunkTables(np.frombuffer(offsets, dtype=U64 if width == 8 else U32), runs, n_runs, n_chunks)
    located = unread_chunks(8 * n_runs) if timing_only else \
        DeferredChunks(lambda: _located(tables, sizes, bounds), 8 * n_runs, context)
    return SampleTable(decode_times, ctts, sizes, sync, located)


@dataclass(frozen=True, slots=True)
class _ChunkTables:
    """stco/co64's offsets (a view) and stsc's runs (their bytes), counted against their boxes."""

    offsets: np.ndarray
    runs: memoryview
    n_runs: int
    n_chunks: int


def _located(tables: _ChunkTables, sizes: np.ndarray, bounds: TableBounds) -> ChunkMap:
    """The chunk map, once the samples are checked to lie inside the file and under the frame
    size limit."""
    chunks, most_per_chunk = _chunk_map(tables, len(sizes))
    largest = int(sizes.max()) if len(sizes) else 0
    if largest > bounds.max_frame_size:
        raise LimitExceeded("a frame is larger than max_frame_size")
    _check_inside_file(chunks, sizes, largest, most_per_chunk, bounds.file_size)
    return chunks


def _decode_times(raw: RawTables, count: int) -> DecodeTimes:
    """stts (8.6.1.2) -> its runs with the first sample and decode time of each, describing
    exactly the track's `count` samples."""
    counts, deltas = _pairs(raw.stts, "stts")
    _check_described(counts, count, "stts")
    durations = counts * deltas  # each count is at most `count`: no overflow
    first_sample = np.cumsum(counts) - counts
    first_time = np.cumsum(durations) - durations
    return DecodeTimes(counts, deltas, first_sample, first_time, int(durations.sum()))


def _check_inside_file(chunks: ChunkMap, sizes: np.ndarray, largest: int, most_per_chunk: int,
                       file_size: int) -> None:
    """Every chunk's samples end inside the file (8.7.4, 8.7.5), checked once for the whole track;
    `largest` is the largest sample, `most_per_chunk` the most samples a chunk holds.

    A chunk of at most k samples of at most m bytes ends within k * m bytes of its offset, so only
    chunks that start within k * m bytes of the end of the file can end past it; their ends are
    summed exactly. In an ordinary file those are the last few chunks, so the check costs one
    comparison per chunk instead of a running sum over every sample.
    """
    count = len(sizes)
    if not count:
        return
    reach = most_per_chunk * largest  # bytes a chunk may span at most
    near_end = np.flatnonzero(chunks.offsets >= max(file_size - reach + 1, 0))
    if not len(near_end):
        return
    # The run of each of those chunks: the last whose first chunk is at or before it. Runs start
    # at distinct chunks in order (checked), so at most n_chunks - 1 - c runs follow chunk c's:
    # only the runs from `lo` on are searched, the last few in an ordinary file.
    lo = max(len(chunks.first_chunk) - len(chunks.offsets) + int(near_end[0]), 0)
    first_chunks = chunks.first_chunk[lo:].astype(np.int64) - 1  # numbered from 0
    within = np.searchsorted(first_chunks, near_end, side="right") - 1
    held = chunks.per_chunk[lo + within].astype(np.int64)
    first = chunks.first_sample[lo + within] + (near_end - first_chunks[within]) * held
    first = np.minimum(first, count)
    last = np.minimum(first + held, count)
    holding = last > first
    if not holding.any():
        return
    first, last = first[holding], last[holding]
    offsets = chunks.offsets[near_end[holding]].astype(np.uint64)
    lo = int(first.min())
    running = np.concatenate(([0], np.cumsum(sizes[lo : int(last.max())], dtype=np.int64)))
    spans = running[last - lo] - running[first - lo]
    beyond = (offsets > file_size) | (offsets + spans.astype(np.uint64) > file_size)  # the first: no wrap
    if beyond.any():
        worst = max(map(sum, zip(offsets[beyond].tolist(), spans[beyond].tolist(), strict=True)))
        raise MediaError(f"sample data runs to byte {worst}, past the end of the file ({file_size} bytes): "
                         "a truncated upload or corrupt chunk offsets")


def _chunk_map(tables: _ChunkTables, count: int) -> tuple[ChunkMap, int]:
    """stsc (8.7.4) + stco/co64 (8.7.5) -> the chunks' offsets and stsc's runs, checked: runs
    numbered in order inside the chunk table, holding at least the track's `count` samples; and
    the largest samples-per-chunk.

    Only the runs' first samples are computed (one int64 column); the runs and offsets stay the
    file's. Each run holds (chunks in it) x (samples per chunk < 2^32), and the chunks of all runs
    are at most the n_chunks of stco (under a quarter of the moov's bytes, max_moov_size <= 4 GiB),
    so the running sum stays below 2^62. The compiled pass (tables_kernel.py) when it is built,
    else numpy's (_run_starts): the same results and refusals.
    """
    offsets, runs, n_runs, n_chunks = tables.offsets, tables.runs, tables.n_runs, tables.n_chunks
    table = np.frombuffer(runs, dtype=U32).reshape(n_runs, 3)
    first_chunk, per_chunk = table[:, 0], table[:, 1]
    if not count:  # a track without samples is skipped: nothing of it is ever located
        return ChunkMap(offsets, first_chunk, per_chunk, np.zeros(n_runs, dtype=np.int64)), 0
    if not n_runs:
        raise MediaError("stsc/stco: chunks hold fewer samples than the track has")
    if tables_kernel.available() and n_chunks < tables_kernel.MAX_CHUNKS:
        found = tables_kernel.stsc_first_samples(runs, n_runs, n_chunks)
    else:
        found = _run_starts(first_chunk, per_chunk, n_chunks)
    if found is None:
        raise MediaError("stsc: chunk numbers out of range or not increasing")
    first_sample, largest = found
    if int(first_sample[-1]) + (n_chunks + 1 - int(first_chunk[-1])) * int(per_chunk[-1]) < count:
        raise MediaError("stsc/stco: chunks hold fewer samples than the track has")
    return ChunkMap(offsets, first_chunk, per_chunk, first_sample), largest


def _run_starts(first_chunk: np.ndarray, per_chunk: np.ndarray, n_chunks: int
                ) -> tuple[np.ndarray, int] | None:
    """Each of the (one or more) runs' first sample and the largest samples-per-chunk, or None
    when the runs are not numbered in order from chunk 1 to at most n_chunks."""
    first_sample = np.zeros(len(first_chunk), dtype=np.int64)
    # each run's samples but the last's, one place on: a running sum in place then gives each
    # run's first sample
    held = first_sample[1:]
    np.subtract(first_chunk[1:], first_chunk[:-1], out=held, dtype=np.int64)  # chunks in each run
    if first_chunk[0] != 1 or first_chunk[-1] > n_chunks or (len(held) and int(held.min()) <= 0):
        return None
    np.multiply(held, per_chunk[:-1], out=held, dtype=np.int64)
    np.cumsum(held, out=held)
    return first_sample, int(per_chunk.max())
