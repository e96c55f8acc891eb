"""Operations: the access log, /metrics (Prometheus text) and /status (JSON).

One pure ASGI middleware times every request, counts the bytes it sends and the storage reads it
caused (a context variable the storage layer adds to), and then writes one access line on the
`vodorigin.access` logger and updates the metrics.

With several worker processes, a scrape reaches one of them, yet /metrics must describe them all:
`vodorigin serve` then points prometheus-client's multiprocess mode at a fresh folder
(PROMETHEUS_MULTIPROC_DIR), where every worker's metrics live, and /metrics adds them up
(counters and histograms summed; cache sizes and requests in flight summed over live workers;
process figures per worker, labelled by pid). Cache and upstream figures, which their owners keep
as plain numbers, are carried into those metrics at every scrape and within a second after
requests (counters by their increase since the last time). /status describes the worker that
answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import logging
import os
import resource
import time
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vodorigin import __version__
from vodorigin.cache import ByteBoundedCache, ResponseCache
from vodorigin.origin import Origin
from vodorigin.storage.base import RequestReads, UpstreamCounters, request_reads
from vodorigin.web.cors import CORS_HEADERS, preflight
from vodorigin.web.http_cache import request_class
from vodorigin.web.logs import iso_time

access_log = logging.getLogger("vodorigin.access")
UPSTREAM_COUNTERS = (("reads", "Storage reads that succeeded"), ("bytes", "Bytes read from storage"),
                     ("stats", "Storage stat (HEAD) calls"), ("errors", "Storage calls that failed"),
                     ("retries", "Storage calls retried"))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
CACHE_COUNTERS = (("hits", "Cache hits"), ("misses", "Cache misses"),
                  ("evictions", "Entries evicted to make room"))
GaugeMode = Literal["livesum", "livemax"]  # summed, or the largest, over the live workers
CACHE_GAUGES: tuple[tuple[str, str, GaugeMode], ...] = (
    ("bytes", "Bytes held", "livesum"), ("max_bytes", "Byte bound", "livemax"),
    ("entries", "Entries held", "livesum"))
PROCESS_EVERY = 1.0  # seconds between two readings of the process's memory and CPU
SYNC_AFTER = 1.0  # seconds after a request by which the owners' figures are carried into the metrics


class Observer:
    """The figures of one application (one worker process)."""

    def __init__(self, origin: Origin, responses: ResponseCache) -> None:
        self.origin = origin
        self.responses = responses
        self.started = time.time()
        self.multiprocess = bool(os.environ.get(MULTIPROCESS))
        # in multiprocess mode the values live in files; the scrape collects them (metrics_text)
        self.registry = CollectorRegistry()
        registry = None if self.multiprocess else self.registry
        self.requests = Counter("vodorigin_requests", "HTTP requests by class and status",
                                ["class", "status"], registry=registry)
        self.latency = Histogram("vodorigin_request_duration_seconds", "Time to the last byte, by class",
                                 ["class"], buckets=LATENCY_BUCKETS, registry=registry)
        self.bytes_out = Counter("vodorigin_response_bytes", "Body bytes sent, by class", ["class"],
                                 registry=registry)
        self.in_flight = Gauge("vodorigin_requests_in_flight", "Requests being answered",
                               multiprocess_mode="livesum", registry=registry)
        self.cache_counters = {name: Counter(f"vodorigin_cache_{name}", text, ["cache"], registry=registry)
                               for name, text in CACHE_COUNTERS}
        self.cache_gauges = {name: Gauge(f"vodorigin_cache_{name}", text, ["cache"], multiprocess_mode=mode,
                                         registry=registry) for name, text, mode in CACHE_GAUGES}
        self.upstream = {name: Counter(f"vodorigin_upstream_{name}", text, ["storage"], registry=registry)
                         for name, text in UPSTREAM_COUNTERS}
        self.read_latency = Histogram("vodorigin_upstream_read_seconds", "Time of one storage read",
                                      ["storage"], buckets=LATENCY_BUCKETS, registry=registry)
        self.resident = Gauge("vodorigin_process_resident_bytes", "Resident memory of the worker",
                              ["pid"], multiprocess_mode="liveall", registry=registry)
        self.cpu = Gauge("vodorigin_process_cpu_seconds", "CPU time of the worker", ["pid"],
                         multiprocess_mode="liveall", registry=registry)
        Gauge("vodorigin_build_info", "The version serving", ["version"], multiprocess_mode="max",
              registry=registry).labels(__version__).set(1)
        self.active = 0  # requests in flight (carried into in_flight by sync, like the owners' figures)
        self._seen: dict[tuple[str, str], float] = {}  # owners' counters as last carried over
        self._process_read = 0.0
        self._sync_pending = False
        self._latency: dict[str, Any] = {}  # the histogram's series by class
        self._answered: dict[tuple[str, int], int] = {}  # requests by class and status, not yet carried
        self._sent: dict[str, int] = {}  # body bytes by class, not yet carried
        self.sync()

    def caches(self) -> dict[str, dict[str, Any]]:
        figures = {"metadata": _cache_figures(self.origin.metadata),
                   "responses": _cache_figures(self.responses)}
        blocks = getattr(self.origin.storage, "blocks", None)
        if blocks is not None:
            counters = self.counters()
            figures["blocks"] = {"bytes": int(blocks.currsize), "max_bytes": int(blocks.maxsize),
                                 "entries": len(blocks), "hits": counters.block_hits,
                                 "misses": counters.block_misses, "evictions": blocks.evictions,
                                 "hit_rate": _rate(counters.block_hits, counters.block_misses)}
        return figures

    def counters(self) -> UpstreamCounters:
        counters = getattr(self.origin.storage, "counters", None)
        return counters if isinstance(counters, UpstreamCounters) else UpstreamCounters()

    def sync(self) -> None:
        """Carry the requests', the caches' and the storage's own figures into the metrics (within a
        second after requests, and before a scrape): counters by their increase, gauges as they are."""
        answered, self._answered = self._answered, {}
        for (kind, status), count in answered.items():
            self.requests.labels(kind, str(status)).inc(count)
        sent, self._sent = self._sent, {}
        for kind, count in sent.items():
            self.bytes_out.labels(kind).inc(count)
        for cache, figures in self.caches().items():
            for name, counter in self.cache_counters.items():
                self._increase(counter.labels(cache), (name, cache), figures[name])
            for name, gauge in self.cache_gauges.items():
                gauge.labels(cache).set(figures[name])
        self.in_flight.set(self.active)
        counters = self.counters()
        storage = self.origin.settings.storage
        for name, counter in self.upstream.items():
            self._increase(counter.labels(storage), (name, "upstream"), getattr(counters, name))
        durations, counters.read_seconds[:] = list(counters.read_seconds), []
        histogram = self.read_latency.labels(storage)
        for seconds in durations:
            histogram.observe(seconds)
        now = time.monotonic()
        if now - self._process_read >= PROCESS_EVERY:
            self._process_read = now
            pid = str(os.getpid())
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu.labels(pid).set(usage.ru_utime + usage.ru_stime)
            self.resident.labels(pid).set(_resident_bytes())

    def record(self, kind: str, status: int, duration: float, sent: int) -> None:
        """One request answered: its time goes into the histogram (its labelled series looked up
        once), its count and bytes into plain numbers that sync() carries over, as the caches'."""
        latency = self._latency.get(kind)
        if latency is None:
            latency = self._latency[kind] = self.latency.labels(kind)
        latency.observe(duration)
        answered = self._answered
        answered[kind, status] = answered.get((kind, status), 0) + 1
        self._sent[kind] = self._sent.get(kind, 0) + sent
        self.request_done()

    def request_done(self) -> None:
        """After a request: the owners' figures reach the metrics within SYNC_AFTER seconds (one
        sync per second at most, however many requests; a scrape syncs at once)."""
        if not self._sync_pending:
            self._sync_pending = True
            asyncio.get_running_loop().call_later(SYNC_AFTER, self._scheduled_sync)

    def _scheduled_sync(self) -> None:
        self._sync_pending = False
        self.sync()

    def _increase(self, counter: Any, key: tuple[str, str], value: float | None) -> None:
        if value is None:
            return
        increase = value - self._seen.get(key, 0)
        if increase > 0:
            counter.inc(increase)
        self._seen[key] = value

    def status(self) -> dict[str, Any]:
        counters = self.counters()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started, 3),
            "storage": self.origin.settings.storage,
            "caches": self.caches(),
            "upstream": {k: v for k, v in dataclasses.asdict(counters).items() if k != "read_seconds"},
        }

    def metrics_text(self) -> bytes:
        self.sync()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """At a worker's exit: its live gauges leave the sums (multiprocess mode)."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _cache_figures(cache: ByteBoundedCache[Any] | ResponseCache) -> dict[str, Any]:
    return {"bytes": cache.current_bytes, "max_bytes": cache.max_bytes, "entries": len(cache),
            "hits": cache.hits, "misses": cache.misses, "evictions": cache.evictions,
            "hit_rate": _rate(cache.hits, cache.misses)}


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


class ObserveMiddleware:
    """The front of every HTTP request: timed, its status and body bytes counted, its storage
    reads counted when the access log is written; and the CORS headers added to its response
    (web/cors.py), preflights answered. Both in one wrapper of `send`, not one middleware each:
    a layer costs a few microseconds per request, and a playlist from the cache costs tens."""

    def __init__(self, app: ASGIApp, observer: Observer, log_requests: bool,
                 trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.observer = observer
        self.log_requests = log_requests
        self.trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        logged = self.log_requests and access_log.isEnabledFor(logging.INFO)
        reads = RequestReads() if logged else None  # the storage counts into it (only for the log)
        token = request_reads.set(reads) if reads is not None else None
        status, sent = 500, 0
        self.observer.active += 1

        async def front_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *CORS_HEADERS]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await (preflight if scope["method"] == "OPTIONS" else self.app)(scope, receive, front_send)
        finally:
            if token is not None:
                request_reads.reset(token)
            duration = time.perf_counter() - started
            kind = request_class(scope["path"])
            self.observer.active -= 1
            self.observer.record(kind, status, duration, sent)
            if reads is not None:  # the access log is written
                headers = _headers(scope)
                fields = {
                    "time": iso_time(time.time()), "client": self.client(scope, headers),
                    "method": scope["method"], "path": scope["path"], "class": kind, "status": status,
                    "bytes": sent, "duration_ms": round(duration * 1000, 2),
                    "range": headers.get("range", "-"), "cache": state.get("cache", "-"),
                    "upstream_reads": reads.reads, "upstream_bytes": reads.bytes,
                    "user_agent": headers.get("user-agent", "-"),
                    "request_id": headers.get("x-amz-cf-id") or headers.get("x-request-id") or "-",
                    "pid": os.getpid()}
                access_log.info(json.dumps(fields, separators=(",", ":")), extra={"fields": fields})

    def client(self, scope: Scope, headers: dict[str, str]) -> str:
        """The client's address: the peer's, or when the peer is a trusted proxy (trusted_proxies),
        the last address of X-Forwarded-For that is not one (CloudFront then the ALB append theirs)."""
        peer = (scope.get("client") or ("-", 0))[0]
        chain = [peer]
        if self.trusted and "x-forwarded-for" in headers:
            chain = [a.strip() for a in headers["x-forwarded-for"].split(",") if a.strip()] + [peer]
        for address in reversed(chain):
            if not self._trusted(address):
                return address
        return chain[0]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)


def _headers(scope: Scope) -> dict[str, str]:
    pairs = scope.get("headers", [])
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in pairs}
