"""Local files under a media root. No path can leave the root.

A request path is checked twice: lexically (no `..`, no absolute path, no NUL or backslash, no
percent sign left after the web layer decoded the URL once, which catches double-encoded dots),
then after resolving symlinks (the real path must stay under the real root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections import OrderedDict
from pathlib import Path

from vodorigin.errors import BadRequest, MediaError, NotFound
from vodorigin.media.model import SourceIdentity
from vodorigin.storage import page_cache
from vodorigin.storage.base import UpstreamCounters, count_read
from vodorigin.unfilled import unfilled_bytes, writable_view

FORBIDDEN_CHARACTERS = ("\x00", "\\", "%")
MAX_OPEN_FILES = 64  # descriptors kept open per worker (each file's, for its identity)
RESOLUTIONS_KEPT = 4096  # media paths whose resolution is remembered
# Reads up to this size are first tried from the page cache on the loop: a long title's moov of
# 6.3 MB is a copy of about 1 ms there.
CACHED_READ_BYTES = 8 << 20
SMALL_READ = 16 * 1024  # ranges up to this size are read into scratch space, then copied (_read_cached_range)


def check_relative_path(path: str) -> str:
    """A clean relative path, or BadRequest."""
    if not path or path.startswith("/") or any(c in path for c in FORBIDDEN_CHARACTERS):
        raise BadRequest(f"invalid media path {path!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"invalid media path {path!r}")
    return path


class LocalStorage:
    """Files under `root`, stat'ed and opened on the event loop; read there when the page cache
    holds the bytes, else with pread in a worker thread.

    What the path checks cost is paid once per file, not per request: a path's resolution is kept
    with the identity (device, inode) of the file it led to, and is trusted again while a plain
    stat of the path still finds that file (a changed symlink or a replaced file resolves again).
    Open descriptors are kept in a bounded LRU keyed by path and identity (nginx's
    open_file_cache); one is closed only when no read in flight uses it. A segment's ranges are
    read together (read_many): on the loop, or in one trip to a worker thread."""

    seeks_cheaply = True  # a few small reads cost less than one large one (Origin.skeletons)

    def __init__(self, root: Path, max_open: int = MAX_OPEN_FILES) -> None:
        self.root = root.resolve()
        self._root_text = str(self.root)
        self._nowait = hasattr(os, "RWF_NOWAIT")  # reads from the page cache on the loop (read_many)
        self.counters = UpstreamCounters()
        self.max_open = max_open
        # path -> real path, device, inode, the path under the root as written
        self._resolved: OrderedDict[str, tuple[Path, int, int, str]] = OrderedDict()
        self._open: OrderedDict[tuple[str, str], _OpenFile] = OrderedDict()  # (path, etag) -> descriptor
        self._identities: dict[str, tuple[int, int, SourceIdentity]] = {}  # path -> size, mtime_ns, identity

    def _resolve(self, path: str) -> Path:
        try:
            candidate = (self.root / check_relative_path(path)).resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
            raise NotFound(f"{path}: not found (symlink loop)") from None
        if not candidate.is_relative_to(self.root):
            raise NotFound(f"{path}: not found")  # a symlink pointing outside the root
        return candidate

    async def stat(self, path: str) -> SourceIdentity:
        """One stat of the path on the event loop (its resolution is remembered): a worker-thread
        trip would cost far more than the call. Media roots are local disks, where nginx too
        stats files in its event loop; network filesystems would rather be an HTTP upstream."""
        self.counters.stats += 1
        return self._stat(path)

    def _stat(self, path: str) -> SourceIdentity:
        known = self._resolved.get(path)  # a path kept there passed check_relative_path
        lexical = known[3] if known is not None else os.path.join(self._root_text, check_relative_path(path))
        try:
            info = os.stat(lexical)  # follows symlinks, as the resolution did
            if known is None or (known[1], known[2]) != (info.st_dev, info.st_ino):
                real = self._resolve(path)
                info = os.stat(real)
                self._resolved[path] = (real, info.st_dev, info.st_ino, lexical)
                while len(self._resolved) > RESOLUTIONS_KEPT:
                    self._resolved.popitem(last=False)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{path}: not found") from None
        except OSError as exc:
            raise NotFound(f"{path}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"{path}: not a file")
        kept = self._identities.get(path)
        if kept is not None and (kept[0], kept[1]) == (info.st_size, info.st_mtime_ns):
            return kept[2]  # the same object: the caches' keys compare it by identity first
        etag = f"{info.st_size:x}-{info.st_mtime_ns:x}"
        identity = SourceIdentity(path, info.st_size, info.st_mtime, etag)
        self._identities[path] = (info.st_size, info.st_mtime_ns, identity)
        while len(self._identities) > RESOLUTIONS_KEPT:
            self._identities.pop(next(iter(self._identities)))
        return identity

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        return (await self.read_many(source, [(offset, length)]))[0]

    async def read_many(self, source: SourceIdentity, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Each (offset, length) range of the file: on the event loop when the page cache holds
        them all, else in one trip to a worker thread."""
        started = time.perf_counter()
        with self._descriptor(source) as fd:  # held open for the block
            buffers = self._read_cached(fd, ranges)
            if buffers is None:
                buffers = await asyncio.to_thread(_pread_all, fd, source, ranges)
        seconds = (time.perf_counter() - started) / len(ranges)
        for data in buffers:
            count_read(self.counters, len(data), seconds)
        return buffers

    def cached_file(self, source: SourceIdentity, offset: int, length: int) -> _CachedRange:
        """The file's open descriptor, held open for the block, when the page cache holds every
        byte of [offset, offset + length) (page_cache.py): a send from it, on the event loop, never
        waits for the disk. None when it does not (the range is then read as any other)."""
        return _CachedRange(self._descriptor(source), offset, length, self.counters)

    def _read_cached(self, fd: int, ranges: list[tuple[int, int]]) -> list[bytes] | None:
        """The ranges read from the page cache alone, or None when it does not hold every byte of
        them (or they exceed what is read on the loop): they are then read in a thread.

        preadv2 with RWF_NOWAIT (Linux 4.14) reads only what the page cache holds, so the loop
        never waits for the disk; it reads a large range into a new bytes object (unfilled.py): one
        copy, where a check into scratch space and a second read made two. A filesystem without
        RWF_NOWAIT is not asked again."""
        if sum(length for _, length in ranges) > CACHED_READ_BYTES:
            return None
        buffers = []
        for offset, length in ranges:
            data = self._read_cached_range(fd, offset, length)
            if data is None:
                return None
            buffers.append(data)
        return buffers

    def _read_cached_range(self, fd: int, offset: int, length: int) -> bytes | None:
        """One range from the page cache alone (_read_cached), or None. A small range is read into
        a bytearray and copied: less than making an unfilled bytes object through ctypes."""
        if not self._nowait:
            return None
        small = length <= SMALL_READ
        if small:
            scratch = bytearray(length)
            target: bytearray | memoryview = scratch
        else:
            data, address = unfilled_bytes(length)
            target = writable_view(address, length)
        try:  # a partial read leaves `data` part unwritten: it is dropped, never handed out
            if length and os.preadv(fd, [target], offset, os.RWF_NOWAIT) != length:
                return None  # partly cached, or the file was truncated: the thread's read tells
        except BlockingIOError:
            return None
        except OSError:  # EOPNOTSUPP: an older kernel, or a filesystem without it
            self._nowait = False
            return None
        return bytes(scratch) if small else data

    def _descriptor(self, source: SourceIdentity) -> _OpenFile:
        """An open descriptor of the file with the source's identity, from the cache or opened on
        the event loop, as stat is (one open and one fstat of a local file: a worker-thread trip
        would cost more, and a fresh worker's first request would wait for the thread to start)."""
        key = (source.path, source.etag)
        handle = self._open.get(key)
        if handle is not None:
            self._open.move_to_end(key)
            return handle
        handle = self._open[key] = self._open_file(source)
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)[1].release()
        return handle

    def _open_file(self, source: SourceIdentity) -> _OpenFile:
        known = self._resolved.get(source.path)
        real = known[0] if known is not None else self._resolve(source.path)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"{source.path}: not found") from None
        info = os.fstat(fd)
        if f"{info.st_size:x}-{info.st_mtime_ns:x}" != source.etag:
            os.close(fd)
            raise MediaError(f"{source.path}: the file changed while it was being read")
        return _OpenFile(fd)

    async def close(self) -> None:
        self._close_all()

    def _close_all(self) -> None:
        while self._open:
            self._open.popitem()[1].release()

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError, TypeError):  # at interpreter exit
            self._close_all()


