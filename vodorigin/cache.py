"""In-memory caches. The metadata cache is bounded by bytes (cachetools with getsizeof) and keyed
on the source identity (path, size, mtime, etag), so a replaced file is never served stale.
Concurrent misses for one key share a single load (single flight).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

T = TypeVar("T")


class ByteBoundedCache(Generic[T]):
    """An LRU cache whose size is the sum of its values' `nbytes`, with single-flight loads."""

    def __init__(self, max_bytes: int, size_of: Callable[[T], int]) -> None:
        self._cache: LRUCache[Hashable, T] = LRUCache(maxsize=max(max_bytes, 1), getsizeof=size_of)
        self._size_of = size_of
        self._max_bytes = max_bytes
        self._loading: dict[Hashable, asyncio.Future[T]] = {}
        self.hits = 0
        self.misses = 0

    @property
    def current_bytes(self) -> int:
        return int(self._cache.currsize)

    def __len__(self) -> int:
        return len(self._cache)

    async def get_or_load(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
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
        if 0 < self._size_of(value) <= self._max_bytes:
            self._cache[key] = value
        return value
