"""Several audio languages and subtitles in every protocol (issue 12), checked with tools that are not
ours: m3u8 and ffmpeg/ffprobe for playlists and segments, webvtt-py for WebVTT, lxml for MPDs,
Smooth manifests, F4M and TTML. Cue texts and times are compared with the source files as webvtt-py
reads them. Browser playback (hearing the second language, seeing a cue) is tests/test_browser_languages.py.
"""

from __future__ import annotations

import html
import io
import json
import re
import struct
import subprocess
from pathlib import Path

import httpx
import m3u8
import pytest
import webvtt
from lxml import etree

from tests.boxread import boxes, trun_samples, trun_sizes
from tests.conftest import (
    FIXTURES,
    LIVE_SETTINGS,
    LiveServer,
    ffmpeg_read_errors,
    ffprobe_json,
    require_tools,
)
from vodorigin.settings import Settings

PARTS = (",video_only.mp4,audio_jpn.m4a,audio_eng.m4a,lang/eng/subs_en.srt,lang/fra/subs_fr.vtt,"
         "lang/deu/subs_de.ttml,")
URLSET = f"{PARTS}.urlset"  # the example of the issue, with a TTML file too
MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}
TTML = "{http://www.w3.org/ns/ttml}"
CUE_TIMES = [(500, 2000), (3000, 4600), (5200, 6800), (8000, 11500), (12000, 24500), (25000, 26500),
             (27250, 29750)]
PRESENTATION_DELAY_MS = 1400  # what every output timestamp carries (TS 126000 at 90 kHz)


def ms(timestamp: str) -> int:
    hours, minutes, seconds = timestamp.split(":")
    return round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)


def plain(text: str) -> str:
    """Cue text without tags, escapes or SRT override blocks, on one line."""
    text = re.sub(r"\{\\[^}]*\}", "", html.unescape(re.sub(r"<[^>]+>", "", text)))
    return " ".join(text.split())


def source_cues(name: str) -> list[tuple[int, int, str]]:
    """The cues of a fixture as independent readers see them (webvtt-py; lxml for TTML)."""
    path = FIXTURES / name
    if name.endswith(".ttml"):
        paragraphs = etree.parse(str(path)).getroot().iter(f"{TTML}p")
        texts = [plain(" ".join(p.itertext())) for p in paragraphs]
        return [(start, end, text) for (start, end), text in zip(CUE_TIMES, texts, strict=True)]
    captions = webvtt.from_srt(str(path)) if name.endswith(".srt") else webvtt.read(str(path))
    return [(ms(c.start), ms(c.end), plain(c.raw_text)) for c in captions]


def vtt_cues(body: str) -> list[tuple[int, int, str]]:
    captions = webvtt.from_buffer(io.StringIO(body))
    return [(ms(c.start), ms(c.end), plain(c.raw_text)) for c in captions]


def master(http: httpx.Client, protocol_path: str) -> m3u8.M3U8:
    response = http.get(protocol_path)
    assert response.status_code == 200, response.text
    return m3u8.loads(response.text)


# --- HLS ------------------------------------------------------------------------------------------


def test_hls_audio_renditions_of_one_file(http: httpx.Client) -> None:
    """Both languages are EXT-X-MEDIA renditions (before: the second was unreachable), labelled from
    the file (hdlr name, udta name), one DEFAULT=YES, and the variant names their group."""
    playlist = master(http, "/hls/multi_audio.mp4/master.m3u8")
    audio = [m for m in playlist.media if m.type == "AUDIO"]
    assert [(m.language, m.name, m.default, m.autoselect, m.channels) for m in audio] == [
        ("ja", "日本語", "YES", "YES", "2"), ("en", "English dub", "NO", "YES", "2")]
    assert len({m.group_id for m in audio}) == 1
    (variant,) = playlist.playlists
    assert variant.stream_info.audio == audio[0].group_id and "mp4a.40.2" in variant.stream_info.codecs
    video_only = master(http, f"/hls/multi_audio.mp4/{variant.uri}")
    first = http.get(f"/hls/multi_audio.mp4/{video_only.segments[0].uri}").content
    assert [s["codec_type"] for s in _probe_bytes(first)] == ["video"]
    for rendition, language in zip(audio, ("jpn", "eng"), strict=True):
        segments = master(http, f"/hls/multi_audio.mp4/{rendition.uri}").segments
        streams = _probe_bytes(http.get(f"/hls/multi_audio.mp4/{segments[1].uri}").content)
        assert [(s["codec_type"], s["tags"]["language"]) for s in streams] == [("audio", language)]


