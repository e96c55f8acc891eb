"""Every protocol's requests on one (hostile) input, named the way clients name them, in process.

An input is an MP4 (or M4A) file, or a sidecar subtitle document (.vtt, .srt, .ttml). It is stored
as input.<suffix> next to two untouched fixtures (clean/bframes.mp4, clean/subs_fr.vtt) and asked
for through URLs (inprocess.Runner), so urlsets, path parameters and file-name tokens take the
server's own path:

* an MP4: every manifest of the file alone, then what the manifests list (the first, middle and
  last segment of each rendition, every init segment, sub-<rep>.vtt files), segments past the end
  and in the other HLS container, the three DASH manifest formats each with one of the subtitle
  formats (webvtt, wvtt, stpp); clips, tracks/ selections, lang/ and shift/ parameters and l<lang>
  tokens; urlsets with a subtitle file and after a clean video; progressive-download clips;
* a subtitle document: vodorigin.media.subtitles.sidecar_movie on its bytes, which must give cues
  that keep the cue model's rules or a MediaError (outcomes.BrokenCues), then the document as the
  subtitle part of a urlset after a clean video: HLS WebVTT segments, DASH WebVTT files and
  wvtt/stpp fragments, Smooth TTML fragments, clipped and shifted.

Cues of a subtitle track embedded in an MP4 (tx3g, wvtt) are read and decoded the first time a
subtitle segment asks for them (inprocess.Runner.respond).
"""

from __future__ import annotations

import base64
import math
import re
import struct
import warnings
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from lxml import etree

from tests.fuzz import FIXTURES, SUBTITLE_SUFFIXES
from tests.fuzz.inprocess import CONTEXT, DEFAULT_BUDGET, Budget, Runner
from tests.fuzz.outcomes import BrokenCues, CpuBudgetExceeded, Report, check_cue_list
from vodorigin.errors import MediaError
from vodorigin.media.model import MediaType, Movie
from vodorigin.media.subtitles import sidecar_movie
from vodorigin.packagers.output import Output, PackagerContext

CLEAN_VIDEO = "clean/bframes.mp4"
CLEAN_SUBTITLES = "clean/subs_fr.vtt"
DASH_MODES = (("segmenttimeline", "webvtt"), ("segmenttemplate", "wvtt"), ("segmentlist", "stpp"))
MAX_URL_MS = 10**10 - 1  # urls.MAX_MILLISECONDS: clip times past it are a 400
TEXT = r"-t\d|text_"  # the names of subtitle playlists, segments and representations
SECOND = r"f2-"  # ... and of the second part of a urlset
MPD = "{urn:mpeg:dash:schema:mpd:2011}"
F4M = "{http://ns.adobe.com/f4m/1.0}"


def exercise(data: bytes, name: str = "fuzz.mp4", budget: Budget = DEFAULT_BUDGET,
             memory_mb: int | None = None) -> Report:
    """Every request of one input; stops at the first `slow` outcome."""
    suffix = Path(name).suffix.lower() or ".mp4"
    path = f"input{suffix}"
    runner = Runner({path: data, **clean_files()}, budget, memory_mb)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if suffix in SUBTITLE_SUFFIXES:
                subtitle_requests(runner, path)
            else:
                media_requests(runner, path)
    except CpuBudgetExceeded:
        pass  # recorded by the step
    return runner.report


@cache
def clean_files() -> dict[str, bytes]:
    return {path: (FIXTURES / Path(path).name).read_bytes() for path in (CLEAN_VIDEO, CLEAN_SUBTITLES)}


# --- the two kinds of input ----------------------------------------------------------------------


def media_requests(runner: Runner, path: str) -> None:
    movie = runner.load(path, "parse")
    runner.run("skeleton", lambda: runner.compare_skeleton(path))
    if movie is None:
        return
    runner.load(CLEAN_VIDEO)
    runner.load(CLEAN_SUBTITLES)
    hls(runner, path, "", extra=single_file_names(movie))
    dash(runner, path, "")
    mss(runner, path, "")
    hds(runner, path, "")
    duration = duration_ms(movie)
    progressive(runner, path, duration)
    clips(runner, path, duration)
    selections(runner, path, movie)
    languages(runner, path, movie)
    subtitle_set = f",{path},lang/fra/{CLEAN_SUBTITLES},.urlset"
    hls(runner, subtitle_set, "[+subtitles]")
    dash(runner, subtitle_set, "[+subtitles]", DASH_MODES[::2])
    mss(runner, subtitle_set, "[+subtitles]")
    second = f",{CLEAN_VIDEO},{path},.urlset"
    hls(runner, second, "[second]", focus=SECOND)
    dash(runner, second, "[second]", DASH_MODES[1:2], focus=SECOND)
    mss(runner, second, "[second]")
    hds(runner, second, "[second]")


