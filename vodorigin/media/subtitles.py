"""Subtitle tracks in the media model: sidecar files as one-track movies, cues of tracks embedded
in an MP4 (tx3g, wvtt) decoded from their samples, and the cues of one segment.

A subtitle track's cues are milliseconds of presentation time. A sidecar file (WebVTT, SRT, TTML)
is read whole and parsed when it is loaded; an embedded track's samples are read only when a
subtitle segment needs them: packagers call cues_of(), which raises CuesNeeded for a track whose
cues are not loaded yet, and the I/O layer (origin.py) reads them and asks again, the way the moov
locator asks for byte ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from vodorigin.errors import LimitExceeded
from vodorigin.media.frames import ByteRange, SourceBytes
from vodorigin.media.model import CodecInfo, MediaType, Movie, SourceIdentity, Track
from vodorigin.media.samples import empty_table
from vodorigin.text import (
    MAX_CUES,
    MAX_INPUT_BYTES,
    Cue,
    decode_tx3g_sample,
    decode_wvtt_sample,
    parse_subtitles,
)
from vodorigin.text.wvtt import wvtt_sample_entry
from vodorigin.timing import rescale_array

SIDECAR_TIMESCALE = 1000  # cue times are milliseconds


class CuesNeeded(Exception):  # noqa: N818 - a request for I/O, like the moov locator's ReadRange
    """A packager needs the cues of embedded subtitle tracks that are not loaded yet."""


def sidecar_movie(source: SourceIdentity, data: bytes) -> Movie:
    """A WebVTT, SRT or TTML file as a movie of one subtitle track (language from lang/, if any)."""
    cues = tuple(parse_subtitles(data))
    end = max((cue.end_ms for cue in cues), default=0)
    codec = CodecInfo(fourcc="wvtt", codec_string="wvtt", sample_entry=wvtt_sample_entry())
    track = Track(1, 1, MediaType.SUBTITLE, SIDECAR_TIMESCALE, codec, empty_table(), presentation_end=end,
                  cues=cues)
    return Movie(source, SIDECAR_TIMESCALE, (track,))


def cues_of(track: Track) -> tuple[Cue, ...]:
    """The track's cues, or CuesNeeded when they are still in the file's samples."""
    if track.cues is None:
        raise CuesNeeded(track.key)
    return track.cues


def needs_cues(track: Track) -> bool:
    return track.media_type is MediaType.SUBTITLE and track.cues is None


def embedded_cue_ranges(track: Track) -> list[ByteRange]:
    """The bytes of every sample of an embedded subtitle track, in file order (they are small)."""
    samples = track.samples
    offsets = samples.offsets(0, samples.count)
    total = int(samples.sizes.sum(dtype=np.int64))
    if total > MAX_INPUT_BYTES or samples.count > MAX_CUES:
        raise LimitExceeded(f"{track.key}: a subtitle track of {total} bytes in {samples.count} samples "
                            f"(at most {MAX_INPUT_BYTES} bytes, {MAX_CUES} samples)")
    return [ByteRange(int(o), int(s)) for o, s in zip(offsets.tolist(), samples.sizes.tolist(), strict=True)]


def embedded_cues(track: Track, data: SourceBytes) -> tuple[Cue, ...]:
    """Decode an embedded track's samples (tx3g: a cue per sample; wvtt: the cues active over each
    sample) into cues; a cue repeated over consecutive samples becomes one."""
    samples = track.samples
    starts = samples.dts + track.edit_shift
    ends = np.append(samples.dts[1:], samples.end_dts) + track.edit_shift
    starts_ms = rescale_array(starts, track.timescale, 1000).tolist()
    ends_ms = rescale_array(ends, track.timescale, 1000).tolist()
    views = data.frame_views_at(samples.offsets(0, samples.count), samples.sizes)
    cues: list[Cue] = []
    for start, end, view in zip(starts_ms, ends_ms, views, strict=True):
        if not len(view):
            continue  # an empty sample: nothing shown
        for text, settings, identifier in _sample_cues(track, bytes(view)):
            if end > start >= 0:
                _append_merged(cues, Cue(start, end, text, settings, identifier))
    return tuple(sorted(cues, key=lambda cue: (cue.start_ms, -cue.end_ms)))


def _sample_cues(track: Track, sample: bytes) -> list[tuple[str, str, str]]:
    if track.codec.fourcc == "tx3g":
        text = decode_tx3g_sample(sample)
        return [(text, "", "")] if text else []
    return [entry for entry in decode_wvtt_sample(sample) if entry[0]]


def _append_merged(cues: list[Cue], cue: Cue) -> None:
    """Add a cue, extending an identical one that ends where it starts (wvtt repeats cues)."""
    for index in range(len(cues) - 1, max(len(cues) - 8, -1), -1):
        last = cues[index]
        if last.end_ms == cue.start_ms and (last.text, last.settings, last.identifier) == \
                (cue.text, cue.settings, cue.identifier):
            cues[index] = replace(last, end_ms=cue.end_ms)
            return
    cues.append(cue)


def with_cues(movie: Movie, track_id: int, cues: Sequence[Cue]) -> Movie:
    tracks = tuple(replace(t, cues=tuple(cues)) if t.track_id == track_id and needs_cues(t) else t
                   for t in movie.tracks)
    return replace(movie, tracks=tracks)


def shifted_cues(cues: Sequence[Cue], delay_ms: int) -> tuple[Cue, ...]:
    return tuple(replace(cue, start_ms=cue.start_ms + delay_ms, end_ms=cue.end_ms + delay_ms) for cue in cues)
