"""Microsoft Smooth Streaming ([MS-SSTR]): a SmoothStreamingMedia manifest and fMP4 fragments.

URLs (REFERENCE.md): `manifest[-l<lang>]`, and `QualityLevels(<bitrate>)/Fragments(<stream>=<time>)`
as the StreamIndex Url template builds them.

* Times are 100 ns ticks (TimeScale 10,000,000, [MS-SSTR] 2.2.2.1), and so are the fragments'
  sample durations and composition offsets: a Smooth client builds its own init segment with that
  timescale from the manifest, since there is no init segment to fetch. A chunk's `t` is the decode
  time of its first sample (the presentation delay of timing.py included), which is also the
  fragment's tfxd absolute time; `d` is the distance to the next chunk, so chunks tile the timeline
  exactly. Every time goes through the one rounding of timing.rescale. As in [MS-SSTR] 2.2.4.3
  the traf has no tfdt: clients derive the decode time from the chunk (dash.js shifts a VOD
  timeline that starts late to 0 and writes the tfdt itself, which a tfdt of ours would defeat).
* StreamIndexes: one for video (a urlset's renditions are its QualityLevels); one per audio
  language, label and codec family (packagers/renditions.py), with Language (BCP 47) and the
  label as Name when there are several (named "audio_<rep>" so a fragment URL names the same
  stream whatever the manifest's l<lang> filter); one per subtitle track, Type text, Subtype SUBT,
  FourCC TTML: TTML documents in fMP4 timed from the fragment's start, as dash.js's Smooth support
  reads them (nginx-vod-module writes presentation times there). A StreamIndex lists
  the chunks of its first QualityLevel; a fragment time names a chunk of that list (any other time
  is a 404) and is served from the same segment number of the QualityLevel asked for.
* Which QualityLevel a URL names: the Bitrate we list is the average bit rate rounded down to a
  multiple of 1000 plus the QualityLevel's index (nginx-vod-module also hides the track index in
  the bitrate's low digits), so `bitrate % 1000` is the index and two QualityLevels never share a
  Bitrate. The rest of the number is not checked.
* Fragments: moof (mfhd, traf: tfhd, trun, tfxd) + mdat ([MS-SSTR] 2.2.4), from mux/fmp4.py.
* PlayReady (`drm_enabled` in `[mss]`): the manifest ends with a Protection element holding the
  PlayReady object of the key as a ProtectionHeader ([MS-SSTR] 2.2.2.2); fragments are Common
  Encryption 'cenc' (AES-CTR, drm/cenc.py) with their sample IVs and subsamples in PIFF's
  SampleEncryptionBox (a uuid box, PIFF 1.1 5.3.2) plus saiz/saio. A Smooth presentation has one
  Protection element, so every audio and video track must be under one key (else 415); text
  streams stay clear.
"""

from __future__ import annotations

import base64
import re
import struct
import uuid
from dataclasses import dataclass, replace

import numpy as np
from lxml import etree

from vodorigin.drm import cenc
from vodorigin.drm.keys import PLAYREADY_SYSTEM_ID, ContentKey
from vodorigin.errors import BadRequest, NotFound, UnsupportedMedia, UpstreamError
from vodorigin.media.frames import (
    ByteRange,
    SourceBytes,
    TrackFrames,
    cut_indexes,
    merged_ranges,
    segment_frames,
)
from vodorigin.media.model import MediaSet, MediaType, Track
from vodorigin.media.segmenter import Timeline
from vodorigin.mp4 import write
from vodorigin.mux import fmp4
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.playlist import Placed, clip_rates, locate, part_clips
from vodorigin.packagers.renditions import Rendition, codec_family, narrowed, renditions
from vodorigin.packagers.shared import FMP4, mp4_type
from vodorigin.packagers.text import STPP, output_track, presented_cues, text_fragment, timeline_span_ms
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale, rescale_array
from vodorigin.urls import FileName, parse_file_name

MANIFEST_TYPE = "text/xml"
TIMESCALE = 10_000_000
INDEX_MODULUS = 1000  # Bitrate % 1000 is the QualityLevel index
TFXD_UUID = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")  # [MS-SSTR] 2.2.4.4
VIDEO_FOURCC = {"avc1": "H264", "avc3": "H264", "hvc1": "HVC1", "hev1": "HVC1"}
AAC_FOURCC = {2: "AACL", 5: "AACH", 29: "AACH"}  # object types: LC, SBR (HE), PS (HE v2)
AUDIO_TAG_AAC = 255  # WAVE_FORMAT_RAW_AAC1
_FRAGMENT = re.compile(r"^QualityLevels\((\d{1,12})\)/Fragments\("
                       r"(video|audio|(?:audio|text)_[A-Za-z0-9_-]{1,48})=(\d{1,20})\)\Z", re.ASCII)
