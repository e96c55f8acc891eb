"""The fuzzing loop: mutate the fixtures, exercise every protocol, keep one crasher per finding.

    python -m tests.fuzz.run [--seconds N] [--iterations N] [--seed S] [--out DIR]
    python -m tests.fuzz.run --replay FILE_OR_DIR...          # exit 1 if any file gives a finding
    python -m tests.fuzz.run --atheris [--seconds N]          # coverage-guided (needs atheris)

Iteration i mutates fixture i % n with random.Random(f"{seed}:{i}"): the MP4s with mutate.py, the
subtitle documents (.vtt, .srt, .ttml) with subtitles.mutate_document. A run is reproducible: it
is a prefix of one sequence, cut by --iterations or --seconds (default 60 s), whichever comes
first. Before the mutants, the amplification files of amplify.AMPLIFIERS are exercised once. The
process limits its own address space (RLIMIT_AS: what it uses at start + --memory-mb), so an
allocation bomb is a MemoryError and not the OOM killer; run it as its own process, never inside
pytest.

Findings are deduplicated by signature (exception type + innermost vodorigin frame, or the request
kind for slow/memory/size/range/cues findings). A slow input counts only when it is still slow with
CONFIRM_FACTOR times the CPU budgets (of a request, and of an input's requests), so that a machine a
little slower than this one does not find what this one did not. A new finding is written to
<out>/<kind>-<hash>.<mp4|vtt|srt|ttml>, shrunk while it still reproduces (truncations, dropped
tracks or cues), with a .txt beside it: signature, the mutation that made it, the step and the
traceback. A signature already in <out> keeps the smaller file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import resource
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz import FIXTURES, SUBTITLE_SUFFIXES
from tests.fuzz.amplify import AMPLIFIERS
from tests.fuzz.boxtree import Box, MP4File, full_box, media_start, parse_file, serialize, tables
from tests.fuzz.exercise import exercise
from tests.fuzz.inprocess import Budget
from tests.fuzz.mutate import moov_span, mutate, relocate_chunk_offsets
from tests.fuzz.outcomes import Outcome, Report
from tests.fuzz.subtitles import mutate_document

CRASHERS = Path(__file__).resolve().parent / "crashers"
SIGNATURE_LINE = "signature: "
MINIMIZE_SECONDS = 45.0
SMALL_ENOUGH = 16 * 1024  # crashers below this size are not shrunk further
CONFIRM_FACTOR = 3  # a slow file is re-exercised with this many times the budget
INPUT_SUFFIXES = (".mp4", ".m4a", *SUBTITLE_SUFFIXES)
TABLES_OF_OFFSETS = (b"stsz", b"stz2", b"stsc", b"stco", b"co64")


@dataclass
class Finding:
    signature: str
    kind: str
    count: int = 0
    new: bool = False
    path: Path | None = None
    size: int = 0
    example: str = ""  # the step of the first occurrence


@dataclass
class Options:
    seconds: float | None = 60.0  # None: no time bound (then iterations bounds the run)
    iterations: int | None = None
    seed: int = 0
    out: Path = CRASHERS
    cpu_seconds: float = 10.0  # one request
    input_cpu_seconds: float = 120.0  # all the requests of one input
    memory_mb: int = 1536
    peak_mb: int = 768
    minimize: bool = True
    amplifiers: bool = True
    fixtures: list[Path] = field(default_factory=list)
    known: list[Path] = field(default_factory=list)  # more crasher directories whose signatures are known
    corpus: list[Path] = field(default_factory=list)  # files exercised (and recorded) before the mutants

    @property
    def budget(self) -> Budget:
        return Budget(self.cpu_seconds, self.input_cpu_seconds)


class Campaign:
    """The state of one run: findings by signature, and the crashers directory."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.findings: dict[str, Finding] = {}
        self.executions = 0
        self.elapsed = 0.0
        # CPU seconds of the slowest request and input without a slow finding, and which they were
        self.slowest_request: tuple[float, str] = (0.0, "")
        self.slowest_input: tuple[float, str] = (0.0, "")
        self.unconfirmed = 0  # slow inputs that were not slow with CONFIRM_FACTOR times the budget
        self.iterations = 0  # mutants exercised
        options.out.mkdir(parents=True, exist_ok=True)
        for directory in [*options.known, options.out]:
            for signature, path in known_signatures(directory).items():
                kind = path.name.split("-", 1)[0]
                self.findings[signature] = Finding(signature, kind, path=path, size=path.stat().st_size)

    def check(self, data: bytes, name: str, origin: str) -> list[Outcome]:
        """Exercise one file and record its findings; returns them."""
        report = self.exercise(data, name, origin)
        self.executions += 1
        findings = report.findings
        for outcome in {o.signature: o for o in findings}.values():
            self.record(outcome, data, name, origin)
        return findings

    def exercise(self, data: bytes, name: str, origin: str = "") -> Report:
        report, unconfirmed = confirmed_exercise(data, name, self.options)
        self.unconfirmed += unconfirmed
        if not any(o.kind == "slow" for o in report.outcomes):
            step = max(report.outcomes, key=lambda o: o.cpu_seconds, default=Outcome("", "ok"))
            self.slowest_request = max(self.slowest_request, (step.cpu_seconds, f"{step.step} of {origin}"))
            self.slowest_input = max(self.slowest_input, (report.cpu_seconds, origin))
        return report

    def record(self, outcome: Outcome, data: bytes, name: str, origin: str) -> None:
        finding = self.findings.get(outcome.signature)
        if finding is None:
            finding = self.findings[outcome.signature] = Finding(outcome.signature, outcome.kind, new=True,
                                                                 example=outcome.step)
            print(f"NEW {outcome.signature}\n    {outcome.step}: {outcome.detail[:200]}", file=sys.stderr,
                  flush=True)
        finding.count += 1
        finding.example = finding.example or outcome.step
        if finding.path is not None and finding.size <= len(data):
            return
        if self.options.minimize and len(data) > SMALL_ENOUGH:
            data, outcome = self.minimize(data, name, outcome)
        if finding.path is None or len(data) < finding.size:
            self.save(finding, outcome, data, name, origin)

    def minimize(self, data: bytes, name: str, outcome: Outcome) -> tuple[bytes, Outcome]:
        """The smallest of the reductions that still gives the same signature, reduced again after
        each success (bounded in time)."""
        deadline = time.monotonic() + MINIMIZE_SECONDS
        smaller = True
        while smaller and len(data) > SMALL_ENOUGH:
            smaller = False
            for candidate in document_reductions(data) if is_document(name) else reductions(data):
                if time.monotonic() > deadline:
                    return data, outcome
                if len(candidate) >= len(data):
                    continue
                report = self.exercise(candidate, name)
                same = [o for o in report.findings if o.signature == outcome.signature]
                if same:
                    data, outcome, smaller = candidate, same[0], True
                    break
        return data, outcome

    def save(self, finding: Finding, outcome: Outcome, data: bytes, name: str, origin: str) -> None:
        digest = hashlib.sha1(finding.signature.encode()).hexdigest()[:10]
        suffix = Path(name).suffix if is_document(name) else ".mp4"
        path = self.options.out / f"{finding.kind}-{digest}{suffix}"
        for other in [path.with_suffix(suffix) for suffix in INPUT_SUFFIXES if suffix != path.suffix]:
            other.unlink(missing_ok=True)  # the same finding, once from another kind of input
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(
            f"{SIGNATURE_LINE}{finding.signature}\nkind: {finding.kind}\nfixture: {name}\n"
            f"made by: {origin}\nsize: {len(data)} bytes\nstep: {outcome.step}\nerror: {outcome.detail}\n\n"
            f"{outcome.traceback}")
        finding.path, finding.size = path, len(data)


