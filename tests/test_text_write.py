"""Subtitle writers: WebVTT files and HLS segments, TTML documents; round trips through our parsers
and through independent ones (webvtt-py for WebVTT, lxml XPath for TTML)."""

from __future__ import annotations

import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from vodorigin.text import (
    Cue,
    constant_intervals,
    cues_between,
    parse_subtitles,
    sorted_cues,
    stpp_sample,
    ttml_document,
    webvtt_document,
)
from vodorigin.text.cues import make_cue
from vodorigin.text.markup import Run, plain_text
from vodorigin.text.webvtt import format_timestamp

NS = {"tt": "http://www.w3.org/ns/ttml", "tts": "http://www.w3.org/ns/ttml#styling",
      "ttp": "http://www.w3.org/ns/ttml#parameter", "xml": "http://www.w3.org/XML/1998/namespace"}
SETTINGS = ["", "line:0", "align:start", "line:0 position:10% align:start", "line:50%,center", "line:-1",
            "vertical:rl size:80%", "position:90% align:end"]
WORDS = st.sampled_from(["a", "Zoë", "&", "<", ">", "-->", "  ", "\t", "x y", "日本", "é", "\n", "&amp;",
                         "<b>", ";"])


@st.composite
def cue_lists(draw: st.DrawFn, settings_choices: list[str] = SETTINGS, identifiers: bool = True) -> list[Cue]:
    """Canonical cues (as a parser would give them), overlapping at times, in text track cue order."""
    cues = []
    for _ in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, 40_000))
        runs = [Run("".join(draw(st.lists(WORDS, min_size=1, max_size=4))),
                    frozenset(draw(st.sets(st.sampled_from("biu"))))) for _ in range(draw(st.integers(1, 4)))]
        identifier = draw(st.sampled_from(["", "1", "cue id", "NOTE-like", "é"])) if identifiers else ""
        end = start + draw(st.integers(1, 15_000))
        cue = make_cue(start, end, runs, draw(st.sampled_from(settings_choices)), identifier)
        if cue is not None:
            cues.append(cue)
    return sorted_cues(cues)


def test_webvtt_document_layout() -> None:
    cues = [Cue(1000, 2500, "<i>Hi</i> &amp; bye", "line:0", "intro"), Cue(3_723_004, 3_724_000, "a\nb")]
    assert webvtt_document(cues) == (
        b"WEBVTT\n\nintro\n00:00:01.000 --> 00:00:02.500 line:0\n<i>Hi</i> &amp; bye\n\n"
        b"01:02:03.004 --> 01:02:04.000\na\nb\n"
    )
    header = b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n"
    assert webvtt_document([], timestamp_map=900000) == header
    assert format_timestamp(360_000_000) == "100:00:00.000"


