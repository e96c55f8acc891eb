"""MPEG-DASH (ISO/IEC 23009-1): a static MPD and fMP4 segments.

URLs (REFERENCE.md): manifest[-l<lang>].mpd, init-<rep>.mp4, fragment-N-<rep>.m4s, and sub-<rep>.vtt
for subtitles as one WebVTT file; representation ids v1, a2, t1 for one file and f1-v1, f2-a1,
f3-t1 for a urlset. Media times are presentation times plus PRESENTATION_DELAY_MS, declared as
presentationTimeOffset.

AdaptationSets (5.3.3; DASH-IF IOP 3.9 for languages): one for the video of each codec family;
one per audio language, label and codec family (a player switches bit rate inside a set, never
language), with @lang (BCP 47), a Label, a Role (main for the default, alternate for the others) and
an AudioChannelConfiguration per Representation (23003-3 channel counts; Dolby's channel mask for
AC-3 and E-AC-3); one per subtitle track, Role subtitle, as a single WebVTT file or fMP4 segments
of wvtt or stpp samples (dash_subtitle_format).

Segment addressing (dash_manifest_format, as nginx-vod-module's vod_dash_manifest_format):
* segmenttimeline (default): SegmentTemplate + SegmentTimeline with the real durations of each
  Representation's own track, so a player's timeline matches the media exactly (5.3.9.6);
* segmenttemplate: SegmentTemplate@duration, the nominal segment duration (5.3.9.5.3); players
  derive segment numbers from times, which key-frame alignment keeps within a GOP of the truth;
* segmentlist: SegmentList with the same SegmentTimeline and one SegmentURL per segment (5.3.9.3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from lxml import etree

from vodorigin.errors import BadRequest
from vodorigin.media.frames import SourceBytes, cut_indexes, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import SegmentConfig, Timeline, set_timeline
from vodorigin.mp4.codecs import dolby_channel_mask
from vodorigin.mux import fmp4
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.renditions import Rendition, codec_family, defaults, narrowed, renditions
from vodorigin.packagers.shared import (
    FMP4,
    choose_rendition,
    frame_rate,
    has_samples,
    mp4_type,
    segment_bitrates,
)
from vodorigin.packagers.text import output_track, presented_cues, text_fragment, timeline_span_ms
from vodorigin.text import webvtt_document
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale
from vodorigin.urls import FileName, parse_file_name

MPD_TYPE = "application/dash+xml"
MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
DOLBY_CHANNEL_SCHEME = "tag:dolby.com,2014:dash:audio_channel_configuration:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
WEBVTT_FILE = "webvtt"


@dataclass(frozen=True, slots=True)
class _Set:
    """An AdaptationSet to be: its media type and its renditions."""

    media_type: MediaType
    members: list[Rendition]


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    name = parse_file_name(file_name, numbered=file_name.startswith("fragment-"))
    media = narrowed(media, name)
    route = (name.kind, name.extension)
    if route == ("manifest", "mpd"):
        if name.file_index is not None or not name.tracks.empty:
            raise BadRequest("an MPD lists every track: only an l<lang> token applies to it")
        return Document(render_manifest(media, context), MPD_TYPE, tuple(m.source for m in media.movies))
    if route in (("init", "mp4"), ("fragment", "m4s"), ("sub", "vtt")):
        movie, track = _representation(media, name)
        if route == ("init", "mp4"):
            init_track = output_track(track, context.dash_subtitle_format) \
                if track.media_type is MediaType.SUBTITLE else track
            return Document(fmp4.init_segment([init_track]), mp4_type((track,)), (movie.source,))
        if route == ("sub", "vtt"):
            return _webvtt_file(media, movie, track, context)
        return fragment(name, media, context)
    raise BadRequest(f"unknown DASH file name {file_name!r}")


def segment_config(context: PackagerContext) -> SegmentConfig:
    """The segmentation DASH uses. A fixed-duration template numbers segments by time (number N
    starts at (N - 1) * duration), so its segments keep their nominal numbering (estimate mode, no
    segment dropped) and only the last one may be short."""
    if context.dash_manifest_format != "segmenttemplate":
        return context.segments
    return replace(context.segments, durations_mode="estimate", count_policy="last_short", bootstrap_ms=())


def _representation(media: MediaSet, name: FileName) -> tuple[Movie, Track]:
    """The one track a representation id (v1, a1, t1, f2-v1...) names."""
    movie, tracks = choose_rendition(media, name)
    if name.tracks.empty or len(tracks) != 1:
        raise BadRequest("a DASH representation names exactly one track (v1, a1, t1, f2-v1...)")
    return movie, tracks[0]


def fragment(name: FileName, media: MediaSet, context: PackagerContext) -> Output:
    movie, track = _representation(media, name)
    number = name.number or 1
    timeline = set_timeline(media, movie, segment_config(context))
    if track.media_type is MediaType.SUBTITLE:
        kind = context.dash_subtitle_format
        body = text_fragment(output_track(track, kind), presented_cues(track, timeline),
                             timeline_span_ms(timeline, number), number, PRESENTATION_DELAY_MS, kind)
        return Document(body, "application/mp4", (movie.source,))
    frames = segment_frames(track, timeline, number, context.max_frames_per_segment)
    delay = rescale(PRESENTATION_DELAY_MS, 1000, track.timescale)
    plan = fmp4.plan_fragment(number, [fmp4.FragmentTrack(frames, delay)], segment_type=True,
                              segment_index=context.dash_segment_index)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_views(frames)])

    ranges = merged_ranges([frames], context.read_merge_gap)
    return MediaSegment(plan.size, mp4_type((track,)), movie.source, ranges, render)


def _webvtt_file(media: MediaSet, movie: Movie, track: Track, context: PackagerContext) -> Document:
    """A subtitle track as one WebVTT file (dash_subtitle_format webvtt), times from the period start."""
    if track.media_type is not MediaType.SUBTITLE:
        raise BadRequest("sub-<rep>.vtt names a subtitle track")
    timeline = set_timeline(media, movie, segment_config(context))
    return Document(webvtt_document(presented_cues(track, timeline)), "text/vtt", (movie.source,))


def render_manifest(media: MediaSet, context: PackagerContext) -> bytes:
    config = segment_config(context)
    sets = _adaptation_sets(media, config)
    timelines = [set_timeline(media, movie, config) for movie in _timed(media)]
    duration = max(((t.end - t.start) / t.timescale for t in timelines), default=0)  # each in its own ticks
    mpd = etree.Element(f"{{{MPD_NAMESPACE}}}MPD", nsmap={None: MPD_NAMESPACE}, type="static",
                        profiles=PROFILE, minBufferTime="PT2S", mediaPresentationDuration=_duration(duration))
    period = etree.SubElement(mpd, "Period", id="0", start="PT0S")
    for index, adaptation_set in enumerate(sets, start=1):
        _adaptation_element(period, index, adaptation_set, media, context)
    return etree.tostring(mpd, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _timed(media: MediaSet) -> list[Movie]:
    return [m for m in media.movies if m.tracks_of(MediaType.VIDEO) or m.tracks_of(MediaType.AUDIO)]


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


def _adaptation_element(period: etree._Element, index: int, adaptation: _Set, media: MediaSet,
                        context: PackagerContext) -> None:
    media_type, members = adaptation.media_type, adaptation.members
    first = members[0].track
    text_file = media_type is MediaType.SUBTITLE and context.dash_subtitle_format == WEBVTT_FILE
    mime = "text/vtt" if text_file else "application/mp4" if media_type is MediaType.SUBTITLE else \
        f"{media_type.value}/mp4"
    element = etree.SubElement(period, "AdaptationSet", id=str(index), contentType=media_type.value,
                               mimeType=mime, segmentAlignment="true", startWithSAP="1")
    if media_type is not MediaType.VIDEO:
        if first.language != "und":
            element.set("lang", first.language)
        if first.known_label:
            etree.SubElement(element, "Label").text = first.known_label
        etree.SubElement(element, "Role", schemeIdUri=ROLE_SCHEME, value=_role(adaptation, media))
    for rendition in members:
        _representation_element(element, rendition, media, context, text_file)


def _role(adaptation: _Set, media: MediaSet) -> str:
    """subtitle for text; for audio, main on the set of the default audio rendition, else alternate."""
    if adaptation.media_type is MediaType.SUBTITLE:
        return "subtitle"
    audios = renditions(media, MediaType.AUDIO)
    default = audios[defaults(audios).index(True)] if audios else None
    return "main" if default in adaptation.members else "alternate"


def _representation_element(adaptation: etree._Element, rendition: Rendition, media: MediaSet,
                            context: PackagerContext, text_file: bool) -> None:
    track, rep_id = rendition.track, rendition.tokens(media)
    timeline = set_timeline(media, rendition.movie, segment_config(context))
    if track.media_type is MediaType.SUBTITLE:
        _text_representation(adaptation, rendition, media, timeline, context, text_file)
        return
    peak, _ = segment_bitrates((track,), timeline, FMP4)
    element = etree.SubElement(adaptation, "Representation", id=rep_id, codecs=track.codec.codec_string,
                               bandwidth=str(peak))
    if track.media_type is MediaType.VIDEO:
        element.set("width", str(track.codec.width))
        element.set("height", str(track.codec.height))
        element.set("frameRate", f"{frame_rate(track):.3f}".rstrip("0").rstrip("."))
        element.set("sar", "{}:{}".format(*track.codec.pixel_aspect))
    else:
        element.set("audioSamplingRate", str(track.codec.sample_rate))
        _channel_configuration(element, track)
    _segments(element, rep_id, track.timescale, _segment_starts(track, timeline), context)


def _channel_configuration(element: etree._Element, track: Track) -> None:
    """23003-3: the number of channels (6 for 5.1); AC-3/E-AC-3: Dolby's 16-bit channel mask."""
    mask = dolby_channel_mask(track.codec)
    if mask is not None:
        etree.SubElement(element, "AudioChannelConfiguration", schemeIdUri=DOLBY_CHANNEL_SCHEME,
                         value=f"{mask:04X}")
    else:
        etree.SubElement(element, "AudioChannelConfiguration", schemeIdUri=CHANNEL_SCHEME,
                         value=str(track.codec.channels))