def confirmed_exercise(data: bytes, name: str, options: Options) -> tuple[Report, bool]:
    """exercise(), with a slow outcome confirmed under CONFIRM_FACTOR times the budgets; the report,
    and whether a slow outcome went away when confirmed."""
    budget = options.budget
    report = exercise(data, name, budget, options.peak_mb)
    if not any(o.kind == "slow" for o in report.outcomes):
        return report, False
    longer = Budget(budget.request_seconds * CONFIRM_FACTOR, budget.input_seconds * CONFIRM_FACTOR)
    report = exercise(data, name, longer, options.peak_mb)
    return report, not any(o.kind == "slow" for o in report.outcomes)


def made_by(path: Path) -> str:
    """The origin recorded next to a crasher (its .txt), else the file's name."""
    text = path.with_suffix(".txt")
    lines = text.read_text().splitlines() if text.exists() else []
    return next((line[len("made by: ") :] for line in lines if line.startswith("made by: ")), str(path))


def known_signatures(directory: Path) -> dict[str, Path]:
    """Signature -> crasher file, from the .txt files next to the crashers."""
    known = {}
    for text in sorted(directory.glob("*.txt")):
        first = text.read_text().splitlines()[:1]
        inputs = [text.with_suffix(suffix) for suffix in INPUT_SUFFIXES if text.with_suffix(suffix).exists()]
        if first and first[0].startswith(SIGNATURE_LINE) and inputs:
            known[first[0][len(SIGNATURE_LINE) :]] = inputs[0]
    return known


def inputs_in(paths: list[Path]) -> list[Path]:
    """The files given, and the inputs (.mp4, .m4a, .vtt, .srt, .ttml) of the directories given."""
    return [f for p in paths for f in (sorted(f for f in p.iterdir() if f.suffix in INPUT_SUFFIXES)
                                       if p.is_dir() else [p])]


