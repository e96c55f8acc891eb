"""WebVTT in ISO BMFF ('wvtt', ISO/IEC 14496-30): samples in and out, the sample entry.

A sample holds the cues active over its whole duration: one VTTCueBox 'vttc' per
cue, each with an optional CueIDBox 'iden', an optional CueSettingsBox 'sttg' and a CuePayloadBox
'payl' (the cue text), in that order; a sample with no cue is a VTTEmptyCueBox 'vtte'.
A cue that spans several samples is repeated in each, unchanged. wvtt_samples cuts an interval at
every cue start and end, so the samples tile it with no gap and each carries a constant set of cues.

The sample entry WVTTSampleEntry extends PlainTextSampleEntry (ISO/IEC 14496-12 12.5.3):
SampleEntry's 6 reserved bytes and data_reference_index, then a WebVTTConfigurationBox 'vttC'
holding the WebVTT file header text ("WEBVTT").
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.mp4.boxes import Box, iter_boxes, read_box_header
from vodorigin.mp4.write import box
from vodorigin.text.cues import MAX_CUE_TEXT, Cue, constant_intervals
from vodorigin.text.markup import canonical
from vodorigin.text.webvtt import clean_settings

WVTT_CODEC = "wvtt"  # the codecs parameter of a WebVTT-in-ISOBMFF representation (14496-30)
WEBVTT_HEADER = "WEBVTT"
DATA_REFERENCE_INDEX = 1  # the one data reference of the track (dinf/dref, 14496-12 8.7.2)


def vttc_box(cue: Cue) -> bytes:
    """One cue as a VTTCueBox (14496-30): iden and sttg when present, then payl."""
    parts = []
    if cue.identifier:
        parts.append(box(b"iden", cue.identifier.encode()))
    settings = clean_settings(cue.settings)
    if settings:
        parts.append(box(b"sttg", settings.encode()))
    parts.append(box(b"payl", canonical(cue.text).encode()))
    return box(b"vttc", *parts)


def wvtt_samples(cues: Sequence[Cue], start_ms: int, end_ms: int) -> list[tuple[int, int, bytes]]:
    """(start_ms, duration_ms, sample) tiling [start_ms, end_ms): one sample per constant set of cues.

    cues must be in text track cue order (as parse_subtitles returns them); overlapping cues go into
    one sample as several vttc, in that order; an interval with no cue is a 'vtte' sample.
    """
    samples = []
    for begin, end, active in constant_intervals(cues, start_ms, end_ms):
        payload = b"".join(vttc_box(cue) for cue in active) if active else box(b"vtte")
        samples.append((begin, end - begin, payload))
    return samples


def wvtt_sample_entry(header: str = WEBVTT_HEADER) -> bytes:
    """The 'wvtt' sample entry for stsd: reserved, data_reference_index, vttC (WVTTSampleEntry)."""
    return box(b"wvtt", bytes(6), struct.pack(">H", DATA_REFERENCE_INDEX), box(b"vttC", header.encode()))


def webvtt_config(sample_entry: bytes) -> str:
    """The WebVTT header text in a 'wvtt' sample entry's vttC box."""
    entry = read_box_header(sample_entry, 0, len(sample_entry))
    if entry is None or entry.type != b"wvtt" or entry.end != len(sample_entry):
        raise MediaError("wvtt sample entry: not one whole 'wvtt' box")
    if entry.size < entry.header_size + 8:
        raise MediaError("wvtt sample entry: too short for SampleEntry fields")
    for child in iter_boxes(sample_entry, entry.payload_start + 8, entry.end, "wvtt"):
        if child.type == b"vttC":
            return _utf8(sample_entry, child, "vttC")
    raise MediaError("wvtt sample entry: no vttC configuration box")


def decode_wvtt_sample(sample: bytes) -> list[tuple[str, str, str]]:
    """One wvtt sample -> (cue text, settings, identifier) per vttc, in order; [] for 'vtte'.

    Text is reduced to markup.render's form and settings to webvtt.clean_settings'; other boxes
    ('vtte', 'vtta' comments, unknown ones) are skipped.
    """
    return [_vttc(sample, cue_box) for cue_box in iter_boxes(sample, 0, len(sample), "wvtt sample")
            if cue_box.type == b"vttc"]


def _vttc(sample: bytes, cue_box: Box) -> tuple[str, str, str]:
    children = {child.type: child for child in iter_boxes(sample, cue_box.payload_start, cue_box.end, "vttc")}
    if b"payl" not in children:
        raise MediaError("wvtt sample: a vttc box without its payl cue text")
    text = canonical(_utf8(sample, children[b"payl"], "payl"))
    if len(text) > MAX_CUE_TEXT:
        raise LimitExceeded(f"wvtt sample: {len(text)} characters of cue text, more than {MAX_CUE_TEXT}")
    settings = clean_settings(_utf8(sample, children[b"sttg"], "sttg")) if b"sttg" in children else ""
    identifier = _utf8(sample, children[b"iden"], "iden") if b"iden" in children else ""
    return text, settings, identifier


def _utf8(buffer: bytes, found: Box, name: str) -> str:
    try:
        return buffer[found.payload_start : found.end].decode()
    except UnicodeDecodeError as exc:
        raise MediaError(f"wvtt {name}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