def _text_representation(adaptation: etree._Element, rendition: Rendition, media: MediaSet,
                         timeline: Timeline, context: PackagerContext, text_file: bool) -> None:
    """A WebVTT file (BaseURL sub-<rep>.vtt) or fMP4 text segments cut where the video is."""
    rep_id, track = rendition.tokens(media), rendition.track
    text_bytes = sum(len(c.text) + 40 for c in track.cues) if track.cues is not None else \
        int(track.samples.sizes.sum())  # embedded cues are read for segments only, not for the MPD
    seconds = max((timeline.end - timeline.start) / timeline.timescale, 1.0)
    bandwidth = max(int(text_bytes * 8 / seconds), 1)
    element = etree.SubElement(adaptation, "Representation", id=rep_id, bandwidth=str(bandwidth))
    if text_file:
        etree.SubElement(element, "BaseURL").text = f"sub-{rep_id}.vtt"
        return
    element.set("codecs", output_track(rendition.track, context.dash_subtitle_format).codec.codec_string)
    starts = [rescale(c - timeline.start, timeline.timescale, 1000) for c in timeline.cuts.tolist()]
    _segments(element, rep_id, 1000, (starts[:-1], starts[-1]), context)


def _segment_starts(track: Track, timeline: Timeline) -> tuple[list[int], int]:
    """Each segment's earliest presentation time and the end, in the track's ticks from the timeline
    start (as the fragments' decode times count them): video segments start at the timeline's cuts
    (key frames), audio segments at their first frame."""
    origin = rescale(timeline.start, timeline.timescale, track.timescale)
    if track.media_type is MediaType.VIDEO:
        cuts = timeline.cuts[:-1].tolist()
        starts = [rescale(c, timeline.timescale, track.timescale) - origin for c in cuts]
    else:
        first_samples = cut_indexes(track, timeline)[:-1]
        dts = np.append(track.samples.dts, track.samples.end_dts)  # a segment past the last sample
        starts = (dts[first_samples] + track.edit_shift - origin).tolist()
    end = track.presentation_end if timeline.open_end else rescale(timeline.end, timeline.timescale,
                                                                    track.timescale)
    return starts, end - origin


