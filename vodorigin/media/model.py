"""The media model: frozen, slotted dataclasses, one type per stage.

Movie (one MP4 file's metadata) -> Track (one elementary stream: codec + sample table).
A MediaSet is what a request addresses: one or more Movies (a urlset), plus clipping.
Times are integer ticks in the track's timescale; see timing.py.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from vodorigin.media.languages import UNDETERMINED, language_name
from vodorigin.media.samples import SampleTable
from vodorigin.text.cues import Cue

T = TypeVar("T")


# Derived values kept per object: a movie's timelines; a track's cuts, segment sizes and I-frames on
# each timeline (a few per timeline).
MEMO_ENTRIES = 16
TRACK_OBJECTS = 4096  # bytes of a track's Python objects: its dataclasses, some twenty array objects
# (views of the moov included) and memo dicts, as measured (tests/test_cdn.py: accounting)


def memoized(memo: dict[Any, Any], key: Hashable, compute: Callable[[], T]) -> T:
    """memo[key], computed once: values derived from immutable metadata (a movie's timeline for
    some settings, a track's cuts on a timeline), so that a request does not derive them again. A
    few entries per object, the oldest dropped first: URLs choose the keys (clips, settings)."""
    value = memo.get(key)
    if value is None:
        value = compute()
        if len(memo) >= MEMO_ENTRIES:
            memo.pop(next(iter(memo), None), None)
        memo[key] = value
    return value  # type: ignore[no-any-return]


class MediaType(enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"
    SUBTITLE = "text"

    __hash__ = object.__hash__  # members are singletons: hashed by identity, in C (Enum's is Python)

    @property
    def letter(self) -> str:
        """The URL token letter: v for video, a for audio, t for subtitle (text) tracks."""
        return self.value[0]


@dataclass(frozen=True, slots=True)
class CodecInfo:
    """What a muxer and a manifest need to know about an elementary stream."""

    fourcc: str  # sample entry type: avc1, hvc1, av01, mp4a, ac-3, ec-3, Opus, .mp3
    codec_string: str  # RFC 6381, e.g. avc1.64001f, mp4a.40.2
    sample_entry: bytes  # the whole stsd entry box, copied into moovs we build
    decoder_config: bytes = b""  # avcC/hvcC/av1C payload, AudioSpecificConfig, dOps, dac3/dec3
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0
    nal_length_size: int = 0  # H.264/HEVC: bytes of each NAL unit length prefix
    parameter_sets: tuple[bytes, ...] = ()  # VPS/SPS/PPS NAL units, in decoder order
    object_type: int = 0  # MPEG-4 audio object type (2 = AAC-LC) or esds objectTypeIndication
    pixel_aspect: tuple[int, int] = (1, 1)  # video: pasp hSpacing:vSpacing, reduced (1:1 without pasp)


def presentation_end(samples: SampleTable, edit_shift: int) -> int:
    """Presentation time just after the last sample (ticks): max(pts + duration) + edit shift.

    A pass over the whole track, so it is computed once, when the moov is parsed.
    """
    if samples.composition_offsets is None:
        return samples.end_dts + edit_shift
    durations = np.diff(samples.dts, append=samples.end_dts)
    return int(np.max(samples.pts() + durations)) + edit_shift


def key_times(samples: SampleTable, edit_shift: int) -> np.ndarray:
    """Presentation times of the sync samples (where a segment may start), never decreasing, so
    that searchsorted works even on streams whose key frames' composition offsets vary. (Decode
    times never decrease: stts's durations are unsigned.)"""
    sync = samples.sync_indexes()
    times = samples.dts_at(sync) + edit_shift
    if samples.composition_offsets is not None and len(times):
        times += samples.composition_offsets[sync]
        np.maximum.accumulate(times, out=times)
    return times


@dataclass(frozen=True, slots=True, eq=False)
class Track:
    """One elementary stream of a Movie. `number` is 1-based per media type (v1, a1, t1...).

    language is a BCP 47 tag (media/languages.py); label a name for players' menus ("" when the
    file gives none: display_label derives one); default marks the rendition players start with
    (None: the first of its kind). A subtitle track carries its cues, in milliseconds of
    presentation time: parsed with the file for sidecar files, None until read for tracks
    embedded in an MP4 (tx3g, wvtt), whose samples are read only when a subtitle segment needs them.
    """

    track_id: int
    number: int
    media_type: MediaType
    timescale: int
    codec: CodecInfo
    samples: SampleTable
    language: str = UNDETERMINED
    edit_shift: int = 0  # ticks added to pts/dts to get presentation time (edit lists, 8.6.6)
    presentation_end: int = 0  # presentation time just after the last sample; see presentation_end()
    key_times: np.ndarray | None = None  # sync samples' presentation times, made monotonic; see key_times()
    label: str = ""
    default: bool | None = None
    cues: tuple[Cue, ...] | None = None
    memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)  # see memoized()

    @property
    def key(self) -> str:
        """Token naming the track in URLs and representation ids: v1, a2, t1..."""
        return f"{self.media_type.letter}{self.number}"

    @property
    def known_label(self) -> str:
        """The label, else the language's name ("English"), else ""."""
        return self.label or language_name(self.language)

    @property
    def display_label(self) -> str:
        """known_label, else e.g. "Audio 2" (for menus that need a name)."""
        kind = {MediaType.VIDEO: "Video", MediaType.AUDIO: "Audio", MediaType.SUBTITLE: "Subtitles"}
        return self.known_label or f"{kind[self.media_type]} {self.number}"

    @property
    def nbytes(self) -> int:
        text = sum(len(cue.text) + 64 for cue in self.cues) if self.cues else 0
        memo = self.samples.nbytes // 8  # generous: cuts (and the movie's timelines) of a few timelines
        return self.samples.nbytes + memo + len(self.codec.sample_entry) + TRACK_OBJECTS + text