def test_hls_bandwidth_counts_the_largest_audio(http: httpx.Client) -> None:
    playlist = master(http, "/hls/multi_audio.mp4/master.m3u8")
    video = master(http, f"/hls/multi_audio.mp4/{playlist.playlists[0].uri}")
    peaks = []
    for rendition in [video, *(master(http, f"/hls/multi_audio.mp4/{m.uri}") for m in playlist.media)]:
        rates = [len(http.get(f"/hls/multi_audio.mp4/{s.uri}").content) * 8 / s.duration
                 for s in rendition.segments]
        peaks.append(max(rates))
    assert playlist.playlists[0].stream_info.bandwidth >= peaks[0] + max(peaks[1:])


def test_several_audios_muxed_in_one_ts_carry_their_languages(http: httpx.Client) -> None:
    streams = _probe_bytes(http.get("/hls/multi_audio.mp4/seg-2-v1-a1-a2.ts").content)
    assert [(s["codec_type"], s.get("tags", {}).get("language")) for s in streams] == [
        ("video", None), ("audio", "jpn"), ("audio", "eng")]


def test_hls_urlset_of_video_audio_and_subtitle_files(http: httpx.Client) -> None:
    """The issue's URL: part parameters inside the multi-URL (before: a 400); one video-only variant
    with the audio files as renditions (before: a video-only variant and audio-only variants)."""
    playlist = master(http, f"/hls/{URLSET}/master.m3u8")
    audio = [(m.language, m.name, m.uri) for m in playlist.media if m.type == "AUDIO"]
    subtitles = [(m.language, m.name, m.uri) for m in playlist.media if m.type == "SUBTITLES"]
    assert audio == [("ja", "Japanese", "index-f2-a1.m3u8"), ("en", "English", "index-f3-a1.m3u8")]
    assert subtitles == [("en", "English", "index-f4-t1.m3u8"), ("fr", "French", "index-f5-t1.m3u8"),
                         ("de", "German", "index-f6-t1.m3u8")]
    assert [(p.uri, p.stream_info.subtitles) for p in playlist.playlists] == [("index-f1-v1.m3u8", "subs")]


@pytest.mark.parametrize(("media_set", "uri", "source"), [
    (URLSET, "index-f4-t1.m3u8", "subs_en.srt"), (URLSET, "index-f5-t1.m3u8", "subs_fr.vtt"),
    (URLSET, "index-f6-t1.m3u8", "subs_de.ttml"), ("subs_embedded.mp4", "index-t1.m3u8", "subs_en.srt")])
def test_hls_webvtt_segments(media_set: str, uri: str, source: str, http: httpx.Client) -> None:
    """Every WebVTT segment lines up with a video segment, maps cue time 0 to MPEG-TS 126000 (the
    PTS of presentation time 0 in our segments), holds exactly the cues shown during it; together
    they give every cue of the source once (no cue lost, none doubled), styling overrides gone."""
    subtitles = master(http, f"/hls/{media_set}/{uri}")
    video_uri = next(p.uri for p in master(http, f"/hls/{media_set}/master.m3u8").playlists)
    video = master(http, f"/hls/{media_set}/{video_uri}")
    assert [s.duration for s in subtitles.segments] == [s.duration for s in video.segments]
    seen: set[tuple[int, int, str]] = set()
    start = 0
    for segment in subtitles.segments:
        response = http.get(f"/hls/{media_set}/{segment.uri}")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/vtt")
        assert response.text.splitlines()[1] == "X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000"
        end = start + round(segment.duration * 1000)
        cues = vtt_cues(response.text)
        assert all(cue_start < end and cue_end > start for cue_start, cue_end, _ in cues)
        seen.update(cues)
        start = end
    assert sorted(seen) == source_cues(source)
    assert not any("{\\" in text for _, _, text in seen)


