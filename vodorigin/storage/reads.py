"""The read layer every remote backend shares: blocks, single-flight, deadlines, retries, concurrency.

A backend (http.py, s3.py) makes one attempt per call and classifies what went wrong with the
errors of errors.py; this wrapper decides what to read and what to do about failures:
* blocks: every read is widened to whole blocks of upstream_block_size bytes (the last one ends at
  the object's end), the way nginx-vod-module reads through aligned cache buffers. Blocks are the
  unit of sharing: a block read recently comes from a small byte-bounded cache
  (upstream_block_cache_bytes), a block being read by another request is awaited, and the rest,
  grouped into runs of neighbouring blocks, is read with one ranged GET per run. So the moov and
  the first frames, the audio and video fragments of one DASH segment, or HLS and DASH asking for
  the same media, cost one upstream read, and neighbouring segments share their boundary block;
* one deadline per upstream read (upstream_timeout), retries included: a slow upstream is a 504
  in bounded time;
* retries with exponential backoff and full jitter on retryable failures (5xx, throttling, dropped
  connections); never on 403/404 or a broken Range answer, which another attempt would not change;
* at most upstream_concurrency reads in flight per upstream.
Blocks are keyed on the object's identity (path, etag, size): a replaced object never serves old bytes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from vodorigin.cache import CountingLRU
from vodorigin.errors import UpstreamError, UpstreamTimeout
from vodorigin.media.model import SourceIdentity
from vodorigin.storage.base import Storage, UpstreamCounters, count_read

log = logging.getLogger("vodorigin.upstream")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.1
    concurrency: int = 32
    block_size: int = 256 * 1024
    block_cache_bytes: int = 64 * 1024 * 1024


class ResilientStorage:
    """A Storage that wraps one remote backend with the policy above."""

    def __init__(self, backend: Storage, policy: ReadPolicy, name: str) -> None:
        self.backend = backend
        self.policy = policy
        self.name = name
        self.counters = UpstreamCounters()
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.blocks: CountingLRU[bytes] = CountingLRU(max(policy.block_cache_bytes, 1), getsizeof=len)
        self._in_flight: dict[BlockKey, asyncio.Future[bytes]] = {}  # blocks being read
        self._runs: set[asyncio.Task[None]] = set()  # upstream reads under way (strong references)

    async def stat(self, path: str) -> SourceIdentity:
        self.counters.stats += 1
        return await self._attempts(lambda: self.backend.stat(path), f"stat {path}")

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        size = self.policy.block_size
        first, last = offset // size, (offset + length - 1) // size
        pieces: list[bytes | asyncio.Future[bytes]] = []
        missing: list[int] = []
        for index in range(first, last + 1):
            key = (source.path, source.etag, source.size, index)
            if (block := self.blocks.get(key)) is not None:
                self.counters.block_hits += 1
                pieces.append(block)
            elif (pending := self._in_flight.get(key)) is not None:
                self.counters.shared += 1
                pieces.append(pending)
            else:
                pending = self._in_flight[key] = asyncio.get_running_loop().create_future()
                pending.add_done_callback(_retrieve)
                pieces.append(pending)
                missing.append(index)
                self.counters.block_misses += 1
        for run_first, run_last in _runs(missing):
            task = asyncio.create_task(self._read_run(source, run_first, run_last))
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
        # shield: a client that goes away cancels its wait, never a read others are waiting for
        blocks = [piece if isinstance(piece, bytes) else await asyncio.shield(piece) for piece in pieces]
        start = offset - first * size
        return b"".join(blocks)[start:start + length] if len(blocks) > 1 else blocks[0][start:start + length]

    async def _read_run(self, source: SourceIdentity, first: int, last: int) -> None:
        """Read blocks first..last in one upstream GET and hand each to its waiters and the cache."""
        size = self.policy.block_size
        start, end = first * size, min((last + 1) * size, source.size)
        keys = [(source.path, source.etag, source.size, index) for index in range(first, last + 1)]
        started = time.perf_counter()
        try:
            data = await self._attempts(lambda: self.backend.read(source, start, end - start),
                                        f"read {source.path} {start}+{end - start}")
        except BaseException as exc:
            for key in keys:
                waiters = self._in_flight.pop(key)
                if isinstance(exc, asyncio.CancelledError):  # shutdown
                    waiters.cancel()
                else:
                    waiters.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        count_read(self.counters, len(data), time.perf_counter() - started)
        for n, key in enumerate(keys):
            block = data[n * size:(n + 1) * size] if len(keys) > 1 else data
            if self.policy.block_cache_bytes >= len(block):
                self.blocks[key] = block
            self._in_flight.pop(key).set_result(block)

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
        for task in list(self._runs):
            task.cancel()
        await self.backend.close()


BlockKey = tuple[str, str, int, int]  # path, etag, size, block index


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Ascending block indexes grouped into (first, last) runs of neighbours."""
    runs: list[tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _retrieve(future: asyncio.Future[bytes]) -> None:
    """Mark a block's failure as retrieved: its waiters re-raise it, and one nobody awaits any more
    (every client went away) is not reported as an unhandled exception."""
    if not future.cancelled():
        future.exception()
