"""Segmenter: nominal boundaries per policy, key-frame alignment, tiling properties."""

from __future__ import annotations

import m3u8
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import MEDIA_FILES, av_tracks, load_movie
from vodorigin.errors import NotFound
from vodorigin.media.frames import cut_indexes, segment_frames
from vodorigin.media.model import Clip, MediaType
from vodorigin.media.segmenter import SegmentConfig, movie_timeline, nominal_boundaries_ms, segment_timeline
from vodorigin.packagers import hls_media


def lengths(duration_ms: int, **config: object) -> list[float]:
    bounds = nominal_boundaries_ms(duration_ms, SegmentConfig(**config))  # type: ignore[arg-type]
    return [b / 1000 for b in np.diff(bounds)]


def test_count_policies_match_reference_examples() -> None:
    assert lengths(33_000, count_policy="last_short") == [10, 10, 10, 3]
    assert lengths(33_000, count_policy="last_long") == [10, 10, 13]
    assert lengths(33_000, count_policy="last_rounded") == [10, 10, 13]
    assert lengths(38_000, count_policy="last_rounded") == [10, 10, 10, 8]
    assert lengths(30_000, count_policy="last_long") == [10, 10, 10]
    assert lengths(4_000, count_policy="last_long") == [4]


def test_bootstrap_durations() -> None:
    assert lengths(33_000, bootstrap_ms=(2000, 2000, 2000, 4000)) == [2, 2, 2, 4, 10, 10, 3]
    assert lengths(5_000, bootstrap_ms=(2000, 2000, 2000)) == [2, 2, 1]


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 400), min_size=1, max_size=80),
    tail=st.integers(0, 400),
    segment=st.integers(1, 900),
    policy=st.sampled_from(["last_short", "last_long", "last_rounded"]),
    mode=st.sampled_from(["accurate", "estimate"]),
)
def test_cuts_tile_and_start_on_key_frames(gaps: list[int], tail: int, segment: int, policy: str,
                                           mode: str) -> None:
    """Whatever the GOP pattern: cuts start at 0, end at the end, never go back, and every interior
    cut is a key frame (or, in estimate mode, the end); accurate mode lists no empty segment."""
    keys = np.cumsum([0, *gaps]).astype(np.int64)
    end = int(keys[-1]) + tail + 1
    config = SegmentConfig(segment_duration_ms=segment, count_policy=policy, durations_mode=mode)
    timeline = segment_timeline(keys, 100, 0, end, config)
    cuts = timeline.cuts
    assert cuts[0] == 0 and cuts[-1] == end
    assert np.all(np.diff(cuts) >= 0)
    assert set(cuts[1:-1].tolist()) <= set(keys.tolist()) | {end}  # empty nominal segments end there
    if mode == "accurate":
        assert np.all(timeline.durations() > 0)
        assert int(timeline.durations().sum()) == end
    else:
        assert len(timeline.listed) == len(cuts)


@pytest.mark.parametrize("name", MEDIA_FILES)
@pytest.mark.parametrize("segment_ms", [2000, 4000, 10000])
def test_segments_partition_every_track(name: str, segment_ms: int) -> None:
    """Every sample of every track is in exactly one segment; video segments start on sync samples."""
    movie = load_movie(name)
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=segment_ms))
    for track in av_tracks(movie):
        expected_first = 0
        for number in range(1, timeline.count + 1):
            frames = segment_frames(track, timeline, number, 100_000)
            assert frames.first == expected_first
            expected_first += frames.count
            if track.media_type is MediaType.VIDEO and frames.count:
                assert frames.sync[0], f"{name} segment {number} starts on a non-key frame"
        assert expected_first == track.samples.count
        cuts = cut_indexes(track, timeline)
        assert cuts[0] == 0 and cuts[-1] == track.samples.count


def test_irregular_gops_leave_no_empty_segment() -> None:
    movie = load_movie("irregular_gop.mp4")
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=2000))
    video = movie.tracks_of(MediaType.VIDEO)[0]
    counts = [segment_frames(video, timeline, n, 100_000).count for n in range(1, timeline.count + 1)]
    assert all(counts)
    key_seconds = (video.key_times / video.timescale).tolist()
    nominal = list(range(0, 30, 2))
    assert timeline.count < len(nominal)  # 2 s nominal segments, but far fewer key frames
    assert {round(c / timeline.timescale, 3) for c in timeline.cuts[:-1].tolist()} <= {
        round(k, 3) for k in key_seconds
    }


def test_estimate_mode_keeps_nominal_numbering() -> None:
    movie = load_movie("irregular_gop.mp4")
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=2000, durations_mode="estimate"))
    assert timeline.count == 15
    assert [round(d / timeline.timescale, 3) for d in timeline.durations().tolist()] == [2.0] * 15
    video = movie.tracks[0]
    empty = [n for n in range(1, 16) if segment_frames(video, timeline, n, 100_000).count == 0]
    assert empty, "irregular GOPs leave some nominal segments without a key frame"


def test_duration_policy_and_clip() -> None:
    movie = load_movie("edit_delay.mp4")
    longest = movie_timeline(movie, SegmentConfig(duration_policy="max"))
    shortest = movie_timeline(movie, SegmentConfig(duration_policy="min"))
    assert shortest.end <= longest.end
    clipped = movie_timeline(load_movie("bframes.mp4"), SegmentConfig(), Clip(5000, 12000))
    assert clipped.start / clipped.timescale == 4.0  # the key frame at or before 5 s
    assert clipped.end / clipped.timescale == 12.0 and not clipped.open_end
    with pytest.raises(NotFound):
        clipped.segment(clipped.count + 1)


@pytest.mark.parametrize(("first", "count"), [(1, 5), (3, 700), (1, 0), (5, 2),
                                              (hls_media.NUMBER_TEXTS_KEPT - 2, 5),
                                              (hls_media.NUMBER_TEXTS_KEPT + 1, 3)])
def test_segment_numbers_as_text(first: int, count: int) -> None:
    """The playlists' number table: grown as asked, sliced within it, and past its cap formatted."""
    assert hls_media._numbers(first, count) == [str(n) for n in range(first, first + count)]


def test_playlist_numbers_segments_through_clips() -> None:
    """A mapped playlist numbers its segments on through its clips, each URI with its number."""
    first = segment_timeline(None, 1000, 0, 25_000, SegmentConfig(segment_duration_ms=4000))
    second = segment_timeline(None, 1000, 0, 9_000, SegmentConfig(segment_duration_ms=4000))
    playlist = m3u8.loads(hls_media.render_media_playlist([first, second], "v1"))
    assert [s.uri for s in playlist.segments] == [f"seg-{n}-v1.ts" for n in range(1, 11)]
    assert [s.duration for s in playlist.segments] == [4, 4, 4, 4, 4, 4, 1, 4, 4, 1]