def is_document(name: str) -> bool:
    return Path(name).suffix.lower() in SUBTITLE_SUFFIXES


def document_reductions(data: bytes) -> Iterator[bytes]:
    """Smaller subtitle documents: each half of the blocks (blank-line separated, the first kept),
    then shorter and shorter prefixes."""
    blocks = re.split(rb"(?:\r?\n){2,}", data)
    while len(blocks) > 2:
        half = len(blocks) // 2
        yield b"\n\n".join(blocks[:1] + blocks[half:])
        yield b"\n\n".join(blocks[:half])
        blocks = blocks[: max(half, 2)]
    keep = len(data)
    while keep > 1024:
        keep //= 2
        yield data[:keep]


def reductions(data: bytes) -> Iterator[bytes]:
    """Smaller variants of a file, most promising first: cut after the moov, every sample one byte,
    each track dropped, then shorter and shorter prefixes (halving what follows the moov)."""
    parsed = parse_file(data)
    _, moov_end = moov_span(parsed)
    if moov_end is not None:
        yield data[:moov_end]
    tiny = tiny_samples(parsed)
    if tiny is not None:
        yield tiny
    for index in range(len(parsed.tracks()) - 1, -1, -1):
        yield without_track(parsed, index)
    if moov_end is not None:
        keep = len(data) - moov_end
        while keep > 1024:
            keep //= 2
            yield data[: moov_end + keep]


def tiny_samples(parsed: MP4File, most: int = 1_000_000) -> bytes | None:
    """ftyp + moov + a one-byte mdat, every sample of every track that one byte (one sample per
    chunk): the file's timing and tables without its media data (None for a file that has more
    than `most` samples in a track, or no moov)."""
    file = parsed.copy()
    if file.moov is None:
        return None
    file.boxes = [b for b in file.boxes if b.type in (b"ftyp", b"moov")] + [Box(b"mdat", b"\0")]
    stbls = [stbl for trak in file.tracks() if (stbl := tables(trak)) is not None and stbl.child(b"stsz")]
    counts = [struct.unpack_from(">I", stsz.data, 8)[0] if len(stsz.data) >= 12 else 0
              for stsz in (stbl.child(b"stsz") for stbl in stbls) if stsz is not None]
    if not stbls or max(counts) > most:
        return None
    for offset in (0, None):  # the layout first, then the mdat's real offset (the same sizes)
        for stbl, count in zip(stbls, counts, strict=True):
            kept = [c for c in stbl.children or [] if c.type not in TABLES_OF_OFFSETS]
            at = offset if offset is not None else media_start(file) or 0
            stbl.children = [*kept, full_box(b"stsz", struct.pack(">II", 1, count)),
                             full_box(b"stsc", struct.pack(">IIII", 1, 1, 1, 1)),
                             full_box(b"stco", struct.pack(f">I{count}I", count, *([at] * count)))]
    return serialize(file)


def without_track(parsed: MP4File, index: int) -> bytes:
    file = parsed.copy()
    assert file.moov is not None and file.moov.children is not None
    file.moov.children.remove(file.tracks()[index])
    relocate_chunk_offsets(file)
    return serialize(file)


def limit_memory(megabytes: int) -> None:
    """RLIMIT_AS = the address space in use now + `megabytes`."""
    in_use = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            in_use = int(line.split()[1]) * 1024
    limit = in_use + megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def fuzz(options: Options) -> Campaign:
    campaign = Campaign(options)
    start = time.monotonic()
    if options.amplifiers:
        for name, build in AMPLIFIERS.items():
            campaign.check(build(), name, f"amplify.AMPLIFIERS[{name!r}]")
    for path in inputs_in(options.corpus):
        origin = made_by(path)
        fixture = re.search(r" on (\S+?): ", origin)
        campaign.check(path.read_bytes(), fixture[1] if fixture else path.name, origin)
    fixtures = options.fixtures or sorted(p for p in FIXTURES.iterdir() if p.suffix in INPUT_SUFFIXES)
    parsed = [(path.name, path.read_bytes() if is_document(path.name) else parse_file(path.read_bytes()))
              for path in fixtures]
    iteration = 0
    while options.iterations is None or iteration < options.iterations:
        if options.seconds is not None and time.monotonic() - start >= options.seconds:
            break
        name, source = parsed[iteration % len(parsed)]
        rng = random.Random(f"{options.seed}:{iteration}")
        if isinstance(source, bytes):
            data, description = mutate_document(source, rng)
        else:
            mutant = mutate(source, rng)
            data, description = mutant.data, mutant.description
        campaign.check(data, name, f"seed {options.seed} iteration {iteration} on {name}: {description}")
        iteration += 1
    campaign.iterations = iteration
    campaign.elapsed = time.monotonic() - start
    return campaign


