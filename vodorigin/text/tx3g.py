"""3GPP timed text samples ('tx3g', ffmpeg's mov_text) -> cue text (3GPP TS 26.245 5.17).

A sample is `text_length:u16`, that many bytes of text (UTF-8, or UTF-16 when it starts with the
byte order mark U+FEFF), then modifier boxes. Of those only 'styl' (5.17.1.1) is read: its records
`startChar:u16 endChar:u16 font_ID:u16 face_style_flags:u8 font_size:u8 text_color_rgba:u8[4]`
give bold (flag 1), italic (2) and underline (4) over [startChar, endChar) counted in characters,
not bytes (ffmpeg writes them so too). Records past the text are clamped to it; records that end
before they start are ignored. Other modifiers (highlight, karaoke, text box...) are skipped.
"""

from __future__ import annotations

import struct

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.mp4.boxes import iter_boxes
from vodorigin.text.cues import MAX_CUE_TEXT
from vodorigin.text.markup import Run, render

STYLE_RECORD = struct.Struct(">HHHBB4s")  # 12 bytes
_FACE_FLAGS = (("b", 0x01), ("i", 0x02), ("u", 0x04))  # face_style_flags (TS 26.245 5.16)


def decode_tx3g_sample(sample: bytes) -> str:
    """One tx3g sample -> cue text (markup.render's form); "" for an empty sample."""
    if len(sample) < 2:
        raise MediaError(f"tx3g sample of {len(sample)} bytes has no text length")
    (length,) = struct.unpack_from(">H", sample)
    if 2 + length > len(sample):
        raise MediaError(f"tx3g sample: text of {length} bytes overruns the {len(sample)}-byte sample")
    text = _decode(sample[2 : 2 + length])
    records = _style_records(sample, 2 + length)
    cue_text = render(_styled_runs(text, records))
    if len(cue_text) > MAX_CUE_TEXT:
        raise LimitExceeded(f"tx3g sample: {len(cue_text)} characters of text, more than {MAX_CUE_TEXT}")
    return cue_text


def _decode(raw: bytes) -> str:
    try:
        if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
            return raw.decode("utf-16")
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MediaError(f"tx3g sample: text is not UTF-8/UTF-16 ({exc.reason} at {exc.start})") from None


def _style_records(sample: bytes, start: int) -> list[tuple[int, int, int]]:
    """(startChar, endChar, face_style_flags) of the sample's 'styl' boxes."""
    records = []
    for box in iter_boxes(sample, start, len(sample), "tx3g sample"):
        if box.type != b"styl":
            continue
        if box.end - box.payload_start < 2:
            raise MediaError("tx3g styl: no entry count")
        (count,) = struct.unpack_from(">H", sample, box.payload_start)
        if box.payload_start + 2 + count * STYLE_RECORD.size > box.end:
            raise MediaError(f"tx3g styl: {count} style records overrun the box")
        for index in range(count):
            first, end, _, flags, _, _ = STYLE_RECORD.unpack_from(sample, box.payload_start + 2 + 12 * index)
            records.append((first, end, flags))
    return records


def _style_changes(length: int, records: list[tuple[int, int, int]]) -> dict[int, dict[str, int]]:
    """character offset -> {style: +1 where a record's style starts, -1 where it stops}."""
    changes: dict[int, dict[str, int]] = {}
    for first, end, flags in records:
        first, end = min(first, length), min(end, length)
        for name, bit in _FACE_FLAGS:
            if flags & bit and first < end:
                changes.setdefault(first, {})[name] = changes.get(first, {}).get(name, 0) + 1
                changes.setdefault(end, {})[name] = changes.get(end, {}).get(name, 0) - 1
    return changes


def _styled_runs(text: str, records: list[tuple[int, int, int]]) -> list[Run]:
    """The text cut where a style starts or stops, each piece with the styles over it (a sweep)."""
    changes = _style_changes(len(text), records)
    runs: list[Run] = []
    depth = {name: 0 for name, _ in _FACE_FLAGS}
    position = 0
    for edge in sorted({*changes, len(text)}):
        if edge > position:
            runs.append(Run(text[position:edge], frozenset(n for n, d in depth.items() if d > 0)))
            position = edge
        for name, delta in changes.get(edge, {}).items():
            depth[name] += delta
    return runs
