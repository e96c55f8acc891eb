"""Mutations of subtitles: the samples of a text track embedded in an MP4, and sidecar documents.

* text_samples (an operator of mutate.py) rewrites the samples of a text track (handler text, sbtl
  or subt): every sample is appended anew to the end of the mdat, one chunk each (stsc, stsz and
  stco rebuilt, the sample count and durations kept), so that one to three of them can be replaced
  by hostile ones of any length: 3GPP timed text (TS 26.245 5.17: text length, UTF-8 or UTF-16,
  styl records and other modifier boxes) or, after the sample entry is turned into 'wvtt', WebVTT
  in ISO BMFF (ISO/IEC 14496-30: vttc boxes with iden, sttg, payl; vtte, vtta).
* mutate_document mutates a WebVTT, SRT or TTML document: bytes, lines, timestamps, markup, cue
  settings, encodings, XML entities and nesting, and cue counts around the parsers' limits.
"""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable

from tests.fuzz.boxtree import Box, MP4File, full_box, tables

TEXT_HANDLERS = (b"text", b"sbtl", b"subt")
MAX_SAMPLES = 4096  # text tracks are rebuilt only when they are this small
MARKUP = ("<b>bold</b>", "<i><u>x</u></i>", "<c.yellow.bg>c</c>", "<v Bob>voice</v>",
          "<ruby>a<rt>b</rt></ruby>", "<lang fr>mot</lang>", "<00:00:01.000>karaoke", "&amp;&lt;&gt;&nbsp;",
          "&#x1F600;&#0;&#xFFFFFFFF;", "&bogus;", "<b>" * 300, "</i></b>", "<", "a\nb\r\nc\rd", "-->",
          "WEBVTT", "\u202eltr", "\x00", "\U0001f600" * 3, "x" * 5000, "\n\n\n", "{\\an8}",
          "<font color=red>f</font>", "\t \u00a0", "\ud800")
SETTINGS = ("line:0", "line:-1000%", "position:999999%", "size:1e400%", "align:\x00", "vertical:lr",
            "region:x", "line:50%,start position:0%,line-left", "align:middle" * 50, "size:-5%")
TIMES = ("00:00:00.000", "99:59:59.999", "00:60:00.000", "-00:00:01.000", "9999999999:00:00.000",
         "00:00:05,000", "00:00.000", "1e9", "", "00:00:00.0000001", "4294967296:00:00.000",
         "100:00:00.001", "00:00:01:99", "5f", "1.5t", "NaN", "12h", "360000s", "99999999999ms")


SAMPLE_CHOICES = (0, 0, 0, 1, 2, 3, 4, 5, 5, 6, 7)  # 0: a whole sample (its text hostile enough)


