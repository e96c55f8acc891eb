"""MPEG-DASH (ISO/IEC 23009-1): a static MPD and fMP4 segments.

URLs (REFERENCE.md): manifest[-l<lang>].mpd, init-<rep>.mp4, fragment-N-<rep>.m4s, and sub-<rep>.vtt
for subtitles as one WebVTT file; representation ids v1, a2, t1 for one file and f1-v1, f2-a1,
f3-t1 for a urlset. In a mapped playlist with a Period per clip, init-c<n>-<rep>.mp4,
fragment-N-c<n>-<rep>.m4s (N counts within the clip) and sub-c<n>-<rep>.vtt; with one Period, N
counts through the clips. The MPD itself is dash_mpd.py. Media times are presentation times plus
PRESENTATION_DELAY_MS, declared as presentationTimeOffset.

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

from dataclasses import replace

from vodorigin.drm import cenc
from vodorigin.errors import BadRequest
from vodorigin.media.frames import ByteRange, SourceBytes, TrackFrames, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType
from vodorigin.media.segmenter import SegmentConfig
from vodorigin.mux import fmp4
from vodorigin.packagers.dash_mpd import render_manifest
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.playlist import Placed, in_clip, locate, placed
from vodorigin.packagers.renditions import narrowed
from vodorigin.packagers.shared import mp4_type
from vodorigin.packagers.text import output_track, presented_cues, text_fragment, timeline_span_ms
from vodorigin.text import webvtt_document
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale
from vodorigin.urls import FileName, parse_file_name

MPD_TYPE = "application/dash+xml"


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    name = parse_file_name(file_name, numbered=file_name.startswith("fragment-"))
    media = narrowed(media, name)
    route = (name.kind, name.extension)
    if route == ("manifest", "mpd"):
        if name.file_index is not None or not name.tracks.empty:
            raise BadRequest("an MPD lists every track: only l<lang> and s<id> tokens apply to it")
        body = render_manifest(media, context, segment_config(context))
        return Document(body, MPD_TYPE, tuple(m.source for m in media.movies))
    if route not in (("init", "mp4"), ("fragment", "m4s"), ("sub", "vtt")):
        raise BadRequest(f"unknown DASH file name {file_name!r}")
    clips = placed(media, name, segment_config(context))
    if name.tracks.empty or len(clips[0].tracks) != 1:
        raise BadRequest("a DASH representation names exactly one track (v1, a1, t1, f2-v1...)")
    if route == ("init", "mp4"):
        return _init(in_clip(clips, name.clip_index), context)
    if route == ("sub", "vtt"):
        return _webvtt_file(name, clips)
    return fragment(name, clips, context)


def _init(clip: Placed, context: PackagerContext) -> Document:
    """The init segment; encrypted (drm_enabled), its sample entry is protected (encv/enca with the
    KID) and its moov ends with the DRM systems' pssh boxes (where dash.js looks for ClearKey's).
    With a clear lead the clear sample entry follows as the second (as nginx-vod-module does),
    which the clear fragments name in their tfhd."""
    (track,) = clip.tracks
    written, pssh = track, b""
    second: tuple[bytes, ...] = ()
    if track.media_type is MediaType.SUBTITLE:
        written = output_track(track, context.dash_subtitle_format)
    elif context.encrypts("dash"):
        path, scheme = clip.movie.source.path, context.dash_encryption_scheme
        key = context.key(path, track.media_type)
        cenc.check_track(track)
        entry = cenc.protected_sample_entry(track.codec.sample_entry, key.key_id, scheme,
                                            cenc.constant_iv(key, path) if scheme == cenc.CBCS else b"")
        written = replace(track, codec=replace(track.codec, sample_entry=entry))
        pssh = b"".join(system.pssh for system in key.systems)
        second = (track.codec.sample_entry,) if context.clear_lead else ()
    return Document(fmp4.init_segment([written], pssh, second), mp4_type((track,)), (clip.movie.source,))


def segment_config(context: PackagerContext) -> SegmentConfig:
    """The segmentation DASH uses. A fixed-duration template numbers segments by time (number N
    starts at (N - 1) * duration), so its segments keep their nominal numbering (estimate mode, no
    segment dropped) and only the last one may be short."""
    if context.dash_manifest_format != "segmenttemplate":
        return context.segments
    return replace(context.segments, durations_mode="estimate", count_policy="last_short", bootstrap_ms=())


def _placed_segment(name: FileName, clips: list[Placed]) -> tuple[Placed, int]:
    """The clip and the clip's segment number of a fragment: c<n> names a Period's clip (numbers
    count within it); without it a playlist's numbers count through the clips."""
    number = name.number or 1
    if name.clip_index is not None:
        clip = in_clip(clips, name.clip_index)
        clip.timeline.segment(number)  # validates the number
        return clip, number
    return locate(clips, number)


