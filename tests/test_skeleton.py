"""A moov read as a skeleton (mp4/skeleton.py): the media playlist's metadata without the sample
sizes and chunk tables, when no metadata cache keeps movies. It must parse to the same timing
and the same refusals as the whole moov, and serve the same playlists."""

from __future__ import annotations

import asyncio
import mmap
import struct
import weakref
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, MEDIA_FILES, LiveServer
from tests.fuzz.inprocess import timing_of
from tests.mp4edit import find, walk
from tests.test_hostile import _amplifiers, _mutated
from vodorigin import origin as origin_module
from vodorigin.errors import MediaError
from vodorigin.media.model import Movie, SourceIdentity
from vodorigin.mp4 import skeleton
from vodorigin.mp4.locate import ReadRange
from vodorigin.mp4.moov import Limits, parse_moov
from vodorigin.origin import Origin
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage

HOSTILE = {**_mutated(), **_amplifiers()}
FILES = {name: (FIXTURES / name).read_bytes() for name in MEDIA_FILES} | HOSTILE


SMALL = {"skip_min": 0, "window": 64, "max_reads": 10_000}  # every table skipped, many reads


@pytest.fixture
def skip_every_table(monkeypatch: pytest.MonkeyPatch) -> list[weakref.ref[mmap.mmap]]:
    """Skeletons of the small fixtures too, in the server: every stsz, stco, co64 and stsc skipped,
    however small, and small windows, so that the walk reads many times. The skeletons the origin
    makes are listed (by a weak reference to each one's mapping, which leaves the origin free to
    reuse it), so that a test can tell that its answers came from them."""
    made: list[weakref.ref[mmap.mmap]] = []

    def small(start: int, size: int, **options: object) -> skeleton.MoovSkeleton:
        walker = skeleton.MoovSkeleton(start, size, **SMALL, **options)  # type: ignore[arg-type]
        made.append(weakref.ref(walker.buffer))
        return walker

    monkeypatch.setattr(origin_module, "MoovSkeleton", small)
    monkeypatch.setattr(origin_module, "SKELETON_MOOV", 0)
    return made


def _skeleton_of(data: bytes, start: int, end: int, first: int = 0, **options: int) -> mmap.mmap | None:
    """MoovSkeleton fed from the file in memory, starting with the 4 KiB at `first`."""
    walker = skeleton.MoovSkeleton(start, end - start, **(SMALL | options))
    step = walker.feed(first, data[first : first + 4096])
    while isinstance(step, ReadRange):
        assert start <= step.offset and step.offset + step.length <= end  # never outside the moov
        step = walker.feed(step.offset, data[step.offset : step.offset + step.length])
    return step


def _parsed(moov: bytes | mmap.mmap, data: bytes, name: str) -> Movie | str:
    """The movie, or the refusal's type and message."""
    try:
        return parse_moov(moov, SourceIdentity(name, len(data), 0.0, "x"), Limits())
    except MediaError as error:
        return f"{type(error).__name__}: {error.message}"


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_skeleton_parses_as_its_moov_does(name: str) -> None:
    """Every fixture and every hostile file: the skeleton holds the moov's bytes but the skipped
    tables' payloads past their counts (zeros there), and parses to the same timing, or to the
    same refusal."""
    data = FILES[name]
    (start, end), = find(data, b"moov")
    built = _skeleton_of(data, start, end)
    if built is None:  # a moov the walk gives up on is read whole: nothing to compare
        assert name in HOSTILE
        return
    expected = bytearray(data[start:end])
    skipped = 0
    for kind, box_start, box_end in walk(data, start, end):
        if kind in skeleton.SKIPPED and box_start > start:
            kept = box_start + 8 + skeleton.KEPT_PAYLOAD - start
            expected[kept : box_end - start] = bytes(max(box_end - start - kept, 0))
            skipped += 1
    assert skipped or name in HOSTILE
    assert built[:] == bytes(expected)
    whole, partial = _parsed(data[start:end], data, name), _parsed(built, data, name)
    if isinstance(whole, str):
        assert partial == whole
    else:
        assert not isinstance(partial, str), partial
        assert timing_of(partial) == timing_of(whole)


def test_a_moov_at_the_end_of_the_file() -> None:
    """moov after mdat: the walk starts from the read that found the moov's header."""
    data = (FIXTURES / "moov_end.mp4").read_bytes()
    (start, end), = find(data, b"moov")
    built = _skeleton_of(data, start, end, first=start - 100)
    assert built is not None
    partial, whole = _parsed(built, data, "moov_end.mp4"), _parsed(data[start:end], data, "moov_end.mp4")
    assert not isinstance(partial, str) and not isinstance(whole, str)
    assert timing_of(partial) == timing_of(whole)


