"""The compiled TS planner and writer (mux/_ts_kernel.c) against the numpy ones they stand in for:
the same plans and bytes for every segment of every fixture (clear and SAMPLE-AES), the same plans
or refusals for generated frames, the same bytes for generated segments, and the same refusals of
broken NAL units. `make test` builds the kernel (scripts/setup.sh), so it must be here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, MEDIA_FILES, load_movie
from tests.test_mpegts import fake_frames, fake_source
from vodorigin.drm.keys import FileKeys, secret_key
from vodorigin.errors import MediaError, UnsupportedMedia, VodError
from vodorigin.media.frames import SourceBytes, TrackFrames, merged_ranges
from vodorigin.media.model import MediaSet, Track
from vodorigin.media.segmenter import movie_timeline
from vodorigin.mux import mpegts, ts_kernel, ts_write
from vodorigin.origin import Origin
from vodorigin.packagers import hls
from vodorigin.packagers.output import MediaSegment, PackagerContext
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage


def test_the_kernel_is_built() -> None:
    """The README's commands build it; a test run without it would check only the fallback."""
    assert ts_kernel.available(), f"{ts_kernel.LIBRARY} is not built (scripts/setup.sh builds it)"


def _segments(name: str, method: str) -> list[MediaSegment]:
    """Every TS segment of a fixture, clear or in SAMPLE-AES ([] when TS or SAMPLE-AES cannot
    carry its codecs)."""
    origin = Origin(Settings(media_root=str(FIXTURES)), LocalStorage(FIXTURES))  # type: ignore[call-arg]
    movie = asyncio.run(origin.movie(name))
    context = replace(PackagerContext.from_settings(Settings(hls_container="mpegts")),  # type: ignore[call-arg]
                      hls_encryption_method=method, keys={name: FileKeys(secret_key("secret", name))})
    count = movie_timeline(movie, context.segments).count
    segments = []
    for number in range(1, count + 1):
        try:
            output = hls.handle(f"seg-{number}-v1-a1.ts", MediaSet((movie,)), context)
        except VodError:  # a codec TS or SAMPLE-AES does not carry: nothing to compare
            return []
        assert isinstance(output, MediaSegment)
        segments.append(output)
    return segments


