"""Real players in a real browser: hls.js and dash.js (with its Smooth Streaming support) on the
/player/ page, in Debian's headless Chromium driven by Playwright (executable_path, fresh profile).

Each stream is played at 4x: it must reach 20 s of media with video frames (and audio bytes where
the media has audio) decoded, buffer one range from near 0, switch renditions when it has two,
resume within a few seconds after a seek to the middle, and report no error beyond hls.js's stall
and nudge notices and the loads it cancels itself. The same checks run on streams with a segment
zeroed by a test route, and must fail there. Chromium cannot decode HEVC (or AC-3): those are
covered by the ffprobe tests.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer
from tests.test_drm import AUDIO_KEY, AUDIO_KID, VIDEO_KEY, VIDEO_KID, cpix_document, drm_info
from tests.upstream import FaultServer
from vodorigin.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
KALTURA = ROOT / "configs" / "kaltura-cloudfront.toml"
JOIN_GAP = 0.05  # seconds
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]  # no background traffic: this network is closed
# hls.js notices, not faults: stalls it recovers from, and "aborted", a load it cancelled itself (on
# the test's seek or rendition switch, or its ABR giving up a slow fragment for a lower rendition;
# a load our server failed is a fragLoadError or a timeout instead)
TOLERATED = {"bufferStalledError", "bufferNudgeOnStall", "bufferSeekOverHole", "aborted"}
URLSET = "clip_,180p,360p,.mp4.urlset"
STREAMS = {  # name -> (server, URL): the two HLS containers, the Kaltura deployment, mapped mode
    "hls-ts": ("mpegts", "/hls/bframes.mp4/master.m3u8"),
    "hls-ts-urlset": ("mpegts", f"/hls/{URLSET}/master.m3u8"),
    "hls-fmp4-urlset": ("fmp4", f"/hls/{URLSET}/master.m3u8"),
    "dash": ("mpegts", "/dash/moov_end.mp4/manifest.mpd"),
    "dash-urlset": ("mpegts", f"/dash/{URLSET}/manifest.mpd"),
    "mss": ("mpegts", "/mss/bframes.mp4/manifest"),
    "mss-urlset": ("mpegts", f"/mss/{URLSET}/manifest"),
    "hls-video-only": ("mpegts", "/hls/video_only.mp4/master.m3u8"),
    # configs/kaltura-cloudfront.toml over an HTTP upstream: HLS in 2, 2, 2, 4 then 10 s, DASH templates
    "kaltura-hls": ("kaltura", "/hls/bframes.mp4/master.m3u8"),
    "kaltura-dash": ("kaltura", "/dash/bframes.mp4/manifest.mpd"),
    # a mapped playlist of two different files (a discontinuity, a DASH Period each), and of one file twice
    "mapped-hls-playlist": ("mapped", "/hls/m/playlist.json/master.m3u8"),
    "mapped-dash-playlist": ("mapped", "/dash/m/playlist.json/manifest.mpd"),
    "mapped-mss-continuous": ("mapped", "/mss/m/continuous.json/manifest"),
    # encryption: HLS AES-128 (keys from secret_key, fetched by hls.js from encryption.key), DASH
    # Common Encryption with W3C ClearKey (keys from the DRM-info service; the page's clearkey=
    # parameter names the license server that hands them to the browser's CDM)
    "hls-aes128-ts": ("encrypted", "/hls/bframes.mp4/master.m3u8"),
    "hls-aes128-fmp4-urlset": ("encrypted-fmp4", f"/hls/{URLSET}/master.m3u8"),
    "dash-cenc-clearkey": ("encrypted", "/dash/bframes.mp4/manifest.mpd"),
    "dash-cenc-clearkey-urlset": ("encrypted", f"/dash/{URLSET}/manifest.mpd"),
    # Common Encryption 'cbcs' (1:9 pattern, slice headers clear), W3C ClearKey through EME: DASH,
    # and HLS SAMPLE-AES in fMP4 with an org.w3.clearkey EXT-X-KEY
    "dash-cbcs-clearkey": ("cbcs", "/dash/bframes.mp4/manifest.mpd"),
    "hls-cbcs-clearkey": ("cbcs", "/hls/bframes.mp4/master.m3u8"),
    "hls-cbcs-clearkey-urlset": ("cbcs", f"/hls/{URLSET}/master.m3u8"),
    "hls-cenc-clearkey": ("ctr", "/hls/bframes.mp4/master.m3u8"),  # SAMPLE-AES-CTR: 'cenc' in fMP4
    # keys from a CPIX document, one for video and one for audio: two licenses
    "dash-cpix-clearkey": ("cpix", "/dash/bframes.mp4/manifest.mpd"),
    # HLS SAMPLE-AES in TS: hls.js decrypts each slice NAL and AAC frame itself (Web Crypto)
    "hls-sample-aes-ts": ("sample-aes", "/hls/bframes.mp4/master.m3u8"),
    "hls-sample-aes-urlset": ("sample-aes", f"/hls/{URLSET}/master.m3u8"),
}
DRM_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
DRM_KID = bytes.fromhex("0123456789abcdef0123456789abcdef")
MAPPINGS = {
    "playlist": {"durations": [10000, 12000], "sequences": [{"clips": [
        {"type": "source", "path": "bframes.mp4"},
        {"type": "source", "path": "moov_end.mp4", "clipFrom": 6000}]}]},
    "continuous": {"durations": [12000, 12000], "discontinuity": False, "sequences": [{"clips": [
        {"type": "source", "path": "bframes.mp4"},
        {"type": "source", "path": "bframes.mp4", "clipFrom": 16000}]}]},
}


def player_settings(container: str, **more: Any) -> Settings:
    values: dict[str, Any] = {"media_root": str(FIXTURES), **LIVE_SETTINGS, "hls_container": container,
                              "player_libs_dir": str(ROOT / "player" / "node_modules"), **more}
    return Settings(**values)


@contextmanager
def chromium_page() -> Iterator[Page]:
    """A page in Debian's headless Chromium with a fresh profile (shared by the browser test files)."""
    if not Path(CHROMIUM).exists() or not (ROOT / "player" / "node_modules" / "hls.js").exists():
        pytest.fail("Chromium and the player's npm packages are required: run the tests through `make test`")
    profile = tempfile.mkdtemp(prefix="vodorigin-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS)
            yield context.new_page()
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    with chromium_page() as page:
        yield page


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    player = {"player_page": True, "player_libs_dir": str(ROOT / "player" / "node_modules")}
    with FaultServer() as upstream:
        for name, mapping in MAPPINGS.items():
            upstream.documents[f"/m/{name}.json"] = json.dumps(mapping).encode()
        kaltura = load_settings(KALTURA, {"http_base_url": f"{upstream.base}/ok", "host": "127.0.0.1",
                                          "workers": 1, **player}, environ={})
        mapped = player_settings("mpegts", mode="mapped", mapping_url=upstream.base)
        for name in ("bframes.mp4", "clip_180p.mp4", "clip_360p.mp4"):
            upstream.documents[f"/drm/{name}"] = drm_info(DRM_KEY, DRM_KID)
        upstream.documents["/cpix/bframes.mp4"] = cpix_document()
        encryption = {"secret_key": "secret-$vod_filepath", "hls_encryption_method": "aes-128",
                      "drm_info_url": f"{upstream.base}/drm", "dash": {"drm_enabled": True}}
        license_keys = {DRM_KID: DRM_KEY, VIDEO_KID: VIDEO_KEY, AUDIO_KID: AUDIO_KEY}
        cbcs_settings = {"drm_info_url": f"{upstream.base}/drm", "drm_enabled": True,
                         "hls_encryption_method": "sample-aes", "dash_encryption_scheme": "cbcs",
                         "hls_encryption_key_formats": ["org.w3.clearkey"],
                         "hds": {"drm_enabled": False}, "mss": {"drm_enabled": False}}
        with LiveServer(player_settings("mpegts")) as ts, LiveServer(player_settings("fmp4")) as fmp4, \
                LiveServer(kaltura) as kaltura_server, LiveServer(mapped) as mapped_server, \
                LiveServer(player_settings("mpegts", **encryption)) as encrypted, \
                LiveServer(player_settings("fmp4", **encryption)) as encrypted_fmp4, \
                LiveServer(player_settings("mpegts", secret_key="secret-$vod_filepath",
                                           hls_encryption_method="sample-aes")) as sample_aes, \
                LiveServer(player_settings("fmp4", **cbcs_settings)) as cbcs, \
                LiveServer(player_settings("fmp4", **{**cbcs_settings,
                                                      "hls_encryption_method": "sample-aes-ctr"})) as ctr, \
                LiveServer(player_settings("fmp4", cpix_url=f"{upstream.base}/cpix",
                                           dash={"drm_enabled": True})) as cpix, \
                ClearKeyServer(license_keys) as license_server:
            servers = {"mpegts": ts, "fmp4": fmp4, "kaltura": kaltura_server, "mapped": mapped_server,
                       "encrypted": encrypted, "encrypted-fmp4": encrypted_fmp4, "sample-aes": sample_aes,
                       "cbcs": cbcs, "ctr": ctr, "cpix": cpix}
            yield servers | {"license": license_server}  # type: ignore[dict-item]


class ClearKeyServer:
    """A W3C ClearKey license server on 127.0.0.1 (EME's JSON Web Key Set): a POST of
    {"kids": [...]} gets the keys of those ids. Counts the licenses it hands out."""

    def __init__(self, keys: dict[bytes, bytes]) -> None:
        self.keys = keys
        self.licenses = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_OPTIONS(self) -> None:  # noqa: N802 - the CORS preflight of the page's request
                self._answer(204, b"")

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                keys = [{"kty": "oct", "kid": kid, "k": _b64url(owner.keys[_unb64url(kid)])}
                        for kid in request.get("kids", []) if _unb64url(kid) in owner.keys]
                owner.licenses += bool(keys)
                self._answer(200, json.dumps({"keys": keys, "type": "temporary"}).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                headers = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Headers", "*"),
                           ("Access-Control-Allow-Methods", "POST, OPTIONS"),
                           ("Content-Type", "application/json"), ("Content-Length", str(len(body))))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ClearKeyServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Report:
    reached: float = 0.0
    frames: int = 0
    audio_bytes: int = 0
    buffered_early: list[list[float]] = field(default_factory=list)  # at 2 s, before any switch
    buffered: list[list[float]] = field(default_factory=list)  # at 20 s
    switched: bool | None = None  # None: a single rendition
    seek_resumed: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)


