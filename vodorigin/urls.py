"""The URL grammar: /<protocol>/<media-set path>/<file name> -> MediaRequest (REFERENCE.md).

* A urlset (nginx-vod-module's multi-URL): when the media-set path ends in `.urlset`, all of it
  is `<prefix>,<middle 1>,...,<middle n>,<postfix>.urlset`; the prefix and the middles may hold
  slashes and the postfix may be empty. Each part `<prefix><middle i><postfix>` is then parsed as
  a path of its own, so a path parameter in the prefix applies to every part and one in a middle
  to that part only: `/hls/ep1/,video.mp4,lang/fra/subs_fr.vtt,.urlset/master.m3u8`.
* Path parameters `/name/value/` anywhere in a part: clipFrom, clipTo (ms; the same for every
  part), tracks (v1-a1-t1; v0/a0/t0 = every track of the type), shift (v<ms>-a<ms>-s<ms>: delay
  the video, audio or subtitle tracks of the part), lang (an ISO 639 code: the part's language).
* File-name tokens follow the name's prefix, dash-separated: a segment number, f<n> (part of the
  set), v<n>/a<n>/t<n> (video, audio, subtitle tracks, 1-based per type), l<lang> (keep only the
  audio and subtitle tracks in that language). Anything else is a 400 with the reason.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from vodorigin.errors import BadRequest
from vodorigin.media.languages import UNDETERMINED, language_tag
from vodorigin.media.model import Clip, MediaType, TrackSpec

PROTOCOLS = ("hls", "dash", "hds", "mss", "pd")
PATH_PARAMETERS = ("clipFrom", "clipTo", "tracks", "shift", "lang")
MAX_MILLISECONDS = 10**10  # ~115 days: larger clip times are typing errors, not media
URLSET_SUFFIX = ".urlset"
TRACK_LETTERS = {"v": MediaType.VIDEO, "a": MediaType.AUDIO, "t": MediaType.SUBTITLE}
SHIFT_LETTERS = {"v": MediaType.VIDEO, "a": MediaType.AUDIO, "s": MediaType.SUBTITLE}

# re.ASCII everywhere: \d must not match other scripts' digits, which int() would accept (an alias
# URL); \Z rather than $, which also matches before a final newline
_QUALITY_LEVELS = re.compile(r"^QualityLevels\(\d{1,12}\)\Z", re.ASCII)
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")
_TRACK_TOKEN = re.compile(r"^([vat])(\d{1,3})\Z", re.ASCII)
_SHIFT_TOKEN = re.compile(r"^([vas])(\d{1,9})\Z", re.ASCII)
_FILE_INDEX_TOKEN = re.compile(r"^f(\d{1,3})\Z", re.ASCII)
_CLIP_INDEX_TOKEN = re.compile(r"^c(\d{1,3})\Z", re.ASCII)  # a clip of a mapped playlist
_SEQUENCE_TOKEN = re.compile(r"^s([A-Za-z0-9_]{1,32})\Z", re.ASCII)  # a mapped sequence by its id
_LANGUAGE_TOKEN = re.compile(r"^l([a-z]{2,3})\Z", re.ASCII)
_NUMBER = re.compile(r"^\d{1,11}\Z", re.ASCII)  # path parameter values and segment numbers
_FILE_NAME = re.compile(r"^(?P<kind>[a-zA-Z]+)(?:-(?P<tokens>[^.]*))?(?:\.(?P<extension>[a-z0-9]{1,5}))?\Z",
                        re.ASCII)


@dataclass(frozen=True, slots=True)
class FileName:
    """A parsed file name such as seg-3-f1-v1-a1.ts."""

    kind: str  # seg, index, master, init, fragment...
    extension: str  # "" for names without one (Smooth Streaming's manifest)
    number: int | None = None  # segment number (1-based) when the name carries one
    file_index: int | None = None  # f<n>, 1-based
    tracks: TrackSpec = TrackSpec()
    language: str | None = None  # l<lang>, as a BCP 47 tag
    tokens: str = ""  # the token text after the kind, as written (reused in child URLs)
    sequence_id: str | None = None  # s<id>: a mapped sequence by its id
    clip_index: int | None = None  # c<n>, 1-based: a clip of a mapped playlist


@dataclass(frozen=True, slots=True)
class Part:
    """One file of the media set with what applies to it: path parameters (tracks/, lang/,
    shift/), or a mapped sequence's language, label, default flag and id."""

    path: str  # relative path of the file, path parameters removed
    tracks: TrackSpec = TrackSpec()  # tracks/
    language: str | None = None  # lang/, a BCP 47 tag
    shifts_ms: tuple[tuple[MediaType, int], ...] = ()  # shift/
    label: str | None = None
    default: bool | None = None
    sequence_id: str = ""


@dataclass(frozen=True, slots=True)
class PlaylistClip:
    """One clip of a mapped playlist: a part per sequence, the range of the files it plays, and
    where it starts on the playlist's timeline."""

    parts: tuple[Part, ...]
    clip: Clip
    offset_ms: int


