"""Subtitle tracks as fragmented MP4, for DASH and Smooth Streaming (ISO/IEC 14496-30).

Whatever a subtitle track came from (WebVTT, SRT or TTML files, tx3g or wvtt in an MP4), it is
written as WebVTT in ISO BMFF ('wvtt': a sample per span of constant cues) or as TTML ('stpp': one
document per fragment), in a track of timescale 1000 (cue times are milliseconds). The fragments
cut the set's timeline where the video's segments are cut, so text and video segments line up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from vodorigin.media.frames import TrackFrames
from vodorigin.media.model import CodecInfo, Track
from vodorigin.media.samples import empty_table
from vodorigin.media.segmenter import Timeline
from vodorigin.media.subtitles import cues_of, shifted_cues
from vodorigin.mux import fmp4
from vodorigin.text import (
    STPP_CODEC,
    WVTT_CODEC,
    Cue,
    cues_between,
    stpp_sample,
    stpp_sample_entry,
    wvtt_sample_entry,
    wvtt_samples,
)
from vodorigin.timing import rescale, rescale_array

TEXT_TIMESCALE = 1000
WVTT, STPP = "wvtt", "stpp"


def timeline_span_ms(timeline: Timeline, number: int) -> tuple[int, int]:
    """Segment `number` of a timeline in milliseconds of presentation time from its start."""
    start, end = timeline.segment(number)
    return (rescale(start - timeline.zero, timeline.timescale, TEXT_TIMESCALE),
            rescale(end - timeline.zero, timeline.timescale, TEXT_TIMESCALE))


def presented_cues(track: Track, timeline: Timeline) -> list[Cue]:
    """The track's cues on the timeline's clock: moved so that its start is at its offset (0 but
    for a later clip of a playlist), cut there and at its end when it is clipped (clipTo)."""
    offset = rescale(timeline.zero, timeline.timescale, TEXT_TIMESCALE)
    first = rescale(timeline.offset, timeline.timescale, TEXT_TIMESCALE)
    length = rescale(timeline.end - timeline.zero, timeline.timescale, TEXT_TIMESCALE)
    end = None if timeline.open_end else length
    moved = []
    for cue in cues_of(track):
        start, stop = max(cue.start_ms - offset, first), cue.end_ms - offset
        if end is not None:
            stop = min(stop, end)
        if stop > start:
            moved.append(Cue(start, stop, cue.text, cue.settings, cue.identifier))
    return moved


def output_track(track: Track, kind: str) -> Track:
    """The track as it is written: wvtt or stpp samples in milliseconds, its id and language kept."""
    if kind == STPP:
        codec = CodecInfo(fourcc="stpp", codec_string=STPP_CODEC, sample_entry=stpp_sample_entry())
    else:
        codec = CodecInfo(fourcc="wvtt", codec_string=WVTT_CODEC, sample_entry=wvtt_sample_entry())
    return replace(track, timescale=TEXT_TIMESCALE, codec=codec, samples=empty_table(), edit_shift=0,
                   key_times=None, cues=None)


def text_fragment(track: Track, cues: Sequence[Cue], span_ms: tuple[int, int], number: int,
                  delay_ms: int, kind: str, segment_type: bool = True, traf_extra: bytes = b"",
                  decode_time_box: bool = True, sample_relative: bool = False) -> bytes:
    """Fragment `number` of a text track covering span_ms = [start, end) of presentation time:
    samples tiling the span (wvtt) or one TTML document (stpp), in the track's timescale, decode
    times delay_ms later than presentation times (the presentation delay every track carries).

    TTML times are on the track's media timeline (the sample's decode time base, ISO/IEC
    14496-30), so an stpp document's cues carry the delay too; with `sample_relative` (Smooth
    Streaming, whose clients time a fragment's TTML from the fragment's start, as dash.js's Smooth
    support does) they count from the sample's start. WebVTT cues take their times from their
    sample."""
    start, end = span_ms
    if kind == STPP:
        origin = start if sample_relative else -delay_ms
        inside = [replace(c, start_ms=max(c.start_ms, start), end_ms=min(c.end_ms, end))
                  for c in cues_between(cues, start, end)]
        document = stpp_sample(shifted_cues(inside, -origin), start - origin, end - origin, track.language)
        samples = [(start, end - start, document)] if end > start else []
    else:
        samples = wvtt_samples(cues, start, end)
    payloads = [payload for _, _, payload in samples]
    sizes = np.array([len(p) for p in payloads], dtype=np.int64)
    bounds_ms = np.array([s for s, _, _ in samples] + [end], dtype=np.int64)
    bounds = rescale_array(bounds_ms + delay_ms, TEXT_TIMESCALE, track.timescale)
    frames = TrackFrames(track, 0, bounds[:-1], bounds[:-1], np.diff(bounds), sizes, np.cumsum(sizes) - sizes,
                         np.ones(len(samples), dtype=bool))
    part = fmp4.FragmentTrack(frames, 0, traf_extra, decode_time_box)
    plan = fmp4.plan_fragment(number, [part], segment_type=segment_type)
    return fmp4.write_fragment(plan, [[memoryview(p) for p in payloads]])
