"""Requests per second under load (wrk -t2 -c32, as issue 17 measured), each beside its floor.

The server runs as `vodorigin serve` in its own process(es). Every row is measured twice in the same
run: against vodorigin, and against the floor of its layer, so that the figure is also a ratio to
what is physically possible on this machine:
* the HTTP floor: a bare ASGI app (bench/floor.py) under the same uvicorn settings answering the
  same bytes from memory: what any Python origin on uvicorn pays per request;
* the I/O floor for /pd: the same bare app answering each request with one os.pread of the range.
When scripts/build_nginx_vod.sh has built the C reference (nginx-vod-module 1.33 on nginx 1.30, -O3,
one worker: what issue 17 measured against), every row is also measured against it in the same run,
on the same bytes, with its metadata and response caches set as the row sets ours.
Nothing here asserts on time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "bench" / "media"
NGINX = ROOT / "bench" / "nginx-vod" / "sbin" / "nginx"
SECONDS = 5
CONNECTIONS = 32
SLICES, SLICE_SECONDS = 5, 2  # a row against the reference: alternating slices, medians compared


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A process serving on 127.0.0.1 until the with-block ends."""

    def __init__(self, command: list[str], environment: dict[str, str]) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.environment = {**os.environ, **environment}

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, env=self.environment, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError(f"{self.command} did not start")

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


SERVERS = ("uvicorn", "granian")  # vodorigin serve --server; each row is measured under both


def vodorigin(workers: int = 1, server: str = "uvicorn", **settings: str) -> Server:
    environment = {f"VODORIGIN_{name.upper()}": value for name, value in settings.items()}
    environment |= {"VODORIGIN_MEDIA_ROOT": str(MEDIA), "VODORIGIN_ACCESS_LOG": "false",
                    "VODORIGIN_LOG_LEVEL": "warning", "VODORIGIN_PLAYER_PAGE": "false"}
    return Server([sys.executable, "-m", "vodorigin", "serve", "--port", "{port}",
                   "--workers", str(workers), "--server", server], environment)


