"""Purging (issue 16): POST /purge/<media path> with the purge key drops what the server keeps for
that path and below it, in every worker; the key is required, and other media stay cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, free_port
from tests.test_cli import ROOT, wait_for
from vodorigin.settings import Settings
from vodorigin.web.purge import covers

KEY = "operator-purge-key"
BEARER = {"authorization": f"Bearer {KEY}"}
INDEX = "/hls/maps/show.json/index-v1-a1.m3u8"


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """bframes.mp4 (30 s) and moov_end.mp4 beside a mapping of the whole of bframes.mp4."""
    root = tmp_path / "media"
    (root / "maps").mkdir(parents=True)
    for name in ("bframes.mp4", "moov_end.mp4"):
        shutil.copy(FIXTURES / name, root / name)
    remap(root, "/bframes.mp4")
    return root


def remap(root: Path, path: str, **clip: int) -> None:
    mapping = {"sequences": [{"clips": [{"type": "source", "path": path, **clip}]}]}
    (root / "maps" / "show.json").write_text(json.dumps(mapping))


def listed_seconds(text: str) -> float:
    return sum(segment.duration for segment in m3u8.loads(text).segments)


def settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {**LIVE_SETTINGS, "media_root": str(root), "purge_key": KEY,
                                 "mapping_cache_ttl": 3600.0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_a_purge_needs_its_key(media: Path) -> None:
    """Its own key, also where every other path needs the CDN's header; off without a key."""
    with LiveServer(settings(media, origin_secret="from-the-cdn")) as live:
        refused = httpx.post(f"{live.base}/purge/bframes.mp4")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "purge_key" in refused.json()["error"]
        wrong = httpx.post(f"{live.base}/purge/", headers={"authorization": "Bearer guess"})
        assert wrong.status_code == 401
        assert httpx.get(f"{live.base}/hls/bframes.mp4/master.m3u8").status_code == 403  # no CDN header
        assert httpx.post(f"{live.base}/purge/", headers=BEARER).json() == {"purged": "*", "entries": 0}
    with LiveServer(settings(media, purge_key="")) as live:
        assert httpx.post(f"{live.base}/purge/", headers=BEARER).status_code == 404


def test_a_changed_mapping_is_served_after_its_purge(media: Path) -> None:
    """A mapping is kept for mapping_cache_ttl whatever happens to its file: a purge is the way to
    have a changed one served at once."""
    with LiveServer(settings(media, mode="mapped")) as live:
        before = httpx.get(live.base + INDEX)
        assert before.status_code == 200 and listed_seconds(before.text) == pytest.approx(30, abs=0.2)
        remap(media, "/moov_end.mp4", clipTo=8000)
        assert httpx.get(live.base + INDEX).text == before.text  # within its TTL: the old mapping
        purged = httpx.post(f"{live.base}/purge/maps/show.json", headers=BEARER)
        assert purged.status_code == 200 and purged.json()["entries"] >= 2  # the mapping and the index
        after = httpx.get(live.base + INDEX)
        assert after.status_code == 200 and listed_seconds(after.text) == pytest.approx(8, abs=0.2)


def test_a_purge_drops_its_path_only(media: Path) -> None:
    with LiveServer(settings(media)) as live:
        for name in ("bframes.mp4", "moov_end.mp4"):
            for document in ("master.m3u8", "index-v1-a1.m3u8"):
                assert httpx.get(f"{live.base}/hls/{name}/{document}").status_code == 200

        def entries() -> tuple[int, int]:
            caches = httpx.get(f"{live.base}/status").json()["caches"]
            return caches["metadata"]["entries"], caches["responses"]["entries"]

        assert entries() == (2, 4)
        purged = httpx.post(f"{live.base}/purge/bframes.mp4", headers=BEARER).json()
        assert purged == {"purged": "bframes.mp4", "entries": 3}  # its moov and two responses
        assert entries() == (1, 2)
        assert httpx.post(f"{live.base}/purge/bframes", headers=BEARER).json()["entries"] == 0
        assert httpx.post(f"{live.base}/purge/", headers=BEARER).json()["entries"] == 3
        assert entries() == (0, 0)
        assert httpx.get(f"{live.base}/hls/bframes.mp4/master.m3u8").status_code == 200  # serves on


def test_what_a_target_covers() -> None:
    assert covers("show", "show/ep1.mp4") and covers("show", "show") and covers("", "anything.mp4")
    assert not covers("show", "showcase.mp4") and not covers("show/ep1.mp4", "show/ep10.mp4")
    assert covers("maps/a.json", "mapping:maps/a.json") and covers("movie.mp4", "key:movie.mp4")


def test_a_purge_reaches_every_worker(media: Path, tmp_path: Path) -> None:
    """Two worker processes each keep the mapping; one purge request, answered by one of them, and
    both serve the changed mapping."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")},
                   "VODORIGIN_MODE": "mapped", "VODORIGIN_MEDIA_ROOT": str(media),
                   "VODORIGIN_PURGE_KEY": KEY, "VODORIGIN_MAPPING_CACHE_TTL": "3600",
                   "VODORIGIN_LOG_LEVEL": "warning", "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(ROOT / "configs/local.toml"),
               "--port", str(port), "--workers", "2"]

    def seconds_by_worker() -> dict[int, float]:
        """The listed duration each worker serves (a new connection each round, the kernel spreads
        them; on one connection, /status names the worker that answered the index)."""
        seen: dict[int, float] = {}
        deadline = time.monotonic() + 30
        while len(seen) < 2 and time.monotonic() < deadline:
            with httpx.Client(base_url=base) as client:
                index = client.get(INDEX)
                assert index.status_code == 200, index.text
                seen[client.get("/status").json()["pid"]] = listed_seconds(index.text)
        assert len(seen) == 2, seen
        return seen

    log = tmp_path / "server.log"
    with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        try:
            wait_for(f"{base}/health", process, log)
            assert list(seconds_by_worker().values()) == pytest.approx([30, 30], abs=0.2)
            remap(media, "/moov_end.mp4", clipTo=8000)
            assert list(seconds_by_worker().values()) == pytest.approx([30, 30], abs=0.2)  # both kept it
            assert httpx.post(f"{base}/purge/maps", headers=BEARER).status_code == 200
            assert list(seconds_by_worker().values()) == pytest.approx([8, 8], abs=0.2)
        finally:
            process.terminate()
            process.wait(timeout=15)