def test_cue_time_zero_is_the_first_frame(http: httpx.Client) -> None:
    """X-TIMESTAMP-MAP's MPEGTS value is the PTS our first video frame is shown at."""
    first = http.get(f"/hls/{URLSET}/seg-1-f1-v1.ts").content
    packets = _probe_bytes(first, "-show_entries", "packet=pts,stream_index")
    assert min(int(p["pts"]) for p in packets) == PRESENTATION_DELAY_MS * 90


def test_ffmpeg_reads_every_rendition(live: LiveServer) -> None:
    """ffmpeg reads the masters and MPDs with all their audio renditions, languages and names."""
    for path in ("/hls/multi_audio.mp4/master.m3u8", f"/hls/{URLSET}/master.m3u8",
                 "/dash/multi_audio.mp4/manifest.mpd", f"/dash/{URLSET}/manifest.mpd"):
        assert ffmpeg_read_errors(f"{live.base}{path}") == "", path
    streams = ffprobe_json(f"{live.base}/hls/multi_audio.mp4/master.m3u8", "-show_streams")["streams"]
    audio = [(s["tags"]["language"], s["tags"]["comment"]) for s in streams if s["codec_type"] == "audio"]
    assert audio == [("ja", "日本語"), ("en", "English dub")]
    streams = ffprobe_json(f"{live.base}/dash/{URLSET}/manifest.mpd", "-show_streams")["streams"]
    assert [(s["codec_type"], s.get("tags", {}).get("language")) for s in streams] == [
        ("video", None), ("audio", "ja"), ("audio", "en"), ("subtitle", "en"), ("subtitle", "fr"),
        ("subtitle", "de")]


# --- DASH -----------------------------------------------------------------------------------------


def adaptation_sets(http: httpx.Client, path: str) -> list[etree._Element]:
    response = http.get(path)
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content).findall(".//d:AdaptationSet", MPD)


def describe(adaptation: etree._Element) -> tuple[str | None, ...]:
    label = adaptation.find("d:Label", MPD)
    role = adaptation.find("d:Role", MPD)
    return (adaptation.get("contentType"), adaptation.get("lang"), label.text if label is not None else None,
            role.get("value") if role is not None else None)


def test_dash_one_adaptation_set_per_language(http: httpx.Client) -> None:
    """Before: both languages in one set labelled with the first's language (a player would
    switch language as if it were bit rate)."""
    sets = adaptation_sets(http, "/dash/multi_audio.mp4/manifest.mpd")
    assert [describe(s) for s in sets] == [("video", None, None, None), ("audio", "ja", "日本語", "main"),
                                           ("audio", "en", "English dub", "alternate")]
    representations = [[r.get("id") for r in s.findall("d:Representation", MPD)] for s in sets]
    assert representations == [["v1"], ["a1"], ["a2"]]


def test_dash_urlset_lists_every_audio_file_and_subtitle(http: httpx.Client) -> None:
    """Before: only the first audio file was listed, and subtitle files were a 422."""
    sets = adaptation_sets(http, f"/dash/{URLSET}/manifest.mpd")
    assert [describe(s) for s in sets] == [
        ("video", None, None, None), ("audio", "ja", "Japanese", "main"),
        ("audio", "en", "English", "alternate"), ("text", "en", "English", "subtitle"),
        ("text", "fr", "French", "subtitle"),
        ("text", "de", "German", "subtitle")]
    for adaptation, source in zip(sets[3:], ("subs_en.srt", "subs_fr.vtt", "subs_de.ttml"), strict=True):
        assert adaptation.get("mimeType") == "text/vtt"
        base_url = adaptation.find("d:Representation/d:BaseURL", MPD).text
        response = http.get(f"/dash/{URLSET}/{base_url}")
        assert response.status_code == 200
        assert vtt_cues(response.text) == source_cues(source)


def test_dash_duration_of_files_with_other_timescales(http: httpx.Client) -> None:
    """Before: ticks of one timescale divided by another (PT112.5S for this 30 s set)."""
    root = etree.fromstring(http.get("/dash/,video_only.mp4,audio_jpn.m4a,.urlset/manifest.mpd").content)
    seconds = float(root.get("mediaPresentationDuration")[2:-1])
    expected = max(float(ffprobe_json(FIXTURES / name, "-show_format")["format"]["duration"])
                   for name in ("video_only.mp4", "audio_jpn.m4a"))
    assert abs(seconds - expected) < 0.1


