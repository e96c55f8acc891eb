"""Local files under a media root. No path can leave the root.

A request path is checked twice: lexically (no `..`, no absolute path, no NUL or backslash, no
percent sign left after the web layer decoded the URL once, which catches double-encoded dots),
then after resolving symlinks (the real path must stay under the real root).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from vodorigin.errors import BadRequest, MediaError, NotFound
from vodorigin.media.model import SourceIdentity
from vodorigin.storage.base import UpstreamCounters, count_read

FORBIDDEN_CHARACTERS = ("\x00", "\\", "%")


def check_relative_path(path: str) -> str:
    """A clean relative path, or BadRequest."""
    if not path or path.startswith("/") or any(c in path for c in FORBIDDEN_CHARACTERS):
        raise BadRequest(f"invalid media path {path!r}")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise BadRequest(f"invalid media path {path!r}")
    return path


class LocalStorage:
    """Files under `root`, read with pread in a worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.counters = UpstreamCounters()

    def _resolve(self, path: str) -> Path:
        try:
            candidate = (self.root / check_relative_path(path)).resolve()
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
            raise NotFound(f"{path}: not found (symlink loop)") from None
        if not candidate.is_relative_to(self.root):
            raise NotFound(f"{path}: not found")  # a symlink pointing outside the root
        return candidate

    async def stat(self, path: str) -> SourceIdentity:
        self.counters.stats += 1
        real = self._resolve(path)
        try:
            info = await asyncio.to_thread(os.stat, real)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{path}: not found") from None
        except OSError as exc:
            raise NotFound(f"{path}: cannot be read ({exc.strerror})") from None
        if not real.is_file():
            raise NotFound(f"{path}: not a file")
        etag = f"{info.st_size:x}-{info.st_mtime_ns:x}"
        return SourceIdentity(path, info.st_size, info.st_mtime, etag)

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        started = time.perf_counter()
        data = await asyncio.to_thread(self._pread, source, offset, length)
        count_read(self.counters, len(data), time.perf_counter() - started)
        return data

    def _pread(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        real = self._resolve(source.path)
        try:
            fd = os.open(real, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound(f"{source.path}: not found") from None
        try:
            data = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        if len(data) != length:
            raise MediaError(f"{source.path}: short read at {offset} (file truncated or replaced?)")
        return data

    async def close(self) -> None:
        return None
