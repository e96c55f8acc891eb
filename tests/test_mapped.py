"""Mapped mode (issue 14): nginx-vod-module's JSON media sets, from a fake mapping service on
127.0.0.1 (media read through the http storage) and from JSON files in local storage.

Every protocol's output is read back with ffprobe/ffmpeg and timed against the source files, whose
packets (sizes, times, key frames) ffprobe reads independently: each clip holds exactly the source's
frames of its range, segment durations add up, timestamps never go backwards (no audio overlap at a
join), discontinuities sit where clips change, and each DASH Period describes its own clip.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import httpx
import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.boxread import boxes, trun_sizes
from tests.conftest import (
    FIXTURES,
    LIVE_SETTINGS,
    LiveServer,
    ffmpeg_read_errors,
    ffprobe_json,
    load_movie,
    require_tools,
)
from tests.test_hds import FLV_HEADER, decode_abst, fragment_list
from tests.upstream import FaultServer
from vodorigin.errors import VodError
from vodorigin.mapping.mapped import mapped_request, parse_mapping
from vodorigin.media.model import Clip, MediaType
from vodorigin.mux import fmp4
from vodorigin.settings import Settings

MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}
F4M = "{http://ns.adobe.com/f4m/1.0}"
TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")


def source(path: str, **fields: object) -> dict[str, object]:
    return {"type": "source", "path": path, **fields}


MAPPINGS: dict[str, dict[str, object]] = {
    "single": {"sequences": [{"clips": [
        source("/moov_end.mp4", clipFrom=4000, clipTo=16000, tracks="v1-a1")]}]},
    "adaptive": {"sequences": [{"clips": [source("clip_180p.mp4")]}, {"clips": [source("clip_360p.mp4")]}]},
    "languages": {"sequences": [
        {"id": "main", "clips": [source("video_only.mp4")]},
        {"id": "ja", "language": "jpn", "label": "日本語", "clips": [source("audio_jpn.m4a")]},
        {"id": "en", "language": "eng", "label": "English", "default": True,
         "clips": [source("audio_eng.m4a")]},
        {"id": "fr", "language": "fra", "label": "Français", "clips": [source("subs_fr.vtt")]}]},
    # two different files (High 30 fps 48 kHz, then Main 24 fps 44.1 kHz), the second cut at 5 s
    "playlist": {"durations": [10000, 12000], "sequences": [{"clips": [
        source("bframes.mp4"), source("moov_end.mp4", clipFrom=5000)]}]},
    # one file twice: clips alike, one continuous timeline
    "continuous": {"durations": [10000, 8000], "discontinuity": False, "sequences": [{"clips": [
        source("clip_180p.mp4"), source("clip_180p.mp4", clipFrom=20000)]}]},
    # failures
    "broken": b'{"sequences": [',  # type: ignore[dict-item]
    "filters": {"sequences": [{"clips": [
        {"type": "rateFilter", "rate": 2, "source": source("bframes.mp4")}]}]},
    "wrong": {"sequences": [{"language": 5, "clips": [source("bframes.mp4")]}]},
    "badid": {"sequences": [{"id": "en-us", "clips": [source("bframes.mp4")]}]},  # not an s<id> token
    "missing": {"sequences": [{"clips": [source("no_such_file.mp4")]}]},
    "mismatch": {"durations": [10000, 8000], "sequences": [{"clips": [source("bframes.mp4")]}]},
}


def body(mapping: object) -> bytes:
    return mapping if isinstance(mapping, bytes) else json.dumps(mapping).encode()


@pytest.fixture(scope="module")
def service() -> Iterator[FaultServer]:
    """The mapping service (documents under /m/) and the media upstream (fixtures under /ok/)."""
    with FaultServer() as upstream:
        for name, mapping in MAPPINGS.items():
            upstream.documents[f"/m/{name}.json"] = body(mapping)
        upstream.statuses["/m/failing.json"] = 500
        yield upstream


@pytest.fixture(scope="module")
def mapped(service: FaultServer) -> Iterator[httpx.Client]:
    settings = Settings(mode="mapped", mapping_url=service.base, storage="http",  # type: ignore[arg-type]
                        http_base_url=f"{service.base}/ok", upstream_timeout=2.0, upstream_retries=0,
                        **LIVE_SETTINGS)
    with LiveServer(settings) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """JSON files in local storage naming media beside them; HLS in fMP4 (an EXT-X-MAP per clip)."""
    root = tmp_path_factory.mktemp("mapped-storage")
    (root / "media").mkdir()
    (root / "maps").mkdir()
    for name in ("bframes.mp4", "moov_end.mp4"):
        shutil.copy(FIXTURES / name, root / "media" / name)
    playlist = {"durations": [10000, 12000], "sequences": [{"clips": [
        source("/media/bframes.mp4"), source("/media/moov_end.mp4", clipFrom=5000)]}]}
    (root / "maps" / "playlist.json").write_text(json.dumps(playlist))
    (root / "maps" / "outside.json").write_text(json.dumps({"sequences": [{"clips": [source("../x.mp4")]}]}))
    settings = Settings(mode="mapped", media_root=str(root), hls_container="fmp4",  # type: ignore[arg-type]
                        **LIVE_SETTINGS)
    with LiveServer(settings) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        yield client


# ---- the sources, read by ffprobe ----

@functools.lru_cache(maxsize=16)
def source_packets(name: str) -> dict[str, list[dict]]:
    """Packets of each media type of a fixture, with exact times (Fractions of seconds)."""
    probed = ffprobe_json(FIXTURES / name, "-show_entries", "packet=stream_index,pts,duration,size,flags",
                          "-show_streams")
    streams = {s["index"]: s for s in probed["streams"] if s["codec_type"] in ("video", "audio")}
    found: dict[str, list[dict]] = {"video": [], "audio": []}
    for packet in probed["packets"]:
        stream = streams.get(packet["stream_index"])
        if stream is None:
            continue
        base = Fraction(stream["time_base"])
        found[stream["codec_type"]].append({"pts": int(packet["pts"]) * base, "size": int(packet["size"]),
                                            "duration": int(packet["duration"]) * base,
                                            "key": packet["flags"].startswith("K")})
    return found


def first_key_frame(name: str, seconds: float) -> Fraction:
    """Where a clip asked to start at `seconds` starts: the first key frame at or after it."""
    return min(p["pts"] for p in source_packets(name)["video"] if p["key"] and p["pts"] >= seconds)


def clip_packets(name: str, kind: str, start: Fraction, end: Fraction) -> list[dict]:
    """The source's packets a clip [start, end) holds, in decode order: video frames shown in it
    (cut on key frames), audio frames that start in it and end by its end (from the file's first
    frame, priming included, when the clip starts at 0)."""
    packets = source_packets(name)[kind]
    if kind == "video":
        return [p for p in packets if start <= p["pts"] < end]
    return [p for p in packets if (start == 0 or p["pts"] >= start) and p["pts"] + p["duration"] <= end]


def clip_sizes(name: str, kind: str, start: Fraction, end: Fraction) -> list[int]:
    return [p["size"] for p in clip_packets(name, kind, start, end)]


def same_frames(ours: list[dict], name: str, kind: str, start: Fraction, end: Fraction) -> None:
    """For TS (whose packets gain start codes, parameter sets and ADTS headers): the clip's frames by
    count and presentation times relative to the first, within the 90 kHz clock's rounding."""
    expected = clip_packets(name, kind, start, end)
    assert len(ours) == len(expected), (name, kind)
    got = [float(p["pts"] - ours[0]["pts"]) for p in ours]
    assert got == pytest.approx([float(p["pts"] - expected[0]["pts"]) for p in expected], abs=2.5e-5)


