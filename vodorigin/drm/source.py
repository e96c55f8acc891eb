"""Where a request's content keys come from: `secret_key`, or the DRM-info service.

The DRM-info service is asked `GET <drm_info_url>/<media path>` (the file's path in the storage,
ending with its name) once per file of a set; answers are kept by bytes for drm_info_cache_ttl
seconds, and concurrent requests for one file share a single request (nginx-vod-module, without a
DRM cache, asks on every request). It failing is never a clear answer: a 404 (no key for media that
exists), another status, a body that is not DRM info or over max_drm_info_size are 502s, no answer
in time a 504.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from vodorigin.cache import ByteBoundedCache
from vodorigin.drm.keys import ContentKey, parse_drm_info, secret_key
from vodorigin.errors import UpstreamError
from vodorigin.settings import Settings
from vodorigin.storage.documents import DocumentClient


class KeySource:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.secret_key
        self.url = settings.drm_info_url.rstrip("/")
        self.cache: ByteBoundedCache[ContentKey] = ByteBoundedCache(
            settings.drm_info_cache_bytes, lambda key: 256 + sum(len(s.data) for s in key.systems),
            settings.drm_info_cache_ttl)
        self.documents = DocumentClient(settings.upstream_timeout, settings.max_drm_info_size,
                                        "the DRM-info service")

    async def keys(self, paths: Iterable[str], drm: bool) -> dict[str, ContentKey]:
        """The key of each media path: from the DRM-info service (drm), else from secret_key."""
        unique = list(dict.fromkeys(paths))
        if not drm:
            return {path: secret_key(self.secret, path) for path in unique}
        loaded = await asyncio.gather(*(self._cached(path) for path in unique))
        return dict(zip(unique, loaded, strict=True))

    async def _cached(self, path: str) -> ContentKey:
        return await self.cache.get_or_load(path, lambda: self._load(path))

    async def _load(self, path: str) -> ContentKey:
        url = f"{self.url}/{path}"
        data = await self.documents.get(url)
        if data is None:
            raise UpstreamError(f"{url}: the DRM-info service has no key for this media")
        return parse_drm_info(data, url)

    async def close(self) -> None:
        await self.documents.close()
