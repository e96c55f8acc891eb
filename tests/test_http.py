"""HTTP behaviour: statuses, HEAD, Range, CORS, path safety, hostile media, cache identity."""

from __future__ import annotations

import os
import random
import shutil
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, LiveServer, ffmpeg_read_errors, ffprobe_json, ffprobe_packets
from vodorigin.settings import Settings

ROUTES = [
    "/hls/bframes.mp4/master.m3u8",
    "/hls/bframes.mp4/index-v1-a1.m3u8",
    "/hls/bframes.mp4/seg-2-v1-a1.ts",
    "/hls/clip_,180p,360p,.mp4.urlset/master.m3u8",
    "/hls/clip_,180p,360p,.mp4.urlset/seg-1-f2-v1-a1.ts",
    "/pd/bframes.mp4",
    "/pd/clipFrom/3000/clipTo/9000/bframes.mp4",
    "/hls/bframes.mp4/init-v1-a1.mp4",
    "/hls/bframes.mp4/seg-3-v1-a1.m4s",
    "/dash/bframes.mp4/manifest.mpd",
    "/mss/bframes.mp4/manifest",
    "/hds/bframes.mp4/manifest.f4m",
    "/hds/clip_,180p,360p,.mp4.urlset/frag-f2-v1-a1-Seg1-Frag2",
    "/mss/bframes.mp4/QualityLevels(71000)/Fragments(audio=54106667)",
    "/dash/bframes.mp4/init-v1.mp4",
    "/dash/clip_,180p,360p,.mp4.urlset/fragment-2-f2-v1.m4s",
]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    for name in ("bframes.mp4", "clip_180p.mp4", "clip_360p.mp4", "moov_end.mp4"):
        shutil.copy(FIXTURES / name, root / name)
    original = (FIXTURES / "bframes.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(original[:5000])
    (root / "garbage.mp4").write_bytes(b"<html>not a video</html>" * 100)
    (root / "empty.mp4").write_bytes(b"")
    moov_at = original.index(b"moov") - 4
    damaged = bytearray(original)
    stsz = original.index(b"stsz", moov_at)
    damaged[stsz + 12 : stsz + 16] = struct.pack(">I", 0x7FFFFFFF)  # a sample count far too large
    (root / "hostile_counts.mp4").write_bytes(bytes(damaged))
    (root / "moof.mp4").write_bytes(struct.pack(">I4s", 16, b"ftyp") + bytes(8)
                                    + struct.pack(">I4s", 16, b"moof") + bytes(8))
    broken_frames = bytearray(original)
    mdat = original.index(b"mdat") + 4
    broken_frames[mdat : mdat + 4096] = b"\xff" * 4096  # NAL lengths that overrun their frames
    (root / "corrupt_frames.mp4").write_bytes(bytes(broken_frames))
    outside = tmp_path_factory.mktemp("outside") / "secret.mp4"
    shutil.copy(FIXTURES / "bframes.mp4", outside)
    os.symlink(outside, root / "escape.mp4")
    return root


@pytest.fixture(scope="module")
def client(media_root: Path) -> Iterator[httpx.Client]:
    settings = Settings(media_root=str(media_root), segment_duration=4.0)
    with LiveServer(settings) as server, httpx.Client(base_url=server.base, timeout=30) as http:
        http.base_url_text = server.base  # type: ignore[attr-defined]
        yield http


@pytest.mark.parametrize("route", ROUTES)
def test_head_matches_get(route: str, client: httpx.Client) -> None:
    get = client.get(route)
    head = client.head(route)
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    length = int(get.headers["content-length"])
    assert int(head.headers["content-length"]) == length == get.num_bytes_downloaded  # gzip: bytes sent
    timely = {"date", "expires"}  # may tick over between the two requests
    assert {k: v for k, v in head.headers.items() if k not in timely} == \
        {k: v for k, v in get.headers.items() if k not in timely}


@pytest.mark.parametrize("route", ROUTES)
def test_random_ranges_equal_slices(route: str, client: httpx.Client) -> None:
    full = client.get(route).content
    rng = random.Random(route)
    for _ in range(30):
        first = rng.randrange(len(full))
        last = rng.randrange(first, len(full))
        form = rng.choice(["closed", "open", "suffix"])
        header = {"closed": f"bytes={first}-{last}", "open": f"bytes={first}-",
                  "suffix": f"bytes=-{last - first + 1}"}[form]
        expected = {"closed": full[first : last + 1], "open": full[first:],
                    "suffix": full[-(last - first + 1) :]}[form]
        response = client.get(route, headers={"range": header})
        assert response.status_code == 206, header
        assert response.content == expected, header
        assert response.headers["content-length"] == str(len(expected))
        assert response.headers["content-range"].endswith(f"/{len(full)}")


def test_unsatisfiable_range(client: httpx.Client) -> None:
    size = len(client.get("/pd/bframes.mp4").content)
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = client.get("/pd/bframes.mp4", headers={"range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"


def test_cors_and_methods(client: httpx.Client) -> None:
    for route in (ROUTES[0], "/hls/missing.mp4/master.m3u8"):
        response = client.get(route)
        assert response.headers["access-control-allow-origin"] == "*"
        assert "Range" in response.headers["access-control-allow-headers"]
        assert "Content-Range" in response.headers["access-control-expose-headers"]
    options = client.options(ROUTES[0])
    assert options.status_code == 204
    assert options.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    for method in ("POST", "PUT", "DELETE"):
        response = client.request(method, ROUTES[0])
        assert response.status_code == 405
        assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    ("route", "status"),
    [
        ("/hls/missing.mp4/master.m3u8", 404),
        ("/hls/bframes.mp4/seg-99-v1-a1.ts", 404),
        ("/hls/bframes.mp4/seg-0-v1-a1.ts", 400),
        ("/hls/bframes.mp4/seg-x.ts", 400),
        ("/hls/bframes.mp4/seg-1-v1-zz.ts", 400),
        ("/hls/bframes.mp4/index-v1-a1-q9.m3u8", 400),
        ("/hls/bframes.mp4/nonsense.txt", 400),
        ("/hls/bframes.mp4/seg-1-a7.ts", 404),
        ("/hls/clipFrom/abc/bframes.mp4/index.m3u8", 400),
        ("/hls/clipFrom/9000/clipTo/3000/bframes.mp4/index.m3u8", 400),
        ("/hls/tracks/x1/bframes.mp4/index.m3u8", 400),
        ("/hls/a,b.urlset/master.m3u8", 400),
        ("/hls/%2e%2e/%2e%2e/etc/passwd/master.m3u8", 400),
        ("/hls/%252e%252e/fixtures/bframes.mp4/master.m3u8", 400),
        ("/pd/..%2fbframes.mp4", 400),
        ("/pd/escape.mp4", 404),
        ("/hls/escape.mp4/master.m3u8", 404),
        ("/hls/truncated.mp4/master.m3u8", 422),
        ("/hls/garbage.mp4/master.m3u8", 422),
        ("/hls/empty.mp4/master.m3u8", 422),
        ("/hls/hostile_counts.mp4/master.m3u8", 422),
        ("/hls/moof.mp4/master.m3u8", 415),
        ("/hls/corrupt_frames.mp4/seg-1.ts", 422),
        ("/nope/bframes.mp4/master.m3u8", 404),
    ],
)
def test_error_statuses(route: str, status: int, client: httpx.Client) -> None:
    response = client.get(route)
    assert response.status_code == status, response.text
    if route.startswith(("/hls", "/pd")):
        body = response.json()
        assert body["status"] == status and body["error"]


def test_server_keeps_serving_after_bad_input(client: httpx.Client) -> None:
    for _ in range(3):
        client.get("/hls/hostile_counts.mp4/seg-1.ts")
        client.get("/hls/truncated.mp4/index.m3u8")
    assert client.get(ROUTES[2]).status_code == 200


def test_whole_file_is_the_file(client: httpx.Client) -> None:
    response = client.get("/pd/bframes.mp4")
    assert response.content == (FIXTURES / "bframes.mp4").read_bytes()
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize("name", ["bframes.mp4", "moov_end.mp4"])
def test_clipped_progressive_download(name: str, client: httpx.Client, tmp_path: Path) -> None:
    response = client.get(f"/pd/clipFrom/5000/clipTo/12500/{name}")
    assert response.status_code == 200
    path = tmp_path / "clip.mp4"
    path.write_bytes(response.content)
    assert len(response.content) < 0.5 * (FIXTURES / name).stat().st_size
    assert ffmpeg_read_errors(str(path)) == ""
    probe = ffprobe_json(path, "-show_format", "-show_streams")
    assert abs(float(probe["format"]["duration"]) - 8.5) < 0.1  # key frame at or before 5 s -> 12.5 s
    packets = ffprobe_packets(path)
    video = [p for p in packets if p["stream_index"] == 0]
    assert "K" in video[0]["flags"]


def test_replaced_file_is_not_served_stale(media_root: Path, client: httpx.Client) -> None:
    target = media_root / "replaced.mp4"
    shutil.copy(FIXTURES / "clip_180p.mp4", target)
    first = client.get("/hls/replaced.mp4/master.m3u8").text
    assert "320x180" in first
    time.sleep(0.01)
    shutil.copy(FIXTURES / "clip_360p.mp4", target)
    second = client.get("/hls/replaced.mp4/master.m3u8").text
    assert "640x360" in second


def test_health(client: httpx.Client) -> None:
    assert client.get("/health").text == "ok\n"