def state(page: Page) -> dict[str, Any]:
    return dict(page.evaluate("""() => ({
        time: video.currentTime, ended: video.ended, duration: video.duration,
        frames: video.getVideoPlaybackQuality().totalVideoFrames,
        audio: video.webkitAudioDecodedByteCount || 0, buffered: vod.buffered(),
        errors: vod.errors, levels: vod.levels().length, current: vod.current()})"""))


def wait_for(page: Page, condition: Callable[[dict[str, Any]], bool], seconds: float) -> dict[str, Any]:
    """Poll the page until the condition holds, a fatal error shows, or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        current = state(page)
        if condition(current) or any(e["fatal"] for e in current["errors"]) or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


def watch(page: Page, base: str, url: str, query: str = "") -> Report:
    report = Report()
    page.goto(f"{base}/player/?url={quote(url)}&rate=4{query}")
    current = wait_for(page, lambda s: s["time"] >= 2, 20)
    report.buffered_early = current["buffered"]
    if current["levels"] >= 2 and current["time"] >= 2:
        other = 1 - max(current["current"], 0)
        page.evaluate(f"vod.switchTo({other})")
        start = current["time"]
        current = wait_for(page, lambda s: s["current"] == other and s["time"] >= start + 3, 15)
        report.switched = current["current"] == other and current["time"] >= start + 3
    current = wait_for(page, lambda s: s["time"] >= 20 or s["ended"], 40)
    report.reached, report.frames, report.audio_bytes = current["time"], current["frames"], current["audio"]
    report.buffered = current["buffered"]
    duration = current["duration"]  # NaN (or None) when the player failed before it knew it
    known = isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0
    middle = duration / 2 if known else 15
    page.evaluate(f"video.currentTime = {middle}")
    current = wait_for(page, lambda s: middle + 1.5 <= s["time"] < middle + 10, 8)
    report.seek_resumed = middle + 1.5 <= current["time"] < middle + 10
    report.errors = current["errors"]
    return report


def joined(ranges: list[list[float]]) -> list[list[float]]:
    """Buffered ranges with gaps under JOIN_GAP closed: at a mapped playlist's join, audio stops
    with the last frame that ends by the clip's end and resumes with the first that starts after
    it (never overlapping), a gap of under two audio frames that players jump."""
    merged: list[list[float]] = []
    for start, end in ranges:
        if merged and start - merged[-1][1] < JOIN_GAP:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return merged


def problems(report: Report, audio: bool) -> list[str]:
    found = []
    if report.reached < 20:
        found.append(f"playback stopped at {report.reached:.1f} s")
    if report.frames <= 0:
        found.append("no video frame decoded")
    if audio and report.audio_bytes <= 0:
        found.append("no audio decoded")
    for buffered, from_zero in ((report.buffered_early, True), (report.buffered, not report.switched)):
        # hls.js drops what it had buffered of the old rendition when it switches: one range still
        ranges = joined(buffered)
        if len(ranges) != 1 or (from_zero and ranges[0][0] > 0.5):
            found.append(f"buffered ranges {ranges}: expected one{' from near 0' if from_zero else ''}")
    if report.switched is False:
        found.append("the switch to the other rendition did not play on")
    if not report.seek_resumed:
        found.append("playback did not resume after a seek to the middle")
    found += [f"{e['engine']} {'fatal ' if e['fatal'] else ''}{e['type']} {e['details']}"
              for e in report.errors if e["fatal"] or e["details"] not in TOLERATED]
    return found


@pytest.mark.parametrize("name", list(STREAMS))
def test_players_play_our_streams(name: str, browser_page: Page, servers: dict[str, LiveServer]) -> None:
    server, url = STREAMS[name]
    query = f"&clearkey={quote(servers['license'].base + '/license')}" if "clearkey" in name else ""
    licenses = servers["license"].licenses  # type: ignore[attr-defined]
    report = watch(browser_page, servers[server].base, url, query)
    if "clearkey" in name:
        assert servers["license"].licenses > licenses, "the browser asked for no license"  # type: ignore[attr-defined]
    assert problems(report, audio="video_only" not in url) == [], report
    if URLSET in url:
        assert report.switched is True


class ZeroSegment:
    """A test route: the body of every response whose path contains `marker` replaced by zeros."""

    def __init__(self, app: ASGIApp, marker: str) -> None:
        self.app = app
        self.marker = marker
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.marker not in scope["path"]:
            await self.app(scope, receive, send)
            return
        self.hits += 1

        async def zeroing(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": bytes(len(message.get("body", b"")))}
            await send(message)

        await self.app(scope, receive, zeroing)


@pytest.mark.parametrize(("url", "marker"), [("/hls/bframes.mp4/master.m3u8", "/seg-3-"),
                                             ("/dash/bframes.mp4/manifest.mpd", "/fragment-3-v1"),
                                             ("/mss/bframes.mp4/manifest", "Fragments(video=73333333)")])
def test_a_corrupt_segment_is_caught(url: str, marker: str, browser_page: Page) -> None:
    """The same checks, on a stream with one segment zeroed: they must find something wrong."""
    routes: list[ZeroSegment] = []

    def corrupt(app: ASGIApp) -> ASGIApp:
        routes.append(ZeroSegment(app, marker))
        return routes[0]

    with LiveServer(player_settings("mpegts"), wrap=corrupt) as server:
        report = watch(browser_page, server.base, url)
    assert routes[0].hits >= 1, "the corrupt segment was requested"
    assert problems(report, audio=True) != [], report


def test_the_page_lists_the_media_and_works_offline(browser_page: Page,
                                                    servers: dict[str, LiveServer]) -> None:
    """The media list, and every request the page makes (libraries included) goes to the origin."""
    base = servers["mpegts"].base
    requested: list[str] = []
    browser_page.on("request", lambda request: requested.append(request.url))
    browser_page.goto(f"{base}/player/")
    browser_page.wait_for_selector("#media tbody tr")
    browser_page.click("#media tbody tr:first-child a:text('dash')")
    browser_page.wait_for_function("video.currentTime > 1", timeout=20_000)
    assert any(url.endswith("/player/lib/dash.all.min.js") for url in requested)
    assert [url for url in requested if not url.startswith(base)] == []
    texts = "elements => elements.map(e => e.textContent)"
    rows = browser_page.eval_on_selector_all("#media tbody tr td:first-child", texts)
    assert sorted(rows) == sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".mp4", ".m4a"))
    links = browser_page.eval_on_selector_all("#media tbody tr:first-child a", texts)
    assert links == ["hls", "dash", "mss", "hds (fetch)", "pd"]


def test_streams_one_after_another_in_one_page(browser_page: Page, servers: dict[str, LiveServer]) -> None:
    """DASH, then HLS, then Smooth, then DASH again in one page: each plays, and the page throws
    nothing (a destroyed dash.js player once kept throwing every 250 ms)."""
    base = servers["mpegts"].base
    thrown: list[str] = []
    browser_page.on("pageerror", lambda error: thrown.append(str(error)))
    browser_page.goto(f"{base}/player/")
    for url in ("/dash/bframes.mp4/manifest.mpd", "/hls/bframes.mp4/master.m3u8", "/mss/bframes.mp4/manifest",
                "/dash/moov_end.mp4/manifest.mpd"):
        browser_page.evaluate(f"vod.load({json.dumps(url)}, 'auto')")
        current = wait_for(browser_page, lambda s: s["time"] >= 2, 20)
        assert current["time"] >= 2 and not current["errors"], (url, current["errors"])
    time.sleep(1)  # several render ticks after the last switch
    assert thrown == []


@pytest.mark.parametrize("url", [f"/hls/{URLSET}/master.m3u8", f"/dash/{URLSET}/manifest.mpd"])
def test_back_to_automatic_renditions(url: str, browser_page: Page, servers: dict[str, LiveServer]) -> None:
    browser_page.goto(f"{servers['mpegts'].base}/player/?url={quote(url)}")
    wait_for(browser_page, lambda s: s["levels"] >= 2, 20)
    assert browser_page.evaluate("vod.automatic()") is True
    browser_page.evaluate("vod.switchTo(1)")
    assert browser_page.evaluate("vod.automatic()") is False
    browser_page.click("#auto")
    assert browser_page.evaluate("vod.automatic()") is True
    browser_page.wait_for_function("document.getElementById('auto').classList.contains('on')")


@pytest.mark.parametrize("url", ["/hls/nothing.mp4/master.m3u8", "/dash/nothing.mp4/manifest.mpd"])
def test_errors_say_the_http_status_and_reason(url: str, browser_page: Page,
                                                servers: dict[str, LiveServer]) -> None:
    browser_page.goto(f"{servers['mpegts'].base}/player/?url={quote(url)}")
    browser_page.wait_for_function("vod.errors.some((e) => e.type.startsWith('HTTP'))", timeout=20_000)
    explained = [e for e in browser_page.evaluate("vod.errors") if e["type"].startswith("HTTP")]
    assert explained[0]["type"] == "HTTP 404" and "nothing.mp4" in explained[0]["details"]


def test_a_codec_the_browser_cannot_decode_is_named(browser_page: Page,
                                                    servers: dict[str, LiveServer]) -> None:
    """Debian's Chromium has no HEVC decoder: the page says so rather than failing silently."""
    browser_page.goto(f"{servers['fmp4'].base}/player/?url={quote('/hls/hevc.mp4/master.m3u8')}")
    browser_page.wait_for_function("vod.errors.some((e) => e.type === 'codec')", timeout=20_000)
    codec = [e for e in browser_page.evaluate("vod.errors") if e["type"] == "codec"]
    assert "cannot decode hvc1" in codec[0]["details"]


