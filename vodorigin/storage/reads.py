"""The read layer every remote backend shares: deadlines, retries, bounded concurrency, single-flight.

A backend (http.py, s3.py) makes one attempt per call and classifies what went wrong with the
errors of errors.py; this wrapper decides what to do about it:
* one deadline per read (upstream_timeout), retries included: a slow upstream is a 504 in bounded time;
* retries with exponential backoff and full jitter on retryable failures (5xx, throttling, dropped
  connections); never on 403/404 or a broken Range answer, which another attempt would not change;
* at most upstream_concurrency reads in flight per upstream;
* single-flight: concurrent reads of the same bytes of the same object version share one upstream
  read (the metadata cache does the same one level up for whole moovs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from vodorigin.errors import UpstreamError, UpstreamTimeout
from vodorigin.media.model import SourceIdentity
from vodorigin.storage.base import Storage

log = logging.getLogger("vodorigin.upstream")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.1
    concurrency: int = 32


@dataclass(slots=True)
class UpstreamCounters:
    """What /status and /metrics (issue 6) will report."""

    reads: int = 0
    bytes: int = 0
    stats: int = 0
    retries: int = 0
    errors: int = 0
    shared: int = 0  # reads answered by another request's upstream read


class ResilientStorage:
    """A Storage that wraps one remote backend with the policy above."""

    def __init__(self, backend: Storage, policy: ReadPolicy, name: str) -> None:
        self.backend = backend
        self.policy = policy
        self.name = name
        self.counters = UpstreamCounters()
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._in_flight: dict[tuple[object, ...], asyncio.Future[bytes]] = {}  # single-flight reads

    async def stat(self, path: str) -> SourceIdentity:
        self.counters.stats += 1
        return await self._attempts(lambda: self.backend.stat(path), f"stat {path}")

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        key = (source.path, source.etag, source.size, offset, length)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read(source, offset, length))
            self._in_flight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        else:
            self.counters.shared += 1
        return await asyncio.shield(task)  # a client that goes away does not cancel the others' read

    async def _read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        data = await self._attempts(lambda: self.backend.read(source, offset, length),
                                    f"read {source.path} {offset}+{length}")
        self.counters.reads += 1
        self.counters.bytes += len(data)
        return data

    def _finished(self, key: tuple[object, ...], task: asyncio.Future[bytes]) -> None:
        del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaits any more is not logged as unhandled

    async def _attempts(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        try:
            async with asyncio.timeout(self.policy.timeout):
                attempt = 0
                while True:
                    try:
                        async with self._slots:
                            return await call()
                    except UpstreamError as error:
                        if not error.retryable or attempt >= self.policy.retries:
                            raise
                        delay = self.policy.backoff * (2**attempt) * random.uniform(0.5, 1.5)
                        attempt += 1
                        self.counters.retries += 1
                        log.warning("%s: %s: %s; retry %d in %.2f s", self.name, what, error.message,
                                    attempt, delay)
                        await asyncio.sleep(delay)
        except TimeoutError:
            self.counters.errors += 1
            log.warning("%s: %s: no answer within %.1f s", self.name, what, self.policy.timeout)
            message = f"{self.name}: {what}: no answer within {self.policy.timeout:g} s"
            raise UpstreamTimeout(message) from None
        except UpstreamError:
            self.counters.errors += 1
            raise

    async def close(self) -> None:
        await self.backend.close()
