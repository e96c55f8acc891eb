"""Cue text: the small WebVTT markup every subtitle input is reduced to (W3C WebVTT 4.2.2).

A cue's text is WebVTT cue text restricted to the class-less `<b>`, `<i>` and `<u>` spans and the
escapes `&amp;`, `&lt;`, `&gt;`. Parsers describe what they read as `Run`s (plain text plus a set of
styles) and `render` writes the one canonical markup for them:

* lines are trimmed and empty lines dropped (an empty line would end a WebVTT cue, 6.1);
* tags open in the order b, i, u and close innermost first, per line, so every line is balanced;
* `&`, `<` and `>` are always escaped (so the text never holds "-->", 4.2.2);
* control characters (and U+FFFE/U+FFFF) are removed, so the text is also valid XML 1.0 character
  data for TTML (XML 1.0 2.2); U+2028/U+2029 become line breaks.

`cue_text_runs` reads WebVTT cue text back into runs (the cue text parsing rules of W3C WebVTT 6.4,
simplified: `<c>`, `<v>`, `<lang>`, `<ruby>`, `<rt>` and timestamp tags are dropped with their text
kept; a style is on while more of its start tags than end tags have been seen).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

STYLE_TAGS = ("b", "i", "u")  # the order in which render opens them
NO_STYLE: frozenset[str] = frozenset()
_ALL_STYLES = frozenset(STYLE_TAGS)

_REMOVED = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                              *range(0xD800, 0xE000), 0xFFFE, 0xFFFF]}
_TRANSLATION = str.maketrans({**_REMOVED, 0x0D: "\n", 0x2028: "\n", 0x2029: "\n"})
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_TOKEN = re.compile(r"<([^>]*)>?|([^<]+)")  # a tag runs to ">" or to the end of the text (6.4)
_TAG_NAME_END = re.compile(r"[\s.]")  # a start tag's name ends at a class or an annotation


@dataclass(frozen=True, slots=True)
class Run:
    """Plain text (line breaks as "\\n") shown with a set of styles out of STYLE_TAGS."""

    text: str
    styles: frozenset[str] = NO_STYLE


def escape(text: str) -> str:
    """Plain text -> WebVTT cue text (the escapes of WebVTT 4.2.2)."""
    return text.translate(_ESCAPES)


def render(runs: Iterable[Run]) -> str:
    """The canonical cue text for runs: trimmed non-empty lines, balanced tags, escaped text."""
    return "\n".join(_render_line(line) for line in _lines(runs))


def canonical(text: str) -> str:
    """Any WebVTT cue text -> the canonical form render gives (idempotent)."""
    return render(cue_text_runs(text))


def plain_text(text: str) -> str:
    """Cue text without its tags and escapes (what a viewer reads)."""
    return "".join(run.text for run in cue_text_runs(text))


def cue_text_runs(text: str) -> list[Run]:
    """WebVTT cue text -> runs: b/i/u kept, other tags dropped, character references decoded."""
    runs: list[Run] = []
    depth = dict.fromkeys(STYLE_TAGS, 0)
    for match in _TOKEN.finditer(text):
        tag, chars = match.group(1), match.group(2)
        if chars is not None:
            runs.append(Run(html.unescape(chars), _styles(depth)))
        elif tag.startswith("/"):
            name = tag[1:].strip().lower()
            if depth.get(name):
                depth[name] -= 1
        else:
            name = _TAG_NAME_END.split(tag, maxsplit=1)[0].lower()
            if name in depth:
                depth[name] += 1
    return runs


def _styles(depth: dict[str, int]) -> frozenset[str]:
    return frozenset(name for name, count in depth.items() if count > 0)


def _lines(runs: Iterable[Run]) -> Iterator[list[Run]]:
    """Runs split at line breaks, each line trimmed and merged; empty lines left out."""
    line: list[Run] = []
    for run in runs:
        parts = run.text.translate(_TRANSLATION).split("\n")
        for index, part in enumerate(parts):
            if index:
                yield from _trimmed(line)
                line = []
            if part:
                line.append(Run(part, run.styles & _ALL_STYLES))
    yield from _trimmed(line)


def _trimmed(line: list[Run]) -> Iterator[list[Run]]:
    """The line without leading/trailing whitespace and with neighbouring equal styles merged."""
    merged: list[Run] = []
    for run in line:
        if merged and merged[-1].styles == run.styles:
            merged[-1] = Run(merged[-1].text + run.text, run.styles)
        else:
            merged.append(run)
    while merged and not merged[0].text.strip():
        merged.pop(0)
    while merged and not merged[-1].text.strip():
        merged.pop()
    if merged:
        merged[0] = Run(merged[0].text.lstrip(), merged[0].styles)
        merged[-1] = Run(merged[-1].text.rstrip(), merged[-1].styles)
        yield merged


def _render_line(line: list[Run]) -> str:
    """One line's runs as text with properly nested b/i/u tags (a stack of open tags)."""
    out: list[str] = []
    stack: list[str] = []
    for run in line:
        keep = next((n for n, tag in enumerate(stack) if tag not in run.styles), len(stack))
        while len(stack) > keep:
            out.append(f"</{stack.pop()}>")
        for tag in STYLE_TAGS:
            if tag in run.styles and tag not in stack:
                stack.append(tag)
                out.append(f"<{tag}>")
        out.append(escape(run.text))
    out.extend(f"</{tag}>" for tag in reversed(stack))
    return "".join(out)
