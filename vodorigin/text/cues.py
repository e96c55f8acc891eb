"""One cue model for every subtitle input, its limits, and the time arithmetic the writers share.

Times are integer milliseconds on the presentation timeline. A cue is shown over [start_ms, end_ms).
Rules every parser follows (so every packager sees the same cues):

* a cue that would show nothing is dropped, not an error: end <= start (WebVTT 4.2.1 requires
  end > start; such cues are never active in HTML's text track model) or no text left after the
  markup is reduced (markup.render);
* cues are kept in WebVTT/HTML "text track cue order": start time ascending, then end time
  descending, then document order (HTML 4.8.11.11.5);
* overlapping cues are kept as they are; the writers carry them (several vttc in one wvtt sample,
  several p in one TTML document);
* limits: MAX_INPUT_BYTES per document, MAX_CUES per document, MAX_CUE_TEXT characters of markup
  per cue, MAX_TIME_MS for any time; breaking one raises LimitExceeded (never truncates silently).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.text.markup import Run, render

MAX_INPUT_BYTES = 8 << 20  # a feature film's subtitles are ~100 KB in any of the formats
MAX_CUES = 50_000  # a two-hour film has 1,000-2,000
MAX_CUE_TEXT = 4096  # characters of cue text (markup included); a full screen is ~200
MAX_TIME_MS = 100 * 3600 * 1000  # 100 hours


@dataclass(frozen=True, slots=True)
class Cue:
    """One cue: its interval, its WebVTT cue text (markup.render's form), settings and identifier.

    settings are WebVTT cue settings (W3C WebVTT 4.4) in webvtt.clean_settings' form, e.g.
    "line:0 align:start"; identifier is a WebVTT cue identifier (4.2.1) or "".
    """

    start_ms: int
    end_ms: int
    text: str
    settings: str = ""
    identifier: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.start_ms < self.end_ms:
            raise MediaError(f"cue [{self.start_ms}, {self.end_ms}) ms: must start at >= 0 and end later")


def make_cue(start_ms: int, end_ms: int, runs: Iterable[Run], settings: str = "",
             identifier: str = "") -> Cue | None:
    """A cue from parsed runs, or None when it shows nothing (end <= start, no text); limits checked."""
    check_time(start_ms)
    check_time(end_ms)
    if end_ms <= start_ms or start_ms < 0:
        return None
    text = render(runs)
    if len(text) > MAX_CUE_TEXT:
        raise LimitExceeded(f"cue at {start_ms} ms: {len(text)} characters of text, more than {MAX_CUE_TEXT}")
    return Cue(start_ms, end_ms, text, settings, identifier) if text else None


def check_time(ms: int) -> None:
    if ms > MAX_TIME_MS:
        raise LimitExceeded(f"subtitle time {ms} ms is past the limit of {MAX_TIME_MS} ms")


def check_count(count: int) -> None:
    if count > MAX_CUES:
        raise LimitExceeded(f"more than {MAX_CUES} subtitle cues in one document")


def check_input_size(size: int) -> None:
    if size > MAX_INPUT_BYTES:
        raise LimitExceeded(f"subtitle document of {size} bytes is over the {MAX_INPUT_BYTES}-byte limit")


def sorted_cues(cues: Iterable[Cue]) -> list[Cue]:
    """Cues in text track cue order (start ascending, end descending, then as given); count checked."""
    ordered = sorted(cues, key=lambda cue: (cue.start_ms, -cue.end_ms))
    check_count(len(ordered))
    return ordered


def cues_between(cues: Sequence[Cue], start_ms: int, end_ms: int) -> list[Cue]:
    """The cues (sorted by start) active at some time of [start_ms, end_ms), in order.

    A cue that crosses the interval's edges is returned whole: HLS WebVTT segments repeat such a
    cue in each segment it overlaps (RFC 8216 3.5 lets a cue span segments); the fMP4 writers cut it.
    """
    found = []
    for cue in cues:
        if cue.start_ms >= end_ms:
            break
        if cue.end_ms > start_ms:
            found.append(cue)
    return found


def constant_intervals(cues: Sequence[Cue], start_ms: int, end_ms: int) -> list[tuple[int, int, list[Cue]]]:
    """[start_ms, end_ms) cut where a cue starts or ends: (start, end, cues active throughout), in order.

    The intervals tile [start_ms, end_ms) with no gap or overlap; an interval with no active cue has
    an empty list. This is the sample structure of ISO/IEC 14496-30 5.2 (a WebVTT sample holds the
    cues active over its whole duration).
    """
    if end_ms <= start_ms:
        return []
    overlapping = cues_between(cues, start_ms, end_ms)
    edges = {start_ms, end_ms}
    for cue in overlapping:
        edges.update(t for t in (cue.start_ms, cue.end_ms) if start_ms < t < end_ms)
    points = sorted(edges)
    intervals: list[tuple[int, int, list[Cue]]] = []
    active: list[Cue] = []
    waiting = iter(overlapping)
    upcoming = next(waiting, None)
    for a, b in zip(points, points[1:], strict=False):
        active = [cue for cue in active if cue.end_ms > a]  # every end is an edge: these last to b
        while upcoming is not None and upcoming.start_ms <= a:
            active.append(upcoming)
            upcoming = next(waiting, None)
        intervals.append((a, b, list(active)))
    return intervals
