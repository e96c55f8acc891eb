"""Where a request's content keys come from: `secret_key`, the DRM-info service, or CPIX.

The DRM-info service (or a CPIX key server, `cpix_url`) is asked `GET <url>/<media path>` (the
file's path in the storage, ending with its name) once per file of a set; answers are kept by
bytes for drm_info_cache_ttl seconds, and concurrent requests for one file share a single request
(nginx-vod-module, without a DRM cache, asks on every request). It failing is never a clear answer:
a 404 (no key for media that exists), another status, a body that is not DRM info (or CPIX) or over
max_drm_info_size are 502s, no answer in time a 504. `cpix_file` is one CPIX document, read once
every drm_info_cache_ttl seconds, whose keys encrypt every file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from vodorigin.cache import ByteBoundedCache
from vodorigin.drm.cpix import parse_cpix
from vodorigin.drm.keys import FileKeys, parse_drm_info, secret_key
from vodorigin.errors import UpstreamError
from vodorigin.settings import Settings
from vodorigin.storage.documents import DocumentClient


class KeySource:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.secret_key
        self.url = (settings.cpix_url or settings.drm_info_url).rstrip("/")
        self.cpix = bool(settings.cpix_url)
        self.file = settings.cpix_file
        self.cache: ByteBoundedCache[FileKeys] = ByteBoundedCache(
            settings.drm_info_cache_bytes, lambda keys: keys.size, settings.drm_info_cache_ttl)
        self.documents = DocumentClient(settings.upstream_timeout, settings.max_drm_info_size,
                                        "the CPIX key server" if self.cpix else "the DRM-info service")

    async def keys(self, paths: Iterable[str], drm: bool) -> dict[str, FileKeys]:
        """The keys of each media path: from the DRM-info service or CPIX (drm), else from secret_key."""
        unique = list(dict.fromkeys(paths))
        if not drm:
            return {path: FileKeys(secret_key(self.secret, path)) for path in unique}
        if self.file:
            shared = await self.cache.get_or_load(f"cpix-file:{self.file}", self._read_file)
            return dict.fromkeys(unique, shared)
        loaded = await asyncio.gather(*(self._cached(path) for path in unique))
        return dict(zip(unique, loaded, strict=True))

    async def _cached(self, path: str) -> FileKeys:
        return await self.cache.get_or_load(path, lambda: self._load(path))

    async def _load(self, path: str) -> FileKeys:
        url = f"{self.url}/{path}"
        data = await self.documents.get(url)
        if data is None:
            raise UpstreamError(f"{url}: {self.documents.what} has no key for this media")
        return parse_cpix(data, url) if self.cpix else FileKeys(parse_drm_info(data, url))

    async def _read_file(self) -> FileKeys:
        try:
            data = await asyncio.to_thread(Path(self.file).read_bytes)
        except OSError as error:
            raise UpstreamError(f"cpix_file {self.file}: {error.strerror or error}") from None
        return parse_cpix(data, f"cpix_file {self.file}")

    async def close(self) -> None:
        await self.documents.close()
