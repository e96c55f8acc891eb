"""Shared test fixtures: the committed media, a live server on 127.0.0.1, and ffprobe helpers."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from vodorigin.media.model import MediaType, Movie, Track
from vodorigin.origin import Origin
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage
from vodorigin.web.app import create_app
from vodorigin.web.server import uvicorn_options

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MEDIA_FILES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".mp4", ".m4a"))
# The live server cuts short segments so every fixture has many of them, bootstrap ones included.
LIVE_SETTINGS = {"segment_duration": 4.0, "bootstrap_segment_durations": (2.0,)}


def require_tools() -> None:
    if not (shutil.which("ffprobe") and shutil.which("ffmpeg")):
        pytest.fail("ffmpeg/ffprobe are required: run the tests through `make test`, which installs them")


def av_tracks(movie: Movie) -> tuple[Track, ...]:
    """The video and audio tracks of a movie (what TS and fMP4 segments carry)."""
    return tuple(t for t in movie.tracks if t.media_type is not MediaType.SUBTITLE)


@functools.lru_cache(maxsize=64)
def load_movie(name: str, root: Path = FIXTURES) -> Movie:
    origin = Origin(Settings(media_root=str(root)), LocalStorage(root))
    return asyncio.run(origin.movie(name))


def free_port() -> int:
    """A port nothing listens on (for a server a test starts, or for a connection to be refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, settings: Settings, wrap: Callable[[ASGIApp], ASGIApp] | None = None) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.socket = sock
        self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        app: ASGIApp = create_app(settings)
        options = {**uvicorn_options(settings), "timeout_graceful_shutdown": None}
        config = uvicorn.Config(wrap(app) if wrap else app, log_level="warning", lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="session")
def live() -> Iterator[LiveServer]:
    with LiveServer(Settings(media_root=str(FIXTURES), **LIVE_SETTINGS)) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture(scope="session")
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def live_fmp4() -> Iterator[LiveServer]:
    """The same media with HLS forced to fMP4 (hls_container = fmp4)."""
    settings = Settings(media_root=str(FIXTURES), hls_container="fmp4", **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(settings) as server:
        yield server


@pytest.fixture(scope="session", params=["auto", "fmp4"])
def hls_server(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, str]]:
    """(client, base URL) for HLS with the default container choice, then with fMP4 forced."""
    server = request.getfixturevalue("live" if request.param == "auto" else "live_fmp4")
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client, server.base


def ffprobe_json(target: str | Path, *arguments: str) -> dict:
    require_tools()
    command = ["ffprobe", "-v", "error", "-of", "json", *arguments, str(target)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"ffprobe failed on {target}: {result.stderr}"
    return json.loads(result.stdout)


def ffprobe_packets(target: str | Path) -> list[dict]:
    """Packets with stream index, pts, dts, duration, flags, pos and size."""
    fields = "packet=stream_index,pts,dts,duration,flags,pos,size"
    return ffprobe_json(target, "-show_entries", fields, "-show_streams")["packets"]


# ffmpeg 5's DASH reader asks for one segment past ceil(duration / @duration) of a SegmentTemplate@duration
# and logs the 404 (README: Known limits); test_dash_modes checks the real count independently
FFMPEG_TEMPLATE_OVERRUN = ("HTTP error 404 Not Found", "Failed to open fragment of playlist",
                           "Error when loading first fragment of playlist")


def without_template_overrun(errors: str) -> str:
    return "\n".join(line for line in errors.splitlines() if not line.endswith(FFMPEG_TEMPLATE_OVERRUN))


# ffmpeg 5's HLS reader has no WebVTT renditions: it names each one and reads the rest (the
# subtitle playlists and segments are checked with webvtt-py and played in the browser tests)
FFMPEG_NO_HLS_SUBTITLES = re.compile(r"^\[hls @ 0x[0-9a-f]+\] Can't support the subtitle\(uri: [^)]+\)$")


def ffmpeg_read_errors(url: str) -> str:
    """What `ffmpeg -v warning -xerror -i URL -c copy -f null -` prints (empty when all is well)."""
    require_tools()
    command = ["ffmpeg", "-nostdin", "-v", "warning", "-xerror", "-i", url, "-c", "copy", "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in result.stderr.strip().splitlines() if not FFMPEG_NO_HLS_SUBTITLES.match(line)]
    return "\n".join(lines) + ("" if result.returncode == 0 else f"\n(exit {result.returncode})")
