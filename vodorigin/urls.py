"""The URL grammar: /<protocol>/<media-set path>/<file name> -> MediaRequest (REFERENCE.md).

* A urlset `prefix,middle1,middle2,suffix.urlset` names several files (prefix+middle+suffix).
* Path parameters `/name/value/` may stand anywhere in the media-set path: clipFrom, clipTo (ms),
  tracks (v1-a1; v0/a0 = all of that type), shift, lang (parsed now, applied by later features).
* File-name tokens follow the name's prefix, dash-separated: a segment number, f<n> (file of the
  set), v<n>/a<n> (tracks, 1-based per type), l<lang>. Anything else is a 400 with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vodorigin.errors import BadRequest
from vodorigin.media.model import Clip, TrackSpec

PROTOCOLS = ("hls", "dash", "hds", "mss", "pd")
PATH_PARAMETERS = ("clipFrom", "clipTo", "tracks", "shift", "lang")
MAX_MILLISECONDS = 10**10  # ~115 days: larger clip times are typing errors, not media
URLSET_SUFFIX = ".urlset"

# re.ASCII everywhere: \d must not match other scripts' digits, which int() would accept (an alias URL)
_QUALITY_LEVELS = re.compile(r"^QualityLevels\(\d{1,12}\)\Z", re.ASCII)
_TRACK_TOKEN = re.compile(r"^([va])(\d{1,3})\Z", re.ASCII)
_FILE_INDEX_TOKEN = re.compile(r"^f(\d{1,3})\Z", re.ASCII)
_LANGUAGE_TOKEN = re.compile(r"^l([a-z]{2,3})\Z", re.ASCII)
_NUMBER = re.compile(r"^\d{1,11}\Z", re.ASCII)  # path parameter values and segment numbers
_FILE_NAME = re.compile(r"^(?P<kind>[a-zA-Z]+)(?:-(?P<tokens>[^.]*))?\.(?P<extension>[a-z0-9]{1,5})\Z",
                        re.ASCII)


@dataclass(frozen=True, slots=True)
class FileName:
    """A parsed file name such as seg-3-f1-v1-a1.ts."""

    kind: str  # seg, index, master, init, fragment...
    extension: str
    number: int | None = None  # segment number (1-based) when the name carries one
    file_index: int | None = None  # f<n>, 1-based
    tracks: TrackSpec = TrackSpec()
    language: str | None = None
    tokens: str = ""  # the token text after the kind, as written (reused in child URLs)


@dataclass(frozen=True, slots=True)
class MediaRequest:
    protocol: str
    files: tuple[str, ...]  # relative paths of the media set
    file_name: str  # the last path component ("" for /pd/, where the file is the set)
    clip: Clip = Clip()
    tracks: TrackSpec = TrackSpec()  # from the tracks/ path parameter
    is_urlset: bool = False


def check_url_path(path: str, raw_path: bytes) -> None:
    """Refuse URL forms that would alias another URL: control characters (a route pattern's `$`
    matches before a trailing newline, so `/pd/a.mp4%0a` would serve a.mp4) and encoded slashes or
    backslashes (`/hls%2fa.mp4/...` is decoded into another path structure)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise BadRequest("control character in the URL path")
    lowered = raw_path.lower()
    if b"%2f" in lowered or b"%5c" in lowered:
        raise BadRequest("encoded slash in the URL path")


def parse_request_path(protocol: str, path: str, max_urlset_parts: int = 32) -> MediaRequest:
    """The part of a URL after /<protocol>/ -> MediaRequest, or BadRequest."""
    if protocol not in PROTOCOLS:
        raise BadRequest(f"unknown protocol {protocol!r}")
    components = path.split("/")
    if any(c == "" for c in components):
        raise BadRequest("empty path component")
    file_name = "" if protocol == "pd" else components.pop()
    if protocol == "mss" and components and components[-1].startswith("QualityLevels("):
        if not _QUALITY_LEVELS.match(components[-1]):
            raise BadRequest(f"malformed {components[-1]!r} (QualityLevels(<bitrate>))")
        file_name = f"{components.pop()}/{file_name}"  # QualityLevels(<bitrate>)/Fragments(video=<t>)
    media_path, parameters = _split_parameters(components)
    if not media_path:
        raise BadRequest("no media path")
    clip = _clip(parameters)
    tracks = parse_track_spec(parameters["tracks"]) if "tracks" in parameters else TrackSpec()
    last = media_path[-1]
    if last.endswith(URLSET_SUFFIX):
        if protocol == "pd":
            raise BadRequest("progressive download serves one file, not a urlset")
        names = expand_urlset(last[: -len(URLSET_SUFFIX)], max_urlset_parts)
        directory = "/".join(media_path[:-1])
        files = tuple(f"{directory}/{n}" if directory else n for n in names)
        return MediaRequest(protocol, files, file_name, clip, tracks, True)
    return MediaRequest(protocol, ("/".join(media_path),), file_name, clip, tracks)


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


def expand_urlset(spec: str, max_parts: int) -> list[str]:
    """'clip_,360,720,.mp4' -> ['clip_360.mp4', 'clip_720.mp4'] (prefix, middles, suffix)."""
    parts = spec.split(",")
    if len(parts) < 3:
        raise BadRequest(f"urlset {spec!r} needs a prefix, at least one middle and a suffix")
    prefix, middles, suffix = parts[0], parts[1:-1], parts[-1]
    if len(middles) > max_parts:
        raise BadRequest(f"urlset has {len(middles)} parts; at most {max_parts}")
    if any(not m for m in middles):
        raise BadRequest(f"urlset {spec!r} has an empty part")
    return [f"{prefix}{middle}{suffix}" for middle in middles]


def parse_track_spec(text: str) -> TrackSpec:
    """'v1-a2' -> TrackSpec(video={1}, audio={2}); 'v0' = every video track."""
    video: set[int] = set()
    audio: set[int] = set()
    for token in text.split("-"):
        match = _TRACK_TOKEN.match(token)
        if match is None:
            raise BadRequest(f"invalid track token {token!r} in {text!r}")
        (video if match[1] == "v" else audio).add(int(match[2]))
    return TrackSpec(frozenset(video) if video else None, frozenset(audio) if audio else None)


def parse_file_name(name: str, numbered: bool = False) -> FileName:
    """Split a file name into its kind, tokens and extension; `numbered` requires a segment number."""
    match = _FILE_NAME.match(name)
    if match is None:
        raise BadRequest(f"invalid file name {name!r}")
    token_text = match["tokens"] or ""
    tokens = token_text.split("-") if token_text else []
    number = None
    if numbered:
        if not tokens or not _NUMBER.match(tokens[0]) or len(tokens[0]) > 9 or int(tokens[0]) < 1:
            raise BadRequest(f"{name!r}: expected a segment number from 1")
        number = int(tokens.pop(0))
    file_index, language = None, None
    track_tokens: list[str] = []
    for token in tokens:
        if _TRACK_TOKEN.match(token):
            track_tokens.append(token)
        elif _FILE_INDEX_TOKEN.match(token) and file_index is None and int(token[1:]) >= 1:
            file_index = int(token[1:])
        elif _LANGUAGE_TOKEN.match(token) and language is None:
            language = token[1:]
        else:
            raise BadRequest(f"{name!r}: unexpected token {token!r}")
    tracks = parse_track_spec("-".join(track_tokens)) if track_tokens else TrackSpec()
    rest = token_text.split("-", 1)[1] if numbered and "-" in token_text else ("" if numbered else token_text)
    return FileName(match["kind"], match["extension"], number, file_index, tracks, language, rest)
