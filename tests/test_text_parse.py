"""Subtitle inputs: WebVTT, SubRip and TTML documents -> cues; format detection, limits, hostile input."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vodorigin.errors import LimitExceeded, MediaError, UnsupportedMedia
from vodorigin.text import Cue, detect_format, parse_subtitles
from vodorigin.text import cues as cues_module
from vodorigin.text.markup import Run, canonical, plain_text, render
from vodorigin.text.webvtt import parse_webvtt

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TT = "http://www.w3.org/ns/ttml"


def vtt(body: str) -> list[Cue]:
    return parse_subtitles(("WEBVTT\n\n" + body).encode())


def ttml(body: str, head: str = "", attributes: str = "", namespace: str = TT) -> list[Cue]:
    document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<tt xmlns="{namespace}" '
                f'xmlns:tts="{namespace}#styling" xmlns:ttp="{namespace}#parameter" {attributes}>'
                f"<head>{head}</head><body>{body}</body></tt>")
    return parse_subtitles(document.encode())


def timing(cues: list[Cue]) -> list[tuple[int, int, str]]:
    return [(c.start_ms, c.end_ms, c.text) for c in cues]


# --- detection and text encodings ---------------------------------------------------------------

@pytest.mark.parametrize(("data", "kind"), [
    (b"WEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "webvtt"),
    (b"\xef\xbb\xbfWEBVTT - with a title\n", "webvtt"),
    (b"WEBVTT", "webvtt"),
    (b"WEBVTTX\n", None),
    (b"1\n00:00:01,000 --> 00:00:02,000\nx\n", "srt"),
    (b"\r\n\r\n7\r\n00:00:01.000 --> 00:00:02.000\r\nx\r\n", "srt"),
    (b"00:00:01,000 --> 00:00:02,000\nno number\n", "srt"),
    (b'<?xml version="1.0"?>\n<!-- c -->\n<tt xmlns="http://www.w3.org/ns/ttml"/>', "ttml"),
    (b'<tt:tt xmlns:tt="http://www.w3.org/ns/ttml"></tt:tt>', "ttml"),
    (b"", None),
    (b"\x00\x01\x02garbage", None),
    (b"<html><body>no</body></html>", None),
])
def test_detect_format_by_content(data: bytes, kind: str | None) -> None:
    assert detect_format(data) == kind


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(encoding: str) -> None:
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    for text in ("WEBVTT\n\n00:01.000 --> 00:02.000\nGrüße\n", "1\n00:00:01,000 --> 00:00:02,000\nGrüße\n"):
        assert timing(parse_subtitles(bom + text.encode(encoding))) == [(1000, 2000, "Grüße")]


def test_utf16_ttml_with_bom() -> None:
    document = (f'<?xml version="1.0" encoding="UTF-16"?><tt xmlns="{TT}"><body>'
                '<p begin="1s" end="2s">Grüße</p></body></tt>')
    data = codecs.BOM_UTF16_LE + document.encode("utf-16-le")
    assert timing(parse_subtitles(data)) == [(1000, 2000, "Grüße")]


def test_unknown_content_and_bad_encoding() -> None:
    with pytest.raises(MediaError, match="is not WebVTT, SRT or TTML"):
        parse_subtitles(b"just some words\n")
    with pytest.raises(MediaError, match="not UTF-8"):
        parse_subtitles(b"WEBVTT\n\n00:01.000 --> 00:02.000\n\xff\xfe\xfa\n")


# --- WebVTT ---------------------------------------------------------------------------------------

def test_webvtt_blocks_identifiers_and_timestamps() -> None:
    document = (
        "\ufeffWEBVTT Kind: captions\nLanguage: en\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "REGION\nid:r1 width:40%\n\n"
        "NOTE one line\n\nNOTE\nseveral\nlines\n\n"
        "first\n00:01.000 --> 00:02.500\nmm:ss form\n\n"
        "01:02:03.004 --> 01:02:04.000\nhh:mm:ss form\n\n"
        "099:59:00.000 --> 099:59:01.000\nthree-digit hours\n"
    )
    cues = parse_subtitles(document.encode())
    assert [(c.identifier, c.start_ms, c.end_ms, c.text) for c in cues] == [
        ("first", 1000, 2500, "mm:ss form"),
        ("", 3723004, 3724000, "hh:mm:ss form"),
        ("", 359940000, 359941000, "three-digit hours"),
    ]


def test_webvtt_header_ends_at_a_cue_and_cues_without_blank_lines() -> None:
    cues = parse_subtitles(b"WEBVTT\n00:01.000 --> 00:02.000\none\n00:03.000 --> 00:04.000\ntwo\n")
    assert timing(cues) == [(1000, 2000, "one"), (3000, 4000, "two")]
    cr_only = parse_subtitles(b"WEBVTT\r\r00:01.000 --> 00:02.000\rone\rtwo\r")
    assert timing(cr_only) == [(1000, 2000, "one\ntwo")]


def test_webvtt_invalid_cues_are_skipped() -> None:
    cues = vtt(
        "00:61.000 --> 00:62.000\nseconds > 59\n\n"
        "1:00.000 --> 1:01.000\none-digit minutes without hours\n\n"
        "00:01.00 --> 00:02.000\ntwo-digit milliseconds\n\n"
        "00:05.000 --> 00:04.000\nends before it starts\n\n"
        "00:05.000 --> 00:05.000\nends as it starts\n\n"
        "00:06.000 --> 00:07.000\n<c></c>\n\n"
        "id only\n\n"
        "00:08.000 --> 00:09.000\nkept\n"
    )
    assert timing(cues) == [(8000, 9000, "kept")]


def test_webvtt_settings_keep_only_valid_ones() -> None:
    cues = vtt("00:01.000 --> 00:02.000 align:middle line:0 region:r1 size:50% position:150% "
               "vertical:lr bogus:1 line:-2,end position:30%,line-left nocolon\nx\n")
    # each name in its first place with its last valid value
    assert cues[0].settings == "line:-2,end size:50% vertical:lr position:30%,line-left"


def test_webvtt_markup_reduced_to_b_i_u() -> None:
    cues = vtt(
        "00:01.000 --> 00:02.000\n"
        "<v.loud Roger Bingham>Hi</v> <c.yellow.bg_blue>there</c> <lang en>x</lang> "
        "<ruby>漢<rt>kan</rt></ruby> <00:01.500>later\n"
        "<b><i>both</i></b> <u>under</u> <B>caps</B>\n"
        "&amp; &lt;tag&gt; &nbsp;&#65;&#x42; &unknown; 1 < 2\n"
    )
    assert cues[0].text == ("Hi there x 漢kan later\n<b><i>both</i></b> <u>under</u> <b>caps</b>\n"
                            "&amp; &lt;tag&gt; \xa0AB &amp;unknown; 1")


def test_webvtt_order_and_missing_signature() -> None:
    cues = vtt("00:05.000 --> 00:06.000\nlate\n\n00:01.000 --> 00:02.000\nshort\n\n"
               "00:01.000 --> 00:09.000\nlong\n")
    assert [c.text for c in cues] == ["long", "short", "late"]  # start ascending, then end descending
    with pytest.raises(MediaError, match="not WebVTT"):
        parse_subtitles(b"\n\nWEBVTT\n")
    with pytest.raises(MediaError, match="WEBVTT signature"):
        parse_webvtt("WEBVTTX\n")


# --- SubRip ---------------------------------------------------------------------------------------

def test_srt_tolerates_crlf_bom_missing_numbers_and_blank_lines() -> None:
    data = ("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\nfirst\r\nline two\r\n\r\n\r\n\r\n"
            "00:00:03.000 --> 00:00:04.000  X1:10 X2:20 Y1:5 Y2:9\r\nno number, '.' and coordinates\r\n"
            "3\r\n00:00:05,5 --> 0:00:06,25\r\nno blank line before the number\r\n\r\n"
            "\r\n4\r\n00:00:07,000 --> 00:00:08,000\r\n\r\nblank line inside\r\n")
    assert timing(parse_subtitles(data.encode())) == [
        (1000, 2500, "first\nline two"),
        (3000, 4000, "no number, '.' and coordinates"),
        (5500, 6250, "no blank line before the number"),
        (7000, 8000, "blank line inside"),
    ]


def test_srt_tags_and_plain_text() -> None:
    data = ("1\n00:00:01,000 --> 00:00:02,000\n"
            "<B>bold</B> <i>it<u>al</u></i> <font color=\"#ff0000\">red</font> <s>struck</s>\n"
            "Tom & Jerry <3 a<b <c.x>kept</c> &amp;\n"
            "<b><i>misnested</b></i> </i>extra close\n")
    assert parse_subtitles(data.encode())[0].text == (
        "<b>bold</b> <i>it<u>al</u></i> red struck\n"
        "Tom &amp; Jerry &lt;3 a&lt;b &lt;c.x&gt;kept&lt;/c&gt; &amp;amp;\n"
        "<b><i>misnested</i></b> extra close"
    )


@pytest.mark.parametrize(("override", "settings"), [
    ("{\\an8}", "line:0"),
    ("{\\an7}", "line:0 position:10% align:start"),
    ("{\\an9}", "line:0 position:90% align:end"),
    ("{\\an5}", "line:50%,center"),
    ("{\\an4}", "line:50%,center position:10% align:start"),
    ("{\\an1}", "position:10% align:start"),
    ("{\\an3}", "position:90% align:end"),
    ("{\\an2}", ""),
    ("{\\pos(10,20)\\AN8}", "line:0"),
    ("{\\b1}{\\fs20}", ""),
])
def test_srt_ass_overrides_become_settings_never_text(override: str, settings: str) -> None:
    data = f"1\n00:00:01,000 --> 00:00:02,000\n{override}Some {{\\i1}}text{{\\i0}}\n".encode()
    cue = parse_subtitles(data)[0]
    assert (cue.text, cue.settings) == ("Some text", settings)


# --- TTML -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("namespace", [TT, "http://www.w3.org/2006/10/ttaf1", "http://www.w3.org/2006/04/ttaf1"])
def test_ttml_namespaces(namespace: str) -> None:
    head = '<styling><style xml:id="s" tts:fontStyle="italic"/></styling>'
    cues = ttml('<div><p begin="1s" end="2s" style="s">x</p></div>', head, namespace=namespace)
    assert timing(cues) == [(1000, 2000, "<i>x</i>")]


def test_ttml_prefixed_elements() -> None:
    document = (f'<tt:tt xmlns:tt="{TT}"><tt:body><tt:div><tt:p begin="1s" end="2s">a<tt:br/>b</tt:p>'
                "</tt:div></tt:body></tt:tt>")
    assert timing(parse_subtitles(document.encode())) == [(1000, 2000, "a\nb")]


@pytest.mark.parametrize(("attributes", "begin", "end", "expected"), [
    ("", "00:00:01.5", "00:00:02.250", (1500, 2250)),
    ('ttp:frameRate="25"', "00:00:01:12", "00:00:02:00", (1480, 2000)),
    # the multiplier scales frames only, not hours, minutes and seconds
    ('ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001"', "00:00:00:30", "00:01:00:00", (1001, 60000)),
    ('ttp:frameRate="25" ttp:subFrameRate="2"', "00:00:00:01.1", "1s", (60, 1000)),
    ("", "1.5s", "2500ms", (1500, 2500)),
    ("", "0.5m", "0.01h", (30000, 36000)),
    ('ttp:frameRate="25"', "25f", "50f", (1000, 2000)),
    ('ttp:tickRate="10000000"', "10000000t", "25000000t", (1000, 2500)),
    ('ttp:frameRate="50"', "50t", "100t", (1000, 2000)),  # tick rate defaults to the frame rate
    ("", "2t", "3t", (2000, 3000)),  # and to 1 without either
])
def test_ttml_time_expressions(attributes: str, begin: str, end: str, expected: tuple[int, int]) -> None:
    cues = ttml(f'<div><p begin="{begin}" end="{end}">x</p></div>', attributes=attributes)
    assert (cues[0].start_ms, cues[0].end_ms) == expected


def test_ttml_timing_inherited_and_cut_by_parents() -> None:
    body = ('<div begin="10s" end="20s">'
            '<p begin="1s" dur="2s">dur</p>'
            '<p begin="5s" end="15s">cut by the div</p>'
            '<p begin="12s" end="13s">after the div</p>'
            '<p begin="3s">no end: the div ends it</p>'
            '<div begin="1s"><p begin="1s" end="2s">nested</p></div>'
            '<p begin="2s" end="4s" dur="1s">end and dur: the earlier</p>'
            "</div>"
            '<div><p begin="1s">never ends</p></div>')
    assert timing(ttml(body)) == [
        (11000, 13000, "dur"),
        (12000, 13000, "nested"),
        (12000, 13000, "end and dur: the earlier"),
        (13000, 20000, "no end: the div ends it"),
        (15000, 20000, "cut by the div"),
    ]


def test_ttml_spans_with_their_own_times_split_the_paragraph() -> None:
    body = ('<div><p begin="1s" end="4s">Who <span begin="1s" end="2s">goes</span> '
            '<span begin="2s">there</span>?</p></div>')
    assert timing(ttml(body)) == [
        (1000, 2000, "Who ?"), (2000, 3000, "Who goes ?"), (3000, 4000, "Who there?")]


def test_ttml_whitespace_and_line_breaks() -> None:
    body = ('<div><p begin="1s" end="2s">\n   one   two\t<span> three </span>  <br/>  four\n</p>'
            '<p begin="3s" end="4s" xml:space="preserve">a  b\nc</p></div>')
    assert timing(ttml(body)) == [(1000, 2000, "one two three\nfour"), (3000, 4000, "a  b\nc")]


def test_ttml_styles_by_reference_chain_and_inline() -> None:
    head = ('<styling><style xml:id="base" tts:fontWeight="bold"/>'
            '<style xml:id="it" style="base" tts:fontStyle="italic"/>'
            '<style xml:id="plain" tts:fontStyle="normal" tts:fontWeight="normal"/>'
            '<style xml:id="loop1" style="loop2" tts:textDecoration="underline"/>'
            '<style xml:id="loop2" style="loop1"/>'
            "</styling>")
    body = ('<div style="it"><p begin="1s" end="2s">bi <span style="plain">plain</span> '
            '<span tts:textDecoration="underline">biu</span> <span style="loop1">loop</span> '
            '<span tts:fontStyle="normal" tts:textDecoration="none">b</span> '
            '<span style="plain" tts:fontStyle="oblique">i</span></p></div>')
    expected = "<b><i>bi </i></b>plain<b><i> <u>biu</u> <u>loop</u> </i>b<i> </i></b><i>i</i>"
    assert ttml(body, head)[0].text == expected


def test_ttml_regions_top_or_bottom() -> None:
    head = ('<layout>'
            '<region xml:id="low" tts:origin="10% 70%" tts:extent="80% 20%" tts:displayAlign="after"/>'
            '<region xml:id="high" tts:origin="10% 5%" tts:extent="80% 20%" tts:displayAlign="after"/>'
            '<region xml:id="full_before" tts:displayAlign="before"/>'
            '<region xml:id="full_center" tts:displayAlign="center"/>'
            '<region xml:id="pixels" tts:origin="0px 40px" tts:extent="640px 100px"/>'
            '<region xml:id="styled" style="s"/>'
            '</layout><styling><style xml:id="s" tts:origin="0% 80%" tts:extent="100% 20%"/></styling>')
    body = "".join(f'<p begin="{n}s" end="{n + 1}s" region="{r}">{r}</p>' for n, r in enumerate(
        ["low", "high", "full_before", "full_center", "pixels", "styled", "missing"], 1))
    cues = ttml(f'<div region="low">{body}<p begin="9s" end="10s">inherited</p></div>', head,
                attributes='tts:extent="640px 480px"')
    assert {c.text: c.settings for c in cues} == {
        "low": "", "high": "line:0", "full_before": "line:0", "full_center": "", "pixels": "line:0",
        "styled": "", "missing": "", "inherited": ""}
    assert ttml('<div><p begin="1s" end="2s">no region</p></div>')[0].settings == ""


@pytest.mark.parametrize(("body", "error"), [
    ('<div timeContainer="seq"><p begin="1s" end="2s">x</p></div>', UnsupportedMedia),
    ('<div><p begin="soon" end="2s">x</p></div>', MediaError),
    ('<div><p begin="1s" end="99999999999999999999999s">x</p></div>', MediaError),
    ('<div><p begin="1s" end="2s">x</div>', MediaError),
])
def test_ttml_errors(body: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        ttml(body)


def test_ttml_bad_parameters_and_root() -> None:
    with pytest.raises(MediaError, match="frameRate"):
        ttml('<div><p begin="1f" end="2f">x</p></div>', attributes='ttp:frameRate="0"')
    with pytest.raises(MediaError, match="root element"):
        parse_subtitles(b'<tt xmlns="urn:not-ttml"><body/></tt>')


def test_ttml_entities_are_not_expanded_nor_fetched() -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE tt [<!ENTITY a "aaaaaaaaaa">'
              + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
              + f']><tt xmlns="{TT}"><body><p begin="1s" end="2s">x&i;y</p></body></tt>')
    try:
        cues = parse_subtitles(laughs.encode())
    except MediaError:
        cues = []
    assert all(len(c.text) < 100 for c in cues)
    external = (f'<?xml version="1.0"?><!DOCTYPE tt [<!ENTITY e SYSTEM "file:///etc/hostname">]>'
                f'<tt xmlns="{TT}"><body><p begin="1s" end="2s">x&e;y</p></body></tt>')
    try:
        cues = parse_subtitles(external.encode())
    except MediaError:
        cues = []
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\x00"
    assert all(hostname not in c.text for c in cues)


def test_ttml_deep_nesting_is_refused() -> None:
    body = '<div><p begin="1s" end="2s">' + "<span>" * 150 + "x" + "</span>" * 150 + "</p></div>"
    with pytest.raises(LimitExceeded, match="nested"):
        ttml(body)


# --- limits and the cue model ---------------------------------------------------------------------

def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LimitExceeded, match="bytes"):
        parse_subtitles(b"WEBVTT\n" + b" " * cues_module.MAX_INPUT_BYTES)
    with pytest.raises(LimitExceeded, match="characters"):
        vtt("00:01.000 --> 00:02.000\n" + "x" * (cues_module.MAX_CUE_TEXT + 1) + "\n")
    with pytest.raises(LimitExceeded, match="limit"):
        vtt("99:00:00.000 --> 101:00:00.000\nx\n")
    monkeypatch.setattr(cues_module, "MAX_CUES", 3)
    many = "".join(f"00:0{n}.000 --> 00:0{n}.500\nx\n\n" for n in range(5))
    with pytest.raises(LimitExceeded, match="more than 3"):
        vtt(many)
    with pytest.raises(LimitExceeded, match="more than 3"):
        parse_subtitles("".join(f"00:00:0{n},000 --> 00:00:0{n},500\nx\n\n" for n in range(5)).encode())
    with pytest.raises(LimitExceeded, match="more than 3"):
        ttml("".join(f'<p begin="{n}s" end="{n + 0.5}s">x</p>' for n in range(5)))


def test_cue_must_end_after_it_starts() -> None:
    for start, end in ((5, 5), (6, 5), (-1, 5)):
        with pytest.raises(MediaError):
            Cue(start, end, "x")


def test_render_nests_and_balances_per_line() -> None:
    runs = [Run("a", frozenset("i")), Run("b", frozenset("ib")), Run("c\nd", frozenset("b")), Run(" e ")]
    assert render(runs) == "<i>a<b>b</b></i><b>c</b>\n<b>d</b> e"
    messy = [Run("  \n\n<x> & y  ", frozenset("u")), Run("\x00\x07z\u2028w")]
    assert render(messy) == "<u>&lt;x&gt; &amp; y  </u>z\nw"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab <>/&;#\n\t\r.biuBc0123:x", "&amp;", "<b>", "</i>", "<c.x>"]))
       .map("".join))
def test_canonical_is_idempotent(text: str) -> None:
    once = canonical(text)
    assert canonical(once) == once
    assert "\n\n" not in once and "-->" not in once
    assert plain_text(once) == plain_text(canonical(once))


# --- the committed fixtures -----------------------------------------------------------------------

FIXTURE_TIMES = [(500, 2000), (3000, 4600), (5200, 6800), (8000, 11500), (12000, 24500), (25000, 26500),
                 (27250, 29750)]


@pytest.mark.parametrize("name", ["subs_en.srt", "subs_fr.vtt", "subs_de.ttml"])
def test_fixture_sidecars_share_their_times(name: str) -> None:
    cues = parse_subtitles((FIXTURES / name).read_bytes())
    assert [(c.start_ms, c.end_ms) for c in cues] == FIXTURE_TIMES
    assert [c.settings for c in cues] == ["", "", "", "line:0", "", "", ""]
    assert "<i>" in cues[1].text and "<b>" in cues[5].text and "&amp;" in cues[5].text
    assert cues[4].text.count("\n") == 1
    assert not any("{" in c.text or "\\" in c.text for c in cues)


# --- nothing but cues or MediaError -----------------------------------------------------------------

SEEDS = [
    b"WEBVTT\n\nid\n00:01.000 --> 00:02.000 line:0\n<b>a</b> &amp;\n\nNOTE x\n\n00:03.000 --> 00:04.000\nb\n",
    b"1\r\n00:00:01,000 --> 00:00:02,000\r\n{\\an8}<i>a</i>\r\n\r\n"
    b"2\r\n00:00:03,000 --> 00:00:04,000\r\nb\r\n",
    (f'<?xml version="1.0"?><tt xmlns="{TT}" xmlns:tts="{TT}#styling" xmlns:ttp="{TT}#parameter" '
     'ttp:frameRate="25"><head><styling><style xml:id="s" tts:fontStyle="italic"/></styling><layout>'
     '<region xml:id="r" tts:origin="0% 0%" tts:extent="100% 20%"/></layout></head><body region="r">'
     '<div begin="1s"><p begin="00:00:01:05" dur="50f" style="s">a<br/><span end="1s">b</span></p>'
     "</div></body></tt>").encode(),
    *[(FIXTURES / name).read_bytes() for name in ("subs_en.srt", "subs_fr.vtt", "subs_de.ttml")],
]


def parse_or_media_error(data: bytes) -> None:
    try:
        result = parse_subtitles(data)
    except MediaError:
        return
    assert isinstance(result, list) and all(isinstance(c, Cue) for c in result)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_cues_or_media_error(data: bytes) -> None:
    parse_or_media_error(data)
    for prefix in (b"WEBVTT\n\n", b"1\n00:00:01,000 --> 00:00:02,000\n", b'<tt xmlns="http://www.w3.org/ns/ttml">'):
        parse_or_media_error(prefix + data)


INSERTS = [b"<", b">", b"-->", b"\n\n", b"&", b":", b"9", b"\x00", b"<span begin='1s'>", b"{\\an", b"\xff"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if action == "flip" and position < len(data):
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.sampled_from(INSERTS))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 20))]
        elif action == "truncate":
            del data[position:]
    return bytes(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_documents_give_cues_or_media_error(data: bytes) -> None:
    parse_or_media_error(data)
