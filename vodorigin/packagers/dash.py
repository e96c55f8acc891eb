"""MPEG-DASH (ISO/IEC 23009-1): a static MPD and fMP4 segments.

URLs (REFERENCE.md): manifest.mpd, init-<rep>.mp4, fragment-N-<rep>.m4s, with representation ids
v1, a1 for one file and f1-v1, f2-v1, f1-a1 for a urlset. One AdaptationSet per media type. Media
times are presentation times plus PRESENTATION_DELAY_MS, declared as presentationTimeOffset.

Segment addressing (dash_manifest_format, as nginx-vod-module's vod_dash_manifest_format):
* segmenttimeline (default): SegmentTemplate + SegmentTimeline with the real durations of each
  Representation's own track, so a player's timeline matches the media exactly (5.3.9.6);
* segmenttemplate: SegmentTemplate@duration, the nominal segment duration (5.3.9.5.3); players
  derive segment numbers from times, which key-frame alignment keeps within a GOP of the truth;
* segmentlist: SegmentList with the same SegmentTimeline and one SegmentURL per segment (5.3.9.3).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from lxml import etree

from vodorigin.errors import BadRequest
from vodorigin.media.frames import SourceBytes, cut_indexes, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import SegmentConfig, Timeline, movie_timeline
from vodorigin.mux import fmp4
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.shared import (
    FMP4,
    choose_rendition,
    frame_rate,
    has_samples,
    mp4_type,
    segment_bitrates,
)
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale
from vodorigin.urls import FileName, parse_file_name

MPD_TYPE = "application/dash+xml"
MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    if file_name == "manifest.mpd":
        body = render_manifest(media, context)
        return Document(body, MPD_TYPE, tuple(m.source for m in media.movies))
    kind = file_name.split("-", 1)[0]
    if kind == "init" and file_name.endswith(".mp4"):
        movie, track = _representation(media, parse_file_name(file_name))
        return Document(fmp4.init_segment([track]), mp4_type((track,)), (movie.source,))
    if kind == "fragment" and file_name.endswith(".m4s"):
        return fragment(file_name, media, context)
    raise BadRequest(f"unknown DASH file name {file_name!r}")


def segment_config(context: PackagerContext) -> SegmentConfig:
    """The segmentation DASH uses. A fixed-duration template numbers segments by time (number N
    starts at (N - 1) * duration), so its segments keep their nominal numbering (estimate mode, no
    segment dropped) and only the last one may be short."""
    if context.dash_manifest_format != "segmenttemplate":
        return context.segments
    return replace(context.segments, durations_mode="estimate", count_policy="last_short", bootstrap_ms=())


def _representation(media: MediaSet, name: FileName) -> tuple[Movie, Track]:
    """The one track a representation id (v1, a1, f2-v1...) names."""
    movie, tracks = choose_rendition(media, name)
    if name.tracks.empty or len(tracks) != 1:
        raise BadRequest("a DASH representation names exactly one track (v1, a1, f2-v1...)")
    return movie, tracks[0]


def fragment(file_name: str, media: MediaSet, context: PackagerContext) -> MediaSegment:
    name = parse_file_name(file_name, numbered=True)
    movie, track = _representation(media, name)
    number = name.number or 1
    timeline = movie_timeline(movie, segment_config(context), media.clip)
    frames = segment_frames(track, timeline, number, context.max_frames_per_segment)
    delay = rescale(PRESENTATION_DELAY_MS, 1000, track.timescale)
    plan = fmp4.plan_fragment(number, [fmp4.FragmentTrack(frames, delay)], segment_type=True,
                              segment_index=context.dash_segment_index)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_views(frames)])

    ranges = merged_ranges([frames], context.read_merge_gap)
    return MediaSegment(plan.size, mp4_type((track,)), movie.source, ranges, render)


def render_manifest(media: MediaSet, context: PackagerContext) -> bytes:
    config = segment_config(context)
    timelines = [movie_timeline(m, config, media.clip) for m in media.movies]
    duration = max(t.end - t.start for t in timelines) / timelines[0].timescale if timelines else 0
    mpd = etree.Element(f"{{{MPD_NAMESPACE}}}MPD", nsmap={None: MPD_NAMESPACE}, type="static",
                        profiles=PROFILE, minBufferTime="PT2S", mediaPresentationDuration=_duration(duration))
    period = etree.SubElement(mpd, "Period", id="0", start="PT0S")
    for index, media_type in enumerate((MediaType.VIDEO, MediaType.AUDIO), start=1):
        representations = _representations(media, timelines, media_type)
        if not representations:
            continue
        adaptation = etree.SubElement(period, "AdaptationSet", id=str(index), contentType=media_type.value,
                                      mimeType=f"{media_type.value}/mp4", segmentAlignment="true",
                                      startWithSAP="1")
        if media_type is MediaType.AUDIO:
            adaptation.set("lang", representations[0][1].language)
        for rep_id, track, timeline in representations:
            _representation_element(adaptation, rep_id, track, timeline, context)
    return etree.tostring(mpd, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _representations(media: MediaSet, timelines: list[Timeline], media_type: MediaType
                     ) -> list[tuple[str, Track, Timeline]]:
    """Every video track of every file; audio from the first file with audio (renditions share it)."""
    result = []
    for number, (movie, timeline) in enumerate(zip(media.movies, timelines, strict=True), start=1):
        prefix = f"f{number}-" if len(media.movies) > 1 else ""
        for track in movie.tracks_of(media_type):
            if has_samples(track, timeline):  # a clip may hold none of a shorter track
                result.append((f"{prefix}{track.key}", track, timeline))
        if media_type is MediaType.AUDIO and result:
            break
    return result


def _representation_element(adaptation: etree._Element, rep_id: str, track: Track, timeline: Timeline,
                            context: PackagerContext) -> None:
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
        etree.SubElement(element, "AudioChannelConfiguration", schemeIdUri=CHANNEL_SCHEME,
                         value=str(track.codec.channels))
    delay = rescale(PRESENTATION_DELAY_MS, 1000, track.timescale)
    timing = {"timescale": str(track.timescale), "presentationTimeOffset": str(delay)}
    if context.dash_manifest_format == "segmentlist":  # startNumber is left at its default, 1
        segments = etree.SubElement(element, "SegmentList", timing)
        etree.SubElement(segments, "Initialization", sourceURL=f"init-{rep_id}.mp4")
        _segment_timeline(segments, track, timeline, delay)
        for number in range(1, timeline.count + 1):
            etree.SubElement(segments, "SegmentURL", media=f"fragment-{number}-{rep_id}.m4s")
        return
    template = etree.SubElement(element, "SegmentTemplate", {
        **timing, "startNumber": "1", "initialization": "init-$RepresentationID$.mp4",
        "media": "fragment-$Number$-$RepresentationID$.m4s"})
    if context.dash_manifest_format == "segmenttemplate":
        template.set("duration", str(rescale(context.segments.segment_duration_ms, 1000, track.timescale)))
    else:
        _segment_timeline(template, track, timeline, delay)


def _segment_timeline(parent: etree._Element, track: Track, timeline: Timeline, delay: int) -> None:
    """S elements (5.3.9.6): each segment's earliest presentation time and duration, run-length coded.

    Video segments start at the timeline's cuts (key frames); audio segments at their first frame.
    Times count from the timeline's start (a clip starts at 0), as the fragments' decode times do.
    """
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
    end -= origin
    durations = [b - a for a, b in zip(starts, [*starts[1:], end], strict=True)]
    while durations and durations[-1] <= 0:  # segments after the end of a shorter track are not listed
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


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"
