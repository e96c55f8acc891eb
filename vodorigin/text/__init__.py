"""Subtitles: inputs (WebVTT, SubRip, TTML files; tx3g and wvtt samples in MP4) -> one cue model ->
writers (WebVTT files and HLS segments, TTML documents, wvtt/stpp samples and sample entries).

Pure functions over bytes and frozen cues: no I/O, no asyncio. Every failure is a MediaError (or
its LimitExceeded / UnsupportedMedia), with the format and the reason in the message.
"""

from vodorigin.text.cues import (
    MAX_CUE_TEXT,
    MAX_CUES,
    MAX_INPUT_BYTES,
    MAX_TIME_MS,
    Cue,
    constant_intervals,
    cues_between,
    sorted_cues,
)
from vodorigin.text.sidecar import SRT, TTML, WEBVTT, detect_format, parse_subtitles
from vodorigin.text.ttml_write import STPP_CODEC, stpp_sample, stpp_sample_entry, ttml_document
from vodorigin.text.tx3g import decode_tx3g_sample
from vodorigin.text.webvtt import webvtt_document
from vodorigin.text.wvtt import WVTT_CODEC, decode_wvtt_sample, webvtt_config, wvtt_sample_entry, wvtt_samples

__all__ = [
    "MAX_CUES",
    "MAX_CUE_TEXT",
    "MAX_INPUT_BYTES",
    "MAX_TIME_MS",
    "SRT",
    "STPP_CODEC",
    "TTML",
    "WEBVTT",
    "WVTT_CODEC",
    "Cue",
    "constant_intervals",
    "cues_between",
    "decode_tx3g_sample",
    "decode_wvtt_sample",
    "detect_format",
    "parse_subtitles",
    "sorted_cues",
    "stpp_sample",
    "stpp_sample_entry",
    "ttml_document",
    "webvtt_config",
    "webvtt_document",
    "wvtt_sample_entry",
    "wvtt_samples",
]
