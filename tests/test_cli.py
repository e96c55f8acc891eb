"""`vodorigin serve` as users run it: flags, environment, a real process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FIXTURES, free_port
from vodorigin import __version__
from vodorigin.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent



def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_serve_with_flags_and_environment(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "VODORIGIN_SEGMENT_DURATION": "6", "VODORIGIN_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(ROOT / "configs/local.toml"),
               "--media-root", str(FIXTURES), "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "server.log"
    with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        try:
            assert wait_for(f"http://127.0.0.1:{port}/health", process, log).text == "ok\n"
            index = httpx.get(f"http://127.0.0.1:{port}/hls/bframes.mp4/index.m3u8").text
            assert index.count("#EXTINF:6.000,") == 5  # 30 s at the 6 s from the environment
            startup = log.read_text().splitlines()[0]
            assert startup.startswith(f"vodorigin {__version__}: config ")
            assert f"storage local {FIXTURES}" in startup
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("segment_count_policy = 'sometimes'\n")
    result = subprocess.run([sys.executable, "-m", "vodorigin", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0 and "segment_count_policy" in result.stderr


SERVERS = ["uvicorn", "granian"]  # vodorigin serve --server (web/server.py)


def _download_across_sigterm(tmp_path: Path, shutdown_timeout: int, pause: float, server: str
                             ) -> tuple[int, int, int]:
    """Start a 256 MB /pd download (a sparse file: no disk used), SIGTERM the server after the
    first MB, pause, then read on. (bytes received, bytes announced, server exit code)"""
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    with (media / "big.mp4").open("wb") as big:
        big.truncate(256 * 1024 * 1024)
    port = free_port()
    environment = {**os.environ, "VODORIGIN_SHUTDOWN_TIMEOUT": str(shutdown_timeout),
                   "VODORIGIN_LOG_LEVEL": "warning", "VODORIGIN_SERVER": server}
    command = [sys.executable, "-m", "vodorigin", "serve", "--media-root", str(media), "--port", str(port)]
    log = tmp_path / "server.log"
    with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        wait_for(f"http://127.0.0.1:{port}/health", process, log)
        received = 0
        try:
            with httpx.stream("GET", f"http://127.0.0.1:{port}/pd/big.mp4", timeout=30) as response:
                announced = int(response.headers["content-length"])
                for chunk in response.iter_raw(65536):
                    received += len(chunk)
                    if received >= 1024 * 1024 and process.returncode is None and pause >= 0:
                        process.terminate()
                        time.sleep(pause)
                        pause = -1
        except httpx.TransportError:
            pass  # the negative case: the connection is cut
        return received, announced, process.wait(timeout=30)


@pytest.mark.parametrize("server", SERVERS)
def test_sigterm_lets_in_flight_responses_finish(tmp_path: Path, server: str) -> None:
    received, announced, code = _download_across_sigterm(tmp_path, shutdown_timeout=30, pause=1.5,
                                                         server=server)
    assert received == announced
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down cleanly


@pytest.mark.parametrize("server", SERVERS)
def test_in_flight_responses_are_cut_past_the_shutdown_timeout(tmp_path: Path, server: str) -> None:
    """The same download with a 1 s shutdown_timeout and a 3 s pause: proof the test above can fail."""
    received, announced, _ = _download_across_sigterm(tmp_path, shutdown_timeout=1, pause=3, server=server)
    assert received < announced


def test_version_and_sign_checks() -> None:
    version = subprocess.run([sys.executable, "-m", "vodorigin", "--version"], capture_output=True,
                             text=True, timeout=30, check=True)
    assert version.stdout.strip() == f"vodorigin {__version__}"
    command = [sys.executable, "-m", "vodorigin", "sign", "/hls/a.mp4/master.m3u8", "--expires-in", "-60"]
    negative = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert negative.returncode != 0 and "positive" in negative.stderr


def test_a_missing_media_root_stops_the_server_with_a_message(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "vodorigin", "serve", "--media-root", str(tmp_path / "nope")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False,
                            env={k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")})
    assert result.returncode != 0 and "is not a directory" in result.stderr


def test_a_relative_media_root_in_a_config_file_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config = tmp_path / "conf" / "site.toml"
    config.write_text('media_root = "../media"\n')
    assert load_settings(config, environ={}).media_root_path == (tmp_path / "media").resolve()
    assert load_settings(ROOT / "configs" / "local.toml", environ={}).media_root_path == FIXTURES.resolve()


@pytest.mark.parametrize(("log_format", "server"), [("json", "uvicorn"), ("text", "uvicorn"),
                                                    ("json", "granian"), ("text", "granian")])
def test_every_log_line_on_stdout_in_one_format(log_format: str, server: str, tmp_path: Path) -> None:
    """The server's lines and ours, access lines included, on stdout in the chosen format."""
    port = free_port()
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")},
                   "VODORIGIN_LOG_FORMAT": log_format, "VODORIGIN_SERVER": server}
    command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(ROOT / "configs/local.toml"),
               "--host", "127.0.0.1", "--port", str(port)]
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("wb") as stdout, err.open("wb") as stderr, \
            subprocess.Popen(command, cwd=tmp_path, env=environment, stdout=stdout, stderr=stderr) as process:
        try:
            wait_for(f"http://127.0.0.1:{port}/health", process, err)
            httpx.get(f"http://127.0.0.1:{port}/hls/bframes.mp4/master.m3u8", headers={"user-agent": "probe"})
            httpx.get(f"http://127.0.0.1:{port}/hls/nothing.mp4/master.m3u8")
            time.sleep(0.5)
        finally:
            process.terminate()
            process.wait(timeout=10)
    lines = out.read_text().splitlines()
    own = {"uvicorn": "startup complete", "granian": "Started worker"}[server]
    assert any(own in line for line in lines), lines  # the server's own line
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line is a JSON object
        access = [r for r in records if r.get("path") == "/hls/bframes.mp4/master.m3u8"]
        assert access and access[0]["status"] == 200 and access[0]["user_agent"] == "probe"
        assert any(r.get("logger") == "vodorigin" and "404" in r["message"] for r in records)
    else:
        pattern = r'\S+Z 127\.0\.0\.1 "GET /hls/bframes\.mp4/master\.m3u8" 200 \d+ [\d.]+ms .* "probe"'
        assert any(re.fullmatch(pattern, line) for line in lines), lines
        assert all(re.match(r"\d{4}-\d\d-\d\dT", line) for line in lines), lines


