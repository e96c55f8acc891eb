"""The storage interface every backend (local, HTTP upstream, S3) implements, and read accounting."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from vodorigin.media.model import SourceIdentity


class Storage(Protocol):
    """Byte-range access to media objects named by a relative path."""

    async def stat(self, path: str) -> SourceIdentity:
        """Size, modification time and entity tag; NotFound when there is no such object."""
        ...

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset` (the caller keeps ranges inside the object)."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class UpstreamCounters:
    """Totals for /status and /metrics."""

    reads: int = 0  # reads from the backend that succeeded (for remote ones: ranged GETs)
    bytes: int = 0  # bytes they brought
    stats: int = 0
    retries: int = 0
    errors: int = 0  # reads and stats that failed (remote: after their retries)
    block_hits: int = 0  # remote: blocks found in the block cache
    block_misses: int = 0  # remote: blocks that had to be read
    shared: int = 0  # remote: blocks awaited from another request's upstream read
    read_seconds: list[float] = field(default_factory=list)  # durations not yet taken by /metrics


@dataclass(slots=True)
class RequestReads:
    """The reads one request caused, for its access log line."""

    reads: int = 0
    bytes: int = 0


request_reads: ContextVar[RequestReads | None] = ContextVar("request_reads", default=None)
MAX_PENDING_DURATIONS = 10_000  # read durations kept for /metrics between two syncs (web/observe.py)


def count_read(counters: UpstreamCounters, nbytes: int, seconds: float | None = None) -> None:
    """Add one successful read (and how long it took) to the backend's totals and to the
    current request's."""
    counters.reads += 1
    counters.bytes += nbytes
    if seconds is not None and len(counters.read_seconds) < MAX_PENDING_DURATIONS:
        counters.read_seconds.append(seconds)
    current = request_reads.get()
    if current is not None:
        current.reads += 1
        current.bytes += nbytes
