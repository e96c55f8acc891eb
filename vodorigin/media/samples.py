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
    """Where samples live: stco/co64 offsets with the first sample of each chunk (from stsc)."""

    offsets: np.ndarray  # uint64, one per chunk
    first_sample: np.ndarray  # int64, index of each chunk's first sample

    @property
    def nbytes(self) -> int:
        return int(self.offsets.nbytes + self.first_sample.nbytes)


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
        walk_from = int(chunks.first_sample[np.searchsorted(chunks.first_sample, start, side="right") - 1])
        sizes = self.sizes[walk_from:stop].astype(np.int64)
        chunk_of = np.searchsorted(chunks.first_sample, np.arange(walk_from, stop), side="right") - 1
        before = np.cumsum(sizes) - sizes  # bytes of the walk before each sample
        within = before - before[chunks.first_sample[chunk_of] - walk_from]
        return (chunks.offsets[chunk_of].astype(np.int64) + within)[start - walk_from :]


def empty_table() -> SampleTable:
    """The table of a track with no samples in a file (a sidecar subtitle file's cue track)."""
    none = np.zeros(0, dtype=np.int64)
    chunks = ChunkMap(none.astype(np.uint64), none)
    return SampleTable(none, 0, None, np.zeros(0, dtype=np.uint32), None, chunks)