def summary(campaign: Campaign) -> dict:
    elapsed = campaign.elapsed
    findings = [f for f in campaign.findings.values() if f.count]
    return {
        "executions": campaign.executions,
        "iterations": campaign.iterations,
        "seconds": round(elapsed, 1),
        "executions_per_second": round(campaign.executions / elapsed, 2) if elapsed else 0.0,
        "slowest_request_cpu_seconds": round(campaign.slowest_request[0], 2),
        "slowest_request": campaign.slowest_request[1],
        "slowest_input_cpu_seconds": round(campaign.slowest_input[0], 2),
        "slowest_input": campaign.slowest_input[1],
        "unconfirmed_slow": campaign.unconfirmed,
        "findings": [{"signature": f.signature, "kind": f.kind, "count": f.count, "new": f.new,
                      "file": str(f.path) if f.path else None, "size": f.size, "example": f.example}
                     for f in sorted(findings, key=lambda f: (-f.count, f.signature))],
    }


def print_summary(result: dict) -> None:
    print(f"\n{result['executions']} executions ({result['iterations']} mutants) in {result['seconds']} s "
          f"({result['executions_per_second']} / s); {len(result['findings'])} distinct findings; "
          f"the slowest request took {result['slowest_request_cpu_seconds']} s of CPU, the slowest input "
          f"{result['slowest_input_cpu_seconds']} s (without a slow finding)\n    slowest request: "
          f"{result['slowest_request'][:300]}\n    slowest input: {result['slowest_input'][:300]}")
    for finding in result["findings"]:
        marker = "NEW " if finding["new"] else "    "
        name = Path(finding["file"]).name if finding["file"] else "-"
        print(f"{marker}{finding['count']:6d}  {finding['signature']}\n              {name} "
              f"({finding['size']} bytes), e.g. {finding['example']}")


def replay(paths: list[Path], options: Options) -> dict:
    """Exercise each file (a directory: its inputs); the findings of each, and its CPU time."""
    results = {}
    for path in inputs_in(paths):
        report, _ = confirmed_exercise(path.read_bytes(), path.name, options)
        results[str(path)] = {"cpu_seconds": round(report.cpu_seconds, 3),
                              "slowest_request_cpu_seconds": round(report.slowest_step, 3), "findings": [
            {"step": o.step, "kind": o.kind, "signature": o.signature, "detail": o.detail,
             "traceback": o.traceback} for o in report.findings]}
    return results


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float,
                        help="time bound of the loop (default 60 without --iterations)")
    parser.add_argument("--iterations", type=int, help="most mutants to exercise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=CRASHERS, help="crashers directory")
    parser.add_argument("--cpu-seconds", type=float, default=10.0, help="CPU budget of one request")
    parser.add_argument("--input-cpu-seconds", type=float, default=120.0,
                        help="CPU budget of all the requests of one input")
    parser.add_argument("--memory-mb", type=int, default=1536, help="address space allowed beyond the start")
    parser.add_argument("--peak-mb", type=int, default=768, help="resident growth of one request that counts")
    parser.add_argument("--fixture", action="append", type=Path, default=[], help="only these fixtures")
    parser.add_argument("--corpus", action="append", type=Path, default=[],
                        help="files (or directories of inputs) to exercise and record before the mutants")
    parser.add_argument("--known", action="append", type=Path, default=[],
                        help="a crashers directory whose signatures are not new (besides --out)")
    parser.add_argument("--no-minimize", action="store_true")
    parser.add_argument("--no-amplifiers", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--replay", nargs="+", type=Path, help="exercise these files; exit 1 on a finding")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided mode (needs atheris)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    seconds = args.seconds if args.seconds is not None or args.iterations is not None else 60.0
    options = Options(seconds, args.iterations, args.seed, args.out, args.cpu_seconds,
                      args.input_cpu_seconds, args.memory_mb, args.peak_mb, not args.no_minimize,
                      not args.no_amplifiers, args.fixture, args.known, args.corpus)
    limit_memory(options.memory_mb)
    if args.replay:
        results = replay(args.replay, options)
        if args.json:
            print(json.dumps(results, indent=1))
        else:
            for path, result in results.items():
                print(f"{path}: {len(result['findings'])} finding(s), {result['cpu_seconds']} s of CPU "
                      f"(the slowest request {result['slowest_request_cpu_seconds']} s)")
                for finding in result["findings"]:
                    print(f"  {finding['signature']}\n    {finding['step']}: {finding['detail']}")
        return 1 if any(result["findings"] for result in results.values()) else 0
    if args.atheris:
        from tests.fuzz.guided import run_atheris

        return run_atheris(options)
    result = summary(fuzz(options))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