TEXT_BITRATE = 1000  # a text QualityLevel's nominal Bitrate (its index is 0)


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    if file_name == "manifest" or file_name.startswith("manifest-"):
        name = parse_file_name(file_name)
        if name.extension or name.file_index is not None or not name.tracks.empty:
            raise BadRequest("a Smooth manifest lists every track: only an l<lang> token applies to it")
        body = render_manifest(media, context, name)
        return Document(body, MANIFEST_TYPE, tuple(m.source for m in media.movies))
    match = _FRAGMENT.match(file_name)
    if match is None:
        raise BadRequest(f"unknown MSS file name {file_name!r}")
    return fragment(media, context, match[2], int(match[1]), int(match[3]))


@dataclass(frozen=True, slots=True)
class Level:
    """A QualityLevel: one track of one part, clip by clip (one clip but in a mapped playlist),
    each on the timeline it is cut on."""

    rendition: Rendition
    clips: list[Placed]

    @property
    def track(self) -> Track:
        return self.rendition.track


@dataclass(frozen=True, slots=True)
class Stream:
    """A StreamIndex: its name (the key of its fragment URLs), kind and QualityLevels."""

    name: str
    media_type: MediaType
    levels: list[Level]


def streams(media: MediaSet, context: PackagerContext) -> list[Stream]:
    """The StreamIndexes of a set: video, then audio by language and label, then text."""
    found = []
    videos = [r for r in renditions(media, MediaType.VIDEO)]
    if videos:
        found.append(Stream("video", MediaType.VIDEO, _levels(media, context, videos)))
    groups: dict[tuple[str, str, str], list[Rendition]] = {}
    for rendition in renditions(media, MediaType.AUDIO):
        track = rendition.track
        groups.setdefault((track.language, track.display_label, codec_family(track)), []).append(rendition)
    for members in groups.values():
        name = "audio" if len(groups) == 1 else f"audio_{members[0].tokens(media)}"
        found.append(Stream(name, MediaType.AUDIO, _levels(media, context, members)))
    for rendition in renditions(media, MediaType.SUBTITLE):
        levels = _levels(media, context, [rendition])
        found.append(Stream(f"text_{rendition.tokens(media)}", MediaType.SUBTITLE, levels))
    return found


def _levels(media: MediaSet, context: PackagerContext, members: list[Rendition]) -> list[Level]:
    levels = [Level(r, part_clips(media, r.file, (r.track,), context.segments)) for r in members]
    for level in levels:
        if level.track.media_type is MediaType.SUBTITLE:
            continue
        described = _codec_private(level.track)
        if level.track.codec.nal_length_size not in (0, 4):
            raise UnsupportedMedia(f"{level.track.key}: Smooth Streaming needs 4-byte NAL lengths")
        for clip in level.clips[1:]:
            if _codec_private(clip.tracks[0]) != described:
                raise UnsupportedMedia(f"{clip.movie.source.path}: a Smooth QualityLevel has one codec "
                                       "configuration, and the clips of this playlist differ in theirs")
    return levels


def chunk_bounds(level: Level) -> np.ndarray:
    """Decode times (100 ns, presentation delay included) at every segment cut through the clips,
    plus the end: segment N of the level is [bounds[N - 1], bounds[N])."""
    parts = [_clip_bounds(clip.tracks[0], clip.timeline) for clip in level.clips]
    return np.concatenate([bounds[:-1] for bounds in parts] + [parts[-1][-1:]])


def _clip_bounds(track: Track, timeline: Timeline) -> np.ndarray:
    """Decode times at a clip's cuts, plus its end; for text, the timeline's cuts themselves. Never
    below 0 (an edit list may start media earlier)."""
    if track.media_type is MediaType.SUBTITLE:
        delay = rescale(PRESENTATION_DELAY_MS, 1000, timeline.timescale)
        return np.maximum(_to_mss(timeline.cuts - timeline.zero + delay, timeline.timescale), 0)
    samples = track.samples
    cuts = cut_indexes(track, timeline)
    dts = np.append(samples.dts, samples.end_dts)[cuts]
    origin = rescale(timeline.zero, timeline.timescale, track.timescale) - track.edit_shift
    delay = rescale(PRESENTATION_DELAY_MS, 1000, track.timescale)
    return np.maximum(_to_mss(dts - origin + delay, track.timescale), 0)


def _to_mss(ticks: np.ndarray, timescale: int) -> np.ndarray:
    return rescale_array(ticks, timescale, TIMESCALE)


