"""Mapped playlists of several clips, as every protocol numbers their segments.

A playlist's clips play one after another; each clip is cut on its own timeline (so segments never
span two files, and `accurate` durations hold for every clip), its times offset by the clips
before it (media/segmenter.py Timeline.offset), so timestamps keep rising across the joins.
Segments are numbered through the whole playlist: segment N of the playlist is segment n of the
clip that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vodorigin.errors import NotFound
from vodorigin.media.model import MediaSet, Movie, Track
from vodorigin.media.segmenter import SegmentConfig, Timeline, set_timeline
from vodorigin.packagers.shared import choose_rendition, segment_bitrates
from vodorigin.urls import FileName


def clip_sets(media: MediaSet) -> tuple[MediaSet, ...]:
    """The sets of a playlist's clips, or the set itself."""
    return media.clips or (media,)


@dataclass(frozen=True, slots=True)
class Placed:
    """One clip of a rendition: the clip's set, its movie and tracks, and its timeline."""

    index: int  # 0-based clip number
    media: MediaSet
    movie: Movie
    tracks: tuple[Track, ...]
    timeline: Timeline
    first_number: int  # the playlist number of the clip's first segment


def placed(media: MediaSet, name: FileName, config: SegmentConfig) -> list[Placed]:
    """The rendition a file name names, clip by clip, with the numbers its segments take."""
    found, number = [], 1
    for index, clip in enumerate(clip_sets(media)):
        movie, tracks = choose_rendition(clip, name)
        timeline = set_timeline(clip, movie, config)
        found.append(Placed(index, clip, movie, tracks, timeline, number))
        number += timeline.count
    return found


def locate(clips: list[Placed], number: int) -> tuple[Placed, int]:
    """The clip holding playlist segment `number` and its number in that clip."""
    for clip in clips:
        if clip.first_number <= number < clip.first_number + clip.timeline.count:
            return clip, number - clip.first_number + 1
    total = sum(clip.timeline.count for clip in clips)
    raise NotFound(f"segment {number} does not exist (1..{total})")


def in_clip(clips: list[Placed], clip_index: int | None) -> Placed:
    """The clip a c<n> token names (default the first)."""
    index = (clip_index or 1) - 1
    if index >= len(clips):
        raise NotFound(f"clip c{index + 1} is not in the playlist (it has {len(clips)})")
    return clips[index]


def same_tracks(movie: Movie, tracks: tuple[Track, ...]) -> tuple[Track, ...]:
    """The tracks of a clip's movie that the keys of `tracks` name (v1, a2...)."""
    found = tuple(t for track in tracks for t in movie.tracks if t.key == track.key)
    if len(found) != len(tracks):
        keys = [t.key for t in tracks]
        raise NotFound(f"{movie.source.path} lacks one of the tracks {keys} of the playlist")
    return found


def part_clips(media: MediaSet, file: int, tracks: tuple[Track, ...], config: SegmentConfig) -> list[Placed]:
    """Tracks of part `file` (as the set's top level names them) clip by clip."""
    found, number = [], 1
    for index, clip in enumerate(clip_sets(media)):
        movie = clip.movies[file - 1]
        timeline = set_timeline(clip, movie, config)
        found.append(Placed(index, clip, movie, same_tracks(movie, tracks), timeline, number))
        number += timeline.count
    return found


def clip_rates(clips: list[Placed], container: str, padding: int = 0) -> tuple[int, int]:
    """(peak, average) bit rates of tracks over every clip they play in."""
    peaks, bits, seconds = [], 0.0, 0.0
    for clip in clips:
        timeline = clip.timeline
        peak, average = segment_bitrates(clip.tracks, timeline, container, padding)
        length = (timeline.end - timeline.start) / timeline.timescale
        peaks.append(peak)
        bits, seconds = bits + average * length, seconds + length
    return max(peaks), int(bits / seconds) if seconds else 0


def playlist_rates(media: MediaSet, file: int, tracks: tuple[Track, ...], config: SegmentConfig,
                   container: str, padding: int = 0) -> tuple[int, int]:
    """(peak, average) bit rates of a part's tracks over every clip of a playlist (or the set)."""
    return clip_rates(part_clips(media, file, tracks, config), container, padding)


def renamed(name: FileName, number: int) -> FileName:
    """The file name with another segment number (a playlist's segment as its clip numbers it)."""
    return replace(name, number=number)
