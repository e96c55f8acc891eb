"""The HTTP upstream backend against a small fault-injecting server on 127.0.0.1.

The first path component picks the upstream's behaviour: ok (honours Range), secret (ok only with
the x-origin-secret header), slow (answers after 30 s), flaky (500 on the first request for each
Range, then ok), reset (drops the connection), short (promises more bytes than it sends),
norange (200 with the whole object), gone (416), denied (403).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors, free_port
from tests.upstream import SECRET, FaultServer
from vodorigin.settings import Settings
from vodorigin.storage.factory import probe_storage


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def settings_for(upstream: FaultServer, mode: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"storage": "http", "http_base_url": f"{upstream.base}/{mode}",
                                 "upstream_timeout": 2.0, "upstream_retries": 2, "upstream_backoff": 0.01,
                                 **LIVE_SETTINGS}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_a_good_upstream_serves_what_local_storage_serves(upstream: FaultServer) -> None:
    local = Settings(media_root=str(FIXTURES), **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(settings_for(upstream, "ok")) as remote, LiveServer(local) as reference:
        assert ffmpeg_read_errors(f"{remote.base}/hls/moov_end.mp4/master.m3u8") == ""
        for path in ("/hls/bframes.mp4/seg-2-v1-a1.ts", "/dash/hevc.mp4/fragment-1-v1.m4s",
                     "/hls/bframes.mp4/master.m3u8"):
            ours, theirs = httpx.get(remote.base + path), httpx.get(reference.base + path)
            assert ours.status_code == 200 and ours.content == theirs.content, path


def test_extra_headers_reach_the_upstream(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "secret")) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 403
    with LiveServer(settings_for(upstream, "secret", http_headers={"x-origin-secret": SECRET})) as server:
        assert httpx.get(f"{server.base}/hls/bframes.mp4/master.m3u8").status_code == 200


@pytest.mark.parametrize(("mode", "status"), [("denied", 403), ("reset", 502), ("short", 502),
                                              ("norange", 502), ("gone", 502)])
def test_faults_map_to_statuses_and_the_server_serves_on(upstream: FaultServer, mode: str,
                                                          status: int) -> None:
    with LiveServer(settings_for(upstream, mode)) as server:
        response = httpx.get(f"{server.base}/hls/bframes.mp4/index.m3u8", timeout=30)
        assert response.status_code == status, response.text
        assert response.json()["status"] == status
        assert httpx.get(f"{server.base}/health").status_code == 200
        assert httpx.get(f"{server.base}/hls/nothing.mp4/index.m3u8").status_code == 404


def test_an_upstream_ignoring_range_is_not_read_whole(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "norange")) as server:
        assert httpx.get(f"{server.base}/hls/clip_360p.mp4/index.m3u8").status_code == 502
    time.sleep(0.3)
    assert upstream.body_bytes_sent["clip_360p.mp4"] < (FIXTURES / "clip_360p.mp4").stat().st_size // 2


def test_a_500_is_retried(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "flaky")) as server:
        assert httpx.get(f"{server.base}/hls/irregular_gop.mp4/index.m3u8").status_code == 200
        counters = server.server.config.app.state.origin.storage.counters
        assert counters.retries >= 1
    reads = [k for k in upstream.requests if k.startswith("GET /flaky/irregular_gop.mp4")]
    assert reads and all(upstream.requests[k] == 2 for k in reads)  # a 500, then the answer


def test_a_slow_upstream_is_a_504_within_the_deadline(upstream: FaultServer) -> None:
    with LiveServer(settings_for(upstream, "slow", upstream_timeout=1.0)) as server:
        start = time.monotonic()
        response = httpx.get(f"{server.base}/hls/bframes.mp4/index.m3u8", timeout=30)
        elapsed = time.monotonic() - start
        assert response.status_code == 504
        assert elapsed < 10  # the deadline (1 s) bounds it, far below the upstream's 30 s
        assert httpx.get(f"{server.base}/health").status_code == 200


def test_the_startup_check_tells_an_unreachable_upstream(upstream: FaultServer) -> None:
    """What `vodorigin serve` tries before serving (storage_check): any answer below 500 is an
    upstream that is there (the base URL need not be a file); silence or a refused connection is not."""
    assert asyncio.run(probe_storage(settings_for(upstream, "ok"))) is None
    assert asyncio.run(probe_storage(settings_for(upstream, "denied"))) is None
    upstream.statuses["/failing/"] = 503
    failing = asyncio.run(probe_storage(settings_for(upstream, "failing")))
    assert failing is not None and "answered 503" in failing
    closed = settings_for(upstream, "ok", http_base_url=f"http://127.0.0.1:{free_port()}/media")
    problem = asyncio.run(probe_storage(closed))
    assert problem is not None and "unreachable" in problem and closed.http_base_url in problem
