"""The I/O side of a request: storage reads, the metadata cache, and feeding the sans-IO core.

Everything here awaits; everything it calls (mp4/, media/, mux/, packagers/) does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
from collections.abc import AsyncIterator

from cachetools import Cache, TTLCache

from vodorigin.cache import ByteBoundedCache
from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.media.frames import ByteRange, SourceBytes, merged_ranges_of
from vodorigin.media.model import MediaSet, Movie, SourceIdentity
from vodorigin.media.subtitles import embedded_cue_ranges, embedded_cues, needs_cues, sidecar_movie, with_cues
from vodorigin.mp4.boxes import Moov
from vodorigin.mp4.locate import MoovLocator, MoovRange, ReadRange
from vodorigin.mp4.moov import Limits, parse_moov
from vodorigin.mp4.skeleton import Mappings, MoovSkeleton
from vodorigin.settings import Settings
from vodorigin.storage.base import Storage
from vodorigin.text import MAX_INPUT_BYTES, detect_format

STREAM_CHUNK = 1024 * 1024  # progressive download reads the source in pieces of this size
# A 2-hour title's moov (6.3 MB) parses in about 0.4 ms on the event loop; a worker thread's trip
# cost more than that (README: Work off the event loop).
LARGE_MOOV = 8 << 20  # parse moovs larger than this in a worker thread
LARGE_TEXT = 64 * 1024  # and subtitle files or embedded cue samples of more bytes than this
SKELETON_MOOV = 1 << 20  # a moov larger than this is read as a skeleton for a timing-only manifest
REFUSALS_KEPT = 4096  # files refused (422, 413, 415) remembered by identity, so that a hostile file
REFUSAL_TTL = 300.0  # costs its parse once in this many seconds, not on every request


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
        self.refusals: TTLCache[tuple[object, ...], MediaError] = TTLCache(REFUSALS_KEPT, REFUSAL_TTL)
        # with no metadata cache to keep movies in, a manifest that needs only the tracks' timing
        # reads a large moov as a skeleton (mp4/skeleton.py), where reads are cheap enough that a
        # few small ones cost less than one large one (local files)
        self.skeletons = settings.metadata_cache_bytes == 0 and getattr(storage, "seeks_cheaply", False)
        self.skeleton_mappings = Mappings()  # the last skeleton's mapping, for the next one

    async def sources(self, paths: tuple[str, ...]) -> tuple[SourceIdentity, ...]:
        """The current identity (size, mtime, etag) of each file, one stat each."""
        if len(paths) == 1:  # most requests: no tasks to gather
            return (await self.storage.stat(paths[0]),)
        return tuple(await asyncio.gather(*(self.storage.stat(path) for path in paths)))

    async def movie(self, path: str) -> Movie:
        """A file's metadata, from the cache when its identity has not changed."""
        return await self.movie_of(await self.storage.stat(path))

    async def movie_of(self, source: SourceIdentity, timing_only: bool = False) -> Movie:
        """A file's metadata, from the cache when its identity has not changed. `timing_only`: for
        a manifest that reads nothing of the movie but its tracks' timing (hls.timing_only), which
        may then be read without its sample sizes and places (a skeleton, when self.skeletons)."""
        key = (source.path, source.size, source.mtime, source.etag)
        # usually empty: Cache's len, which reads no timer (TTLCache's expires entries first, 0.7 us)
        refused = self.refusals.get(key) if Cache.__len__(self.refusals) else None
        if refused is not None:
            raise type(refused)(refused.message)
        try:
            if timing_only and self.skeletons:  # nothing would keep the movie: not looked up either
                return await self._load_movie(source, timing_only=True)
            return await self.metadata.get_or_load(key, lambda: self._load_movie(source))
        except MediaError as error:  # the file's own fault (not its storage's): the same next time
            # kept as a new error: the one raised holds, in its traceback's frames, the moov it refused
            self.refusals[key] = type(error)(error.message)
            raise

    async def _load_movie(self, source: SourceIdentity, timing_only: bool = False) -> Movie:
        """An MP4's moov, located in bounded reads and parsed; or a sidecar subtitle file (told by
        its first bytes), read whole within the text limit and parsed into cues. `timing_only`: a
        moov over SKELETON_MOOV bytes is read as a skeleton when it can be (_skeleton)."""
        settings = self.settings
        locator = MoovLocator(source.size, settings.initial_read_size, settings.max_moov_size,
                              settings.max_moov_reads)
        first = locator.first_read()
        head = await self.read(source, first.offset, first.length)
        if detect_format(head) is not None:
            return await self._load_sidecar(source, head)
        request, last, data = locator.feed(first.offset, head), first.offset, head
        while isinstance(request, ReadRange):
            if timing_only and isinstance(request, MoovRange) and request.length > SKELETON_MOOV:
                skeleton = await self._skeleton(source, request, last, data)
                if skeleton is not None:
                    return await self._parse(skeleton, source, timing_only=True)
            last = request.offset
            data = await self.read(source, last, request.length)
            request = locator.feed(last, data)
        return await self._parse(request, source)

    async def _parse(self, moov: Moov, source: SourceIdentity, timing_only: bool = False) -> Movie:
        if len(moov) > LARGE_MOOV:
            return await asyncio.to_thread(parse_moov, moov, source, self.limits, timing_only)
        return parse_moov(moov, source, self.limits, timing_only)

    async def _skeleton(self, source: SourceIdentity, moov: MoovRange, offset: int, data: bytes
                        ) -> mmap.mmap | None:
        """The moov at `moov` as a skeleton (mp4/skeleton.py), from the bytes last read (`data`,
        at `offset`) on; None when it is better read whole."""
        skeleton = MoovSkeleton(moov.offset, moov.length, mapping=self.skeleton_mappings.take(moov.length))
        step = skeleton.feed(offset, data)
        while isinstance(step, ReadRange):
            step = skeleton.feed(step.offset, await self.read(source, step.offset, step.length))
        return step

    async def _load_sidecar(self, source: SourceIdentity, head: bytes) -> Movie:
        if source.size > MAX_INPUT_BYTES:
            raise LimitExceeded(f"{source.path}: a subtitle file of {source.size} bytes "
                                f"(at most {MAX_INPUT_BYTES})")
        data = head if len(head) == source.size else await self.read(source, 0, source.size)
        try:
            if len(data) > LARGE_TEXT:
                return await asyncio.to_thread(sidecar_movie, source, data)
            return sidecar_movie(source, data)
        except MediaError as error:
            raise type(error)(f"{source.path}: {error.message}") from error

    async def movies(self, sources: tuple[SourceIdentity, ...], timing_only: bool = False) -> list[Movie]:
        """The metadata of each source, loaded concurrently (and cached); `timing_only` as in
        movie_of."""
        if len(sources) == 1:
            return [await self.movie_of(sources[0], timing_only)]
        return list(await asyncio.gather(*(self.movie_of(source, timing_only) for source in sources)))

    async def with_cues(self, movies: list[Movie]) -> list[Movie]:
        """The movies with the cues of their embedded subtitle tracks read and decoded; the cache
        keeps them with the movie, so the samples are read once."""
        loaded = []
        for movie in movies:
            for track in [t for t in movie.tracks if needs_cues(t)]:
                ranges = merged_ranges_of(embedded_cue_ranges(track), self.settings.read_merge_gap)
                data = await self.read_ranges(movie.source, ranges)
                if sum(r.length for r in ranges) > LARGE_TEXT:
                    cues = await asyncio.to_thread(embedded_cues, track, data)
                else:
                    cues = embedded_cues(track, data)
                movie = with_cues(movie, track.track_id, cues)
            source = movie.source
            self.metadata.replace((source.path, source.size, source.mtime, source.etag), movie)
            loaded.append(movie)
        return loaded

    def check_size(self, media: MediaSet) -> MediaSet:
        if media.sample_count > self.settings.max_samples_per_media_set:
            raise LimitExceeded(f"the media set holds {media.sample_count} samples, over "
                                f"max_samples_per_media_set ({self.settings.max_samples_per_media_set})")
        return media

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        _check_range(source, offset, length)
        return await self.storage.read(source, offset, length)

    def cached_file(self, source: SourceIdentity, offset: int, length: int
                    ) -> contextlib.AbstractContextManager[int | None]:
        """An open descriptor of the source, for the block, when its storage is local and the page
        cache holds [offset, offset + length) (LocalStorage.cached_file); else None."""
        _check_range(source, offset, length)
        cached_file = getattr(self.storage, "cached_file", None)
        return contextlib.nullcontext() if cached_file is None else cached_file(source, offset, length)

    async def read_ranges(self, source: SourceIdentity, ranges: list[ByteRange]) -> SourceBytes:
        read_many = getattr(self.storage, "read_many", None)
        if read_many is None or not ranges:
            buffers = await asyncio.gather(*(self.read(source, r.offset, r.length) for r in ranges))
            return SourceBytes(ranges, list(buffers))
        for r in ranges:
            _check_range(source, r.offset, r.length)
        return SourceBytes(ranges, await read_many(source, [(r.offset, r.length) for r in ranges]))

    async def stream(self, source: SourceIdentity, offset: int, length: int) -> AsyncIterator[bytes]:
        """[offset, offset + length) of a source in chunks, never the whole object at once."""
        end = offset + length
        while offset < end:
            size = min(STREAM_CHUNK, end - offset)
            yield await self.read(source, offset, size)
            offset += size


def _check_range(source: SourceIdentity, offset: int, length: int) -> None:
    if offset < 0 or length < 0 or offset + length > source.size:
        raise MediaError(f"{source.path}: data at {offset}+{length} lies outside the file")
