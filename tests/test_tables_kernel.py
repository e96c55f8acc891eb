"""The compiled stsc pass (mp4/_tables_kernel.c) against numpy's (tables._run_starts), which it stands
in for: the same first samples, largest samples-per-chunk and refusals for generated runs, hostile
numbering included, and the same parsed movie for every fixture. `make test` builds the kernel
(scripts/setup.sh), so it must be here."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, MEDIA_FILES
from vodorigin import kernels
from vodorigin.media.model import Movie
from vodorigin.mp4 import tables, tables_kernel
from vodorigin.origin import Origin
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage


def test_the_kernel_is_built() -> None:
    """The README's commands build it; a test run without it would check only the fallback."""
    assert tables_kernel.available(), f"{tables_kernel.LIBRARY} is not built (scripts/setup.sh builds it)"


def _both(runs: list[tuple[int, int]], n_chunks: int) -> tuple[object, object]:
    """(kernel's, numpy's) answer for stsc runs of (first chunk, samples per chunk)."""
    data = memoryview(b"".join(struct.pack(">III", first, per, 1) for first, per in runs))
    table = np.frombuffer(data, dtype=">u4").reshape(len(runs), 3)
    return (tables_kernel.stsc_first_samples(data, len(runs), n_chunks),
            tables._run_starts(table[:, 0], table[:, 1], n_chunks))


def _same(kernel: object, numpy: object) -> bool:
    if kernel is None or numpy is None:
        return kernel is None and numpy is None
    assert isinstance(kernel, tuple) and isinstance(numpy, tuple)
    same_starts = np.array_equal(kernel[0], numpy[0]) and kernel[0].dtype == numpy[0].dtype
    return bool(same_starts) and kernel[1] == numpy[1]


@settings(max_examples=400, deadline=None)
@given(gaps=st.lists(st.integers(1, 5), min_size=1, max_size=12),
       per=st.lists(st.sampled_from([0, 1, 2, 3, 1024, 2**31, 2**32 - 1]), min_size=12, max_size=12),
       spare=st.integers(-3, 3), spoil=st.none() | st.tuples(st.integers(0, 11), st.integers(0, 2**32 - 1)))
def test_generated_runs_are_numpys(gaps: list[int], per: list[int], spare: int,
                                   spoil: tuple[int, int] | None) -> None:
    """Runs numbered 1, 1 + gap, ... (or one first chunk spoiled: 0, repeated, backwards, past the
    chunk table), over a chunk table a few chunks larger or smaller than the runs need."""
    firsts = [1 + sum(gaps[:i]) for i in range(len(gaps))]
    if spoil is not None:
        firsts[spoil[0] % len(firsts)] = spoil[1]
    runs = list(zip(firsts, per, strict=False))
    kernel, numpy = _both(runs, min(max(firsts[-1] + spare, 0), tables_kernel.MAX_CHUNKS - 1))
    assert _same(kernel, numpy), (runs, kernel, numpy)


@pytest.mark.parametrize(("runs", "n_chunks", "refused"), [
    ([(1, 5)], 1, False), ([(2, 5)], 4, True), ([(0, 5)], 4, True), ([(1, 1), (1, 2)], 4, True),
    ([(1, 1), (3, 2), (2, 1)], 4, True), ([(1, 1), (5, 2)], 4, True), ([(1, 1), (4, 2)], 4, False)])
def test_numbering_refusals(runs: list[tuple[int, int]], n_chunks: int, refused: bool) -> None:
    kernel, numpy = _both(runs, n_chunks)
    assert (kernel is None) is refused and _same(kernel, numpy)


def _movie(name: str) -> Movie:
    origin = Origin(Settings(media_root=str(FIXTURES)), LocalStorage(FIXTURES))  # type: ignore[call-arg]
    return asyncio.run(origin.movie(name))


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_every_fixture_parses_as_with_numpy(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = _movie(name)
    compiled_chunks = [track.samples.chunks for track in compiled.tracks]  # derived (DeferredChunks) here
    monkeypatch.setattr(tables_kernel, "available", lambda: False)
    plain = _movie(name)
    assert len(compiled.tracks) == len(plain.tracks)
    for ours, theirs, a in zip(compiled.tracks, plain.tracks, compiled_chunks, strict=True):
        b = theirs.samples.chunks
        assert np.array_equal(a.first_sample, b.first_sample) and a.first_sample.dtype == b.first_sample.dtype
        assert ours.samples.offsets(0, ours.samples.count).tolist() == \
            theirs.samples.offsets(0, theirs.samples.count).tolist()


def test_a_kernel_of_another_version_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library built from another version of the source is never called: numpy's pass is used."""
    monkeypatch.setattr(tables_kernel, "KERNEL_VERSION", tables_kernel.KERNEL_VERSION + 1)
    assert tables_kernel._load() is None


def test_a_kernel_missing_or_without_a_function_is_not_loaded(tmp_path: Path) -> None:
    library, version = tables_kernel.LIBRARY, tables_kernel.KERNEL_VERSION
    assert kernels.load(tmp_path / "absent.so", "tables_kernel_version", version, {}) is None
    assert kernels.load(library, "tables_kernel_version", version, {"no_such_function": []}) is None
    assert kernels.load(library, "tables_kernel_version", version, {"stsc_first_samples": []}) is not None