def _segments(element: etree._Element, rep_id: str, timescale: int, times: tuple[list[int], int],
              context: PackagerContext) -> None:
    delay = rescale(PRESENTATION_DELAY_MS, 1000, timescale)
    timing = {"timescale": str(timescale), "presentationTimeOffset": str(delay)}
    if context.dash_manifest_format == "segmentlist":  # startNumber is left at its default, 1
        segments = etree.SubElement(element, "SegmentList", timing)
        etree.SubElement(segments, "Initialization", sourceURL=f"init-{rep_id}.mp4")
        count = _segment_timeline(segments, times, delay)
        for number in range(1, count + 1):
            etree.SubElement(segments, "SegmentURL", media=f"fragment-{number}-{rep_id}.m4s")
        return
    template = etree.SubElement(element, "SegmentTemplate", {
        **timing, "startNumber": "1", "initialization": "init-$RepresentationID$.mp4",
        "media": "fragment-$Number$-$RepresentationID$.m4s"})
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
    previous: etree._Element | None = None
    for duration in durations:
        if previous is not None and int(previous.get("d", "0")) == duration:
            previous.set("r", str(int(previous.get("r", "0")) + 1))
            continue
        previous = etree.SubElement(element, "S")
        if len(element) == 1:
            previous.set("t", str(starts[0] + delay))
        previous.set("d", str(duration))
    return len(durations)


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"
