"""Hostile input (tests/fuzz/): every committed crasher and amplification file is refused or served
cleanly, a bounded fuzz run finds nothing new, and the harness and its mutators do what they say.

A "finding" is any outcome other than success or a VodError (a sidecar subtitle document: a
MediaError): an unexpected exception, a warning, a request taking more than 10 s of CPU (or an
input's requests more than 120 s), a MemoryError or a request growing the resident size by more
than 768 MB, a segment whose bytes disagree with its planned size, a progressive body reaching
outside the file, or cues breaking the cue model's rules (tests/fuzz/outcomes.py). A slow outcome
counts only when it stays slow with three times the budget, so a slower machine does not fail
what this one passes. Crashers and amplifiers run in a subprocess that limits its own address
space (tests/fuzz/run.py), so an allocation bomb cannot take pytest down.

The bounded run exercises the fixed-seed sequence of mutants for FUZZ_SECONDS (default
60; 0 skips it), at most FUZZ_ITERATIONS_PER_SECOND mutants a second: a faster machine runs the
same mutants, a slower one a prefix of them, so the default run is the sequence checked when the
crashers were last committed. A longer run goes further and may find what is new.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fuzz import FIXTURES, SUBTITLE_SUFFIXES
from tests.fuzz import mutate as mutations
from tests.fuzz.amplify import AMPLIFIERS, huge_duration_file, huge_sample_count_file, many_tracks_file
from tests.fuzz.boxtree import Box, MP4File, box_size, parse_file, serialize, walkable
from tests.fuzz.exercise import exercise
from tests.fuzz.inprocess import Budget, Runner
from tests.fuzz.mutate import mutate
from tests.fuzz.outcomes import CpuBudgetExceeded, classify, request_kind
from tests.fuzz.run import inputs_in
from tests.fuzz.subtitles import mutate_document, sample_payloads, text_samples, tx3g_sample, wvtt_sample
from vodorigin.errors import MediaError
from vodorigin.media.model import MediaType
from vodorigin.packagers.output import Document
from vodorigin.text import decode_tx3g_sample, decode_wvtt_sample

ROOT = Path(__file__).resolve().parent.parent
CRASHERS_DIR = Path(__file__).resolve().parent / "fuzz" / "crashers"
CRASHERS = inputs_in([CRASHERS_DIR])
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "60"))
FUZZ_SEED = 20240601
FUZZ_ITERATIONS_PER_SECOND = 10  # about what the machine that checked the sequence runs
MEDIA = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".mp4", ".m4a"))
DOCUMENTS = sorted(p for p in FIXTURES.iterdir() if p.suffix in SUBTITLE_SUFFIXES)
SIZE_OPERATORS = {mutations.size_field}


def run_fuzz(*arguments: str, timeout: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.fuzz.run", *arguments]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def replay(path: Path) -> list[dict]:
    """The findings of one input, exercised in a fresh, memory-limited process."""
    result = run_fuzz("--replay", str(path), "--json", timeout=600)
    try:
        return json.loads(result.stdout)[str(path)]["findings"]
    except (json.JSONDecodeError, KeyError):
        pytest.fail(f"replay of {path.name} died (exit {result.returncode}):\n{result.stderr[-3000:]}")


def describe(findings: list[dict]) -> str:
    """Each signature once: how many requests hit it, the first one and its traceback."""
    first: dict[str, dict] = {}
    for finding in findings:
        first.setdefault(finding["signature"], finding)
    counts = {signature: sum(f["signature"] == signature for f in findings) for signature in first}
    return "\n\n".join(f"{signature} ({counts[signature]} requests)\n{f['step']}: {f['detail']}\n"
                       f"{f['traceback'][-2500:]}" for signature, f in first.items())


# --- hostile inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("crasher", CRASHERS, ids=lambda p: p.name)
def test_crasher_is_refused_or_served(crasher: Path) -> None:
    findings = replay(crasher)
    assert not findings, f"{crasher.name} ({crasher.with_suffix('.txt').name}):\n{describe(findings)}"


@pytest.mark.parametrize("name", sorted(AMPLIFIERS))
def test_amplification_file_is_refused_or_served(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(AMPLIFIERS[name]())
    findings = replay(path)
    assert not findings, "\n" + describe(findings)


@pytest.mark.skipif(FUZZ_SECONDS <= 0, reason="FUZZ_SECONDS=0")
def test_bounded_fuzz_run_finds_nothing_new(tmp_path: Path) -> None:
    """A fixed-seed run finds no signature beyond the committed crashers (which the test above
    replays); a new finding is left in tmp_path with its traceback."""
    iterations = max(int(FUZZ_SECONDS * FUZZ_ITERATIONS_PER_SECOND), 1)
    result = run_fuzz("--seconds", str(FUZZ_SECONDS), "--iterations", str(iterations),
                      "--seed", str(FUZZ_SEED), "--out", str(tmp_path), "--known", str(CRASHERS_DIR),
                      "--no-minimize", "--no-amplifiers", "--json", timeout=FUZZ_SECONDS * 3 + 300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["executions"] > 0
    new = [f for f in summary["findings"] if f["new"]]
    details = "\n".join(Path(f["file"]).with_suffix(".txt").read_text()[:3000] for f in new if f["file"])
    assert not new, f"new findings: {[f['signature'] for f in new]}\n{details}"


@pytest.mark.parametrize("path", MEDIA + DOCUMENTS, ids=lambda p: p.name)
def test_fixtures_give_no_finding(path: Path) -> None:
    """The harness itself: the untouched fixtures pass every request it makes."""
    report = exercise(path.read_bytes(), path.name)
    assert not report.findings, report.findings
    assert sum(o.kind == "ok" for o in report.outcomes) > 30


# --- the harness ---------------------------------------------------------------------------------


def test_embedded_cues_are_read_when_a_subtitle_segment_needs_them() -> None:
    """As the server does: CuesNeeded, then the cues read from the file, the cached movie replaced."""
    runner = Runner({"input.mp4": (FIXTURES / "subs_embedded.mp4").read_bytes()}, Budget(), None)
    movie = runner.load("input.mp4")
    assert movie is not None and movie.tracks_of(MediaType.SUBTITLE)[0].cues is None
    segment = runner.request("hls seg-1-t1.vtt", "hls", "input.mp4/seg-1-t1.vtt")
    assert isinstance(segment, Document) and b"Hello, and welcome." in segment.body, runner.report.outcomes
    assert runner.movie("input.mp4").tracks_of(MediaType.SUBTITLE)[0].cues


def test_budgets_sign_slow_requests_and_slow_inputs() -> None:
    def spin() -> None:
        while True:
            pass

    runner = Runner({}, Budget(request_seconds=0.05, input_seconds=10.0), None)
    with pytest.raises(CpuBudgetExceeded):
        runner.run("hls seg-3-v1-a1.ts", spin)
    assert [(o.kind, o.signature) for o in runner.report.outcomes] == [("slow", "slow@hls seg")]
    runner = Runner({}, Budget(request_seconds=10.0, input_seconds=0.05), None)
    with pytest.raises(CpuBudgetExceeded):
        runner.run("dash manifest.mpd", spin)
    assert [o.signature for o in runner.report.outcomes] == ["slow@input"]


def test_signatures() -> None:
    assert request_kind("hls[urlset] seg-2-f2-t1.vtt") == "hls seg text"
    assert request_kind("dash segmentlist fragment-2-v1.m4s") == "dash fragment"
    fragment = "mss[second] QualityLevels(1000)/Fragments(text_f2-t1=14000000)"
    assert request_kind(fragment) == "mss Fragments text"
    assert classify("sidecar", MediaError("bad")).kind == "error"
    assert classify("sidecar", ValueError("bad"), MediaError).signature.startswith("crash:ValueError@")
    assert classify("hls seg-1.ts", MemoryError()).signature == "memory@hls seg"


@pytest.mark.parametrize(("make", "decode"), [(tx3g_sample, decode_tx3g_sample),
                                              (wvtt_sample, decode_wvtt_sample)], ids=("tx3g", "wvtt"))
def test_subtitle_sample_decoders_give_text_or_media_error(make: Callable[[random.Random], tuple[bytes, str]],
                                                           decode: Callable[[bytes], object]) -> None:
    """The hostile samples of the mutator, straight into the decoders: text or a MediaError."""
    errors = 0
    for seed in range(300):
        sample, _ = make(random.Random(seed))
        try:
            decode(sample)
        except MediaError:
            errors += 1
    assert 0 < errors < 300  # both kinds of outcome are reached


# --- the mutators --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parsed() -> dict[str, MP4File]:
    names = ("bframes.mp4", "moov_end.mp4", "subs_embedded.mp4")
    return {name: parse_file((FIXTURES / name).read_bytes()) for name in names}


def test_fixtures_round_trip_through_the_box_tree() -> None:
    for path in MEDIA:
        data = path.read_bytes()
        assert serialize(parse_file(data)) == data, path.name


@pytest.mark.parametrize("operator", [o for o in mutations.OPERATORS if o not in SIZE_OPERATORS],
                         ids=lambda o: o.__name__)
def test_mutations_not_about_sizes_keep_a_walkable_tree(operator: mutations.Operator,
                                                        parsed: dict[str, MP4File]) -> None:
    for name, tree in parsed.items():
        for seed in range(12):
            file = tree.copy()
            step = operator(file, random.Random(seed))
            mutations.relocate_chunk_offsets(file)
            data = serialize(file)
            assert walkable(data), (name, seed, step)
            assert serialize(parse_file(data)) == data, (name, seed, step)


def test_text_samples_rewrites_the_subtitle_samples(parsed: dict[str, MP4File]) -> None:
    """The rewritten samples are where the new tables say, for the tree and for vodorigin alike."""
    tree = parsed["subs_embedded.mp4"]
    original = sample_payloads(tree, tree.tracks()[2].find(b"mdia", b"minf", b"stbl"))  # type: ignore[arg-type]
    assert original is not None and len(original) == 15
    for seed in range(8):
        file = tree.copy()
        step = text_samples(file, random.Random(seed))
        assert step, seed
        mutations.relocate_chunk_offsets(file)
        data = serialize(file)
        new = parse_file(data)
        payloads = sample_payloads(new, new.tracks()[2].find(b"mdia", b"minf", b"stbl"))  # type: ignore[arg-type]
        assert payloads is not None and len(payloads) == 15 and payloads != original, step
        runner = Runner({"input.mp4": data}, Budget(), None)
        movie = runner.load("input.mp4")
        assert movie is not None, runner.report.outcomes
        sizes = movie.tracks_of(MediaType.SUBTITLE)[0].samples.sizes.tolist()
        assert sizes == [len(p) for p in payloads], step


def test_container_sizes_are_fixed_up(parsed: dict[str, MP4File]) -> None:
    file = parsed["bframes.mp4"].copy()
    stts = file.tracks()[0].find(b"mdia", b"minf", b"stbl", b"stts")
    assert stts is not None
    before = serialize(file)
    stts.data += bytes(12)
    after = serialize(file)
    assert len(after) == len(before) + 12
    moov_start = before.index(b"moov") - 4
    (old_size,), (new_size,) = struct.unpack_from(">I", before, moov_start), struct.unpack_from(">I", after,
                                                                                                  moov_start)
    assert new_size == old_size + 12
    assert walkable(after)


def test_size_field_mutation_writes_the_wrong_size() -> None:
    box = Box(b"moov", b"", [Box(b"free", bytes(4))])
    file = MP4File([box])
    box.children[0].size_override = 0xFFFFFFFF  # type: ignore[index]
    assert serialize(file) == struct.pack(">I4sI4s", 20, b"moov", 0xFFFFFFFF, b"free") + bytes(4)
    assert not walkable(serialize(file))
    box.large, box.size_override = True, 2**64 - 1
    assert serialize(file)[:16] == struct.pack(">I4sQ", 1, b"moov", 2**64 - 1)


def test_chunk_offsets_follow_a_moov_that_shrinks(parsed: dict[str, MP4File]) -> None:
    """Deleting udta moves the media; the untouched chunk offsets still point at the same bytes."""
    original = parsed["bframes.mp4"]
    file = original.copy()
    assert file.moov is not None and file.moov.children is not None
    udta = file.moov.child(b"udta")
    assert udta is not None
    file.moov.children.remove(udta)
    assert mutations.relocate_chunk_offsets(file) == -box_size(udta)
    old, new = serialize(original), serialize(file)
    for before, after in zip(_first_offsets(original), _first_offsets(file), strict=True):
        assert after == before - box_size(udta)
        assert new[after : after + 64] == old[before : before + 64]


def _first_offsets(file: MP4File) -> list[int]:
    offsets = []
    for trak in file.tracks():
        stco = trak.find(b"mdia", b"minf", b"stbl", b"stco")
        assert stco is not None
        offsets.append(struct.unpack_from(">I", stco.data, 8)[0])
    return offsets


def test_mutations_are_deterministic(parsed: dict[str, MP4File]) -> None:
    for name in ("bframes.mp4", "subs_embedded.mp4"):
        tree = parsed[name]
        results = set()
        for seed in range(20):
            first, second = mutate(tree, random.Random(seed)), mutate(tree, random.Random(seed))
            assert (first.data, first.description) == (second.data, second.description)
            results.add(first.data)
        assert len(results) >= 15
        assert serialize(tree) == (FIXTURES / name).read_bytes()  # the parsed fixture is untouched


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_document_mutations_are_deterministic_and_varied(path: Path) -> None:
    data = path.read_bytes()
    results = set()
    for seed in range(30):
        first, second = mutate_document(data, random.Random(seed)), mutate_document(data, random.Random(seed))
        assert first == second
        results.add(first[0])
    assert len(results) >= 25 and data not in results


def test_amplification_builders() -> None:
    data = huge_sample_count_file(19_999_999)
    assert len(data) < 4096 and walkable(data)
    stbl = parse_file(data).tracks()[0].find(b"mdia", b"minf", b"stbl")
    assert stbl is not None and stbl.child(b"stss") is None
    assert struct.unpack_from(">II", stbl.child(b"stsz").data, 4) == (1, 19_999_999)  # type: ignore[union-attr]
    assert struct.unpack_from(">III", stbl.child(b"stsc").data, 8) == (1, 19_999_999, 1)  # type: ignore[union-attr]
    duration = parse_file(huge_duration_file())
    mdhd = duration.tracks()[0].find(b"mdia", b"mdhd")
    assert mdhd is not None and struct.unpack_from(">I", mdhd.data, 12)[0] == 1
    assert len(parse_file(many_tracks_file(32)).tracks()) == 32
    assert AMPLIFIERS["past_max_cues.vtt"]().count(b" --> ") == 50_001