def test_an_unusual_moov_is_read_whole() -> None:
    """A box that overruns its container, or more reads than MAX_READS: None (read it whole)."""
    data = (FIXTURES / "bframes.mp4").read_bytes()
    (start, end), = find(data, b"moov")
    (trak, _), *_ = find(data, b"trak")
    overrun = bytearray(data)
    struct.pack_into(">I", overrun, trak, end - trak + 8)
    assert _skeleton_of(bytes(overrun), start, end) is None
    assert _skeleton_of(data, start, end, max_reads=3) is None
    assert _skeleton_of(data, start, end) is not None


class _Counting(LocalStorage):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.bytes = 0

    async def read_many(self, source: SourceIdentity, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.bytes += sum(length for _, length in ranges)
        return await super().read_many(source, ranges)


def test_only_a_timing_manifest_without_a_metadata_cache_reads_a_skeleton(
        skip_every_table: list[weakref.ref[mmap.mmap]]) -> None:
    """The 2-hour-like case at fixture scale: with the metadata cache off, a timing-only load of a
    moov over SKELETON_MOOV reads a fraction of it, and where its samples are cannot be asked
    (an error, never zeros); a whole load, or one with the cache on, reads the moov whole."""
    async def loads(cache_bytes: int) -> list[tuple[int, Movie]]:
        storage = _Counting(FIXTURES)
        origin = Origin(Settings(media_root=str(FIXTURES), metadata_cache_bytes=cache_bytes,
                                 initial_read_size=4096), storage)
        source = await storage.stat("clip_360p.mp4")
        found = []
        for timing_only in (True, False):
            storage.bytes = 0
            movie = await origin.movie_of(source, timing_only)
            found.append((storage.bytes, movie))
        return found

    (start, end), = find((FIXTURES / "clip_360p.mp4").read_bytes(), b"moov")
    moov_size = end - start
    (skeleton_bytes, timing), (whole_bytes, movie) = asyncio.run(loads(0))
    (cached_bytes, _), (again_bytes, _) = asyncio.run(loads(1 << 20))
    assert skeleton_bytes < moov_size / 2 < moov_size <= whole_bytes
    assert cached_bytes >= moov_size and again_bytes == 0  # the second from the cache
    assert timing_of(timing) == timing_of(movie)
    with pytest.raises(RuntimeError, match="timing only"):
        timing.tracks[0].samples.offsets(0, 1)
    assert movie.tracks[0].samples.offsets(0, 1)[0] > 0


def test_a_kept_mapping_is_handed_out_again_only_unreferenced_and_zeroed(monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    """Mappings: the last skeleton's mapping is the next one's once nothing refers to it (a view
    of it, as a parsed movie's arrays are, keeps it from being handed out), with what was written
    to it zeroed, at whatever size is asked; a mapping over KEPT_MAPPING is not kept."""
    mappings = skeleton.Mappings()

    def scribbled(size: int) -> tuple[int, mmap.mmap]:
        mapping, written = mappings.take(size)
        assert len(mapping) == size and mapping[:] == bytes(size)
        for start in (0, size // 2, size - 64):
            mapping[start : start + 64] = b"\xff" * 64
            written.append([start, start + 64])
        return id(mapping), mapping

    first, mapping = scribbled(10_000)
    view = memoryview(mapping)
    del mapping
    second, mapping = scribbled(10_000)
    assert second != first  # the first is still viewed
    view.release()
    del view, mapping
    for size in (10_000, 6_000, 20_000):  # unreferenced: the same mapping, zeroed, resized
        again, mapping = scribbled(size)
        assert again == second
        del mapping
    monkeypatch.setattr(skeleton, "KEPT_MAPPING", 8_000)
    large, mapping = scribbled(9_000)  # the kept one, grown past KEPT_MAPPING: no longer kept
    assert large == second
    gone = weakref.ref(mapping)
    del mapping
    assert gone() is None


def test_a_movie_held_keeps_its_skeleton(skip_every_table: list[weakref.ref[mmap.mmap]],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A movie parsed from a skeleton and still held (a request in flight) keeps its mapping: the
    skeletons of other files made meanwhile (larger moovs first, whose mappings would cover its
    one) reuse another one, and never write into it."""
    made: list[int] = []

    def counted(size: int) -> mmap.mmap:
        made.append(size)
        return new_mapping(size)

    new_mapping = skeleton.new_mapping
    monkeypatch.setattr(skeleton, "new_mapping", counted)

    def moov_size(name: str) -> int:
        (start, end), = find((FIXTURES / name).read_bytes(), b"moov")
        return end - start

    smallest, *others = sorted(MEDIA_FILES, key=moov_size)

    def looked_at(movie: Movie) -> object:  # its timing, and the first sample sizes: views of the mapping
        return timing_of(movie), [t.samples.sizes[:1].tolist() for t in movie.tracks]

    async def loads() -> tuple[object, object]:
        storage = LocalStorage(FIXTURES)
        origin = Origin(Settings(media_root=str(FIXTURES), metadata_cache_bytes=0, initial_read_size=4096),
                        storage)  # moovs over 4 KiB are read apart: as skeletons
        held = await origin.movie_of(await storage.stat(smallest), timing_only=True)
        before = looked_at(held)
        for name in others[::-1]:
            await origin.movie_of(await storage.stat(name), timing_only=True)
        return before, looked_at(held)

    before, after = asyncio.run(loads())
    assert after == before
    assert len(skip_every_table) == len(MEDIA_FILES)  # every load a skeleton,
    assert len(made) == 2  # in the held movie's mapping, and in one other, reused


INDEXES = ["index-v1-a1.m3u8", "index-v1.m3u8", "index-a1.m3u8", "index-f1-v1-a1.m3u8",
           "index-t1.m3u8", "clipFrom/3000/clipTo/7000/{f}/index-v1-a1.m3u8"]


def test_playlists_from_skeletons_are_the_playlists(skip_every_table: list[weakref.ref[mmap.mmap]]) -> None:
    """Every fixture's and hostile file's media playlists, from a server without a metadata cache
    (skeletons of every moov) and from one with it (whole moovs): the same status and bytes.
    Segments on the first server still read the whole moov."""
    settings = {"media_root": str(FIXTURES), "segment_duration": 4.0, "response_cache_bytes": 0,
                "initial_read_size": 4096}  # moovs over 4 KiB are read apart: as skeletons, on the first
    with LiveServer(Settings(**settings, metadata_cache_bytes=0)) as skeletons, \
            LiveServer(Settings(**settings)) as whole, \
            httpx.Client(timeout=30) as client:
        compared = 0
        for name in MEDIA_FILES:
            for index in INDEXES:
                path = f"/hls/{index.format(f=name)}" if "{f}" in index else f"/hls/{name}/{index}"
                ours, reference = client.get(skeletons.base + path), client.get(whole.base + path)
                assert (ours.status_code, ours.content) == (reference.status_code, reference.content), path
                compared += ours.status_code == 200
        assert compared > len(MEDIA_FILES)
        # every file's playlists came from skeletons: one per request that loaded a moov
        assert len(skip_every_table) >= compared
        segment = client.get(f"{skeletons.base}/hls/bframes.mp4/seg-1-v1-a1.ts")
        assert segment.status_code == 200
        assert segment.content == client.get(f"{whole.base}/hls/bframes.mp4/seg-1-v1-a1.ts").content


def test_hostile_playlists_from_skeletons(skip_every_table: list[weakref.ref[mmap.mmap]], tmp_path: Path
                                          ) -> None:
    """The hostile files' media playlists: the same answer from skeletons as from whole moovs."""
    for name, data in HOSTILE.items():
        (tmp_path / name).write_bytes(data)
    settings = {"media_root": str(tmp_path), "segment_duration": 4.0, "response_cache_bytes": 0,
                "initial_read_size": 4096}
    with LiveServer(Settings(**settings, metadata_cache_bytes=0)) as skeletons, \
            LiveServer(Settings(**settings)) as whole, \
            httpx.Client(timeout=30) as client:
        for name in HOSTILE:
            path = f"/hls/{name}/index-v1-a1.m3u8"
            ours, reference = client.get(skeletons.base + path), client.get(whole.base + path)
            assert ours.status_code < 500
            assert (ours.status_code, ours.content) == (reference.status_code, reference.content), path
        # a skeleton for every file whose moov is larger than a read (4 KiB) and so read apart
        assert len(skip_every_table) == sum(end - start > 4096 for data in HOSTILE.values()
                                            for start, end in find(data, b"moov"))