def test_audio_channel_configuration(http: httpx.Client, live: LiveServer, tmp_path: Path) -> None:
    """23003-3: 6 channels for 5.1 AAC (nginx-vod-module writes 1); E-AC-3 5.1: Dolby's mask."""
    sets = adaptation_sets(http, "/dash/audio_51.m4a/manifest.mpd")
    configuration = sets[0].find(".//d:AudioChannelConfiguration", MPD)
    assert configuration.get("schemeIdUri") == "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
    assert configuration.get("value") == "6" == str(ffprobe_json(FIXTURES / "audio_51.m4a", "-show_streams")
                                                    ["streams"][0]["channels"])
    require_tools()
    eac3 = tmp_path / "eac3.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(FIXTURES / "audio_51.m4a"),
                    "-c:a", "eac3", "-b:a", "384k", str(eac3)], check=True, timeout=120)
    with LiveServer(Settings(media_root=str(tmp_path))) as server:
        root = etree.fromstring(httpx.get(f"{server.base}/dash/eac3.mp4/manifest.mpd").content)
    configuration = root.find(".//d:AudioChannelConfiguration", MPD)
    assert configuration.get("schemeIdUri") == "tag:dolby.com,2014:dash:audio_channel_configuration:2011"
    assert configuration.get("value") == "F801"  # L C R Ls Rs + LFE


