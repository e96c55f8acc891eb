"""HDS: the F4M manifest and its bootstrap decoded here independently, the fragment run table
against the HLS playlist of the same media, and every fragment's FLV tags read by ffprobe/ffmpeg."""

from __future__ import annotations

import base64
import re
import struct
import subprocess
from pathlib import Path

import httpx
import pytest
from lxml import etree

from tests.boxread import boxes
from tests.conftest import FIXTURES, MEDIA_FILES, ffprobe_json, require_tools

F4M = "{http://ns.adobe.com/f4m/1.0}"
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(4)
# one audio track per file here; alternate audio entries are checked in test_languages.py
H264_SETS = {name: [name] for name in MEDIA_FILES if name not in ("hevc.mp4", "multi_audio.mp4")}
H264_SETS["clip_,180p,360p,.mp4.urlset"] = ["clip_180p.mp4", "clip_360p.mp4"]


def cstring(data: bytes, pos: int) -> int:
    return data.index(b"\0", pos) + 1


def decode_abst(data: bytes) -> tuple[int, list[tuple[int, int]], list[tuple[int, int, int, int | None]]]:
    """(timescale, asrt runs, afrt entries) of an abst box (F4V specification 2.11.2)."""
    ((kind, pos, end),) = boxes(data)
    assert kind == b"abst"
    pos += 4 + 4  # version/flags, BootstrapinfoVersion
    assert data[pos] & 0x20 == 0, "not live"
    timescale = struct.unpack_from(">I", data, pos + 1)[0]
    pos += 1 + 4 + 8 + 8
    pos = cstring(data, pos)  # MovieIdentifier
    for _ in range(2):  # servers, qualities
        count, pos = data[pos], pos + 1
        for _ in range(count):
            pos = cstring(data, pos)
    pos = cstring(data, cstring(data, pos))  # DrmData, MetaData
    segment_tables, pos = data[pos], pos + 1
    assert segment_tables == 1
    ((kind, asrt, asrt_end),) = boxes(data, pos, pos + struct.unpack_from(">I", data, pos)[0])
    assert kind == b"asrt" and data[asrt + 4] == 0
    count = struct.unpack_from(">I", data, asrt + 5)[0]
    segments = [struct.unpack_from(">II", data, asrt + 9 + 8 * i) for i in range(count)]
    pos = asrt_end
    fragment_tables, pos = data[pos], pos + 1
    assert fragment_tables == 1
    ((kind, afrt, afrt_end),) = boxes(data, pos, end)
    assert kind == b"afrt"
    fragment_timescale = struct.unpack_from(">I", data, afrt + 4)[0]
    assert fragment_timescale == timescale == 1000 and data[afrt + 8] == 0
    count, pos = struct.unpack_from(">I", data, afrt + 9)[0], afrt + 13
    entries: list[tuple[int, int, int, int | None]] = []
    for _ in range(count):
        first, timestamp, duration = struct.unpack_from(">IQI", data, pos)
        pos += 16
        indicator = None
        if duration == 0:
            indicator, pos = data[pos], pos + 1
        entries.append((first, timestamp, duration, indicator))
    assert pos == afrt_end
    return timescale, [tuple(s) for s in segments], entries  # type: ignore[misc]


def fragment_list(entries: list[tuple[int, int, int, int | None]], count: int) -> list[tuple[int, int]]:
    """(timestamp, duration) of fragments 1..count from run-length coded afrt entries."""
    runs = [e for e in entries if e[2] > 0]
    assert entries[-1][2:] == (0, 0), "closed by an end-of-presentation entry"
    result = []
    for number in range(1, count + 1):
        first, timestamp, duration, _ = [r for r in runs if r[0] <= number][-1]
        result.append((timestamp + (number - first) * duration, duration))
    return result


