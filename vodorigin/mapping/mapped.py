"""Mapped media sets: nginx-vod-module's JSON "Mapping response format" -> a MediaRequest.

In mapped mode the URL's media-set path names a mapping (fetched from mapping_url, or a JSON file
in storage), and the mapping names the files. What is read (its README and media_set_parser.c):

* the set: `sequences` (1..max_sequences), `id`, `durations` (a playlist: one entry per clip, in
  ms), `discontinuity` (default true), `clipFrom`/`clipTo` (narrowing the URL's), `cache`,
  `playlistType` ("vod" only), `referenceClipIndex` (which clip manifests describe);
* a sequence: `clips` (as many as `durations`, or one), `id` (the s<id> file-name token),
  `language`, `label`, `default`;
* a clip: `"type": "source"` with `path` (relative to the storage's root; "" is a 404), `tracks`
  (v1-a1-t1), `clipFrom` (where in the file the clip starts) and `clipTo` (where it ends when the
  set has no `durations`).

Every other field of the format (filters, concat, live fields, bitrates, encryption, closed
captions...) is a clear 415 naming the field, never ignored; a field of the wrong type or out of
range is a 422 naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vodorigin.errors import MediaError, NotFound, UnsupportedMedia
from vodorigin.media.languages import UNDETERMINED, language_tag
from vodorigin.media.model import Clip, TrackSpec
from vodorigin.storage.local import check_relative_path
from vodorigin.urls import MediaRequest, Part, PlaylistClip, parse_track_spec

SET_FIELDS = {"sequences", "id", "durations", "discontinuity", "clipFrom", "clipTo", "cache", "playlistType",
              "referenceClipIndex", "consistentSequenceMediaInfo"}
SEQUENCE_FIELDS = {"clips", "id", "language", "label", "default"}
CLIP_FIELDS = {"type", "path", "tracks", "clipFrom", "clipTo", "id"}
MAX_CLIPS = 128  # entries of `durations`, as nginx-vod-module
MAX_LABEL = 256  # characters
SEQUENCE_ID = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)  # as the s<id> token reads it (urls.py)


@dataclass(frozen=True, slots=True)
class MappedClip:
    path: str
    tracks: TrackSpec
    clip_from: int  # ms into the file
    clip_to: int | None


@dataclass(frozen=True, slots=True)
class MappedSequence:
    id: str
    language: str | None  # BCP 47
    label: str | None
    default: bool | None
    clips: tuple[MappedClip, ...]


@dataclass(frozen=True, slots=True)
class MappedSet:
    sequences: tuple[MappedSequence, ...]
    durations: tuple[int, ...]  # empty: one clip per sequence
    discontinuity: bool
    clip: Clip  # the set's clipFrom/clipTo
    cache: bool
    reference_clip: int  # 0-based: the clip manifests describe in a playlist


def parse_mapping(data: bytes, where: str, max_sequences: int, max_duration_ms: int) -> MappedSet:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MediaError(f"mapping {where}: not JSON ({error})") from None
    top = _object(document, "mapping")
    _only(top, SET_FIELDS, "")
    kind = top.get("playlistType", "vod")
    if not isinstance(kind, str) or kind.lower() != "vod":
        raise UnsupportedMedia(f"mapping {where}: playlistType {kind!r}: only vod is supported")
    durations = tuple(_integer(d, f"durations[{i}]", 1, max_duration_ms) for i, d in
                      enumerate(_list(top.get("durations"), "durations", MAX_CLIPS)))
    raw_sequences = _list(top.get("sequences"), "sequences", max_sequences, required=True)
    sequences = tuple(_sequence(s, f"sequences[{i}]", max(len(durations), 1), max_duration_ms)
                      for i, s in enumerate(raw_sequences))
    clips = max(len(durations), 1)
    reference = _integer(top.get("referenceClipIndex", 1), "referenceClipIndex", 1, clips) - 1
    clip_from = _integer(top.get("clipFrom", 0), "clipFrom", 0, max_duration_ms)
    clip_to = _integer(top["clipTo"], "clipTo", clip_from + 1, max_duration_ms) if "clipTo" in top else None
    return MappedSet(sequences, durations, _boolean(top.get("discontinuity", True), "discontinuity"),
                     Clip(clip_from, clip_to), _boolean(top.get("cache", True), "cache"), reference)


def _sequence(value: object, where: str, clips: int, max_duration_ms: int) -> MappedSequence:
    sequence = _object(value, where)
    _only(sequence, SEQUENCE_FIELDS, where)
    raw_clips = _list(sequence.get("clips"), f"{where}.clips", clips, required=True)
    if len(raw_clips) != clips:
        raise MediaError(f"mapping: {where}.clips has {len(raw_clips)} clips, `durations` {clips}")
    language = None
    if "language" in sequence:
        language = language_tag(_string(sequence["language"], f"{where}.language"))
        if language == UNDETERMINED:
            raise MediaError(f"mapping: {where}.language {sequence['language']!r} is not an ISO 639 code")
    label = _string(sequence["label"], f"{where}.label") if "label" in sequence else None
    if label is not None and len(label) > MAX_LABEL:
        raise MediaError(f"mapping: {where}.label is longer than {MAX_LABEL} characters")
    default = _boolean(sequence["default"], f"{where}.default") if "default" in sequence else None
    parsed = tuple(_source(c, f"{where}.clips[{i}]", max_duration_ms) for i, c in enumerate(raw_clips))
    identifier = _string(sequence.get("id", ""), f"{where}.id")
    if identifier and not SEQUENCE_ID.fullmatch(identifier):
        raise MediaError(f"mapping: {where}.id {identifier[:40]!r} cannot be a file-name token "
                         "(1 to 32 letters, digits or _)")
    return MappedSequence(identifier, language, label, default, parsed)


def _source(value: object, where: str, max_duration_ms: int) -> MappedClip:
    clip = _object(value, where)
    kind = clip.get("type")
    if kind != "source":
        raise UnsupportedMedia(f"mapping: {where}.type {kind!r}: only source clips are supported")
    _only(clip, CLIP_FIELDS, where)
    path = _string(clip.get("path"), f"{where}.path").lstrip("/")
    if not path:
        raise NotFound(f"mapping: {where}.path is empty")
    check_relative_path(path)
    tracks = parse_track_spec(_string(clip["tracks"], f"{where}.tracks")) if "tracks" in clip else TrackSpec()
    clip_from = _integer(clip.get("clipFrom", 0), f"{where}.clipFrom", 0, max_duration_ms)
    clip_to = None
    if "clipTo" in clip:
        clip_to = _integer(clip["clipTo"], f"{where}.clipTo", clip_from + 1, max_duration_ms)
    return MappedClip(path, tracks, clip_from, clip_to)


def mapped_request(mapped: MappedSet, protocol: str, file_name: str, url_clip: Clip) -> MediaRequest:
    """The request a mapping stands for: its sequences as parts (a playlist: a part per sequence in
    each clip), the set's and the URL's clips narrowing each other."""
    clip = _narrowed(mapped.clip, url_clip)
    if not mapped.durations:
        parts = tuple(_part(s, s.clips[0]) for s in mapped.sequences)
        sources = {(c.clip_from, c.clip_to) for s in mapped.sequences for c in s.clips}
        if len(sources) > 1:
            raise UnsupportedMedia("mapping: the sequences' clipFrom/clipTo differ (one clip range per set)")
        ((source_from, source_to),) = sources
        return MediaRequest(protocol, parts, file_name, _within(source_from, source_to, clip), is_urlset=True)
    if clip != Clip():
        raise UnsupportedMedia("mapping: clipFrom/clipTo on a playlist of several clips are not supported")
    playlist = []
    offset = 0
    for index, duration in enumerate(mapped.durations):
        clips = [s.clips[index] for s in mapped.sequences]
        if len({c.clip_from for c in clips}) > 1 or any(c.clip_to is not None for c in clips):
            raise UnsupportedMedia(f"mapping: clips[{index}]: in a playlist the sequences' clips start at "
                                   "the same clipFrom and end with `durations` (no clipTo)")
        parts = tuple(_part(s, c) for s, c in zip(mapped.sequences, clips, strict=True))
        start = clips[0].clip_from
        playlist.append(PlaylistClip(parts, Clip(start, start + duration, key_frame_after=True), offset))
        offset += duration
    reference = playlist[mapped.reference_clip]
    return MediaRequest(protocol, reference.parts, file_name, reference.clip, True, tuple(playlist),
                        mapped.discontinuity)


def _part(sequence: MappedSequence, clip: MappedClip) -> Part:
    return Part(clip.path, clip.tracks, sequence.language, (), sequence.label, sequence.default, sequence.id)


def _narrowed(outer: Clip, inner: Clip) -> Clip:
    """Two clips of the same timeline: the later start and the earlier end."""
    start = max(outer.start_ms, inner.start_ms)
    ends = [end for end in (outer.end_ms, inner.end_ms) if end is not None]
    end = min(ends) if ends else None
    if end is not None and end <= start:
        raise MediaError(f"mapping: clipFrom {start} is not before clipTo {end}")
    return Clip(start, end)


def _within(source_from: int, source_to: int | None, clip: Clip) -> Clip:
    """A clip of the presentation (which starts at source_from in the file) in file times."""
    end = source_from + clip.end_ms if clip.end_ms is not None else None
    if source_to is not None:
        end = min(end, source_to) if end is not None else source_to
    start = source_from + clip.start_ms
    if end is not None and end <= start:
        raise MediaError("mapping: the clip selects no media")
    return Clip(start, end)


def _only(value: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for name in value:
        if name not in allowed:
            raise UnsupportedMedia(f"mapping: {where + '.' if where else ''}{name} is not supported")


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MediaError(f"mapping: {where} must be an object")
    return value


def _list(value: object, where: str, most: int, required: bool = False) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not value:
        raise MediaError(f"mapping: {where} must be a non-empty array")
    if len(value) > most:
        raise MediaError(f"mapping: {where} has {len(value)} entries; at most {most}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise MediaError(f"mapping: {where} must be a string")
    return value


def _boolean(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise MediaError(f"mapping: {where} must be true or false")
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MediaError(f"mapping: {where} must be a whole number from {low} to {high}")
    return value
