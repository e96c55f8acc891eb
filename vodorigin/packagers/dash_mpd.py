"""The DASH MPD (ISO/IEC 23009-1): Periods, AdaptationSets and Representations with their segment
addressing (see dash.py for the URLs and the modes).

A mapped playlist of clips is one Period per clip when its clips differ (`discontinuity`, as
nginx-vod-module does: each Period with its own initialization, segments numbered per Period, its
clip named by a c<n> token), else one Period whose timelines run through every clip.
"""

from __future__ import annotations

import base64
import itertools
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from lxml import etree

from vodorigin.drm.keys import CLEARKEY_SYSTEM_ID, PLAYREADY_SYSTEM_ID, ContentKey, key_id_uuid
from vodorigin.errors import UnsupportedMedia
from vodorigin.media.frames import cut_indexes
from vodorigin.media.model import MediaSet, MediaType, Track
from vodorigin.media.segmenter import SegmentConfig, Timeline, set_timeline
from vodorigin.mp4.codecs import dolby_channel_mask
from vodorigin.packagers.output import PackagerContext
from vodorigin.packagers.playlist import clip_sets, playlist_rates, same_tracks
from vodorigin.packagers.renditions import Rendition, codec_family, defaults, renditions
from vodorigin.packagers.shared import FMP4, frame_rate, has_samples
from vodorigin.packagers.text import output_track
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"  # SegmentTemplate addressing (23009-1 8.4)
FULL_PROFILE = "urn:mpeg:dash:profile:full:2011"  # SegmentList is not in the live profile (8.2)
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
DOLBY_CHANNEL_SCHEME = "tag:dolby.com,2014:dash:audio_channel_configuration:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
MP4PROTECTION_SCHEME = "urn:mpeg:dash:mp4protection:2011"
DASHIF_CLEARKEY_SCHEME = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
CENC_NAMESPACE = "urn:mpeg:cenc:2013"
PLAYREADY_NAMESPACE = "urn:microsoft:playready"
WEBVTT_FILE = "webvtt"


@dataclass(frozen=True, slots=True)
class _Set:
    """An AdaptationSet to be: its media type and its renditions."""

    media_type: MediaType
    members: list[Rendition]


@dataclass(frozen=True, slots=True)
class _Period:
    """What a Period shows (a clip's set, or the whole set), the token naming its clip in URLs
    ("" or "c2"), and where it starts on the presentation timeline."""

    media: MediaSet
    clip: str = ""
    start_ms: int = 0


