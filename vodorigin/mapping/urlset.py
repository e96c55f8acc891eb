"""A media set named by a URL: each part's file with the path parameters written in that part.

* tracks/ keeps the named tracks of the part (types not named are dropped, as in nginx-vod-module);
* lang/ sets the language of the part's audio and subtitle tracks (a subtitle file has no other
  source of it), and their label then follows from the language;
* shift/ delays the part's video, audio or subtitle tracks by some milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from vodorigin.errors import NotFound
from vodorigin.media.model import MediaSet, MediaType, Movie, Track, select_tracks
from vodorigin.media.subtitles import shifted_cues
from vodorigin.timing import rescale
from vodorigin.urls import MediaRequest, Part


def media_set(request: MediaRequest, movies: Mapping[str, Movie]) -> MediaSet:
    """The movies of a request's parts (by path), each with what applies to its part; a mapped
    playlist as the sets of its clips, one after another."""
    media = MediaSet(_movies(request.parts, movies), request.clip)
    if not request.playlist:
        return media
    clips = tuple(MediaSet(_movies(c.parts, movies), c.clip, c.offset_ms) for c in request.playlist)
    return replace(media, clips=clips, discontinuity=request.discontinuity)


def _movies(parts: tuple[Part, ...], movies: Mapping[str, Movie]) -> tuple[Movie, ...]:
    return tuple(apply_part(movies[part.path], part) for part in parts)


def apply_part(movie: Movie, part: Part) -> Movie:
    tracks = movie.tracks
    if not part.tracks.empty:
        tracks = select_tracks(tracks, part.tracks, False)
        if not tracks:
            raise NotFound(f"the tracks/ parameter selects no track of {part.path}")
    if part.language is not None or part.label is not None or part.default is not None:
        tracks = tuple(_described(t, part) for t in tracks)
    for media_type, delay_ms in part.shifts_ms:
        tracks = tuple(shifted(t, delay_ms) if t.media_type is media_type else t for t in tracks)
    if tracks is movie.tracks and part.sequence_id == movie.sequence_id:
        return movie  # the cached movie itself, with what it has derived (timelines: model.memoized)
    return replace(movie, tracks=tracks, sequence_id=part.sequence_id)


def _described(track: Track, part: Part) -> Track:
    """A language (then the label follows from it), a label or a default flag given for a part
    apply to its audio and subtitle tracks."""
    if track.media_type is MediaType.VIDEO:
        return track
    language = part.language or track.language
    label = part.label if part.label is not None else ("" if part.language is not None else track.label)
    default = part.default if part.default is not None else track.default
    return replace(track, language=language, label=label, default=default)


def shifted(track: Track, delay_ms: int) -> Track:
    """The track presented delay_ms later: its edit shift, end, key times and cues move with it."""
    delay = rescale(delay_ms, 1000, track.timescale)
    keys = track.key_times + delay if track.key_times is not None else None
    cues = shifted_cues(track.cues, delay_ms) if track.cues is not None else None
    return replace(track, edit_shift=track.edit_shift + delay, key_times=keys, cues=cues,
                   presentation_end=track.presentation_end + delay)