def media_info(name: str) -> dict[str, object]:
    streams = ffprobe_json(FIXTURES / name, "-show_streams")["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    audio = next(s for s in streams if s["codec_type"] == "audio")
    return {"profile": video["profile"], "rate": Fraction(video["r_frame_rate"]),
            "sample_rate": int(audio["sample_rate"])}


def playlist_clips() -> list[tuple[str, Fraction, Fraction, Fraction]]:
    """(file, start, end, offset) of each clip of the "playlist" mapping: a clip starts on the first
    key frame at or after its clipFrom and ends at clipFrom + its duration (or its file's end), and
    sits at the sum of the durations before it."""
    end_of_file = max(p["pts"] + p["duration"] for p in source_packets("moov_end.mp4")["video"])
    second_start = first_key_frame("moov_end.mp4", 5)
    return [("bframes.mp4", Fraction(0), Fraction(10), Fraction(0)),
            ("moov_end.mp4", second_start, min(Fraction(17), end_of_file), Fraction(10))]


# ---- what we serve, read by ffprobe ----

def probe_bytes(data: bytes, tmp_path: Path, name: str) -> dict[str, list[dict]]:
    """Packets of a stream we served (saved to a file), by media type, times in seconds."""
    path = tmp_path / name
    path.write_bytes(data)
    probed = ffprobe_json(path, "-show_entries", "packet=stream_index,pts,dts,duration,size,flags",
                          "-show_streams")
    streams = {s["index"]: s for s in probed["streams"]}
    found: dict[str, list[dict]] = {"video": [], "audio": [], "info": probed["streams"]}  # type: ignore[dict-item]
    for packet in probed["packets"]:
        stream = streams[packet["stream_index"]]
        base = Fraction(stream["time_base"])
        found[stream["codec_type"]].append({
            "pts": int(packet["pts"]) * base, "dts": int(packet["dts"]) * base,
            "duration": int(packet.get("duration", 0)) * base, "size": int(packet["size"]),
            "key": packet["flags"].startswith("K")})
    return found


def check_rising(packets: dict[str, list[dict]], tolerance: Fraction = Fraction(1, 90000)) -> None:
    """Video decode times strictly rise; audio frames never overlap (each starts where or after the
    one before ends)."""
    dts = [p["dts"] for p in packets["video"]]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), "video timestamps go backwards"
    audio = packets["audio"]
    overlaps = [(a["pts"], a["duration"], b["pts"]) for a, b in zip(audio, audio[1:], strict=False)
                if b["pts"] < a["pts"] + a["duration"] - tolerance]
    assert not overlaps, f"audio frames overlap: {overlaps[:3]}"


