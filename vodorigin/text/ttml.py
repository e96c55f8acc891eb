"""TTML / DFXP in (W3C TTML1 Third Edition; the 2006 DFXP drafts; the IMSC1 text profile).

What is read, by TTML1 clause:

* times (10.3 <timeExpression>): clock time `hh:mm:ss(.fff | :frames(.subframes))` and offset time
  `<count>(h|m|s|ms|f|t)`, with ttp:frameRate, ttp:frameRateMultiplier, ttp:subFrameRate and
  ttp:tickRate (6.2); begin/end/dur on body, div, p and span in `par` containers (10.2.4): a child's
  times count from its parent's begin and the parent's end cuts it; text whose end stays open up to
  the root shows nothing (no cue). ttp:timeBase is taken as media; a `seq` container is
  UnsupportedMedia. Times round to the nearest millisecond.
* content (7.1): one cue per p and per interval over which the set of its active spans is constant
  (a p whose spans have their own times gives several cues); `<br/>` is a line break; whitespace
  collapses unless xml:space="preserve" (XML 1.0 2.10).
* styles (8): tts:fontStyle italic/oblique, tts:fontWeight bold, tts:textDecoration underline, from
  referenced `style` elements (chained references included) and inline attributes, inherited.
* layout (9): the region of a p (its own or inherited region attribute) is "top" (cue setting
  `line:0`) when its text edge (tts:displayAlign before/center/after over tts:origin and
  tts:extent) is in the upper half of the root container; content without a region keeps the
  default (bottom) position.

lxml parses with entity resolution, network access, DTD loading and huge trees off (libxml2 also
refuses entity amplification); MAX_ELEMENTS and MAX_DEPTH bound the tree and MAX_SPLIT_WORK the
cost of splitting paragraphs whose spans carry their own times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from math import floor

from lxml import etree

from vodorigin.errors import LimitExceeded, MediaError, UnsupportedMedia
from vodorigin.text.cues import MAX_CUES, Cue, check_count, make_cue
from vodorigin.text.markup import NO_STYLE, Run

TT_NAMESPACES = ("http://www.w3.org/ns/ttml", "http://www.w3.org/2006/10/ttaf1",
                 "http://www.w3.org/2006/04/ttaf1")
XML_NS = "http://www.w3.org/XML/1998/namespace"
MAX_ELEMENTS = 200_000
MAX_DEPTH = 100  # element nesting below tt; libxml2 itself stops at 256 without huge_tree
MAX_SPLIT_WORK = 4_000_000  # sum over p of (pieces x intervals) when spans carry their own times

_CLOCK = re.compile(r"(\d{1,6}):(\d{2}):(\d{2})(?:(\.\d{1,9})|:(\d{1,6})(?:\.(\d{1,6}))?)?")
_OFFSET = re.compile(r"(\d{1,12}(?:\.\d{1,9})?)(h|ms|m|s|f|t)")
_LENGTH = re.compile(r"(-?\d{1,9}(?:\.\d{1,9})?)(%|px|c|em)")
_SPACES = re.compile(r"[ \t\r\n]+")
_TT_ELEMENT = re.compile(r"<(?:[\w.-]+:)?tt[\s>/]")  # compiled here: every first read of a file asks
_STYLING = "styling"  # tts: attributes; the 2006/10 draft named the namespace '#style'
_NS_KINDS = {f"{base}{suffix}": kind for base in TT_NAMESPACES
             for suffix, kind in (("#styling", _STYLING), ("#style", _STYLING), ("#parameter", "parameter"))}
_SECONDS_PER = {"h": Fraction(3600), "m": Fraction(60), "s": Fraction(1), "ms": Fraction(1, 1000)}


@dataclass(frozen=True, slots=True)
class _Rates:
    """Time parameters (TTML1 6.2: ttp:frameRate, frameRateMultiplier, subFrameRate, tickRate)."""

    frame_rate: Fraction  # effective: ttp:frameRate x ttp:frameRateMultiplier
    sub_frame_rate: int
    tick_rate: Fraction


@dataclass(frozen=True, slots=True)
class _Scope:
    """What an element inherits: its parent's interval (seconds, end None = open), styles, region."""

    begin: Fraction
    end: Fraction | None
    styles: frozenset[str]
    region: str
    preserve: bool


@dataclass(frozen=True, slots=True)
class _Piece:
    """A stretch of a p's text with its own interval (milliseconds)."""

    text: str
    styles: frozenset[str]
    begin_ms: int
    end_ms: int
    preserve: bool


