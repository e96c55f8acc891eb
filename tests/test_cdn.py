"""Behind CloudFront: caching headers, conditional requests, gzip, the response cache, origin
protection, /status, /metrics and the access log, against a live server."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import vodorigin
from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors
from vodorigin.origin import Origin
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage
from vodorigin.web import http_cache
from vodorigin.web.protect import sign_path

EXPIRES = {"expires_manifest": 123, "expires_segment": 4567, "expires_progressive": 0}
ROUTES = {  # route -> request class
    "/hls/bframes.mp4/master.m3u8": "manifest", "/hls/bframes.mp4/index-v1-a1.m3u8": "manifest",
    "/hls/bframes.mp4/iframes-v1.m3u8": "manifest", "/dash/bframes.mp4/manifest.mpd": "manifest",
    "/hls/bframes.mp4/seg-2-v1-a1.ts": "segment", "/dash/bframes.mp4/fragment-2-v1.m4s": "segment",
    "/dash/bframes.mp4/init-v1.mp4": "segment", "/pd/bframes.mp4": "progressive",
}
IDENTITY = {"accept-encoding": "identity"}
GZIP = {"accept-encoding": "gzip, deflate"}


def settings(media_root: Path = FIXTURES, **overrides: object) -> Settings:
    values: dict[str, object] = {"media_root": str(media_root), **LIVE_SETTINGS, **EXPIRES}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(settings()) as live:
        yield live


def status(server: LiveServer) -> dict[str, object]:
    return dict(httpx.get(f"{server.base}/status").json())


def reads(server: LiveServer) -> int:
    upstream = status(server)["upstream"]
    assert isinstance(upstream, dict)
    return int(upstream["reads"])


# --- caching headers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("route", "kind"), ROUTES.items())
def test_caching_headers_follow_the_class_settings(server: LiveServer, route: str, kind: str) -> None:
    response = httpx.get(server.base + route, headers=IDENTITY)
    assert response.status_code == 200
    seconds = {"manifest": 123, "segment": 4567, "progressive": 0}[kind]
    if seconds:
        assert response.headers["cache-control"] == f"public, max-age={seconds}"
        expires = email.utils.parsedate_to_datetime(response.headers["expires"]).timestamp()
        date = email.utils.parsedate_to_datetime(response.headers["date"]).timestamp()
        assert abs(expires - date - seconds) <= 2
    else:
        assert "cache-control" not in response.headers and "expires" not in response.headers
    assert response.headers["etag"].startswith('"') and "last-modified" in response.headers
    assert ("vary" in response.headers) == (kind == "manifest")


def test_other_media_settings_change_the_headers() -> None:
    with LiveServer(settings(expires_manifest=0, expires_segment=60, gzip_manifests=False)) as live:
        manifest = httpx.get(f"{live.base}/hls/bframes.mp4/master.m3u8", headers=GZIP)
        assert "cache-control" not in manifest.headers and "content-encoding" not in manifest.headers
        assert "vary" not in manifest.headers
        segment = httpx.get(f"{live.base}/hls/bframes.mp4/seg-1-v1-a1.ts")
        assert segment.headers["cache-control"] == "public, max-age=60"


# --- conditional requests ---------------------------------------------------------------------------

@pytest.mark.parametrize("route", list(ROUTES))
def test_validators_give_304_without_reading_media(server: LiveServer, route: str) -> None:
    first = httpx.get(server.base + route, headers=IDENTITY)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    before = reads(server)
    for conditional in ({"if-none-match": etag}, {"if-none-match": f'"other", {etag}'},
                        {"if-none-match": "*"}, {"if-modified-since": modified}):
        for method in ("GET", "HEAD"):
            answer = httpx.request(method, server.base + route, headers={**IDENTITY, **conditional})
            assert answer.status_code == 304, (conditional, method)
            assert answer.content == b"" and answer.headers["etag"] == etag
    assert reads(server) == before, "a 304 is decided before any media read"
    older = email.utils.formatdate(email.utils.parsedate_to_datetime(modified).timestamp() - 60, usegmt=True)
    for conditional in ({"if-none-match": '"other"'}, {"if-modified-since": older},
                        {"if-none-match": '"other"', "if-modified-since": modified}):  # INM wins
        answer = httpx.get(server.base + route, headers={**IDENTITY, **conditional})
        assert answer.status_code == 200 and answer.content == first.content, conditional


def test_if_range_keeps_a_range_only_while_the_validator_matches(server: LiveServer) -> None:
    route = f"{server.base}/hls/bframes.mp4/seg-2-v1-a1.ts"
    whole = httpx.get(route)
    part = {"range": "bytes=188-375"}
    for validator in (whole.headers["etag"], whole.headers["last-modified"]):
        answer = httpx.get(route, headers={**part, "if-range": validator})
        assert answer.status_code == 206 and answer.content == whole.content[188:376]
    for stale in ('"not-the-etag"', "Mon, 01 Jan 2001 00:00:00 GMT"):
        answer = httpx.get(route, headers={**part, "if-range": stale})
        assert answer.status_code == 200 and answer.content == whole.content


# --- gzip -------------------------------------------------------------------------------------------

def test_gzip_only_for_manifests(server: LiveServer) -> None:
    for route, kind in ROUTES.items():
        plain = httpx.get(server.base + route, headers=IDENTITY)
        with httpx.stream("GET", server.base + route, headers=GZIP) as response:
            raw = response.read() if response.headers.get("content-encoding") is None else b"".join(
                response.iter_raw())
        if kind == "manifest":
            assert response.headers["content-encoding"] == "gzip"
            assert response.headers["vary"] == "Accept-Encoding"
            assert int(response.headers["content-length"]) == len(raw) < len(plain.content)
            assert gzip.decompress(raw) == plain.content
            assert response.headers["etag"] != plain.headers["etag"]
            revalidated = {**GZIP, "if-none-match": response.headers["etag"]}
            again = httpx.get(server.base + route, headers=revalidated)
            assert again.status_code == 304
        else:
            assert "content-encoding" not in response.headers, route
            assert raw == plain.content
    ranged = httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8", headers={**GZIP, "range": "bytes=0-9"})
    assert ranged.status_code == 206 and "content-encoding" not in ranged.headers
    assert ranged.content == b"#EXTM3U\n#E"
    refused = httpx.get(f"{server.base}/dash/bframes.mp4/manifest.mpd",
                        headers={"accept-encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_without_a_response_cache_manifests_are_gzipped_at_the_fastest_level() -> None:
    """Each request compresses its own manifest then: nginx's default level 1, not the level 6 a
    cached body is compressed at once. The answer is the same text either way."""
    with LiveServer(settings(response_cache_bytes=0)) as live:
        route = f"{live.base}/dash/multi_audio.mp4/manifest.mpd"
        plain = httpx.get(route, headers=IDENTITY)
        with httpx.stream("GET", route, headers=GZIP) as response:
            raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip" and gzip.decompress(raw) == plain.content
    assert raw == http_cache.compress(plain.content, kept=False)
    assert len(http_cache.compress(plain.content)) < len(raw)  # the cache's level packs tighter


# --- the response cache -----------------------------------------------------------------------------

def test_a_second_request_comes_from_the_response_cache(server: LiveServer) -> None:
    route = f"{server.base}/hls/clip_180p.mp4/iframes-v1.m3u8"
    first = httpx.get(route, headers=IDENTITY)
    before = status(server)["caches"]["responses"]  # type: ignore[index]
    second = httpx.get(route, headers=IDENTITY)
    after = status(server)["caches"]["responses"]  # type: ignore[index]
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert after["hits"] == before["hits"] + 1 and after["misses"] == before["misses"]


def test_segments_are_cached_only_when_configured(tmp_path: Path) -> None:
    with LiveServer(settings(response_cache_segments=True)) as live:
        route = f"{live.base}/hls/bframes.mp4/seg-3-v1-a1.ts"
        first = httpx.get(route)
        reads_before = reads(live)
        second = httpx.get(route)
        assert second.content == first.content and reads(live) == reads_before
        assert status(live)["caches"]["responses"]["hits"] == 1  # type: ignore[index]


def test_replacing_the_source_invalidates_both_caches(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "bframes.mp4", tmp_path / "movie.mp4")
    with LiveServer(settings(tmp_path)) as live:
        route = f"{live.base}/hls/movie.mp4/master.m3u8"
        first = httpx.get(route, headers=IDENTITY)
        assert "avc1" in first.text and httpx.get(route, headers=IDENTITY).text == first.text
        replacement = tmp_path / "replacement.mp4"
        shutil.copy(FIXTURES / "hevc.mp4", replacement)
        os.utime(replacement, (time.time() + 5, time.time() + 5))
        os.replace(replacement, tmp_path / "movie.mp4")
        second = httpx.get(route, headers=IDENTITY)
        assert "hvc1" in second.text and second.headers["etag"] != first.headers["etag"]
        caches = status(live)["caches"]
        assert caches["metadata"]["misses"] == 2 and caches["responses"]["misses"] == 2  # type: ignore[index]
        stale = httpx.get(route, headers={"if-none-match": first.headers["etag"], **IDENTITY})
        assert stale.status_code == 200


def test_caches_stay_within_their_byte_bounds(tmp_path: Path) -> None:
    """Forty distinct files (hard links: distinct paths, no copies) through small caches."""
    for n in range(40):
        os.link(FIXTURES / "bframes.mp4", tmp_path / f"movie{n}.mp4")
    bounds = {"metadata_cache_bytes": 150_000, "response_cache_bytes": 20_000}
    with LiveServer(settings(tmp_path, **bounds)) as live:
        for n in range(40):
            for name in ("master.m3u8", "index-v1-a1.m3u8", "iframes-v1.m3u8"):
                assert httpx.get(f"{live.base}/hls/movie{n}.mp4/{name}").status_code == 200
            caches = status(live)["caches"]
            assert caches["metadata"]["bytes"] <= bounds["metadata_cache_bytes"]  # type: ignore[index]
            assert caches["responses"]["bytes"] <= bounds["response_cache_bytes"]  # type: ignore[index]
        caches = status(live)["caches"]
        assert caches["metadata"]["evictions"] > 0 and caches["responses"]["evictions"] > 0  # type: ignore[index]
        assert caches["metadata"]["entries"] >= 1 and caches["responses"]["entries"] >= 1  # type: ignore[index]


# --- origin protection ------------------------------------------------------------------------------

def test_the_cdn_secret_header() -> None:
    with LiveServer(settings(origin_secret="s3cret")) as live:
        route = f"{live.base}/hls/bframes.mp4/master.m3u8"
        assert httpx.get(route).status_code == 403
        assert httpx.get(route, headers={"x-origin-secret": "wrong"}).status_code == 403
        denied = httpx.get(f"{live.base}/metrics")
        assert denied.status_code == 403 and "CDN" in denied.json()["error"]
        assert httpx.get(route, headers={"x-origin-secret": "s3cret"}).status_code == 200
        assert httpx.get(f"{live.base}/health").status_code == 200


def test_signed_urls() -> None:
    key = "signing-key"
    with LiveServer(settings(url_signing_key=key, origin_secret="s3cret")) as live:
        master = sign_path("/hls/bframes.mp4/master.m3u8", key, int(time.time()) + 600)
        answer = httpx.get(live.base + master)
        assert answer.status_code == 200
        for line in answer.text.splitlines():  # relative child URLs carry the token on
            if line and not line.startswith("#"):
                assert httpx.get(urljoin(live.base + master, line)).status_code == 200
        assert ffmpeg_read_errors(live.base + master) == ""
        expired = sign_path("/hls/bframes.mp4/master.m3u8", key, int(time.time()) - 1)
        assert "expired" in httpx.get(live.base + expired).json()["error"]
        tampered = master.replace("-", "-0", 1)
        other_media = master.replace("bframes.mp4", "hevc.mp4")
        wrong_key = sign_path("/hls/bframes.mp4/master.m3u8", "another key", int(time.time()) + 600)
        later = master.replace("/token/", "/token/9", 1)  # a longer expiry, same signature
        for bad in (tampered, other_media, wrong_key, later, "/hls/bframes.mp4/master.m3u8"):
            assert httpx.get(live.base + bad).status_code == 403, bad
        mss = sign_path("/mss/bframes.mp4/manifest", key, int(time.time()) + 600)
        smooth = httpx.get(live.base + mss)
        assert smooth.status_code == 200
        chunk = smooth.text.split('<c t="')[1].split('"')[0]
        bitrate = smooth.text.split('Bitrate="')[1].split('"')[0]
        fragment = urljoin(live.base + mss, f"QualityLevels({bitrate})/Fragments(video={chunk})")
        assert "/token/" in fragment and httpx.get(fragment).status_code == 200  # one token, the whole set
        pd = sign_path("/pd/bframes.mp4", key, int(time.time()) + 600)
        assert httpx.get(live.base + pd, headers={"range": "bytes=0-99"}).status_code == 206
        assert httpx.get(live.base + pd.replace("bframes", "hevc")).status_code == 403
        assert httpx.get(f"{live.base}/hls/bframes.mp4/master.m3u8",
                         headers={"x-origin-secret": "s3cret"}).status_code == 200


# --- operations -------------------------------------------------------------------------------------

def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_parse_and_move_with_requests(server: LiveServer) -> None:
    before = _samples(httpx.get(f"{server.base}/metrics").text)
    for _ in range(3):
        assert httpx.get(f"{server.base}/dash/hevc.mp4/manifest.mpd").status_code == 200
    segment = httpx.get(f"{server.base}/hls/hevc.mp4/seg-1-v1.m4s")
    assert segment.status_code == 200
    assert httpx.get(f"{server.base}/hls/nothing.mp4/master.m3u8").status_code == 404
    after = _samples(httpx.get(f"{server.base}/metrics").text)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("vodorigin_requests_total", **{"class": "manifest", "status": "200"}) == 3
    assert moved("vodorigin_requests_total", **{"class": "segment", "status": "200"}) == 1
    assert moved("vodorigin_requests_total", **{"class": "manifest", "status": "404"}) == 1
    assert moved("vodorigin_request_duration_seconds_count", **{"class": "manifest"}) == 4
    assert moved("vodorigin_response_bytes_total", **{"class": "segment"}) == len(segment.content)
    assert moved("vodorigin_cache_hits_total", cache="responses") == 2
    assert moved("vodorigin_upstream_reads_total", storage="local") >= 1
    assert moved("vodorigin_upstream_bytes_total", storage="local") >= len(segment.content) * 0.8
    assert after[("vodorigin_cache_bytes", (("cache", "metadata"),))] > 0
    assert moved("vodorigin_upstream_read_seconds_count", storage="local") == moved(
        "vodorigin_upstream_reads_total", storage="local")
    assert after[("vodorigin_requests_in_flight", ())] == 1  # the scrape itself
    assert after[("vodorigin_build_info", (("version", vodorigin.__version__),))] == 1
    resident = [v for (name, _), v in after.items() if name == "vodorigin_process_resident_bytes"]
    assert len(resident) == 1 and 10e6 < resident[0] < 2e9


def test_status_and_access_log(server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vodorigin.access"):
        httpx.get(f"{server.base}/hls/video_only.mp4/seg-1-v1.ts")
        httpx.get(f"{server.base}/hls/video_only.mp4/index-v1.m3u8")
        httpx.get(f"{server.base}/hls/video_only.mp4/index-v1.m3u8")
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if "video_only" in r.getMessage()]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    lines = [json.loads(r.getMessage()) for r in caplog.records if "video_only" in r.getMessage()]
    assert [line["status"] for line in lines] == [200, 200, 200]
    assert lines[0]["class"] == "segment" and lines[0]["bytes"] > 0 and lines[0]["duration_ms"] > 0
    assert lines[0]["upstream_reads"] >= 1 and lines[0]["cache"] == "-"  # segments are not cached
    assert [line["class"] for line in lines[1:]] == ["manifest", "manifest"]
    assert [line["cache"] for line in lines[1:]] == ["miss", "hit"]
    assert lines[2]["upstream_reads"] == 0
    figures = status(server)
    assert figures["version"] and figures["uptime_seconds"] > 0  # type: ignore[operator]
    assert set(figures["caches"]) == {"metadata", "responses"}  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["bframes.mp4", "clip_360p.mp4", "audio_only.m4a", "hevc.mp4"])
def test_metadata_size_accounting_is_close_to_real_memory(name: str) -> None:
    """What the metadata cache counts for a movie is within 20% of what it keeps allocated once
    segments have been served (a track's decode times are expanded by its first segment; the
    cache counts them from the start, so that its bound holds then).

    Measured in a process of its own: tracemalloc sees every thread of its process, and this one
    runs the session's live server in another thread, whose work would count (it once did)."""
    code = f"from tests.test_cdn import retained_ratio; print(retained_ratio({name!r}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=120, check=True)
    ratio = float(result.stdout.split()[-1])
    assert 0.8 <= ratio <= 1.2, ratio


