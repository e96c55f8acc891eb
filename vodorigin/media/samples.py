"""Sample tables as numpy columns: the per-sample timing, sizes and places of one track.

Decode times and sizes are expanded per sample (a segmenter needs them); file offsets are not:
`offsets(start, stop)` computes them for one range of samples from the chunk tables
(ISO/IEC 14496-12 8.7.4, 8.7.5), so a manifest never pays for them. mp4/tables.py fills these
from an MP4's boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class ChunkMap:
    """Where samples live, as the file says it: the stco/co64 offset of every chunk (8.7.5) and
    stsc's runs of chunks that hold the same number of samples (8.7.4), with the first sample of
    each run. Not expanded per chunk or per sample: a manifest never needs where samples are, and a
    segment locates only its own (SampleTable.offsets)."""

    offsets: np.ndarray  # uint64, one per chunk
    first_chunk: np.ndarray  # int64 per run: index of its first chunk, increasing from 0
    per_chunk: np.ndarray  # int64 per run: samples in each of its chunks
    first_sample: np.ndarray  # int64 per run: index of its first sample

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.first_chunk.nbytes + self.per_chunk.nbytes
                   + self.first_sample.nbytes)

    def chunk_of(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk index, index of that chunk's first sample) of each sample index, all of them
        below the samples the runs hold. The run found holds the sample, so it holds at least one
        sample per chunk (runs of empty chunks share their first sample with the next run, and
        side="right" passes over them)."""
        run = np.searchsorted(self.first_sample, samples, side="right") - 1
        per_chunk = self.per_chunk[run]
        into_run = (samples - self.first_sample[run]) // per_chunk
        return self.first_chunk[run] + into_run, self.first_sample[run] + into_run * per_chunk

    def samples_of(self, chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of the first sample, samples held) of each chunk index."""
        run = np.searchsorted(self.first_chunk, chunks, side="right") - 1
        per_chunk = self.per_chunk[run]
        return self.first_sample[run] + (chunks - self.first_chunk[run]) * per_chunk, per_chunk


@dataclass(frozen=True, slots=True, eq=False)
class SampleTable:
    """Per-sample columns of one track."""

    dts: np.ndarray  # int64 decode times, track ticks
    end_dts: int  # decode time just after the last sample
    composition_offsets: np.ndarray | None  # int64 ctts offsets, None when all zero
    sizes: np.ndarray  # uint32
    sync: np.ndarray | None  # int64 indexes of sync samples, None when every sample is sync
    chunks: ChunkMap

    @property
    def count(self) -> int:
        return len(self.dts)

    @property
    def nbytes(self) -> int:
        columns = (self.dts, self.composition_offsets, self.sizes, self.sync)
        return sum(c.nbytes for c in columns if c is not None) + self.chunks.nbytes

    def pts(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Presentation times (before edit lists) of samples [start, stop)."""
        dts = self.dts[start:stop]
        if self.composition_offsets is None:
            return dts
        return dts + self.composition_offsets[start:stop]

    def sync_indexes(self) -> np.ndarray:
        return np.arange(self.count, dtype=np.int64) if self.sync is None else self.sync

    def is_sync(self, start: int, stop: int) -> np.ndarray:
        """Boolean sync flags of samples [start, stop)."""
        if self.sync is None:
            return np.ones(stop - start, dtype=bool)
        flags = np.zeros(stop - start, dtype=bool)
        lo, hi = np.searchsorted(self.sync, [start, stop])
        flags[self.sync[lo:hi] - start] = True
        return flags

    def offsets(self, start: int, stop: int) -> np.ndarray:
        """File offsets of samples [start, stop), from the chunk tables.

        Walks from the first sample of the chunk holding `start`: a sample's offset is its chunk's
        offset plus the sizes of the samples before it in that chunk (8.7.4, 8.7.5).
        """
        if stop <= start:
            return np.zeros(0, dtype=np.int64)
        chunks = self.chunks
        walk_from = int(chunks.chunk_of(np.array([start], dtype=np.int64))[1][0])
        chunk, chunk_start = chunks.chunk_of(np.arange(walk_from, stop, dtype=np.int64))
        sizes = self.sizes[walk_from:stop].astype(np.int64)
        before = np.cumsum(sizes) - sizes  # bytes of the walk before each sample
        within = before - before[chunk_start - walk_from]
        return (chunks.offsets[chunk].astype(np.int64) + within)[start - walk_from :]


def empty_table() -> SampleTable:
    """The table of a track with no samples in a file (a sidecar subtitle file's cue track)."""
    none = np.zeros(0, dtype=np.int64)
    chunks = ChunkMap(none.astype(np.uint64), none, none, none)
    return SampleTable(none, 0, None, np.zeros(0, dtype=np.uint32), None, chunks)
