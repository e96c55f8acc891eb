"""In-memory caches, bounded by bytes (cachetools with getsizeof), keyed on source identities.

* The metadata cache holds parsed moovs, keyed on (path, size, mtime, etag), so a replaced file is
  never served stale. Concurrent misses for one key share a single load (single flight).
* The response cache holds built responses (manifests, init segments, optionally segments) for a
  time-to-live, keyed on the URL and the identities of every source it was built from.
Both count hits, misses and evictions for /status and /metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cachetools import LRUCache, TTLCache

T = TypeVar("T")
ENTRY_OVERHEAD = 2_000  # bytes of a response entry besides its bodies: key, objects, the two heads


class CountingLRU(LRUCache[Hashable, T]):
    """An LRUCache that counts the entries it evicts to make room."""

    evictions = 0

    def popitem(self) -> tuple[Hashable, T]:
        self.evictions += 1
        return super().popitem()


class _CountingTTL(TTLCache[Hashable, T]):
    evictions = 0

    def popitem(self) -> tuple[Hashable, T]:
        self.evictions += 1
        return super().popitem()


class _Figures(Generic[T]):
    """What /status and /metrics read of a cache: its bytes, bound, entries, hits, misses, evictions."""

    _cache: CountingLRU[T] | _CountingTTL[T]

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0

    @property
    def current_bytes(self) -> int:
        return int(self._cache.currsize)

    @property
    def evictions(self) -> int:
        return self._cache.evictions

    def __len__(self) -> int:
        return len(self._cache)

    def keys(self) -> list[Hashable]:
        return list(self._cache.keys())

    def pop(self, key: Hashable, default: T | None = None) -> T | None:
        """Drop an entry (a purge, web/purge.py): not an eviction."""
        return self._cache.pop(key, default)


class ByteBoundedCache(_Figures[T]):
    """An LRU cache whose size is the sum of its values' sizes (size_of), with single-flight loads;
    with a ttl, entries also expire that many seconds after they were loaded."""

    def __init__(self, max_bytes: int, size_of: Callable[[T], int], ttl: float | None = None) -> None:
        super().__init__(max_bytes)
        maxsize = max(max_bytes, 1)
        self._cache = CountingLRU(maxsize=maxsize, getsizeof=size_of) if ttl is None else \
            _CountingTTL(maxsize=maxsize, ttl=ttl, getsizeof=size_of)
        self._size_of = size_of
        self._loading: dict[Hashable, asyncio.Future[T]] = {}

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[T]],
                          keep: Callable[[T], bool] = lambda _: True) -> T:
        """The cached value, or load() it once for every concurrent caller; keep(value) False: serve
        it without caching it (a mapping that says "cache": false)."""
        cached = self._cache.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        pending = self._loading.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            self._loading.pop(key, None)
        future.set_result(value)
        if 0 < self._size_of(value) <= self.max_bytes and keep(value):
            self._cache[key] = value
        return value

    def replace(self, key: Hashable, value: T) -> None:
        """Keep a newer form of an entry (a movie whose subtitle cues were read since)."""
        if 0 < self._size_of(value) <= self.max_bytes:
            self._cache[key] = value


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A built response body with what the web layer needs to answer from it."""

    body: bytes
    content_type: str
    gzipped: bytes | None = None  # the same body compressed, for manifests
    # the response head of each form (False: plain, True: gzip) once a whole body was sent in it
    heads: dict[bool, list[tuple[bytes, bytes]]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def nbytes(self) -> int:
        return len(self.body) + len(self.gzipped or b"") + ENTRY_OVERHEAD


class ResponseCache(_Figures[CachedResponse]):
    """Built responses for a time-to-live, bounded by bytes (an oversized one is not kept)."""

    def __init__(self, max_bytes: int, ttl: float) -> None:
        super().__init__(max_bytes)
        self._cache = _CountingTTL(maxsize=max(max_bytes, 1), ttl=ttl, getsizeof=lambda entry: entry.nbytes)

    def get(self, key: Hashable) -> CachedResponse | None:
        if not self.max_bytes:  # turned off: nothing to look up (or to hash the key for)
            return None
        entry = self._cache.get(key)
        if entry is not None:
            self.hits += 1
        return entry

    def put(self, key: Hashable, entry: CachedResponse) -> None:
        """Keep a response that had to be built: a miss (lookups of what is never cached are not)."""
        self.misses += 1
        if entry.nbytes <= self.max_bytes:
            self._cache[key] = entry
