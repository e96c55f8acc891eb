"""Find the moov atom with a bounded number of range reads, without doing any I/O (sans-IO).

The caller asks `first_read()`, reads those bytes, and calls `feed(offset, data)` until it returns
the moov bytes. Top-level boxes are walked by their headers only, so a file with moov after a
multi-gigabyte mdat costs three reads (the head, the header after mdat, and the moov itself if it
is larger than the read size), never a scan. ISO/IEC 14496-12 4.2 (box sizes, 64-bit sizes, size 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from vodorigin.errors import LimitExceeded, MediaError, UnsupportedMedia
from vodorigin.mp4.boxes import read_box_header


@dataclass(frozen=True, slots=True)
class ReadRange:
    """Bytes the locator needs next: [offset, offset + length)."""

    offset: int
    length: int


class MoovRange(ReadRange):
    """The whole moov box: the locator's last request (skeleton.py may read less of it)."""

    __slots__ = ()


class MoovLocator:
    """A small state machine over top-level box headers. One per file, used once."""

    def __init__(self, file_size: int, read_size: int, max_moov_size: int, max_reads: int) -> None:
        self.file_size = file_size
        self.read_size = read_size
        self.max_moov_size = max_moov_size
        self.max_reads = max_reads
        self.reads = 0
        self.position = 0  # file offset of the next top-level box header

    def first_read(self) -> ReadRange:
        if self.file_size < 8:
            raise MediaError(f"file of {self.file_size} bytes is too small to be an MP4")
        return self._request(0, self.read_size)

    def feed(self, offset: int, data: bytes) -> ReadRange | bytes:
        """Give the bytes read at offset; get the next range to read, or the whole moov box."""
        while self.position < self.file_size:
            index = self.position - offset
            box = read_box_header(data, index, self.file_size - offset) if index >= 0 else None
            if box is None:
                return self._request(self.position, self.read_size)
            if box.type == b"moov":
                if box.size > self.max_moov_size:
                    raise LimitExceeded(f"moov of {box.size} bytes exceeds max_moov_size")
                if self.position + box.size > self.file_size:
                    raise MediaError("truncated file: moov runs past the end of the file")
                if box.end <= len(data):
                    return data[index : box.end]
                return self._request(self.position, box.size, MoovRange)
            if box.type == b"moof":
                raise UnsupportedMedia("fragmented MP4 input (moof before moov) is not supported yet")
            if self.position == 0 and box.type not in _FIRST_BOX_TYPES:
                raise MediaError(f"not an MP4 file: first box is {box.type!r}")
            self.position += box.size
        raise MediaError("no moov box in the file")

    def _request(self, offset: int, length: int, kind: type[ReadRange] = ReadRange) -> ReadRange:
        self.reads += 1
        if self.reads > self.max_reads:
            raise LimitExceeded(f"moov not found within {self.max_reads} reads")
        length = min(length, self.file_size - offset)
        if length < 8:
            raise MediaError(f"truncated file: box header at {offset} runs past the end")
        return kind(offset, length)


# Boxes a real MP4 may begin with; anything else means we were handed another kind of file.
_FIRST_BOX_TYPES = {b"ftyp", b"moov", b"free", b"skip", b"wide", b"mdat", b"styp", b"uuid", b"pdin"}
