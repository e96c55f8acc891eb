"""What players show of a track: its language and its label (ISO/IEC 14496-12).

* Language: the extended language box `elng` (8.4.6, a BCP 47 tag) when present, else the mdhd
  language (8.4.2, ISO 639-2/T packed in three 5-bit letters), as a BCP 47 tag.
* Label: the track's user-data name (`udta/name`, as ffmpeg writes a track title), else the handler
  name (`hdlr`, 8.4.3) unless it is one of the generic names muxers write ("SoundHandler"...).
  A track without either gets its label from its language when a manifest is written.
"""

from __future__ import annotations

import functools
import re

from vodorigin.media.languages import UNDETERMINED, language_tag
from vodorigin.mp4.boxes import Box, Moov, child_boxes, full_box_header

MAX_LABEL = 128  # characters kept of a name
# Handler names that say which muxer wrote the file, not what the track holds
_GENERIC_HANDLER = re.compile(r"(?i)^$|handler$|^(core media|gpac|l-smash|mainconcept|apple|bento4|"
                              r"isomedia|mp4box|elemental|dash-if|video|audio|sound|text|subtitle|"
                              r"timed text)")


@functools.lru_cache(maxsize=1024)
def mdhd_language(packed: int) -> str:
    """The 15-bit packed ISO 639-2/T code of mdhd as a BCP 47 tag ("und" if not letters)."""
    letters = bytes(((packed >> shift) & 0x1F) + 0x60 for shift in (10, 5, 0))
    if not all(0x61 <= c <= 0x7A for c in letters):
        return UNDETERMINED
    return language_tag(letters.decode("latin-1"))


def elng_language(moov: Moov, elng: Box) -> str | None:
    """The tag of an ExtendedLanguageBox (a null-terminated BCP 47 string), or None if unusable."""
    full_box_header(moov, elng)
    text = _string(moov[elng.payload_start + 4 : elng.end])
    tag = language_tag(text)
    return tag if tag != UNDETERMINED else None


def track_label(moov: Moov, udta: Box | None, hdlr: Box) -> str:
    """The trak's udta/name, else a specific hdlr name, else ""."""
    if udta is not None:
        name = child_boxes(moov, udta, "udta").get(b"name")
        if name is not None:
            text = _string(moov[name.payload_start : name.end])
            if text:
                return text
    text = _handler_name(moov, hdlr)
    return "" if _GENERIC_HANDLER.search(text) else text


def _handler_name(moov: Moov, hdlr: Box) -> str:
    """The name after hdlr's fixed fields (4 version/flags, 4 pre_defined, 4 type, 12 reserved),
    with a QuickTime length byte in front of it removed when there is one."""
    raw = moov[hdlr.payload_start + 24 : hdlr.end]
    if raw and raw[0] == len(raw.rstrip(b"\0")) - 1:
        raw = raw[1:]
    return _string(raw)


def _string(raw: bytes) -> str:
    """A stored name: up to its first NUL, UTF-8 (or Latin-1 when it is not), controls removed."""
    raw = raw.split(b"\0", 1)[0]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if not text.isprintable():  # the usual name has nothing to remove
        text = "".join(c for c in text if c.isprintable())
    return text.strip()[:MAX_LABEL]