def subtitle_requests(runner: Runner, path: str) -> None:
    source = runner.source(path)
    runner.run("sidecar", lambda: check_cues(sidecar_movie(source, runner.files[path])), expected=MediaError)
    if runner.load(path) is None or runner.load(CLEAN_VIDEO) is None:
        return
    alone = f"lang/deu/{path}"
    runner.request("hls[alone] master.m3u8", "hls", f"{alone}/master.m3u8")
    runner.request("dash[alone] manifest.mpd", "dash", f"{alone}/manifest.mpd")
    urlset = f",{CLEAN_VIDEO},lang/fra/{path},.urlset"
    hls(runner, urlset, "[urlset]", focus=TEXT)
    dash(runner, urlset, "[urlset]", focus=TEXT)
    mss(runner, urlset, "[urlset]", focus=TEXT)
    clipped = f"clipFrom/2500/clipTo/8000/,{CLEAN_VIDEO},{path},.urlset"
    hls(runner, clipped, "[clip 2500-8000]", focus=TEXT)
    dash(runner, clipped, "[clip 2500-8000]", DASH_MODES[1:], focus=TEXT)
    shifted = f",{CLEAN_VIDEO},shift/s1500/{path},.urlset"
    hls(runner, shifted, "[shift s1500]", focus=TEXT)
    dash(runner, shifted, "[shift s1500]", DASH_MODES[2:], focus=TEXT)


def check_cues(movie: Movie) -> Movie:
    """A sidecar movie: one subtitle track whose cues keep the rules of vodorigin/text/cues.py."""
    if len(movie.tracks) != 1 or movie.tracks[0].cues is None:
        raise BrokenCues(f"a sidecar movie of {len(movie.tracks)} tracks, not one track with cues")
    track = movie.tracks[0]
    cues = check_cue_list(track.cues or ())
    if track.presentation_end != max((cue.end_ms for cue in cues), default=0):
        raise BrokenCues(f"presentation_end {track.presentation_end} is not the last cue end")
    return movie


# --- per protocol --------------------------------------------------------------------------------


def hls(runner: Runner, set_path: str, tag: str, extra: list[str] | None = None, focus: str = "") -> None:
    """The master, every playlist it names (and `extra` names), their segments; with `focus`, only
    the playlists and segments whose names match it."""

    def get(name: str) -> Output | None:
        return runner.request(f"hls{tag} {name}", "hls", f"{set_path}/{name}")

    master = get("master.m3u8")
    playlists = [name for name in extra or [] if name.endswith(".m3u8")]
    if master is not None:
        playlists = uris(text_of(master)) + playlists
    segments: list[str] = []
    for name in dict.fromkeys(p for p in playlists if re.search(focus, p)):
        playlist = get(name)
        if playlist is not None:
            segments += playlist_segments(text_of(playlist), past_end=extra is not None)
    segments += [name for name in extra or [] if not name.endswith(".m3u8")]
    for name in dict.fromkeys(s for s in segments if re.search(focus, s)):
        get(name)
        if extra is not None and re.fullmatch(r"seg-.*\.(ts|m4s)", name):  # both containers are served
            stem, extension = name.rsplit(".", 1)
            get(f"{stem}.{'m4s' if extension == 'ts' else 'ts'}")


def single_file_names(movie: Movie) -> list[str]:
    """Names no manifest of a single file lists: each track's own playlist, the I-frame playlists,
    the default rendition's init segment and the master filtered by language."""
    keys = [t.key for t in movie.tracks]
    firsts = {t.media_type: t.key for t in reversed(movie.tracks)}
    if MediaType.VIDEO in firsts or MediaType.AUDIO in firsts:
        firsts.pop(MediaType.SUBTITLE, None)
    default = "-".join(k for k in keys if k in firsts.values())
    names = ["index.m3u8", *(f"index-{key}.m3u8" for key in keys)]
    names += [f"iframes-{key}.m3u8" for key in keys if key.startswith("v")]
    names += [f"master-l{code}.m3u8" for code in language_codes(movie)[:1]]
    return names + ([f"init-{default}.mp4"] if default else [])


def dash(runner: Runner, set_path: str, tag: str, modes: tuple[tuple[str, str], ...] = DASH_MODES,
         focus: str = "") -> None:
    """Per (manifest format, subtitle format): the MPD, then each Representation's init segment and
    fragments (or its WebVTT file); with `focus`, only the Representations whose ids match it."""
    for manifest_format, subtitle_format in modes:
        context = replace(CONTEXT, dash_manifest_format=manifest_format, dash_subtitle_format=subtitle_format)

        def get(name: str, context: PackagerContext = context, label: str = manifest_format) -> Output | None:
            return runner.request(f"dash{tag} {label} {name}", "dash", f"{set_path}/{name}", context)

        manifest = get("manifest.mpd")
        if manifest is None:
            continue
        for representation in mpd_representations(body_of(manifest)):
            if not re.search(focus, representation.id):
                continue
            if representation.base_url:
                get(representation.base_url)
                continue
            get(f"init-{representation.id}.mp4")
            for number in pick_numbers(representation.count):
                get(f"fragment-{number}-{representation.id}.m4s")


