"""I-frame playlists (RFC 8216 4.3.3.6): every byte range, fetched alone with its initialization
section in front, decodes to exactly one key frame; the planned layout matches the muxer's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import FIXTURES, MEDIA_FILES, LiveServer, load_movie, require_tools
from vodorigin.mapping.urlset import media_set
from vodorigin.media.frames import segment_frames
from vodorigin.media.model import MediaType
from vodorigin.media.segmenter import SegmentConfig, movie_timeline
from vodorigin.mux import mpegts
from vodorigin.packagers import hls_iframes
from vodorigin.packagers.output import PackagerContext
from vodorigin.settings import Settings
from vodorigin.urls import parse_file_name, parse_request_path

URLSET = "clip_,180p,360p,.mp4.urlset"
# mov reads a fragment cut after its first sample and says so: the one message allowed
TRUNCATED_FRAGMENT = "partial file"


def iframe_playlists(http: httpx.Client, media_set: str) -> list[tuple[str, m3u8.M3U8]]:
    master = m3u8.loads(http.get(f"/hls/{media_set}/master.m3u8").text)
    result = []
    for iframe in master.iframe_playlists:
        response = http.get(f"/hls/{media_set}/{iframe.uri}")
        assert response.status_code == 200, response.text
        result.append((iframe.uri, m3u8.loads(response.text)))
    return result


@pytest.mark.parametrize("media_set", [*MEDIA_FILES, URLSET])
def test_every_iframe_range_decodes_to_one_key_frame(media_set: str, hls_server: tuple[httpx.Client, str],
                                                      tmp_path: Path) -> None:
    http = hls_server[0]
    playlists = iframe_playlists(http, media_set)
    movie_names = [f"clip_{q}.mp4" for q in ("180p", "360p")] if media_set == URLSET else [media_set]
    assert len(playlists) == sum(len(load_movie(n).tracks_of(MediaType.VIDEO)) for n in movie_names)
    for uri, playlist in playlists:
        assert playlist.is_i_frames_only and playlist.is_endlist and playlist.segments
        init = b""
        if playlist.segment_map:
            init = http.get(f"/hls/{media_set}/{playlist.segment_map[0].uri}").content
        for index, entry in enumerate(playlist.segments):
            length, offset = (int(x) for x in entry.byterange.split("@"))
            response = http.get(f"/hls/{media_set}/{entry.uri}",
                                headers={"Range": f"bytes={offset}-{offset + length - 1}"})
            assert response.status_code == 206 and len(response.content) == length
            head = init
            if not playlist.segment_map:  # TS: the bytes before the segment's first I-frame
                first = next(int(s.byterange.split("@")[1]) for s in playlist.segments if s.uri == entry.uri)
                head = http.get(f"/hls/{media_set}/{entry.uri}",
                                headers={"Range": f"bytes=0-{first - 1}"}).content
                assert head[0] == 0x47 and len(head) % 188 == 0
            path = tmp_path / f"{index}.bin"
            path.write_bytes(head + response.content)
            frames, errors = decoded_frames(path)
            where = f"{uri} {entry.uri} {entry.byterange}"
            assert [f["key_frame"] for f in frames] == [1], f"{where}: {frames}"
            allowed = [TRUNCATED_FRAGMENT] if playlist.segment_map else []
            assert all(any(a in line for a in allowed) for line in errors), f"{where}: {errors}"


def decoded_frames(path: Path) -> tuple[list[dict], list[str]]:
    """The video frames ffprobe decodes from a file, and what it printed on stderr."""
    require_tools()
    command = ["ffprobe", "-v", "error", "-of", "json", "-select_streams", "v", "-show_frames",
               "-show_entries", "frame=key_frame,pict_type", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["frames"], result.stderr.splitlines()


def test_iframe_durations_tile_the_media(http: httpx.Client) -> None:
    """The I-frames' EXTINF add up to the variant's duration; ranges lie inside their segments."""
    for name in ("bframes.mp4", "irregular_gop.mp4", "clip_360p.mp4"):
        (uri, playlist), = iframe_playlists(http, name)
        index = m3u8.loads(http.get(f"/hls/{name}/index-v1.m3u8").text)
        assert sum(s.duration for s in playlist.segments) == pytest.approx(
            sum(s.duration for s in index.segments), abs=0.002 * len(playlist.segments))
        for entry in playlist.segments:
            length, offset = (int(x) for x in entry.byterange.split("@"))
            size = int(http.head(f"/hls/{name}/{entry.uri}").headers["content-length"])
            assert offset >= 2 * 188 and offset + length <= size  # after the PAT and PMT (TS)


@pytest.mark.parametrize("name", [n for n in MEDIA_FILES if load_movie(n).tracks_of(MediaType.VIDEO)])
def test_video_only_layout_matches_the_muxer_plan(name: str) -> None:
    """video_only_packets (what I-frame playlists use) == the PES packets plan_segment lays out."""
    movie = load_movie(name)
    configs = (SegmentConfig(4000, (2000,)), SegmentConfig(1000),
               SegmentConfig(3000, align_to_key_frames=False))
    for config in configs:
        timeline = movie_timeline(movie, config, None)
        video = movie.tracks_of(MediaType.VIDEO)[0]
        try:
            mpegts.stream_format(video.codec)
        except Exception:
            pytest.skip(f"{video.codec.codec_string} is not carried in TS")
        for number in range(1, timeline.count + 1):
            frames = segment_frames(video, timeline, number, 100_000)
            plan = mpegts.plan_segment(number, [frames])
            assert mpegts.video_only_packets(frames).tolist() == plan.table.packets.tolist()


def test_iframe_names_that_address_no_single_video_track(http: httpx.Client) -> None:
    for path in ("/hls/bframes.mp4/iframes-v1-a1.m3u8", "/hls/bframes.mp4/iframes-a1.m3u8",
                 "/hls/bframes.mp4/iframes-v2.m3u8", "/hls/audio_only.m4a/iframes.m3u8",
                 f"/hls/{URLSET}/iframes-f3-v1.m3u8"):
        assert http.get(path).status_code == 404, path
    assert http.get("/hls/bframes.mp4/iframes.m3u8").status_code == 200  # v1 by default


def test_iframe_playlists_can_be_turned_off() -> None:
    settings = Settings(media_root=str(FIXTURES), hls_iframes_playlists=False)
    with LiveServer(settings) as server, httpx.Client(base_url=server.base) as http:
        master = http.get("/hls/bframes.mp4/master.m3u8").text
        assert "I-FRAME" not in master and "#EXT-X-STREAM-INF" in master
        assert http.get("/hls/bframes.mp4/iframes-v1.m3u8").status_code == 404


@pytest.mark.parametrize("container", ["mpegts", "fmp4"])
def test_iframes_located_in_batches_are_the_same(container: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long titles are located a batch of segments at a time: batches of a few frames give the
    same playlist (and master) as one batch."""
    settings = Settings(media_root=str(FIXTURES), segment_duration=2.0, hls_container=container)
    context = PackagerContext.from_settings(settings)
    request = parse_request_path("hls", f"{URLSET}/iframes-f2-v1.m3u8")
    movies = {name: load_movie(name) for name in ("clip_180p.mp4", "clip_360p.mp4")}
    media = media_set(request, movies)
    whole = hls_iframes.iframes_playlist(parse_file_name("iframes-f2-v1.m3u8"), media, context)
    master = hls_iframes.iframe_stream_infs(media, context)
    monkeypatch.setattr(hls_iframes, "BATCH_FRAMES", 100)  # 2 s segments of 30 fps: a batch is 1-2
    assert hls_iframes.iframes_playlist(parse_file_name("iframes-f2-v1.m3u8"), media, context) == whole
    assert hls_iframes.iframe_stream_infs(media, context) == master
    assert whole.count("#EXTINF") >= 15
