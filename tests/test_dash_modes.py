"""The other MPD addressing modes (fixed-duration SegmentTemplate, SegmentList) and the optional sidx."""

from __future__ import annotations

import math
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from lxml import etree

from tests.conftest import (
    FIXTURES,
    LIVE_SETTINGS,
    LiveServer,
    ffmpeg_read_errors,
    ffprobe_json,
    ffprobe_packets,
    load_movie,
    require_tools,
    without_template_overrun,
)
from tests.test_dash import NS, fragment_times
from vodorigin.media.model import Clip, MediaSet
from vodorigin.mp4.boxes import iter_boxes
from vodorigin.packagers import dash
from vodorigin.packagers.output import PackagerContext
from vodorigin.settings import Settings, SettingsError, load_settings

MEDIA_SETS = ["bframes.mp4", "irregular_gop.mp4", "audio_only.m4a", "clip_,180p,360p,.mp4.urlset",
              "clipFrom/5000/clipTo/15000/bframes.mp4"]


def _mode_server(mode: str) -> Iterator[tuple[str, LiveServer]]:
    settings = Settings(media_root=str(FIXTURES), segment_duration=4.0, dash_manifest_format=mode,
                        dash_segment_index=mode == "segmentlist")
    with LiveServer(settings) as server:
        yield mode, server


@pytest.fixture(scope="module")
def template_server() -> Iterator[tuple[str, LiveServer]]:
    yield from _mode_server("segmenttemplate")


@pytest.fixture(scope="module")
def list_server() -> Iterator[tuple[str, LiveServer]]:
    yield from _mode_server("segmentlist")


@pytest.fixture(params=["template_server", "list_server"])
def mode_server(request: pytest.FixtureRequest) -> tuple[str, LiveServer]:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.mark.parametrize("media_set", MEDIA_SETS)
def test_ffmpeg_reads_every_mode(media_set: str, mode_server: tuple[str, LiveServer]) -> None:
    mode, server = mode_server
    mpd = etree.fromstring(httpx.get(f"{server.base}/dash/{media_set}/manifest.mpd").content)
    element = "SegmentList" if mode == "segmentlist" else "SegmentTemplate"
    assert mpd.findall(f".//d:Representation/d:{element}", NS)
    errors = ffmpeg_read_errors(f"{server.base}/dash/{media_set}/manifest.mpd")
    if mode == "segmenttemplate":
        errors = without_template_overrun(errors)
    assert errors == ""


def test_segment_list_names_every_fragment(list_server: tuple[str, LiveServer]) -> None:
    _, server = list_server
    mpd = etree.fromstring(httpx.get(f"{server.base}/dash/bframes.mp4/manifest.mpd").content)
    for representation in mpd.findall(".//d:Representation", NS):
        segments = representation.find("d:SegmentList", NS)
        timeline = [int(s.get("r", "0")) + 1 for s in segments.findall("d:SegmentTimeline/d:S", NS)]
        urls = [u.get("media") for u in segments.findall("d:SegmentURL", NS)]
        assert len(urls) == sum(timeline)
        init = segments.find("d:Initialization", NS).get("sourceURL")
        assert httpx.get(f"{server.base}/dash/bframes.mp4/{init}").status_code == 200
        for url in urls:
            assert httpx.head(f"{server.base}/dash/bframes.mp4/{url}").status_code == 200


@pytest.mark.parametrize("media_set", MEDIA_SETS)
def test_fixed_template_numbers(media_set: str, template_server: tuple[str, LiveServer],
                                tmp_path: Path) -> None:
    """23009-1 5.3.9.5.3: a player derives ceil(duration / @duration) segments, number N starting
    near (N - 1) * @duration. Each exists, the next does not, and tfdt follows the numbers: fragment
    N's decode time is within a GOP of (N - 1) * @duration (irregular_gop fails this when segments
    are dropped and the numbering shifts)."""
    _, server = template_server
    base = f"{server.base}/dash/{media_set}"
    mpd = etree.fromstring(httpx.get(f"{base}/manifest.mpd").content)
    seconds = float(mpd.get("mediaPresentationDuration")[2:-1])
    names = ["clip_180p.mp4", "clip_360p.mp4"] if "urlset" in media_set else [media_set.split("/")[-1]]
    videos = [t for n in names for t in load_movie(n).tracks if t.key_times is not None]
    gops = [float(np.max(np.diff(t.key_times, append=t.presentation_end))) / t.timescale for t in videos]
    longest_gop = max(gops, default=0.1)  # audio is cut at the frame at or after the nominal time
    for representation in mpd.findall(".//d:Representation", NS):
        template = representation.find("d:SegmentTemplate", NS)
        assert template.find("d:SegmentTimeline", NS) is None
        timescale, duration = int(template.get("timescale")), int(template.get("duration"))
        assert duration == 4 * timescale
        count = math.ceil(seconds * timescale / duration - 1e-9)
        rep_id = representation.get("id")
        offset = int(template.get("presentationTimeOffset"))
        init = httpx.get(f"{base}/init-{rep_id}.mp4").content
        fragments = []
        for number in range(1, count + 1):
            response = httpx.get(f"{base}/fragment-{number}-{rep_id}.m4s")
            assert response.status_code == 200, f"{rep_id} fragment {number} of {count}"
            fragments.append(response.content)
            tfdt, durations, _, _ = fragment_times(response.content)
            if not durations:
                continue  # a GOP longer than @duration leaves a segment with no sample start in it
            late = tfdt - offset - (number - 1) * duration  # the cut waits for the next key frame
            assert -timescale // 10 <= late <= longest_gop * timescale, f"{rep_id} {number}: {late}"
        assert httpx.get(f"{base}/fragment-{count + 1}-{rep_id}.m4s").status_code == 404
        path = tmp_path / f"{rep_id}.mp4"
        path.write_bytes(init + b"".join(fragments))
        assert ffprobe_packets(path)