@dataclass(frozen=True, slots=True)
class SourceIdentity:
    """What identifies the bytes of a source object: a replaced file gets a new identity."""

    path: str
    size: int
    mtime: float
    etag: str


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)  # web/offload.py refers to movies
class Movie:
    """One MP4 file's metadata: its playable tracks, and the raw boxes we copy into new files."""

    source: SourceIdentity
    timescale: int  # mvhd
    tracks: tuple[Track, ...]
    skipped: tuple[str, ...] = ()  # why tracks were left out (unknown handler or codec)
    sequence_id: str = ""  # the id of the mapped sequence it plays in (s<id> file-name tokens)
    moov_bytes: int = 0  # the moov it was parsed from, kept: its sample tables are views into it
    timelines: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)  # see memoized()

    def tracks_of(self, media_type: MediaType) -> tuple[Track, ...]:
        return tuple(t for t in self.tracks if t.media_type == media_type)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tracks) + self.moov_bytes + 1024


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """Track numbers per type; None = the type was not named; 0 in a set = every track of it."""

    video: frozenset[int] | None = None
    audio: frozenset[int] | None = None
    subtitle: frozenset[int] | None = None

    @property
    def empty(self) -> bool:
        return self.video is None and self.audio is None and self.subtitle is None

    def numbers(self, media_type: MediaType) -> frozenset[int] | None:
        if media_type is MediaType.VIDEO:
            return self.video
        return self.audio if media_type is MediaType.AUDIO else self.subtitle


def select_tracks(tracks: tuple[Track, ...], spec: TrackSpec, default_first: bool) -> tuple[Track, ...]:
    """The tracks a spec names. An empty spec means every track, or with default_first the first
    video and audio track (what index playlists and segments use: v1 + a1; a file with neither
    gives its first subtitle track)."""
    if spec.empty:
        if not default_first:
            return tracks
        firsts = {t.media_type: t for t in reversed(tracks)}
        if MediaType.VIDEO in firsts or MediaType.AUDIO in firsts:
            firsts.pop(MediaType.SUBTITLE, None)
        return tuple(t for t in tracks if firsts.get(t.media_type) is t)
    chosen = []
    for track in tracks:
        numbers = spec.numbers(track.media_type)
        if numbers is not None and (0 in numbers or track.number in numbers):
            chosen.append(track)
    return tuple(chosen)


@dataclass(frozen=True, slots=True)
class Clip:
    """A time range of the media in milliseconds (clipFrom / clipTo); end None = to the end.

    Video starts on a key frame: the last one at or before start_ms, or with key_frame_after (a
    clip of a mapped playlist, as nginx-vod-module cuts them) the first one at or after it, so that
    the clip never outlasts its end."""

    start_ms: int = 0
    end_ms: int | None = None
    key_frame_after: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class MediaSet:
    """What one request addresses: the files of a urlset (one for a plain path) or of a mapping's
    sequences, and a clip.

    A mapped playlist of several clips is a MediaSet whose `clips` are the sets of each clip (the
    top level then describes the clip manifests use); offset_ms is where a set starts on the
    presentation timeline (0, or the sum of the durations before a clip of a playlist), and
    discontinuity says whether the clips' media parameters differ.
    """

    movies: tuple[Movie, ...]
    clip: Clip = field(default_factory=Clip)
    offset_ms: int = 0
    clips: tuple[MediaSet, ...] = ()
    discontinuity: bool = True

    _tally: list[int] = field(default_factory=list, init=False, repr=False)  # (samples, cues), once

    @property
    def sample_count(self) -> int:
        return self._counts()[0]

    @property
    def cue_count(self) -> int:
        """Cues of sidecar subtitle files (and of embedded tracks once read)."""
        return self._counts()[1]

    def _counts(self) -> list[int]:
        if not self._tally:
            self._tally.extend((sum(t.samples.count for t in self._tracks()),
                                sum(len(t.cues) for t in self._tracks() if t.cues is not None)))
        return self._tally

    def _tracks(self) -> Iterator[Track]:
        return (t for media in self.clips or (self,) for movie in media.movies for t in movie.tracks)
