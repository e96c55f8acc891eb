"""Sample tables as numpy columns: the per-sample timing, sizes and places of one track.

Sizes, chunk offsets and stsc's runs are the file's own tables, read in place (big-endian views
into the moov, which the movie keeps): parsing a moov copies none of them. Decode times are
expanded per sample when a segment first needs them (a manifest needs only the key frames',
computed from stts's runs); file offsets never: `offsets(start, stop)` computes them for one range
of samples from the chunk tables (ISO/IEC 14496-12 8.7.4, 8.7.5), so a manifest never pays for
them. Nor for the chunk map itself: stsc's runs are numbered, and the samples checked to lie in the
file, when a request first needs to know where samples are (DeferredChunks). mp4/tables.py fills
these from an MP4's boxes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vodorigin.errors import MediaError, VodError


def owned_nbytes(array: np.ndarray | None) -> int:
    """The bytes an array holds of its own: 0 for a view into the bytes of a file's moov (counted
    once, with the movie: Movie.moov_bytes)."""
    if array is None:
        return 0
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return int(array.nbytes) if root.base is None else 0


@dataclass(frozen=True, slots=True, eq=False)
class ChunkMap:
    """Where samples live, as the file says it: the stco/co64 offset of every chunk (8.7.5) and
    stsc's runs of chunks that hold the same number of samples (8.7.4), with the first sample of
    each run. Not expanded per chunk or per sample: a manifest never needs where samples are, and a
    segment locates only its own (SampleTable.offsets).

    The file's columns are kept as it stores them (big-endian views into the moov, read as they
    are indexed); only first_sample, which is searched, is computed (native int64).
    """

    offsets: np.ndarray  # unsigned, one per chunk
    first_chunk: np.ndarray  # unsigned per run: the number of its first chunk, from 1 (stsc's numbering)
    per_chunk: np.ndarray  # unsigned per run: samples in each of its chunks
    first_sample: np.ndarray  # int64 per run: index of its first sample

    @property
    def nbytes(self) -> int:
        columns = (self.offsets, self.first_chunk, self.per_chunk, self.first_sample)
        return sum(owned_nbytes(a) for a in columns)

    def chunk_of(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chunk index from 0, index of that chunk's first sample) of each sample index, all of
        them below the samples the runs hold. The run found holds the sample, so it holds at least
        one sample per chunk (runs of empty chunks share their first sample with the next run, and
        side="right" passes over them)."""
        return self._in_runs(samples, np.searchsorted(self.first_sample, samples, side="right") - 1)

    def chunk_of_range(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """chunk_of(np.arange(start, stop)) for start < stop, searching only the runs that hold
        samples start..stop - 1 (a segment's few among the file's thousands)."""
        first_sample = self.first_sample
        lo = int(first_sample.searchsorted(start, side="right")) - 1  # the run of `start`
        hi = int(first_sample.searchsorted(stop - 1, side="right"))  # past the run of `stop - 1`
        samples = np.arange(start, stop, dtype=np.int64)
        return self._in_runs(samples, first_sample[lo:hi].searchsorted(samples, side="right") + (lo - 1))

    def _in_runs(self, samples: np.ndarray, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """chunk_of, given the run holding each sample."""
        per_chunk = self.per_chunk[run].astype(np.int64)
        into_run = (samples - self.first_sample[run]) // per_chunk
        return (self.first_chunk[run].astype(np.int64) - 1 + into_run,
                self.first_sample[run] + into_run * per_chunk)


class DeferredChunks:
    """A track's ChunkMap, derived when a request first needs where its samples are. Deriving it
    numbers stsc's runs and checks that every sample lies in the file and under the frame-size
    limit: passes over stsc, stco and stsz, nearly all of a long title's moov, which no manifest
    needs. A failure is kept, and raised again (as a new exception) whenever the map is asked for.

    `context` opens the message of a failure ("<path>: track <id>"), as a failure while parsing
    the moov is told; nbytes is what the map owns once derived (Movie's cache weight).
    """

    __slots__ = ("_derive", "_chunks", "_error", "context", "nbytes")

    def __init__(self, derive: Callable[[], ChunkMap], nbytes: int, context: str = "") -> None:
        self._derive = derive
        self._chunks: ChunkMap | None = None
        self._error: VodError | None = None
        self.context = context
        self.nbytes = nbytes

    @property
    def derived(self) -> bool:
        return self._chunks is not None

    def get(self) -> ChunkMap:
        if self._chunks is None:
            if self._error is None:
                try:
                    self._chunks = self._derive()
                except VodError as error:
                    self._error = self._told(type(error), error.message)
                except (struct.error, IndexError, ValueError, OverflowError) as error:
                    self._error = self._told(MediaError, f"corrupt sample tables ({error})")
            if self._error is not None:
                raise type(self._error)(self._error.message)
        assert self._chunks is not None
        return self._chunks

    def _told(self, kind: type[VodError], message: str) -> VodError:
        return kind(f"{self.context}: {message}" if self.context else message)


@dataclass(frozen=True, slots=True, eq=False)
class DecodeTimes:
    """stts (8.6.1.2) as the file says it: runs of samples of the same duration, with the first
    sample and the decode time of each run. A manifest needs the times of the key frames only
    (at()); a segmenter's per-sample column is expanded once, when first asked for."""

    counts: np.ndarray  # int64 per run: its samples
    deltas: np.ndarray  # int64 per run: the duration of each of its samples
    first_sample: np.ndarray  # int64 per run: index of its first sample
    first_time: np.ndarray  # int64 per run: decode time of its first sample
    end: int  # decode time just after the last sample

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self.counts, self.deltas, self.first_sample, self.first_time))

    def at(self, samples: np.ndarray) -> np.ndarray:
        """Decode times of the given sample indexes (runs of no samples are passed over, as in
        ChunkMap.chunk_of)."""
        if len(self.deltas) == 1:  # every sample of one duration: one run, from sample 0 at time 0
            return samples * self.deltas[0]
        run = np.searchsorted(self.first_sample, samples, side="right") - 1
        return self.first_time[run] + (samples - self.first_sample[run]) * self.deltas[run]

    def longest(self, start: int, stop: int) -> int:
        """The longest duration among samples [start, stop): each lasts its run's delta (the last
        one too: the track ends one delta after it)."""
        if stop <= start:
            return 0
        lo, hi = np.searchsorted(self.first_sample, [start, stop - 1], side="right") - 1
        held = self.counts[lo : hi + 1] > 0
        return int(self.deltas[lo : hi + 1][held].max()) if held.any() else 0

    def median_duration(self) -> float:
        """The median of the samples' durations (numpy.median of the per-sample column), from the
        runs: their deltas in order, weighted by their counts."""
        total = int(self.counts.sum())
        if not total:
            return 0.0
        order = np.argsort(self.deltas, kind="stable")
        ends = np.cumsum(self.counts[order])  # sorted samples [0, ends[0]) take the smallest delta...
        low, high = self.deltas[order][np.searchsorted(ends, [(total - 1) // 2, total // 2], side="right")]
        return (float(low) + float(high)) / 2

    def expand(self) -> np.ndarray:
        """Decode times of every sample."""
        deltas = np.repeat(self.deltas, self.counts)
        return np.cumsum(deltas) - deltas


@dataclass(frozen=True, slots=True, eq=False)
class SampleTable:
    """Per-sample columns of one track (decode times expanded on first use: dts)."""

    decode_times: DecodeTimes
    composition_offsets: np.ndarray | None  # int64 ctts offsets, None when all zero
    sizes: np.ndarray  # unsigned (a big-endian view into the moov when the file has a stsz table)
    sync: np.ndarray | None  # int64 indexes of sync samples, None when every sample is sync
    located: ChunkMap | DeferredChunks  # where the samples are (chunks), or how to find out
    _expanded: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    @property
    def count(self) -> int:
        return len(self.sizes)

    @property
    def chunks(self) -> ChunkMap:
        """The chunk map (derived on first use when it is deferred: MediaError if it is corrupt)."""
        located = self.located
        return located if isinstance(located, ChunkMap) else located.get()

    @property
    def dts(self) -> np.ndarray:
        """int64 decode times of every sample, in track ticks."""
        dts = self._expanded.get("dts")
        if dts is None:
            dts = self._expanded["dts"] = self.decode_times.expand()
        return dts

    @property
    def end_dts(self) -> int:
        """Decode time just after the last sample."""
        return self.decode_times.end

    def dts_at(self, indexes: np.ndarray) -> np.ndarray:
        """Decode times of some samples, without expanding the column when it is not yet."""
        dts = self._expanded.get("dts")
        return dts[indexes] if dts is not None else self.decode_times.at(indexes)

    @property
    def nbytes(self) -> int:
        """Counting the decode times as expanded and the chunk map as derived, as they will be once a
        segment is asked for."""
        columns = (self.composition_offsets, self.sizes, self.sync)
        expanded = self.count * 8 + self.decode_times.nbytes
        return sum(owned_nbytes(c) for c in columns) + expanded + self.located.nbytes

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
        walk_from = int(chunks.chunk_of_range(start, start + 1)[1][0])
        chunk, chunk_start = chunks.chunk_of_range(walk_from, stop)
        sizes = self.sizes[walk_from:stop].astype(np.int64)
        before = np.cumsum(sizes) - sizes  # bytes of the walk before each sample
        within = before - before[chunk_start - walk_from]
        return (chunks.offsets[chunk].astype(np.int64) + within)[start - walk_from :]


def unread_chunks(nbytes: int) -> DeferredChunks:
    """The `located` of a table whose sizes and chunk tables were not read (mp4/skeleton.py):
    asking where its samples are is a bug in the caller, an error (a 500), never wrong media."""
    def refuse() -> ChunkMap:
        raise RuntimeError("where samples are was asked of a movie read for its timing only")

    return DeferredChunks(refuse, nbytes)


def empty_table() -> SampleTable:
    """The table of a track with no samples in a file (a sidecar subtitle file's cue track)."""
    none = np.zeros(0, dtype=np.int64)
    chunks = ChunkMap(none.astype(np.uint64), none, none, none)
    times = DecodeTimes(none, none, none, none, 0)
    return SampleTable(times, None, np.zeros(0, dtype=np.uint32), None, chunks)
