"""H.264 and HEVC slice header sizes (drm/slice_header.py) against ffmpeg's own reading of the
same slices.

ffmpeg's trace_headers bitstream filter prints every syntax element of every slice header with its
bit position in the unescaped NAL unit; the header ends after its last element (for HEVC, after
its byte_alignment()). Streams are our fixtures and small encodes that exercise the header's
optional parts (H.264: CAVLC, weighted prediction, interlacing, several slices and reference
pictures; HEVC: B-pyramids, weighted prediction, slices, wavefronts and their entry points,
open GOPs, long reference lists, no SAO).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from vodorigin.drm.slice_header import HEVC_SLICE_TYPES, AvcSlices, HevcSlices
from vodorigin.errors import MediaError

HEVC_ENCODES = {
    "hevc-b-pyramid-weighted": "bframes=4:b-pyramid=1:weightp=1:weightb=1:ref=4",
    "hevc-slices-wavefronts": "slices=3:wpp=1:bframes=2",
    "hevc-open-gop-no-sao": "keyint=12:open-gop=1:no-sao=1:bframes=3:rect=1:amp=1",
    "hevc-scaling-lists": "scaling-list=default:bframes=0:ref=3:tskip=1",
}
ENCODES = {
    "cavlc-baseline": ["-profile:v", "baseline"],
    "weighted-prediction": ["-x264-params", "weightp=2:weightb=1:bframes=3:b-pyramid=normal"],
    "interlaced": ["-x264-params", "interlaced=1:bframes=2"],
    "slices-and-references": ["-x264-params", "slices=4:ref=5:bframes=3:b-adapt=2"],
    "main-cavlc-poc2": ["-profile:v", "main", "-x264-params", "cabac=0:bframes=0"],
}


def _annexb_units(path: Path, codec: str = "h264") -> list[bytes]:
    stream = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0",
                             "-c", "copy", "-bsf:v", f"{codec}_mp4toannexb", "-f", codec, "-"],
                            check=True, capture_output=True).stdout
    units = (unit.rstrip(b"\x00") for unit in re.split(rb"\x00\x00\x01", stream))  # 4-byte start codes
    return [unit for unit in units if unit]


def _traced_header_bits(path: Path) -> list[int]:
    """For every slice, ffmpeg's count of its header bits (NAL header included)."""
    log = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-map", "0:v:0",
                          "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    sizes, current = [], None
    for line in log.splitlines():
        if "trace_headers" not in line:
            continue
        if line.rstrip().endswith(("Slice Header", "Slice Segment Header")):
            current = 0
            sizes.append(0)
            continue
        element = re.search(r"\]\s+(\d+)\s+(\S+)\s+([01]+) = ", line)
        if element is None:
            if not re.search(r"\]\s+\d+\s", line):
                current = None  # another section begins
            continue
        if current is not None:
            sizes[-1] = int(element.group(1)) + len(element.group(3))
    return sizes


def _stored_size(unit: bytes, rbsp_bytes: int) -> int:
    """Stored bytes of `unit` holding its first `rbsp_bytes` bytes once emulation prevention is removed."""
    count, zeros, index = 0, 0, 0
    while count < rbsp_bytes:
        byte = unit[index]
        index += 1
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        zeros = zeros + 1 if byte == 0 else 0
        count += 1
    return index


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("h264")
    made = {"bframes": FIXTURES / "bframes.mp4", "clip_360p": FIXTURES / "clip_360p.mp4"}
    for name, options in ENCODES.items():
        target = folder / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx264", *options,
                        "-pix_fmt", "yuv420p", str(target)], check=True)
        made[name] = target
    for name, options in HEVC_ENCODES.items():
        target = folder / f"{name}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x240:rate=25:duration=2", "-c:v", "libx265", "-preset", "ultrafast",
                        "-x265-params", f"log-level=error:{options}", "-pix_fmt", "yuv420p", str(target)],
                       check=True)
        made[name] = target
    made["hevc"] = FIXTURES / "hevc.mp4"
    return made


@pytest.mark.parametrize("name", ["bframes", "clip_360p", *ENCODES])
def test_slice_header_sizes_match_ffmpeg(name: str, streams: dict[str, Path]) -> None:
    path = streams[name]
    traced = _traced_header_bits(path)
    slices = AvcSlices()
    ours = []
    for unit in _annexb_units(path):
        kind = unit[0] & 0x1F
        if kind in (7, 8):
            slices.learn(unit)
        elif kind in (1, 5):
            ours.append((unit, slices.header_size(unit)))
    assert len(traced) == len(ours) > 10
    for (unit, size), bits in zip(ours, traced, strict=True):
        assert size == _stored_size(unit, -(-bits // 8))


@pytest.mark.parametrize("name", ["hevc", *HEVC_ENCODES])
def test_hevc_slice_header_sizes_match_ffmpeg(name: str, streams: dict[str, Path]) -> None:
    path = streams[name]
    traced = _traced_header_bits(path)
    slices = HevcSlices()
    ours = []
    for unit in _annexb_units(path, "hevc"):
        kind = (unit[0] >> 1) & 0x3F
        if kind in (33, 34):
            slices.learn(unit)
        elif kind in HEVC_SLICE_TYPES:
            ours.append((unit, slices.header_size(unit)))
    assert len(traced) == len(ours) > 10
    for (unit, size), bits in zip(ours, traced, strict=True):
        assert size == _stored_size(unit, -(-bits // 8))


def test_unreadable_headers_are_media_errors() -> None:
    slices = AvcSlices()
    with pytest.raises(MediaError, match="parameter set"):
        slices.header_size(bytes([0x65, 0x88, 0x84, 0x00]))
    with pytest.raises(MediaError):
        AvcSlices([bytes([0x67, 0x64])])  # an SPS cut short


@pytest.fixture(scope="module")
def real_units() -> dict[str, list[bytes]]:
    """The NAL units of an H.264 and an HEVC fixture (parameter sets first)."""
    return {"h264": _annexb_units(FIXTURES / "bframes.mp4")[:80],
            "hevc": _annexb_units(FIXTURES / "hevc.mp4", "hevc")[:80]}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codec=st.sampled_from(["h264", "hevc"]), index=st.integers(0, 79),
       edits=st.lists(st.tuples(st.integers(0, 1100), st.integers(0, 255)), max_size=12),
       cut=st.integers(1, 1200))
def test_hostile_units_give_a_size_or_a_media_error(codec: str, index: int, edits: list[tuple[int, int]],
                                                    cut: int, real_units: dict[str, list[bytes]]) -> None:
    """Real units with bytes changed and cut short, parameter sets included: a header size within
    the unit, or a MediaError; nothing else, and parameter sets learned or refused alike."""
    units = real_units[codec]
    slices = HevcSlices() if codec == "hevc" else AvcSlices()
    unit = bytearray(units[index % len(units)])
    for position, value in edits:
        if position < len(unit) and position > (1 if codec == "hevc" else 0):  # the NAL type stays
            unit[position] = value
    unit = unit[: max(cut, 2)]
    try:
        for parameter_set in units[:4]:
            slices.learn(parameter_set)
        slices.learn(bytes(unit))
        size = slices.observe(bytes(unit))
    except MediaError:
        return
    assert size is None or 1 <= size <= len(unit)
