"""Segment boundaries: pure arithmetic over the settings and key-frame times.

The behaviour is nginx-vod-module's (see REFERENCE.md, Segmentation):
* nominal boundaries: the bootstrap durations, then segment_duration repeated, with the last
  segment settled by segment_count_policy;
* align_segments_to_key_frames: each boundary moves to the first key frame at or after it, and every
  track is cut at the same times, so consecutive segments tile the timeline exactly;
* manifest_segment_durations_mode "accurate" lists the real (aligned) durations and drops segments
  left empty by irregular GOPs; "estimate" lists nominal durations and keeps the numbering nominal.
Segment N is a function of the metadata, the settings and N alone: manifests and segments agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vodorigin.errors import BadRequest, LimitExceeded, MediaError, NotFound
from vodorigin.media.model import Clip, MediaSet, MediaType, Movie, Track, memoized
from vodorigin.settings import Settings
from vodorigin.timing import rescale, rescale_array


@dataclass(frozen=True, slots=True)
class SegmentConfig:
    segment_duration_ms: int = 10_000
    bootstrap_ms: tuple[int, ...] = ()
    align_to_key_frames: bool = True
    count_policy: str = "last_short"
    durations_mode: str = "accurate"
    duration_policy: str = "max"
    max_segments: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> SegmentConfig:
        return cls(
            settings.segment_duration_ms,
            settings.bootstrap_durations_ms,
            settings.align_segments_to_key_frames,
            settings.segment_count_policy,
            settings.manifest_segment_durations_mode,
            settings.manifest_duration_policy,
            settings.max_segments,
        )


@dataclass(frozen=True, slots=True, eq=False)
class Timeline:
    """Where segments start and end, in ticks of `timescale`.

    cuts[i]..cuts[i+1] is segment i (0-based; URLs number from 1). `listed` holds the boundaries
    whose differences manifests print: the cuts themselves in accurate mode, nominal ones in
    estimate mode. `open_end` is True when the last cut is the end of the media (not a clipTo).
    `offset` is where the start sits on the presentation timeline (a later clip of a mapped
    playlist), so output times count from `zero`: the tick that is presentation time 0.
    """

    timescale: int
    cuts: np.ndarray
    listed: np.ndarray
    open_end: bool = True
    offset: int = 0
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)  # see model.memoized()

    @property
    def zero(self) -> int:
        return int(self.cuts[0]) - self.offset

    @property
    def count(self) -> int:
        return len(self.cuts) - 1

    @property
    def start(self) -> int:
        return int(self.cuts[0])

    @property
    def end(self) -> int:
        return int(self.cuts[-1])

    def durations(self) -> np.ndarray:
        """Segment durations as manifests list them, in ticks."""
        return np.diff(self.listed)

    def segment(self, number: int) -> tuple[int, int]:
        """(start, end) of segment `number` (1-based, as in URLs); NotFound past the end."""
        if not 1 <= number <= self.count:
            raise NotFound(f"segment {number} does not exist (1..{self.count})")
        return int(self.cuts[number - 1]), int(self.cuts[number])


def nominal_boundaries_ms(duration_ms: int, config: SegmentConfig) -> np.ndarray:
    """Segment starts in milliseconds from 0, plus the end, before key-frame alignment.

    The count is known before anything is allocated, and more than config.max_segments is a
    LimitExceeded: a hostile duration cannot make the server build billions of boundaries.
    """
    if duration_ms <= 0:
        return np.zeros(2, dtype=np.int64)
    if config.bootstrap_ms:
        bootstrap = np.cumsum(config.bootstrap_ms, dtype=np.int64)
        starts = np.concatenate(([0], bootstrap[bootstrap < duration_ms]))
    else:
        starts = np.zeros(1, dtype=np.int64)
    last = int(starts[-1])
    if len(starts) > len(config.bootstrap_ms):  # bootstrap done: regular segments while they fit
        step = config.segment_duration_ms
        regular = -(-(duration_ms - last) // step) - 1  # starts last + step, ... below duration_ms
        if len(starts) + regular > config.max_segments:
            raise LimitExceeded(f"{duration_ms / 1000:.0f} s in segments of {step} ms would make over "
                                f"max_segments ({config.max_segments}) segments")
        starts = np.concatenate((starts, last + step * np.arange(1, regular + 1, dtype=np.int64)))
    remainder = duration_ms - int(starts[-1])
    nominal_last = _nominal_length(len(starts) - 1, config)
    merge_last = {"last_short": False, "last_long": remainder < nominal_last,
                  "last_rounded": remainder * 2 < nominal_last}[config.count_policy]
    if len(starts) > 1 and merge_last:
        starts = starts[:-1]  # the short remainder joins the previous segment
    return np.append(starts, duration_ms)


def _nominal_length(index: int, config: SegmentConfig) -> int:
    if index < len(config.bootstrap_ms):
        return config.bootstrap_ms[index]
    return config.segment_duration_ms


def segment_timeline(
    key_times: np.ndarray | None,
    timescale: int,
    start: int,
    end: int,
    config: SegmentConfig,
    open_end: bool = True,
) -> Timeline:
    """Boundaries of the range [start, end) (ticks), aligned to key_times (sorted ticks) if given."""
    duration_ms = rescale(end - start, timescale, 1000)
    nominal = start + rescale_array(nominal_boundaries_ms(duration_ms, config), 1000, timescale)
    nominal[-1] = end
    if not config.align_to_key_frames or key_times is None or len(key_times) == 0:
        return Timeline(timescale, nominal, nominal, open_end)
    cuts = nominal.copy()
    positions = np.searchsorted(key_times, nominal[1:-1], side="left")
    aligned = np.append(key_times, end)[positions]
    cuts[1:-1] = np.minimum(aligned, end)
    if config.durations_mode == "estimate":
        return Timeline(timescale, cuts, nominal, open_end)
    # cuts never decrease (key times never do, and each nominal boundary takes the first key
    # time at or after it): equal neighbours are the only repeats
    distinct = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
    return Timeline(timescale, distinct, distinct, open_end)


def reference_track(movie: Movie) -> Track:
    """The track whose key frames set the cuts: the first video track, else the first audio."""
    videos = movie.tracks_of(MediaType.VIDEO)
    if videos:
        return videos[0]
    media = movie.tracks_of(MediaType.AUDIO)
    if not media:
        raise NotFound(f"{movie.source.path} has no video or audio track to cut segments on")
    return media[0]


def set_timeline(media: MediaSet, movie: Movie, config: SegmentConfig) -> Timeline:
    """The timeline a movie of a media set is cut on: its own when it has video; else (audio-only
    and subtitle files) that of the set's first movie with video, so that alternate audio and
    subtitle segments line up with the video ones; else its own (sets without video)."""
    if not movie.tracks_of(MediaType.VIDEO):
        reference = next((m for m in media.movies if m.tracks_of(MediaType.VIDEO)), None)
        reference = reference or next((m for m in media.movies if m.tracks_of(MediaType.AUDIO)), None)
        if reference is None:
            raise NotFound("the media set has no video or audio to cut segments on")
        movie = reference
    return movie_timeline(movie, config, media.clip, media.offset_ms)


def movie_timeline(movie: Movie, config: SegmentConfig, clip: Clip | None = None, offset_ms: int = 0
                   ) -> Timeline:
    """The segment timeline of one file, on its reference track's timescale (derived once per
    movie, settings and clip: model.memoized)."""
    return memoized(movie.timelines, (config, clip, offset_ms),
                    lambda: _frozen(_movie_timeline(movie, config, clip, offset_ms)))


def _frozen(timeline: Timeline) -> Timeline:
    """A timeline shared between requests: its arrays made read-only."""
    timeline.cuts.flags.writeable = False
    timeline.listed.flags.writeable = False
    return timeline


def _movie_timeline(movie: Movie, config: SegmentConfig, clip: Clip | None, offset_ms: int) -> Timeline:
    """The segment timeline of one file, on its reference track's timescale.

    It depends on the file and the settings only (never on which tracks a URL selects), so that
    an audio-only rendition and a muxed one of the same file are cut at the same times. A clip
    starts at the last key frame at or before clipFrom, so the requested moment is included.
    """
    reference = reference_track(movie)
    timescale = reference.timescale
    ends = [rescale(t.presentation_end, t.timescale, timescale) for t in movie.tracks
            if t.media_type is not MediaType.SUBTITLE]
    end = max(ends) if config.duration_policy == "max" else min(ends)
    if end <= 0:  # an edit list that starts after every sample, or samples of no duration
        raise MediaError(f"{movie.source.path}: no media to present")
    key_times = reference.key_times
    start = 0
    open_end = True
    if clip is not None and (clip.start_ms or clip.end_ms is not None):
        start, end, open_end = _clip_range(clip, key_times, timescale, end)
    timeline = segment_timeline(key_times, timescale, start, end, config, open_end)
    if not open_end and key_times is not None and config.durations_mode == "accurate" and \
            not (clip is not None and clip.key_frame_after):
        listed = timeline.listed.copy()
        listed[-1] = _kept_video_end(reference, end)  # the last segment lists what it holds
        timeline = replace(timeline, listed=listed)
    return replace(timeline, offset=rescale(offset_ms, 1000, timescale)) if offset_ms else timeline


def _kept_video_end(track: Track, end: int) -> int:
    """Where the video a clip ending at `end` keeps is shown until. Video is cut in decode order
    (media/frames.py), at a key frame when one comes first: with B-frames, frames shown up to the
    reorder delay after `end` are kept (frames before them depend on them), and the last
    segment's listed duration says so (the cut itself stays at `end`)."""
    samples = track.samples
    keys = track.key_times
    assert keys is not None
    position = int(np.searchsorted(keys, end, side="left"))
    by_key = int(np.append(samples.sync_indexes(), samples.count)[position])
    cut = min(by_key, int(np.searchsorted(samples.dts, end - track.edit_shift, side="left")))
    if cut == 0:
        return end
    sync = samples.sync_indexes()
    first = int(sync[max(int(np.searchsorted(sync, cut - 1, side="right")) - 1, 0)])  # the GOP before the cut
    first = min(first, cut - 1)
    durations = np.diff(samples.dts[first : cut + 1]) if cut < samples.count else \
        np.diff(np.append(samples.dts[first:cut], samples.end_dts))
    shown = int(np.max(samples.pts(first, cut) + durations)) + track.edit_shift
    return max(end, shown)


def _clip_range(clip: Clip, key_times: np.ndarray | None, timescale: int, end: int) -> tuple[int, int, bool]:
    start = rescale(clip.start_ms, 1000, timescale)
    if key_times is not None and len(key_times) and clip.key_frame_after:
        after = int(np.searchsorted(key_times, start, side="left"))
        start = int(key_times[after]) if after < len(key_times) else end
    elif key_times is not None and len(key_times):
        before = int(np.searchsorted(key_times, start, side="right")) - 1
        start = int(key_times[before]) if before >= 0 else 0
    open_end = True
    if clip.end_ms is not None:
        clip_end = rescale(clip.end_ms, 1000, timescale)
        if clip_end < end:
            end, open_end = clip_end, False
    if start >= end:
        failure = MediaError if clip.key_frame_after else BadRequest  # a mapping's fault, or the URL's
        raise failure(f"clip {clip.start_ms}-{clip.end_ms} ms selects no media")
    return max(start, 0), end, open_end