def ffmpeg_decodes(path: Path) -> None:
    require_tools()
    command = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def hls_index(client: httpx.Client, path: str) -> tuple[str, m3u8.M3U8]:
    """The first variant's media playlist of a mapped set (its URL and parsed form)."""
    response = client.get(f"/hls/{path}/master.m3u8")
    assert response.status_code == 200, response.text
    variant = m3u8.loads(response.text).playlists[0].uri
    index = client.get(f"/hls/{path}/{variant}")
    assert index.status_code == 200, index.text
    return f"/hls/{path}/{variant}", m3u8.loads(index.text)


def by_clip(playlist: m3u8.M3U8) -> list[list[m3u8.Segment]]:
    """The playlist's segments, split where EXT-X-DISCONTINUITY stands."""
    clips: list[list[m3u8.Segment]] = []
    for segment in playlist.segments:
        if segment.discontinuity or not clips:
            clips.append([])
        clips[-1].append(segment)
    return clips


# ---- tests ----

def test_single_clip_holds_its_range(mapped: httpx.Client, tmp_path: Path) -> None:
    """A source with clipFrom/clipTo and tracks: the frames of [4 s, 16 s), no more, 12 s listed."""
    url, playlist = hls_index(mapped, "m/single.json")
    start, end = first_key_frame("moov_end.mp4", 4), Fraction(16)
    assert sum(s.duration for s in playlist.segments) == pytest.approx(float(end - start), abs=0.001)
    data = b"".join(mapped.get(f"{url.rsplit('/', 1)[0]}/{s.uri}").content for s in playlist.segments)
    ours = probe_bytes(data, tmp_path, "single.ts")
    for kind in ("video", "audio"):
        same_frames(ours[kind], "moov_end.mp4", kind, start, end)
    check_rising(ours)
    assert ffmpeg_read_errors(f"{mapped.base_url}{url}") == ""


