"""Settings per protocol (issue 14): [hls], [dash], [hds] and [mss] tables, their validation, their
environment form, and the nginx-vod-module deployment translated in configs/kaltura-cloudfront.toml
served end to end from an HTTP upstream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest
from lxml import etree

from tests.conftest import LiveServer, ffmpeg_read_errors, without_template_overrun
from tests.test_golden import check_golden
from tests.upstream import FaultServer
from vodorigin.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
KALTURA = ROOT / "configs" / "kaltura-cloudfront.toml"
LAST_MODIFIED = "Sun, 19 Nov 2000 08:52:00 GMT"
MPD = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def test_tables_override_one_protocol(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('segment_duration = 6\n[hls]\nbootstrap_segment_durations = [2, 2]\n'
                      '[dash]\nsegment_duration = 4\ndash_manifest_format = "segmenttemplate"\n')
    settings = load_settings(config, environ={})
    assert settings.for_protocol("hls").bootstrap_segment_durations == (2.0, 2.0)
    assert settings.for_protocol("hls").segment_duration == 6.0
    assert settings.for_protocol("dash").segment_duration == 4.0
    assert settings.for_protocol("dash").bootstrap_segment_durations == ()
    assert settings.for_protocol("mss").segment_duration == 6.0
    assert settings.for_protocol("pd").segment_duration == 6.0
    environ = {"VODORIGIN_DASH__SEGMENT_DURATION": "2",
               "VODORIGIN_HLS__BOOTSTRAP_SEGMENT_DURATIONS": "1,1"}
    from_environment = load_settings(config, environ=environ)
    assert from_environment.for_protocol("dash").segment_duration == 2.0
    assert from_environment.for_protocol("hls").bootstrap_segment_durations == (1.0, 1.0)


@pytest.mark.parametrize(("text", "message"), [
    ("[hls]\nsegment_duraton = 4\n", "[hls] segment_duraton"),
    ("[hls]\ndash_manifest_format = \"segmenttemplate\"\n", "[hls] dash_manifest_format"),
    ("[mss]\nstorage = \"s3\"\n", "[mss] storage"),
    ("bootstrap_segment_durations = [2]\n[dash]\ndash_manifest_format = \"segmenttemplate\"\n",
     "segmenttemplate"),
    ("[hds]\nsegment_duration = -1\n", "segment_duration"),
    ("last_modified = \"yesterday\"\n", "last_modified"),
])
def test_table_errors_name_the_setting(text: str, message: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        load_settings(config, environ={})


def test_bootstrap_for_hls_and_a_template_for_dash_go_together(tmp_path: Path) -> None:
    """The cross-field rule holds per protocol: HLS's bootstrap segments do not clash with DASH's
    fixed-duration template."""
    settings = load_settings(KALTURA, environ={})
    assert settings.for_protocol("hls").bootstrap_segment_durations == (2, 2, 2, 4)
    assert settings.for_protocol("dash").dash_manifest_format == "segmenttemplate"


@pytest.mark.parametrize("variable", ["VODORIGIN_SEGMENT_DURATON", "VODORIGIN_HLS__NOPE",
                                      "VODORIGIN_PD__SEGMENT_DURATION", "VODORIGIN_HLS"])
def test_unknown_environment_variables_are_errors(variable: str) -> None:
    with pytest.raises(SettingsError, match="names no setting"):
        load_settings(environ={variable: "1"})


# --- the translated nginx-vod-module deployment, end to end ---------------------------------------


@pytest.fixture(scope="module")
def kaltura() -> Iterator[httpx.Client]:
    with FaultServer() as upstream:
        settings = load_settings(KALTURA, {"http_base_url": f"{upstream.base}/ok", "host": "127.0.0.1"},
                                 environ={})
        with LiveServer(settings) as server, httpx.Client(base_url=server.base, timeout=30) as client:
            yield client


def durations(playlist_text: str) -> list[float]:
    return [segment.duration for segment in m3u8.loads(playlist_text).segments]


def test_each_protocol_has_its_segmentation(kaltura: httpx.Client) -> None:
    """HLS: 2, 2, 2, 4 s then 10 s (estimate: nominal); DASH: a 4 s template over the shortest track;
    HDS: 6 s, last_rounded; MSS: 4 s, accurate (key frames every 2 s here)."""
    assert durations(kaltura.get("/hls/bframes.mp4/index-v1-a1.m3u8").text) == [2, 2, 2, 4, 10, 10]
    mpd = etree.fromstring(kaltura.get("/dash/bframes.mp4/manifest.mpd").content)
    templates = mpd.findall(".//d:SegmentTemplate", MPD)
    assert {int(t.get("duration")) / int(t.get("timescale")) for t in templates} == {4.0}
    assert mpd.get("mediaPresentationDuration") == "PT30.000S"
    hds = etree.fromstring(kaltura.get("/hds/bframes.mp4/manifest.f4m").content)
    assert hds.find("{http://ns.adobe.com/f4m/1.0}duration").text == "30.000"
    mss = etree.fromstring(kaltura.get("/mss/bframes.mp4/manifest").content)
    video = mss.find("StreamIndex")
    assert [int(c.get("d")) for c in video.findall("c")] == [40_000_000] * 7 + [20_000_000]


def test_fixed_last_modified_long_expiry_gzip_and_cors(kaltura: httpx.Client) -> None:
    paths = ("/hls/bframes.mp4/master.m3u8", "/dash/bframes.mp4/manifest.mpd",
             "/hds/bframes.mp4/manifest.f4m", "/mss/bframes.mp4/manifest", "/hls/bframes.mp4/seg-1-v1-a1.ts",
             "/hls/,video_only.mp4,lang/eng/subs_en.srt,.urlset/seg-2-f2-t1.vtt")
    for path in paths:
        response = kaltura.get(path, headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, path
        assert response.headers["last-modified"] == LAST_MODIFIED
        assert response.headers["cache-control"] == "public, max-age=8640000"
        assert response.headers["access-control-allow-origin"] == "*"
        assert (response.headers.get("content-encoding") == "gzip") == (not path.endswith(".ts")), path
    modified_since = {"if-modified-since": LAST_MODIFIED}
    assert kaltura.get("/hls/bframes.mp4/master.m3u8", headers=modified_since).status_code == 304


@pytest.mark.parametrize(("name", "path"), [
    ("kaltura/hls_master.m3u8", "/hls/bframes.mp4/master.m3u8"),
    ("kaltura/hls_index.m3u8", "/hls/bframes.mp4/index-v1-a1.m3u8"),
    ("kaltura/dash.mpd", "/dash/bframes.mp4/manifest.mpd"),
    ("kaltura/hds.f4m", "/hds/bframes.mp4/manifest.f4m"),
    ("kaltura/mss.xml", "/mss/bframes.mp4/manifest"),
])
def test_kaltura_golden_manifests(name: str, path: str, kaltura: httpx.Client) -> None:
    check_golden(name, kaltura.get(path))


def test_ffmpeg_reads_hls_and_dash_of_the_kaltura_config(kaltura: httpx.Client) -> None:
    base = str(kaltura.base_url).rstrip("/")
    for path in ("/hls/bframes.mp4/master.m3u8", "/dash/bframes.mp4/manifest.mpd",
                 "/hls/clip_,180p,360p,.mp4.urlset/master.m3u8"):
        assert without_template_overrun(ffmpeg_read_errors(base + path)) == "", path


def test_vodorigin_serve_runs_the_kaltura_config(tmp_path: Path) -> None:
    """The real command line with the config file, its upstream given in the environment."""
    with FaultServer() as upstream:
        environment = {**os.environ, "VODORIGIN_HTTP_BASE_URL": f"{upstream.base}/ok",
                       "VODORIGIN_WORKERS": "1", "VODORIGIN_HOST": "127.0.0.1",
                       "VODORIGIN_LOG_LEVEL": "warning"}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        environment["VODORIGIN_PORT"] = str(port)
        command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(KALTURA)]
        process = subprocess.Popen(command, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    url = f"http://127.0.0.1:{port}/hls/bframes.mp4/index-v1-a1.m3u8"
                    response = httpx.get(url, timeout=5)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None, "server did not start"
                    time.sleep(0.2)
            assert response.status_code == 200
            assert durations(response.text) == [2, 2, 2, 4, 10, 10]
        finally:
            process.terminate()
            process.wait(timeout=30)