# The reference's locations: each row's URL under the reference is its path with /hls/ replaced by the
# location whose caches match the row's settings (vod_metadata_cache and vod_response_cache are the
# module's counterparts of metadata_cache_bytes and response_cache_bytes). /pd/ is the module's
# progressive download (`vod none`): ranges of the file as it is, sent with sendfile. Manifests are
# gzipped for clients that take it, as the module's README configures them and vodorigin does
# (gzip_manifests): wrk asks for no encoding, the cold rows' httpx for gzip.
NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
error_log {run}/error.log error;
pid {run}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    gzip on;
    gzip_types application/vnd.apple.mpegurl application/dash+xml video/f4m text/vtt;
    default_type application/octet-stream;
    vod_mode local;
    vod_metadata_cache metadata_cache 512m;
    vod_response_cache response_cache 128m;
    server {{
        listen 127.0.0.1:{port};
        location = /health {{ alias {run}/health; }}
        location /hls/ {{ alias {media}/; vod hls; }}
        location /hls-no-response-cache/ {{ alias {media}/; vod hls; vod_response_cache off; }}
        location /hls-no-caches/ {{
            alias {media}/; vod hls; vod_response_cache off; vod_metadata_cache off;
        }}
        location /dash/ {{ alias {media}/; vod dash; }}
        location /pd/ {{ alias {media}/; vod none; }}
    }}
}}
"""


@contextmanager
def nginx_vod() -> Iterator[Server | None]:
    """The C reference, serving bench/media, or None when it is not built."""
    if not NGINX.exists():
        yield None
        return
    with tempfile.TemporaryDirectory() as run:
        (Path(run) / "health").write_text("ok\n")
        server = Server([str(NGINX), "-p", run, "-c", f"{run}/nginx.conf"], {})
        user = "user root;" if os.geteuid() == 0 else ""  # as root, nginx's worker would otherwise
        # run as nobody, who may not read this checkout or the temporary directory
        (Path(run) / "nginx.conf").write_text(NGINX_CONF.format(user=user, run=run, port=server.port,
                                                                media=MEDIA))
        with server:
            yield server


def reference_path(path: str, settings: dict[str, str]) -> str:
    """A row's path on the reference, in the location with the row's caches."""
    if settings.get("metadata_cache_bytes") == "0":
        return path.replace("/hls/", "/hls-no-caches/")
    if settings.get("response_cache_bytes") == "0":
        return path.replace("/hls/", "/hls-no-response-cache/")
    return path


def floor(body_from: str, headers: dict[str, str] | None = None, pread: str = "", server: str = "uvicorn"
          ) -> Server:
    """The bare ASGI app answering what `body_from` answered (or, with pread, `file:offset:length`
    read on every request), under the same server."""
    return Server([sys.executable, "-m", "bench.floor", "{port}", server],
                  {"FLOOR_URL": body_from, "FLOOR_RANGE": (headers or {}).get("range", ""),
                   "FLOOR_PREAD": pread})


def wrk(url: str, headers: dict[str, str] | None = None, seconds: int = SECONDS, warm: bool = True) -> float:
    """Requests per second that wrk measured (-t2 -c32, `seconds` s), after a 1 s warm-up."""
    arguments = []
    for name, value in (headers or {}).items():
        arguments += ["-H", f"{name}: {value}"]
    if warm:
        subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", "-d1s", *arguments, url], capture_output=True,
                       check=True)
    result = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", *arguments, url],
                            capture_output=True, text=True, check=True)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors[1]} error responses under load")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)[1])  # type: ignore[index]


def interleaved(ours: str, reference: str, headers: dict[str, str]) -> tuple[float, float]:
    """Our rate and the reference's: the medians of SLICES slices of each, taken in turns (which
    goes first alternating), so that the VM's phases (its speed drifts by a third over minutes)
    fall on both alike."""
    wrk(ours, headers, 1)
    wrk(reference, headers, 1)
    rates: dict[str, list[float]] = {ours: [], reference: []}
    for turn in range(SLICES):
        for url in (ours, reference) if turn % 2 == 0 else (reference, ours):
            rates[url].append(wrk(url, headers, SLICE_SECONDS, warm=False))
    return statistics.median(rates[ours]), statistics.median(rates[reference])


def row(name: str, ours: float, floor_rate: float, reference: float | None, note: str = "") -> None:
    versus = "nginx-vod not built"
    if reference:
        versus = f"nginx-vod {reference:>7.0f}  ratio {ours / reference:.2f}"
    print(f"  {name:<48} {ours:>9.0f} req/s  floor {floor_rate:>7.0f}  ratio {ours / floor_rate:.2f}  "
          f"{versus}  {note}")


ROWS = {  # name -> (URL path, request headers, vodorigin settings)
    "HLS TS segment, repeated": ("/hls/long_360p.mp4/seg-10-v1-a1.ts", {}, {}),
    "DASH video fragment, repeated": ("/dash/long_360p.mp4/fragment-10-v1.m4s", {}, {}),
    "HLS index, metadata cached, no response cache": ("/hls/long_360p.mp4/index-v1-a1.m3u8", {},
                                                     {"response_cache_bytes": "0"}),
    "HLS index, response cache": ("/hls/long_360p.mp4/index-v1-a1.m3u8", {}, {}),
    "/pd 1 MiB Range": ("/pd/long_360p.mp4", {"range": "bytes=10485760-11534335"}, {}),
}


def main() -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (make bench installs it): load figures skipped")
        return
    for server_name in SERVERS:
        print(f"under load with {server_name}: wrk -t2 -c{CONNECTIONS} for {SECONDS} s, one worker; "
              f"floors from a bare ASGI app under {server_name}; nginx-vod-module, one worker")
        for name, (path, headers, settings) in ROWS.items():
            with vodorigin(server=server_name, **settings) as server, nginx_vod() as reference:
                reference_rate = None
                if reference is not None:
                    reference_url = reference.base + reference_path(path, settings)
                    ours, reference_rate = interleaved(server.base + path, reference_url, headers)
                else:
                    ours = wrk(server.base + path, headers)
                size = len(httpx.get(server.base + path, headers=headers).content)
                url = server.base + path
                pread = ""
                if path.startswith("/pd/"):
                    first, last = (int(n) for n in headers["range"].split("=")[1].split("-"))
                    pread = f"{MEDIA / 'long_360p.mp4'}:{first}:{last - first + 1}"
                with floor(url, headers, pread, server_name) as bare:
                    floor_rate = wrk(bare.base + "/", headers)
            row(name, ours, floor_rate, reference_rate, f"{size / 1e3:.0f} kB; {ours * size / 1e6:.0f} MB/s")
    cold_manifests()
    for server_name in SERVERS:
        print(f"scaling with workers under {server_name} (HLS TS segment; HLS index from the response cache)")
        for workers in (1, 2, 4):
            with vodorigin(workers=workers, server=server_name) as server:
                segment = wrk(server.base + ROWS["HLS TS segment, repeated"][0])
                index = wrk(server.base + ROWS["HLS index, response cache"][0])
            print(f"  {workers} worker(s): TS segment {segment:>6.0f} req/s, index {index:>6.0f} req/s")


def cold_manifests() -> None:
    """The 2-hour title's index: the first request to a fresh server (moov read and parsed,
    timeline derived), and, with every cache off, one request at a time; each against the time
    the bare app takes to answer the same bytes (its first request, and one at a time), and the
    reference's time for the same request (nginx-vod-module's first request to a fresh nginx)."""
    index = ROWS["HLS index, response cache"][0]
    print("2-hour index, one request at a time (caches off: after 50 requests, medians of 20 taken in turns "
          "with nginx-vod's)")
    firsts, floors, references = [], [], []
    for _ in range(3):  # fresh servers: the first request for the title is the cold one, on a
        # connection a health check opened (as a load balancer's are) from a client made and used
        # beforehand: making an httpx client and its first request take longer than the request
        with vodorigin() as server, httpx.Client(timeout=60) as client:
            firsts.append(_first(client, server.base, index))
            body = client.get(server.base + index).content
            with floor(server.base + index) as bare:
                floors.append(_first(client, bare.base, "/", body))
        with nginx_vod() as reference, httpx.Client(timeout=60) as client:
            if reference is not None:
                references.append(_first(client, reference.base, index))
    first = statistics.median(firsts)
    versus = "nginx-vod not built"
    if references:
        reference_first = statistics.median(references)
        versus = f"nginx-vod {reference_first * 1000:>5.1f} ms  {first / reference_first:.2f}x"
    print(f"  {'first request on a fresh server':<48} {first * 1000:>8.1f} ms   floor "
          f"{statistics.median(floors) * 1000:>6.1f} ms  {versus}  (median of 3 servers)")
    with nginx_vod() as reference, httpx.Client(timeout=60) as reference_client:
        theirs = [(reference_client, reference.base + reference_path(index, {"metadata_cache_bytes": "0"}))
                  ] if reference is not None else []
        for retain in ("0", "64"):  # glibc's defaults, then production.toml's allocator_retain_mib
            uncached_server = vodorigin(metadata_cache_bytes="0", response_cache_bytes="0",
                                        allocator_retain_mib=retain)
            with uncached_server as server, httpx.Client(base_url=server.base, timeout=60) as client:
                uncached, *reference_latency = _latencies((client, index), *theirs)
                with floor(server.base + index) as bare, \
                        httpx.Client(base_url=bare.base, timeout=60) as plain:
                    (floor_latency,) = _latencies((plain, "/"))
            label = f"caches off, allocator_retain_mib {retain}"
            versus = "nginx-vod not built"
            if reference_latency:
                theirs_ms = reference_latency[0] * 1000
                versus = f"nginx-vod {theirs_ms:>5.1f} ms  {uncached * 1000 / theirs_ms:.2f}x"
            print(f"  {label:<48} {uncached * 1000:>8.1f} ms   floor {floor_latency * 1000:>6.1f} ms  "
                  f"ratio {floor_latency / uncached:.2f}  {versus}")


def _first(client: httpx.Client, base: str, path: str, expected: bytes | None = None) -> float:
    """Seconds the first request for path took, on a connection a health check opened."""
    client.get(base + "/health")
    start = time.perf_counter()
    answer = client.get(base + path)
    seconds = time.perf_counter() - start
    assert answer.status_code == 200 and (expected is None or answer.content == expected)
    return seconds


WARM_REQUESTS = 50  # before a latency is measured: nginx-vod-module's index with its caches off
# takes 4-5 ms for about its first 30 requests, then 1.2-2.4 ms


def _latencies(*targets: tuple[httpx.Client, str]) -> list[float]:
    """The median time of one request to each (client, path) in its steady state: after
    WARM_REQUESTS each, 20 rounds that take them in turns (each round in the other order), so
    that the VM's phases fall on all alike."""
    for client, path in targets:
        for _ in range(WARM_REQUESTS):
            client.get(path)
    samples: list[list[float]] = [[] for _ in targets]
    for round_number in range(20):
        order = list(enumerate(targets))
        for index, (client, path) in order if round_number % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            assert client.get(path).status_code == 200
            samples[index].append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]


if __name__ == "__main__":
    main()