@pytest.mark.parametrize("method", ["none", "sample-aes"])
@pytest.mark.parametrize("name", MEDIA_FILES)
def test_every_fixture_segment_is_the_numpy_planners_and_writers(name: str, method: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every segment planned and written by the kernel is the one numpy plans and writes."""
    data = (FIXTURES / name).read_bytes()
    segments = _segments(name, method)
    with monkeypatch.context() as patch:
        patch.setattr(ts_kernel, "_LIBRARY", None)
        numpy_segments = _segments(name, method)
    assert len(numpy_segments) == len(segments)
    for segment, numpy_segment in zip(segments, numpy_segments, strict=True):
        source = SourceBytes(segment.ranges, [data[r.offset : r.offset + r.length] for r in segment.ranges])
        kernel = segment.render(source)
        with monkeypatch.context() as patch:
            patch.setattr(ts_kernel, "_LIBRARY", None)
            assert numpy_segment.render(source) == kernel
    # every fixture has TS segments; SAMPLE-AES in TS carries all but HEVC
    assert segments or (method, name) == ("sample-aes", "hevc.mp4"), "no segment compared"


def _frames(track: Track, codec: str, timescale: int, dts: list[int], offsets: list[int], sizes: list[int],
            sync: list[bool]) -> TrackFrames:
    count = min(len(dts), len(offsets), len(sizes), len(sync))
    column = partial(np.array, dtype=np.int64)
    if codec != track.codec.fourcc:
        track = replace(track, codec=replace(track.codec, fourcc=codec, codec_string=codec))
    zeros = np.zeros(count, dtype=np.int64)
    return TrackFrames(replace(track, timescale=timescale), 0, column(dts[:count]),
                       column(dts[:count]) + column(offsets[:count]), zeros, column(sizes[:count]), zeros,
                       np.array(sync[:count], dtype=bool))


@st.composite
def _stream(draw: st.DrawFn) -> tuple[int, list[int], list[int], list[int], list[bool]]:
    """A stream's timescale and its frames' decode times, composition offsets, sizes and key flags:
    times evenly spaced (some exactly 25 ms apart, so an audio PES ends exactly at 100 ms) or any,
    up to where 64-bit arithmetic overflows; in one stream of five, sizes too large for ADTS or for
    an audio PES's length."""
    timescale = draw(st.sampled_from([1, 1000, 44_100, 48_000, 90_000, 2**32 - 1]))
    if draw(st.booleans()):
        step = draw(st.sampled_from([0, 1, 1024, timescale // 40, timescale // 10]))
        start = draw(st.integers(-(1 << 40), 1 << 40))
        dts = [start + step * i for i in range(draw(st.integers(0, 60)))]
    else:
        extremes = st.sampled_from([-(1 << 62), 1 << 62]) | st.integers(-(1 << 62), 1 << 62)
        dts = draw(st.lists(st.integers(-(1 << 40), 1 << 40) | extremes, max_size=60))
    sizes = st.sampled_from([0, 1, 7, 183, 184, 185]) | st.integers(0, 3000)
    if draw(st.integers(0, 4)) == 0:  # now and then, frames too large for ADTS, or for an audio PES
        sizes |= st.sampled_from([8184, 8185, 60_000, 70_000])
    offsets = draw(st.lists(st.integers(-3000, 3000), min_size=60, max_size=60))
    sync = draw(st.lists(st.booleans(), min_size=60, max_size=60))
    return timescale, dts, offsets, draw(st.lists(sizes, min_size=60, max_size=60)), sync


@settings(max_examples=300, deadline=None)
@given(video=st.none() | _stream(), sorted_times=st.booleans(),
       audio=st.lists(st.tuples(st.sampled_from(["mp4a", "ac-3"]), _stream()), max_size=2))
def test_generated_plans_are_the_numpy_planners(video: tuple | None, audio: list[tuple], sorted_times: bool
                                                ) -> None:
    """Any frames, times and timescales (sorted or not, ties between streams, frames too large for
    ADTS or for an audio PES): the kernel's plan, or its refusal, is numpy's."""
    movie = load_movie("bframes.mp4")
    tracks = []
    streams = [(movie.tracks[0], "avc1", video)] * (video is not None) + \
        [(movie.tracks[1], codec, stream) for codec, stream in audio]
    for track, codec, (timescale, dts, offsets, sizes, sync) in streams:
        dts = sorted(dts) if sorted_times else dts
        tracks.append(_frames(track, codec, timescale, dts, offsets, sizes, sync))

    def planned() -> np.ndarray | str:
        try:
            return mpegts.plan_segment(7, tracks).table.columns
        except UnsupportedMedia as error:
            return str(error)

    kernel = planned()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ts_kernel, "_LIBRARY", None)
        expected = planned()
    if isinstance(expected, str):
        assert kernel == expected
    else:
        assert isinstance(kernel, np.ndarray) and kernel.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(video=st.lists(st.lists(st.integers(1, 1500), min_size=1, max_size=3), min_size=0, max_size=30),
       audio=st.lists(st.integers(1, 900), min_size=0, max_size=40), key_every=st.integers(1, 10),
       number=st.integers(1, 10_000))
def test_generated_segments_are_the_numpy_writers(video: list[list[int]], audio: list[int], key_every: int,
                                                  number: int) -> None:
    tracks, source = fake_source(video, audio, key_every)
    plan = mpegts.plan_segment(number, tracks)
    expected = ts_write.write_segment_numpy(plan, source)
    for _ in range(2):  # memory of the segment's size, left dirty: the kernel's output (made
        dirty = b"\xab" * plan.size  # without zeroing) reuses it, and must overwrite every byte
        del dirty
    assert ts_write.write_segment_kernel(plan, source) == expected


@pytest.mark.parametrize(("frame", "says"), [(b"\x00\x00\x00\x09abc", "overruns"), (b"\x00\x00", "truncated"),
                                             (b"\x00\x00\x00\x01a\x00\x00", "truncated")])
def test_broken_nal_units_are_refused_alike(frame: bytes, says: str) -> None:
    tracks = [fake_frames([len(frame)], 1, False)]
    source = SourceBytes(merged_ranges(tracks, 0), [frame])
    plan = mpegts.plan_segment(1, tracks)
    for write in (ts_write.write_segment_kernel, ts_write.write_segment_numpy):
        with pytest.raises(MediaError, match=says):
            write(plan, source)


def test_frames_outside_the_bytes_read_are_refused() -> None:
    tracks = [fake_frames([40], 1, False)]
    source = SourceBytes(merged_ranges(tracks, 0), [bytes(np.zeros(20, dtype=np.uint8))])
    with pytest.raises(MediaError, match="beyond the bytes read"):
        ts_write.write_segment_kernel(mpegts.plan_segment(1, tracks), source)


def test_a_kernel_of_another_version_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library built from another version of the source (its arguments laid out otherwise) is
    never called: the numpy writer is used."""
    monkeypatch.setattr(ts_kernel, "KERNEL_VERSION", ts_kernel.KERNEL_VERSION + 1)
    assert ts_kernel._load() is None