@pytest.mark.parametrize("url", ["/hls/bframes.mp4/master.m3u8", "/dash/bframes.mp4/manifest.mpd"])
def test_the_timeline_shows_the_segments_downloaded(url: str, browser_page: Page,
                                                     servers: dict[str, LiveServer]) -> None:
    """Each segment the player fetched, with the size the origin sent, times that follow one
    another, drawn on the canvas and listed in the table."""
    base = servers["mpegts"].base
    browser_page.goto(f"{base}/player/?url={quote(url)}")
    browser_page.wait_for_function("vod.segments.length >= 4 && video.currentTime > 2", timeout=20_000)
    segments = browser_page.evaluate("vod.segments")
    for segment in segments[:4]:
        assert segment["bytes"] == len(httpx.get(segment["url"]).content), segment
        assert segment["duration"] > 0 and segment["ms"] >= 0, segment
    for kind in {segment["kind"] for segment in segments}:
        run = sorted((s for s in segments if s["kind"] == kind), key=lambda s: s["start"])
        for before, after in zip(run, run[1:], strict=False):
            assert after["start"] == pytest.approx(before["start"] + before["duration"], abs=0.1), after
    drawn = browser_page.evaluate("""() => {
        const canvas = document.getElementById('timeline');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let coloured = 0;
        for (let i = 0; i < pixels.length; i += 4) {
            const [r, g, b, a] = pixels.slice(i, i + 4);
            if (a > 0 && !(r === g && g === b)) coloured++;  // segments and playhead, not grey or text
        }
        return coloured;
    }""")
    assert drawn > 1000
    rows = browser_page.eval_on_selector_all("#segments tbody tr", "rows => rows.length")
    assert min(len(segments), 12) <= rows <= 12  # the newest twelve (more may have arrived since)
    assert all(segment["level"] not in ("undefined", "null") for segment in segments)
