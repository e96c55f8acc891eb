"""The storage interface every backend (local, HTTP upstream, S3) implements."""

from __future__ import annotations

from typing import Protocol

from vodorigin.media.model import SourceIdentity


class Storage(Protocol):
    """Byte-range access to media objects named by a relative path."""

    async def stat(self, path: str) -> SourceIdentity:
        """Size, modification time and entity tag; NotFound when there is no such object."""
        ...

    async def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset` (the caller keeps ranges inside the object)."""
        ...

    async def close(self) -> None: ...
