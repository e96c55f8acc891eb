"""WebVTT in and out (W3C WebVTT: 4 syntax, 6.1 file parsing, 6.3 settings; RFC 8216 3.5 for HLS).

Parsing follows the spec's block loop: after the "WEBVTT" line and its header, blocks are separated
by blank lines; a block whose first or second line holds "-->" is a cue (an identifier may precede
the timing line), any other block (NOTE, STYLE, REGION, junk) is skipped, and a further "-->" line
ends a cue early and starts the next one. A cue with unreadable timings is skipped, as 6.1 does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vodorigin.errors import MediaError
from vodorigin.text.cues import Cue, check_count, make_cue
from vodorigin.text.markup import canonical, cue_text_runs

LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SIGNATURE = re.compile(r"WEBVTT(?:[ \t]|$)")
_TIMESTAMP = r"\d{1,9}:\d{2}(?::\d{2})?\.\d{3}"
_TIMING = re.compile(rf"[ \t]*({_TIMESTAMP})[ \t]*-->[ \t]*({_TIMESTAMP})(?:[ \t]+(.*))?$")
_SETTING_VALUES = {  # 4.4 / 6.3; region is left out because REGION blocks are not kept
    "vertical": re.compile(r"rl|lr"),
    "line": re.compile(r"(-?\d+|(\d{1,2}(\.\d+)?|100(\.0+)?)%)(,(start|center|end))?"),
    "position": re.compile(r"(\d{1,2}(\.\d+)?|100(\.0+)?)%(,(line-left|center|line-right))?"),
    "size": re.compile(r"(\d{1,2}(\.\d+)?|100(\.0+)?)%"),
    "align": re.compile(r"start|center|end|left|right"),
}


def parse_timestamp(text: str) -> int:
    """A WebVTT timestamp ([hh:]mm:ss.ttt, 4.3; minutes and seconds 0-59) -> milliseconds."""
    parts = text.replace(".", ":").split(":")
    if len(parts) == 3:
        if len(parts[0]) != 2:
            raise MediaError(f"WebVTT timestamp {text!r}: minutes must be two digits")
        parts.insert(0, "0")
    hours, minutes, seconds, millis = (int(p) for p in parts)
    if minutes > 59 or seconds > 59:
        raise MediaError(f"WebVTT timestamp {text!r}: minutes and seconds must be 0-59")
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis


def format_timestamp(ms: int) -> str:
    """Milliseconds -> hh:mm:ss.ttt (hours always present, two digits or more)."""
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def clean_settings(settings: str) -> str:
    """Cue settings -> only the valid ones (6.3), one per name (the last wins), space-separated."""
    kept: dict[str, str] = {}
    for setting in settings.split():
        name, colon, value = setting.partition(":")
        pattern = _SETTING_VALUES.get(name)
        if colon and pattern is not None and pattern.fullmatch(value):
            kept[name] = value
    return " ".join(f"{name}:{value}" for name, value in kept.items())


def is_top(settings: str) -> bool:
    """Do the settings put the cue in the upper half (a line number >= 0, or a line below 50%)?"""
    for setting in clean_settings(settings).split():
        name, _, value = setting.partition(":")
        if name == "line":
            line = value.split(",")[0]
            return float(line[:-1]) < 50 if line.endswith("%") else not line.startswith("-")
    return False


def parse_webvtt(text: str) -> list[Cue]:
    """A WebVTT file (BOM already removed) -> cues in document order."""
    lines = LINE_BREAK.split(text)
    if not _SIGNATURE.match(lines[0]):
        raise MediaError("WebVTT: the file does not start with the WEBVTT signature")
    position = _end_of_header(lines)
    cues: list[Cue] = []
    while position < len(lines):
        block, position = _next_block(lines, position)
        cue = _block_cue(block)
        if cue is not None:
            cues.append(cue)
            check_count(len(cues))
    return cues


def _end_of_header(lines: list[str]) -> int:
    """The header runs from the signature line to a blank line or to a line holding "-->" (6.1)."""
    position = 1
    while position < len(lines) and lines[position] and "-->" not in lines[position]:
        position += 1
    return position


def _next_block(lines: list[str], position: int) -> tuple[list[str], int]:
    """The next block's lines (blank lines before it skipped) and the position after it."""
    while position < len(lines) and not lines[position]:
        position += 1
    block: list[str] = []
    seen_arrow = False
    while position < len(lines) and lines[position]:
        line = lines[position]
        if "-->" in line:
            if seen_arrow or len(block) > 1:
                break  # a new cue starts here without a blank line before it
            seen_arrow = True
        block.append(line)
        position += 1
    return block, position


def _block_cue(block: list[str]) -> Cue | None:
    arrow = next((n for n, line in enumerate(block[:2]) if "-->" in line), None)
    if arrow is None:
        return None  # NOTE, STYLE, REGION or an unreadable block
    timing = _TIMING.match(block[arrow])
    if timing is None:
        return None
    try:
        start, end = parse_timestamp(timing.group(1)), parse_timestamp(timing.group(2))
    except MediaError:
        return None
    runs = cue_text_runs("\n".join(block[arrow + 1 :]))
    identifier = block[0] if arrow else ""
    return make_cue(start, end, runs, clean_settings(timing.group(3) or ""), identifier)


def webvtt_document(cues: Iterable[Cue], timestamp_map: int | None = None) -> bytes:
    """A WebVTT file of these cues, in the order given (W3C WebVTT 4.1).

    timestamp_map, a 90 kHz MPEG-2 TS time, adds the header `X-TIMESTAMP-MAP=MPEGTS:<n>,LOCAL:
    00:00:00.000` an HLS WebVTT segment needs (RFC 8216 3.5): cue time 0 is TS time n. Cue text,
    settings and identifier are written in their canonical form, so no cue can break the file.
    """
    header = "WEBVTT\n"
    if timestamp_map is not None:
        if timestamp_map < 0:
            raise ValueError(f"X-TIMESTAMP-MAP MPEGTS must be >= 0, not {timestamp_map}")
        header += f"X-TIMESTAMP-MAP=MPEGTS:{timestamp_map},LOCAL:00:00:00.000\n"
    return "".join([header, *(_cue_block(cue) for cue in cues)]).encode()


def _cue_block(cue: Cue) -> str:
    identifier = cue.identifier.strip()
    if "-->" in identifier or "\n" in identifier or "\r" in identifier:
        identifier = ""
    settings = clean_settings(cue.settings)
    timing = f"{format_timestamp(cue.start_ms)} --> {format_timestamp(cue.end_ms)}"
    lines = [identifier] if identifier else []
    lines += [f"{timing} {settings}" if settings else timing, canonical(cue.text)]
    return "\n" + "\n".join(lines) + "\n"
