"""Subtitle files next to the media: the format told by the content, then parsed to cues.

The file name's extension is never trusted: a .srt that is WebVTT inside is read as WebVTT.
Text is UTF-8, with or without a byte order mark, or UTF-16 with one (TTML may also name another
encoding in its XML declaration, which lxml honours).
"""

from __future__ import annotations

import codecs

from vodorigin.errors import MediaError
from vodorigin.text.cues import Cue, check_input_size, sorted_cues
from vodorigin.text.srt import looks_like_srt, parse_srt
from vodorigin.text.ttml import looks_like_ttml, parse_ttml
from vodorigin.text.webvtt import parse_webvtt

WEBVTT, SRT, TTML = "webvtt", "srt", "ttml"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def detect_format(data: bytes) -> str | None:
    """"webvtt", "srt" or "ttml" from the first bytes of a document; None when it is none of them."""
    head = _sniff(data[:4096])
    if head.startswith("WEBVTT") and head[6:7] in ("", " ", "\t", "\n", "\r"):
        return WEBVTT
    if looks_like_ttml(head):
        return TTML
    if looks_like_srt(head.replace("\r\n", "\n").replace("\r", "\n")):
        return SRT
    return None


def parse_subtitles(data: bytes) -> list[Cue]:
    """A WebVTT, SubRip or TTML document -> its cues in text track cue order (see cues.py)."""
    check_input_size(len(data))
    kind = detect_format(data)
    if kind == TTML:
        cues = parse_ttml(data)
    elif kind == WEBVTT:
        cues = parse_webvtt(decode_text(data))
    elif kind == SRT:
        cues = parse_srt(decode_text(data))
    else:
        raise MediaError("subtitle document is not WebVTT, SRT or TTML")
    return sorted_cues(cues)


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM dropped) or UTF-16 with a BOM -> text; anything else is a MediaError."""
    try:
        if data.startswith(_UTF16_BOMS):
            return data.decode("utf-16")  # the codec reads and drops the BOM
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MediaError(f"subtitle text is not UTF-8 or UTF-16 with a byte order mark ({exc.reason} at "
                         f"byte {exc.start})") from None


def _sniff(head: bytes) -> str:
    """The start of the document as text, leniently (a cut character or a legacy byte is harmless)."""
    if head.startswith(_UTF16_BOMS):
        return head.decode("utf-16", errors="replace").removeprefix("\ufeff")
    return head.decode("utf-8", errors="replace").removeprefix("\ufeff")
