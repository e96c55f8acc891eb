"""Smooth Streaming: the manifest against ffprobe's view of each fixture, every fragment listed read
back by our box parser and, behind an init segment made for it, decoded by ffmpeg."""

from __future__ import annotations

import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.conftest import FIXTURES, MEDIA_FILES, ffprobe_json, ffprobe_packets, load_movie, require_tools
from vodorigin.media.model import MediaType
from vodorigin.mp4.boxes import iter_boxes
from vodorigin.mp4.fragments import parse_moof
from vodorigin.mux import fmp4

TIMESCALE = 10_000_000
TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")
# files with one audio track and no subtitles: several languages and text streams are in test_languages.py
SETS = {name: [name] for name in MEDIA_FILES if name not in ("multi_audio.mp4", "subs_embedded.mp4")}
SETS["clip_,180p,360p,.mp4.urlset"] = ["clip_180p.mp4", "clip_360p.mp4"]


def manifest(http: httpx.Client, media: str) -> etree._Element:
    response = http.get(f"/mss/{media}/manifest")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == "SmoothStreamingMedia" and root.get("MajorVersion") == "2"
    assert root.get("TimeScale") == str(TIMESCALE)
    return root


def chunks(stream: etree._Element) -> list[tuple[int, int]]:
    return [(int(c.get("t")), int(c.get("d"))) for c in stream.findall("c")]


def fragment_url(media: str, stream: etree._Element, level: etree._Element, time: int) -> str:
    url = stream.get("Url").replace("{bitrate}", level.get("Bitrate")).replace("{start time}", str(time))
    return f"/mss/{media}/{url}"


def _parameter_sets(codec: str, config: bytes) -> list[bytes]:
    """NAL units of an avcC or hvcC record (ISO/IEC 14496-15), read here independently of vodorigin."""
    nals = []
    if codec == "h264":
        pos, count = 6, config[5] & 0x1F
        for group in range(2):
            for _ in range(count):
                length = struct.unpack_from(">H", config, pos)[0]
                nals.append(config[pos + 2 : pos + 2 + length])
                pos += 2 + length
            if group == 0:
                count, pos = config[pos], pos + 1
        return nals
    pos, arrays = 23, config[22]
    for _ in range(arrays):
        count = struct.unpack_from(">H", config, pos + 1)[0]
        pos += 3
        for _ in range(count):
            length = struct.unpack_from(">H", config, pos)[0]
            nals.append(config[pos + 2 : pos + 2 + length])
            pos += 2 + length
    return nals


def _extradata(name: str, stream_type: str) -> tuple[str, bytes]:
    stream = ffprobe_json(FIXTURES / name, "-show_streams", "-show_data", "-select_streams",
                          f"{stream_type[0]}:0")["streams"][0]
    lines = [line.split(":", 1)[1][:40] for line in stream["extradata"].strip().splitlines()]
    return stream["codec_name"], bytes.fromhex("".join(lines).replace(" ", ""))


@pytest.mark.parametrize("media", list(SETS))
def test_manifest_describes_the_media(media: str, http: httpx.Client) -> None:
    root = manifest(http, media)
    files = SETS[media]
    probes = [ffprobe_json(FIXTURES / name, "-show_streams")["streams"] for name in files]
    streams = {s.get("Type"): s for s in root.findall("StreamIndex")}
    has_video = any(p["codec_type"] == "video" for probe in probes for p in probe)
    has_audio = any(p["codec_type"] == "audio" for probe in probes for p in probe)
    assert set(streams) == {t for t, present in (("video", has_video), ("audio", has_audio)) if present}
    duration = int(root.get("Duration"))
    sums, ends = [], []
    for kind, stream in streams.items():
        listed = chunks(stream)
        assert int(stream.get("Chunks")) == len(listed) > 0
        for (t, d), (next_t, _) in zip(listed, listed[1:], strict=False):
            assert d > 0 and t + d == next_t, "chunks tile the timeline"
        sums.append(sum(d for _, d in listed))
        ends.append(listed[-1][0] + listed[-1][1])
        levels = stream.findall("QualityLevel")
        assert int(stream.get("QualityLevels")) == len(levels)
        bitrates = [int(level.get("Bitrate")) for level in levels]
        assert len(set(bitrates)) == len(bitrates)
        assert [bitrate % 1000 for bitrate in bitrates] == list(range(len(levels)))
        for index, level in enumerate(levels):
            assert level.get("Index") == str(index)
            name = files[index] if kind == "video" else files[0]
            probe = next(p for p in ffprobe_json(FIXTURES / name, "-show_streams")["streams"]
                         if p["codec_type"] == kind)
            codec, extradata = _extradata(name, kind)
            private = bytes.fromhex(level.get("CodecPrivateData"))
            if kind == "video":
                size = (int(level.get("MaxWidth")), int(level.get("MaxHeight")))
                assert size == (probe["width"], probe["height"])
                assert level.get("FourCC") == {"h264": "H264", "hevc": "HVC1"}[codec]
                assert private == b"".join(b"\0\0\0\1" + nal for nal in _parameter_sets(codec, extradata))
            else:
                assert level.get("FourCC") == "AACL" and private == extradata
                assert int(level.get("SamplingRate")) == int(probe["sample_rate"])
                assert int(level.get("Channels")) == probe["channels"]
    assert max(sums) == duration
    assert max(ends) - min(ends) < TIMESCALE // 10  # streams end within 100 ms (their starts may differ)


