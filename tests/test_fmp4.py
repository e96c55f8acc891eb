"""fMP4 muxer: init + fragments read by ffmpeg/ffprobe with our timestamps; planned size exact."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, av_tracks, ffprobe_packets, load_movie, require_tools
from vodorigin.errors import MediaError
from vodorigin.media.frames import SourceBytes, merged_ranges, segment_frames
from vodorigin.media.model import Track
from vodorigin.media.segmenter import SegmentConfig, movie_timeline
from vodorigin.mp4.boxes import Box, find_path, full_box_header, iter_boxes
from vodorigin.mp4.codecs import parse_sample_entry
from vodorigin.mp4.fragments import TFHD_DEFAULT_BASE_IS_MOOF, parse_moof, parse_sidx
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
    groups = [list(av_tracks(movie))] if muxed else [[t] for t in av_tracks(movie)]
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


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("indexed", [False, True])
def test_fragment_boxes_round_trip(name: str, indexed: bool) -> None:
    """parse(build(x)) == x for styp, sidx, moof (mfhd, tfhd, tfdt, trun) and mdat: each field read
    back with our fragment parser equals the frames it was built from, and every trun data offset
    points at its frames' bytes."""
    movie = load_movie(name)
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=4000))
    data = (FIXTURES / name).read_bytes()
    av = av_tracks(movie)
    groups = [[t] for t in av] if indexed else [list(av)]  # sidx: one-track fragments
    for tracks in groups:
        for number in range(1, timeline.count + 1):
            frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
            parts = [fmp4.FragmentTrack(f, OFFSET_SECONDS * f.track.timescale) for f in frames]
            plan = fmp4.plan_fragment(number, parts, segment_type=True, segment_index=indexed)
            ranges = merged_ranges(frames, 65536)
            source = SourceBytes(ranges, [data[r.offset : r.offset + r.length] for r in ranges])
            fragment = fmp4.write_fragment(plan, [source.frame_views(f) for f in frames])
            assert len(fragment) == plan.size
            boxes = {b.type: b for b in iter_boxes(fragment, 0, len(fragment))}
            expected = [b"styp", b"sidx", b"moof", b"mdat"] if indexed else [b"styp", b"moof", b"mdat"]
            assert list(boxes) == expected
            moof = parse_moof(fragment, boxes[b"moof"])
            assert moof.sequence_number == number
            assert [t.track_id for t in moof.tracks] == [t.track_id for t in tracks]
            for part, traf in zip(parts, moof.tracks, strict=True):
                f = part.frames
                assert traf.tfhd_flags == TFHD_DEFAULT_BASE_IS_MOOF
                assert traf.base_decode_time == int(f.dts[0]) + part.decode_offset
                (run,) = traf.runs
                assert run.count == f.count and run.first_sample_flags is None
                assert run.durations.tolist() == f.durations.tolist()
                assert run.sizes.tolist() == f.sizes.tolist()
                assert run.composition_offsets.tolist() == (f.pts - f.dts).tolist()
                assert ((run.flags & 0x10000) == 0).tolist() == f.sync.tolist()  # sample_is_non_sync
                start = boxes[b"moof"].start + run.data_offset
                assert fragment[start : start + int(f.sizes.sum())] == b"".join(source.frame_views(f))
            if indexed:
                index = parse_sidx(fragment, boxes[b"sidx"])
                f = parts[0].frames
                (reference,) = index.references
                assert (index.reference_id, index.timescale) == (f.track.track_id, f.track.timescale)
                assert index.earliest_presentation_time == int(f.pts.min()) + parts[0].decode_offset
                assert index.first_offset == 0 and reference.reference_type == 0
                assert reference.referenced_size == boxes[b"mdat"].end - boxes[b"moof"].start
                assert reference.subsegment_duration == int(f.durations.sum())
                assert reference.starts_with_sap == bool(f.sync[0])


def test_hostile_fragments_are_media_errors() -> None:
    """moof and sidx boxes cut anywhere (their size shrunk to match, as a hostile file would) and a
    trun whose sample count overruns it: MediaError, never an IndexError or a struct.error."""
    movie = load_movie("bframes.mp4")
    timeline = movie_timeline(movie, SegmentConfig(segment_duration_ms=4000))
    frames = segment_frames(movie.tracks[0], timeline, 1, 100_000)
    head = fmp4.plan_fragment(1, [fmp4.FragmentTrack(frames)], segment_index=True).head
    boxes = {b.type: b for b in iter_boxes(head, 0, len(head) - 8)}  # all but the mdat header
    errors = 0
    for box_type, parse in ((b"moof", parse_moof), (b"sidx", parse_sidx)):
        whole = head[boxes[box_type].start : boxes[box_type].end]
        for cut in range(8, len(whole)):
            data = struct.pack(">I", cut) + whole[4:cut]
            try:
                parse(data, Box(box_type, 0, 8, cut))
            except MediaError:
                errors += 1
    assert errors > 100
    corrupt = bytearray(head)
    trun_at = head.find(b"trun")
    corrupt[trun_at + 8 : trun_at + 12] = (10**6).to_bytes(4, "big")  # sample_count far past the box
    with pytest.raises(MediaError, match="trun"):
        parse_moof(bytes(corrupt), boxes[b"moof"])


@pytest.mark.parametrize("name", FILES)
def test_init_segment_round_trip(name: str) -> None:
    """Each init trak reads back with the source's track id, timescale, language and sample entry
    (parsed again into the same codec description), and a trex per track."""
    movie = load_movie(name)
    init = fmp4.init_segment(list(av_tracks(movie)))
    boxes = {b.type: b for b in iter_boxes(init, 0, len(init))}
    assert list(boxes) == [b"ftyp", b"moov"]
    moov = boxes[b"moov"]
    traks = [b for b in iter_boxes(init, moov.payload_start, moov.end) if b.type == b"trak"]
    trexes = [b for b in iter_boxes(init, find_path(init, moov, b"mvex").payload_start,
                                    find_path(init, moov, b"mvex").end) if b.type == b"trex"]
    assert len(traks) == len(trexes) == len(av_tracks(movie))
    for track, trak, trex in zip(av_tracks(movie), traks, trexes, strict=True):
        tkhd = find_path(init, trak, b"tkhd")
        times = 16 if full_box_header(init, tkhd)[0] == 1 else 8  # creation + modification times
        assert struct.unpack_from(">I", init, tkhd.payload_start + 4 + times)[0] == track.track_id
        assert struct.unpack_from(">I", init, trex.payload_start + 4)[0] == track.track_id
        mdhd = find_path(init, trak, b"mdia", b"mdhd")
        times = 16 if full_box_header(init, mdhd)[0] == 1 else 8
        assert struct.unpack_from(">I", init, mdhd.payload_start + 4 + times)[0] == track.timescale
        stsd = find_path(init, trak, b"mdia", b"minf", b"stbl", b"stsd")
        entry_box = next(iter_boxes(init, stsd.payload_start + 8, stsd.end))
        entry = init[entry_box.start : entry_box.end]
        assert entry == track.codec.sample_entry
        assert parse_sample_entry(entry, track.media_type) == track.codec
