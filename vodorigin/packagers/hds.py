"""Adobe HTTP Dynamic Streaming: an F4M 1.0 manifest and F4F fragments of FLV tags.

URLs (REFERENCE.md): `manifest.f4m`; fragments `frag[-f<n>][-v<n>][-a<n>]-Seg1-Frag<N>`, which a
player builds from a media entry's url ("frag-v1-a1-") and the bootstrap's run tables.

* Bootstrap (Adobe F4V/F4F specification 10.1, 2.11.2): an abst box, inline and base64 in the
  manifest, with one segment run (asrt: segment 1 holds every fragment) and a fragment run table
  (afrt, milliseconds) listing each fragment's start and real duration, run-length coded and closed
  by an end-of-presentation entry. Fragment N is segment N of the timeline, so HDS cuts where HLS
  and DASH do; times carry the presentation delay of timing.py, like the tags.
* Media entries: one per video track of each file of the set (audio with it), with bitrate (kb/s),
  width, height, and an AMF0 onMetaData (FLV specification E.5) in base64.
* Fragments: afra (random access: the time and byte offset of each key frame's tag) + mdat of FLV
  tags (mux/flv.py). No moof: an F4F reader takes the media from the mdat alone.
* FLV has codec ids for H.264 and AAC (and others Flash never shipped with HEVC): anything else is
  a 415 with the reason.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass

import numpy as np
from lxml import etree

from vodorigin.errors import BadRequest, LimitExceeded, NotFound
from vodorigin.media.frames import SourceBytes, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import Timeline, set_timeline
from vodorigin.mp4 import write
from vodorigin.mux import flv
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.playlist import clip_sets, locate, placed, playlist_rates
from vodorigin.packagers.renditions import narrowed, part_tokens, renditions
from vodorigin.packagers.shared import FMP4, frame_rate
from vodorigin.urls import parse_file_name

MANIFEST_TYPE = "video/f4m"
FRAGMENT_TYPE = "video/f4f"
F4M_NAMESPACE = "http://ns.adobe.com/f4m/1.0"
_FRAGMENT = re.compile(r"^frag(?:-(?P<tokens>[A-Za-z0-9_-]*?))?-Seg(?P<segment>\d{1,9})"
                       r"-Frag(?P<fragment>\d{1,9})\Z", re.ASCII)


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    if file_name.startswith("manifest") and file_name.endswith(".f4m"):
        name = parse_file_name(file_name)
        if name.kind != "manifest" or name.file_index is not None or not name.tracks.empty:
            raise BadRequest(f"unknown HDS file name {file_name!r}")
        sources = tuple(m.source for m in media.movies)
        return Document(render_manifest(narrowed(media, name), context), MANIFEST_TYPE, sources)
    match = _FRAGMENT.match(file_name)
    if match is None:
        raise BadRequest(f"unknown HDS file name {file_name!r}")
    if int(match["segment"]) != 1:
        raise NotFound("HDS fragments are all in segment 1 (Seg1)")
    tokens = f"-{match['tokens']}" if match["tokens"] else ""
    name = parse_file_name(f"frag-{int(match['fragment'])}{tokens}.f4f", numbered=True)
    clip, number = locate(placed(media, name, context.segments), name.number or 1)
    return fragment(clip.movie, clip.tracks, clip.timeline, number, context)


def fragment(movie: Movie, tracks: tuple[Track, ...], timeline: Timeline, number: int,
             context: PackagerContext) -> MediaSegment:
    frames = [segment_frames(track, timeline, number, context.max_frames_per_segment) for track in tracks]
    tags = flv.plan_tags(frames)
    mdat_header = write.mdat_header(tags.size)
    tags_start = AFRA_HEADER_SIZE + AFRA_ENTRY_SIZE * len(tags.key_frames) + len(mdat_header)
    if tags_start + tags.size > 0xFFFFFFFF:
        raise LimitExceeded(f"HDS fragment {number} would exceed 4 GiB (afra offsets are 32-bit here)")
    head = _afra(tags.key_frames, tags_start) + mdat_header

    def render(source: SourceBytes) -> bytes:
        views = [source.frame_views(f) for f in frames]
        return b"".join([head, *flv.write_tags(tags, views)])

    ranges = merged_ranges(frames, context.read_merge_gap)
    return MediaSegment(len(head) + tags.size, FRAGMENT_TYPE, movie.source, ranges, render)


AFRA_HEADER_SIZE = 12 + 1 + 4 + 4  # full box header, flags byte, timescale, entry count
AFRA_ENTRY_SIZE = 8 + 4  # time (64 bits), offset (32 bits)


def _afra(key_frames: list[tuple[int, int]], tags_start: int) -> bytes:
    """Fragment random access box: 32-bit ids and offsets, timescale 1000, no global entries.
    Offsets count from the fragment's first byte (the afra itself); times are unsigned (a key frame
    an edit list puts before 0 is listed at 0)."""
    entries = b"".join(struct.pack(">QI", max(time, 0), tags_start + offset) for time, offset in key_frames)
    return write.full_box(b"afra", 0, 0, struct.pack(">BII", 0, 1000, len(key_frames)) + entries)


def fragment_times(timelines: list[Timeline]) -> tuple[np.ndarray, np.ndarray]:
    """(start, duration) of every fragment in milliseconds, delay included: the timelines' cuts,
    one clip after another in a playlist (a fragment reaches the next one's start)."""
    bounds = [flv.milliseconds(t.cuts - t.zero, t.timescale) for t in timelines]
    starts = np.concatenate([b[:-1] for b in bounds])
    return starts, np.diff(np.append(starts, bounds[-1][-1]))


def bootstrap(timelines: list[Timeline]) -> bytes:
    """The abst box: one segment of every fragment, and the fragment run table."""
    starts, durations = fragment_times(timelines)
    runs: list[tuple[int, int, int]] = []
    for number, (start, duration) in enumerate(zip(starts.tolist(), durations.tolist(), strict=True), 1):
        if runs and runs[-1][2] == duration:
            continue
        runs.append((number, start, duration))
    entries = b"".join(struct.pack(">IQI", *run) for run in runs)
    entries += struct.pack(">IQIB", 0, 0, 0, 0)  # duration 0, indicator 0: end of presentation
    afrt = write.full_box(b"afrt", 0, 0, struct.pack(">IBI", 1000, 0, len(runs) + 1) + entries)
    asrt = write.full_box(b"asrt", 0, 0, struct.pack(">BIII", 0, 1, 1, len(starts)))
    end = int(starts[-1] + durations[-1]) if len(starts) else 0
    header = struct.pack(">IBIQQ", 1, 0, 1000, end, 0)  # version, profile/live/update, timescale, time, SMPTE
    strings = b"\0" + b"\0" + b"\0" + b"\0" + b"\0"  # movie id, no servers, no qualities, DRM, metadata
    return write.full_box(b"abst", 0, 0, header + strings + b"\1" + asrt + b"\1" + afrt)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A media element: one video track with the audio muxed with it (or one audio track alone),
    and, for an alternate audio track, its language and label."""

    number: int
    movie: Movie
    tracks: tuple[Track, ...]
    timelines: list[Timeline]  # one per clip of a playlist
    alternate: bool = False

    @property
    def duration(self) -> float:
        return sum((t.end - t.start) / t.timescale for t in self.timelines)


def _entries(media: MediaSet, context: PackagerContext) -> list[_Entry]:
    """A video track of each part with its part's first audio; the other audio renditions (further
    languages, audio from other files) as alternate audio entries (F4M 1.0 "alternate" media)."""
    entries: list[_Entry] = []
    muxed: set[int] = set()
    for number, movie in enumerate(media.movies, start=1):
        audio = movie.tracks_of(MediaType.AUDIO)[:1]
        videos = movie.tracks_of(MediaType.VIDEO)
        if not videos and not audio or not videos and entries:
            continue
        timelines = _timelines(media, number, context)
        for tracks in [(video, *audio) for video in videos] or [tuple(audio)]:
            entries.append(_Entry(number, movie, tracks, timelines))
            muxed.update(id(t) for t in tracks)
    for rendition in renditions(media, MediaType.AUDIO):
        if id(rendition.track) not in muxed and entries:
            timelines = _timelines(media, rendition.file, context)
            alternate = _Entry(rendition.file, rendition.movie, (rendition.track,), timelines, alternate=True)
            entries.append(alternate)
    return entries


def _timelines(media: MediaSet, number: int, context: PackagerContext) -> list[Timeline]:
    """The timelines of part `number`, one per clip of a playlist."""
    return [set_timeline(clip, clip.movies[number - 1], context.segments) for clip in clip_sets(media)]


def render_manifest(media: MediaSet, context: PackagerContext) -> bytes:
    root = etree.Element(f"{{{F4M_NAMESPACE}}}manifest", nsmap={None: F4M_NAMESPACE})
    entries = _entries(media, context)
    if not entries:
        raise NotFound("no video or audio track to stream")
    etree.SubElement(root, "id").text = media.movies[0].source.path.rsplit("/", 1)[-1]
    etree.SubElement(root, "duration").text = f"{max(e.duration for e in entries):.3f}"
    etree.SubElement(root, "streamType").text = "recorded"
    for index, entry in enumerate(entries, start=1):
        for track in entry.tracks:
            flv.check_codec(track)
        bootstrap_id = f"bootstrap{index}"
        info = etree.SubElement(root, "bootstrapInfo", profile="named", id=bootstrap_id)
        info.text = base64.b64encode(bootstrap(entry.timelines)).decode()
        _, average = playlist_rates(media, entry.number, entry.tracks, context.segments, FMP4)
        element = etree.SubElement(root, "media", bitrate=str(max(average // 1000, 1)),
                                   url=f"frag-{part_tokens(media, entry.number, entry.movie, entry.tracks)}-",
                                   bootstrapInfoId=bootstrap_id)
        video = next((t for t in entry.tracks if t.media_type is MediaType.VIDEO), None)
        if video is not None:
            element.set("width", str(video.codec.width))
            element.set("height", str(video.codec.height))
        if entry.alternate:
            audio = entry.tracks[0]
            element.attrib.update({"type": "audio", "alternate": "true", "label": audio.display_label})
            if audio.language != "und":
                element.set("lang", audio.language)
        metadata = on_metadata(entry.tracks, entry.duration, average)
        etree.SubElement(element, "metadata").text = base64.b64encode(metadata).decode()
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)


def on_metadata(tracks: tuple[Track, ...], duration: float, bitrate: int) -> bytes:
    """The AMF0 onMetaData script data (FLV specification E.5): a string, then an ECMA array."""
    values: list[tuple[str, float | bool]] = [("duration", duration)]
    for track in tracks:
        if track.media_type is MediaType.VIDEO:
            values += [("width", track.codec.width), ("height", track.codec.height),
                       ("framerate", round(frame_rate(track), 3)), ("videocodecid", flv.CODEC_AVC)]
        else:
            values += [("audiosamplerate", track.codec.sample_rate), ("audiosamplesize", 16),
                       ("stereo", track.codec.channels > 1), ("audiocodecid", 10)]
    values.append(("filesize", 0))
    values.append(("datarate", bitrate / 1000))
    body = b"".join(_amf_key(name) + _amf_value(value) for name, value in values)
    return b"\x02" + _amf_key("onMetaData") + b"\x08" + struct.pack(">I", len(values)) + body + b"\0\0\x09"


def _amf_key(name: str) -> bytes:
    data = name.encode()
    return struct.pack(">H", len(data)) + data


def _amf_value(value: float | bool) -> bytes:
    if isinstance(value, bool):
        return b"\x01" + bytes((value,))
    return b"\x00" + struct.pack(">d", float(value))
