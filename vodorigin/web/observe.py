"""Operations: the access log, /metrics (Prometheus text) and /status (JSON).

One pure ASGI middleware times every request, counts the bytes it sends and the storage reads it
caused (a context variable the storage layer adds to), and then writes one JSON line on the
`vodorigin.access` logger and updates the request metrics. Cache and upstream figures are read
from the objects that keep them when /metrics or /status is asked for, so counting costs nothing
per request. Each worker process keeps its own figures (see README: Known limits).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vodorigin import __version__
from vodorigin.cache import ByteBoundedCache, ResponseCache
from vodorigin.origin import Origin
from vodorigin.storage.base import RequestReads, UpstreamCounters, request_reads
from vodorigin.web.http_cache import request_class
from vodorigin.web.logs import iso_time

access_log = logging.getLogger("vodorigin.access")
UPSTREAM_COUNTERS = (("reads", "Storage reads that succeeded"), ("bytes", "Bytes read from storage"),
                     ("stats", "Storage stat (HEAD) calls"), ("errors", "Storage calls that failed"),
                     ("retries", "Storage calls retried"))
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Observer:
    """The figures of one application (one worker process)."""

    def __init__(self, origin: Origin, responses: ResponseCache) -> None:
        self.origin = origin
        self.responses = responses
        self.started = time.time()
        self.registry = CollectorRegistry()
        self.requests = Counter("vodorigin_requests", "HTTP requests by class and status",
                                ["class", "status"], registry=self.registry)
        self.latency = Histogram("vodorigin_request_duration_seconds", "Time to the last byte, by class",
                                 ["class"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.bytes_out = Counter("vodorigin_response_bytes", "Body bytes sent, by class", ["class"],
                                 registry=self.registry)
        self.registry.register(_StateCollector(self))

    def caches(self) -> dict[str, dict[str, Any]]:
        figures = {"metadata": _cache_figures(self.origin.metadata),
                   "responses": _cache_figures(self.responses)}
        blocks = getattr(self.origin.storage, "blocks", None)
        if blocks is not None:
            counters = self.counters()
            figures["blocks"] = {"bytes": int(blocks.currsize), "max_bytes": int(blocks.maxsize),
                                 "entries": len(blocks), "hits": counters.block_hits,
                                 "misses": counters.block_misses, "evictions": None,
                                 "hit_rate": _rate(counters.block_hits, counters.block_misses)}
        return figures

    def counters(self) -> UpstreamCounters:
        counters = getattr(self.origin.storage, "counters", None)
        return counters if isinstance(counters, UpstreamCounters) else UpstreamCounters()

    def status(self) -> dict[str, Any]:
        counters = self.counters()
        return {
            "version": __version__,
            "pid": os.getpid(),
            "uptime_seconds": round(time.time() - self.started, 3),
            "storage": self.origin.settings.storage,
            "caches": self.caches(),
            "upstream": dataclasses.asdict(counters),
        }

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)


def _cache_figures(cache: ByteBoundedCache[Any] | ResponseCache) -> dict[str, Any]:
    return {"bytes": cache.current_bytes, "max_bytes": cache.max_bytes, "entries": len(cache),
            "hits": cache.hits, "misses": cache.misses, "evictions": cache.evictions,
            "hit_rate": _rate(cache.hits, cache.misses)}


def _rate(hits: int, misses: int) -> float | None:
    return round(hits / (hits + misses), 4) if hits + misses else None


class _StateCollector(Collector):
    """Cache and upstream figures, read from their owners at scrape time."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def collect(self) -> Iterator[Metric]:
        caches = self.observer.caches()
        families: dict[str, Metric] = {
            "hits": CounterMetricFamily("vodorigin_cache_hits", "Cache hits", labels=["cache"]),
            "misses": CounterMetricFamily("vodorigin_cache_misses", "Cache misses", labels=["cache"]),
            "evictions": CounterMetricFamily("vodorigin_cache_evictions", "Entries evicted to make room",
                                             labels=["cache"]),
            "bytes": GaugeMetricFamily("vodorigin_cache_bytes", "Bytes held", labels=["cache"]),
            "max_bytes": GaugeMetricFamily("vodorigin_cache_max_bytes", "Byte bound", labels=["cache"]),
            "entries": GaugeMetricFamily("vodorigin_cache_entries", "Entries held", labels=["cache"]),
        }
        for cache, figures in caches.items():
            for name, family in families.items():
                if figures[name] is not None:
                    family.add_metric([cache], figures[name])  # type: ignore[attr-defined]
        yield from families.values()
        counters = self.observer.counters()
        storage = self.observer.origin.settings.storage
        for name, help_text in UPSTREAM_COUNTERS:
            family = CounterMetricFamily(f"vodorigin_upstream_{name}", help_text, labels=["storage"])
            family.add_metric([storage], getattr(counters, name))
            yield family


class ObserveMiddleware:
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
        reads = RequestReads()
        token = request_reads.set(reads)
        status, sent = 500, 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            request_reads.reset(token)
            duration = time.perf_counter() - started
            kind = request_class(scope["path"])
            self.observer.requests.labels(kind, str(status)).inc()
            self.observer.latency.labels(kind).observe(duration)
            self.observer.bytes_out.labels(kind).inc(sent)
            if self.log_requests and access_log.isEnabledFor(logging.INFO):
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