@dataclass(frozen=True, slots=True)
class _Document:
    rates: _Rates
    styles: dict[str, dict[str, str]]  # style id -> resolved tts properties
    top_regions: frozenset[str]


def looks_like_ttml(text: str) -> bool:
    """Is the root element a tt (any prefix), after the XML declaration and comments?"""
    return _TT_ELEMENT.search(text[:4096]) is not None and text.lstrip().startswith("<")


def parse_ttml(data: bytes) -> list[Cue]:
    """A TTML document (bytes: the XML declaration names the encoding) -> cues in document order."""
    root = _read_tree(data)
    head, body = _child(root, "head"), _child(root, "body")
    styles = _style_table(head)
    document = _Document(_rates(root), styles, _top_regions(root, head, styles))
    if body is None:
        return []
    if sum(1 for element in body.iter() if _local(element) == "p") > MAX_CUES:  # before any timing work
        raise LimitExceeded(f"TTML: more than {MAX_CUES} paragraphs (subtitle cues) in one document")
    scope = _Scope(Fraction(0), None, NO_STYLE, "", root.get(f"{{{XML_NS}}}space") == "preserve")
    cues: list[Cue] = []
    work = 0
    for p_scope, pieces in _paragraphs(body, scope, document):
        work += len(pieces) * (2 * len(pieces) - 1)  # up to 2n - 1 intervals, each scans the n pieces
        if work > MAX_SPLIT_WORK:
            raise LimitExceeded("TTML: too many separately timed spans to split into cues")
        settings = "line:0" if p_scope.region in document.top_regions else ""
        cues.extend(_paragraph_cues(pieces, settings))
        check_count(len(cues))
    return cues


def _read_tree(data: bytes) -> etree._Element:
    """The tt element of a well-formed document within the size limits."""
    # a parser per call: an lxml parser must not be shared between threads
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError) as exc:
        raise MediaError(f"TTML: not well-formed XML ({exc})") from exc
    if _local(root) != "tt":
        raise MediaError("TTML: the root element is not tt")
    _check_size(root)
    return root


def _local(element: etree._Element) -> str | None:
    """The local name of a TTML element (a TT namespace or none), None for anything else."""
    if not isinstance(element.tag, str):
        return None  # an unresolved entity reference
    qname = etree.QName(element)
    return qname.localname if qname.namespace in (None, *TT_NAMESPACES) else None


def _elements(parent: etree._Element, name: str) -> Iterator[etree._Element]:
    return (child for child in parent if _local(child) == name)


def _child(parent: etree._Element | None, name: str) -> etree._Element | None:
    return None if parent is None else next(_elements(parent, name), None)


def _check_size(root: etree._Element) -> None:
    depth = count = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth, count = depth + 1, count + 1
        if count > MAX_ELEMENTS:
            raise LimitExceeded(f"TTML: more than {MAX_ELEMENTS} elements")
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"TTML: elements nested deeper than {MAX_DEPTH}")


def _attributes(element: etree._Element, kind: str) -> dict[str, str]:
    """The element's attributes in the tts: (or ttp:) namespaces of any TTML version, by local name."""
    found = {}
    for name, value in element.attrib.items():
        qname = etree.QName(name)
        if qname.namespace is not None and _NS_KINDS.get(qname.namespace) == kind:
            found[qname.localname] = value.strip()
    return found


def _rates(root: etree._Element) -> _Rates:
    parameters = _attributes(root, "parameter")
    frame_rate = _positive(parameters.get("frameRate", "30"), "ttp:frameRate")
    numerator, _, denominator = parameters.get("frameRateMultiplier", "1 1").partition(" ")
    multiplier = Fraction(_positive(numerator, "ttp:frameRateMultiplier"),
                          _positive(denominator.strip() or "1", "ttp:frameRateMultiplier"))
    sub_frame_rate = _positive(parameters.get("subFrameRate", "1"), "ttp:subFrameRate")
    if "tickRate" in parameters:
        tick_rate = Fraction(_positive(parameters["tickRate"], "ttp:tickRate"))
    elif "frameRate" in parameters:  # ttp:tickRate's default: the effective frame rate x the sub-frame rate
        tick_rate = frame_rate * multiplier * sub_frame_rate
    else:
        tick_rate = Fraction(1)
    return _Rates(frame_rate * multiplier, sub_frame_rate, tick_rate)


def _positive(value: str, name: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value) or int(value) == 0:
        raise MediaError(f"TTML: {name} {value!r} is not a positive integer")
    return int(value)