def test_playlist_in_hls(mapped: httpx.Client, tmp_path: Path) -> None:
    """Two files: EXT-X-DISCONTINUITY where the second starts, EXTINFs that add up to each clip's
    real length and match each segment's content (not the nominal durations), every source frame
    of each range, timestamps that keep rising across the join with no audio overlap, and the
    second clip placed at the first's declared duration."""
    url, playlist = hls_index(mapped, "m/playlist.json")
    clips = by_clip(playlist)
    expected = playlist_clips()
    assert len(clips) == len(expected) and not playlist.segments[0].discontinuity
    base = url.rsplit("/", 1)[0]
    whole = bytearray()
    first_pts = []
    for segments, (name, start, end, offset) in zip(clips, expected, strict=True):
        assert sum(s.duration for s in segments) == pytest.approx(float(end - start), abs=0.001), name
        data = bytearray()
        for number, segment in enumerate(segments):
            content = mapped.get(f"{base}/{segment.uri}").content
            video = probe_bytes(content, tmp_path, f"{name}-{number}.ts")["video"]
            shown = max(p["pts"] + p["duration"] for p in video) - min(p["pts"] for p in video)
            assert float(shown) == pytest.approx(segment.duration, abs=0.002), (name, number)
            data += content
        ours = probe_bytes(bytes(data), tmp_path, f"{name}.ts")
        for kind in ("video", "audio"):
            same_frames(ours[kind], name, kind, start, end)
        first_pts.append(min(p["pts"] for p in ours["video"]) - offset)
        whole += data
    assert first_pts[1] == pytest.approx(first_pts[0], abs=1e-4)  # clip 2 starts at 10 s on the timeline
    check_rising(probe_bytes(bytes(whole), tmp_path, "whole.ts"))
    assert ffmpeg_read_errors(f"{mapped.base_url}{url}") == ""


def test_playlist_in_hls_fmp4_from_json_in_storage(stored: httpx.Client, tmp_path: Path) -> None:
    """fMP4: each clip has its own EXT-X-MAP (init-c1, init-c2) describing its own file."""
    url, playlist = hls_index(stored, "maps/playlist.json")
    base = url.rsplit("/", 1)[0]
    clips = by_clip(playlist)
    maps = [segments[0].init_section.uri for segments in clips]
    assert [m.split("-")[1] for m in maps] == ["c1", "c2"]
    assert all(s.init_section.uri == maps[i] for i, segments in enumerate(clips) for s in segments)
    for (name, start, end, _), init, segments in zip(playlist_clips(), maps, clips, strict=True):
        data = stored.get(f"{base}/{init}").content
        data += b"".join(stored.get(f"{base}/{s.uri}").content for s in segments)
        ours = probe_bytes(data, tmp_path, f"{name}.mp4")
        video = next(s for s in ours["info"] if s["codec_type"] == "video")  # type: ignore[index]
        audio = next(s for s in ours["info"] if s["codec_type"] == "audio")  # type: ignore[index]
        info = media_info(name)
        assert (video["profile"], Fraction(video["r_frame_rate"]), int(audio["sample_rate"])) == \
            (info["profile"], info["rate"], info["sample_rate"])
        for kind in ("video", "audio"):
            assert [p["size"] for p in ours[kind]] == clip_sizes(name, kind, start, end), (name, kind)
        check_rising(ours)


