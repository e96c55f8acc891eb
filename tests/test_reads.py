"""Read only what is needed: bounded metadata reads, segment reads limited to their frames."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vodorigin.errors import MediaError, UpstreamError
from vodorigin.media.model import MediaSet, SourceIdentity
from vodorigin.origin import Origin
from vodorigin.packagers import hls
from vodorigin.packagers.output import MediaSegment, PackagerContext
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage
from vodorigin.storage.reads import ReadPolicy, ResilientStorage


class CountingStorage(LocalStorage):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[tuple[int, int]] = []

    async def read_many(self, source: SourceIdentity, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.reads += ranges  # every read, single ones included, comes through here
        await asyncio.sleep(0.01)  # let concurrent requests overlap
        return await super().read_many(source, ranges)


def make_origin() -> tuple[Origin, CountingStorage]:
    storage = CountingStorage(FIXTURES)
    return Origin(Settings(media_root=str(FIXTURES), segment_duration=4.0), storage), storage


@pytest.mark.parametrize(("name", "most"), [("bframes.mp4", 1), ("moov_end.mp4", 2)])
def test_cold_index_reads_are_bounded(name: str, most: int) -> None:
    origin, storage = make_origin()
    movie = asyncio.run(origin.movie(name))
    assert len(storage.reads) <= most
    assert sum(length for _, length in storage.reads) < movie.source.size / 4


def test_concurrent_cold_requests_read_moov_once() -> None:
    origin, storage = make_origin()

    async def many() -> None:
        await asyncio.gather(*(origin.movie("moov_end.mp4") for _ in range(8)))

    asyncio.run(many())
    assert len(storage.reads) == 2  # one locate sequence, shared by all eight


def test_a_refused_file_is_read_once(tmp_path: Path) -> None:
    """A file refused for its content (here: a moov whose video has no sync sample) is remembered
    by identity: asked for again, it is refused again without a read; a changed file is read."""
    data = bytearray((FIXTURES / "bframes.mp4").read_bytes())
    stss = data.index(b"stss")
    data[stss + 8 : stss + 12] = b"\0\0\0\0"  # no entries
    (tmp_path / "bad.mp4").write_bytes(data)
    storage = CountingStorage(tmp_path)
    origin = Origin(Settings(media_root=str(tmp_path)), storage)

    async def refusals() -> list[str]:
        messages = []
        for _ in range(3):
            with pytest.raises(MediaError) as refused:
                await origin.movie("bad.mp4")
            messages.append(refused.value.message)
        return messages

    messages = asyncio.run(refusals())
    assert len(set(messages)) == 1 and "sync sample" in messages[0] and len(storage.reads) == 1
    kept, = origin.refusals.values()  # without the frames (and the moov) the refusal was raised in
    assert kept.__traceback__ is None and kept.__context__ is None and kept.__cause__ is None
    (tmp_path / "bad.mp4").write_bytes(data + b"\0")  # another size: another file
    asyncio.run(refusals())
    assert len(storage.reads) == 2


def test_segment_reads_only_its_frames() -> None:
    origin, storage = make_origin()
    movie = asyncio.run(origin.movie("bframes.mp4"))
    context = PackagerContext.from_settings(origin.settings)
    output = hls.handle("seg-3-v1-a1.ts", MediaSet((movie,)), context)
    assert isinstance(output, MediaSegment)
    storage.reads.clear()
    asyncio.run(origin.read_ranges(movie.source, output.ranges))
    assert len(storage.reads) == len(output.ranges) <= 2
    read = sum(length for _, length in storage.reads)
    assert read < movie.source.size / 5  # a 4 s segment of a 30 s file


# --- the block layer of remote storage (storage/reads.py) ---------------------------------------

class MemoryUpstream:
    """A remote backend over bytes in memory that records each ranged read and can fail on demand."""

    def __init__(self, data: bytes, delay: float = 0.01) -> None:
        self.data = data
        self.delay = delay
        self.reads: list[tuple[int, int]] = []
        self.failures: list[UpstreamError] = []  # raised by the next reads, in order

    async def stat(self, path: str) -> SourceIdentity:
        return SourceIdentity(path, len(self.data), 0.0, "etag-1")

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        return self.data[offset:offset + length]

    async def close(self) -> None:
        pass


BLOCK = 4096


def blocks_storage(upstream: MemoryUpstream, cache_bytes: int = 1 << 20) -> ResilientStorage:
    return ResilientStorage(upstream, ReadPolicy(timeout=5, retries=0, backoff=0, block_size=BLOCK,
                                                 block_cache_bytes=cache_bytes), "memory")


def test_block_reads_return_exactly_the_bytes_asked_for() -> None:
    data = random.Random(1).randbytes(10 * BLOCK + 123)
    upstream = MemoryUpstream(data, delay=0)
    storage = blocks_storage(upstream, cache_bytes=3 * BLOCK)  # small: hits, misses and evictions
    source = asyncio.run(storage.stat("m.mp4"))
    picks = random.Random(2)

    async def many() -> None:
        for _ in range(300):
            offset = picks.randrange(len(data))
            length = picks.randrange(min(len(data) - offset, 3 * BLOCK) + 1)
            assert await storage.read(source, offset, length) == data[offset:offset + length]

    asyncio.run(many())
    for offset, length in upstream.reads:  # whole blocks, the last one cut at the object's end
        assert offset % BLOCK == 0 and (length % BLOCK == 0 or offset + length == len(data))
    assert storage.counters.block_hits > 0
    assert storage.blocks.currsize <= 3 * BLOCK


def test_overlapping_concurrent_reads_fetch_each_block_once() -> None:
    """Runs of missing blocks are one upstream read each; blocks another request is reading are
    awaited; blocks read before come from the cache."""
    data = bytes(range(256)) * 200
    upstream = MemoryUpstream(data)
    storage = blocks_storage(upstream)
    source = asyncio.run(storage.stat("m.mp4"))

    async def overlapping() -> list[bytes]:
        return await asyncio.gather(storage.read(source, 100, 3 * BLOCK),  # blocks 0-3
                                    storage.read(source, 2 * BLOCK + 5, 3 * BLOCK),  # 2-5: 4, 5 new
                                    storage.read(source, 10, 20))  # block 0, in flight
    answers = asyncio.run(overlapping())
    assert answers == [data[100:100 + 3 * BLOCK], data[2 * BLOCK + 5:5 * BLOCK + 5], data[10:30]]
    assert sorted(upstream.reads) == [(0, 4 * BLOCK), (4 * BLOCK, 2 * BLOCK)]
    assert storage.counters.shared == 3 and storage.counters.reads == 2
    assert asyncio.run(storage.read(source, BLOCK, 2 * BLOCK)) == data[BLOCK:3 * BLOCK]
    assert len(upstream.reads) == 2 and storage.counters.block_hits == 2


def test_a_failed_block_read_reaches_every_waiter_and_is_not_kept() -> None:
    upstream = MemoryUpstream(bytes(8 * BLOCK))
    storage = blocks_storage(upstream)
    source = asyncio.run(storage.stat("m.mp4"))
    upstream.failures.append(UpstreamError("upstream said 403"))

    async def both() -> list[bytes | BaseException]:
        return await asyncio.gather(storage.read(source, 0, 10), storage.read(source, 5, 10),
                                    return_exceptions=True)
    answers = asyncio.run(both())
    assert all(isinstance(answer, UpstreamError) for answer in answers)
    assert len(upstream.reads) == 1 and storage.counters.errors == 1
    assert asyncio.run(storage.read(source, 0, 10)) == bytes(10)  # read again, not a cached failure
    assert len(upstream.reads) == 2


def test_a_client_going_away_does_not_cancel_a_shared_block_read() -> None:
    data = bytes(range(256)) * 64
    upstream = MemoryUpstream(data, delay=0.05)
    storage = blocks_storage(upstream)
    source = asyncio.run(storage.stat("m.mp4"))

    async def one_leaves() -> bytes:
        leaving = asyncio.create_task(storage.read(source, 0, 100))
        staying = asyncio.create_task(storage.read(source, 50, 100))
        await asyncio.sleep(0.01)
        leaving.cancel()
        return await staying
    assert asyncio.run(one_leaves()) == data[50:150]
    assert len(upstream.reads) == 1