def decode_amf_metadata(data: bytes) -> dict[str, float | bool]:
    assert data[0] == 2
    length = struct.unpack_from(">H", data, 1)[0]
    assert data[3 : 3 + length] == b"onMetaData" and data[3 + length] == 8
    pos = 3 + length + 5
    values: dict[str, float | bool] = {}
    while data[pos : pos + 3] != b"\0\0\x09":
        length = struct.unpack_from(">H", data, pos)[0]
        key = data[pos + 2 : pos + 2 + length].decode()
        pos += 2 + length
        if data[pos] == 0:
            values[key] = struct.unpack_from(">d", data, pos + 1)[0]
            pos += 9
        else:
            assert data[pos] == 1
            values[key] = bool(data[pos + 1])
            pos += 2
    return values


def manifest(http: httpx.Client, media: str) -> etree._Element:
    response = http.get(f"/hds/{media}/manifest.f4m")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/f4m"
    root = etree.fromstring(response.content)
    assert root.tag == f"{F4M}manifest" and root.findtext(f"{F4M}streamType") == "recorded"
    return root


def hls_durations(http: httpx.Client, media: str, tokens: str) -> list[float]:
    playlist = http.get(f"/hls/{media}/index-{tokens}.m3u8").text
    return [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist)]


@pytest.mark.parametrize("media", list(H264_SETS))
def test_manifest_and_bootstrap(media: str, http: httpx.Client) -> None:
    root = manifest(http, media)
    files = H264_SETS[media]
    entries = root.findall(f"{F4M}media")
    assert len(entries) == len(files)
    bootstraps = {b.get("id"): b for b in root.findall(f"{F4M}bootstrapInfo")}
    for index, entry in enumerate(entries):
        streams = ffprobe_json(FIXTURES / files[index], "-show_streams")["streams"]
        probe = {s["codec_type"]: s for s in streams}
        tokens = entry.get("url").removeprefix("frag-").removesuffix("-")
        expected = "-".join(([f"f{index + 1}"] if len(files) > 1 else []) +
                            [k for k, t in (("v1", "video"), ("a1", "audio")) if t in probe])
        assert tokens == expected and int(entry.get("bitrate")) > 0
        metadata = decode_amf_metadata(base64.b64decode(entry.findtext(f"{F4M}metadata")))
        assert abs(metadata["duration"] - float(root.findtext(f"{F4M}duration"))) < 0.1
        if "video" in probe:
            size = (probe["video"]["width"], probe["video"]["height"])
            assert (int(entry.get("width")), int(entry.get("height"))) == size
            assert (metadata["width"], metadata["height"]) == size
        if "audio" in probe:
            assert metadata["audiosamplerate"] == int(probe["audio"]["sample_rate"])
        info = bootstraps[entry.get("bootstrapInfoId")]
        assert info.get("profile") == "named"
        _, segments, afrt = decode_abst(base64.b64decode(info.text))
        hls = hls_durations(http, media, tokens)  # the same tokens name the HLS rendition
        assert segments == [(1, len(hls))]
        fragments = fragment_list(afrt, len(hls))
        for (timestamp, duration), (next_timestamp, _) in zip(fragments, fragments[1:], strict=False):
            assert timestamp + duration == next_timestamp
        assert [d for _, d in fragments] == pytest.approx([h * 1000 for h in hls], abs=1)


