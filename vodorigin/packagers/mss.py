"""Microsoft Smooth Streaming ([MS-SSTR]): a SmoothStreamingMedia manifest and fMP4 fragments.

URLs (REFERENCE.md): `manifest`, and `QualityLevels(<bitrate>)/Fragments(<video|audio>=<time>)`
as the StreamIndex Url template builds them.

* Times are 100 ns ticks (TimeScale 10,000,000, [MS-SSTR] 2.2.2.1), and so are the fragments'
  sample durations and composition offsets: a Smooth client builds its own init segment with that
  timescale from the manifest, since there is no init segment to fetch. A chunk's `t` is the decode
  time of its first sample (the presentation delay of timing.py included), which is also the
  fragment's tfxd absolute time; `d` is the distance to the next chunk, so chunks tile the timeline
  exactly. Every time goes through the one rounding of timing.rescale. As in [MS-SSTR] 2.2.4.3
  the traf has no tfdt: clients derive the decode time from the chunk (dash.js shifts a VOD
  timeline that starts late to 0 and writes the tfdt itself, which a tfdt of ours would defeat).
* One StreamIndex per media type; a urlset's renditions are QualityLevels of the video
  StreamIndex, and audio comes from the first file that has it (as in DASH). A StreamIndex lists
  the chunks of its first QualityLevel; a fragment time names a chunk of that list (any other time
  is a 404) and is served from the same segment number of the QualityLevel asked for.
* Which QualityLevel a URL names: the Bitrate we list is the average bit rate rounded down to a
  multiple of 1000 plus the QualityLevel's index (nginx-vod-module also hides the track index in
  the bitrate's low digits), so `bitrate % 1000` is the index and two QualityLevels never share a
  Bitrate. The rest of the number is not checked.
* Fragments: moof (mfhd, traf: tfhd, trun, tfxd) + mdat ([MS-SSTR] 2.2.4), from mux/fmp4.py.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, replace

import numpy as np
from lxml import etree

from vodorigin.errors import BadRequest, NotFound, UnsupportedMedia
from vodorigin.media.frames import SourceBytes, TrackFrames, cut_indexes, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mp4 import write
from vodorigin.mux import fmp4
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.shared import FMP4, mp4_type, segment_bitrates
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale, rescale_array

MANIFEST_TYPE = "text/xml"
TIMESCALE = 10_000_000
INDEX_MODULUS = 1000  # Bitrate % 1000 is the QualityLevel index
TFXD_UUID = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")  # [MS-SSTR] 2.2.4.4
VIDEO_FOURCC = {"avc1": "H264", "avc3": "H264", "hvc1": "HVC1", "hev1": "HVC1"}
AAC_FOURCC = {2: "AACL", 5: "AACH", 29: "AACH"}  # object types: LC, SBR (HE), PS (HE v2)
AUDIO_TAG_AAC = 255  # WAVE_FORMAT_RAW_AAC1
_FRAGMENT = re.compile(r"^QualityLevels\((\d{1,12})\)/Fragments\((video|audio)=(\d{1,20})\)\Z", re.ASCII)


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    if file_name == "manifest":
        return Document(render_manifest(media, context), MANIFEST_TYPE, tuple(m.source for m in media.movies))
    match = _FRAGMENT.match(file_name)
    if match is None:
        raise BadRequest(f"unknown MSS file name {file_name!r}")
    bitrate, kind, time = int(match[1]), MediaType(match[2]), int(match[3])
    return fragment(media, context, kind, bitrate, time)


@dataclass(frozen=True, slots=True)
class Level:
    """A QualityLevel: one track of one file, on that file's timeline."""

    movie: Movie
    track: Track
    timeline: Timeline


def _levels(media: MediaSet, context: PackagerContext, media_type: MediaType) -> list[Level]:
    """Every video track of every file; the audio tracks of the first file with audio."""
    levels: list[Level] = []
    for movie in media.movies:
        tracks = movie.tracks_of(media_type)
        if tracks:
            timeline = movie_timeline(movie, context.segments, media.clip)
            levels.extend(Level(movie, track, timeline) for track in tracks)
            if media_type is MediaType.AUDIO:
                break
    for level in levels:
        _fourcc(level.track)  # refuse what Smooth cannot describe before listing anything
        if level.track.codec.nal_length_size not in (0, 4):
            raise UnsupportedMedia(f"{level.track.key}: Smooth Streaming needs 4-byte NAL lengths")
    return levels


def chunk_bounds(level: Level) -> np.ndarray:
    """Decode times (100 ns, presentation delay included) at every segment cut, plus the end."""
    track, samples = level.track, level.track.samples
    cuts = cut_indexes(track, level.timeline)
    dts = np.append(samples.dts, samples.end_dts)[cuts]
    origin = rescale(level.timeline.start, level.timeline.timescale, track.timescale) - track.edit_shift
    return _to_mss(dts - origin + rescale(PRESENTATION_DELAY_MS, 1000, track.timescale), track.timescale)


def _to_mss(ticks: np.ndarray, timescale: int) -> np.ndarray:
    return rescale_array(ticks, timescale, TIMESCALE)


