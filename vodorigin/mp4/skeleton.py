"""Read a moov without the payloads of its largest sample tables (sans-IO, like locate.py).

An HLS media playlist needs a track's timing only: stts, ctts, stss, the edit list, the sample
entry. The per-sample and per-chunk tables (stsz, stco/co64, stsc) are nearly all of a long
title's moov (5.7 of the 2-hour bench title's 6.2 MB) and only their entry counts are read while
parsing (mp4/tables.py: the values wait for a segment, DeferredChunks). When nothing keeps the
parsed movie (the metadata cache is off: origin.py), the playlist's moov is read as a skeleton:
its boxes' bytes where it needs them, each large table's header and the first KEPT_PAYLOAD
bytes of its payload (version, flags, counts), and nothing else.

The skeleton is laid out as the moov is, in a zero-filled anonymous mapping of the moov's size:
parse_moov reads it as it reads a whole moov, and the pages never written are never allocated.
Its sample sizes and chunk tables are zeros, so a movie parsed from it serves that playlist and
nothing else (Origin.movie_of(timing_only=True)).

Boxes are walked by their headers (ISO/IEC 14496-12 4.2), descending only the containers on the
way to stbl (8.1-8.5). Anything unusual (a box that overruns its container, more than MAX_READS
reads) gives None: the moov is then read whole, and parse_moov says what is wrong with it.

Each page a skeleton writes first costs a page fault (some ten for the 2-hour bench title, about
4 us each on the bench VM in a shared mapping, half that in a private one: a third of the
skeleton's time), so an Origin keeps the last mapping for the next skeleton (Mappings).
"""

from __future__ import annotations

import mmap
import sys

from vodorigin.errors import MediaError
from vodorigin.mp4.boxes import read_box_header
from vodorigin.mp4.locate import ReadRange

CONTAINERS = frozenset((b"moov", b"trak", b"mdia", b"minf", b"stbl"))  # the way to each stbl
SKIPPED = frozenset((b"stsz", b"stco", b"co64", b"stsc"))  # tables whose values a playlist never reads
KEPT_PAYLOAD = 16  # bytes kept of a skipped table's payload: version and flags, then its counts
SKIP_MIN = 64 * 1024  # a table with a smaller payload is read with its neighbours
WINDOW = 4096  # bytes read at a header outside what has been read
MAX_READS = 32  # more than this (a moov of many small tables, or hostile): read it whole
KEPT_MAPPING = 64 << 20  # a skeleton's mapping up to this size is kept for the next one (Mappings)
ZEROS = memoryview(bytes(64 * 1024))  # what a kept mapping's written ranges are cleared with
Written = list[list[int]]  # the [start, end) ranges of a mapping a skeleton wrote, adjacent ones merged


class MoovSkeleton:
    """The skeleton of the moov box at [start, start + size) of a file whose every byte there is
    (MoovLocator has checked that it lies in the file). Give it bytes of the file with feed();
    it asks for the next range it needs, and finally returns the skeleton, or None."""

    def __init__(self, start: int, size: int, skip_min: int = SKIP_MIN, window: int = WINDOW,
                 max_reads: int = MAX_READS, mapping: tuple[mmap.mmap, Written] | None = None) -> None:
        """`mapping`: a zero-filled mapping of `size` bytes to lay the skeleton out in, and the list
        where the ranges written are noted (Mappings.take); by default a new one."""
        self.start, self.end = start, start + size
        self.skip_min, self.window, self.max_reads = skip_min, window, max_reads
        self.position = start  # the next box header to look at
        self.ends: list[int] = [self.end]  # the ends of the containers the position is in
        self.reads = 0
        self.buffer, self.written = mapping if mapping is not None else (new_mapping(size), [])

    def feed(self, offset: int, data: bytes) -> ReadRange | mmap.mmap | None:
        """Bytes of the file read at `offset` (any range; the next one asked for after the first);
        the next range to read, the skeleton, or None when the moov is better read whole."""
        start, ends, buffer, written = self.start, self.ends, self.buffer, self.written
        view = memoryview(data)  # a box's bytes are copied once: into the skeleton
        position = self.position
        while position < self.end:
            while position >= ends[-1]:
                ends.pop()
            container_end = ends[-1]
            if container_end - position < 8:
                return None  # trailing bytes that are not a box
            index = position - offset
            try:
                box = read_box_header(data, index, container_end - offset) if index >= 0 else None
            except MediaError:
                return None  # a size smaller than its header
            if box is None:
                self.position = position
                return self._ask(position, self.window)
            box_type, _, header_size, size = box
            end = position + size
            if end > container_end:
                return None  # overruns its container
            container = box_type in CONTAINERS
            if container:
                kept = header_size
            elif box_type in SKIPPED and size - header_size > self.skip_min:
                kept = min(size, header_size + KEPT_PAYLOAD)
            else:
                kept = size
            if index + kept > len(data):
                self.position = position
                return self._ask(position, max(kept, self.window))
            at = position - start
            buffer[at : at + kept] = view[index : index + kept]
            if written and written[-1][1] == at:
                written[-1][1] = at + kept
            else:
                written.append([at, at + kept])
            if container:
                ends.append(end)
                position += kept
            else:
                position = end
        self.position = position
        return buffer

    def _ask(self, offset: int, length: int) -> ReadRange | None:
        self.reads += 1
        if self.reads > self.max_reads:
            return None
        return ReadRange(offset, min(length, self.end - offset))


def new_mapping(size: int) -> mmap.mmap:
    """A zero-filled private anonymous mapping: its pages are allocated when first written (each
    fault costs half a shared mapping's, which the kernel backs with shared memory), and it may
    grow (mremap) with zero pages, where a shared one would fault past its first size."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


class Mappings:
    """The mapping of an Origin's last skeleton, kept for its next one (used on the event loop's
    thread only). A kept mapping is handed out again only when nothing but this object refers to
    it: every view of it holds a reference to it (a movie parsed from it keeps views in its sample
    tables), so CPython's reference count tells when the movie and the request are gone. The
    ranges the last skeleton wrote are zeroed first, so the mapping is as new: zeros wherever the
    next skeleton writes nothing. Otherwise (in use, or of another size that cannot be resized in
    place) a new mapping is made."""

    def __init__(self) -> None:
        self._mapping: mmap.mmap | None = None
        self._written: Written = []

    def take(self, size: int) -> tuple[mmap.mmap, Written]:
        """A zero-filled mapping of `size` bytes, and the list for the ranges written to it."""
        mapping, self._mapping = self._mapping, None
        # the references: `mapping` here and getrefcount's argument, nothing else
        if mapping is None or sys.getrefcount(mapping) != 2 or not _cleared(mapping, self._written, size):
            mapping = new_mapping(size)
        written: Written = []
        if size <= KEPT_MAPPING:
            self._mapping, self._written = mapping, written
        return mapping, written


def _cleared(mapping: mmap.mmap, written: Written, size: int) -> bool:
    """The written ranges zeroed and the mapping made `size` bytes long; False when it cannot be
    resized (platforms without mremap) and is better replaced."""
    for start, end in written:
        end = min(end, size)  # past a smaller size, the pages are released by the resize
        while start < end:
            piece = min(end - start, len(ZEROS))
            mapping[start : start + piece] = ZEROS[:piece]
            start += piece
    if len(mapping) == size:
        return True
    try:
        mapping.resize(size)
    except (OSError, SystemError, ValueError, BufferError):
        return False
    return True