def _box(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return struct.pack(">I4s", 8 + len(payload) if size is None else size, kind) + payload


def _text(rng: random.Random) -> str:
    pieces = range(rng.randint(1, 3))
    return "".join(rng.choice(MARKUP) if rng.random() < 0.5 else "plain text " for _ in pieces)


# --- samples of a text track in an MP4 -----------------------------------------------------------


def tx3g_sample(rng: random.Random) -> tuple[bytes, str]:
    """A 3GPP timed text sample, whole or broken in one way."""
    text = _text(rng).encode("utf-8", "surrogatepass")
    choice = rng.choice(SAMPLE_CHOICES)
    if choice == 1:
        text = b"\xfe\xff" + _text(rng).encode("utf-16-be", "surrogatepass") + bytes(rng.randrange(2))
    elif choice == 2:
        text = rng.choice((b"\xff\xfe\xc0", b"\xed\xa0\x80", b"\xe2\x82", b"\xfe\xff\x00"))
    length = len(text) if choice != 3 else rng.choice((0, 1, len(text) + 1, 0xFFFF))
    records = [struct.pack(">HHHBB4s", *rng.choice(((0, 4), (4, 0), (0, 0xFFFF), (0xFFFF, 0xFFFF), (2, 3))),
                           1, rng.choice((1, 2, 4, 7, 0xFF)), 18, b"\xff" * 4)
               for _ in range(rng.choice((1, 1, 2, 3, 1000)))]
    count = len(records) if choice != 4 else rng.choice((0, 0xFFFF, len(records) + 1))
    modifiers = [_box(b"styl", struct.pack(">H", count) + b"".join(records))]
    if choice == 5:
        kind = rng.choice((b"hlit", b"hclr", b"krok", b"dlay", b"href", b"tbox", b"blnk", b"twrp", b"styl"))
        modifiers.append(_box(kind, bytes(rng.randrange(8)), rng.choice((None, 0, 1, 7, 0xFFFFFFFF))))
    sample = struct.pack(">H", length & 0xFFFF) + text + b"".join(modifiers)
    if choice == 6:
        sample = sample[: rng.randrange(3)]
    return sample, f"tx3g sample ({choice}, {len(sample)} bytes)"


def wvtt_sample(rng: random.Random, whole: bool = False) -> tuple[bytes, str]:
    """A WebVTT-in-ISO-BMFF sample: vttc boxes (or vtte), whole or broken in one way."""
    choice = 0 if whole else rng.choice(SAMPLE_CHOICES)

    def cue() -> bytes:
        parts = [_box(b"iden", b"id-1")] if rng.random() < 0.3 else []
        parts += [_box(b"sttg", rng.choice(SETTINGS).encode())] if rng.random() < 0.4 else []
        payload = _text(rng).encode("utf-8", "surrogatepass") if choice != 2 else b"\xff\xfe"
        return _box(b"vttc", b"".join(parts + ([_box(b"payl", payload)] if choice != 1 else [])))

    if choice == 3:
        return _box(rng.choice((b"vtte", b"vtta", b"vttx"))), "wvtt sample (empty/comment)"
    sample = b"".join(cue() for _ in range(rng.choice((1, 1, 2, 300)) if choice != 4 else 1))
    if choice == 4:
        sample = _box(b"vttc", cue())  # a vttc inside a vttc
    elif choice == 5:
        sample = struct.pack(">I", rng.choice((0, 1, 7, len(sample) + 1, 0xFFFFFFFF))) + sample[4:]
    elif choice == 6:
        sample = sample[: rng.randrange(len(sample))]
    return sample, f"wvtt sample ({choice}, {len(sample)} bytes)"


def text_tracks(file: MP4File) -> list[Box]:
    return [t for t in file.tracks()
            if (hdlr := t.find(b"mdia", b"hdlr")) is not None and hdlr.data[8:12] in TEXT_HANDLERS]


def sample_payloads(file: MP4File, stbl: Box) -> list[bytes] | None:
    """The bytes of each sample of a track, read from the mdat through stsc, stsz and stco (None when
    the tables are not plain ones describing at most MAX_SAMPLES samples inside the mdat)."""
    stsz, stsc, stco, mdat = stbl.child(b"stsz"), stbl.child(b"stsc"), stbl.child(b"stco"), file.top(b"mdat")
    base = file.original_media_start
    if stsz is None or stsc is None or stco is None or mdat is None or base is None or len(stsz.data) < 12:
        return None
    uniform, count = struct.unpack_from(">II", stsz.data, 4)
    if count > MAX_SAMPLES or (not uniform and len(stsz.data) < 12 + 4 * count):
        return None
    sizes = [uniform] * count if uniform else list(struct.unpack_from(f">{count}I", stsz.data, 12))
    offsets = [struct.unpack_from(">I", stco.data, at)[0] for at in range(8, len(stco.data) - 3, 4)]
    runs = [struct.unpack_from(">II", stsc.data, at) for at in range(8, len(stsc.data) - 11, 12)]
    payloads: list[bytes] = []
    for chunk, offset in enumerate(offsets, start=1):
        per_chunk = next((n for first, n in reversed(runs) if first <= chunk), 0)
        for _ in range(min(per_chunk, count - len(payloads))):
            start, size = offset - base, sizes[len(payloads)]
            if not 0 <= start <= start + size <= len(mdat.data):
                return None
            payloads.append(mdat.data[start : start + size])
            offset += size
    return payloads if len(payloads) == count else None


def text_samples(file: MP4File, rng: random.Random) -> str | None:
    """A text track's samples rewritten at the end of the mdat, one to three of them hostile."""
    tracks = text_tracks(file)
    trak = rng.choice(tracks) if tracks else None
    stbl = tables(trak) if trak is not None else None
    payloads = sample_payloads(file, stbl) if stbl is not None else None
    stsd = stbl.child(b"stsd") if stbl is not None else None
    if not payloads or stbl is None or stsd is None or not stsd.children or file.original_media_start is None:
        return None
    steps = []
    if stsd.children[0].type != b"wvtt" and rng.random() < 0.3:  # every sample re-written as wvtt
        stsd.children[0] = Box(b"wvtt", bytes(6) + b"\0\1", [Box(b"vttC", b"WEBVTT")])
        payloads = [wvtt_sample(rng, whole=True)[0] if len(p) > 2 else _box(b"vtte") for p in payloads]
        steps.append("sample entry turned into wvtt")
    make: Callable[[random.Random], tuple[bytes, str]] = wvtt_sample if stsd.children[0].type == b"wvtt" \
        else tx3g_sample
    for _ in range(rng.choice((1, 1, 2, 3))):
        index = rng.randrange(len(payloads))
        payloads[index], step = make(rng)
        steps.append(f"sample {index + 1} = {step}")
    mdat = file.top(b"mdat")
    assert mdat is not None
    start = file.original_media_start + len(mdat.data)
    offsets = [start + sum(len(p) for p in payloads[:i]) for i in range(len(payloads))]
    if offsets[-1] + len(payloads[-1]) > 0xFFFFFFFF:
        return None
    mdat.data += b"".join(payloads)
    kept = [c for c in stbl.children or [] if c.type not in (b"stsc", b"stsz", b"stz2", b"stco", b"co64")]
    stbl.children = [*kept, full_box(b"stsc", struct.pack(">IIII", 1, 1, 1, 1)),
                     full_box(b"stsz", struct.pack(f">II{len(payloads)}I", 0, len(payloads),
                                                   *(len(p) for p in payloads))),
                     full_box(b"stco", struct.pack(f">I{len(offsets)}I", len(offsets), *offsets))]
    return f"track {file.tracks().index(trak) + 1}: " + "; ".join(steps)  # type: ignore[arg-type]


# --- sidecar documents ---------------------------------------------------------------------------

_TIMESTAMP = re.compile(rb"\d+(?::\d+)+(?:[.,]\d+)?|\b\d+(?:\.\d+)?(?:ms|s|h|m|f|t)\b")
_LINE_END = re.compile(rb"\r\n|\r|\n")


def mutate_document(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One to three operators on a subtitle document; the new bytes and what was done."""
    steps = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        operator = rng.choices(DOCUMENT_OPERATORS, weights=DOCUMENT_WEIGHTS)[0]
        data, step = operator(data, rng)
        steps.append(f"{operator.__name__}: {step}")
    return data, "; ".join(steps)


def replace_timestamp(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    found = list(_TIMESTAMP.finditer(data))
    if not found:
        return flip_bytes(data, rng)
    match = rng.choice(found)
    value = rng.choice(TIMES).encode()
    step = f"{match[0]!r} -> {value!r} at {match.start()}"
    return data[: match.start()] + value + data[match.end() :], step


def insert_text(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Markup, cue settings (after a WebVTT timing) or an XML attribute put somewhere in a line."""
    lines = _LINE_END.split(data)
    index = rng.randrange(len(lines))
    piece = rng.choice(MARKUP + SETTINGS if b"-->" in lines[index] else MARKUP)
    if b"<p " in lines[index] and rng.random() < 0.5:
        piece = rng.choice(('region="nowhere"', 'style="a b c"', 'dur="-1s"', 'tts:origin="1e400% 0%"',
                            'xml:space="preserve"', 'begin="00:00:01:99" ttp:frameRate="0"')) + " "
        at = lines[index].index(b"<p ") + 3
    else:
        at = rng.randrange(len(lines[index]) + 1)
    encoded = piece.encode("utf-8", "surrogatepass")
    lines[index] = lines[index][:at] + encoded + lines[index][at:]
    return b"\n".join(lines), f"line {index + 1}: {piece[:40]!r} inserted at {at}"


def edit_lines(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A line (or a block of lines) deleted, duplicated or swapped with another."""
    lines = _LINE_END.split(data)
    first = rng.randrange(len(lines))
    last = min(first + rng.choice((1, 1, 3, 4)), len(lines))
    block = lines[first:last]
    choice = rng.randrange(3)
    if choice == 0:
        del lines[first:last]
    elif choice == 1:
        lines[last:last] = block * rng.choice((1, 2, 100))
    else:
        other = rng.randrange(len(lines))
        lines[first], lines[other] = lines[other], lines[first]
    return b"\n".join(lines), f"lines {first + 1}-{last} {('deleted', 'duplicated', 'swapped')[choice]}"


def many_cues(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The cues repeated (with their times) up to just past MAX_CUES, or nested TTML spans."""
    if b"<p " in data and rng.random() < 0.5:
        depth = rng.choice((99, 101, 300))
        nested = b"<span>" * depth + b"deep" + b"</span>" * depth
        return data.replace(b"</p>", nested + b"</p>", 1), f"spans nested {depth} deep"
    copies = rng.choice((2, 50, 7200))  # 7 cues * 7200 = 50,400 > MAX_CUES (50,000)
    head, _, body = data.partition(b"\n\n") if not data.lstrip().startswith(b"<") else (b"", b"", data)
    if b"<p " in body:
        paragraphs = re.findall(rb"<p [^>]*>.*?</p>", body)
        body = body.replace(paragraphs[0], b"".join(paragraphs) * copies, 1) if paragraphs else body
        return body, f"paragraphs x{copies}"
    return head + b"\n\n" + (body.rstrip() + b"\n\n") * copies, f"cues x{copies}"


def xml_entities(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """A DOCTYPE with an entity expansion bomb, an external entity or a parameter entity."""
    if not data.lstrip().startswith(b"<?xml") and b"<tt" not in data:
        return flip_bytes(data, rng)
    choice = rng.randrange(3)
    doctype = [b'<!DOCTYPE tt [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10) for i in range(8)) + b"]>",
        b'<!DOCTYPE tt [<!ENTITY b SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE tt [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'][choice]
    use = (b"&i;", b"&b;", b"")[choice]
    at = data.find(b"<tt")
    data = data[:at] + doctype + data[at:]
    step = ("entity bomb", "external entity", "parameter entity")[choice]
    return data.replace(b"</p>", use + b"</p>", 1), step


def encoding(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    choice = rng.randrange(4)
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    if choice == 0:
        codec = rng.choice(("utf-16", "utf-16-le", "utf-16-be"))
        return text.encode(codec), f"re-encoded as {codec} (BOM: {codec == 'utf-16'})"
    if choice == 1:
        return b"\xef\xbb\xbf" + data, "UTF-8 byte order mark added"
    if choice == 2:
        ending = rng.choice((b"\r", b"\r\n", b"\n\r", b"\x0b"))
        return ending.join(_LINE_END.split(data)), f"line ends {ending!r}"
    return text.encode("latin-1", "replace"), "re-encoded as Latin-1"


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if not data:
        return b"\x00", "a NUL byte"
    flipped = bytearray(data)
    positions = sorted(rng.randrange(len(data)) for _ in range(rng.randint(1, 6)))
    for position in positions:
        flipped[position] = rng.choice((0, 0x0A, 0x0D, 0x3C, 0x3E, 0x26, 0xFF, 0xC3, rng.randrange(256)))
    return bytes(flipped), f"bytes at {positions}"


def cut(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The document truncated, or a span of it deleted."""
    at = rng.randrange(len(data) + 1)
    if rng.random() < 0.5:
        return data[:at], f"truncated at {at}"
    end = min(at + rng.choice((1, 3, 20, 200)), len(data))
    return data[:at] + data[end:], f"bytes {at}-{end} deleted"


DOCUMENT_OPERATORS = [replace_timestamp, insert_text, edit_lines, many_cues, xml_entities, encoding,
                      flip_bytes, cut]
DOCUMENT_WEIGHTS = [25, 20, 15, 3, 4, 6, 15, 8]