def fragment(name: FileName, clips: list[Placed], context: PackagerContext) -> Output:
    clip, number = _placed_segment(name, clips)
    (track,) = clip.tracks
    sequence = name.number or 1
    if track.media_type is MediaType.SUBTITLE:
        kind = context.dash_subtitle_format
        body = text_fragment(output_track(track, kind), presented_cues(track, clip.timeline),
                             timeline_span_ms(clip.timeline, number), sequence, PRESENTATION_DELAY_MS, kind)
        return Document(body, "application/mp4", (clip.movie.source,))
    frames = segment_frames(track, clip.timeline, number, context.max_frames_per_segment)
    delay = rescale(PRESENTATION_DELAY_MS, 1000, track.timescale)
    ranges = merged_ranges([frames], context.read_merge_gap)
    clear_lead = context.encrypts("dash") and sequence <= context.clear_lead
    if context.encrypts("dash") and not clear_lead:
        return _encrypted_fragment(clip, frames, delay, sequence, ranges, context)
    part = fmp4.FragmentTrack(frames, delay, sample_description=2 if clear_lead else 1)
    plan = fmp4.plan_fragment(sequence, [part], segment_type=True, segment_index=context.dash_segment_index)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_runs(frames)])

    return MediaSegment(plan.size, mp4_type((track,)), clip.movie.source, ranges, render)


def _encrypted_fragment(clip: Placed, frames: TrackFrames, delay: int, sequence: int,
                        ranges: list[ByteRange], context: PackagerContext) -> MediaSegment:
    """A fragment in Common Encryption (dash_encryption_scheme 'cenc' or 'cbcs'): its senc holds
    each sample's subsamples, which depend on its NAL units, so it is planned once its frames are
    read (its size is not known before: MediaSegment.size None)."""
    (track,) = clip.tracks
    scheme = context.dash_encryption_scheme
    cenc.check_track(track)
    key, path = context.key(clip.movie.source.path, track.media_type), clip.movie.source.path
    iv = cenc.constant_iv(key, path)

    def render(source: SourceBytes) -> bytes:
        aux, encrypted = cenc.encrypt_samples(key, path, track, frames.first, source.frame_views(frames),
                                              scheme, iv)
        part = fmp4.FragmentTrack(frames, delay, encryption=aux)
        plan = fmp4.plan_fragment(sequence, [part], segment_type=True,
                                  segment_index=context.dash_segment_index)
        return fmp4.write_fragment(plan, [[memoryview(sample) for sample in encrypted]])

    return MediaSegment(None, mp4_type((track,)), clip.movie.source, ranges, render)


def _webvtt_file(name: FileName, clips: list[Placed]) -> Document:
    """A subtitle track as one WebVTT file (dash_subtitle_format webvtt), times from the Period's
    start: one clip's cues (c<n>), or every clip's of a playlist one after another."""
    if name.clip_index is not None:
        clips = [in_clip(clips, name.clip_index)]
    if clips[0].tracks[0].media_type is not MediaType.SUBTITLE:
        raise BadRequest("sub-<rep>.vtt names a subtitle track")
    start = clips[0].media.offset_ms if name.clip_index is not None else 0
    cues = [cue for clip in clips for cue in presented_cues(clip.tracks[0], clip.timeline)]
    moved = [replace(cue, start_ms=cue.start_ms - start, end_ms=cue.end_ms - start) for cue in cues]
    return Document(webvtt_document(moved), "text/vtt", (clips[0].movie.source,))
