"""The renditions of a media set, as every protocol lists them: which tracks of which parts, in
which groups, with which labels, and which is the default.

* Every video track of every part is a rendition.
* Audio tracks are renditions once per identity: a track with the same language, label and codec
  as an earlier one, and a bit rate within AUDIO_DUPLICATE_RATIO of it, is the same audio carried
  by another file of a bit-rate ladder (each rendition file with its own copy), and is left out.
* Every subtitle track is a rendition (sidecar files and tracks embedded in MP4s alike).
* The l<lang> file-name token keeps only the audio and subtitle tracks in that language (video is
  never filtered), as nginx-vod-module does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from vodorigin.errors import NotFound
from vodorigin.media.languages import same_language
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.urls import FileName

AUDIO_DUPLICATE_RATIO = 0.1  # bit rates closer than 10% with the same language, label and codec


@dataclass(frozen=True, slots=True)
class Rendition:
    """One track of one part of the set (`file` counts parts from 1)."""

    file: int
    movie: Movie
    track: Track

    def tokens(self, media: MediaSet) -> str:
        return part_tokens(media, self.file, self.movie, (self.track,))


def part_tokens(media: MediaSet, file: int, movie: Movie, tracks: Iterable[Track]) -> str:
    """The file-name tokens naming tracks of a part: "v1-a2"; "f3-v1-a2" when the set has several
    parts; "sen-a2" for a mapped sequence with an id (its index may change with a filter)."""
    prefix = [f"s{movie.sequence_id}"] if movie.sequence_id else [f"f{file}"] if len(media.movies) > 1 else []
    return "-".join([*prefix, *(t.key for t in tracks)])


def narrowed(media: MediaSet, name: FileName) -> MediaSet:
    """The set a file name's l<lang> and s<id> tokens leave."""
    return in_language(in_sequence(media, name.sequence_id), name.language)


def in_sequence(media: MediaSet, sequence_id: str | None) -> MediaSet:
    """Only the mapped sequence with that id (s<id>), in every clip of a playlist."""
    if sequence_id is None:
        return media
    movies = tuple(m for m in media.movies if m.sequence_id == sequence_id)
    if not movies:
        raise NotFound(f"no sequence {sequence_id!r} in this media set")
    clips = tuple(in_sequence(clip, sequence_id) for clip in media.clips)
    return replace(media, movies=movies, clips=clips)


def in_language(media: MediaSet, language: str | None) -> MediaSet:
    """The media set with only the audio and subtitle tracks in `language` (None: all of them)."""
    if language is None:
        return media
    movies = tuple(replace(movie, tracks=tuple(t for t in movie.tracks if t.media_type is MediaType.VIDEO
                                               or same_language(t.language, language)))
                   for movie in media.movies)
    if not any(t.media_type is not MediaType.VIDEO for movie in movies for t in movie.tracks):
        raise NotFound(f"no audio or subtitle track in language {language!r}")
    return replace(media, movies=movies, clips=tuple(in_language(clip, language) for clip in media.clips))


def renditions(media: MediaSet, media_type: MediaType) -> list[Rendition]:
    found = [Rendition(number, movie, track) for number, movie in enumerate(media.movies, start=1)
             for track in movie.tracks_of(media_type)]
    if media_type is not MediaType.AUDIO:
        return found
    kept: list[Rendition] = []
    for rendition in found:
        if not any(_same_audio(rendition.track, other.track) for other in kept):
            kept.append(rendition)
    return kept


def _same_audio(track: Track, other: Track) -> bool:
    identity = (track.language, track.display_label, track.codec.codec_string, track.codec.channels)
    if identity != (other.language, other.display_label, other.codec.codec_string, other.codec.channels):
        return False
    rate, other_rate = average_bitrate(track), average_bitrate(other)
    return abs(rate - other_rate) <= AUDIO_DUPLICATE_RATIO * max(rate, other_rate, 1)


def average_bitrate(track: Track) -> float:
    """Bits per second over the whole track, from its sample sizes."""
    duration = (track.presentation_end - track.edit_shift) / track.timescale
    return float(track.samples.sizes.sum(dtype=np.int64)) * 8 / duration if duration > 0 else 0.0


def defaults(group: list[Rendition]) -> list[bool]:
    """Which rendition of a group players start with: the one marked default, else the first."""
    marked = [r.track.default is True for r in group]
    if not any(marked) and group:
        marked[0] = True
    first = marked.index(True) if any(marked) else -1
    return [index == first for index in range(len(group))]


def codec_family(track: Track) -> str:
    """A short name for a codec family: aac, mp3, ac-3, ec-3, opus..."""
    codec = track.codec.codec_string
    if codec.startswith("mp4a.40.34"):
        return "mp3"
    if codec.startswith("mp4a"):
        return "aac"
    return codec.split(".")[0].lower()


def quoted(text: str) -> str:
    """Text safe inside a quoted attribute of a playlist or manifest (no quotes or line breaks)."""
    return " ".join(text.replace('"', "'").split())
