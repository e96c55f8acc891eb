"""Language codes: ISO 639-2 (what mdhd, `lang/` and MPEG-TS descriptors carry) <-> BCP 47 tags (what
HLS LANGUAGE, DASH @lang and Smooth Language carry: RFC 8216 4.3.4.1, RFC 5646), and English names
for labels. A track's language is kept as a BCP 47 tag: the ISO 639-1 code when the language has
one ("en"), else its ISO 639-2/T code ("fil"), with any region or script subtags an `elng` box gave
("pt-BR"); "und" when unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vodorigin.media.language_table import TABLE

UNDETERMINED = "und"
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class Language:
    terminology: str  # ISO 639-2/T, e.g. "fra"
    bibliographic: str  # ISO 639-2/B, e.g. "fre"
    alpha2: str  # ISO 639-1, e.g. "fr", or ""
    name: str  # English name, e.g. "French"

    @property
    def tag(self) -> str:
        return self.alpha2 or self.terminology


def _index() -> dict[str, Language]:
    by_code: dict[str, Language] = {}
    for line in TABLE.splitlines():
        language = Language(*line.split("|"))
        for code in (language.terminology, language.bibliographic, language.alpha2):
            if code:
                by_code.setdefault(code, language)
    return by_code


_LANGUAGES = _index()


def lookup(code: str) -> Language | None:
    """The language of an ISO 639-1, 639-2/T or 639-2/B code, or of a BCP 47 tag's primary subtag."""
    return _LANGUAGES.get(code.split("-", 1)[0].lower())


def language_tag(code: str) -> str:
    """Any ISO 639 code or BCP 47 tag -> the canonical BCP 47 tag; "und" when unknown or empty.

    Region and script subtags are kept ("pt-br" -> "pt-BR"); a primary subtag of three letters
    becomes the two-letter code when ISO 639-1 has one ("eng" -> "en", "fre" -> "fr").
    """
    if not code or not _TAG.match(code):
        return UNDETERMINED
    primary, *rest = code.split("-")
    language = lookup(primary)
    if language is None:
        return UNDETERMINED
    subtags = [s.upper() if len(s) == 2 else s.title() if len(s) == 4 else s.lower() for s in rest]
    return "-".join([language.tag, *subtags])


def iso639_2(tag: str) -> str:
    """The ISO 639-2/T code of a tag ("en-GB" -> "eng"), for mdhd and MPEG-TS descriptors."""
    language = lookup(tag)
    return language.terminology if language is not None else UNDETERMINED


def language_name(tag: str) -> str:
    """The English name of a tag's language ("English"), or "" when undetermined."""
    language = lookup(tag)
    if language is None or language.terminology in ("und", "mul", "zxx", "mis"):
        return ""
    return language.name


def same_language(tag: str, wanted: str) -> bool:
    """Whether a track's tag matches a requested language (a code or tag); compared on the
    language itself, so "en-US" matches "eng" and "en"."""
    language, other = lookup(tag), lookup(wanted)
    return language is not None and language == other
