"""Amplification files: small inputs that claim huge amounts of media, or sit at the parsers' limits.

Each is refused with a clear error or served within the harness's CPU and memory budgets; run.py
exercises them before the mutants and tests/test_fuzz.py replays them. The name's suffix tells the
kind of input (an MP4, or a sidecar subtitle document).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

from tests.fuzz import FIXTURES
from tests.fuzz.boxtree import Box, MP4File, media_start, parse_file, serialize, tables
from tests.fuzz.fields import U32_MAX
from tests.fuzz.mutate import one_run_tables, relocate_chunk_offsets, set_timescale
from tests.fuzz.subtitles import text_tracks


def _single_track_file(source: Path, handler: bytes, media: bytes) -> tuple[MP4File, Box]:
    """ftyp + moov (mvhd + the first track with `handler`) + an mdat holding `media`."""
    parsed = parse_file(source.read_bytes())
    moov = parsed.moov
    assert moov is not None and moov.children is not None
    trak = next(t for t in parsed.tracks() if (h := t.find(b"mdia", b"hdlr")) and h.data[8:12] == handler)
    ftyp = parsed.top(b"ftyp") or Box(b"ftyp", b"isom\0\0\2\0isomiso2mp41")
    mvhd = moov.child(b"mvhd")
    assert mvhd is not None
    new_moov = Box(b"moov", b"", [mvhd, trak])
    return MP4File([ftyp, new_moov, Box(b"mdat", media)]), trak


def _media_offset(file: MP4File) -> int:
    start = media_start(file)
    assert start is not None
    return start


def huge_sample_count_file(samples: int = 19_999_999, handler: bytes = b"vide",
                           source: Path = FIXTURES / "video_only.mp4") -> bytes:
    """A ~2.8 kB file claiming `samples` one-byte samples of 1 tick each (every one a key frame):
    one stts run, stsc (1, N, 1), a constant stsz, one stco entry, no stss."""
    file, trak = _single_track_file(source, handler, bytes(range(256)) * 4)
    stbl = tables(trak)
    assert stbl is not None
    one_run_tables(stbl, samples, 1, 1, 0)  # first for the layout, then with the mdat's real offset
    one_run_tables(stbl, samples, 1, 1, _media_offset(file))
    return serialize(file)


def huge_duration_file(handler: bytes = b"vide", source: Path = FIXTURES / "video_only.mp4") -> bytes:
    """One sample lasting 2^32-1 ticks in a track (and movie) of timescale 1: 136 years of media."""
    file, trak = _single_track_file(source, handler, bytes(4096))
    stbl, mdhd, mvhd = tables(trak), trak.find(b"mdia", b"mdhd"), file.moov.child(b"mvhd")  # type: ignore[union-attr]
    assert stbl is not None and mdhd is not None and mvhd is not None
    trak.children = [c for c in trak.children or [] if c.type != b"edts"]
    set_timescale(mdhd, 1)
    set_timescale(mvhd, 1)
    one_run_tables(stbl, 1, U32_MAX, 4096, 0)
    one_run_tables(stbl, 1, U32_MAX, 4096, _media_offset(file))
    return serialize(file)


def many_tracks_file(tracks: int = 32, source: Path = FIXTURES / "bframes.mp4") -> bytes:
    """A real file whose first track is repeated until the moov holds `tracks` tracks (new track_IDs)."""
    parsed = parse_file(source.read_bytes())
    moov = parsed.moov
    assert moov is not None and moov.children is not None
    first = parsed.tracks()[0]
    for number in range(tracks - len(parsed.tracks())):
        copy = first.copy()
        tkhd = copy.child(b"tkhd")
        assert tkhd is not None
        at = 20 if tkhd.data[0] == 1 else 12
        tkhd.data = tkhd.data[:at] + struct.pack(">I", 100 + number) + tkhd.data[at + 4 :]
        moov.children.append(copy)
    relocate_chunk_offsets(parsed)
    return serialize(parsed)


def text_track_file(samples: int, source: Path = FIXTURES / "subs_embedded.mp4") -> bytes:
    """A file whose text track claims `samples` one-byte samples of one tick in one chunk (the
    first sample's place): embedded cues past MAX_CUES, or a sample budget broken by a small moov."""
    parsed = parse_file(source.read_bytes())
    stbl = tables(text_tracks(parsed)[0])
    assert stbl is not None and parsed.original_media_start is not None
    stco = stbl.child(b"stco")
    assert stco is not None
    one_run_tables(stbl, samples, 1, 1, struct.unpack_from(">I", stco.data, 8)[0])
    relocate_chunk_offsets(parsed)
    return serialize(parsed)


def many_cues_document(cues: int) -> bytes:
    """A WebVTT document of `cues` one-word cues of 10 ms each (MAX_CUES is 50,000)."""
    lines = ["WEBVTT", ""]
    for index in range(cues):
        start = index * 10
        lines += [f"{_vtt_time(start)} --> {_vtt_time(start + 10)}", f"c{index}", ""]
    return "\n".join(lines).encode()


def _vtt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def many_paragraphs_ttml(copies: int, source: Path = FIXTURES / "subs_de.ttml") -> bytes:
    """subs_de.ttml with its paragraphs repeated `copies` times (7 cues each) before the first one."""
    data = source.read_bytes()
    paragraphs = re.findall(rb"<p [^>]*>.*?</p>", data)
    return data.replace(paragraphs[0], b"".join(paragraphs) * copies + paragraphs[0], 1)


def nested_ttml(depth: int) -> bytes:
    """A TTML document whose one paragraph nests `depth` spans (the parser's limit is 100 levels)."""
    spans = "<span>" * depth + "deep" + "</span>" * depth
    return ('<?xml version="1.0" encoding="UTF-8"?><tt xmlns="http://www.w3.org/ns/ttml"><body><div>'
            f'<p begin="1s" end="2s">{spans}</p></div></body></tt>').encode()


AMPLIFIERS: dict[str, Callable[[], bytes]] = {
    "huge_sample_count_video.mp4": lambda: huge_sample_count_file(),
    "huge_sample_count_audio.mp4": lambda: huge_sample_count_file(handler=b"soun",
                                                                  source=FIXTURES / "audio_only.m4a"),
    "huge_duration.mp4": lambda: huge_duration_file(),
    "huge_duration_audio.mp4": lambda: huge_duration_file(b"soun", FIXTURES / "audio_only.m4a"),
    "many_tracks.mp4": lambda: many_tracks_file(32),
    "too_many_tracks.mp4": lambda: many_tracks_file(33),
    "huge_text_track.mp4": lambda: text_track_file(19_999_999),
    "text_track_past_max_cues.mp4": lambda: text_track_file(400_000),
    "max_cues.vtt": lambda: many_cues_document(50_000),
    "past_max_cues.vtt": lambda: many_cues_document(50_001),
    "past_max_cues.ttml": lambda: many_paragraphs_ttml(7142),  # 7 * 7142 + 7 = 50,001 cues
    "nested_at_limit.ttml": lambda: nested_ttml(96),  # the deepest nesting the parser takes
    "nested_past_libxml2.ttml": lambda: nested_ttml(300),
}
