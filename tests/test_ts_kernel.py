"""The compiled TS writer (mux/_ts_kernel.c) against the numpy writer it stands in for: the same
bytes for every segment of every fixture (clear and SAMPLE-AES), for generated frames, and the same
refusals of broken NAL units. `make test` builds the kernel (scripts/setup.sh), so it must be here.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, MEDIA_FILES
from tests.test_mpegts import fake_frames, fake_source
from vodorigin.drm.keys import FileKeys, secret_key
from vodorigin.errors import MediaError, VodError
from vodorigin.media.frames import SourceBytes, merged_ranges
from vodorigin.media.model import MediaSet
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
def test_every_fixture_segment_is_the_numpy_writers(name: str, method: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = (FIXTURES / name).read_bytes()
    segments = _segments(name, method)
    for segment in segments:
        source = SourceBytes(segment.ranges, [data[r.offset : r.offset + r.length] for r in segment.ranges])
        kernel = segment.render(source)
        with monkeypatch.context() as patch:
            patch.setattr(ts_kernel, "_LIBRARY", None)
            assert segment.render(source) == kernel
    # every fixture has TS segments; SAMPLE-AES in TS carries all but HEVC
    assert segments or (method, name) == ("sample-aes", "hevc.mp4"), "no segment compared"


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
    assert ts_kernel.write_segment(plan, source) == expected


@pytest.mark.parametrize(("frame", "says"), [(b"\x00\x00\x00\x09abc", "overruns"), (b"\x00\x00", "truncated"),
                                             (b"\x00\x00\x00\x01a\x00\x00", "truncated")])
def test_broken_nal_units_are_refused_alike(frame: bytes, says: str) -> None:
    tracks = [fake_frames([len(frame)], 1, False)]
    source = SourceBytes(merged_ranges(tracks, 0), [frame])
    plan = mpegts.plan_segment(1, tracks)
    for write in (ts_kernel.write_segment, ts_write.write_segment_numpy):
        with pytest.raises(MediaError, match=says):
            write(plan, source)


def test_frames_outside_the_bytes_read_are_refused() -> None:
    tracks = [fake_frames([40], 1, False)]
    source = SourceBytes(merged_ranges(tracks, 0), [bytes(np.zeros(20, dtype=np.uint8))])
    with pytest.raises(MediaError, match="beyond the bytes read"):
        ts_kernel.write_segment(mpegts.plan_segment(1, tracks), source)


def test_a_kernel_of_another_version_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library built from another version of the source (its arguments laid out otherwise) is
    never called: the numpy writer is used."""
    monkeypatch.setattr(ts_kernel, "KERNEL_VERSION", ts_kernel.KERNEL_VERSION + 1)
    assert ts_kernel._load() is None
