"""SubRip (.srt) in: numbered blocks of `hh:mm:ss,mmm --> hh:mm:ss,mmm` and text.

SubRip has no formal specification; this reads what players accept:

* a cue starts at each timing line; its text is every line up to the next timing line, less blank
  lines and less the cue number just before that timing line (so missing numbers, missing or extra
  blank lines, CRLF and '.' for ',' are all fine); anything after the end time (coordinates) is ignored;
* text is plain text (no character references); `<b>`, `<i>`, `<u>` (any case) are kept, `<font ...>`
  and `<s>` are dropped with their text kept, other angle brackets are text;
* ASS override blocks (`{\\an8}`, `{\\pos(..)}`...) never show as text: the first `\\anN` sets the
  position (numpad layout, ASS "Alignment") and the rest are dropped.
"""

from __future__ import annotations

import re

from vodorigin.text.cues import Cue, check_count, make_cue
from vodorigin.text.markup import NO_STYLE, Run
from vodorigin.text.webvtt import LINE_BREAK

_TIME = r"(\d{1,9}):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,9}))?"
_TIMING = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}")
_DETECT = re.compile(rf"\s*(\d+\s*\n)?{_TIME}[ \t]*-->")  # the first cue of a SubRip file
_CUE_NUMBER = re.compile(r"\s*\d+\s*")
_MARKUP = re.compile(r"<(/?)(b|i|u|font|s)(?:\s[^<>]*)?>|\{\\[^{}]*\}", re.IGNORECASE)
_ALIGNMENT = re.compile(r"\\an([1-9])", re.IGNORECASE)
_ROWS = {7: "line:0", 8: "line:0", 9: "line:0", 4: "line:50%,center", 5: "line:50%,center",
         6: "line:50%,center"}  # numpad rows: 7-9 top, 4-6 middle, 1-3 bottom (the default)
_COLUMNS = {1: "position:10% align:start", 4: "position:10% align:start", 7: "position:10% align:start",
            3: "position:90% align:end", 6: "position:90% align:end", 9: "position:90% align:end"}


def looks_like_srt(text: str) -> bool:
    """Does the text open with a SubRip cue (an optional number, then a timing line)?"""
    return _DETECT.match(text[:1024]) is not None


def parse_srt(text: str) -> list[Cue]:
    """A SubRip file (BOM already removed) -> cues in document order."""
    lines = LINE_BREAK.split(text)
    timings = [(n, m) for n, line in enumerate(lines) if (m := _TIMING.match(line))]
    cues: list[Cue] = []
    for index, (line_number, match) in enumerate(timings):
        next_timing = timings[index + 1][0] if index + 1 < len(timings) else len(lines)
        cue = _cue(match, _text_lines(lines[line_number + 1 : next_timing], index + 1 < len(timings)))
        if cue is not None:
            cues.append(cue)
            check_count(len(cues))
    return cues


def _text_lines(lines: list[str], numbered_next: bool) -> list[str]:
    """A cue's text lines: blank lines dropped, and the next cue's number when one follows."""
    kept = [line for line in lines if line.strip()]
    if numbered_next and kept and _CUE_NUMBER.fullmatch(kept[-1]):
        kept.pop()
    return kept


def _milliseconds(hours: str, minutes: str, seconds: str, fraction: str | None) -> int:
    millis = int((fraction or "0")[:3].ljust(3, "0"))  # a decimal fraction of a second
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + millis


def _cue(timing: re.Match[str], lines: list[str]) -> Cue | None:
    groups = timing.groups()
    start, end = _milliseconds(*groups[:4]), _milliseconds(*groups[4:])
    runs, settings = _runs("\n".join(lines))
    return make_cue(start, end, runs, settings)


def _runs(text: str) -> tuple[list[Run], str]:
    """SubRip text -> runs (b/i/u by open/close counts) and the WebVTT settings of its \\anN."""
    runs: list[Run] = []
    depth = {"b": 0, "i": 0, "u": 0}
    alignment = 0
    position = 0
    for match in _MARKUP.finditer(text):
        runs.append(Run(text[position : match.start()], _styles(depth)))
        position = match.end()
        if match.group(2) is None:  # an ASS override block
            found = _ALIGNMENT.search(match.group())
            alignment = alignment or (int(found.group(1)) if found else 0)
            continue
        name = match.group(2).lower()
        if name in depth:
            depth[name] = max(0, depth[name] + (-1 if match.group(1) else 1))
    runs.append(Run(text[position:], _styles(depth)))
    return runs, " ".join(s for s in (_ROWS.get(alignment), _COLUMNS.get(alignment)) if s)


def _styles(depth: dict[str, int]) -> frozenset[str]:
    return frozenset(name for name, count in depth.items() if count) or NO_STYLE