def render_manifest(media: MediaSet, context: PackagerContext, config: SegmentConfig) -> bytes:
    if media.clips and context.dash_manifest_format == "segmenttemplate":
        raise UnsupportedMedia("a fixed SegmentTemplate@duration cannot describe a playlist of clips "
                               "(dash_manifest_format segmenttimeline or segmentlist can)")
    periods = [_Period(clip, f"c{n}", clip.offset_ms) for n, clip in enumerate(media.clips, start=1)] \
        if media.clips and media.discontinuity else [_Period(media)]
    total = _end(media, config)
    starts = [period.start_ms / 1000 for period in periods]
    durations = [end - start for start, end in zip(starts, [*starts[1:], total], strict=True)]
    namespaces: dict[str | None, str] = {None: MPD_NAMESPACE}
    if context.encrypts("dash"):
        namespaces.update(cenc=CENC_NAMESPACE, mspr=PLAYREADY_NAMESPACE)
    mpd = etree.Element(f"{{{MPD_NAMESPACE}}}MPD", nsmap=namespaces, type="static",
                        profiles=FULL_PROFILE if context.dash_manifest_format == "segmentlist" else PROFILE,
                        minBufferTime=_duration(_min_buffer(media, config)),
                        mediaPresentationDuration=_duration(total))
    for index, (period, start, duration) in enumerate(zip(periods, starts, durations, strict=True)):
        element = etree.SubElement(mpd, "Period", id=str(index), start=_duration(start))
        if len(periods) > 1:
            element.set("duration", _duration(duration))
        sets = _adaptation_sets(clip_sets(period.media)[0], config)
        for number, adaptation_set in enumerate(sets, start=1):
            _adaptation_element(element, number, adaptation_set, period, context, config)
    return etree.tostring(mpd, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _min_buffer(media: MediaSet, config: SegmentConfig) -> float:
    """minBufferTime (5.3.1.2): the longest segment of the cut timeline, so that a client that
    buffers that much before playing at the Representations' bandwidth plays on; rounded up to a
    whole second, plus one for segments of other tracks ending a frame or two later."""
    longest = 0.0
    for clip in clip_sets(media):
        for movie in clip.movies:
            if movie.tracks_of(MediaType.VIDEO) or movie.tracks_of(MediaType.AUDIO):
                timeline = set_timeline(clip, movie, config)
                if timeline.count:
                    longest = max(longest, float(np.max(np.diff(timeline.cuts))) / timeline.timescale)
    return float(math.ceil(longest) + 1)


def _end(media: MediaSet, config: SegmentConfig) -> float:
    """Seconds from the start at which a set's media ends: its longest timeline, after the offset of
    a playlist's last clip (the clips before it last what the mapping's `durations` say, a clip
    ending early leaving a gap before the next)."""
    last = clip_sets(media)[-1]
    timed = [m for m in last.movies if m.tracks_of(MediaType.VIDEO) or m.tracks_of(MediaType.AUDIO)]
    timelines = [set_timeline(last, movie, config) for movie in timed]
    return last.offset_ms / 1000 + max(((t.end - t.start) / t.timescale for t in timelines), default=0)


def _adaptation_sets(media: MediaSet, config: SegmentConfig) -> list[_Set]:
    """Video by codec family; audio by language, label and codec family; a set per subtitle track.
    A track without any sample in the clip (a shorter track) is left out."""
    sets: dict[tuple[object, ...], _Set] = {}
    for media_type in (MediaType.VIDEO, MediaType.AUDIO, MediaType.SUBTITLE):
        for rendition in renditions(media, media_type):
            track = rendition.track
            if media_type is not MediaType.SUBTITLE and \
                    not has_samples(track, set_timeline(media, rendition.movie, config)):
                continue
            key: tuple[object, ...] = (media_type, codec_family(track))
            if media_type is MediaType.AUDIO:
                key += (track.language, track.display_label)
            elif media_type is MediaType.SUBTITLE:
                key += (rendition.file, track.track_id)
            sets.setdefault(key, _Set(media_type, [])).members.append(rendition)
    return list(sets.values())


def _adaptation_element(parent: etree._Element, index: int, adaptation: _Set, period: _Period,
                        context: PackagerContext, config: SegmentConfig) -> None:
    media = clip_sets(period.media)[0]
    media_type, members = adaptation.media_type, adaptation.members
    first = members[0].track
    text_file = media_type is MediaType.SUBTITLE and context.dash_subtitle_format == WEBVTT_FILE
    mime = "text/vtt" if text_file else "application/mp4" if media_type is MediaType.SUBTITLE else \
        f"{media_type.value}/mp4"
    element = etree.SubElement(parent, "AdaptationSet", id=str(index), contentType=media_type.value,
                               mimeType=mime, segmentAlignment="true", startWithSAP="1")
    if media_type is MediaType.VIDEO:
        _video_set_attributes(element, [r.track for r in members])
    else:
        if first.language != "und":
            element.set("lang", first.language)
        if first.known_label:
            etree.SubElement(element, "Label").text = first.known_label
        etree.SubElement(element, "Role", schemeIdUri=ROLE_SCHEME, value=_role(adaptation, media))
    encrypted = context.encrypts("dash") and media_type is not MediaType.SUBTITLE
    keys = {context.key(r.movie.source.path, media_type).key_id for r in members} if encrypted else set()
    if len(keys) == 1:  # one key for the set: said once, where players look (DASH-IF IOP 7.7.1)
        key = context.key(members[0].movie.source.path, media_type)
        protections = _protection(key, context.dash_encryption_scheme)
        for position, protection in enumerate(protections):
            element.insert(position, protection)
    for rendition in members:
        _representation_element(element, rendition, period, context, config, text_file, len(keys) > 1)


def _video_set_attributes(element: etree._Element, tracks: list[Track]) -> None:
    """maxWidth, maxHeight, maxFrameRate and par (the picture aspect ratio, 5.3.3.2) of a set."""
    width = max(t.codec.width for t in tracks)
    height = max(t.codec.height for t in tracks)
    element.set("maxWidth", str(width))
    element.set("maxHeight", str(height))
    element.set("maxFrameRate", _frame_rate_text(max(frame_rate(t) for t in tracks)))
    widest = max(tracks, key=lambda t: t.codec.width * t.codec.height)
    horizontal, vertical = widest.codec.pixel_aspect
    across, down = widest.codec.width * horizontal, widest.codec.height * vertical
    if across and down:
        divisor = math.gcd(across, down)
        element.set("par", f"{across // divisor}:{down // divisor}")


def _frame_rate_text(rate: float) -> str:
    """A FrameRateType (5.3.12.2): a whole number, or a fraction such as 30000/1001."""
    fraction = Fraction(rate).limit_denominator(1001)
    if fraction.denominator == 1:
        return str(fraction.numerator)
    return f"{fraction.numerator}/{fraction.denominator}"


def _role(adaptation: _Set, media: MediaSet) -> str:
    """subtitle for text; for audio, main on the set of the default audio rendition, else alternate."""
    if adaptation.media_type is MediaType.SUBTITLE:
        return "subtitle"
    audios = renditions(media, MediaType.AUDIO)
    default = audios[defaults(audios).index(True)] if audios else None
    return "main" if default in adaptation.members else "alternate"


def _representation_element(adaptation: etree._Element, rendition: Rendition, period: _Period,
                            context: PackagerContext, config: SegmentConfig, text_file: bool,
                            protect: bool = False) -> None:
    track, rep_id = rendition.track, rendition.tokens(clip_sets(period.media)[0])
    if track.media_type is MediaType.SUBTITLE:
        _text_representation(adaptation, rendition, period, context, config, text_file)
        return
    peak, _ = playlist_rates(period.media, rendition.file, (track,), config, FMP4)
    element = etree.SubElement(adaptation, "Representation", id=rep_id, codecs=track.codec.codec_string,
                               bandwidth=str(peak))
    if track.media_type is MediaType.VIDEO:
        element.set("width", str(track.codec.width))
        element.set("height", str(track.codec.height))
        element.set("frameRate", _frame_rate_text(frame_rate(track)))
        element.set("sar", "{}:{}".format(*track.codec.pixel_aspect))
    else:
        element.set("audioSamplingRate", str(track.codec.sample_rate))
        _channel_configuration(element, track)
    if protect:  # renditions of the set under different keys: each says its own
        element.extend(_protection(context.key(rendition.movie.source.path, track.media_type),
                                   context.dash_encryption_scheme))
    times = _times(period.media, rendition, config, _segment_starts)
    _segments(element, rep_id, track.timescale, times, period, context)


def _protection(key: ContentKey, scheme: str) -> list[etree._Element]:
    """ContentProtection elements (23009-1 5.8.4.1, DASH-IF IOP 7.7): mp4protection with the
    scheme and cenc:default_KID (nginx-vod-module leaves the KID off this one), then one per DRM
    system of the DRM info with its pssh box (and PlayReady's mspr:pro). W3C ClearKey is signalled
    with DASH-IF's ClearKey scheme (IOP 4.1 7.6.2.4), without a pssh: players derive "keyids" init
    data from the default KID, and the W3C Common PSSH box is in the init segment. (Given that box
    in the MPD, dash.js hands it to the CDM as "keyids" init data, which the CDM refuses.)"""
    kid = {f"{{{CENC_NAMESPACE}}}default_KID": key_id_uuid(key.key_id)}
    elements = [etree.Element("ContentProtection", schemeIdUri=MP4PROTECTION_SCHEME, value=scheme, **kid)]
    for system in key.systems:
        if system.system_id == CLEARKEY_SYSTEM_ID:
            elements.append(etree.Element("ContentProtection", schemeIdUri=DASHIF_CLEARKEY_SCHEME,
                                          value="ClearKey1.0", **kid))
            continue
        scheme = f"urn:uuid:{uuid.UUID(bytes=system.system_id)}"
        element = etree.Element("ContentProtection", schemeIdUri=scheme, **kid)
        etree.SubElement(element, f"{{{CENC_NAMESPACE}}}pssh").text = _base64(system.pssh)
        if system.system_id == PLAYREADY_SYSTEM_ID:
            etree.SubElement(element, f"{{{PLAYREADY_NAMESPACE}}}pro").text = _base64(system.data)
        elements.append(element)
    return elements


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _channel_configuration(element: etree._Element, track: Track) -> None:
    """23003-3: the number of channels (6 for 5.1); AC-3/E-AC-3: Dolby's 16-bit channel mask."""
    mask = dolby_channel_mask(track.codec)
    if mask is not None:
        etree.SubElement(element, "AudioChannelConfiguration", schemeIdUri=DOLBY_CHANNEL_SCHEME,
                         value=f"{mask:04X}")
    else:
        etree.SubElement(element, "AudioChannelConfiguration", schemeIdUri=CHANNEL_SCHEME,
                         value=str(track.codec.channels))


def _text_representation(adaptation: etree._Element, rendition: Rendition, period: _Period,
                         context: PackagerContext, config: SegmentConfig, text_file: bool) -> None:
    """A WebVTT file (BaseURL sub-<rep>.vtt) or fMP4 text segments cut where the video is."""
    rep_id, track = rendition.tokens(clip_sets(period.media)[0]), rendition.track
    text_bytes = sum(len(c.text) + 40 for c in track.cues) if track.cues is not None else \
        int(track.samples.sizes.sum())  # embedded cues are read for segments only, not for the MPD
    seconds = max(_end(period.media, config) - period.start_ms / 1000, 1.0)
    bandwidth = max(int(text_bytes * 8 / seconds), 1)
    element = etree.SubElement(adaptation, "Representation", id=rep_id, bandwidth=str(bandwidth))
    if text_file:
        clip = f"{period.clip}-" if period.clip else ""
        etree.SubElement(element, "BaseURL").text = f"sub-{clip}{rep_id}.vtt"
        return
    element.set("codecs", output_track(rendition.track, context.dash_subtitle_format).codec.codec_string)
    _segments(element, rep_id, 1000, _times(period.media, rendition, config, _text_starts), period, context)


def _text_starts(track: Track, timeline: Timeline) -> tuple[list[int], int]:
    """Text segments in ms, cut where the timeline is (where the video is)."""
    starts = [rescale(c - timeline.zero, timeline.timescale, 1000) for c in timeline.cuts.tolist()]
    return starts[:-1], starts[-1]


def _times(media: MediaSet, rendition: Rendition, config: SegmentConfig,
           starts_of: Callable[[Track, Timeline], tuple[list[int], int]]) -> tuple[list[int], int]:
    """The segment starts and the end of a representation, through every clip of a playlist."""
    starts: list[int] = []
    end = 0
    for clip in clip_sets(media):
        movie = clip.movies[rendition.file - 1]
        (track,) = same_tracks(movie, (rendition.track,))
        clip_starts, end = starts_of(track, set_timeline(clip, movie, config))
        starts += clip_starts
    return starts, end


def _segment_starts(track: Track, timeline: Timeline) -> tuple[list[int], int]:
    """Each segment's earliest presentation time and the end, in the track's ticks from the timeline
    start (as the fragments' decode times count them): video segments start at the timeline's cuts
    (key frames), audio segments at their first frame."""
    origin = rescale(timeline.zero, timeline.timescale, track.timescale)
    if track.media_type is MediaType.VIDEO:
        cuts = timeline.cuts[:-1].tolist()
        starts = [rescale(c, timeline.timescale, track.timescale) - origin for c in cuts]
    else:
        first_samples = cut_indexes(track, timeline)[:-1]
        samples = track.samples
        inside = first_samples < samples.count
        dts = np.full(len(first_samples), samples.end_dts, dtype=np.int64)  # a segment past the last sample
        dts[inside] = samples.dts_at(first_samples[inside])
        starts = (dts + track.edit_shift - origin).tolist()
    end = track.presentation_end if timeline.open_end else rescale(timeline.end, timeline.timescale,
                                                                    track.timescale)
    return starts, end - origin


def _segments(element: etree._Element, rep_id: str, timescale: int, times: tuple[list[int], int],
              period: _Period, context: PackagerContext) -> None:
    """The segment addressing of a Representation. Media times carry the presentation delay (and a
    Period of a later clip its start), which presentationTimeOffset takes away."""
    delay = rescale(PRESENTATION_DELAY_MS, 1000, timescale)
    offset = rescale(PRESENTATION_DELAY_MS + period.start_ms, 1000, timescale)
    timing = {"timescale": str(timescale), "presentationTimeOffset": str(offset)}
    clip = f"-{period.clip}" if period.clip else ""
    if context.dash_manifest_format == "segmentlist":  # startNumber is left at its default, 1
        segments = etree.SubElement(element, "SegmentList", timing)
        etree.SubElement(segments, "Initialization", sourceURL=f"init{clip}-{rep_id}.mp4")
        count = _segment_timeline(segments, times, delay)
        for number in range(1, count + 1):
            etree.SubElement(segments, "SegmentURL", media=f"fragment-{number}{clip}-{rep_id}.m4s")
        return
    template = etree.SubElement(element, "SegmentTemplate", {
        **timing, "startNumber": "1", "initialization": f"init{clip}-$RepresentationID$.mp4",
        "media": f"fragment-$Number${clip}-$RepresentationID$.m4s"})
    if context.dash_manifest_format == "segmenttemplate":
        template.set("duration", str(rescale(context.segments.segment_duration_ms, 1000, timescale)))
    else:
        _segment_timeline(template, times, delay)


def _segment_timeline(parent: etree._Element, times: tuple[list[int], int], delay: int) -> int:
    """S elements (5.3.9.6): each segment's earliest presentation time and duration, run-length
    coded; segments after the end of a shorter track are not listed. Returns the segment count."""
    starts, end = times
    durations = [b - a for a, b in zip(starts, [*starts[1:], end], strict=True)]
    while durations and durations[-1] <= 0:
        durations.pop()
    element = etree.SubElement(parent, "SegmentTimeline")
    for index, (duration, run) in enumerate(itertools.groupby(durations)):
        segment = etree.SubElement(element, "S")
        if index == 0:
            segment.set("t", str(starts[0] + delay))
        segment.set("d", str(duration))
        repeats = sum(1 for _ in run) - 1
        if repeats:
            segment.set("r", str(repeats))
    return len(durations)


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"