def test_playlist_in_dash_has_a_period_per_clip(mapped: httpx.Client, tmp_path: Path) -> None:
    """One Period per clip at the declared offsets, each describing its own clip (codec, frame
    rate, sample rate), its segments numbered in the Period and timed as its SegmentTimeline says."""
    response = mapped.get("/dash/m/playlist.json/manifest.mpd")
    assert response.status_code == 200, response.text
    mpd = etree.fromstring(response.content)
    periods = mpd.findall("d:Period", MPD)
    expected = playlist_clips()
    assert len(periods) == len(expected)
    for period, (name, start, end, offset) in zip(periods, expected, strict=True):
        assert period.get("start") == f"PT{float(offset):.3f}S"
        info = media_info(name)
        for adaptation in period.findall("d:AdaptationSet", MPD):
            kind = adaptation.get("contentType")
            (representation,) = adaptation.findall("d:Representation", MPD)
            if kind == "video":
                assert Fraction(representation.get("frameRate")) == info["rate"]
                profile = "avc1.64" if info["profile"] == "High" else "avc1.4d"  # profile_idc 100 or 77
                assert representation.get("codecs").startswith(profile)
            else:
                assert int(representation.get("audioSamplingRate")) == info["sample_rate"]
            template = representation.find("d:SegmentTemplate", MPD)
            timescale, pto = int(template.get("timescale")), int(template.get("presentationTimeOffset"))
            rep = representation.get("id")
            times = template.findall("d:SegmentTimeline/d:S", MPD)
            durations = [int(s.get("d")) for s in times for _ in range(int(s.get("r", 0)) + 1)]
            init = template.get("initialization").replace("$RepresentationID$", rep)
            data = mapped.get(f"/dash/m/playlist.json/{init}").content
            for number in range(1, len(durations) + 1):
                media = template.get("media").replace("$RepresentationID$", rep)
                media = media.replace("$Number$", str(number))
                fragment = mapped.get(f"/dash/m/playlist.json/{media}")
                assert fragment.status_code == 200, (name, media)
                data += fragment.content
            ours = probe_bytes(data, tmp_path, f"{name}-{kind}.mp4")
            assert [p["size"] for p in ours[kind]] == clip_sizes(name, kind, start, end), (name, kind)
            first = min(p["pts"] for p in ours[kind])
            listed = Fraction(int(times[0].get("t")), timescale)
            assert float(listed - first) == pytest.approx(0, abs=0.001)
            span = max(p["dts"] + p["duration"] for p in ours[kind]) - min(p["dts"] for p in ours[kind])
            # the listed durations reach the clip's end, which audio frames end by (within a frame)
            short = Fraction(sum(durations), timescale) - span
            assert 0 <= float(short) < (0.001 if kind == "video" else 0.025)
            on_timeline = first - Fraction(pto, timescale) + offset  # where the clip's media starts
            lead = Fraction(1, 20) if start == 0 else 0  # audio priming before a file's start
            assert offset - lead <= on_timeline < offset + Fraction(1, 20), (name, kind, float(on_timeline))