@pytest.mark.parametrize("server", SERVERS)
def test_metrics_add_up_every_worker(tmp_path: Path, server: str) -> None:
    """Two worker processes: whichever answers the scrape, the counters are the sum over both, they
    only grow, and each worker's process figures appear under its pid. (Workers are started afresh:
    this once failed at startup, unable to hand them the HTTP protocol class.)"""
    port = free_port()
    environment = {**{k: v for k, v in os.environ.items()
                      if not k.startswith("VODORIGIN_") and k != "PROMETHEUS_MULTIPROC_DIR"},
                   "VODORIGIN_LOG_LEVEL": "warning", "VODORIGIN_RESPONSE_CACHE_BYTES": "0",
                   "VODORIGIN_HEADER_TIMEOUT": "1", "VODORIGIN_KEEPALIVE_TIMEOUT": "1",
                   "VODORIGIN_SERVER": server, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(ROOT / "configs/local.toml"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        try:
            wait_for(f"{base}/health", process, log)
            pids: set[str] = set()
            totals: list[float] = []
            deadline = time.monotonic() + 30
            sent = 0
            while (len(pids) < 2 or len(totals) < 6) and time.monotonic() < deadline:
                with httpx.Client() as client:  # a new connection each round: the kernel spreads them
                    for _ in range(5):
                        assert client.get(f"{base}/hls/bframes.mp4/index-v1.m3u8").status_code == 200
                    sent += 5
                    metrics = client.get(f"{base}/metrics").text
                samples = [s for family in text_string_to_metric_families(metrics) for s in family.samples]
                totals.append(sum(s.value for s in samples if s.name == "vodorigin_requests_total"
                                  and s.labels == {"class": "manifest", "status": "200"}))
                pids |= {s.labels["pid"] for s in samples if s.name == "vodorigin_process_resident_bytes"}
                assert totals[-1] == sent, (totals, sent)  # every worker's requests, whoever answers
            assert len(pids) == 2, pids
            assert totals == sorted(totals)
            assert len(list(tmp_path.glob("vodorigin-shared-*/metrics/*.db"))) >= 2  # the workers' files
            with socket.create_connection(("127.0.0.1", port)) as idle:  # the workers' header timeout
                idle.settimeout(8)
                started = time.monotonic()
                assert idle.recv(1) == b""  # closed by the server, without a request
                assert time.monotonic() - started < 5
        finally:
            process.terminate()
            process.wait(timeout=15)
    assert not list(tmp_path.glob("vodorigin-shared-*"))  # removed at exit


def test_unreachable_storage_is_a_warning_or_with_fatal_a_stop(tmp_path: Path) -> None:
    """storage_check: an S3 endpoint nobody listens on is said at startup, before any request."""
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")},
                   "VODORIGIN_STORAGE": "s3", "VODORIGIN_S3_BUCKET": "media",
                   "VODORIGIN_UPSTREAM_TIMEOUT": "2",
                   "VODORIGIN_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                   "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}
    fatal = subprocess.run([sys.executable, "-m", "vodorigin", "serve"], capture_output=True, text=True,
                           timeout=30, check=False, env={**environment, "VODORIGIN_STORAGE_CHECK": "fatal"})
    assert fatal.returncode != 0
    assert "storage check failed: s3://media at http://127.0.0.1:" in fatal.stderr, fatal.stderr
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "vodorigin", "serve", "--port", str(port)]
    with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        try:
            assert wait_for(f"http://127.0.0.1:{port}/health", process, log).status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert "WARNING: storage check failed: s3://media" in log.read_text()