def _chunks(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment numbers, start times) of the non-empty chunks."""
    numbers = np.nonzero(np.diff(bounds) > 0)[0] + 1
    return numbers, bounds[numbers - 1]


def _bitrate(level: Level, index: int) -> int:
    if level.track.media_type is MediaType.SUBTITLE:
        return TEXT_BITRATE + index
    _, average = clip_rates(level.clips, FMP4)
    return max(average // INDEX_MODULUS, 1) * INDEX_MODULUS + index


def render_manifest(media: MediaSet, context: PackagerContext, name: FileName | None = None) -> bytes:
    listed = streams(media, context)
    if name is not None and (name.language or name.sequence_id):
        # names come from the whole set, so a fragment URL names the same stream whatever the filter
        left = narrowed(media, name)
        kept = {(m.source.path, t.track_id) for m in left.movies for t in m.tracks}
        listed = [s for s in listed if _key(s.levels[0]) in kept]
    if not any(s.media_type is not MediaType.SUBTITLE for s in listed):
        raise NotFound("no video or audio track to stream")
    bounds = {stream.name: chunk_bounds(stream.levels[0]) for stream in listed}
    duration = max(int(b[-1] - b[0]) for b in bounds.values())
    root = etree.Element("SmoothStreamingMedia", MajorVersion="2", MinorVersion="0",
                         TimeScale=str(TIMESCALE), Duration=str(duration))
    for stream in listed:
        _stream_element(root, stream, bounds[stream.name])
    if context.encrypts("mss"):
        _protection_element(root, _presentation_key(listed, context))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def _presentation_key(listed: list[Stream], context: PackagerContext) -> ContentKey:
    """The one key of every audio and video track of the presentation."""
    keys = {context.key(level.rendition.movie.source.path, level.track.media_type)
            for stream in listed if stream.media_type is not MediaType.SUBTITLE for level in stream.levels}
    if len({key.key_id for key in keys}) != 1:
        raise UnsupportedMedia(f"Smooth Streaming carries one key per presentation; these tracks are under "
                               f"{len({key.key_id for key in keys})} keys")
    return keys.pop()


def _protection_element(root: etree._Element, key: ContentKey) -> None:
    """Protection/ProtectionHeader ([MS-SSTR] 2.2.2.2): the PlayReady object, base64."""
    data = next((system.data for system in key.systems if system.system_id == PLAYREADY_SYSTEM_ID), None)
    if data is None:
        raise UpstreamError("Smooth Streaming is encrypted for PlayReady, and the key's DRM info gives no "
                            "PlayReady object")
    protection = etree.SubElement(root, "Protection")
    system_id = str(uuid.UUID(bytes=PLAYREADY_SYSTEM_ID))
    header = etree.SubElement(protection, "ProtectionHeader", SystemID=system_id)
    header.text = base64.b64encode(data).decode()


def _key(level: Level) -> tuple[str, int]:
    return level.rendition.movie.source.path, level.track.track_id


def _stream_element(root: etree._Element, stream: Stream, bounds: np.ndarray) -> None:
    numbers, starts = _chunks(bounds)
    durations = np.diff(bounds)[numbers - 1]
    kind, levels = stream.media_type.value, stream.levels
    element = etree.SubElement(root, "StreamIndex", Type=kind, Name=stream.name, Chunks=str(len(numbers)),
                               QualityLevels=str(len(levels)),
                               Url=f"QualityLevels({{bitrate}})/Fragments({stream.name}={{start time}})")
    first = levels[0].track
    if stream.media_type is MediaType.VIDEO:
        width = max(level.track.codec.width for level in levels)
        height = max(level.track.codec.height for level in levels)
        element.attrib.update({"MaxWidth": str(width), "MaxHeight": str(height),
                               "DisplayWidth": str(width), "DisplayHeight": str(height)})
    else:
        element.set("Language", first.language)
        if stream.media_type is MediaType.SUBTITLE:
            element.set("Subtype", "SUBT")
    for index, level in enumerate(levels):
        etree.SubElement(element, "QualityLevel", _quality_level(level, index))
    for start, chunk_duration in zip(starts.tolist(), durations.tolist(), strict=True):
        etree.SubElement(element, "c", t=str(start), d=str(chunk_duration))


def _quality_level(level: Level, index: int) -> dict[str, str]:
    codec = level.track.codec
    attributes = {"Index": str(index), "Bitrate": str(_bitrate(level, index)), "FourCC": _fourcc(level.track)}
    if level.track.media_type is MediaType.VIDEO:
        attributes.update(MaxWidth=str(codec.width), MaxHeight=str(codec.height))
    elif level.track.media_type is MediaType.AUDIO:
        attributes.update(SamplingRate=str(codec.sample_rate), Channels=str(codec.channels),
                          BitsPerSample="16", PacketSize=str(2 * codec.channels), AudioTag=str(AUDIO_TAG_AAC))
    attributes["CodecPrivateData"] = _codec_private(level.track)
    return attributes


def _codec_private(track: Track) -> str:
    """What a QualityLevel tells of its codec ([MS-SSTR] 2.2.2.5): FourCC and CodecPrivateData (H.264
    and HEVC parameter sets in Annex B, the AAC AudioSpecificConfig; none for text)."""
    _fourcc(track)  # refuses what Smooth cannot describe
    if track.media_type is MediaType.SUBTITLE:
        return ""
    if track.media_type is MediaType.VIDEO:
        return b"".join(b"\x00\x00\x00\x01" + nal for nal in track.codec.parameter_sets).hex().upper()
    return track.codec.decoder_config.hex().upper()


def _fourcc(track: Track) -> str:
    codec = track.codec
    if track.media_type is MediaType.SUBTITLE:
        return "TTML"
    fourcc = VIDEO_FOURCC.get(codec.fourcc) if track.media_type is MediaType.VIDEO else \
        AAC_FOURCC.get(codec.object_type) if codec.fourcc == "mp4a" else None
    if fourcc is None:
        raise UnsupportedMedia(f"{track.key}: {codec.codec_string} cannot be described in a Smooth manifest "
                               "(H.264, HEVC and AAC can)")
    return fourcc


def fragment(media: MediaSet, context: PackagerContext, stream_name: str, bitrate: int, time: int) -> Output:
    stream = next((s for s in streams(media, context) if s.name == stream_name), None)
    if stream is None:
        raise NotFound(f"no stream {stream_name!r} in this media set")
    index = bitrate % INDEX_MODULUS
    if index >= len(stream.levels):
        raise NotFound(f"no {stream_name} QualityLevel {index} (Bitrate {bitrate})")
    bounds = chunk_bounds(stream.levels[0])
    numbers, starts = _chunks(bounds)
    position = int(np.searchsorted(starts, time))
    if position >= len(starts) or int(starts[position]) != time:
        raise NotFound(f"no {stream_name} chunk starts at {time}")
    number = int(numbers[position])
    level = stream.levels[index]
    clip, clip_number = locate(level.clips, number)
    (track,) = clip.tracks
    if stream.media_type is MediaType.SUBTITLE:
        return _text_fragment(clip, clip_number, int(bounds[number - 1]), int(bounds[number]))
    frames = segment_frames(track, clip.timeline, clip_number, context.max_frames_per_segment)
    ticks = _in_mss_ticks(frames)
    start = max(int(ticks.dts[0]) if ticks.count else time, 0)  # = chunk_bounds(level)[number - 1]
    duration = int(ticks.durations.sum())
    part = fmp4.FragmentTrack(ticks, 0, _tfxd(start, duration), decode_time_box=False)
    ranges = merged_ranges([frames], context.read_merge_gap)
    if context.encrypts("mss"):
        return _encrypted_fragment(clip, number, frames, part, ranges, context)
    plan = fmp4.plan_fragment(number, [part])

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_runs(frames)])

    return MediaSegment(plan.size, mp4_type((track,)), clip.movie.source, ranges, render)


def _encrypted_fragment(clip: Placed, number: int, frames: TrackFrames, part: fmp4.FragmentTrack,
                        ranges: list[ByteRange], context: PackagerContext) -> MediaSegment:
    """A PlayReady fragment: its samples in 'cenc', their IVs and subsamples in PIFF's uuid box
    (planned once the frames are read: the subsamples depend on the NAL units)."""
    (track,) = clip.tracks
    cenc.check_track(track)
    key, path = context.key(clip.movie.source.path, track.media_type), clip.movie.source.path

    def render(source: SourceBytes) -> bytes:
        aux, encrypted = cenc.encrypt_samples(key, path, track, frames.first, source.frame_views(frames))
        plan = fmp4.plan_fragment(number, [replace(part, encryption=aux, piff=True)])
        return fmp4.write_fragment(plan, [[memoryview(sample) for sample in encrypted]])

    return MediaSegment(None, mp4_type((track,)), clip.movie.source, ranges, render)


def _tfxd(start: int, duration: int) -> bytes:
    """TfxdBox ([MS-SSTR] 2.2.4.4): the fragment's absolute time and duration, 64-bit."""
    return write.box(b"uuid", TFXD_UUID, struct.pack(">B3xQQ", 1, start, duration))


def _text_fragment(clip: Placed, number: int, start: int, end: int) -> Document:
    """A TTML document for the clip's chunk `number` ([start, end) in 100 ns), in a track of that
    timescale."""
    (source,) = clip.tracks
    track = replace(output_track(source, STPP), timescale=TIMESCALE)
    span = timeline_span_ms(clip.timeline, number)
    tfxd = _tfxd(start, end - start)
    body = text_fragment(track, presented_cues(source, clip.timeline), span, number,
                         PRESENTATION_DELAY_MS, STPP, segment_type=False, traf_extra=tfxd,
                         decode_time_box=False, sample_relative=True)
    return Document(body, "application/mp4", (clip.movie.source,))


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