def test_continuous_playlist_in_every_protocol(mapped: httpx.Client, tmp_path: Path) -> None:
    """discontinuity false: HLS with no EXT-X-DISCONTINUITY, DASH one Period, MSS and HDS one
    timeline; each holds both ranges' frames with timestamps rising across the join."""
    ranges = [(Fraction(0), Fraction(10)), (Fraction(20), Fraction(28))]
    expected = {kind: [size for start, end in ranges
                       for size in clip_sizes("clip_180p.mp4", kind, start, end)]
                for kind in ("video", "audio")}
    url, playlist = hls_index(mapped, "m/continuous.json")
    assert not any(s.discontinuity for s in playlist.segments)
    assert sum(s.duration for s in playlist.segments) == pytest.approx(18.0, abs=0.001)
    base = url.rsplit("/", 1)[0]
    ours = probe_bytes(b"".join(mapped.get(f"{base}/{s.uri}").content for s in playlist.segments),
                       tmp_path, "continuous.ts")
    for kind in expected:
        first = len(clip_packets("clip_180p.mp4", kind, *ranges[0]))
        same_frames(ours[kind][:first], "clip_180p.mp4", kind, *ranges[0])
        same_frames(ours[kind][first:], "clip_180p.mp4", kind, *ranges[1])
        # the second range sits 10 s (the first's duration) after the first on the timeline
        starts = [clip_packets("clip_180p.mp4", kind, *ranges[n])[0]["pts"] - ranges[n][0] for n in (0, 1)]
        gap = ours[kind][first]["pts"] - ours[kind][0]["pts"]
        assert float(gap) == pytest.approx(float(10 + starts[1] - starts[0]), abs=2.5e-5)
    check_rising(ours)

    mpd = etree.fromstring(mapped.get("/dash/m/continuous.json/manifest.mpd").content)
    assert len(mpd.findall("d:Period", MPD)) == 1
    assert mpd.get("mediaPresentationDuration") == "PT18.000S"
    assert "-c1-" not in etree.tostring(mpd).decode()
    for representation in mpd.iterfind(".//d:Representation", MPD):
        kind = representation.getparent().get("contentType")
        template = representation.find("d:SegmentTemplate", MPD)
        count = sum(int(s.get("r", 0)) + 1 for s in template.iterfind("d:SegmentTimeline/d:S", MPD))
        rep = representation.get("id")
        data = mapped.get(f"/dash/m/continuous.json/init-{rep}.mp4").content
        data += b"".join(mapped.get(f"/dash/m/continuous.json/fragment-{n}-{rep}.m4s").content
                         for n in range(1, count + 1))
        ours = probe_bytes(data, tmp_path, f"continuous-{rep}.mp4")
        assert [p["size"] for p in ours[kind]] == expected[kind], kind
        check_rising(ours)

    manifest = mapped.get("/mss/m/continuous.json/manifest")
    assert manifest.status_code == 200, manifest.text
    for stream in etree.fromstring(manifest.content).findall("StreamIndex"):
        kind, level = stream.get("Type"), stream.find("QualityLevel")
        chunks = [(int(c.get("t")), int(c.get("d"))) for c in stream.findall("c")]
        assert all(t + d == following for (t, d), (following, _) in zip(chunks, chunks[1:], strict=False))
        sizes, whole = [], bytearray()
        url = stream.get("Url").replace("{bitrate}", level.get("Bitrate"))
        for t, _ in chunks:
            path = url.replace("{start time}", str(t))
            data = mapped.get(f"/mss/m/continuous.json/{path}").content
            tfxd = data.index(TFXD) + 16
            assert data[tfxd] == 1 and int.from_bytes(data[tfxd + 4 : tfxd + 12], "big") == t
            sizes += trun_sizes(data)
            whole += data
        assert sizes == expected[kind], kind
        # behind an init with the 100 ns timescale (a Smooth client builds its own), ffmpeg decodes it
        track = load_movie("clip_180p.mp4").tracks_of(MediaType(kind))[0]
        path = tmp_path / f"smooth-{kind}.mp4"
        path.write_bytes(fmp4.init_segment([replace(track, timescale=10_000_000)]) + bytes(whole))
        ffmpeg_decodes(path)
        check_rising(probe_bytes(path.read_bytes(), tmp_path, f"smooth-{kind}-copy.mp4"))

    root = etree.fromstring(mapped.get("/hds/m/continuous.json/manifest.f4m").content)
    check_hds(mapped, "m/continuous.json", root, expected, tmp_path)


def test_playlist_in_hds_and_mss(mapped: httpx.Client, tmp_path: Path) -> None:
    """HDS plays the two files as one timeline (each fragment opens with its codec's headers); a
    Smooth QualityLevel has one codec configuration, so MSS refuses clips that differ, saying why."""
    clips = playlist_clips()
    expected = {kind: [size for name, start, end, _ in clips for size in clip_sizes(name, kind, start, end)]
                for kind in ("video", "audio")}
    root = etree.fromstring(mapped.get("/hds/m/playlist.json/manifest.f4m").content)
    _, start, end, offset = clips[-1]
    assert float(root.findtext(f"{F4M}duration")) == pytest.approx(float(offset + end - start), abs=0.001)
    check_hds(mapped, "m/playlist.json", root, expected, tmp_path, decode=False)
    refused = mapped.get("/mss/m/playlist.json/manifest")
    assert refused.status_code == 415 and "codec configuration" in refused.json()["error"]


