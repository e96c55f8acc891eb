"""Read only what is needed: bounded metadata reads, segment reads limited to their frames."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vodorigin.media.model import MediaSet, SourceIdentity
from vodorigin.origin import Origin
from vodorigin.packagers import hls
from vodorigin.packagers.output import MediaSegment, PackagerContext
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage


class CountingStorage(LocalStorage):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[tuple[int, int]] = []

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        await asyncio.sleep(0.01)  # let concurrent requests overlap
        return await super().read(source, offset, length)


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
