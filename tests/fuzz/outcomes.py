"""What one request of the harness ends in, how findings are named, and the budgets that bound them.

Outcomes of one request (a "step"):
* ok, error: it worked, or it raised a VodError (a clean 4xx/5xx response): both expected. A step
  may expect less: a sidecar subtitle document must give cues or a MediaError, nothing else;
* crash: any other exception (IndexError, struct.error, ZeroDivisionError, RecursionError, a
  CuesNeeded left after the cues were loaded...). The web layer answers struct.error,
  ArithmeticError, LookupError and ValueError with a 422 as a safety net; here they are bugs;
* warning: a warning (numpy overflow...), raised as an error here as pytest's filterwarnings does;
* slow: a request used more than the CPU budget of one request (signed by its kind), or the
  input's requests together more than the budget of one input (signed "slow@input": cheap
  requests, but so many of them);
* memory: MemoryError (under the runner's address-space limit), or a step whose peak resident
  memory grew by more than the threshold; both are signed by the request kind, so that one bug
  keeps one signature whichever limit a machine hits first;
* size: a media segment whose rendered length differs from the size its plan announced (the server
  sends that size as Content-Length before rendering);
* range: a progressive-download body referring to bytes outside the file (the server finds out
  only while streaming, after it has sent 200 and Content-Length);
* cues: a subtitle document parsed (or an embedded track's samples decoded) into cues that break
  the cue model's rules (text track cue order, the limits of vodorigin/text/cues.py), or that
  read a file they name (XML entities).
"""

from __future__ import annotations

import re
import signal
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vodorigin
from vodorigin.errors import VodError
from vodorigin.text import MAX_CUE_TEXT, MAX_CUES, MAX_TIME_MS, Cue

EXPECTED = ("ok", "error")
FINDINGS = ("crash", "warning", "slow", "memory", "size", "range", "cues")
PACKAGE_DIR = str(Path(vodorigin.__file__).resolve().parent)
LEAKED_FILE = "root:x:0:0"  # what /etc/passwd, named by an XML entity of a mutated TTML, would show


class CpuBudgetExceeded(BaseException):  # noqa: N818 (a BaseException so that no `except Exception` eats it)
    """Raised by the profiling timer when a request (or an input's requests) used up their CPU time."""


class SizeMismatch(Exception):  # noqa: N818
    """A segment rendered to a length other than its planned size."""


class RangeOutsideFile(Exception):  # noqa: N818
    """A progressive-download part that the server could not read while streaming."""


class SkeletonMismatch(Exception):  # noqa: N818
    """A moov's skeleton parsed otherwise than the moov itself (inprocess.compare_skeleton)."""


class BrokenCues(Exception):  # noqa: N818
    """Cues that break the rules every subtitle parser promises (vodorigin/text/cues.py)."""


@dataclass
class Outcome:
    step: str  # the request, e.g. "hls seg-3-v1-a1.ts"
    kind: str  # ok, error, or one of FINDINGS
    detail: str = ""  # exception type and message
    signature: str = ""  # what findings are deduplicated by
    traceback: str = ""
    cpu_seconds: float = 0.0


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    cpu_seconds: float = 0.0  # CPU time of all the input's steps

    @property
    def findings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in FINDINGS]

    @property
    def slowest_step(self) -> float:
        return max((o.cpu_seconds for o in self.outcomes), default=0.0)


def check_cue_list(cues: Sequence[Cue]) -> Sequence[Cue]:
    """Cues as every subtitle input promises them: in text track cue order (start ascending, end
    descending), within MAX_CUES, MAX_TIME_MS and MAX_CUE_TEXT, with some text; no file's content."""
    if len(cues) > MAX_CUES:
        raise BrokenCues(f"{len(cues)} cues, more than MAX_CUES")
    order = [(cue.start_ms, -cue.end_ms) for cue in cues]
    if order != sorted(order):
        raise BrokenCues("cues out of text track cue order")
    for cue in cues:
        if not 0 <= cue.start_ms < cue.end_ms <= MAX_TIME_MS or len(cue.text) > MAX_CUE_TEXT or not cue.text:
            raise BrokenCues(f"cue {cue!r:.200} breaks the limits")
        if LEAKED_FILE in cue.text:
            raise BrokenCues("cue text read from a file an XML entity names")
    return cues


