"""HTTP Range (RFC 9110 14.2): one range per request; several are answered with the whole body."""

from __future__ import annotations

import re

from vodorigin.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None to send the whole body; 416 when unsatisfiable."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # a multi-range or malformed header may be ignored (RFC 9110 14.2)
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text or int(last_text) == 0:
            raise RangeNotSatisfiable(f"unsatisfiable range {header!r}", size)
        length = min(int(last_text), size)
        return size - length, size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if last_text and int(last_text) < first:
        return None  # invalid range: ignore it
    if first >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts past the end ({size} bytes)", size)
    return first, last