def check_hds(client: httpx.Client, path: str, root: etree._Element, expected: dict[str, list[int]],
              tmp_path: Path, decode: bool = True) -> None:
    """Every fragment of the bootstrap, its tags' times rising, the sizes of the expected frames."""
    (entry,) = root.findall(f"{F4M}media")
    info = root.find(f"{F4M}bootstrapInfo")
    _, segments, afrt = decode_abst(base64.b64decode(info.text))
    whole = bytearray(FLV_HEADER)
    for number, _ in enumerate(fragment_list(afrt, segments[0][1]), start=1):
        response = client.get(f"/hds/{path}/{entry.get('url')}Seg1-Frag{number}")
        assert response.status_code == 200, response.text
        (_, _, _), (_, mdat, mdat_end) = boxes(response.content)
        whole += response.content[mdat:mdat_end]
    ours = probe_bytes(bytes(whole), tmp_path, "whole.flv")
    assert {kind: [p["size"] for p in ours[kind]] for kind in expected} == expected
    for kind in ("video", "audio"):
        times = [p["dts"] for p in ours[kind]]
        assert times == sorted(times), f"{kind} timestamps go backwards"
    if decode:
        ffmpeg_decodes(tmp_path / "whole.flv")


def test_sequences_with_languages(mapped: httpx.Client, tmp_path: Path) -> None:
    """Sequences' language, label and default reach every protocol; s<id> picks one sequence."""
    master = m3u8.loads(mapped.get("/hls/m/languages.json/master.m3u8").text)
    audio = {m.language: m for m in master.media if m.type == "AUDIO"}
    assert {k: (m.name, m.default) for k, m in audio.items()} == \
        {"ja": ("日本語", "NO"), "en": ("English", "YES")}
    subtitles = [m for m in master.media if m.type == "SUBTITLES"]
    assert [(m.language, m.name) for m in subtitles] == [("fr", "Français")]
    assert ffmpeg_read_errors(f"{mapped.base_url}/hls/m/languages.json/master.m3u8") == ""

    mpd = etree.fromstring(mapped.get("/dash/m/languages.json/manifest.mpd").content)
    sets = {(a.get("contentType"), a.get("lang")): a for a in mpd.iterfind(".//d:AdaptationSet", MPD)}
    assert set(sets) == {("video", None), ("audio", "ja"), ("audio", "en"), ("text", "fr")}
    assert sets[("audio", "en")].find("d:Role", MPD).get("value") == "main"
    assert sets[("audio", "ja")].findtext("d:Label", namespaces=MPD) == "日本語"

    smooth = etree.fromstring(mapped.get("/mss/m/languages.json/manifest").content)
    languages = [s.get("Language") for s in smooth.findall("StreamIndex") if s.get("Type") == "audio"]
    assert sorted(languages) == ["en", "ja"]

    english = m3u8.loads(mapped.get("/hls/m/languages.json/master-sen.m3u8").text)
    (variant,) = english.playlists
    assert variant.uri.startswith("index-sen-")
    index = m3u8.loads(mapped.get(f"/hls/m/languages.json/{variant.uri}").text)
    data = b"".join(mapped.get(f"/hls/m/languages.json/{s.uri}").content for s in index.segments)
    ours = probe_bytes(data, tmp_path, "english.ts")
    assert not ours["video"]
    same_frames(ours["audio"], "audio_eng.m4a", "audio", Fraction(0), Fraction(10**6))


