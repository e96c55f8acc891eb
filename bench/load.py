"""Requests per second under load (wrk -t2 -c32, as issue 17 measured), each beside its floor.

The server runs as `vodorigin serve` in its own process(es). Every row is measured twice in the same
run: against vodorigin, and against the floor of its layer, so that the figure is also a ratio to
what is physically possible on this machine:
* the HTTP floor: a bare ASGI app (bench/floor.py) under the same uvicorn settings answering the
  same bytes from memory: what any Python origin on uvicorn pays per request;
* the I/O floor for /pd: the same bare app answering each request with one os.pread of the range.
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
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "bench" / "media"
SECONDS = 5
CONNECTIONS = 32


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


def floor(body_from: str, headers: dict[str, str] | None = None, pread: str = "", server: str = "uvicorn"
          ) -> Server:
    """The bare ASGI app answering what `body_from` answered (or, with pread, `file:offset:length`
    read on every request), under the same server."""
    return Server([sys.executable, "-m", "bench.floor", "{port}", server],
                  {"FLOOR_URL": body_from, "FLOOR_RANGE": (headers or {}).get("range", ""),
                   "FLOOR_PREAD": pread})


def wrk(url: str, headers: dict[str, str] | None = None) -> float:
    """Requests per second that wrk measured (-t2 -c32, SECONDS s), after a 1 s warm-up."""
    arguments = []
    for name, value in (headers or {}).items():
        arguments += ["-H", f"{name}: {value}"]
    subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", "-d1s", *arguments, url], capture_output=True,
                   check=True)
    result = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", *arguments, url],
                            capture_output=True, text=True, check=True)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if errors:
        raise RuntimeError(f"{url}: {errors[1]} error responses under load")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)[1])  # type: ignore[index]


def row(name: str, ours: float, floor_rate: float, note: str = "") -> None:
    print(f"  {name:<48} {ours:>9.0f} req/s  floor {floor_rate:>7.0f}  ratio {ours / floor_rate:.2f}  {note}")


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
              f"floors from a bare ASGI app under {server_name}")
        for name, (path, headers, settings) in ROWS.items():
            with vodorigin(server=server_name, **settings) as server:
                ours = wrk(server.base + path, headers)
                size = len(httpx.get(server.base + path, headers=headers).content)
                url = server.base + path
                pread = ""
                if path.startswith("/pd/"):
                    first, last = (int(n) for n in headers["range"].split("=")[1].split("-"))
                    pread = f"{MEDIA / 'long_360p.mp4'}:{first}:{last - first + 1}"
                with floor(url, headers, pread, server_name) as bare:
                    floor_rate = wrk(bare.base + "/", headers)
            row(name, ours, floor_rate, f"{size / 1e3:.0f} kB; {ours * size / 1e6:.0f} MB/s")
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
    the bare app takes to answer the same bytes (its first request, and one at a time)."""
    index = ROWS["HLS index, response cache"][0]
    print("2-hour index, one request at a time (median of 20 for the uncached row)")
    firsts, floors = [], []
    for _ in range(3):  # fresh servers: the first request for the title is the cold one, on a
        # connection a health check opened (as a load balancer's are) from a client made and used
        # beforehand: making an httpx client and its first request take longer than the request
        with vodorigin() as server, httpx.Client(timeout=60) as client:
            client.get(server.base + "/health")
            start = time.perf_counter()
            body = client.get(server.base + index).content
            firsts.append(time.perf_counter() - start)
            with floor(server.base + index) as bare:
                client.get(bare.base + "/health")
                start = time.perf_counter()
                assert client.get(bare.base + "/").content == body
                floors.append(time.perf_counter() - start)
    print(f"  {'first request on a fresh server':<48} {statistics.median(firsts) * 1000:>8.1f} ms   floor "
          f"{statistics.median(floors) * 1000:>6.1f} ms  (median of 3 servers)")
    for retain in ("0", "64"):  # glibc's defaults, then production.toml's allocator_retain_mib
        uncached_server = vodorigin(metadata_cache_bytes="0", response_cache_bytes="0",
                                    allocator_retain_mib=retain)
        with uncached_server as server, httpx.Client(base_url=server.base, timeout=60) as client:
            uncached = _latencies(client, index)
            with floor(server.base + index) as bare, httpx.Client(base_url=bare.base, timeout=60) as plain:
                floor_latency = _latencies(plain, "/")
        label = f"caches off, allocator_retain_mib {retain}"
        print(f"  {label:<48} {uncached * 1000:>8.1f} ms   floor {floor_latency * 1000:>6.1f} ms  "
              f"ratio {floor_latency / uncached:.2f}")


def _latencies(client: httpx.Client, path: str) -> float:
    client.get(path)
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        assert client.get(path).status_code == 200
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


if __name__ == "__main__":
    main()
