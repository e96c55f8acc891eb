"""A tolerant, editable box tree of an MP4 file (ISO/IEC 14496-12 4.2), for the mutator.

Independent of vodorigin.mp4 on purpose: the fuzzer must not see files through the parser it tests.
Only the moov is parsed into a tree; other top-level boxes (ftyp, mdat, free...) stay raw. A box
whose children do not tile its payload is kept as a leaf, so any file parses. Serializing recomputes
every size, except a `size_override` that a size-field mutation put on one box.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Containers whose payload is only child boxes (ISO/IEC 14496-12 8.x).
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"udta", b"sinf",
              b"schi", b"tref", b"mfra", b"ilst"}
# Containers with fixed fields before their children: bytes of those fields.
PREFIXED = {b"stsd": 8, b"dref": 8, b"meta": 4}  # full box header (+ entry count)
VISUAL_ENTRIES = {b"avc1", b"avc3", b"hvc1", b"hev1", b"av01", b"mp4v", b"encv"}  # 78 bytes (12.1.3)
AUDIO_ENTRIES = {b"mp4a", b"ac-3", b"ec-3", b"Opus", b".mp3", b"enca"}  # 28 bytes (12.2.3)
QUICKTIME_AUDIO_EXTRA = {1: 16, 2: 36}  # QuickTime sound description versions 1 and 2
# Text sample entries: tx3g (3GPP TS 26.245 5.16: 38 bytes, then ftab), wvtt (ISO/IEC 14496-30: 8 bytes,
# then vttC and vlab)
TEXT_ENTRIES = {b"tx3g": 38, b"wvtt": 8}
MAX_DEPTH = 24


class BoxError(Exception):
    """Children that do not tile their container: the caller keeps the container as a leaf."""


@dataclass(eq=False)
class Box:
    """One box. A leaf holds its payload in `data`; a container holds its fixed fields in `data`
    and its child boxes in `children`."""

    type: bytes
    data: bytes = b""
    children: list[Box] | None = None
    large: bool = False  # written with size 1 + a 64-bit largesize
    size_override: int | None = None  # written as the size (or largesize) instead of the real one
    touched: bool = False  # a mutation chose its contents: never relocate its chunk offsets

    @property
    def is_container(self) -> bool:
        return self.children is not None

    def copy(self) -> Box:
        children = None if self.children is None else [c.copy() for c in self.children]
        return Box(self.type, self.data, children, self.large, self.size_override, self.touched)

    def child(self, box_type: bytes) -> Box | None:
        return next((c for c in self.children or [] if c.type == box_type), None)

    def find(self, *path: bytes) -> Box | None:
        """Follow child types from this box (e.g. b"mdia", b"minf", b"stbl")."""
        box: Box | None = self
        for box_type in path:
            box = box.child(box_type) if box else None
        return box


@dataclass(eq=False)
class MP4File:
    """Top-level boxes (the moov as a tree) and any trailing bytes that are not a box."""

    boxes: list[Box]
    tail: bytes = b""
    original_media_start: int | None = None  # file offset of the first mdat payload as parsed

    def copy(self) -> MP4File:
        return MP4File([b.copy() for b in self.boxes], self.tail, self.original_media_start)

    def top(self, box_type: bytes) -> Box | None:
        return next((b for b in self.boxes if b.type == box_type), None)

    @property
    def moov(self) -> Box | None:
        return self.top(b"moov")

    def tracks(self) -> list[Box]:
        moov = self.moov
        return [c for c in moov.children or [] if c.type == b"trak"] if moov else []


@dataclass
class Header:
    type: bytes
    size: int  # whole box
    header_size: int


def read_header(buf: bytes, pos: int, end: int) -> Header | None:
    """The header at buf[pos], or None when it does not fit or its size is impossible."""
    if pos + 8 > end:
        return None
    size, box_type = struct.unpack_from(">I4s", buf, pos)
    header_size = 8
    if size == 1:
        if pos + 16 > end:
            return None
        size = struct.unpack_from(">Q", buf, pos + 8)[0]
        header_size = 16
    elif size == 0:
        size = end - pos
    if size < header_size or pos + size > end:
        return None
    return Header(box_type, size, header_size)


def fixed_fields_size(box_type: bytes, payload: bytes) -> int | None:
    """Bytes before the children of a container-like box, None for a leaf."""
    if box_type in CONTAINERS:
        return 0
    if box_type in PREFIXED:
        return PREFIXED[box_type]
    if box_type in TEXT_ENTRIES:
        return TEXT_ENTRIES[box_type]
    if box_type in VISUAL_ENTRIES:
        return 78
    if box_type in AUDIO_ENTRIES:
        version = struct.unpack_from(">H", payload, 8)[0] if len(payload) >= 10 else 0
        return 28 + QUICKTIME_AUDIO_EXTRA.get(version, 0)
    return None


def parse_box(buf: bytes, header: Header, pos: int, depth: int) -> Box:
    payload = buf[pos + header.header_size : pos + header.size]
    box = Box(header.type, payload, large=header.header_size == 16)
    prefix = fixed_fields_size(header.type, payload)
    if prefix is None or prefix > len(payload) or depth >= MAX_DEPTH:
        return box
    try:
        children = parse_children(payload, prefix, len(payload), depth + 1)
    except BoxError:
        return box
    box.data, box.children = payload[:prefix], children
    return box


def parse_children(buf: bytes, start: int, end: int, depth: int) -> list[Box]:
    """The boxes tiling buf[start:end] exactly, or BoxError."""
    boxes, pos = [], start
    while pos < end:
        header = read_header(buf, pos, end)
        if header is None:
            raise BoxError(f"no box at {pos}")
        boxes.append(parse_box(buf, header, pos, depth))
        pos += header.size
    return boxes


def parse_file(data: bytes) -> MP4File:
    """Top-level boxes; the moov parsed as a tree; bytes that are no box kept as the tail."""
    boxes, pos = [], 0
    media_start = None
    while pos < len(data):
        header = read_header(data, pos, len(data))
        if header is None:
            break
        if header.type == b"moov":
            boxes.append(parse_box(data, header, pos, 0))
        else:
            payload = data[pos + header.header_size : pos + header.size]
            boxes.append(Box(header.type, payload, large=header.header_size == 16))
        if header.type == b"mdat" and media_start is None:
            media_start = pos + header.header_size
        pos += header.size
    return MP4File(boxes, data[pos:], media_start)


def tables(trak: Box) -> Box | None:
    """A trak's sample table box (stbl)."""
    return trak.find(b"mdia", b"minf", b"stbl")


