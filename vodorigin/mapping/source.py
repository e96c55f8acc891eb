"""Where mappings come from (mapped mode): a mapping service over HTTP, or JSON files in storage.

* mapping_url set: GET exactly `<mapping_url>/<media-set path>` (no protocol component:
  /hls/m/ep1.json/master.m3u8 asks <mapping_url>/m/ep1.json), one attempt within upstream_timeout.
  404 -> 404; another status, a broken connection or a body over max_mapping_size -> 502; no answer
  in time -> 504. (nginx-vod-module answers 502 to a 404 and 503 to a body that is not JSON; a JSON
  that is not a mapping is a 422 here, one we do not support a 415, both naming the field.)
* mapping_url empty: the media-set path names a JSON file in the configured storage.

Parsed mappings are cached by bytes for mapping_cache_ttl seconds (unless they say "cache":
false), and concurrent requests for one mapping share a single fetch. Each mapping also gets an
identity (a digest of its bytes), part of every validator and response-cache key of the media set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vodorigin.cache import ByteBoundedCache
from vodorigin.errors import BadRequest, NotFound, UpstreamError
from vodorigin.mapping.mapped import MappedSet, mapped_request, parse_mapping
from vodorigin.media.model import SourceIdentity
from vodorigin.settings import Settings
from vodorigin.storage.base import Storage
from vodorigin.storage.documents import DocumentClient
from vodorigin.storage.local import check_relative_path
from vodorigin.urls import MediaRequest


@dataclass(frozen=True, slots=True)
class Mapping:
    mapped: MappedSet
    identity: SourceIdentity
    size: int


class MappingSource:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.url = settings.mapping_url.rstrip("/")
        self.cache: ByteBoundedCache[Mapping] = ByteBoundedCache(
            settings.mapping_cache_bytes, lambda mapping: mapping.size + 1024, settings.mapping_cache_ttl)
        self.documents = DocumentClient(settings.upstream_timeout, settings.max_mapping_size,
                                        "the mapping service")

    async def resolve(self, request: MediaRequest) -> tuple[MediaRequest, tuple[SourceIdentity, ...]]:
        """The request a mapped URL stands for, and the mapping's identity."""
        if request.is_urlset or len(request.parts) != 1:
            raise BadRequest("in mapped mode a URL names one mapping, not a urlset")
        part = request.parts[0]
        if not part.tracks.empty or part.language is not None or part.shifts_ms:
            raise BadRequest("in mapped mode tracks, languages and shifts come from the mapping")
        path = check_relative_path(part.path)
        mapping = await self.cache.get_or_load(path, lambda: self._load(path), lambda m: m.mapped.cache)
        return mapped_request(mapping.mapped, request.protocol, request.file_name, request.clip), \
            (mapping.identity,)

    async def _load(self, path: str) -> Mapping:
        data = await (self._fetch(path) if self.url else self._read(path))
        where = f"{self.url}/{path}" if self.url else path
        settings = self.settings
        mapped = parse_mapping(data, where, settings.max_urlset_parts, settings.max_duration_seconds * 1000)
        digest = hashlib.sha256(data).hexdigest()[:32]
        return Mapping(mapped, SourceIdentity(f"mapping:{path}", len(data), 0.0, digest), len(data))

    async def _read(self, path: str) -> bytes:
        source = await self.storage.stat(path)
        if source.size > self.settings.max_mapping_size:
            raise UpstreamError(f"{path}: a mapping of {source.size} bytes (max_mapping_size "
                                f"{self.settings.max_mapping_size})")
        return await self.storage.read(source, 0, source.size)

    async def _fetch(self, path: str) -> bytes:
        data = await self.documents.get(f"{self.url}/{path}")
        if data is None:
            raise NotFound(f"{path}: the mapping service has no such mapping")
        return data

    async def close(self) -> None:
        await self.documents.close()