def retained_ratio(name: str) -> float:
    """What vodorigin's code keeps allocated for a movie of the fixtures, parsed and with its
    decode times expanded, over what the metadata cache counts for it."""
    origin = Origin(settings(), LocalStorage(FIXTURES))
    source = asyncio.run(origin.storage.stat(name))
    # once before, with another origin: what the first parse in a process leaves in shared caches
    # (struct formats, numpy's) is not the movie's
    asyncio.run(Origin(settings(), LocalStorage(FIXTURES)).movie_of(source))
    gc.collect()
    tracemalloc.start(8)
    try:
        movie = asyncio.run(origin.movie_of(source))
        for track in movie.tracks:
            assert len(track.samples.dts) == track.samples.count
        gc.collect()
        # only what vodorigin's code allocated, not the interpreter's or numpy's own
        ours = tracemalloc.Filter(True, str(Path(vodorigin.__file__).parent / "*"), all_frames=True)
        retained = sum(t.size for t in tracemalloc.take_snapshot().filter_traces([ours]).traces)
    finally:
        tracemalloc.stop()
    return retained / movie.nbytes


def test_access_line_fields_and_forwarded_clients(caplog: pytest.LogCaptureFixture) -> None:
    """ISO time, client, range, user agent, the CDN's request id and the worker's pid; the client
    from X-Forwarded-For only past trusted proxies (the peer and 10/8 here)."""
    with LiveServer(settings(trusted_proxies=("127.0.0.1", "10.0.0.0/8"))) as trusted, \
            LiveServer(settings()) as plain, caplog.at_level(logging.INFO, logger="vodorigin.access"):
        headers = {"x-forwarded-for": "198.51.100.7, 203.0.113.9, 10.1.2.3", "x-amz-cf-id": "abc123==",
                   "range": "bytes=0-99", "user-agent": "probe/1.0"}
        httpx.get(f"{trusted.base}/pd/bframes.mp4", headers=headers)
        httpx.get(f"{plain.base}/pd/bframes.mp4", headers=headers)
        deadline = time.monotonic() + 5
        while len([r for r in caplog.records if "bframes" in r.getMessage()]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    first, second = (json.loads(r.getMessage()) for r in caplog.records if "bframes" in r.getMessage())
    assert first["client"] == "203.0.113.9"  # the last address that is not a trusted proxy
    assert second["client"] == "127.0.0.1"  # no trusted proxy: the header is not believed
    assert (first["range"], first["user_agent"]) == ("bytes=0-99", "probe/1.0")
    assert first["request_id"] == "abc123=="
    assert first["status"] == 206 and first["pid"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
