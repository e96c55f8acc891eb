"""LocalStorage's resolution and descriptor caches (issue 17): what they save must not cost
correctness: a retargeted symlink or a replaced file is seen, a symlink turned outward is refused,
descriptors stay bounded and are never closed under a read, and a file changed between its stat
and its read is said."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from vodorigin.errors import MediaError, NotFound
from vodorigin.storage.local import LocalStorage


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def read_all(storage: LocalStorage, path: str) -> bytes:
    source = await storage.stat(path)
    return await storage.read(source, 0, source.size)


def test_a_retargeted_symlink_and_a_replaced_file_are_seen(tmp_path: Path) -> None:
    (tmp_path / "one.bin").write_bytes(b"one" * 100)
    (tmp_path / "two.bin").write_bytes(b"two" * 50)
    os.symlink("one.bin", tmp_path / "link.bin")
    storage = LocalStorage(tmp_path)

    async def scenario() -> None:
        assert await read_all(storage, "link.bin") == b"one" * 100
        os.remove(tmp_path / "link.bin")
        os.symlink("two.bin", tmp_path / "link.bin")
        assert await read_all(storage, "link.bin") == b"two" * 50
        replacement = tmp_path / "new.bin"
        replacement.write_bytes(b"new" * 70)
        os.replace(replacement, tmp_path / "two.bin")  # a new file (inode) under the same name
        assert await read_all(storage, "link.bin") == b"new" * 70
        await storage.close()

    asyncio.run(scenario())


def test_a_symlink_turned_outward_is_refused_after_it_was_served(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "inside.bin").write_bytes(b"inside")
    (outside / "secret.bin").write_bytes(b"secret")
    os.symlink("inside.bin", root / "link.bin")
    storage = LocalStorage(root)

    async def scenario() -> None:
        assert await read_all(storage, "link.bin") == b"inside"
        os.remove(root / "link.bin")
        os.symlink(outside / "secret.bin", root / "link.bin")
        with pytest.raises(NotFound):
            await storage.stat("link.bin")
        await storage.close()

    asyncio.run(scenario())


def test_descriptors_stay_bounded_and_reads_in_flight_keep_theirs(tmp_path: Path) -> None:
    """Many files read at once through a cache of four descriptors: every read gets its own
    file's bytes (a descriptor closed under a read, its number reused, would give another's), and
    afterwards at most four stay open, none after close()."""
    names = [f"file{i}.bin" for i in range(40)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(bytes([i]) * (50_000 + i))
    storage = LocalStorage(tmp_path, max_open=4)
    before = open_descriptors()

    async def scenario() -> list[bytes]:
        return list(await asyncio.gather(*(read_all(storage, name) for name in names * 3)))

    results = asyncio.run(scenario())
    for name, data in zip(names * 3, results, strict=True):
        i = names.index(name)
        assert data == bytes([i]) * (50_000 + i), name
    assert open_descriptors() - before <= 4
    asyncio.run(storage.close())
    assert open_descriptors() == before


def test_a_file_changed_after_its_stat_is_said(tmp_path: Path) -> None:
    path = tmp_path / "movie.bin"
    path.write_bytes(b"a" * 1000)
    storage = LocalStorage(tmp_path)

    async def scenario() -> None:
        source = await storage.stat("movie.bin")
        path.write_bytes(b"b" * 2000)  # replaced between the stat and the first read
        with pytest.raises(MediaError, match="changed"):
            await storage.read(source, 0, 100)
        assert await read_all(storage, "movie.bin") == b"b" * 2000
        await storage.close()

    asyncio.run(scenario())


def _ranges_read(storage: LocalStorage, path: str, ranges: list[tuple[int, int]]) -> list[bytes]:
    async def scenario() -> list[bytes]:
        try:
            return await storage.read_many(await storage.stat(path), ranges)
        finally:
            await storage.close()

    return asyncio.run(scenario())


def test_ranges_the_page_cache_holds_are_read_on_the_loop_and_others_in_a_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(300_000)
    (tmp_path / "media.bin").write_bytes(data)  # just written: in the page cache
    descriptor = os.open(tmp_path / "media.bin", os.O_RDONLY)
    try:
        os.preadv(descriptor, [bytearray(1)], 0, os.RWF_NOWAIT)
    except OSError as error:  # not BlockingIOError: the file was just written
        pytest.skip(f"this filesystem has no RWF_NOWAIT reads ({error.strerror})")
    finally:
        os.close(descriptor)
    ranges = [(5, 70_000), (100_000, 1), (200_000, 99_999)]
    expected = [data[offset : offset + length] for offset, length in ranges]
    trips: list[object] = []
    real_to_thread = asyncio.to_thread

    async def counted_to_thread(function: object, *args: object) -> object:
        trips.append(function)
        return await real_to_thread(function, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio, "to_thread", counted_to_thread)
    for _ in range(2):  # memory of the ranges' sizes, left dirty: the reads (into bytes objects
        dirty = [b"\xab" * length for _, length in ranges]  # made without zeroing) may reuse it
        del dirty
    got = _ranges_read(LocalStorage(tmp_path), "media.bin", ranges + [(7, 0)])
    assert got == expected + [b""] and all(type(data) is bytes for data in got)
    assert trips == []  # the descriptor opened and the ranges read on the loop

    def not_cached(*_: object) -> int:
        raise BlockingIOError("not in the page cache")

    monkeypatch.setattr(os, "preadv", not_cached)
    assert _ranges_read(LocalStorage(tmp_path), "media.bin", ranges) == expected
    assert [getattr(f, "__name__", f) for f in trips] == ["_pread_all"]  # the reads, in one thread trip


def test_a_filesystem_without_nowait_reads_is_not_asked_again(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "media.bin").write_bytes(b"abcdef" * 1000)
    calls: list[int] = []

    def unsupported(fd: int, *_: object) -> int:
        calls.append(fd)
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "preadv", unsupported)
    storage = LocalStorage(tmp_path)

    async def scenario() -> list[bytes]:
        source = await storage.stat("media.bin")
        first = await storage.read_many(source, [(0, 6)])
        second = await storage.read_many(source, [(6, 6), (3000, 6)])
        await storage.close()
        return first + second

    assert asyncio.run(scenario()) == [b"abcdef", b"abcdef", b"abcdef"]
    assert len(calls) == 1


def test_a_file_shorter_than_its_stat_is_said_whichever_way_it_is_read(tmp_path: Path) -> None:
    (tmp_path / "media.bin").write_bytes(b"x" * 10_000)
    storage = LocalStorage(tmp_path)

    async def scenario() -> None:
        source = await storage.stat("media.bin")
        assert await storage.read_many(source, [(4_000, 2_000)]) == [b"x" * 2_000]  # descriptor kept
        os.truncate(tmp_path / "media.bin", 5_000)
        with pytest.raises(MediaError, match="short read"):
            await storage.read_many(source, [(4_000, 2_000)])
        await storage.close()

    asyncio.run(scenario())


def test_an_unchanged_file_keeps_its_identity_object_and_a_changed_one_gets_a_new_one(tmp_path: Path) -> None:
    """stat returns the same SourceIdentity while size and mtime stay (cache keys then compare it by
    identity), and a new one, with a new etag, once the file changes, even within the same second."""
    media = tmp_path / "media.bin"
    media.write_bytes(b"a" * 100)
    storage = LocalStorage(tmp_path)
    first = asyncio.run(storage.stat("media.bin"))
    assert asyncio.run(storage.stat("media.bin")) is first
    info = os.stat(media)
    os.utime(media, ns=(info.st_atime_ns, info.st_mtime_ns + 1))  # 1 ns later, same size
    changed = asyncio.run(storage.stat("media.bin"))
    assert changed is not first and changed.etag != first.etag and changed.size == first.size
    media.write_bytes(b"b" * 101)
    assert asyncio.run(storage.stat("media.bin")).size == 101