def parse_time(value: str, rates: _Rates) -> Fraction:
    """A TTML1 10.3.1 time expression -> seconds."""
    value = value.strip()
    if clock := _CLOCK.fullmatch(value):
        hours, minutes, seconds, fraction, frames, sub_frames = clock.groups()
        total = Fraction(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
        if fraction:
            total += Fraction(fraction)
        if frames:
            total += int(frames) / rates.frame_rate
        if sub_frames:
            total += Fraction(int(sub_frames), rates.sub_frame_rate) / rates.frame_rate
        return total
    if offset := _OFFSET.fullmatch(value):
        count, metric = Fraction(offset.group(1)), offset.group(2)
        if metric == "f":
            return count / rates.frame_rate
        if metric == "t":
            return count / rates.tick_rate
        return count * _SECONDS_PER[metric]
    raise MediaError(f"TTML: {value!r} is not a time expression")


def _milliseconds(seconds: Fraction) -> int:
    return floor(seconds * 1000 + Fraction(1, 2))  # to the nearest millisecond, halves up


def _style_table(head: etree._Element | None) -> dict[str, dict[str, str]]:
    """style xml:id -> its tts properties, references to other styles resolved (8.4.1.3)."""
    declared: dict[str, etree._Element] = {}
    for styling in ([] if head is None else _elements(head, "styling")):
        for style in _elements(styling, "style"):
            declared.setdefault(style.get(f"{{{XML_NS}}}id", ""), style)
    table: dict[str, dict[str, str]] = {}
    for style_id in declared:
        _resolve_style(style_id, declared, table, ())
    return table


def _resolve_style(style_id: str, declared: dict[str, etree._Element], table: dict[str, dict[str, str]],
                   path: tuple[str, ...]) -> dict[str, str]:
    """A style's properties: its references' in order, then its own (memoised in table)."""
    element = declared.get(style_id)
    if style_id in table or element is None or style_id in path or len(path) > 32:
        return table.get(style_id, {})  # done, unknown, circular (an error in 8.4.1.3) or too deep
    properties: dict[str, str] = {}
    for reference in element.get("style", "").split():
        properties.update(_resolve_style(reference, declared, table, (*path, style_id)))
    properties.update(_attributes(element, _STYLING))
    table[style_id] = properties
    return properties


def _own_properties(element: etree._Element, styles: dict[str, dict[str, str]]) -> dict[str, str]:
    """Referenced styles in order, then inline tts attributes (8.4.4.2 specified style set)."""
    properties: dict[str, str] = {}
    for reference in element.get("style", "").split():
        properties.update(styles.get(reference, {}))
    properties.update(_attributes(element, _STYLING))
    return properties


def _apply_styles(styles: frozenset[str], properties: dict[str, str]) -> frozenset[str]:
    """Inherited b/i/u switched on or off by tts:fontWeight, fontStyle, textDecoration (8.2)."""
    weight, style = properties.get("fontWeight"), properties.get("fontStyle")
    decoration = properties.get("textDecoration", "").split()
    switches = {
        "b": (weight == "bold", weight == "normal"),
        "i": (style in ("italic", "oblique"), style == "normal"),
        "u": ("underline" in decoration, "noUnderline" in decoration or "none" in decoration),
    }
    on = {name for name, (set_on, _) in switches.items() if set_on}
    off = {name for name, (_, set_off) in switches.items() if set_off}
    return frozenset((styles - off) | on)


def _top_regions(root: etree._Element, head: etree._Element | None,
                 styles: dict[str, dict[str, str]]) -> frozenset[str]:
    root_height = _root_height(root)
    layout = _child(head, "layout")
    top = set()
    for region in ([] if layout is None else _elements(layout, "region")):
        properties = _own_properties(region, styles)
        for nested in _elements(region, "style"):  # nested styling of a region (8.4.1.4)
            properties = {**_attributes(nested, _STYLING), **properties}
        if _region_is_top(properties, root_height):
            top.add(region.get(f"{{{XML_NS}}}id", ""))
    return frozenset(top)


def _root_height(root: etree._Element) -> float | None:
    """The root container's height in pixels, when tts:extent on tt gives it (7.1.1)."""
    lengths = _lengths(_attributes(root, _STYLING).get("extent", ""))
    return lengths[1][0] if lengths and lengths[1][1] == "px" else None


def _lengths(value: str) -> list[tuple[float, str]] | None:
    parts = [_LENGTH.fullmatch(part) for part in value.split()]
    if len(parts) != 2 or not all(parts):
        return None
    return [(float(m.group(1)), m.group(2)) for m in parts if m]


def _percent(length: tuple[float, str], root_height: float | None) -> float | None:
    number, unit = length
    if unit == "%":
        return number
    if unit == "px" and root_height:
        return number * 100 / root_height
    return None


def _region_is_top(properties: dict[str, str], root_height: float | None) -> bool:
    """Is the region's text edge (per tts:displayAlign, default before) above the middle?"""
    align = properties.get("displayAlign", "before")
    origin = _lengths(properties.get("origin", "0% 0%"))
    extent = _lengths(properties.get("extent", "100% 100%"))
    y = _percent(origin[1], root_height) if origin else None
    height = _percent(extent[1], root_height) if extent else None
    if y is None or height is None:
        return align == "before"  # positions we cannot resolve: the alignment alone decides
    edge = {"before": y, "center": y + height / 2}.get(align, y + height)
    return edge < 50


def _scope(element: etree._Element, parent: _Scope, document: _Document) -> _Scope | None:
    """The element's scope, or None when it is never active (10.2, 10.4 par semantics)."""
    if element.get("timeContainer") == "seq":
        raise UnsupportedMedia("TTML: timeContainer=\"seq\" is not supported")
    rates = document.rates
    begin_attr, end_attr, dur_attr = element.get("begin"), element.get("end"), element.get("dur")
    begin = parent.begin + (parse_time(begin_attr, rates) if begin_attr else 0)
    ends = [parent.end] if parent.end is not None else []
    if end_attr:
        ends.append(parent.begin + parse_time(end_attr, rates))
    if dur_attr:
        ends.append(begin + parse_time(dur_attr, rates))
    end = min(ends) if ends else None
    if end is not None and end <= begin:
        return None
    space = element.get(f"{{{XML_NS}}}space")
    styles = _apply_styles(parent.styles, _own_properties(element, document.styles))
    return _Scope(begin, end, styles, element.get("region", parent.region),
                  parent.preserve if space is None else space == "preserve")


def _paragraphs(container: etree._Element, parent: _Scope,
                document: _Document) -> Iterator[tuple[_Scope, list[_Piece]]]:
    """Every p under body/div with its scope and text pieces, in document order."""
    scope = _scope(container, parent, document)
    if scope is None:
        return
    for child in container:
        name = _local(child)
        if name == "div":
            yield from _paragraphs(child, scope, document)
        elif name == "p":
            p_scope = _scope(child, scope, document)
            if p_scope is not None:
                pieces: list[_Piece] = []
                _inline(child, p_scope, document, pieces)
                yield p_scope, pieces


def _inline(element: etree._Element, scope: _Scope, document: _Document, pieces: list[_Piece]) -> None:
    """The text of a p or span and its descendants, as pieces (7.1.5 p, 7.1.6 span, 7.1.7 br)."""
    _add_text(element.text, scope, pieces)
    for child in element:
        name = _local(child)
        if name == "span":
            child_scope = _scope(child, scope, document)
            if child_scope is not None:
                _inline(child, child_scope, document, pieces)
        elif name == "br":
            _add_text("\n", replace(scope, preserve=True), pieces)
        _add_text(child.tail, scope, pieces)


def _add_text(text: str | None, scope: _Scope, pieces: list[_Piece]) -> None:
    if not text or scope.end is None:
        return  # no text, or an element that never ends: no cue can show it
    if not scope.preserve:
        text = _SPACES.sub(" ", text)
    begin, end = _milliseconds(scope.begin), _milliseconds(scope.end)
    if end > begin:
        pieces.append(_Piece(text, scope.styles, begin, end, scope.preserve))


def _paragraph_cues(pieces: list[_Piece], settings: str) -> list[Cue]:
    """A p's pieces -> cues, one per interval over which the active pieces do not change."""
    edges = sorted({t for piece in pieces for t in (piece.begin_ms, piece.end_ms)})
    cues: list[Cue] = []
    for begin, end in zip(edges, edges[1:], strict=False):
        active = [piece for piece in pieces if piece.begin_ms <= begin and piece.end_ms >= end]
        cue = make_cue(begin, end, _runs(active), settings)
        if cue is None:
            continue
        if cues and cues[-1].end_ms == begin and cues[-1].text == cue.text:
            cue = replace(cues.pop(), end_ms=end)  # nothing changed at this edge
        cues.append(cue)
        check_count(len(cues))
    return cues


def _runs(pieces: list[_Piece]) -> list[Run]:
    """Pieces -> runs, collapsing a space that follows a space or a line start (XSL 7.16.12)."""
    runs: list[Run] = []
    previous = "\n"
    for piece in pieces:
        text = piece.text
        if not piece.preserve and previous[-1] in " \n":
            text = text.lstrip(" ")
        if text:
            runs.append(Run(text, piece.styles))
            previous = text
    return runs
