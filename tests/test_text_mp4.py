"""Text in MP4: wvtt samples out and back, sample entries, tx3g samples (synthetic and made by ffmpeg)."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, require_tools
from tests.test_text_write import cue_lists
from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.text import (
    STPP_CODEC,
    WVTT_CODEC,
    Cue,
    decode_tx3g_sample,
    decode_wvtt_sample,
    parse_subtitles,
    stpp_sample_entry,
    webvtt_config,
    wvtt_sample_entry,
    wvtt_samples,
)


def mp4_box(kind: bytes, *payloads: bytes) -> bytes:
    payload = b"".join(payloads)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


# --- wvtt -------------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(cue_lists(), st.integers(0, 50_000), st.integers(1, 20_000))
def test_wvtt_samples_tile_and_decode_to_the_active_cues(cues: list[Cue], start: int, length: int) -> None:
    samples = wvtt_samples(cues, start, start + length)
    assert samples[0][0] == start and sum(duration for _, duration, _ in samples) == length
    assert all(a[0] + a[1] == b[0] for a, b in zip(samples, samples[1:], strict=False))
    for begin, duration, data in samples:
        assert duration > 0
        active = [c for c in cues if c.start_ms <= begin and c.end_ms >= begin + duration]
        assert decode_wvtt_sample(data) == [(c.text, c.settings, c.identifier) for c in active]
        assert (data == mp4_box(b"vtte")) == (not active)


def test_wvtt_overlapping_cues_share_a_sample() -> None:
    cues = [Cue(0, 4000, "long", "line:0", "a"), Cue(1000, 2000, "<i>short</i>")]
    samples = wvtt_samples(cues, 0, 5000)
    assert [(s, d) for s, d, _ in samples] == [(0, 1000), (1000, 1000), (2000, 2000), (4000, 1000)]
    assert samples[1][2] == (
        mp4_box(b"vttc", mp4_box(b"iden", b"a"), mp4_box(b"sttg", b"line:0"), mp4_box(b"payl", b"long"))
        + mp4_box(b"vttc", mp4_box(b"payl", b"<i>short</i>")))
    assert samples[3][2] == mp4_box(b"vtte")


def test_decode_wvtt_sample_cases() -> None:
    payl, sttg = mp4_box(b"payl", b"<v Bob>Hi</v> <b>x"), mp4_box(b"sttg", b"align:middle line:10%")
    cue = mp4_box(b"vttc", payl, sttg)
    assert decode_wvtt_sample(mp4_box(b"vtta", b"a comment") + cue) == [("Hi <b>x</b>", "line:10%", "")]
    assert decode_wvtt_sample(mp4_box(b"vtte")) == []
    assert decode_wvtt_sample(b"") == []
    for bad in (mp4_box(b"vttc", mp4_box(b"iden", b"x")),  # no payl
                mp4_box(b"vttc", mp4_box(b"payl", b"\xff")),  # not UTF-8
                cue[:-1],  # truncated
                b"\x00\x00\x00\x04vttc",  # size smaller than a header
                b"\x00\x00\x00"):
        with pytest.raises(MediaError):
            decode_wvtt_sample(bad)
    with pytest.raises(LimitExceeded):
        decode_wvtt_sample(mp4_box(b"vttc", mp4_box(b"payl", b"x" * 5000)))


def test_sample_entries() -> None:
    assert wvtt_sample_entry() == mp4_box(b"wvtt", bytes(6), b"\x00\x01", mp4_box(b"vttC", b"WEBVTT"))
    assert webvtt_config(wvtt_sample_entry()) == "WEBVTT"
    labelled = mp4_box(b"wvtt", bytes(8), mp4_box(b"vlab", b"x"), mp4_box(b"vttC", b"WEBVTT\nX"))
    assert webvtt_config(labelled) == "WEBVTT\nX"
    for bad in (mp4_box(b"wvtt", bytes(8)), mp4_box(b"stpp", bytes(8)), mp4_box(b"wvtt", bytes(4)), b"\x00"):
        with pytest.raises(MediaError):
            webvtt_config(bad)
    namespace = b"http://www.w3.org/ns/ttml\x00"
    assert stpp_sample_entry() == mp4_box(b"stpp", bytes(6), b"\x00\x01", namespace, b"\x00\x00")
    assert (WVTT_CODEC, STPP_CODEC) == ("wvtt", "stpp.ttml.im1t")


# --- tx3g -------------------------------------------------------------------------------------------

def tx3g(text: bytes, *modifiers: bytes) -> bytes:
    return struct.pack(">H", len(text)) + text + b"".join(modifiers)


def styl(*records: tuple[int, int, int]) -> bytes:
    # startChar, endChar, font_ID, face_style_flags, font_size, text_color_rgba
    body = b"".join(struct.pack(">HHHBB4s", *record[:2], 1, record[2], 18, b"\xff" * 4) for record in records)
    return mp4_box(b"styl", struct.pack(">H", len(records)), body)


def test_tx3g_samples() -> None:
    assert decode_tx3g_sample(b"\x00\x00") == ""
    assert decode_tx3g_sample(tx3g(b"plain & <simple>\r\nsecond")) == "plain &amp; &lt;simple&gt;\nsecond"
    text = "Grüße – 日本語 bold".encode()
    # offsets count characters: "Grüße" is 5 characters (7 bytes), "日本語" starts at character 8
    sample = tx3g(text, styl((0, 5, 2), (8, 11, 1 | 4), (12, 16, 1)), mp4_box(b"hlit", b"\x00\x00\x00\x01"))
    assert decode_tx3g_sample(sample) == "<i>Grüße</i> – <b><u>日本語</u></b> <b>bold</b>"
    overlapping = tx3g(b"abcdef", styl((0, 4, 1)), styl((2, 6, 2), (5, 99, 4), (4, 3, 1)))
    assert decode_tx3g_sample(overlapping) == "<b>ab<i>cd</i></b><i>e<u>f</u></i>"
    utf16 = "\ufeffÜber".encode("utf-16-be")
    assert decode_tx3g_sample(tx3g(utf16, styl((0, 1, 2)))) == "<i>Ü</i>ber"


@pytest.mark.parametrize("sample", [
    b"", b"\x00", b"\x00\x05abc", tx3g(b"\xc3\x28"), tx3g(b"ok", b"\x00\x00\x00\x10styl"),
    tx3g(b"ok", mp4_box(b"styl", b"\x00\x02", bytes(12))), tx3g(b"ok", mp4_box(b"styl")),
    tx3g(b"ok", b"junk"),
])
def test_tx3g_malformed(sample: bytes) -> None:
    with pytest.raises(MediaError):
        decode_tx3g_sample(sample)


# --- tx3g made by ffmpeg, read with a box reader of the test's own ---------------------------------

def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes in data[start:end]."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        yield kind, start + header, start + size
        start += size


def _child(data: bytes, parent: tuple[int, int], *path: bytes) -> tuple[int, int]:
    for kind in path:
        parent = next((s, e) for k, s, e in _boxes(data, *parent) if k == kind)
    return parent


def _table(data: bytes, stbl: tuple[int, int], kind: bytes, fields: str) -> list[tuple[int, ...]]:
    start, _ = _child(data, stbl, kind)
    count = struct.unpack_from(">I", data, start + 4)[0]
    size = struct.calcsize(fields)
    return [struct.unpack_from(fields, data, start + 8 + n * size) for n in range(count)]


def text_track_samples(data: bytes) -> list[tuple[int, int, bytes]]:
    """(start ms, duration ms, bytes) of every sample of the first text/subtitle track."""
    moov = _child(data, (0, len(data)), b"moov")
    for kind, start, end in _boxes(data, *moov):
        if kind != b"trak":
            continue
        hdlr = _child(data, (start, end), b"mdia", b"hdlr")
        if data[hdlr[0] + 8 : hdlr[0] + 12] not in (b"sbtl", b"text", b"subt"):
            continue
        mdhd = _child(data, (start, end), b"mdia", b"mdhd")
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        stbl = _child(data, (start, end), b"mdia", b"minf", b"stbl")
        sizes = _sizes(data, stbl)
        chunks = [o for (o,) in _table(data, stbl, b"stco", ">I")]
        runs = _table(data, stbl, b"stsc", ">III")
        offsets = []
        for index, chunk_offset in enumerate(chunks, 1):
            per_chunk = next(n for first, n, _ in reversed(runs) if first <= index)
            for _ in range(per_chunk):
                offsets.append(chunk_offset)
                chunk_offset += sizes[len(offsets) - 1]
        durations = [d for count, d in _table(data, stbl, b"stts", ">II") for _ in range(count)]
        starts = [sum(durations[:n]) for n in range(len(durations))]
        return [(t * 1000 // timescale, d * 1000 // timescale, data[o : o + s])
                for t, d, o, s in zip(starts, durations, offsets, sizes, strict=True)]
    raise AssertionError("no text track")


def _sizes(data: bytes, stbl: tuple[int, int]) -> list[int]:
    start, _ = _child(data, stbl, b"stsz")
    fixed, count = struct.unpack_from(">II", data, start + 4)
    return [fixed] * count if fixed else list(struct.unpack_from(f">{count}I", data, start + 12))


SRT_FOR_FFMPEG = """1
00:00:00,500 --> 00:00:01,500
Plain <b>bold</b> <i>italic</i> <u>under</u>