def test_the_health_command_follows_the_configured_port(tmp_path: Path) -> None:
    """The container's health check: it asks the port the settings name (file, then environment)."""
    port = free_port()
    environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")},
                   "VODORIGIN_PORT": str(port), "VODORIGIN_LOG_LEVEL": "warning"}
    config = str(ROOT / "configs/local.toml")

    def health(**changes: str) -> int:
        return subprocess.run([sys.executable, "-m", "vodorigin", "health", "--config", config],
                              env={**environment, **changes}, capture_output=True, timeout=30,
                              check=False).returncode

    assert health() == 1  # nothing listens yet
    log = tmp_path / "server.log"
    with log.open("wb") as errors, subprocess.Popen([sys.executable, "-m", "vodorigin", "serve", "--config",
                                                     config], cwd=tmp_path, env=environment,
                                                    stdout=subprocess.DEVNULL, stderr=errors) as process:
        try:
            wait_for(f"http://127.0.0.1:{port}/health", process, log)
            assert health() == 0
            assert health(VODORIGIN_PORT=str(free_port())) == 1
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_the_image_and_the_pins_agree_with_the_code() -> None:
    """What the Dockerfile and constraints.txt promise (the image is not built here: no engine)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY fixtures" not in dockerfile and "pip install -c constraints.txt ." in dockerfile
    assert 'CMD ["vodorigin", "health", "--config", "configs/production.toml"]' in dockerfile
    assert 'CMD ["vodorigin", "serve", "--config", "configs/production.toml"]' in dockerfile
    setup = (ROOT / "scripts/setup.sh").read_text()
    for kernel in sorted((ROOT / "vodorigin").rglob("_*.c")):  # the compiled kernels, built by both
        source = str(kernel.relative_to(ROOT))
        assert f"-o {source[:-2]}.so {source}" in dockerfile and source in setup, source
    production = load_settings(ROOT / "configs/production.toml", environ={})
    assert production.shutdown_timeout + 5 <= 30  # ECS's and Kubernetes' default stop grace
    pins = {line.split("==")[0].lower().replace("_", "-") for line in
            (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    names = {re.split(r"[\[<>=!~ ]", requirement)[0].lower().replace("_", "-") for requirement in wanted}
    assert names <= pins, f"not pinned (make lock): {sorted(names - pins)}"


def test_granian_answers_as_uvicorn_does(tmp_path: Path) -> None:
    """`server = "granian"` serves the same app: the same statuses, bodies and headers for a
    manifest, a segment, a Range of a file, a conditional request, an error and CORS preflight."""
    requests = [("GET", "/hls/bframes.mp4/master.m3u8", {}), ("GET", "/hls/bframes.mp4/seg-1-v1-a1.ts", {}),
                ("GET", "/dash/bframes.mp4/manifest.mpd", {"accept-encoding": "gzip"}),
                ("GET", "/pd/bframes.mp4", {"range": "bytes=100-5099"}),
                ("HEAD", "/pd/bframes.mp4", {}), ("GET", "/hls/missing.mp4/master.m3u8", {}),
                ("OPTIONS", "/hls/bframes.mp4/master.m3u8", {"origin": "https://player.example"})]
    kept = ("content-type", "content-length", "content-range", "content-encoding", "etag", "cache-control",
            "accept-ranges", "vary", "access-control-allow-origin", "access-control-max-age")
    answers: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
    for server in SERVERS:
        port = free_port()
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")},
                       "VODORIGIN_SERVER": server, "VODORIGIN_LOG_LEVEL": "warning"}
        command = [sys.executable, "-m", "vodorigin", "serve", "--media-root", str(FIXTURES),
                   "--host", "127.0.0.1", "--port", str(port)]
        log = tmp_path / f"{server}.log"
        with log.open("wb") as errors, subprocess.Popen(command, cwd=tmp_path, env=environment,
                                                        stdout=subprocess.DEVNULL, stderr=errors) as process:
            try:
                wait_for(f"http://127.0.0.1:{port}/health", process, log)
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                    answers[server] = []
                    for method, path, headers in requests:
                        response = client.request(method, path, headers=headers)
                        headers = {k: v for k, v in response.headers.items() if k in kept}
                        if response.status_code == 204:  # granian leaves out Content-Length: 0 (RFC 9110 8.6)
                            headers.pop("content-length", None)
                        answers[server].append((response.status_code, response.content, headers))
                    etag = answers[server][0][2]["etag"]
                    again = client.get(requests[0][1], headers={"if-none-match": etag})
                    answers[server].append((again.status_code, again.content, {}))
            finally:
                process.terminate()
                process.wait(timeout=15)
    assert [status for status, _, _ in answers["uvicorn"]] == [200, 200, 200, 206, 200, 404, 204, 304]
    assert answers["granian"] == answers["uvicorn"]