def test_adaptive_set(mapped: httpx.Client) -> None:
    """Two sequences of one picture: two variants, one AdaptationSet, one video StreamIndex."""
    master = m3u8.loads(mapped.get("/hls/m/adaptive.json/master.m3u8").text)
    assert sorted(p.stream_info.resolution for p in master.playlists) == [(320, 180), (640, 360)]
    mpd = etree.fromstring(mapped.get("/dash/m/adaptive.json/manifest.mpd").content)
    (video,) = mpd.iterfind(".//d:AdaptationSet[@contentType='video']", MPD)
    assert sorted(int(r.get("height")) for r in video.findall("d:Representation", MPD)) == [180, 360]
    smooth = etree.fromstring(mapped.get("/mss/m/adaptive.json/manifest").content)
    (stream,) = [s for s in smooth.findall("StreamIndex") if s.get("Type") == "video"]
    assert stream.get("QualityLevels") == "2"
    assert ffmpeg_read_errors(f"{mapped.base_url}/hls/m/adaptive.json/master.m3u8") == ""


def test_mappings_are_cached(mapped: httpx.Client, service: FaultServer) -> None:
    for _ in range(3):
        assert mapped.get("/dash/m/adaptive.json/manifest.mpd").status_code == 200
    assert sum(n for key, n in service.requests.items() if key.startswith("GET /m/adaptive.json ")) == 1


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/hls/m/broken.json/master.m3u8", 422, "not JSON"),
    ("/hls/m/filters.json/master.m3u8", 415, "rateFilter"),
    ("/hls/m/wrong.json/master.m3u8", 422, "language"),
    ("/hls/m/badid.json/master.m3u8", 422, ".id"),
    ("/hls/m/mismatch.json/master.m3u8", 422, "durations"),
    ("/hls/m/missing.json/master.m3u8", 404, ""),
    ("/hls/m/unknown.json/master.m3u8", 404, ""),  # the mapping service's 404
    ("/hls/m/failing.json/master.m3u8", 502, ""),  # its 500
    ("/dash/slow/bframes.mp4/manifest.mpd", 504, ""),  # it stalls
])
def test_mapping_failures_are_clear(path: str, status: int, says: str, mapped: httpx.Client) -> None:
    response = mapped.get(path)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    assert mapped.get("/hls/m/single.json/master.m3u8").status_code == 200  # and the server serves on
    assert mapped.get("/health").status_code == 200


def test_json_in_storage_failures(stored: httpx.Client) -> None:
    assert stored.get("/hls/maps/none.json/master.m3u8").status_code == 404
    assert stored.get("/hls/maps/outside.json/master.m3u8").status_code == 400
    assert stored.get("/hls/maps/playlist.json/master.m3u8").status_code == 200


# ---- the mapping parser against hostile JSON ----

SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=12))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
FIELDS = ["sequences", "durations", "discontinuity", "clipFrom", "clipTo", "referenceClipIndex", "clips",
          "type", "path", "tracks", "language", "label", "default", "id", "cache", "playlistType"]


def _replace_somewhere(document: object, field: str, value: object, depth: int) -> object:
    """The document with `field` set to `value` in the first object at or below `depth`."""
    if isinstance(document, dict):
        if depth == 0:
            return {**document, field: value}
        return {k: _replace_somewhere(v, field, value, depth - 1) for k, v in document.items()}
    if isinstance(document, list):
        return [_replace_somewhere(v, field, value, depth) for v in document]
    return document


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(["single", "languages", "playlist", "continuous"]),
       field=st.sampled_from(FIELDS), value=JSON_VALUES, depth=st.integers(0, 3))
def test_mapping_parser_refuses_what_it_cannot_read(base: str, field: str, value: object, depth: int) -> None:
    """Any field of a valid mapping set to any JSON value: a mapping, or a clear 4xx error."""
    document = _replace_somewhere(MAPPINGS[base], field, value, depth)
    try:
        mapped = parse_mapping(json.dumps(document).encode(), "fuzz", 32, 48 * 3600 * 1000)
        mapped_request(mapped, "hls", "master.m3u8", Clip())
    except VodError as error:
        assert 400 <= error.status < 500, error


@settings(max_examples=200, deadline=None)
@given(document=JSON_VALUES)
def test_mapping_parser_refuses_any_json(document: object) -> None:
    try:
        parse_mapping(json.dumps(document).encode(), "fuzz", 32, 48 * 3600 * 1000)
    except VodError as error:
        assert 400 <= error.status < 500, error