@pytest.mark.parametrize("media", list(H264_SETS))
def test_fragments_are_flv_that_ffmpeg_reads(media: str, http: httpx.Client, tmp_path: Path) -> None:
    """Each fragment: afra then mdat; afra points at its key frames' tags; the mdat, behind an FLV
    header, starts with a key frame in ffprobe. All of them: the source's packets, sizes equal,
    timestamps rising across fragments, and ffmpeg decodes them without an error."""
    require_tools()
    root = manifest(http, media)
    files = H264_SETS[media]
    for index, entry in enumerate(root.findall(f"{F4M}media")):
        info = root.find(f"{F4M}bootstrapInfo[@id='{entry.get('bootstrapInfoId')}']")
        _, segments, afrt = decode_abst(base64.b64decode(info.text))
        fragments = fragment_list(afrt, segments[0][1])
        whole = bytearray(FLV_HEADER)
        for number, (timestamp, _) in enumerate(fragments, start=1):
            response = http.get(f"/hds/{media}/{entry.get('url')}Seg1-Frag{number}")
            assert response.status_code == 200 and response.headers["content-type"] == "video/f4f"
            data = response.content
            (afra_kind, afra, _), (mdat_kind, mdat, mdat_end) = boxes(data)
            assert (afra_kind, mdat_kind) == (b"afra", b"mdat")
            timescale, count = struct.unpack_from(">II", data, afra + 5)
            assert timescale == 1000
            for n in range(count):
                time, offset = struct.unpack_from(">QI", data, afra + 13 + 12 * n)
                assert data[offset] == 9 and data[offset + 11] >> 4 == 1  # a video tag, a key frame
                tag_time = int.from_bytes(data[offset + 4 : offset + 7], "big") | data[offset + 7] << 24
                assert tag_time == time
            first_tag_time = int.from_bytes(data[mdat + 4 : mdat + 7], "big")
            # the first tag (decode time) lies within the B-frame reorder delay before the listed start
            # (presentation time), or an audio frame after it
            assert -100 < first_tag_time - timestamp <= 25, (number, first_tag_time, timestamp)
            alone = tmp_path / f"fragment{number}.flv"
            alone.write_bytes(FLV_HEADER + data[mdat:mdat_end])
            packets = ffprobe_json(alone, "-show_entries", "packet=stream_index,flags", "-show_streams")
            kinds = {s["index"]: s["codec_type"] for s in packets["streams"]}
            first_video = next((p for p in packets["packets"] if kinds[p["stream_index"]] == "video"), None)
            assert first_video is None or first_video["flags"].startswith("K"), number
            whole += data[mdat:mdat_end]
        path = tmp_path / f"media{index}.flv"
        path.write_bytes(bytes(whole))
        command = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"]
        decode = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert decode.returncode == 0 and decode.stderr == "", decode.stderr
        ours = ffprobe_json(path, "-show_entries", "packet=stream_index,dts,size", "-show_streams")
        source = ffprobe_json(FIXTURES / files[index], "-show_entries", "packet=stream_index,size",
                              "-show_streams")
        for kind in ("video", "audio"):
            our_index = [s["index"] for s in ours["streams"] if s["codec_type"] == kind]
            source_index = [s["index"] for s in source["streams"] if s["codec_type"] == kind][:1]
            if not source_index:
                assert not our_index
                continue
            got = [p for p in ours["packets"] if p["stream_index"] == our_index[0]]
            expected = [p for p in source["packets"] if p["stream_index"] == source_index[0]]
            assert [int(p["size"]) for p in got] == [int(p["size"]) for p in expected], kind
            dts = [int(p["dts"]) for p in got]
            assert dts == sorted(dts), f"{kind} timestamps rise across fragments"


@pytest.mark.parametrize(("path", "status"), [
    ("/hds/hevc.mp4/manifest.f4m", 415),
    ("/hds/hevc.mp4/frag-v1-a1-Seg1-Frag1", 415),
    ("/hds/bframes.mp4/frag-v1-a1-Seg2-Frag1", 404),
    ("/hds/bframes.mp4/frag-v1-a1-Seg1-Frag99", 404),
    ("/hds/bframes.mp4/frag-v9-Seg1-Frag1", 404),
    ("/hds/bframes.mp4/frag-v1-a1-Seg1-Frag0", 400),
    ("/hds/bframes.mp4/frag-x9-Seg1-Frag1", 400),
    ("/hds/bframes.mp4/fragment-1", 400),
])
def test_bad_hds_requests(path: str, status: int, http: httpx.Client) -> None:
    response = http.get(path)
    assert response.status_code == status, response.text
    assert response.json()["error"]