@dataclass(frozen=True, slots=True)
class MediaRequest:
    protocol: str
    parts: tuple[Part, ...]
    file_name: str  # the last path component ("" for /pd/, where the file is the set)
    clip: Clip = Clip()
    is_urlset: bool = False
    playlist: tuple[PlaylistClip, ...] = ()  # a mapped playlist of several clips
    discontinuity: bool = True  # the playlist's clips differ in media parameters

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the request reads, each once, in order."""
        paths = [part.path for part in self.parts] + [p.path for c in self.playlist for p in c.parts]
        return tuple(dict.fromkeys(paths))


def check_url_path(path: str, raw_path: bytes) -> None:
    """Refuse URL forms that would alias another URL: control characters (a route pattern's `$`
    matches before a trailing newline, so `/pd/a.mp4%0a` would serve a.mp4) and encoded slashes or
    backslashes (`/hls%2fa.mp4/...` is decoded into another path structure)."""
    if _CONTROL_CHARACTER.search(path):
        raise BadRequest("control character in the URL path")
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered:
        raise BadRequest("encoded slash in the URL path")


PARSED_KEPT = 1024  # URL paths and file names whose parse is remembered (parsed_request)
PARSED_LENGTH = 512  # the longest name remembered, and the most text a remembered path expands to
# (a urlset's parts: about the path's length times its commas): at most a few MB per worker; also
# the longest URL path whose request class and validators are remembered (web/)


def parsed_request(protocol: str, path: str, max_urlset_parts: int = 32) -> MediaRequest:
    """parse_request_path, remembered for recent URLs: a player asks for the same playlists and
    segments again and again, and a MediaRequest never changes (BadRequest is never kept)."""
    if len(path) * (path.count(",") + 1) > 4 * PARSED_LENGTH:
        return parse_request_path(protocol, path, max_urlset_parts)
    return _parsed(protocol, path, max_urlset_parts)


def parse_request_path(protocol: str, path: str, max_urlset_parts: int = 32) -> MediaRequest:
    """The part of a URL after /<protocol>/ -> MediaRequest, or BadRequest."""
    if protocol not in PROTOCOLS:
        raise BadRequest(f"unknown protocol {protocol!r}")
    components = path.split("/")
    _check_components(components)
    file_name = "" if protocol == "pd" else components.pop()
    if protocol == "mss" and components and components[-1].startswith("QualityLevels("):
        if not _QUALITY_LEVELS.match(components[-1]):
            raise BadRequest(f"malformed {components[-1]!r} (QualityLevels(<bitrate>))")
        file_name = f"{components.pop()}/{file_name}"  # QualityLevels(<bitrate>)/Fragments(video=<t>)
    set_path = "/".join(components)
    if not set_path:
        raise BadRequest("no media path")
    is_urlset = set_path.endswith(URLSET_SUFFIX)
    if is_urlset and protocol == "pd":
        raise BadRequest("progressive download serves one file, not a urlset")
    texts = expand_urlset(set_path[: -len(URLSET_SUFFIX)], max_urlset_parts) if is_urlset else [set_path]
    parsed = [_part(text) for text in texts]
    clips = {clip for _, clip in parsed}
    if len(clips) > 1:
        raise BadRequest("clipFrom/clipTo must be the same for every part of a urlset")
    return MediaRequest(protocol, tuple(part for part, _ in parsed), file_name, clips.pop(), is_urlset)


def _check_components(components: list[str]) -> None:
    if any(c == "" for c in components):
        raise BadRequest("empty path component")


def _part(text: str) -> tuple[Part, Clip]:
    """One (expanded) path with its parameters -> Part and its clip."""
    components = text.split("/")
    _check_components(components)
    media_path, parameters = _split_parameters(components)
    if not media_path:
        raise BadRequest(f"no media path in {text!r}")
    tracks = parse_track_spec(parameters["tracks"]) if "tracks" in parameters else TrackSpec()
    language = _language(parameters["lang"], "lang/") if "lang" in parameters else None
    shifts = _shifts(parameters["shift"]) if "shift" in parameters else ()
    return Part("/".join(media_path), tracks, language, shifts), _clip(parameters)


def _split_parameters(components: list[str]) -> tuple[list[str], dict[str, str]]:
    media_path: list[str] = []
    parameters: dict[str, str] = {}
    index = 0
    while index < len(components):
        name = components[index]
        if name in PATH_PARAMETERS and index + 1 < len(components):
            if name in parameters:
                raise BadRequest(f"path parameter {name} given twice")
            parameters[name] = components[index + 1]
            index += 2
            continue
        media_path.append(name)
        index += 1
    return media_path, parameters


def _clip(parameters: dict[str, str]) -> Clip:
    start = _milliseconds(parameters, "clipFrom")
    end = _milliseconds(parameters, "clipTo")
    if end is not None and end <= (start or 0):
        raise BadRequest(f"clipTo ({end}) must be after clipFrom ({start or 0})")
    return Clip(start or 0, end)


def _milliseconds(parameters: dict[str, str], name: str) -> int | None:
    value = parameters.get(name)
    if value is None:
        return None
    if not _NUMBER.match(value) or int(value) > MAX_MILLISECONDS:
        raise BadRequest(f"{name} must be a whole number of milliseconds, not {value!r}")
    return int(value)


def _language(code: str, where: str) -> str:
    """An ISO 639 code (lang/eng, lang/fre, lang/fr) -> its BCP 47 tag; an unknown code is a 400."""
    tag = language_tag(code) if re.fullmatch(r"[a-z]{2,3}", code, re.ASCII) else UNDETERMINED
    if tag == UNDETERMINED and code != UNDETERMINED:
        raise BadRequest(f"{where}: {code!r} is not an ISO 639 language code")
    return tag


def _shifts(text: str) -> tuple[tuple[MediaType, int], ...]:
    """'v500-a0-s1200' -> ((VIDEO, 500), (AUDIO, 0), (SUBTITLE, 1200)), milliseconds of delay."""
    shifts: dict[MediaType, int] = {}
    for token in text.split("-"):
        match = _SHIFT_TOKEN.match(token)
        if match is None or SHIFT_LETTERS[match[1]] in shifts or int(match[2]) > MAX_MILLISECONDS:
            raise BadRequest(f"invalid shift {token!r} in {text!r} (v<ms>-a<ms>-s<ms>)")
        shifts[SHIFT_LETTERS[match[1]]] = int(match[2])
    return tuple(shifts.items())


def expand_urlset(spec: str, max_parts: int) -> list[str]:
    """'dir/clip_,360,720,.mp4' -> ['dir/clip_360.mp4', 'dir/clip_720.mp4'] (prefix, middles, postfix)."""
    parts = spec.split(",")
    if len(parts) < 3:
        raise BadRequest(f"urlset {spec!r} needs a prefix, at least one middle and a postfix")
    prefix, middles, postfix = parts[0], parts[1:-1], parts[-1]
    if len(middles) > max_parts:
        raise BadRequest(f"urlset has {len(middles)} parts; at most {max_parts}")
    if any(not m for m in middles):
        raise BadRequest(f"urlset {spec!r} has an empty part")
    return [f"{prefix}{middle}{postfix}" for middle in middles]


def parse_track_spec(text: str) -> TrackSpec:
    """'v1-a2-t1' -> TrackSpec(video={1}, audio={2}, subtitle={1}); 'v0' = every video track."""
    numbers: dict[str, set[int]] = {}
    for token in text.split("-"):
        match = _TRACK_TOKEN.match(token)
        if match is None:
            raise BadRequest(f"invalid track token {token!r} in {text!r}")
        numbers.setdefault(match[1], set()).add(int(match[2]))

    def of(letter: str) -> frozenset[int] | None:
        return frozenset(numbers[letter]) if letter in numbers else None

    return TrackSpec(of("v"), of("a"), of("t"))


def parse_file_name(name: str, numbered: bool = False) -> FileName:
    """Split a file name into its kind, tokens and extension; `numbered` requires a segment number.
    Remembered for recent names, as parsed_request is."""
    if len(name) > PARSED_LENGTH:
        return _parse_file_name(name, numbered)
    return _file_names(name, numbered)


def _parse_file_name(name: str, numbered: bool) -> FileName:
    match = _FILE_NAME.match(name)
    if match is None:
        raise BadRequest(f"invalid file name {name!r}")
    kind, extension = match["kind"], match["extension"] or ""
    token_text = match["tokens"] or ""
    tokens = token_text.split("-") if token_text else []
    number = None
    if numbered:
        if not tokens or not _NUMBER.match(tokens[0]) or len(tokens[0]) > 9 or int(tokens[0]) < 1:
            raise BadRequest(f"{name!r}: expected a segment number from 1")
        number = int(tokens.pop(0))
    file_index = clip_index = None
    language = sequence_id = None
    track_tokens: list[str] = []
    for token in tokens:
        if _TRACK_TOKEN.match(token):
            track_tokens.append(token)
        elif (match := _FILE_INDEX_TOKEN.match(token)) and file_index is None and int(match[1]) >= 1:
            file_index = int(match[1])
        elif (match := _CLIP_INDEX_TOKEN.match(token)) and clip_index is None and int(match[1]) >= 1:
            clip_index = int(match[1])
        elif _LANGUAGE_TOKEN.match(token) and language is None:
            language = _language(token[1:], name)
        elif (match := _SEQUENCE_TOKEN.match(token)) and sequence_id is None:
            sequence_id = match[1]
        else:
            raise BadRequest(f"{name!r}: unexpected token {token!r}")
    tracks = parse_track_spec("-".join(track_tokens)) if track_tokens else TrackSpec()
    rest = token_text.split("-", 1)[1] if numbered and "-" in token_text else ("" if numbered else token_text)
    return FileName(kind, extension, number, file_index, tracks, language, rest, sequence_id, clip_index)


_parsed = functools.lru_cache(maxsize=PARSED_KEPT)(parse_request_path)
_file_names = functools.lru_cache(maxsize=PARSED_KEPT)(_parse_file_name)