2
00:00:02,000 --> 00:00:03,000
Über <i>grüße</i> & 1 < 2 > 0
zweite <b><i>Zeile</i></b>

3
00:00:03,500 --> 00:00:04,000
日本語 <b>太字</b>
"""


@pytest.mark.tools
def test_tx3g_made_by_ffmpeg(tmp_path: Path) -> None:
    require_tools()
    (tmp_path / "subs.srt").write_text(SRT_FOR_FFMPEG, encoding="utf-8")
    command = ("ffmpeg -nostdin -y -v error -f lavfi -i color=c=black:s=64x64:d=5 -i subs.srt -map 0 -map 1 "
               "-c:v libx264 -c:s mov_text out.mp4")
    subprocess.run(command.split(), cwd=tmp_path, check=True)
    samples = text_track_samples((tmp_path / "out.mp4").read_bytes())
    shown = [(start, start + duration, decode_tx3g_sample(data)) for start, duration, data in samples]
    assert [cue for cue in shown if cue[2]] == [
        (500, 1500, "Plain <b>bold</b> <i>italic</i> <u>under</u>"),
        (2000, 3000, "Über <i>grüße</i> &amp; 1 &lt; 2 &gt; 0\nzweite <b><i>Zeile</i></b>"),
        (3500, 4000, "日本語 <b>太字</b>"),
    ]
    assert shown[0][:2] == (0, 500) and shown[0][2] == ""  # ffmpeg fills gaps with empty samples
    assert all(a[1] == b[0] for a, b in zip(shown, shown[1:], strict=False))


def test_embedded_fixture_matches_the_sidecar() -> None:
    samples = text_track_samples((FIXTURES / "subs_embedded.mp4").read_bytes())
    shown = [(s, s + d, decode_tx3g_sample(data)) for s, d, data in samples]
    expected = parse_subtitles((FIXTURES / "subs_en.srt").read_bytes())
    assert [cue for cue in shown if cue[2]] == [(c.start_ms, c.end_ms, c.text) for c in expected]


# --- nothing but text or MediaError -------------------------------------------------------------------

FLIPS = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=6)
GOOD_SAMPLES = [
    tx3g("Grüße bold".encode(), styl((0, 5, 2), (6, 10, 1))),
    mp4_box(b"vttc", mp4_box(b"iden", b"x"), mp4_box(b"sttg", b"line:0"), mp4_box(b"payl", b"<b>a</b>")),
    mp4_box(b"vtte"),
]


def decode_or_media_error(data: bytes) -> None:
    for decode in (decode_tx3g_sample, decode_wvtt_sample):
        try:
            result = decode(data)
        except MediaError:
            continue
        assert isinstance(result, str | list)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_samples_give_text_or_media_error(data: bytes) -> None:
    decode_or_media_error(data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(GOOD_SAMPLES), FLIPS,
       st.integers(0, 60))
def test_mutated_samples_give_text_or_media_error(sample: bytes, flips: list[tuple[int, int]],
                                                  cut: int) -> None:
    data = bytearray(sample)
    for position, value in flips:
        if position < len(data):
            data[position] = value
    decode_or_media_error(bytes(data[: len(data) - cut]))