def full_box(box_type: bytes, payload: bytes, version: int = 0) -> Box:
    return Box(box_type, struct.pack(">I", version << 24) + payload)


def box_size(box: Box) -> int:
    """The real size of a box as serialized (header included)."""
    payload = len(box.data) + sum(box_size(c) for c in box.children or [])
    return payload + (16 if box.large else 8)


def serialize_box(box: Box, out: list[bytes]) -> None:
    size = box_size(box)
    written = size if box.size_override is None else box.size_override
    if box.large:
        out.append(struct.pack(">I4sQ", 1, box.type, written & 0xFFFFFFFFFFFFFFFF))
    else:
        out.append(struct.pack(">I4s", written & 0xFFFFFFFF, box.type))
    out.append(box.data)
    for child in box.children or []:
        serialize_box(child, out)


def serialize(file: MP4File) -> bytes:
    out: list[bytes] = []
    for box in file.boxes:
        serialize_box(box, out)
    out.append(file.tail)
    return b"".join(out)


def media_start(file: MP4File) -> int | None:
    """File offset of the first mdat payload as the file would now be serialized."""
    pos = 0
    for box in file.boxes:
        header = 16 if box.large else 8
        if box.type == b"mdat":
            return pos + header
        pos += box_size(box)
    return None


def walk(boxes: list[Box], parent: Box | None = None, path: str = ""
         ) -> Iterator[tuple[str, Box, Box | None]]:
    """(path, box, parent) of every box, depth first."""
    seen: dict[bytes, int] = {}
    for box in boxes:
        index = seen.get(box.type, 0)
        seen[box.type] = index + 1
        here = f"{path}/{box.type.decode('latin-1')}" + (f"#{index + 1}" if index else "")
        yield here, box, parent
        if box.children:
            yield from walk(box.children, box, here)


def walkable(data: bytes) -> bool:
    """Whether the top-level boxes, and every container of the moov, tile their bytes exactly."""
    pos = 0
    while pos < len(data):
        header = read_header(data, pos, len(data))
        if header is None:
            return False
        if header.type == b"moov":
            try:
                _check_tiling(data, pos + header.header_size, pos + header.size, 0)
            except BoxError:
                return False
        pos += header.size
    return True


def _check_tiling(buf: bytes, start: int, end: int, depth: int) -> None:
    pos = start
    while pos < end:
        header = read_header(buf, pos, end)
        if header is None:
            raise BoxError(f"no box at {pos}")
        if header.type in CONTAINERS and depth < MAX_DEPTH:
            _check_tiling(buf, pos + header.header_size, pos + header.size, depth + 1)
        pos += header.size
