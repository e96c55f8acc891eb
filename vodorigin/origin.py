"""The I/O side of a request: storage reads, the metadata cache, and feeding the sans-IO core.

Everything here awaits; everything it calls (mp4/, media/, mux/, packagers/) does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from vodorigin.cache import ByteBoundedCache
from vodorigin.errors import LimitExceeded, MediaError, NotFound
from vodorigin.media.frames import ByteRange, SourceBytes
from vodorigin.media.model import MediaSet, Movie, SourceIdentity, select_tracks
from vodorigin.mp4.locate import MoovLocator, ReadRange
from vodorigin.mp4.moov import Limits, parse_moov
from vodorigin.settings import Settings
from vodorigin.storage.base import Storage
from vodorigin.urls import MediaRequest

STREAM_CHUNK = 1024 * 1024  # progressive download reads the source in pieces of this size
LARGE_MOOV = 512 * 1024  # parse moovs larger than this in a worker thread


class Origin:
    """One per application: the storage backend, the caches and the settings derived once."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.limits = Limits(settings.max_tracks, settings.max_samples_per_track,
                             settings.max_samples_per_file, settings.moov_sample_allowance,
                             settings.max_frame_size, settings.max_duration_seconds)
        self.metadata: ByteBoundedCache[Movie] = ByteBoundedCache(
            settings.metadata_cache_bytes, lambda movie: movie.nbytes
        )

    async def sources(self, paths: tuple[str, ...]) -> tuple[SourceIdentity, ...]:
        """The current identity (size, mtime, etag) of each file, one stat each."""
        return tuple(await asyncio.gather(*(self.storage.stat(path) for path in paths)))

    async def movie(self, path: str) -> Movie:
        """A file's metadata, from the cache when its identity has not changed."""
        return await self.movie_of(await self.storage.stat(path))

    async def movie_of(self, source: SourceIdentity) -> Movie:
        key = (source.path, source.size, source.mtime, source.etag)
        return await self.metadata.get_or_load(key, lambda: self._load_movie(source))

    async def _load_movie(self, source: SourceIdentity) -> Movie:
        settings = self.settings
        locator = MoovLocator(source.size, settings.initial_read_size, settings.max_moov_size,
                              settings.max_moov_reads)
        request: ReadRange | bytes = locator.first_read()
        while isinstance(request, ReadRange):
            data = await self.read(source, request.offset, request.length)
            request = locator.feed(request.offset, data)
        if len(request) > LARGE_MOOV:
            return await asyncio.to_thread(parse_moov, request, source, self.limits)
        return parse_moov(request, source, self.limits)

    async def media_set(self, request: MediaRequest, sources: tuple[SourceIdentity, ...]) -> MediaSet:
        """The movies of a request's files (`sources`, their identities), with tracks/ applied."""
        movies = await asyncio.gather(*(self.movie_of(source) for source in sources))
        if not request.tracks.empty:
            movies = [replace(m, tracks=select_tracks(m.tracks, request.tracks, False)) for m in movies]
            if any(not m.tracks for m in movies):
                raise NotFound("the tracks/ parameter selects no track of the file")
        media = MediaSet(tuple(movies), request.clip)
        if media.sample_count > self.settings.max_samples_per_media_set:
            raise LimitExceeded(f"the media set holds {media.sample_count} samples, over "
                                f"max_samples_per_media_set ({self.settings.max_samples_per_media_set})")
        return media

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > source.size:
            raise MediaError(f"{source.path}: data at {offset}+{length} lies outside the file")
        return await self.storage.read(source, offset, length)

    async def read_ranges(self, source: SourceIdentity, ranges: list[ByteRange]) -> SourceBytes:
        buffers = await asyncio.gather(*(self.read(source, r.offset, r.length) for r in ranges))
        return SourceBytes(ranges, list(buffers))

    async def stream(self, source: SourceIdentity, offset: int, length: int) -> AsyncIterator[bytes]:
        """[offset, offset + length) of a source in chunks, never the whole object at once."""
        end = offset + length
        while offset < end:
            size = min(STREAM_CHUNK, end - offset)
            yield await self.read(source, offset, size)
            offset += size