@pytest.mark.parametrize("kind", ["wvtt", "stpp"])
def test_dash_subtitle_segments_in_fmp4(kind: str) -> None:
    """dash_subtitle_format wvtt or stpp: text segments cut where the video's are; their samples,
    read with a box walker of the test's own, give the source cues (stpp: TTML times on the
    track's media timeline, which carries the presentation delay)."""
    settings = Settings(media_root=str(FIXTURES), dash_subtitle_format=kind, **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(settings) as server, httpx.Client(base_url=server.base, timeout=30) as client:
        sets = adaptation_sets(client, f"/dash/{URLSET}/manifest.mpd")
        video_s = sets[0].findall(".//d:S", MPD)
        text = sets[3]
        representation = text.find("d:Representation", MPD)
        assert text.get("mimeType") == "application/mp4"
        assert representation.get("codecs") == {"wvtt": "wvtt", "stpp": "stpp.ttml.im1t"}[kind]
        count = sum(int(s.get("r", "0")) + 1 for s in text.findall(".//d:S", MPD))
        assert count == sum(int(s.get("r", "0")) + 1 for s in video_s)
        init = client.get(f"/dash/{URLSET}/init-f4-t1.mp4").content
        entry, handler = {"wvtt": (b"wvtt", b"text"), "stpp": (b"stpp", b"subt")}[kind]
        assert entry in init and handler in init
        pieces: set[tuple[int, int, str]] = set()
        for number in range(1, count + 1):
            fragment = client.get(f"/dash/{URLSET}/fragment-{number}-f4-t1.m4s").content
            pieces.update(_text_samples(fragment, kind))
    assert _merge_pieces(pieces) == source_cues("subs_en.srt")


# --- Smooth Streaming and HDS ----------------------------------------------------------------------


def test_mss_stream_per_language_and_text(http: httpx.Client) -> None:
    root = etree.fromstring(http.get(f"/mss/{URLSET}/manifest").content)
    streams = [(s.get("Type"), s.get("Language"), s.get("Name")) for s in root.findall("StreamIndex")]
    assert streams == [("video", None, "video"), ("audio", "ja", "audio_f2-a1"),
                       ("audio", "en", "audio_f3-a1"), ("text", "en", "text_f4-t1"),
                       ("text", "fr", "text_f5-t1"), ("text", "de", "text_f6-t1")]
    one = etree.fromstring(http.get("/mss/multi_audio.mp4/manifest").content)
    assert [s.get("Language") for s in one.findall("StreamIndex")] == [None, "ja", "en"]
    text = root.findall("StreamIndex")[3]
    assert text.get("Subtype") == "SUBT" and text.find("QualityLevel").get("FourCC") == "TTML"
    pieces: set[tuple[int, int, str]] = set()
    for chunk in text.findall("c"):
        url = text.get("Url").replace("{bitrate}", text.find("QualityLevel").get("Bitrate"))
        response = http.get(f"/mss/{URLSET}/{url.replace('{start time}', chunk.get('t'))}")
        assert response.status_code == 200
        pieces.update(_text_samples(response.content, "stpp"))
    assert _merge_pieces(pieces) == source_cues("subs_en.srt")


def test_mss_second_language_fragments_hold_its_samples(http: httpx.Client) -> None:
    root = etree.fromstring(http.get("/mss/multi_audio.mp4/manifest").content)
    english = root.findall("StreamIndex")[2]
    level = english.find("QualityLevel")
    sizes = []
    for chunk in english.findall("c"):
        url = english.get("Url").replace("{bitrate}", level.get("Bitrate"))
        response = http.get(f"/mss/multi_audio.mp4/{url.replace('{start time}', chunk.get('t'))}")
        sizes += trun_sizes(response.content)
    entries = ("-show_entries", "packet=stream_index,size")
    packets = ffprobe_json(FIXTURES / "multi_audio.mp4", *entries)["packets"]
    assert sizes == [int(p["size"]) for p in packets if p["stream_index"] == 2]


def test_hds_alternate_audio(http: httpx.Client, tmp_path: Path) -> None:
    root = etree.fromstring(http.get("/hds/multi_audio.mp4/manifest.f4m").content)
    media = root.findall("{http://ns.adobe.com/f4m/1.0}media")
    assert [(m.get("url"), m.get("alternate"), m.get("lang"), m.get("label")) for m in media] == [
        ("frag-v1-a1-", None, None, None), ("frag-a2-", "true", "en", "English dub")]
    fragment = http.get("/hds/multi_audio.mp4/frag-a2-Seg1-Frag2").content
    mdat = fragment.index(b"mdat") + 4
    flv = b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00" + fragment[mdat:]
    (tmp_path / "a.flv").write_bytes(flv)
    streams = ffprobe_json(tmp_path / "a.flv", "-show_streams")["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"]


# --- URL parameters that are applied -------------------------------------------------------------


@pytest.mark.parametrize(("path", "kept"), [
    (f"/hls/{URLSET}/master-lfra.m3u8", ["fr"]), (f"/hls/{URLSET}/master-leng.m3u8", ["en"]),
])
def test_language_token_filters_audio_and_subtitles(path: str, kept: list[str], http: httpx.Client) -> None:
    """l<lang> keeps the audio and subtitle tracks of a language (before: accepted and ignored)."""
    playlist = master(http, path)
    assert {m.language for m in playlist.media} == set(kept)
    assert playlist.playlists  # video is never filtered
    one = master(http, "/hls/multi_audio.mp4/master-leng.m3u8")  # one audio left: muxed with the video
    assert [p.uri for p in one.playlists] == ["index-v1-a2.m3u8"] and not one.media


def test_language_token_in_dash_and_mss(http: httpx.Client) -> None:
    sets = adaptation_sets(http, "/dash/multi_audio.mp4/manifest-ljpn.mpd")
    assert [describe(s)[:2] for s in sets] == [("video", None), ("audio", "ja")]
    root = etree.fromstring(http.get("/mss/multi_audio.mp4/manifest-leng").content)
    assert [s.get("Name") for s in root.findall("StreamIndex")] == ["video", "audio_a2"]
    assert http.get("/hls/multi_audio.mp4/master-lxx.m3u8").status_code == 400
    assert http.get("/hls/multi_audio.mp4/master-lfra.m3u8").status_code == 404


def test_lang_parameter_sets_a_part_language(http: httpx.Client) -> None:
    playlist = master(http, "/hls/,video_only.mp4,lang/spa/audio_only.m4a,.urlset/master.m3u8")
    audio = [(m.language, m.name) for m in playlist.media if m.type == "AUDIO"]
    assert audio == [("es", "Spanish")]
    assert http.get("/hls/lang/zzz/bframes.mp4/master.m3u8").status_code == 400


def test_shift_parameter_delays_the_named_streams(http: httpx.Client) -> None:
    """shift/a500 presents the audio 500 ms later; shift/s1000 the subtitles 1 s later."""
    plain_audio = _first_pts(http.get("/hls/bframes.mp4/seg-1-a1.ts").content)
    shifted_audio = _first_pts(http.get("/hls/shift/a500/bframes.mp4/seg-1-a1.ts").content)
    assert abs(shifted_audio - plain_audio - 500 * 90) <= 2
    shifted = http.get("/hls/,video_only.mp4,shift/s1000/lang/eng/subs_en.srt,.urlset/seg-1-f2-t1.vtt").text
    assert vtt_cues(shifted)[0][:2] == (1500, 3000)
    assert http.get("/hls/shift/x5/bframes.mp4/master.m3u8").status_code == 400


def test_tracks_parameter_per_part(http: httpx.Client) -> None:
    """tracks/ inside a part applies to that part: video from one file, audio from another."""
    playlist = master(http, "/hls/,tracks/v1/bframes.mp4,tracks/a1/multi_audio.mp4,.urlset/master.m3u8")
    assert [m.uri for m in playlist.media if m.type == "AUDIO"] == ["index-f2-a1.m3u8"]
    assert [p.uri for p in playlist.playlists] == ["index-f1-v1.m3u8"]


# --- helpers -------------------------------------------------------------------------------------


def _probe_bytes(data: bytes, *arguments: str) -> list[dict]:
    require_tools()
    command = ["ffprobe", "-v", "error", "-of", "json", "-show_streams", *arguments, "-"]
    result = subprocess.run(command, input=data, capture_output=True, timeout=60, check=True)
    parsed = json.loads(result.stdout)
    return parsed.get("packets") or parsed["streams"]


def _first_pts(ts: bytes) -> int:
    packets = _probe_bytes(ts, "-show_entries", "packet=pts")
    return min(int(p["pts"]) for p in packets)


def _text_samples(fragment: bytes, kind: str) -> set[tuple[int, int, str]]:
    """The cues a text fragment shows, as (start ms, end ms, text) of presentation time."""
    top = boxes(fragment)
    mdat = next(b for b in top if b[0] == b"mdat")
    moof = next(b for b in top if b[0] == b"moof")
    traf = next(b for b in boxes(fragment, moof[1], moof[2]) if b[0] == b"traf")
    inner = {b[0]: b for b in boxes(fragment, traf[1], traf[2])}
    timescale = 1000 if b"tfdt" in inner else 10_000_000
    if b"tfdt" in inner:
        base = struct.unpack_from(">Q", fragment, inner[b"tfdt"][1] + 4)[0]
    else:  # Smooth Streaming: tfxd (uuid) holds the time
        base = struct.unpack_from(">Q", fragment, inner[b"uuid"][1] + 20)[0]
    durations = [sample[0x100] for sample in trun_samples(fragment, inner[b"trun"])]
    sizes = trun_sizes(fragment)
    found: set[tuple[int, int, str]] = set()
    position, time = mdat[1], base
    for duration, size in zip(durations, sizes, strict=True):
        sample = fragment[position : position + size]
        if kind == "stpp":
            # TTML times are media times (DASH), or count from the sample's start in Smooth
            origin = 0 if b"tfdt" in inner else round(time * 1000 / timescale)
            for p in etree.fromstring(sample).iter(f"{TTML}p"):
                begin, end = ms(p.get("begin")) + origin, ms(p.get("end")) + origin
                text = plain(" ".join(p.itertext()))
                found.add((begin - PRESENTATION_DELAY_MS, end - PRESENTATION_DELAY_MS, text))
        else:
            start = round(time * 1000 / timescale) - PRESENTATION_DELAY_MS
            end = round((time + duration) * 1000 / timescale) - PRESENTATION_DELAY_MS
            for cue in boxes(sample):
                if cue[0] == b"vttc":
                    payload = next(b for b in boxes(sample, cue[1], cue[2]) if b[0] == b"payl")
                    found.add((start, end, plain(sample[payload[1] : payload[2]].decode())))
        position += size
        time += duration
    return found


def _merge_pieces(pieces: set[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Pieces of one cue cut at sample or fragment boundaries, joined back into the cue; sorted."""
    merged: list[tuple[int, int, str]] = []
    for start, end, text in sorted(pieces, key=lambda p: (p[2], p[0])):
        if merged and merged[-1][2] == text and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, text)
        else:
            merged.append((start, end, text))
    return sorted(merged)
