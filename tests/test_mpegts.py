"""MPEG-TS muxer: exact planned size, continuity across independent segments, PSI, timestamps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import tsparse
from tests.conftest import FIXTURES, MEDIA_FILES, av_tracks, load_movie
from tests.ts_reference import reference_segment
from vodorigin.errors import UnsupportedMedia
from vodorigin.media.frames import SourceBytes, TrackFrames, cut_indexes, merged_ranges, segment_frames
from vodorigin.media.segmenter import SegmentConfig, movie_timeline
from vodorigin.mux import mpegts
from vodorigin.mux.adts import MAX_FRAME_LENGTH
from vodorigin.mux.ts_write import write_segment


def build_segments(name: str, segment_ms: int = 4000) -> list[bytes]:
    movie = load_movie(name)
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=segment_ms))
    data = (FIXTURES / name).read_bytes()
    segments = []
    for number in range(1, timeline.count + 1):
        frames = [segment_frames(t, timeline, number, 100_000) for t in av_tracks(movie)]
        plan = mpegts.plan_segment(number, frames)
        ranges = merged_ranges(frames, 65536)
        source = SourceBytes(ranges, [data[r.offset : r.offset + r.length] for r in ranges])
        output = write_segment(plan, source)
        assert output == reference_segment(plan, [source.frame_views(f) for f in frames])
        assert len(output) == plan.size
        segments.append(output)
    return segments


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_segments_are_continuous_and_well_formed(name: str) -> None:
    segments = build_segments(name)
    stream = tsparse.packets(b"".join(segments))
    assert tsparse.continuity_errors(stream) == []
    for packet in stream:
        if packet.pid in (mpegts.PAT_PID, mpegts.PMT_PID):
            tsparse.check_psi_crc(packet)
    for segment in segments:  # each segment also starts clean: PAT, then PMT
        first = tsparse.packets(segment[:376])
        assert [p.pid for p in first] == [mpegts.PAT_PID, mpegts.PMT_PID]


def test_timestamps_continue_across_segments() -> None:
    movie = load_movie("bframes.mp4")
    stream = tsparse.packets(b"".join(build_segments("bframes.mp4")))
    for pid, track in zip((0x100, 0x101), av_tracks(movie), strict=True):
        dts = [tsparse.pes_timestamp(p)[1] for p in tsparse.pes_payloads(stream, pid)]
        assert all(b > a for a, b in zip(dts, dts[1:], strict=False)), f"dts not increasing on {pid:#x}"
        first = (int(track.samples.dts[0]) + track.edit_shift) * 90000 // track.timescale
        assert dts[0] == first + mpegts.TIMESTAMP_OFFSET


def fake_frames(sizes: list[int], key_every: int, audio: bool, first_offset: int = 0) -> TrackFrames:
    """Frames of the sizes given, stored one after another from first_offset (see fake_source)."""
    movie = load_movie("bframes.mp4")
    track = movie.tracks[1 if audio else 0]
    count = len(sizes)
    step = 1024 if audio else 512
    dts = np.arange(count, dtype=np.int64) * step
    offsets = first_offset + np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) if count else \
        np.zeros(0, dtype=np.int64)
    return TrackFrames(
        track=track, first=0, dts=dts, pts=dts + (0 if audio else 1024),
        durations=np.full(count, step, dtype=np.int64), sizes=np.array(sizes, dtype=np.int64),
        offsets=offsets, sync=(np.arange(count) % key_every) == 0,
    )


def fake_source(video: list[list[int]], audio: list[int], key_every: int, seed: int = 0
                ) -> tuple[list[TrackFrames], SourceBytes]:
    """A video track whose frames hold NAL units of the sizes given (each with its 4-byte length)
    and an audio track, in one buffer of varied bytes, as they would be read for a segment."""
    rng = np.random.default_rng(seed)
    frames = [b"".join(n.to_bytes(4, "big") + rng.bytes(n) for n in nals) for nals in video]
    data = b"".join(frames) + rng.bytes(sum(audio))
    tracks = [fake_frames([len(f) for f in frames], key_every, False),
              fake_frames(audio, 1, True, sum(len(f) for f in frames))]
    return tracks, SourceBytes(merged_ranges(tracks, 0) or [], [data] if data else [])


@settings(max_examples=150, deadline=None)
@given(
    video=st.lists(st.lists(st.integers(1, 1500), min_size=1, max_size=3), min_size=0, max_size=40),
    audio=st.lists(st.integers(1, 900), min_size=0, max_size=60),
    key_every=st.integers(1, 10),
    number=st.integers(1, 10_000),
)
def test_planned_size_equals_bytes_written(video: list[list[int]], audio: list[int], key_every: int,
                                           number: int) -> None:
    """Any frames: the planned size, continuity counters that restart at 0 and pad to 16, and the
    same bytes as the plain reference writer (tests/ts_reference.py)."""
    tracks, source = fake_source(video, audio, key_every)
    plan = mpegts.plan_segment(number, tracks)
    output = write_segment(plan, source)
    assert len(output) == plan.size
    assert output == reference_segment(plan, [source.frame_views(t) for t in tracks])
    stream = tsparse.packets(output)
    assert stream[0].counter == number % 16
    for pid, total in ((0x100, sum(map(sum, video)) + 4 * sum(map(len, video))), (0x101, sum(audio))):
        ours = [p for p in stream if p.pid == pid]
        assert [p.counter for p in ours] == [i % 16 for i in range(len(ours))]
        if total >= 16:  # enough bytes to spread over padding packets
            assert len(ours) % 16 == 0, 'not padded: the next segment would not continue at 0'


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_segment_packets_are_the_muxers(name: str) -> None:
    """The packet counts manifests use for BANDWIDTH equal the muxer's plan, segment by segment
    (never below it: audio of varying frame durations may be counted high)."""
    movie = load_movie(name)
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=4000, bootstrap_ms=(2000,)))
    tracks = list(av_tracks(movie))
    pcr = next((i for i, t in enumerate(tracks) if t.media_type.value == "video"), 0)
    counts = sum(mpegts.segment_packets(t, cut_indexes(t, timeline), i == pcr) for i, t in enumerate(tracks))
    for number in range(1, timeline.count + 1):
        frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
        plan = mpegts.plan_segment(number, frames)
        assert counts[number - 1] + mpegts.PSI_PACKETS == plan.packet_count, (name, number)


def test_crc32_mpeg2_known_value() -> None:
    assert mpegts.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def test_what_no_writer_carries_is_refused_by_the_plan() -> None:
    """An AAC frame longer than ADTS's 13-bit length is a 415 before any byte is read."""
    with pytest.raises(UnsupportedMedia, match="too large for ADTS"):
        mpegts.plan_segment(1, [fake_frames([MAX_FRAME_LENGTH], 1, True)])
    mpegts.plan_segment(1, [fake_frames([MAX_FRAME_LENGTH - 7], 1, True)])  # the longest that fits


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.one_of(st.integers(1, 12), st.integers(1, 3000)), min_size=1, max_size=60),
       key_every=st.integers(1, 8),
       data=st.data())
def test_video_only_packets_are_the_plans_of_each_segment(sizes: list[int], key_every: int,
                                                          data: st.DataObject) -> None:
    """video_only_packets over segments cut anywhere (tiny last frames included, whose PES cannot
    take the continuity padding, so that an earlier one must) == what plan_segment lays out."""
    frames = fake_frames(sizes, key_every, False)
    inner = sorted(data.draw(st.sets(st.integers(1, len(sizes) - 1), max_size=8))) if len(sizes) > 1 else []
    cuts = [0, *inner, len(sizes)]
    packets = mpegts.video_only_packets(frames, cuts)
    for number, (start, stop) in enumerate(zip(cuts, cuts[1:], strict=False), 1):
        plan = mpegts.plan_segment(number, [frames.part(start, stop)])
        assert packets[start:stop].tolist() == plan.table.packets.tolist()
