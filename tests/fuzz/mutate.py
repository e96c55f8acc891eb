"""Structure-aware mutations of an MP4 file, deterministic from a random.Random.

`mutate(parsed, rng)` copies a parsed fixture (boxtree.parse_file), applies one to three operators
and returns the new bytes with a description of each step. Operators work on the box tree, so after
a mutation that changes lengths every enclosing container's size is right again (boxtree.serialize
recomputes them), except for the size-field operator, whose point is a wrong size. When the moov
sits before the mdat and its length changed, the chunk offsets of the tables no operator touched
are moved by the same amount, so that the samples are still found and the deeper code is reached.
A file with a text track gets its subtitle samples rewritten (subtitles.text_samples) in about a
third of its mutants. The amplification files are in amplify.py.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fuzz.boxtree import (
    Box,
    MP4File,
    box_size,
    full_box,
    media_start,
    parse_file,
    serialize,
    tables,
    walk,
)
from tests.fuzz.fields import INTERESTING, U32_MAX, U64_MAX, choose_value, known_fields
from tests.fuzz.subtitles import text_samples, text_tracks

TEXT_SAMPLES_SHARE = 0.35  # of the mutants of a file with a text track
SIZE_DELTAS = (-16, -8, -4, -2, -1, 1, 2, 4, 7, 8, 16, 256, 65536)
RETYPES = {
    b"stco": (b"co64",), b"co64": (b"stco",), b"stsz": (b"stz2",), b"stz2": (b"stsz",),
    b"avc1": (b"hvc1", b"avc3", b"av01", b"mp4a"), b"hvc1": (b"avc1", b"hev1", b"av01"),
    b"mp4a": (b"ac-3", b"ec-3", b"Opus", b".mp3", b"avc1"), b"stts": (b"ctts",), b"ctts": (b"stts",),
    b"avcC": (b"hvcC",), b"hvcC": (b"avcC",), b"stss": (b"stps",), b"mdhd": (b"mvhd",),
    b"tx3g": (b"wvtt", b"stpp"), b"wvtt": (b"tx3g",), b"vttC": (b"vlab",),
}


@dataclass
class Mutant:
    data: bytes
    steps: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return "; ".join(self.steps)


Operator = Callable[[MP4File, random.Random], str | None]


def mutate(parsed: MP4File, rng: random.Random, count: int | None = None) -> Mutant:
    """1-3 operators (weighted) on a copy of `parsed`, then possibly one whole-file byte operation."""
    file = parsed.copy()
    steps: list[str] = []
    if count is None and text_tracks(file) and rng.random() < TEXT_SAMPLES_SHARE:
        step = text_samples(file, rng)
        steps += [f"text_samples: {step}"] if step else []
    for _ in range(count if count is not None else rng.choice((1, 1, 1, 2, 2, 3))):
        for _attempt in range(8):
            operator = rng.choices(OPERATORS, weights=WEIGHTS)[0]
            step = operator(file, rng)
            if step:
                steps.append(f"{operator.__name__}: {step}")
                break
    shift = relocate_chunk_offsets(file)
    if shift:
        steps.append(f"(chunk offsets moved by {shift})")
    data = serialize(file)
    if rng.random() < 0.12:
        data, step = byte_operation(data, file, rng)
        steps.append(step)
    return Mutant(data, steps)


def mutate_bytes(data: bytes, rng: random.Random, count: int | None = None) -> Mutant:
    return mutate(parse_file(data), rng, count)


# --- choosing boxes ------------------------------------------------------------------------------


def moov_boxes(file: MP4File) -> list[tuple[str, Box, Box | None]]:
    """(path, box, parent) of every box of the moov."""
    return list(walk([file.moov])) if file.moov else []


Entry = tuple[str, Box, Box | None]  # path, box, parent


def pick(file: MP4File, rng: random.Random, accept: Callable[[Box], bool]) -> Entry | None:
    candidates = [entry for entry in moov_boxes(file) if accept(entry[1])]
    return rng.choice(candidates) if candidates else None


# --- operators on the tree -----------------------------------------------------------------------


def set_known_field(file: MP4File, rng: random.Random) -> str | None:
    """A field the parser reads, set to an interesting value for it."""
    chosen = pick(file, rng, lambda b: bool(known_fields(b, random.Random(0))))
    if chosen is None:
        return None
    path, box, _ = chosen
    fields = known_fields(box, rng)
    target = rng.choice(fields)
    current = target.read(box.data)
    value = choose_value(rng, target, current)
    box.data = target.write(box.data, value)
    box.touched = box.touched or box.type in (b"stco", b"co64")
    return f"{path} {target.name}@{target.offset} = {value:#x} (was {current:#x})"


def set_integer(file: MP4File, rng: random.Random) -> str | None:
    """An 8/16/32/64-bit integer at an aligned offset of any box's data."""
    chosen = pick(file, rng, lambda b: len(b.data) >= 1)
    if chosen is None:
        return None
    path, box, _ = chosen
    width = rng.choice([w for w in (1, 2, 4, 8) if w <= len(box.data)])
    offset = rng.randrange(len(box.data) // width) * width
    current = int.from_bytes(box.data[offset : offset + width], "big")
    value = rng.choice(INTERESTING[width]) if rng.random() < 0.7 else current + rng.choice((-1, 1, -2, 2))
    value &= (1 << (8 * width)) - 1
    raw = value.to_bytes(width, "big")
    box.data = box.data[:offset] + raw + box.data[offset + width :]
    box.touched = box.touched or box.type in (b"stco", b"co64")
    return f"{path} u{8 * width}@{offset} = {value:#x} (was {current:#x})"


def flip_bytes(file: MP4File, rng: random.Random) -> str | None:
    """A few random bytes of one box's data replaced (the fallback)."""
    chosen = pick(file, rng, lambda b: len(b.data) >= 1)
    if chosen is None:
        return None
    path, box, _ = chosen
    data = bytearray(box.data)
    positions = sorted(rng.randrange(len(data)) for _ in range(rng.randint(1, 4)))
    for position in positions:
        data[position] = rng.randrange(256)
    box.data = bytes(data)
    return f"{path} bytes at {positions}"


def set_version(file: MP4File, rng: random.Random) -> str | None:
    """The version byte of a full box flipped (fields move between 32 and 64 bits)."""
    full = {b"mvhd", b"mdhd", b"tkhd", b"elst", b"ctts", b"stts", b"stsz", b"stco", b"stss", b"hdlr"}
    chosen = pick(file, rng, lambda b: b.type in full and len(b.data) >= 4)
    if chosen is None:
        return None
    path, box, _ = chosen
    version = rng.choice((0, 1, 2, 0xFF))
    box.data = bytes((version,)) + box.data[1:]
    return f"{path} version = {version}"


def truncate_box(file: MP4File, rng: random.Random) -> str | None:
    """A box's data cut short, or a container's last children dropped (sizes fixed up)."""
    chosen = pick(file, rng, lambda b: len(b.data) >= 1 or bool(b.children))
    if chosen is None:
        return None
    path, box, _ = chosen
    if box.children and (not box.data or rng.random() < 0.5):
        keep = rng.randrange(len(box.children))
        del box.children[keep:]
        return f"{path} children after {keep} dropped"
    keep = rng.choice((0, 1, 4, 8, rng.randrange(len(box.data)), len(box.data) - 1))
    keep = max(min(keep, len(box.data) - 1), 0)
    box.data = box.data[:keep]
    return f"{path} data cut to {keep} bytes"


def grow_box(file: MP4File, rng: random.Random) -> str | None:
    """Bytes appended to a box's data (trailing data the parser must skip or refuse)."""
    chosen = pick(file, rng, lambda b: not b.children)
    if chosen is None:
        return None
    path, box, _ = chosen
    extra = rng.choice((1, 4, 8, 12, 64))
    filler = bytes(rng.randrange(256) for _ in range(extra)) if rng.random() < 0.5 else bytes(extra)
    box.data += filler
    return f"{path} grown by {extra} bytes"


def size_field(file: MP4File, rng: random.Random) -> str | None:
    """A size field made wrong without moving any byte: +-delta, 0, 1, below the header, 64-bit."""
    entries = moov_boxes(file) + [(f"/{b.type.decode('latin-1')}", b, None) for b in file.boxes]
    path, box, _ = rng.choice(entries)
    real = box_size(box)
    choice = rng.randrange(6)
    if choice == 0:
        box.size_override = max(real + rng.choice(SIZE_DELTAS), 0)
    elif choice == 1:
        box.size_override = rng.choice((0, 1, 2, 7))
    elif choice == 2:
        box.size_override = U32_MAX
    elif choice == 3:  # a correct 64-bit largesize: a valid, unusual form (sizes fixed up)
        box.large = True
        return f"{path} written with a 64-bit largesize"
    else:
        box.large = True
        box.size_override = rng.choice((0, 1, 15, U64_MAX, 1 << 63, (1 << 32) + real, real + 16 + 1,
                                        real + 16 - 1))
    return f"{path} size {box.size_override:#x} (real {box_size(box):#x}{', 64-bit' if box.large else ''})"


def delete_box(file: MP4File, rng: random.Random) -> str | None:
    chosen = pick(file, rng, lambda b: b.type != b"moov")
    if chosen is None:
        return None
    path, box, parent = chosen
    assert parent is not None and parent.children is not None
    parent.children.remove(box)
    return f"{path} deleted"


def duplicate_box(file: MP4File, rng: random.Random) -> str | None:
    chosen = pick(file, rng, lambda b: b.type != b"moov")
    if chosen is None:
        return None
    path, box, parent = chosen
    assert parent is not None and parent.children is not None
    copies = rng.choice((1, 1, 2, 7))
    position = parent.children.index(box) + (1 if rng.random() < 0.5 else 0)
    for _ in range(copies):
        parent.children.insert(position, box.copy())
    return f"{path} duplicated x{copies}"


def swap_siblings(file: MP4File, rng: random.Random) -> str | None:
    chosen = pick(file, rng, lambda b: bool(b.children and len(b.children) >= 2))
    if chosen is None:
        return None
    path, box, _ = chosen
    assert box.children is not None
    first, second = rng.sample(range(len(box.children)), 2)
    children = box.children
    children[first], children[second] = children[second], children[first]
    return f"{path} children {first} and {second} swapped"


def nest_in_itself(file: MP4File, rng: random.Random) -> str | None:
    """A container (trak, stbl, avc1...) given a copy of itself as a child."""
    chosen = pick(file, rng, lambda b: b.children is not None)
    if chosen is None:
        return None
    path, box, _ = chosen
    assert box.children is not None
    box.children.insert(rng.randrange(len(box.children) + 1), box.copy())
    return f"{path} nested in itself"


def move_box(file: MP4File, rng: random.Random) -> str | None:
    """A box moved into another container (e.g. an stbl child into the trak)."""
    chosen = pick(file, rng, lambda b: b.type != b"moov")
    target = pick(file, rng, lambda b: b.children is not None)
    if chosen is None or target is None or target[1] is chosen[1]:
        return None
    path, box, parent = chosen
    assert parent is not None and parent.children is not None and target[1].children is not None
    if _contains(box, target[1]):
        return None
    parent.children.remove(box)
    target[1].children.insert(rng.randrange(len(target[1].children) + 1), box)
    return f"{path} moved into {target[0]}"


def _contains(box: Box, other: Box) -> bool:
    return any(b is other for _, b, _ in walk([box]))


def retype(file: MP4File, rng: random.Random) -> str | None:
    """A box renamed to a sibling format (stco -> co64, avc1 -> hvc1...) or to free."""
    chosen = pick(file, rng, lambda b: b.type != b"moov")
    if chosen is None:
        return None
    path, box, _ = chosen
    new = rng.choice(RETYPES.get(box.type, ()) + (b"free",))
    box.type = new
    return f"{path} renamed {new.decode('latin-1')}"


# --- whole-file operators ------------------------------------------------------------------------


def first_chunk(stbl: Box) -> tuple[int, int]:
    """(first chunk offset, first sample size) of a track, (0, 1) when unreadable."""
    offset, size = 0, 1
    stco, co64, stsz = stbl.child(b"stco"), stbl.child(b"co64"), stbl.child(b"stsz")
    if stco is not None and len(stco.data) >= 12:
        offset = struct.unpack_from(">I", stco.data, 8)[0]
    elif co64 is not None and len(co64.data) >= 16:
        offset = struct.unpack_from(">Q", co64.data, 8)[0]
    if stsz is not None and len(stsz.data) >= 12:
        uniform = struct.unpack_from(">I", stsz.data, 4)[0]
        size = uniform or (struct.unpack_from(">I", stsz.data, 12)[0] if len(stsz.data) >= 16 else 1)
    return offset, size


def one_run_tables(stbl: Box, samples: int, delta: int, size: int, offset: int) -> None:
    """Replace a track's tables: `samples` samples of `delta` ticks and `size` bytes in one chunk
    at `offset`; no ctts and no stss (every sample a sync sample)."""
    kept = [c for c in stbl.children or [] if c.type == b"stsd"]
    stco = full_box(b"stco", struct.pack(">II", 1, offset & U32_MAX))
    stbl.children = [*kept, full_box(b"stts", struct.pack(">III", 1, samples, delta)),
                     full_box(b"stsc", struct.pack(">IIII", 1, 1, samples, 1)),
                     full_box(b"stsz", struct.pack(">II", size, samples)), stco]


def set_timescale(header: Box, timescale: int) -> None:
    """mvhd/mdhd timescale (either version)."""
    if len(header.data) >= 24:
        at = 20 if header.data[0] == 1 else 12
        header.data = header.data[:at] + struct.pack(">I", timescale) + header.data[at + 4 :]


def huge_sample_count(file: MP4File, rng: random.Random) -> str | None:
    """One track claims N one-byte samples: one stts run, stsc (1, N, 1), a constant stsz, one chunk."""
    traks = [t for t in file.tracks() if tables(t) is not None]
    if not traks:
        return None
    trak = rng.choice(traks)
    stbl = tables(trak)
    assert stbl is not None
    samples = rng.choice((1_000_000, 19_999_999, 20_000_000, 20_000_001, 1 << 31, U32_MAX))
    offset, _ = first_chunk(stbl)
    one_run_tables(stbl, samples, rng.choice((1, 1, 1024, 0)), rng.choice((1, 1, 0, 188)), offset)
    return f"track {file.tracks().index(trak) + 1}: {samples} samples in one chunk"


def huge_duration(file: MP4File, rng: random.Random) -> str | None:
    """One track becomes a single sample of 2^32-1 ticks at timescale 1."""
    traks = [t for t in file.tracks() if tables(t) is not None and t.find(b"mdia", b"mdhd")]
    if not traks:
        return None
    trak = rng.choice(traks)
    stbl, mdhd = tables(trak), trak.find(b"mdia", b"mdhd")
    assert stbl is not None and mdhd is not None
    offset, size = first_chunk(stbl)
    one_run_tables(stbl, 1, U32_MAX, size, offset)
    set_timescale(mdhd, 1)
    if rng.random() < 0.5 and file.moov and file.moov.child(b"mvhd"):
        set_timescale(file.moov.child(b"mvhd"), 1)  # type: ignore[arg-type]
    return f"track {file.tracks().index(trak) + 1}: one sample of {U32_MAX} ticks at timescale 1"


def duplicate_track(file: MP4File, rng: random.Random) -> str | None:
    """A track copied up to 32 (or 33) times, with new track_IDs or the same one."""
    traks = file.tracks()
    if not traks or file.moov is None or file.moov.children is None:
        return None
    trak = rng.choice(traks)
    copies = rng.choice((1, 2, 15, 31, 32, 33))
    same_id = rng.random() < 0.3
    for number in range(copies):
        copy = trak.copy()
        tkhd = copy.child(b"tkhd")
        if tkhd is not None and not same_id and len(tkhd.data) >= 16:
            at = 20 if tkhd.data[0] == 1 else 12
            tkhd.data = tkhd.data[:at] + struct.pack(">I", 100 + number) + tkhd.data[at + 4 :]
        file.moov.children.append(copy)
    return f"track {traks.index(trak) + 1} copied x{copies}{' (same track_ID)' if same_id else ''}"


def offsets_past_end(file: MP4File, rng: random.Random) -> str | None:
    """Chunk offsets (the first, the last, or all) moved to or past the end of the file."""
    chosen = pick(file, rng, lambda b: b.type in (b"stco", b"co64") and len(b.data) >= 8)
    if chosen is None:
        return None
    path, box, _ = chosen
    stride = 8 if box.type == b"co64" else 4
    entries = (len(box.data) - 8) // stride
    if not entries:
        return None
    end = len(serialize(file))
    value = rng.choice((end, end - 1, end + 1, end + (1 << 20), U32_MAX, U64_MAX if stride == 8 else U32_MAX,
                        (1 << 63) - 1 if stride == 8 else 0x80000000))
    which = rng.choice(("first", "last", "all"))
    indexes = {"first": [0], "last": [entries - 1], "all": range(entries)}[which]
    data = bytearray(box.data)
    for index in indexes:
        at = 8 + index * stride
        data[at : at + stride] = (value & ((1 << (8 * stride)) - 1)).to_bytes(stride, "big")
    box.data, box.touched = bytes(data), True
    return f"{path} {which} offsets = {value:#x} (file is {end} bytes)"


def reorder_top_level(file: MP4File, rng: random.Random) -> str | None:
    """Top-level boxes moved, duplicated or dropped (moov after mdat, two moovs, no ftyp...)."""
    choice = rng.randrange(4)
    names = [b.type.decode("latin-1") for b in file.boxes]
    if choice == 0 and len(file.boxes) >= 2:
        box = file.boxes.pop(rng.randrange(len(file.boxes)))
        file.boxes.insert(rng.randrange(len(file.boxes) + 1), box)
    elif choice == 1 and file.moov is not None:
        file.boxes.insert(rng.randrange(len(file.boxes) + 1), file.moov.copy())
    elif choice == 2 and len(file.boxes) >= 2:
        file.boxes.pop(rng.randrange(len(file.boxes)))
    else:
        file.boxes.insert(rng.randrange(len(file.boxes) + 1), Box(rng.choice((b"moof", b"junk", b"free")),
                                                                   bytes(rng.choice((0, 8, 100)))))
    return f"top level {names} -> {[b.type.decode('latin-1') for b in file.boxes]}"


OPERATORS: list[Operator] = [set_known_field, set_integer, flip_bytes, set_version, truncate_box, grow_box,
                             size_field, delete_box, duplicate_box, swap_siblings, nest_in_itself, move_box,
                             retype, huge_sample_count, huge_duration, duplicate_track, offsets_past_end,
                             reorder_top_level, text_samples]
WEIGHTS = [30, 12, 6, 3, 5, 2, 7, 4, 3, 2, 1, 1, 3, 1, 1, 2, 3, 2, 2]


# --- fix-ups and whole-file byte operations ------------------------------------------------------


def relocate_chunk_offsets(file: MP4File) -> int:
    """Move the chunk offsets no operator touched by the distance the media moved; return it."""
    now = media_start(file)
    if now is None or file.original_media_start is None or now == file.original_media_start:
        return 0
    shift = now - file.original_media_start
    for _, box, _ in moov_boxes(file):
        if box.type in (b"stco", b"co64") and not box.touched and box.children is None:
            stride, dtype = (8, ">Q") if box.type == b"co64" else (4, ">I")
            data = bytearray(box.data)
            mask = (1 << (8 * stride)) - 1
            for at in range(8, len(data) - stride + 1, stride):
                value = struct.unpack_from(dtype, data, at)[0]
                struct.pack_into(dtype, data, at, (value + shift) & mask)
            box.data = bytes(data)
    return shift


def byte_operation(data: bytes, file: MP4File, rng: random.Random) -> tuple[bytes, str]:
    """A mutation of the serialized file: truncation (after the moov, inside mdat) or byte flips."""
    moov_start, moov_end = moov_span(file)
    choice = rng.randrange(4)
    if choice == 0 and moov_end is not None:
        cut = min(moov_end + rng.choice((0, 0, 8, 16)), len(data))
        return data[:cut], f"file truncated after the moov at {cut}"
    if choice == 1:
        start = media_start(file)
        if start is not None and start < len(data):
            cut = rng.randrange(start, len(data))
            return data[:cut], f"file truncated inside the mdat at {cut}"
    if choice == 2 and moov_start is not None and moov_end is not None and moov_end > moov_start:
        flipped = bytearray(data)
        positions = [rng.randrange(moov_start, moov_end) for _ in range(rng.randint(1, 8))]
        for position in positions:
            flipped[position] ^= 1 << rng.randrange(8)
        return bytes(flipped), f"moov bits flipped at {sorted(positions)}"
    cut = rng.randrange(len(data)) if data else 0
    return data[:cut], f"file truncated at {cut}"


def moov_span(file: MP4File) -> tuple[int | None, int | None]:
    pos = 0
    for box in file.boxes:
        size = box_size(box)
        if box.type == b"moov":
            return pos, pos + size
        pos += size
    return None, None
