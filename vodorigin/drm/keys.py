"""Content keys: derived from a secret (nginx-vod-module's vod_secret_key), or read from a DRM-info
service's answer (nginx-vod-module's JSON, vod/udrm.c).

* secret: key = MD5(seed), 16 bytes, where the seed is `secret_key` with `$vod_filepath` replaced
  by the file's media path (as nginx-vod-module evaluates `vod_secret_key "secret-$vod_filepath"`),
  so key servers built for it derive the same keys.
* DRM info: a JSON array holding exactly one object: `key` and `key_id` (base64 of 16 bytes),
  optionally `iv` (base64 of 16 bytes, HLS only) and `pssh`, a list of `{"uuid", "data"}` (the
  DRM system id, dashes allowed, and base64 data). For W3C ClearKey the data is the body of a
  version-1 pssh after the system id (KID count, KIDs, data size, data), as nginx-vod-module
  copies it; for any other system it is the pssh's data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from vodorigin.errors import UpstreamError
from vodorigin.media.model import MediaType
from vodorigin.mp4 import write

CLEARKEY_SYSTEM_ID = uuid.UUID("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b").bytes  # W3C Common PSSH box
PLAYREADY_SYSTEM_ID = uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95").bytes
WIDEVINE_SYSTEM_ID = uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed").bytes
FILEPATH_VARIABLE = "$vod_filepath"


@dataclass(frozen=True, slots=True)
class SystemData:
    """One DRM system's pssh data (ISO/IEC 23001-7 8.1)."""

    system_id: bytes
    data: bytes
    box: bytes = b""  # the pssh box as a key server wrote it (CPIX), used as it is

    @property
    def pssh(self) -> bytes:
        """The whole pssh box: version 1 for ClearKey (its data holds the KIDs), else version 0."""
        if self.box:
            return self.box
        if self.system_id == CLEARKEY_SYSTEM_ID:
            return write.full_box(b"pssh", 1, 0, self.system_id, self.data)
        return write.full_box(b"pssh", 0, 0, self.system_id, struct.pack(">I", len(self.data)), self.data)


@dataclass(frozen=True, slots=True)
class ContentKey:
    """A content key, its key id, an IV (DRM info may give one, for HLS) and the DRM systems' data."""

    key: bytes
    key_id: bytes
    iv: bytes | None = None
    systems: tuple[SystemData, ...] = ()
    served: bool = False  # derived from secret_key: may be served at encryption.key

    @property
    def identity(self) -> str:
        """A digest that changes with anything here (for validators and cache keys)."""
        parts = [self.key, self.key_id, self.iv or b""] + [s.system_id + s.data for s in self.systems]
        return hashlib.sha256(b"\0".join(parts)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class FileKeys:
    """The keys of one file: one for all its tracks, or (CPIX) one per track type."""

    default: ContentKey
    by_type: Mapping[MediaType, ContentKey] = field(default_factory=dict)

    def of(self, media_type: MediaType) -> ContentKey:
        return self.by_type.get(media_type, self.default)

    @property
    def identity(self) -> str:
        keys = [self.default, *(self.by_type[kind] for kind in sorted(self.by_type, key=lambda k: k.value))]
        return hashlib.sha256("".join(key.identity for key in keys).encode()).hexdigest()[:32]

    @property
    def size(self) -> int:
        """Bytes it holds, roughly (for caches bounded by bytes)."""
        keys = [self.default, *self.by_type.values()]
        return 256 * len(keys) + sum(len(s.data) + len(s.box) for key in keys for s in key.systems)


def secret_key(secret: str, path: str) -> ContentKey:
    """nginx-vod-module's key: MD5 of the secret with $vod_filepath replaced by the media path.
    The key id is a digest of the key (a KID never reveals its key)."""
    key = hashlib.md5(secret.replace(FILEPATH_VARIABLE, path).encode(), usedforsecurity=False).digest()
    key_id = hashlib.sha256(b"vodorigin key id\0" + key).digest()[:16]
    return ContentKey(key, key_id, served=True)


def parse_drm_info(data: bytes, where: str) -> ContentKey:
    """The key of a DRM-info answer; anything else than that JSON is a 502 naming the problem."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UpstreamError(f"{where}: the DRM info is not JSON ({error})") from None
    if not isinstance(document, list) or len(document) != 1 or not isinstance(document[0], dict):
        raise UpstreamError(f"{where}: the DRM info must be an array of exactly one object")
    info = document[0]
    key = _bytes16(info.get("key"), "key", where)
    key_id = _bytes16(info.get("key_id"), "key_id", where)
    iv = _bytes16(info["iv"], "iv", where) if info.get("iv") is not None else None
    systems = info.get("pssh", [])
    if not isinstance(systems, list):
        raise UpstreamError(f"{where}: pssh must be a list")
    return ContentKey(key, key_id, iv, tuple(_system(entry, where) for entry in systems))


def _system(entry: object, where: str) -> SystemData:
    if not isinstance(entry, dict) or not isinstance(entry.get("uuid"), str):
        raise UpstreamError(f"{where}: a pssh entry needs a uuid and data")
    try:
        system_id = uuid.UUID(entry["uuid"]).bytes
    except ValueError:
        raise UpstreamError(f"{where}: pssh uuid {entry['uuid'][:40]!r} is not a UUID") from None
    return SystemData(system_id, _base64(entry.get("data"), "pssh data", where))


def _bytes16(value: object, name: str, where: str) -> bytes:
    decoded = _base64(value, name, where)
    if len(decoded) != 16:
        raise UpstreamError(f"{where}: {name} must be 16 bytes (base64), not {len(decoded)}")
    return decoded


def _base64(value: object, name: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise UpstreamError(f"{where}: {name} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(f"{where}: {name} is not valid base64") from None


def key_id_uuid(key_id: bytes) -> str:
    """A key id in the UUID form manifests use (cenc:default_KID)."""
    return str(uuid.UUID(bytes=key_id))
