"""HLS end to end with real tools: every segment of every fixture through ffprobe, whole streams
through ffmpeg -xerror."""

from __future__ import annotations

import statistics
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import (
    FIXTURES,
    MEDIA_FILES,
    ffmpeg_read_errors,
    ffprobe_json,
    ffprobe_packets,
)

URLSET = "clip_,180p,360p,.mp4.urlset"
MEDIA_SETS = [*MEDIA_FILES, URLSET]


def variant_playlists(http: httpx.Client, media_set: str) -> list[tuple[str, m3u8.M3U8]]:
    master = http.get(f"/hls/{media_set}/master.m3u8")
    assert master.status_code == 200, master.text
    playlists = m3u8.loads(master.text).playlists
    assert playlists
    result = []
    for playlist in playlists:
        response = http.get(f"/hls/{media_set}/{playlist.uri}")
        assert response.status_code == 200, response.text
        result.append((playlist.uri, m3u8.loads(response.text)))
    return result


@pytest.mark.parametrize("media_set", MEDIA_SETS)
def test_every_segment_reads_in_ffprobe(media_set: str, hls_server: tuple[httpx.Client, str],
                                        tmp_path: Path) -> None:
    """Each segment (fMP4: with its init segment in front) reads alone and starts on a key frame.
    The whole variant (segments concatenated) has strictly increasing dts with no gap and no overlap
    between packets, and the sum of EXTINF equals the media's duration within one frame."""
    http = hls_server[0]
    for uri, playlist in variant_playlists(http, media_set):
        assert playlist.is_endlist and playlist.playlist_type == "vod"
        init = b""
        if playlist.segment_map:
            init_response = http.get(f"/hls/{media_set}/{playlist.segment_map[0].uri}")
            assert init_response.status_code == 200
            init = init_response.content
        extension = playlist.segments[0].uri.rsplit(".", 1)[1]
        bodies = []
        for number, segment in enumerate(playlist.segments, start=1):
            response = http.get(f"/hls/{media_set}/{segment.uri}")
            expected_type = ("video/MP2T",) if extension == "ts" else ("video/mp4", "audio/mp4")
            assert response.status_code == 200 and response.headers["content-type"] in expected_type
            bodies.append(response.content)
            path = tmp_path / f"{number}.{extension}"
            path.write_bytes(init + response.content)
            probe = ffprobe_json(path, "-show_packets", "-show_streams")
            video = [s["index"] for s in probe["streams"] if s["codec_type"] == "video"]
            if video:
                first = next(p for p in probe["packets"] if p["stream_index"] == video[0])
                assert "K" in first["flags"], f"{uri} segment {number} does not start on a key frame"
        whole = tmp_path / f"whole.{extension}"
        whole.write_bytes(init + b"".join(bodies))
        check_whole_stream(uri, whole, sum(s.duration for s in playlist.segments), media_set)


def check_whole_stream(uri: str, path: Path, listed: float, media_set: str) -> None:
    probe = ffprobe_json(path, "-show_packets", "-show_streams")
    spans = {}
    for stream in probe["streams"]:
        packets = [p for p in probe["packets"] if p["stream_index"] == stream["index"]]
        dts = [float(p["dts_time"]) for p in packets]
        # ffmpeg reports the first AAC packet of a fragmented stream without an edit list with no
        # (or a zero) duration, taking it for encoder priming; our trun says 1024 like the others.
        known = [float(p["duration_time"]) for p in packets if float(p.get("duration_time", 0)) > 0]
        typical = statistics.median(known)
        durations = [float(p.get("duration_time", 0)) or typical for p in packets]
        for i in range(len(packets) - 1):
            step = dts[i + 1] - dts[i]
            assert step > 0, f"{uri}: {stream['codec_type']} dts goes back at packet {i}"
            assert abs(step - durations[i]) < 0.002, f"{uri}: {stream['codec_type']} gap/overlap at {dts[i]}"
        pts = [float(p["pts_time"]) for p in packets]
        end = max(p + d for p, d in zip(pts, durations, strict=True))
        spans[stream["codec_type"]] = (end - min(pts), max(durations))
    span, frame = spans.get("video") or spans["audio"]
    source = source_duration(media_set)
    assert abs(listed - source) <= frame + 0.001, f"{uri}: EXTINF sum {listed}, source lasts {source}"
    # Priming and a short last frame cannot be trimmed in TS: at most two frames between them.
    assert abs(listed - span) <= 2 * frame + 0.001, f"{uri}: EXTINF sum {listed}, stream spans {span}"


def source_duration(media_set: str) -> float:
    """The longest ffprobe duration of the files of a set (what a player of the source would show)."""
    names = [media_set] if not media_set.endswith(".urlset") else [
        f"clip_{middle}.mp4" for middle in media_set.split(",")[1:-1]
    ]
    return max(float(ffprobe_json(FIXTURES / n, "-show_format")["format"]["duration"]) for n in names)


@pytest.mark.parametrize("media_set", MEDIA_SETS)
def test_ffmpeg_reads_whole_stream_without_warnings(media_set: str,
                                                   hls_server: tuple[httpx.Client, str]) -> None:
    assert ffmpeg_read_errors(f"{hls_server[1]}/hls/{media_set}/master.m3u8") == ""


def test_master_playlist_attributes(http: httpx.Client) -> None:
    text = http.get(f"/hls/{URLSET}/master.m3u8").text
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    playlists = m3u8.loads(text).playlists
    assert [p.stream_info.resolution for p in playlists] == [(320, 180), (640, 360)]
    for playlist in playlists:
        info = playlist.stream_info
        assert info.frame_rate == 30.0
        assert info.codecs.startswith("avc1.") and info.codecs.endswith(",mp4a.40.2")
        assert info.bandwidth >= info.average_bandwidth > 0


