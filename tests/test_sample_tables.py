"""Sample tables kept as the file's runs (stsc, stts) agree with a naive expansion per sample:
every sample's file offset, every decode time, and the check that sample data lies inside the file."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.media.samples import ChunkMap, DeferredChunks
from vodorigin.mp4.tables import RawTables, TableBounds, parse_sample_table


def _full_box_payload(fmt: str, rows: list[tuple[int, ...]], header: bytes = b"") -> bytes:
    return header + struct.pack(">I", len(rows)) + b"".join(struct.pack(fmt, *row) for row in rows)


def _naive_offsets(chunk_offsets: list[int], per_chunk: list[int], sizes: list[int]) -> list[int]:
    offsets: list[int] = []
    for offset, held in zip(chunk_offsets, per_chunk, strict=True):
        for _ in range(held):
            if len(offsets) == len(sizes):
                return offsets
            offsets.append(offset)
            offset += sizes[len(offsets) - 1]
    return offsets


@settings(max_examples=300, deadline=None)
@given(runs=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3)), min_size=1, max_size=6),
       deltas=st.lists(st.tuples(st.integers(1, 5), st.integers(0, 3000)), min_size=1, max_size=5),
       data=st.data())
def test_runs_locate_and_time_every_sample(runs: list[tuple[int, int]], deltas: list[tuple[int, int]],
                                           data: st.DataObject) -> None:
    """runs: (chunks, samples per chunk) of each stsc entry; deltas: (samples, delta) of stts."""
    per_chunk = [held for chunks, held in runs for _ in range(chunks)]
    count = sum(n for n, _ in deltas)
    sizes = data.draw(st.lists(st.integers(0, 50), min_size=count, max_size=count))
    n_chunks = len(per_chunk)
    chunk_offsets = data.draw(st.lists(st.integers(0, 2000), min_size=n_chunks, max_size=n_chunks))
    file_size = data.draw(st.integers(0, 2200))
    firsts = [1 + sum(chunks for chunks, _ in runs[:i]) for i in range(len(runs))]  # stsc numbers from 1
    stsc = [(first, held, 1) for first, (_, held) in zip(firsts, runs, strict=True)]
    raw = RawTables(
        stts=_full_box_payload(">II", deltas),
        stsz=struct.pack(">II", 0, count) + b"".join(struct.pack(">I", s) for s in sizes),
        stsc=_full_box_payload(">III", stsc),
        chunk_offsets=_full_box_payload(">I", [(o,) for o in chunk_offsets]),
        chunk_offsets_64bit=False,
    )
    bounds = TableBounds(10_000, "a limit", file_size)
    if sum(per_chunk) < count:
        samples = parse_sample_table(raw, bounds)  # where samples are is derived when first asked for
        with pytest.raises(MediaError, match="fewer samples"):
            samples.offsets(0, count)
        return
    expected = _naive_offsets(chunk_offsets, per_chunk, sizes)
    if any(offset + size > file_size for offset, size in zip(expected, sizes, strict=True)):
        samples = parse_sample_table(raw, bounds)
        with pytest.raises(MediaError, match="past the end of the file"):
            samples.offsets(0, count)
        return
    samples = parse_sample_table(raw, bounds)
    assert samples.offsets(0, count).tolist() == expected
    start = data.draw(st.integers(0, count))
    stop = data.draw(st.integers(start, count))
    assert samples.offsets(start, stop).tolist() == expected[start:stop]
    dts = [0]
    for n, delta in deltas:
        for _ in range(n):
            dts.append(dts[-1] + delta)
    some = np.array(sorted(data.draw(st.sets(st.integers(0, count - 1)))), dtype=np.int64)
    assert samples.dts_at(some).tolist() == [dts[i] for i in some.tolist()]  # before the column is expanded
    assert samples.decode_times.median_duration() == float(np.median(np.diff(dts)))
    durations = np.diff(dts)[start:stop]
    assert samples.decode_times.longest(start, stop) == (int(durations.max()) if len(durations) else 0)
    assert samples.dts.tolist() == dts[:-1] and samples.end_dts == dts[-1]


@pytest.mark.parametrize("fault", [None, LimitExceeded("too large"), struct.error("unpack requires more")])
def test_a_deferred_chunk_map_is_derived_once(fault: Exception | None) -> None:
    """Derived on the first question only; a failure is kept and told again (the same kind and
    message, opened by the context; a decoding fault as MediaError), never derived again."""
    calls = []
    empty = np.zeros(0, dtype=np.int64)

    def derive() -> ChunkMap:
        calls.append(1)
        if fault is not None:
            raise fault
        return ChunkMap(empty, empty, empty, empty)

    deferred = DeferredChunks(derive, 0, "a.mp4: track 1")
    if fault is None:
        assert deferred.get() is deferred.get() and deferred.derived
    else:
        messages = []
        for _ in range(3):
            with pytest.raises(MediaError) as raised:
                deferred.get()
            messages.append((type(raised.value), raised.value.message))
        kind = type(fault) if isinstance(fault, MediaError) else MediaError
        assert messages[0][0] is kind and messages[0][1].startswith("a.mp4: track 1: ")
        assert len(set(messages)) == 1 and not deferred.derived
    assert calls == [1]
