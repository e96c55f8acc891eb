"""fMP4 muxer: init + fragments read by ffmpeg/ffprobe with our timestamps; planned size exact."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, ffprobe_packets, load_movie, require_tools
from vodorigin.media.frames import SourceBytes, merged_ranges, segment_frames
from vodorigin.media.model import Track
from vodorigin.media.segmenter import SegmentConfig, movie_timeline
from vodorigin.mp4.boxes import iter_boxes
from vodorigin.mux import fmp4

OFFSET_SECONDS = 10  # one presentation offset for every track of the set


def build_stream(name: str, tracks: list[Track], segment_ms: int = 4000) -> tuple[bytes, list[int]]:
    """init + every fragment of `tracks` (muxed in each fragment); returns the bytes and fragment sizes."""
    movie = load_movie(name)
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=segment_ms))
    data = (FIXTURES / name).read_bytes()
    output = [fmp4.init_segment(tracks)]
    sizes = []
    for number in range(1, timeline.count + 1):
        frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
        plan = fmp4.plan_fragment(number, [fmp4.FragmentTrack(f, OFFSET_SECONDS * f.track.timescale)
                                           for f in frames], segment_type=True)
        ranges = merged_ranges(frames, 65536)
        source = SourceBytes(ranges, [data[r.offset : r.offset + r.length] for r in ranges])
        fragment = fmp4.write_fragment(plan, [source.frame_views(f) for f in frames])
        assert len(fragment) == plan.size
        sizes.append(len(fragment))
        output.append(fragment)
    return b"".join(output), sizes


FILES = ["bframes.mp4", "moov_end.mp4", "hevc.mp4", "audio_only.m4a", "edit_delay.mp4"]


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("muxed", [False, True])
def test_fragments_read_with_our_timestamps(name: str, muxed: bool, tmp_path: Path) -> None:
    require_tools()
    movie = load_movie(name)
    groups = [list(movie.tracks)] if muxed else [[t] for t in movie.tracks]
    for tracks in groups:
        stream, _ = build_stream(name, tracks)
        path = tmp_path / "stream.mp4"
        path.write_bytes(stream)
        command = ["ffmpeg", "-nostdin", "-v", "warning", "-xerror", "-i", str(path), "-f", "null", "-"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        packets = ffprobe_packets(path)
        for index, track in enumerate(tracks):
            ours = [p for p in packets if p["stream_index"] == index]
            samples = track.samples
            assert len(ours) == samples.count
            expected_dts = samples.dts + track.edit_shift + OFFSET_SECONDS * track.timescale
            assert [int(p["dts"]) for p in ours] == expected_dts.tolist()
            expected_pts = samples.pts() + track.edit_shift + OFFSET_SECONDS * track.timescale
            assert [int(p["pts"]) for p in ours] == expected_pts.tolist()
            assert [int(p["size"]) for p in ours] == samples.sizes.tolist()


def test_fragment_box_layout() -> None:
    """init is ftyp + moov; a DASH fragment is styp + moof + mdat (sizes walked by our parser)."""
    movie = load_movie("bframes.mp4")
    stream, sizes = build_stream("bframes.mp4", [movie.tracks[0]])
    init_size = len(stream) - sum(sizes)
    first = stream[init_size : init_size + sizes[0]]
    types = [box.type for box in iter_boxes(first, 0, len(first))]
    assert types == [b"styp", b"moof", b"mdat"]
    init_types = [box.type for box in iter_boxes(stream, 0, init_size)]
    assert init_types == [b"ftyp", b"moov"]
