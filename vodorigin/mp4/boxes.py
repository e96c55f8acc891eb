"""Walk ISO BMFF boxes over a buffer (ISO/IEC 14496-12 4.2).

A box is `size:u32 type:4cc [largesize:u64 when size == 1] payload`; size 0 means "to the end of the
enclosing container" (at top level: to the end of the file). Every walk is bounded by its container
and raises MediaError with the box path when a size does not fit, so a hostile file cannot make us
read outside the bytes we hold or loop forever.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import NamedTuple

from vodorigin.errors import MediaError

Moov = bytes | mmap.mmap  # a moov box's bytes, or its skeleton (skeleton.py): slices of both are bytes
Buffer = Moov | memoryview
BOX_HEADER = struct.Struct(">I4s")
LARGE_SIZE = struct.Struct(">Q")


class Box(NamedTuple):
    """One box found in a buffer: positions are indexes into that buffer. (A tuple: a moov's parse
    makes some sixty, and a tuple is made in half a dataclass's time; the walks below make theirs
    with tuple.__new__, without the Python frame of NamedTuple's constructor.)"""

    type: bytes
    start: int  # index of the first header byte
    header_size: int  # 8, or 16 with a 64-bit largesize
    size: int  # whole box, header included

    @property
    def payload_start(self) -> int:
        return self.start + self.header_size

    @property
    def end(self) -> int:
        return self.start + self.size


_new_box = tuple.__new__


def read_box_header(buf: Buffer, pos: int, container_end: int) -> Box | None:
    """The box whose header starts at buf[pos], or None when the header is not all in buf.

    container_end bounds a size-0 box; a size that overflows it is not checked here (the caller
    may hold only the header of a large box, such as mdat).
    """
    if pos + 8 > len(buf):
        return None
    size, box_type = BOX_HEADER.unpack_from(buf, pos)
    header_size = 8
    if size == 1:
        if pos + 16 > len(buf):
            return None
        (size,) = LARGE_SIZE.unpack_from(buf, pos + 8)
        header_size = 16
    elif size == 0:
        size = container_end - pos
    if size < header_size:
        raise MediaError(f"box {box_type!r} at {pos}: size {size} is smaller than its header")
    return _new_box(Box, (box_type, pos, header_size, size))


def iter_boxes(buf: Buffer, start: int, end: int, path: str = "") -> Iterator[Box]:
    """The child boxes of buf[start:end], each checked to lie inside it."""
    pos = start
    while pos < end:
        box = _box_within(buf, pos, end, path)
        yield box
        pos += box.size


def child_boxes(buf: Buffer, parent: Box, path: str = "") -> dict[bytes, Box]:
    """Children of a container box by type (the first of each type). The parse's most frequent
    walk: iter_boxes's loop, without a generator, and with an ordinary box (a 32-bit size that
    fits in what is left of the parent) read inline; any other goes through _box_within."""
    children: dict[bytes, Box] = {}
    _, start, header_size, size = parent
    pos, end = start + header_size, start + size
    within = min(end, len(buf))  # an ordinary box's header lies before this
    unpack = BOX_HEADER.unpack_from
    while pos < end:
        if within - pos >= 8:
            size, box_type = unpack(buf, pos)
            if 8 <= size <= end - pos:
                if box_type not in children:
                    children[box_type] = _new_box(Box, (box_type, pos, 8, size))
                pos += size
                continue
        box = _box_within(buf, pos, end, path)  # size 0 or 1 (64-bit), or a fault to report
        children.setdefault(box.type, box)
        pos += box.size
    return children


def _box_within(buf: Buffer, pos: int, end: int, path: str) -> Box:
    """The box at buf[pos], which must lie inside buf[pos:end] (MediaError naming the path if not)."""
    if end - pos < 8:
        raise MediaError(f"{path or 'file'}: {end - pos} trailing bytes at {pos} are not a box")
    box = read_box_header(buf, pos, end)
    if box is None or pos + box.size > end:
        name = box.type.decode("latin-1") if box else "?"
        raise MediaError(f"{path or 'file'}/{name}: box at {pos} overruns its container")
    return box


def find_path(buf: Buffer, parent: Box, *types: bytes) -> Box | None:
    """Follow a chain of child types (e.g. b"mdia", b"minf", b"stbl") from parent."""
    box: Box | None = parent
    for box_type in types:
        if box is None:
            return None
        box = child_boxes(buf, box).get(box_type)
    return box


def full_box_header(buf: Buffer, box: Box) -> tuple[int, int]:
    """(version, flags) of a FullBox (ISO/IEC 14496-12 4.2.2)."""
    if box.size < box.header_size + 4:
        raise MediaError(f"{box.type!r}: too small for a full box header")
    word = struct.unpack_from(">I", buf, box.payload_start)[0]
    return word >> 24, word & 0xFFFFFF
