"""DASH end to end: the MPD read by ffmpeg, every representation's fragments checked box by box."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.conftest import MEDIA_FILES, LiveServer, ffmpeg_read_errors, ffprobe_packets, load_movie
from vodorigin.mp4.boxes import find_path, iter_boxes

URLSET = "clip_,180p,360p,.mp4.urlset"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
CLIPPED = "clipFrom/5000/clipTo/15000/bframes.mp4"


@pytest.mark.parametrize("media_set", [*MEDIA_FILES, URLSET, CLIPPED])
def test_ffmpeg_reads_the_manifest(media_set: str, live: LiveServer) -> None:
    assert ffmpeg_read_errors(f"{live.base}/dash/{media_set}/manifest.mpd") == ""


def fragment_times(fragment: bytes) -> tuple[int, list[int], list[int], list[int]]:
    """(tfdt, durations, flags, composition offsets) of a one-track fragment, read with our box walker."""
    moof = next(b for b in iter_boxes(fragment, 0, len(fragment)) if b.type == b"moof")
    tfdt = find_path(fragment, moof, b"traf", b"tfdt")
    trun = find_path(fragment, moof, b"traf", b"trun")
    assert tfdt is not None and trun is not None
    (base,) = struct.unpack_from(">Q", fragment, tfdt.payload_start + 4)
    count = struct.unpack_from(">I", fragment, trun.payload_start + 4)[0]
    entries = [struct.unpack_from(">IIIi", fragment, trun.payload_start + 12 + 16 * i) for i in range(count)]
    return base, [e[0] for e in entries], [e[2] for e in entries], [e[3] for e in entries]


@pytest.mark.parametrize("media_set", [*MEDIA_FILES, URLSET, CLIPPED])
def test_every_representation(media_set: str, http: httpx.Client, tmp_path: Path) -> None:
    """Per representation: S@t is the first fragment's earliest presentation time, each tfdt continues
    the previous fragment, video fragments start on sync samples, and the fragments hold every sample
    of the timeline (unclipped: of the track)."""
    response = http.get(f"/dash/{media_set}/manifest.mpd")
    assert response.status_code == 200 and response.headers["content-type"] == "application/dash+xml"
    mpd = etree.fromstring(response.content)
    representations = [r for r in mpd.findall(".//d:Representation", NS)
                       if r.getparent().get("contentType") != "text"]  # subtitles: tests/test_subtitles.py
    assert representations
    for representation in representations:
        rep_id = representation.get("id")
        template = representation.find("d:SegmentTemplate", NS)
        timeline = [(int(s.get("d")), int(s.get("r", "0"))) for s in template.findall(".//d:S", NS)]
        count = sum(r + 1 for _, r in timeline)
        listed = sum(d * (r + 1) for d, r in timeline)
        init = http.get(f"/dash/{media_set}/init-{rep_id}.mp4").content
        fragments = [http.get(f"/dash/{media_set}/fragment-{n}-{rep_id}.m4s").content
                     for n in range(1, count + 1)]
        assert http.get(f"/dash/{media_set}/fragment-{count + 1}-{rep_id}.m4s").status_code == 404
        expected_next = None
        video = representation.getparent().get("contentType") == "video"
        first_t = int(template.findall(".//d:S", NS)[0].get("t"))
        base, _, _, offsets = fragment_times(fragments[0])
        earliest = base + (offsets[0] if video else 0)
        assert first_t == earliest, f"{rep_id}: S@t {first_t} but the first fragment starts at {earliest}"
        for fragment in fragments:
            base, durations, flags, _ = fragment_times(fragment)
            if expected_next is not None:
                assert base == expected_next, f"{rep_id}: tfdt does not continue the previous fragment"
            expected_next = base + sum(durations)
            if video:
                assert flags[0] == 0x02000000, f"{rep_id}: a video fragment starts on a non-sync sample"
        path = tmp_path / f"{rep_id}.mp4"
        path.write_bytes(init + b"".join(fragments))
        packets = ffprobe_packets(path)
        assert expected_next is not None
        # The fragments end where the timeline does; at a clipTo end video is cut in decode order,
        # so B-frame reordering may show up to two frames past it (README, known limits).
        covered = expected_next + (offsets[0] if video else 0)
        assert abs(covered - (first_t + listed)) <= 2 * max(durations), f"{rep_id}: end {covered}"
        if media_set == CLIPPED:
            continue
        name = media_set if "urlset" not in media_set else f"clip_{'180p' if 'f1' in rep_id else '360p'}.mp4"
        track = next(t for t in load_movie(name).tracks if t.key == rep_id.split("-")[-1])
        assert len(packets) == track.samples.count
        first = first_t - int(template.get("presentationTimeOffset"))
        assert listed == track.presentation_end - first, f"{rep_id}: timeline sum is not the duration"


def test_bad_dash_names(http: httpx.Client) -> None:
    assert http.get("/dash/bframes.mp4/fragment-1.m4s").status_code == 400  # no representation
    assert http.get("/dash/bframes.mp4/fragment-1-v1-a1.m4s").status_code == 400  # two tracks
    assert http.get("/dash/bframes.mp4/init-v3.mp4").status_code == 404
    assert http.get("/dash/bframes.mp4/nothing.xml").status_code == 400
