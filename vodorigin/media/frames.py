"""One segment's frames: which samples of each track, their times, and the bytes to read.

Only here are per-sample offsets expanded, and only for the samples of one segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.media.model import Track, memoized
from vodorigin.media.samples import SampleTable
from vodorigin.media.segmenter import Timeline
from vodorigin.timing import rescale, rescale_array


@dataclass(frozen=True, slots=True, eq=False)
class TrackFrames:
    """The frames of one track in one segment. Times are ticks of the track, from the timeline start."""

    track: Track
    first: int  # index of the first sample in the track
    dts: np.ndarray  # int64
    pts: np.ndarray  # int64
    durations: np.ndarray  # int64
    sizes: np.ndarray  # int64
    offsets: np.ndarray  # int64 file offsets
    sync: np.ndarray  # bool

    @property
    def count(self) -> int:
        return len(self.sizes)

    def part(self, start: int, stop: int) -> TrackFrames:
        """Frames start..stop of these (indexes relative to `first`)."""
        return TrackFrames(self.track, self.first + start, self.dts[start:stop], self.pts[start:stop],
                           self.durations[start:stop], self.sizes[start:stop], self.offsets[start:stop],
                           self.sync[start:stop])


def sample_indexes_at(track: Track, times: np.ndarray, timeline: Timeline) -> np.ndarray:
    """Index of the first sample of `track` in a segment starting at each of `times` (timeline ticks).

    Video is cut on its sync samples (the reference track's cuts are its own key frames); other
    tracks, and a clipTo end, at the first sample whose decode time is at or after the cut (video
    at a key frame there when one comes first in decode order, so that a clip ending on a key frame
    holds exactly the frames shown before it). The
    timeline's start (when not clipped) and its open end take every sample, audio priming and
    trailing frames included. At a clipped end, audio keeps only the frames that end by it, so
    that a clip never outlasts its end (the next clip of a playlist starts there).
    """
    samples = track.samples
    times = np.asarray(times, dtype=np.int64)
    presentation = rescale_array(times, timeline.timescale, track.timescale)
    by_decode_time = np.searchsorted(samples.dts, presentation - track.edit_shift, side="left")
    if track.key_times is not None:  # video
        positions = np.searchsorted(track.key_times, presentation, side="left")
        by_key_frame = np.append(samples.sync_indexes(), samples.count)[positions]
        indexes = np.where(times < timeline.end, by_key_frame, np.minimum(by_key_frame, by_decode_time))
    else:
        indexes = by_decode_time
    indexes = np.where(times <= 0, 0, indexes)
    if timeline.open_end:
        indexes = np.where(times >= timeline.end, samples.count, indexes)
    elif track.key_times is None:
        end = rescale(timeline.end, timeline.timescale, track.timescale) - track.edit_shift
        indexes = np.where(times >= timeline.end, _ending_by(samples, end), indexes)
    return indexes.astype(np.int64)


def _ending_by(samples: SampleTable, limit: int) -> int:
    """How many samples end at or before decode time `limit` (sample i ends where i + 1 starts)."""
    starting_by = int(np.searchsorted(samples.dts, limit, side="right"))
    if starting_by == samples.count and samples.end_dts <= limit:
        return starting_by
    return max(starting_by - 1, 0)


def sample_index_at(track: Track, time: int, timeline: Timeline) -> int:
    """sample_indexes_at for one time."""
    return int(sample_indexes_at(track, np.array([time]), timeline)[0])


def cut_indexes(track: Track, timeline: Timeline) -> np.ndarray:
    """The first sample index of every segment of the timeline, plus the end (len = count + 1);
    derived once per track and timeline (model.memoized), read-only."""
    def derive() -> np.ndarray:
        indexes = np.maximum.accumulate(sample_indexes_at(track, timeline.cuts, timeline))
        indexes.flags.writeable = False
        return indexes

    return memoized(track.memo, timeline, derive)


def segment_frames(track: Track, timeline: Timeline, number: int, max_frames: int) -> TrackFrames:
    """The frames of `track` in segment `number` (1-based): samples cut_indexes[n - 1] to cut_indexes[n]."""
    timeline.segment(number)  # validates the number
    cuts = cut_indexes(track, timeline)
    return frames_by_index(track, timeline, int(cuts[number - 1]), int(cuts[number]), max_frames)


def frames_between(track: Track, timeline: Timeline, start_time: int, end_time: int, max_frames: int
                   ) -> TrackFrames:
    """The frames of `track` cut at start_time and end_time (timeline ticks): a whole clip."""
    first = sample_index_at(track, start_time, timeline)
    last = max(sample_index_at(track, end_time, timeline), first)
    return frames_by_index(track, timeline, first, last, max_frames)


def frames_by_index(track: Track, timeline: Timeline, first: int, last: int, max_frames: int,
                    located: bool = True) -> TrackFrames:
    """Samples first..last of `track`, with times counted from the timeline's start. Not `located`,
    their file offsets are -1: frames only measured, never read (the sizes of I-frames)."""
    if last - first > max_frames:
        raise LimitExceeded(f"{track.key}: {last - first} frames between two cuts (max {max_frames})")
    samples = track.samples
    all_dts = samples.dts
    dts = all_dts[first:last]
    if last < samples.count:  # each frame lasts until the next one starts, the last until the track ends
        durations = all_dts[first + 1 : last + 1] - dts
    else:
        durations = np.diff(dts, append=samples.end_dts)
    origin = rescale(timeline.zero, timeline.timescale, track.timescale) - track.edit_shift
    return TrackFrames(
        track=track,
        first=first,
        dts=dts - origin,
        pts=samples.pts(first, last) - origin,
        durations=durations,
        sizes=samples.sizes[first:last].astype(np.int64),
        offsets=samples.offsets(first, last) if located else np.broadcast_to(np.int64(-1), (last - first,)),
        sync=samples.is_sync(first, last),
    )


@dataclass(frozen=True, slots=True)
class ByteRange:
    offset: int
    length: int


def merged_ranges(frames: list[TrackFrames], merge_gap: int) -> list[ByteRange]:
    """The file ranges holding all the frames, merging neighbours closer than merge_gap bytes."""
    offsets = np.concatenate([f.offsets for f in frames]) if frames else np.zeros(0, np.int64)
    if not len(offsets):
        return []
    return _merged(offsets, np.concatenate([f.sizes for f in frames]), merge_gap)


def merged_ranges_of(ranges: list[ByteRange], merge_gap: int) -> list[ByteRange]:
    """merged_ranges for ranges given one by one."""
    if not ranges:
        return []
    offsets = np.array([r.offset for r in ranges], dtype=np.int64)
    return _merged(offsets, np.array([r.length for r in ranges], dtype=np.int64), merge_gap)


def _merged(offsets: np.ndarray, sizes: np.ndarray, merge_gap: int) -> list[ByteRange]:
    order = np.argsort(offsets, kind="stable")
    starts, ends = offsets[order], offsets[order] + sizes[order]
    reach = np.maximum.accumulate(ends)
    breaks = np.nonzero(starts[1:] > reach[:-1] + merge_gap)[0] + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [len(starts) - 1]))
    return [ByteRange(int(starts[a]), int(reach[b] - starts[a])) for a, b in zip(first, last, strict=True)]


class SourceBytes:
    """Bytes read for a segment, addressed by file offset."""

    def __init__(self, ranges: list[ByteRange], buffers: list[bytes]) -> None:
        self._starts = [r.offset for r in ranges]
        self._views = [memoryview(b) for b in buffers]

    @property
    def views(self) -> list[memoryview]:
        """The buffers read, one per range."""
        return self._views

    @property
    def starts(self) -> list[int]:
        """The file offset of each buffer's first byte."""
        return self._starts

    def locate(self, offsets: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (file offset, size): the buffer holding it and where in that buffer it starts."""
        starts = np.array(self._starts, dtype=np.int64)
        buffers = np.searchsorted(starts, offsets, side="right") - 1
        if len(offsets) and buffers.min() < 0:
            raise MediaError("a frame lies before the bytes read for it")
        local = offsets - starts[buffers]
        lengths = np.array([len(view) for view in self._views], dtype=np.int64)
        if np.any(local + sizes > lengths[buffers]):
            raise MediaError("a frame lies beyond the bytes read for it")
        return buffers, local

    def frame_views(self, frames: TrackFrames) -> list[memoryview]:
        """One view per frame of `frames`, in decode order."""
        return self.frame_views_at(frames.offsets, frames.sizes)

    def frame_views_at(self, offsets: np.ndarray, sizes: np.ndarray) -> list[memoryview]:
        """One view per (file offset, size)."""
        buffers, local = self.locate(offsets, sizes)
        views = self._views
        return [views[buffer][start : start + size]
                for buffer, start, size in zip(buffers.tolist(), local.tolist(), sizes.tolist(), strict=True)]

    def frame_runs(self, frames: TrackFrames) -> list[memoryview]:
        """The frames' bytes in decode order in as few views as possible: frames that follow one
        another in a buffer (most of them, in an interleaved file) share one view."""
        if not frames.count:
            return []
        buffers, local = self.locate(frames.offsets, frames.sizes)
        ends = local + frames.sizes
        breaks = np.nonzero((buffers[1:] != buffers[:-1]) | (local[1:] != ends[:-1]))[0] + 1
        first = np.concatenate(([0], breaks))
        last = np.concatenate((breaks, [frames.count])) - 1
        views = self._views
        return [views[buffer][start:end] for buffer, start, end in
                zip(buffers[first].tolist(), local[first].tolist(), ends[last].tolist(), strict=True)]