def test_webvtt_document_never_breaks_on_odd_cues() -> None:
    odd = Cue(0, 1000, "a --> b\n\n<script>x</script> & <b>open", "bogus line:0 line", "has --> arrow")
    assert webvtt_document([odd]) == (
        b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000 line:0\na --&gt; b\nx &amp; <b>open</b>\n")


@settings(max_examples=200, deadline=None)
@given(cue_lists())
def test_webvtt_round_trip(cues: list[Cue]) -> None:
    assert parse_subtitles(webvtt_document(cues)) == cues
    assert parse_subtitles(webvtt_document(cues, timestamp_map=123)) == cues


@settings(max_examples=100, deadline=None)
@given(cue_lists())
def test_webvtt_read_by_webvtt_py(cues: list[Cue]) -> None:
    captions = webvtt.from_string(webvtt_document(cues, timestamp_map=900000).decode()).captions
    read = [(c.identifier or "", c.start, c.end, c.raw_text, str(c.settings or "")) for c in captions]
    assert read == [(cue.identifier, format_timestamp(cue.start_ms), format_timestamp(cue.end_ms), cue.text,
                     cue.settings) for cue in cues]


def test_hls_segment_repeats_cues_that_cross_it() -> None:
    cues = [Cue(1000, 5000, "one"), Cue(3000, 4000, "two"), Cue(6000, 7000, "three")]
    assert cues_between(cues, 4000, 6000) == [cues[0]]
    assert cues_between(cues, 0, 1000) == [] and cues_between(cues, 7000, 9000) == []
    segment = webvtt_document(cues_between(cues, 2000, 6000), timestamp_map=900000)
    assert [(c.start_ms, c.end_ms) for c in parse_subtitles(segment)] == [(1000, 5000), (3000, 4000)]


@settings(max_examples=200, deadline=None)
@given(cue_lists(), st.integers(0, 50_000), st.integers(1, 20_000))
def test_constant_intervals_tile_and_match_brute_force(cues: list[Cue], start: int, length: int) -> None:
    intervals = constant_intervals(cues, start, start + length)
    assert intervals[0][0] == start and intervals[-1][1] == start + length
    assert all(a < b for a, b, _ in intervals)
    assert all(prev[1] == nxt[0] for prev, nxt in zip(intervals, intervals[1:], strict=False))
    for a, b, active in intervals:
        for t in {a, (a + b) // 2, b - 1}:
            assert active == [c for c in cues if c.start_ms <= t < c.end_ms]
    for prev, nxt in zip(intervals, intervals[1:], strict=False):
        assert prev[2] != nxt[2]  # an edge is only where the set of cues changes


def test_ttml_document_structure_by_xpath() -> None:
    cues = [Cue(1000, 2500, "Hello <b><i>big</i></b> &amp; <u>wide</u>\nworld", "line:0"),
            Cue(3000, 4000, "two  spaces", "align:start")]
    root = etree.fromstring(ttml_document(cues, "fr"))
    assert root.tag == "{http://www.w3.org/ns/ttml}tt"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert root.xpath("@ttp:timeBase", namespaces=NS) == ["media"]
    assert root.xpath("@ttp:profile", namespaces=NS) == ["http://www.w3.org/ns/ttml/profile/imsc1/text"]
    styles = {s.get(f"{{{NS['xml']}}}id"): dict(s.attrib)
              for s in root.xpath("//tt:styling/tt:style", namespaces=NS)}
    assert styles["italic"][f"{{{NS['tts']}}}fontStyle"] == "italic"
    assert styles["bold"][f"{{{NS['tts']}}}fontWeight"] == "bold"
    assert styles["underline"][f"{{{NS['tts']}}}textDecoration"] == "underline"
    regions = {r.get(f"{{{NS['xml']}}}id"): r.get(f"{{{NS['tts']}}}displayAlign")
               for r in root.xpath("//tt:layout/tt:region", namespaces=NS)}
    assert regions == {"top": "before", "bottom": "after"}
    paragraphs = root.xpath("/tt:tt/tt:body/tt:div/tt:p", namespaces=NS)
    assert [(p.get("begin"), p.get("end"), p.get("region")) for p in paragraphs] == [
        ("00:00:01.000", "00:00:02.500", "top"), ("00:00:03.000", "00:00:04.000", "bottom")]
    first = paragraphs[0]
    assert [(s.get("style"), s.text) for s in first.xpath("tt:span", namespaces=NS)] == [
        ("bold italic", "big"), ("underline", "wide")]
    assert len(first.xpath("tt:br", namespaces=NS)) == 1
    assert "".join(first.itertext()) == "Hello big & wideworld"
    assert paragraphs[1].get(f"{{{NS['xml']}}}space") == "preserve" and paragraphs[1].text == "two  spaces"
    odd = etree.fromstring(ttml_document([Cue(0, 1000, "a\n\n<c>b", "line:zz% line bogus")], "en"))
    assert [(p.get("region"), "".join(p.itertext())) for p in odd.xpath("//tt:p", namespaces=NS)] == [
        ("bottom", "ab")]


@settings(max_examples=200, deadline=None)
@given(cue_lists(settings_choices=["", "line:0"], identifiers=False))
def test_ttml_round_trip(cues: list[Cue]) -> None:
    assert parse_subtitles(ttml_document(cues, "en")) == cues
    root = etree.fromstring(ttml_document(cues, "en"))
    paragraphs = root.xpath("//tt:p", namespaces=NS)
    assert [p.get("begin") for p in paragraphs] == [format_timestamp(c.start_ms) for c in cues]
    for p, cue in zip(paragraphs, cues, strict=True):
        text = "".join("\n" if isinstance(n, etree._Element) and n.tag.endswith("}br") else n
                       for n in p.xpath(".//text() | .//tt:br", namespaces=NS))
        assert text == plain_text(cue.text)


def test_ttml_time_offset_shifts_and_cuts_at_zero() -> None:
    cues = [Cue(500, 1000, "gone"), Cue(500, 1500, "cut"), Cue(3000, 4000, "late")]
    shifted_back = parse_subtitles(ttml_document(cues, "en", time_offset_ms=-1000))
    assert [(c.start_ms, c.end_ms, c.text) for c in shifted_back] == [(0, 500, "cut"), (2000, 3000, "late")]
    assert [c.start_ms for c in parse_subtitles(ttml_document(cues, "en", time_offset_ms=10_000))] == [
        10_500, 10_500, 13_000]


def test_stpp_sample_cuts_cues_to_the_sample() -> None:
    cues = [Cue(1000, 5000, "long", "line:0"), Cue(3000, 4000, "inside"), Cue(5000, 7000, "after")]
    sample = parse_subtitles(stpp_sample(cues, 2000, 5000, "en"))
    assert [(c.start_ms, c.end_ms, c.text, c.settings) for c in sample] == [
        (2000, 5000, "long", "line:0"), (3000, 4000, "inside", "")]
    empty = etree.fromstring(stpp_sample(cues, 8000, 9000, "en"))
    assert empty.xpath("//tt:p", namespaces=NS) == [] and empty.xpath("//tt:div", namespaces=NS)