@contextmanager
def cpu_budget(seconds: float) -> Iterator[None]:
    """SIGPROF after `seconds` of process CPU time raises CpuBudgetExceeded (main thread only)."""
    if seconds <= 0 or signal.getsignal(signal.SIGPROF) is None:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise CpuBudgetExceeded()

    try:
        previous = signal.signal(signal.SIGPROF, expire)
    except ValueError:  # not the main thread: no budget
        yield
        return
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


# --- classification ------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Numbers replaced by N, so that seg-3 and seg-7 of one request kind share a signature (digits
    inside a word stay: m3u8, v1, a1)."""
    return re.sub(r"(?<![A-Za-z])\d+|(?<=Frag)\d+", "N", text)


def request_kind(step: str) -> str:
    """The kind of request of a step, for findings without a telling frame (slow, size, range...):
    "hls seg-157.ts" -> "hls seg", "dash segmentlist fragment-2-v1.m4s" -> "dash fragment",
    "hls[urlset] seg-2-f2-t1.vtt" -> "hls seg text" (subtitle requests run other code),
    "mss QualityLevels(71000)/Fragments(audio=13786667)" -> "mss Fragments"."""
    words = re.sub(r"\[[^\]]*\]", "", step).split()
    if not words or words[0] in ("parse", "sidecar", "pd"):
        return words[0] if words else "?"
    name = words[-1] if len(words) > 1 else ""
    kind = "Fragments" if "Fragments(" in name else re.split(r"[-.(/]", name, maxsplit=1)[0]
    text = " text" if re.search(r"-t\d|text_|\.vtt$", name) else ""
    return f"{words[0]} {kind}{text}".strip()


def innermost_frame(exc: BaseException) -> str:
    """file:function of the deepest traceback frame inside vodorigin/ (else the deepest frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(PACKAGE_DIR)]
    if ours:
        frame = ours[-1]
        return f"{frame.filename[len(PACKAGE_DIR) + 1 :]}:{frame.name}"
    if frames:
        return f"<outside vodorigin> {Path(frames[-1].filename).name}:{frames[-1].name}"
    return "<no frame>"


def exception_name(exc: BaseException) -> str:
    """struct.error, IndexError, numpy.linalg.LinAlgError...; every MemoryError subclass (numpy's
    _ArrayMemoryError) as MemoryError."""
    if isinstance(exc, MemoryError):
        return "MemoryError"
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


HARNESS_CHECKS = {SizeMismatch: "size", RangeOutsideFile: "range", BrokenCues: "cues"}


def classify(step: str, exc: BaseException, expected: type[VodError] = VodError) -> Outcome:
    """The outcome of a step that raised `exc`; `expected` is the error class a clean refusal of
    this step raises."""
    detail = f"{exception_name(exc)}: {exc}"[:500]
    if isinstance(exc, expected):
        return Outcome(step, "error", detail)
    for check, kind in HARNESS_CHECKS.items():
        if isinstance(exc, check):
            return Outcome(step, kind, detail, f"{kind}@{request_kind(step)}", format_traceback(exc))
    if isinstance(exc, MemoryError):
        return Outcome(step, "memory", detail, f"memory@{request_kind(step)}", format_traceback(exc))
    kind = "warning" if isinstance(exc, Warning) else "crash"
    signature = f"{kind}:{exception_name(exc)}@{innermost_frame(exc)}"
    if kind == "warning":
        signature += f" ({normalize(str(exc))[:60]})"
    return Outcome(step, kind, detail, signature, format_traceback(exc))


def slow_outcome(step: str, seconds: float, whole_input: bool, exc: BaseException) -> Outcome:
    if whole_input:
        return Outcome(step, "slow", f"the input's requests used more than {seconds} s of CPU (at this one)",
                       "slow@input", format_traceback(exc), seconds)
    return Outcome(step, "slow", f"more than {seconds} s of CPU", f"slow@{request_kind(step)}",
                   format_traceback(exc), seconds)


class PeakMemory:
    """The peak resident size of this process between start() and growth_mb() (Linux only)."""

    def __init__(self) -> None:
        self.base = 0
        self.available = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # resets VmHWM to the current RSS
            return True
        except OSError:
            return False

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status") as status:
            match = re.search(rf"^{key}:\s+(\d+)", status.read(), re.MULTILINE)
        return int(match[1]) // 1024 if match else 0

    def start(self) -> None:
        if self.available:
            self._reset()
            self.base = self._status("VmRSS")

    def growth_mb(self) -> int:
        return self._status("VmHWM") - self.base if self.available else 0