class _OpenFile:
    """A descriptor in LocalStorage's cache, and the reads in flight on it: each holds it in a
    `with` block (the cache is only ever changed on the event loop's thread)."""

    __slots__ = ("fd", "users", "closed_when_idle")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.closed_when_idle = False

    def __enter__(self) -> int:
        self.users += 1
        return self.fd

    def __exit__(self, *_: object) -> None:
        self.users -= 1
        if self.closed_when_idle and not self.users:
            os.close(self.fd)

    def release(self) -> None:
        """Out of the cache: closed now, or by the last read still using it."""
        if self.users:
            self.closed_when_idle = True
        else:
            os.close(self.fd)


class _CachedRange:
    """LocalStorage.cached_file's block: the descriptor held, and given when the page cache holds
    the range (else None). A class, not a generator: this is on every /pd request's path."""

    __slots__ = ("handle", "offset", "length", "counters")

    def __init__(self, handle: _OpenFile, offset: int, length: int, counters: UpstreamCounters) -> None:
        self.handle, self.offset, self.length, self.counters = handle, offset, length, counters

    def __enter__(self) -> int | None:
        fd = self.handle.__enter__()
        if not page_cache.holds(fd, self.offset, self.length):
            return None
        count_read(self.counters, self.length)
        return fd

    def __exit__(self, *_: object) -> None:
        self.handle.__exit__()


def _pread_all(fd: int, source: SourceIdentity, ranges: list[tuple[int, int]]) -> list[bytes]:
    buffers = []
    for offset, length in ranges:
        data = os.pread(fd, length, offset)
        if len(data) != length:
            raise MediaError(f"{source.path}: short read at {offset} (file truncated or replaced?)")
        buffers.append(data)
    return buffers
