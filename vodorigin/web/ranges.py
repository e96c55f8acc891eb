"""HTTP Range (RFC 9110 14.2): one range per request; several are answered with the whole body."""

from __future__ import annotations

import re

from vodorigin.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)\Z")
MAX_DIGITS = 18  # positions beyond 10^18 bytes mean "past any end"; int() of long strings is costly


def _position(text: str) -> int:
    return int(text) if len(text) <= MAX_DIGITS else 10**MAX_DIGITS


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None to send the whole body; 416 when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # a multi-range or malformed header may be ignored (RFC 9110 14.2)
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text or _position(last_text) == 0:
            raise RangeNotSatisfiable(f"unsatisfiable range {header[:80]!r}", size)
        length = min(_position(last_text), size)
        return size - length, size - 1
    first = _position(first_text)
    if last_text and _position(last_text) < first:
        return None  # invalid range: ignore it
    last = min(_position(last_text), size - 1) if last_text else size - 1
    if first >= size:
        raise RangeNotSatisfiable(f"range {header[:80]!r} starts past the end ({size} bytes)", size)
    return first, last