@pytest.mark.parametrize("media", list(SETS))
def test_every_fragment_is_the_chunk_it_is_listed_as(media: str, http: httpx.Client,
                                                     tmp_path: Path) -> None:
    """tfxd carries the chunk's t (no tfdt, as in MS-SSTR), the trun durations add up to its d,
    the mdat holds exactly the samples; concatenated behind an init segment with the 100 ns
    timescale, ffmpeg decodes each QualityLevel without an error and finds the source's packets,
    in order, sizes equal."""
    require_tools()
    root = manifest(http, media)
    files = SETS[media]
    for stream in root.findall("StreamIndex"):
        kind = stream.get("Type")
        for index, level in enumerate(stream.findall("QualityLevel")):
            name = files[index] if kind == "video" else files[0]
            track = load_movie(name).tracks_of(MediaType(kind))[0]
            stream_bytes = bytearray()
            for t, d in chunks(stream):
                response = http.get(fragment_url(media, stream, level, t))
                assert response.status_code == 200
                data = response.content
                boxes = list(iter_boxes(data, 0, len(data)))
                assert [box.type for box in boxes] == [b"moof", b"mdat"]
                moof = parse_moof(data, boxes[0])
                (traf,) = moof.tracks
                (run,) = traf.runs
                assert run.durations is not None and run.sizes is not None
                assert traf.base_decode_time is None and int(run.durations.sum()) == d  # tfxd has t
                assert int(run.sizes.sum()) == boxes[1].size - boxes[1].header_size
                tfxd = data.index(TFXD)
                version, time, duration = struct.unpack_from(">B3xQQ", data, tfxd + 16)
                assert (version, time, duration) == (1, t, d)
                stream_bytes += data
            path = tmp_path / f"{kind}{index}.mp4"
            init = fmp4.init_segment([replace(track, timescale=TIMESCALE)])
            path.write_bytes(init + bytes(stream_bytes))
            command = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
            decode = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            assert decode.returncode == 0 and decode.stderr == "", decode.stderr
            ours = ffprobe_packets(path)
            source = [p for p in ffprobe_packets(FIXTURES / name)
                      if p["stream_index"] == track.track_id - 1]
            assert [int(p["size"]) for p in ours] == [int(p["size"]) for p in source]
            dts = [int(p["dts"]) for p in ours]
            assert dts == sorted(dts) and len(set(dts)) == len(dts)


@pytest.mark.parametrize(("path", "status"), [
    ("/mss/bframes.mp4/QualityLevels(254000)/Fragments(video=1)", 404),  # no chunk starts there
    ("/mss/bframes.mp4/QualityLevels(254007)/Fragments(video=13333333)", 404),  # no QualityLevel 7
    ("/mss/bframes.mp4/QualityLevels(71000)/Fragments(subtitle=0)", 400),
    ("/mss/bframes.mp4/QualityLevels(x)/Fragments(video=0)", 400),
    ("/mss/bframes.mp4/QualityLevels(1)/manifest", 400),
    ("/mss/bframes.mp4/Fragments(video=0)", 400),
    ("/mss/video_only.mp4/QualityLevels(1000)/Fragments(audio=0)", 404),
    ("/mss/bframes.mp4/manifest.xml", 400),
])
def test_bad_fragment_urls(path: str, status: int, http: httpx.Client) -> None:
    response = http.get(path)
    assert response.status_code == status, response.text
    assert response.json()["error"]