@pytest.mark.parametrize("media_set", [*MEDIA_FILES, URLSET])
def test_bandwidth_is_the_real_peak_and_average(media_set: str, hls_server: tuple[httpx.Client, str]) -> None:
    """RFC 8216 4.3.4.2, measured on the bytes served: BANDWIDTH is at least every segment's bit
    rate and within 5% of the peak; AVERAGE-BANDWIDTH within 2% of the stream's average. A
    video-only variant with an audio group counts the group's largest audio rendition."""
    http = hls_server[0]
    master = m3u8.loads(http.get(f"/hls/{media_set}/master.m3u8").text)

    def measured(uri: str) -> tuple[float, float]:
        media = m3u8.loads(http.get(f"/hls/{media_set}/{uri}").text)
        sizes = [len(http.get(f"/hls/{media_set}/{segment.uri}").content) for segment in media.segments]
        durations = [segment.duration for segment in media.segments]
        peak = max(size * 8 / duration for size, duration in zip(sizes, durations, strict=True))
        return peak, sum(sizes) * 8 / sum(durations)

    groups: dict[str, list[tuple[float, float]]] = {}
    for rendition in master.media:
        if rendition.type == "AUDIO":
            groups.setdefault(rendition.group_id, []).append(measured(rendition.uri))
    for playlist in master.playlists:
        info = playlist.stream_info
        peak, average = measured(playlist.uri)
        if info.audio:
            peak += max(p for p, _ in groups[info.audio])
            average += max(a for _, a in groups[info.audio])
        assert peak <= info.bandwidth <= 1.05 * peak, (playlist.uri, info.bandwidth, peak)
        assert abs(info.average_bandwidth - average) <= 0.02 * average, (info.average_bandwidth, average)


def test_audio_only_and_video_only_variants(http: httpx.Client) -> None:
    audio = m3u8.loads(http.get("/hls/audio_only.m4a/master.m3u8").text).playlists[0]
    assert audio.stream_info.codecs == "mp4a.40.2" and audio.stream_info.resolution is None
    video = m3u8.loads(http.get("/hls/video_only.mp4/master.m3u8").text).playlists[0]
    assert video.stream_info.codecs.startswith("avc1.") and "," not in video.stream_info.codecs


def test_track_selection_by_file_name(http: httpx.Client, tmp_path: Path) -> None:
    response = http.get("/hls/bframes.mp4/seg-2-a1.ts")
    path = tmp_path / "a.ts"
    path.write_bytes(response.content)
    kinds = [s["codec_type"] for s in ffprobe_json(path, "-show_streams")["streams"]]
    assert kinds == ["audio"]
    assert http.get("/hls/bframes.mp4/seg-2-v1.ts").status_code == 200
    assert http.get("/hls/bframes.mp4/seg-2-v2.ts").status_code == 404
    assert http.get("/hls/bframes.mp4/seg-2-f2-v1.ts").status_code == 404


def test_clip_parameters(http: httpx.Client, tmp_path: Path) -> None:
    text = http.get("/hls/clipFrom/5000/clipTo/15000/bframes.mp4/index.m3u8").text
    durations = [s.duration for s in m3u8.loads(text).segments]
    # from the key frame at 4 s to 15 s, and the frames shown after 15 s that are decoded before it
    assert 11.0 <= sum(durations) <= 11.0 + 0.1 + 1e-9  # up to the three B-frames of the fixture
    path = tmp_path / "clip.ts"
    path.write_bytes(http.get("/hls/clipFrom/5000/clipTo/15000/bframes.mp4/seg-1.ts").content)
    packets = ffprobe_packets(path)
    video = [p for p in packets if p["stream_index"] == 0]
    assert "K" in video[0]["flags"]


@pytest.mark.parametrize("clip", ["clipTo/5000", "clipFrom/2000/clipTo/9500", "clipTo/6000"])
def test_clipped_segments_last_what_they_list(clip: str, http: httpx.Client, tmp_path: Path) -> None:
    """With B-frames, video cut at a clipTo in decode order keeps frames shown after it: each
    EXTINF equals the span its segment's video is shown (ffprobe), the last one included."""
    index = m3u8.loads(http.get(f"/hls/{clip}/bframes.mp4/index-v1.m3u8").text)
    for number, segment in enumerate(index.segments, start=1):
        path = tmp_path / f"{number}.ts"
        path.write_bytes(http.get(f"/hls/{clip}/bframes.mp4/{segment.uri}").content)
        video = ffprobe_packets(path)
        ends = [int(p["pts"]) + int(p["duration"]) for p in video]
        shown = (max(ends) - min(int(p["pts"]) for p in video)) / 90000
        assert segment.duration == pytest.approx(shown, abs=0.0011), (clip, number)


def test_container_choice(http: httpx.Client) -> None:
    """auto: TS for H.264, fMP4 (version 6, EXT-X-MAP) for HEVC."""
    h264 = http.get("/hls/bframes.mp4/index-v1-a1.m3u8").text
    assert "#EXT-X-MAP" not in h264 and "#EXT-X-VERSION:3" in h264 and ".ts" in h264
    hevc = http.get("/hls/hevc.mp4/index-v1-a1.m3u8").text
    assert '#EXT-X-MAP:URI="init-v1-a1.mp4"' in hevc and "#EXT-X-VERSION:6" in hevc
    assert "seg-1-v1-a1.m4s" in hevc
    assert "#EXT-X-VERSION:6" in http.get("/hls/hevc.mp4/master.m3u8").text
    init = http.get("/hls/hevc.mp4/init-v1-a1.mp4")
    assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
    assert http.get("/hls/audio_only.m4a/init-a1.mp4").headers["content-type"] == "audio/mp4"
