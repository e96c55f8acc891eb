"""Purging what the server holds for media an operator replaced or changed.

`POST /purge/<media path>` with `Authorization: Bearer <purge_key>` drops every entry kept for that
path and everything under it (a file, a urlset's folder, a mapping's path): parsed metadata and
refusals, built responses that used it, upstream blocks, the mapping and the DRM-info answer.
`POST /purge/` drops everything. Off (404) while purge_key is empty; a wrong key is a 401.

A file replaced in place already gets a new identity at its next stat (size, mtime, ETag are part
of every cache key), so purging is for what identities cannot see: a mapping or a DRM answer
inside its TTL, an HTTP upstream that sends neither ETag nor a new Last-Modified, and memory held
by what will never be asked again. The CDN keeps its copies: invalidate them too (README).

Several workers: `vodorigin serve` gives them a shared purge log (PURGE_LOG_ENVIRONMENT). The
worker that answers purges its caches and appends the target; every worker reads what was
appended since it last looked before it answers its next request (one stat of the log).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable, Hashable
from typing import Any

from vodorigin.media.model import SourceIdentity

log = logging.getLogger("vodorigin")
PURGE_LOG_ENVIRONMENT = "VODORIGIN_PURGE_LOG"
IDENTITY_KINDS = ("key:", "mapping:")  # SourceIdentity paths of DRM keys and mappings (app.py, mapping/)


def authorized(header: str | None, key: str) -> bool:
    """Whether an Authorization header carries `Bearer <key>` (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), key.encode())


def normalized(target: str) -> str:
    """A purge target as media paths are written: no leading or trailing slash ("" for all)."""
    return target.strip("/")


def covers(target: str, path: str) -> bool:
    """Whether purging `target` drops what is kept for media path `path`."""
    for kind in IDENTITY_KINDS:
        path = path.removeprefix(kind)
    path = path.lstrip("/")
    return not target or path == target or path.startswith(target + "/")


def _key_paths(key: Hashable) -> list[str]:
    """The media paths an entry's key names: a path, (path, ...) tuples, SourceIdentity objects,
    and tuples of those (a response cache key is (URL, identities))."""
    if isinstance(key, str):
        return [key]
    if isinstance(key, SourceIdentity):
        return [key.path]
    if isinstance(key, tuple) and key:
        if isinstance(key[0], str):
            if not key[0].startswith("/"):
                return [key[0]]  # (path, size, mtime, etag) and block keys (path, etag, size, index)
            key = key[1:]  # (URL, identities): the URL names no media path of its own
        return [path for part in key for path in _key_paths(part)]
    return []


def drop(cache: Any, target: str) -> int:
    """Remove the entries of a cachetools cache whose key names a covered path; how many."""
    doomed = [key for key in list(cache.keys()) if any(covers(target, p) for p in _key_paths(key))]
    for key in doomed:
        cache.pop(key, None)
    return len(doomed)


class Purger:
    """The caches of one application, and the shared log that carries purges to other workers."""

    def __init__(self, caches: Callable[[], list[Any]], log_path: str | None) -> None:
        self.caches = caches  # the cachetools caches to purge, looked up at each purge
        self.log_path = log_path
        self.offset = os.path.getsize(log_path) if log_path and os.path.exists(log_path) else 0

    def purge(self, target: str) -> int:
        """Purge here and tell the other workers; the number of entries dropped here."""
        if not self.log_path:
            return self.apply(target)
        line = (json.dumps({"purge": target}) + "\n").encode()
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)  # one write of a short line with O_APPEND: never interleaved
        finally:
            os.close(descriptor)
        return self.catch_up()  # ours is applied here with whatever others appended before it

    def apply(self, target: str) -> int:
        dropped = sum(drop(cache, target) for cache in self.caches())
        log.info("purged %s: %d cached entries", target or "everything", dropped)
        return dropped

    def catch_up(self) -> int:
        """Apply what was purged since we last looked (before answering a request); how many
        entries that dropped."""
        if not self.log_path:
            return 0
        try:
            size = os.path.getsize(self.log_path)
        except OSError:
            return 0
        if size <= self.offset:
            return 0
        with open(self.log_path, "rb") as purges:
            purges.seek(self.offset)
            appended = purges.read(size - self.offset)
        complete = appended[: appended.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        dropped = 0
        for line in complete.splitlines():
            try:
                dropped += self.apply(str(json.loads(line)["purge"]))
            except (ValueError, KeyError, TypeError):
                log.warning("purge log: unreadable line %r", line[:100])
        return dropped