def _chunks(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment numbers, start times) of the non-empty chunks."""
    numbers = np.nonzero(np.diff(bounds) > 0)[0] + 1
    return numbers, bounds[numbers - 1]


def _bitrate(level: Level, index: int) -> int:
    _, average = segment_bitrates((level.track,), level.timeline, FMP4)
    return max(average // INDEX_MODULUS, 1) * INDEX_MODULUS + index


def render_manifest(media: MediaSet, context: PackagerContext) -> bytes:
    streams = [(kind, levels) for kind in (MediaType.VIDEO, MediaType.AUDIO)
               if (levels := _levels(media, context, kind))]
    if not streams:
        raise NotFound("no video or audio track to stream")
    bounds = {media_type: chunk_bounds(levels[0]) for media_type, levels in streams}
    duration = max(int(b[-1] - b[0]) for b in bounds.values())
    root = etree.Element("SmoothStreamingMedia", MajorVersion="2", MinorVersion="0",
                         TimeScale=str(TIMESCALE), Duration=str(duration))
    for media_type, levels in streams:
        numbers, starts = _chunks(bounds[media_type])
        durations = np.diff(bounds[media_type])[numbers - 1]
        kind = media_type.value
        stream = etree.SubElement(root, "StreamIndex", Type=kind, Name=kind, Chunks=str(len(numbers)),
                                  QualityLevels=str(len(levels)),
                                  Url=f"QualityLevels({{bitrate}})/Fragments({kind}={{start time}})")
        if media_type is MediaType.VIDEO:
            width = max(level.track.codec.width for level in levels)
            height = max(level.track.codec.height for level in levels)
            stream.attrib.update({"MaxWidth": str(width), "MaxHeight": str(height),
                                  "DisplayWidth": str(width), "DisplayHeight": str(height)})
        else:
            stream.set("Language", levels[0].track.language)
        for index, level in enumerate(levels):
            etree.SubElement(stream, "QualityLevel", _quality_level(level, index))
        for start, chunk_duration in zip(starts.tolist(), durations.tolist(), strict=True):
            etree.SubElement(stream, "c", t=str(start), d=str(chunk_duration))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _quality_level(level: Level, index: int) -> dict[str, str]:
    codec = level.track.codec
    attributes = {"Index": str(index), "Bitrate": str(_bitrate(level, index)), "FourCC": _fourcc(level.track)}
    if level.track.media_type is MediaType.VIDEO:
        private = b"".join(b"\x00\x00\x00\x01" + nal for nal in codec.parameter_sets)
        attributes.update(MaxWidth=str(codec.width), MaxHeight=str(codec.height))
    else:
        private = codec.decoder_config
        attributes.update(SamplingRate=str(codec.sample_rate), Channels=str(codec.channels),
                          BitsPerSample="16", PacketSize=str(2 * codec.channels), AudioTag=str(AUDIO_TAG_AAC))
    attributes["CodecPrivateData"] = private.hex().upper()
    return attributes


def _fourcc(track: Track) -> str:
    codec = track.codec
    fourcc = VIDEO_FOURCC.get(codec.fourcc) if track.media_type is MediaType.VIDEO else \
        AAC_FOURCC.get(codec.object_type) if codec.fourcc == "mp4a" else None
    if fourcc is None:
        raise UnsupportedMedia(f"{track.key}: {codec.codec_string} cannot be described in a Smooth manifest "
                               "(H.264, HEVC and AAC can)")
    return fourcc


def fragment(media: MediaSet, context: PackagerContext, media_type: MediaType, bitrate: int,
             time: int) -> MediaSegment:
    levels = _levels(media, context, media_type)
    index = bitrate % INDEX_MODULUS
    if index >= len(levels):
        raise NotFound(f"no {media_type.value} QualityLevel {index} (Bitrate {bitrate})")
    numbers, starts = _chunks(chunk_bounds(levels[0]))
    position = int(np.searchsorted(starts, time))
    if position >= len(starts) or int(starts[position]) != time:
        raise NotFound(f"no {media_type.value} chunk starts at {time}")
    number = int(numbers[position])
    level = levels[index]
    frames = segment_frames(level.track, level.timeline, number, context.max_frames_per_segment)
    ticks = _in_mss_ticks(frames)
    start = int(ticks.dts[0]) if ticks.count else time  # = chunk_bounds(level)[number - 1]
    duration = int(ticks.durations.sum())
    tfxd = write.box(b"uuid", TFXD_UUID, struct.pack(">B3xQQ", 1, start, duration))
    plan = fmp4.plan_fragment(number, [fmp4.FragmentTrack(ticks, 0, tfxd, decode_time_box=False)])

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_views(frames)])

    ranges = merged_ranges([frames], context.read_merge_gap)
    return MediaSegment(plan.size, mp4_type((level.track,)), level.movie.source, ranges, render)


def _in_mss_ticks(frames: TrackFrames) -> TrackFrames:
    """The frames with decode/presentation times and durations in 100 ns, the delay included.

    Durations are differences of converted decode times (the last one reaching the converted end),
    so a fragment ends exactly where the next one starts."""
    timescale = frames.track.timescale
    delay = rescale(PRESENTATION_DELAY_MS, 1000, timescale)
    end = int(frames.dts[-1] + frames.durations[-1]) if frames.count else 0
    dts = _to_mss(frames.dts + delay, timescale)
    durations = np.diff(dts, append=_to_mss(np.array([end + delay]), timescale))
    track = replace(frames.track, timescale=TIMESCALE)
    pts = _to_mss(frames.pts + delay, timescale)
    return replace(frames, track=track, dts=dts, pts=pts, durations=durations)
