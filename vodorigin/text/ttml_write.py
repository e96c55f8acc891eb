"""TTML out: one TTML1 document per call, in the IMSC1 text profile's subset (DASH 'stpp', MSS text).

The document: `tt` with xml:lang, ttp:timeBase="media" and the IMSC1 text profile designator;
three styles (italic, bold, underline) and two regions (bottom and top, both 80% x 80% at 10% 10%,
text aligned after / before); one `p` per cue with clock-time begin/end, region "top" when the cue
settings put it in the upper half (webvtt.is_top), `span style=...` for styled text, `br` between
lines. xml:space="preserve" is set on a p only when a line holds a run of spaces or a tab.

In ISO BMFF ('stpp', ISO/IEC 14496-30) a sample is one whole document, its times on the track's
media timeline, and a player shows it only during the sample: stpp_sample cuts the cues to the
sample's interval so a cue that crosses a segment boundary continues seamlessly in the next one.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import replace

from lxml import etree

from vodorigin.mp4.write import box
from vodorigin.text.cues import Cue, cues_between
from vodorigin.text.markup import STYLE_TAGS, Run, canonical, cue_text_runs
from vodorigin.text.webvtt import format_timestamp, is_top

STPP_CODEC = "stpp.ttml.im1t"  # RFC 6381 codecs for TTML in ISO BMFF, IMSC1 text profile
TTML_NS = "http://www.w3.org/ns/ttml"
TTS_NS = "http://www.w3.org/ns/ttml#styling"
TTP_NS = "http://www.w3.org/ns/ttml#parameter"
XML_NS = "http://www.w3.org/XML/1998/namespace"
IMSC1_TEXT_PROFILE = "http://www.w3.org/ns/ttml/profile/imsc1/text"
STYLE_IDS = {"b": "bold", "i": "italic", "u": "underline"}
_STYLE_ATTRIBUTES = {"i": ("fontStyle", "italic"), "b": ("fontWeight", "bold"),
                     "u": ("textDecoration", "underline")}
_REGIONS = (("bottom", "after"), ("top", "before"))  # region id, tts:displayAlign
_PRESERVE_NEEDED = re.compile(r"  |\t")


def ttml_document(cues: Iterable[Cue], language: str, time_offset_ms: int = 0) -> bytes:
    """A TTML1 document of the cues (UTF-8, XML declaration), times shifted by time_offset_ms.

    A cue shifted to end at or before 0 is left out; one shifted to start before 0 starts at 0.
    """
    root = etree.Element(_tt("tt"), nsmap={None: TTML_NS, "tts": TTS_NS, "ttp": TTP_NS})
    root.set(f"{{{XML_NS}}}lang", language)
    root.set(f"{{{TTP_NS}}}timeBase", "media")
    root.set(f"{{{TTP_NS}}}profile", IMSC1_TEXT_PROFILE)
    _head(root)
    div = etree.SubElement(etree.SubElement(root, _tt("body")), _tt("div"))
    for cue in cues:
        start, end = max(0, cue.start_ms + time_offset_ms), cue.end_ms + time_offset_ms
        if end > start:
            _paragraph(div, cue, start, end)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def stpp_sample(cues: Sequence[Cue], start_ms: int, end_ms: int, language: str) -> bytes:
    """One 'stpp' sample for [start_ms, end_ms): the cues active in it, cut to it (track media time)."""
    inside = [replace(cue, start_ms=max(cue.start_ms, start_ms), end_ms=min(cue.end_ms, end_ms))
              for cue in cues_between(cues, start_ms, end_ms)]
    return ttml_document(inside, language)


def stpp_sample_entry() -> bytes:
    """XMLSubtitleSampleEntry 'stpp' (ISO/IEC 14496-12 12.6.3.2): SampleEntry's 6 reserved bytes and
    data_reference_index 1, then namespace, schema_location and auxiliary_mime_types as
    null-terminated UTF-8 strings (the last two empty).

    The language is not in the sample entry: it goes in mdhd (and xml:lang in each document).
    """
    strings = b"".join(s.encode() + b"\x00" for s in (TTML_NS, "", ""))
    return box(b"stpp", bytes(6), struct.pack(">H", 1), strings)


def _tt(name: str) -> str:
    return f"{{{TTML_NS}}}{name}"


def _head(root: etree._Element) -> None:
    head = etree.SubElement(root, _tt("head"))
    styling = etree.SubElement(head, _tt("styling"))
    for tag in STYLE_TAGS:
        name, value = _STYLE_ATTRIBUTES[tag]
        style = etree.SubElement(styling, _tt("style"))
        style.set(f"{{{XML_NS}}}id", STYLE_IDS[tag])
        style.set(f"{{{TTS_NS}}}{name}", value)
    layout = etree.SubElement(head, _tt("layout"))
    for region_id, align in _REGIONS:
        region = etree.SubElement(layout, _tt("region"))
        region.set(f"{{{XML_NS}}}id", region_id)
        for name, value in (("origin", "10% 10%"), ("extent", "80% 80%"), ("displayAlign", align),
                            ("textAlign", "center")):
            region.set(f"{{{TTS_NS}}}{name}", value)


def _paragraph(div: etree._Element, cue: Cue, start_ms: int, end_ms: int) -> None:
    p = etree.SubElement(div, _tt("p"))
    p.set("begin", format_timestamp(start_ms))
    p.set("end", format_timestamp(end_ms))
    p.set("region", "top" if is_top(cue.settings) else "bottom")
    runs = cue_text_runs(canonical(cue.text))
    if any(_PRESERVE_NEEDED.search(run.text) for run in runs):
        p.set(f"{{{XML_NS}}}space", "preserve")
    for index, line in enumerate(_lines(runs)):
        if index:
            etree.SubElement(p, _tt("br"))
        for run in line:
            _add_run(p, run)


def _lines(runs: list[Run]) -> list[list[Run]]:
    """Runs split at line breaks (runs of canonical cue text: lines are trimmed already)."""
    lines: list[list[Run]] = [[]]
    for run in runs:
        for index, part in enumerate(run.text.split("\n")):
            if index:
                lines.append([])
            if part:
                lines[-1].append(Run(part, run.styles))
    return [line for line in lines if line]


def _add_run(p: etree._Element, run: Run) -> None:
    if not run.styles:
        _append_text(p, p[-1] if len(p) else None, run.text)
        return
    span = etree.SubElement(p, _tt("span"))
    span.set("style", " ".join(STYLE_IDS[tag] for tag in STYLE_TAGS if tag in run.styles))
    span.text = run.text


def _append_text(p: etree._Element, last: etree._Element | None, text: str) -> None:
    """Text after the p's last child (its tail), or the p's own text when it has no child yet."""
    if last is None:
        p.text = (p.text or "") + text
    else:
        last.tail = (last.tail or "") + text
