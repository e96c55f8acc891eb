"""HLS end to end with real tools: every segment of every fixture through ffprobe, whole streams
through ffmpeg -xerror."""

from __future__ import annotations

from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import (
    FIXTURES,
    MEDIA_FILES,
    LiveServer,
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
def test_every_segment_reads_in_ffprobe(media_set: str, http: httpx.Client, tmp_path: Path) -> None:
    """First video packet is a key frame; dts strictly increases within each segment and continues
    from the previous one; the sum of EXTINF equals the presented duration within one frame."""
    for uri, playlist in variant_playlists(http, media_set):
        assert playlist.is_endlist and playlist.playlist_type == "vod"
        assert playlist.target_duration >= max(round(s.duration) for s in playlist.segments)
        next_dts: dict[str, float] = {}
        shown: dict[str, list[float]] = {}  # per stream: first pts, end of presentation, frame time
        for number, segment in enumerate(playlist.segments, start=1):
            response = http.get(f"/hls/{media_set}/{segment.uri}")
            assert response.status_code == 200 and response.headers["content-type"] == "video/MP2T"
            path = tmp_path / f"{number}.ts"
            path.write_bytes(response.content)
            probe = ffprobe_json(path, "-show_packets", "-show_streams")
            for stream in probe["streams"]:
                kind = stream["codec_type"]
                packets = [p for p in probe["packets"] if p["stream_index"] == stream["index"]]
                assert packets, f"{uri} segment {number}: no {kind} packets"
                dts = [float(p["dts_time"]) for p in packets]
                assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), f"{uri} #{number}: dts order"
                if kind == "video":
                    assert "K" in packets[0]["flags"], f"{uri} segment {number} does not start on a key frame"
                if kind in next_dts:  # continues where the previous segment ended
                    assert abs(dts[0] - next_dts[kind]) < 0.002, f"{uri} #{number}: {kind} gap or overlap"
                frame = float(packets[-1]["duration_time"])
                next_dts[kind] = dts[-1] + frame
                pts = [float(p["pts_time"]) for p in packets]
                end = max(p + float(q["duration_time"]) for p, q in zip(pts, packets, strict=True))
                first = shown.setdefault(kind, [min(pts), end, frame])
                first[1] = end
        reference = shown.get("video") or shown["audio"]
        listed = sum(s.duration for s in playlist.segments)
        frame = reference[2] + 0.001
        source = source_duration(media_set)
        assert abs(listed - source) <= frame, f"{uri}: EXTINF sum {listed}, source lasts {source}"
        # TS cannot carry the edit that trims AAC priming and a short last frame: two frames at most
        span = reference[1] - reference[0]
        assert abs(listed - span) <= 2 * frame, f"{uri}: EXTINF sum {listed}, segments span {span}"


def source_duration(media_set: str) -> float:
    """The longest ffprobe duration of the files of a set (what a player of the source would show)."""
    names = [media_set] if not media_set.endswith(".urlset") else [
        f"clip_{middle}.mp4" for middle in media_set.split(",")[1:-1]
    ]
    return max(float(ffprobe_json(FIXTURES / n, "-show_format")["format"]["duration"]) for n in names)


@pytest.mark.parametrize("media_set", MEDIA_SETS)
def test_ffmpeg_reads_whole_stream_without_warnings(media_set: str, live: LiveServer) -> None:
    assert ffmpeg_read_errors(f"{live.base}/hls/{media_set}/master.m3u8") == ""


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


def test_bandwidth_is_at_least_the_real_peak(http: httpx.Client) -> None:
    """RFC 8216 4.3.4.2: BANDWIDTH >= every segment's bit rate (measured on the bytes served)."""
    master = m3u8.loads(http.get(f"/hls/{URLSET}/master.m3u8").text)
    for playlist in master.playlists:
        media = m3u8.loads(http.get(f"/hls/{URLSET}/{playlist.uri}").text)
        rates = []
        for segment in media.segments:
            size = len(http.get(f"/hls/{URLSET}/{segment.uri}").content)
            rates.append(size * 8 / segment.duration)
        assert playlist.stream_info.bandwidth >= max(rates)
        assert playlist.stream_info.bandwidth < 1.5 * max(rates)  # a bound, but not a loose one
        average = sum(rates) / len(rates)
        assert playlist.stream_info.average_bandwidth >= 0.9 * average


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
    assert abs(sum(durations) - 11.0) < 0.001  # from the key frame at 4 s to 15 s
    path = tmp_path / "clip.ts"
    path.write_bytes(http.get("/hls/clipFrom/5000/clipTo/15000/bframes.mp4/seg-1.ts").content)
    packets = ffprobe_packets(path)
    video = [p for p in packets if p["stream_index"] == 0]
    assert "K" in video[0]["flags"]