def mss(runner: Runner, set_path: str, tag: str, focus: str = "") -> None:
    manifest = runner.request(f"mss{tag} manifest", "mss", f"{set_path}/manifest")
    if manifest is not None:
        for name in [n for n in mss_fragments(body_of(manifest)) if re.search(focus, n)]:
            runner.request(f"mss{tag} {name}", "mss", f"{set_path}/{name}")


def hds(runner: Runner, set_path: str, tag: str) -> None:
    manifest = runner.request(f"hds{tag} manifest.f4m", "hds", f"{set_path}/manifest.f4m")
    if manifest is not None:
        for url, count in f4m_media(body_of(manifest)):
            for number in pick_numbers(count, past_end=True):
                name = f"{url}Seg1-Frag{number}"
                runner.request(f"hds{tag} {name}", "hds", f"{set_path}/{name}")


def progressive(runner: Runner, path: str, duration: int) -> None:
    """Clips and track selections as new MP4s (and the whole file, which the server streams as is)."""
    clips = [(1000, 5000), (0, 1), (duration - 500, None), (duration // 2, duration // 2 + 1),
             (duration - 1, duration + 1000)]
    for start, end in clips:
        prefix = clip_prefix(start, end)
        runner.request(f"pd clip {prefix or 'whole'}", "pd", f"{prefix}{path}")
    for tracks in ("v1", "a1", "t1"):
        runner.request(f"pd tracks {tracks}", "pd", f"tracks/{tracks}/{path}")


def clips(runner: Runner, path: str, duration: int) -> None:
    """A clip near the end and a clipFrom..clipTo range: HLS playlists and segments, one DASH mode."""
    for start, end in ((duration - 300, None), (duration // 3, duration // 3 + 2500)):
        prefix = clip_prefix(max(start, 1), end)
        tag = f"[clip {prefix.replace('/', ' ').strip()}]"
        hls(runner, f"{prefix}{path}", tag)
        dash(runner, f"{prefix}{path}", tag, DASH_MODES[:1])


def selections(runner: Runner, path: str, movie: Movie) -> None:
    """The tracks/ path parameter: a media set of only some tracks."""
    letters = {t.key[0] for t in movie.tracks}
    for spec in [s for s in ("v1", "a1", "t1") if s[0] in letters] + ["v0-a0-t0"]:
        tag = f"[tracks {spec}]"
        for name in ["master.m3u8", "index.m3u8", "seg-1.ts"] + (["seg-1-t1.vtt"] if "t" in spec else []):
            runner.request(f"hls{tag} {name}", "hls", f"tracks/{spec}/{path}/{name}")
        runner.request(f"dash{tag} manifest.mpd", "dash", f"tracks/{spec}/{path}/manifest.mpd")


def languages(runner: Runner, path: str, movie: Movie) -> None:
    """l<lang> tokens for the file's own languages, and lang/ with shift/ on every track type."""
    for code in language_codes(movie)[:2]:
        runner.request(f"dash[l{code}] manifest-l{code}.mpd", "dash", f"{path}/manifest-l{code}.mpd")
        runner.request(f"mss[l{code}] manifest-l{code}", "mss", f"{path}/manifest-l{code}")
    shifted = f"lang/fra/shift/v500-a250-s1000/{path}"
    hls(runner, shifted, "[lang shift]")
    dash(runner, shifted, "[lang shift]", DASH_MODES[1:2])
    mss(runner, shifted, "[lang shift]")


# --- helpers -------------------------------------------------------------------------------------


def duration_ms(movie: Movie) -> int:
    """The longest audio or video track in milliseconds (0 when the metadata makes no sense)."""
    ends = [t.presentation_end * 1000 // t.timescale for t in movie.tracks
            if t.media_type is not MediaType.SUBTITLE and t.timescale > 0]
    return min(max(max(ends, default=0), 0), MAX_URL_MS)


def clip_prefix(start: int, end: int | None) -> str:
    start = min(max(start, 0), MAX_URL_MS)
    prefix = f"clipFrom/{start}/" if start else ""
    return prefix + (f"clipTo/{min(max(end, 1), MAX_URL_MS)}/" if end is not None else "")


def language_codes(movie: Movie) -> list[str]:
    """The ISO 639 codes of the audio and subtitle tracks' languages, as l<lang> tokens take them."""
    codes = [t.language.split("-")[0].lower() for t in movie.tracks if t.media_type is not MediaType.VIDEO]
    return list(dict.fromkeys(c for c in codes if re.fullmatch(r"[a-z]{2,3}", c) and c != "und"))


def text_of(output: Output) -> str:
    return body_of(output).decode(errors="replace")


def body_of(output: Output) -> bytes:
    return getattr(output, "body", b"")


def pick_numbers(count: int, past_end: bool = False) -> list[int]:
    """Segment numbers a client asks for: the first, the middle, the last (and one past it)."""
    count = max(count, 1)
    numbers = [1, (count + 1) // 2, count] + ([count + 1] if past_end else [])
    return list(dict.fromkeys(numbers))


def uris(text: str) -> list[str]:
    """The URIs of a playlist: its non-tag lines and URI="..." attributes (EXT-X-MEDIA, EXT-X-MAP...)."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(dict.fromkeys(lines + re.findall(r'URI="([^"]+)"', text)))


def playlist_segments(text: str, past_end: bool = False) -> list[str]:
    """The first, middle and last segments of a media playlist, its EXT-X-MAP, and (past_end) the
    segment after the last."""
    listed = list(dict.fromkeys(line for line in text.splitlines() if line and not line.startswith("#")))
    chosen = [listed[i - 1] for i in pick_numbers(len(listed))] if listed else []
    if past_end and listed and (match := re.fullmatch(r"seg-(\d+)(.*)", listed[-1])):
        chosen.append(f"seg-{int(match[1]) + 1}{match[2]}")
    return chosen + re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text)


@dataclass(frozen=True, slots=True)
class Representation:
    id: str
    count: int  # segments listed (1 when unknown)
    base_url: str = ""  # a whole-file Representation (WebVTT subtitles)


def mpd_representations(body: bytes) -> list[Representation]:
    """Representations of an MPD in any of the three addressing modes, or with a BaseURL."""
    root = parse_xml(body)
    if root is None:
        return []
    duration = _iso_seconds(root.get("mediaPresentationDuration", "PT0S"))
    result = []
    for rep in root.iter(f"{MPD}Representation"):
        base_url = rep.findtext(f"{MPD}BaseURL") or ""
        count = sum(1 + int(s.get("r", "0")) for s in rep.iter(f"{MPD}S"))
        count += len(list(rep.iter(f"{MPD}SegmentURL"))) if not count else 0
        template = rep.find(f"{MPD}SegmentTemplate")
        if not count and template is not None and template.get("duration"):
            step = int(template.get("duration", "0")) / int(template.get("timescale", "1") or 1)
            count = math.ceil(duration / step) if step > 0 and math.isfinite(duration) else 1
        result.append(Representation(rep.get("id", "v1"), min(max(count, 1), 10**9), base_url))
    return result


def _iso_seconds(text: str) -> float:
    match = re.fullmatch(r"PT([0-9.eE+-]+|nan|inf)S", text)
    try:
        return float(match[1]) if match else 0.0
    except ValueError:
        return 0.0


def mss_fragments(body: bytes) -> list[str]:
    """Fragment names (from each StreamIndex's Url template) for the first, middle and last chunk of
    every QualityLevel."""
    root = parse_xml(body)
    names: list[str] = []
    for stream in root.iter("StreamIndex") if root is not None else []:
        template = stream.get("Url", "")
        times = [c.get("t", "0") for c in stream.iter("c")]
        for level in stream.iter("QualityLevel"):
            for number in pick_numbers(len(times)) if times else []:
                names.append(template.replace("{bitrate}", level.get("Bitrate", "0"))
                             .replace("{start time}", times[number - 1]))
    return names


def f4m_media(body: bytes) -> list[tuple[str, int]]:
    """(url, fragment count) of each media element, the count read from its bootstrap's asrt."""
    root = parse_xml(body)
    if root is None:
        return []
    counts = {info.get("id"): _asrt_fragments(info.text or "") for info in root.iter(f"{F4M}bootstrapInfo")}
    return [(media.get("url", "frag-"), counts.get(media.get("bootstrapInfoId"), 1))
            for media in root.iter(f"{F4M}media")]


def _asrt_fragments(encoded: str) -> int:
    """Fragments per segment of the first asrt entry (F4V 10.1: version/flags, quality count 0,
    entry count, first segment, fragments per segment)."""
    abst = base64.b64decode(encoded)
    at = abst.find(b"asrt")
    if at < 0 or at + 21 > len(abst):
        return 1
    return struct.unpack_from(">I", abst, at + 17)[0] or 1


def parse_xml(body: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