def test_sidx_indexes_its_fragment() -> None:
    """styp, sidx, moof, mdat: the sidx reference covers exactly moof + mdat, its duration is the sum
    of the trun durations and its earliest presentation time is the first sample's."""
    settings = Settings(media_root=str(FIXTURES), dash_segment_index=True, **LIVE_SETTINGS)
    with LiveServer(settings) as server, httpx.Client(base_url=server.base) as http:
        for rep_id in ("v1", "a1"):
            for number in (1, 2, 3):
                fragment = http.get(f"/dash/bframes.mp4/fragment-{number}-{rep_id}.m4s").content
                boxes = list(iter_boxes(fragment, 0, len(fragment)))
                assert [b.type for b in boxes] == [b"styp", b"sidx", b"moof", b"mdat"]
                sidx = boxes[1]
                version = fragment[sidx.payload_start]
                assert version == 1
                _, timescale, earliest, first_offset, _, count, reference, duration, sap = struct.unpack_from(
                    ">IIQQHHIII", fragment, sidx.payload_start + 4)
                assert count == 1 and first_offset == 0
                assert reference & 0x7FFFFFFF == boxes[3].end - boxes[2].start
                base, durations, _, offsets = fragment_times(fragment)
                assert duration == sum(durations)
                decode_times = [base + sum(durations[:i]) for i in range(len(durations))]
                assert earliest == min(t + o for t, o in zip(decode_times, offsets, strict=True))
                assert sap >> 31 == 1


def test_fixed_template_refuses_bootstrap_durations() -> None:
    with pytest.raises(SettingsError, match="bootstrap"):
        load_settings(overrides={"dash_manifest_format": "segmenttemplate",
                                 "bootstrap_segment_durations": [2]})


def test_sar_comes_from_pasp(tmp_path: Path) -> None:
    """A file with a pixel aspect ratio box: its ratio (as ffprobe reads it) is the MPD's sar."""
    require_tools()
    target = tmp_path / "anamorphic.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(FIXTURES / "video_only.mp4"), "-c", "copy",
                    "-aspect", "4:3", str(target)], check=True)
    expected = ffprobe_json(target, "-show_streams")["streams"][0]["sample_aspect_ratio"]
    movie = load_movie(target.name, tmp_path)
    assert "{}:{}".format(*movie.tracks[0].codec.pixel_aspect) == expected == "3:4"
    context = PackagerContext.from_settings(Settings())
    mpd = etree.fromstring(dash.handle("manifest.mpd", MediaSet((movie,), Clip()), context).body)  # type: ignore[union-attr]
    assert mpd.find(".//d:Representation", NS).get("sar") == expected


@pytest.mark.parametrize("mode", ["segmenttimeline", "segmentlist"])
def test_profiles_and_set_attributes(mode: str, http: httpx.Client, list_server: tuple[str, LiveServer]
                                     ) -> None:
    """The profile the addressing conforms to (SegmentList is not in the live profile), a
    minBufferTime of at least the longest segment, and the video set's maxWidth, maxHeight,
    maxFrameRate and picture aspect ratio over its Representations."""
    base = str(http.base_url) if mode == "segmenttimeline" else list_server[1].base
    mpd = etree.fromstring(httpx.get(f"{base}/dash/clip_,180p,360p,.mp4.urlset/manifest.mpd").content)
    profile = "full" if mode == "segmentlist" else "isoff-live"
    assert mpd.get("profiles") == f"urn:mpeg:dash:profile:{profile}:2011"
    longest = 0.0
    for representation in mpd.iterfind(".//d:Representation", NS):
        timeline = representation.find(".//d:SegmentTimeline", NS)
        addressing = representation.find("d:SegmentTemplate", NS)
        if addressing is None:
            addressing = representation.find("d:SegmentList", NS)
        timescale = int(addressing.get("timescale"))
        longest = max(longest, *(int(s.get("d")) / timescale for s in timeline.iterfind("d:S", NS)))
    buffer = mpd.get("minBufferTime")
    assert float(buffer.removeprefix("PT").removesuffix("S")) >= longest
    (video,) = mpd.iterfind(".//d:AdaptationSet[@contentType='video']", NS)
    representations = video.findall("d:Representation", NS)
    assert int(video.get("maxWidth")) == max(int(r.get("width")) for r in representations) == 640
    assert int(video.get("maxHeight")) == max(int(r.get("height")) for r in representations) == 360
    assert video.get("maxFrameRate") == "30" and {r.get("frameRate") for r in representations} == {"30"}
    assert video.get("par") == "16:9"
