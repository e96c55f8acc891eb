"""HLS media playlists and segments (RFC 8216 4.3.3, 3.2-3.5): MPEG-TS, fMP4 (with its init
segment) and WebVTT.

A media playlist's segment names repeat its own tokens, so each rendition is self-consistent:
index-f2-a1.m3u8 lists seg-N-f2-a1.ts. Audio-only and subtitle parts of a set are cut on the
timeline of the set's video (segmenter.set_timeline), so their segments line up with the video's.
"""

from __future__ import annotations

from vodorigin.errors import UnsupportedMedia
from vodorigin.media.frames import ByteRange, SourceBytes, TrackFrames, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Track, memoized
from vodorigin.media.segmenter import Timeline
from vodorigin.mux import fmp4, mpegts, ts_write
from vodorigin.packagers.hls_keys import (
    encrypted_init,
    encrypted_segment,
    encrypting,
    key_tag,
    sample_aes,
    sample_aes_segment,
    sample_encrypted_fragment,
)
from vodorigin.packagers.output import Document, MediaSegment, PackagerContext
from vodorigin.packagers.playlist import Placed, in_clip, locate, placed
from vodorigin.packagers.shared import FMP4, MPEGTS, TS_TYPE, mp4_type
from vodorigin.packagers.text import presented_cues, timeline_span_ms
from vodorigin.text import cues_between, webvtt_document
from vodorigin.timing import MPEG_TS_CLOCK, PRESENTATION_DELAY_MS, rescale
from vodorigin.urls import FileName

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
VTT_TYPE = "text/vtt"
HLS_VERSION = {MPEGTS: 3, FMP4: 6}  # decimal EXTINF (RFC 8216 7); EXT-X-MAP without I-frames only: 6
SAMPLE_AES_VERSION = 5  # as nginx-vod-module and Apple's tools write SAMPLE-AES playlists
FMP4_VIDEO = ("hvc1", "hev1", "av01")  # what `auto` packages as fMP4 (TS for H.264)
# WebVTT cue time 0 is this MPEG-TS time: the presentation delay every segment's timestamps carry
TIMESTAMP_MAP = PRESENTATION_DELAY_MS * MPEG_TS_CLOCK // 1000


def playlist(text: str, media: MediaSet) -> Document:
    return Document(text.encode(), PLAYLIST_TYPE, tuple(m.source for m in media.movies))


def choose_container(tracks: tuple[Track, ...], setting: str, media: MediaSet | None = None) -> str:
    """mpegts or fmp4 for a rendition: the setting, or with `auto` TS unless a track needs fMP4.
    An audio-only rendition of a set with video follows the video (fMP4 when any video needs it)."""
    if setting != "auto":
        return setting
    candidates = list(tracks)
    if media is not None and all(t.media_type is MediaType.AUDIO for t in tracks):
        candidates += [t for movie in media.movies for t in movie.tracks_of(MediaType.VIDEO)]
    return FMP4 if any(_needs_fmp4(track) for track in candidates) else MPEGTS


def _needs_fmp4(track: Track) -> bool:
    if track.codec.fourcc in FMP4_VIDEO:
        return True
    try:
        mpegts.stream_format(track.codec)
    except UnsupportedMedia:
        return True
    return False


def media_playlist(name: FileName, media: MediaSet, context: PackagerContext) -> Document:
    clips = placed(media, name, context.segments)
    timelines = [clip.timeline for clip in clips]
    tracks = clips[0].tracks
    if tracks[0].media_type is MediaType.SUBTITLE:
        text = render_media_playlist(timelines, name.tokens, MPEGTS, "vtt", media.discontinuity)
    else:
        container = choose_container(tracks, context.hls_container, media)
        keys = [key_tag(name, clips, clip, container, context) for clip in clips] \
            if encrypting(context) else None
        text = render_media_playlist(timelines, name.tokens, container, discontinuity=media.discontinuity,
                                     keys=keys,
                                     min_version=SAMPLE_AES_VERSION if sample_aes(context) else 0)
    return playlist(text, media)


def render_media_playlist(timelines: list[Timeline], tokens: str, container: str = MPEGTS,
                          extension: str = "", discontinuity: bool = True, keys: list[str] | None = None,
                          min_version: int = 0) -> str:
    """A VOD media playlist (RFC 8216 4.3.3): every segment with its real duration. A mapped
    playlist lists its clips one after another, numbering segments through them, with
    EXT-X-DISCONTINUITY (4.3.2.3) and, for fMP4, the next clip's EXT-X-MAP where they change.
    `keys` are each clip's EXT-X-KEY (hls_keys.py), written where the key changes, before the
    EXT-X-MAP it also covers."""
    clips: list[tuple[Timeline, int, str, int]] = []  # timeline, first number, longest EXTINF, segments
    number = 1  # segments are numbered through the clips
    for timeline in timelines:
        longest, heads, _ = _segment_entries(timeline, number)
        clips.append((timeline, number, longest, len(heads)))
        number += len(heads)
    suffix = f"-{tokens}" if tokens else ""
    lines = vod_playlist_head(max(HLS_VERSION[container], min_version), [clip[2] for clip in clips])
    extension = "m4s" if container == FMP4 else extension or "ts"
    ending = f"{suffix}.{extension}"
    current_key = None
    for index, (timeline, first_number, _, count) in enumerate(clips):
        if index and discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if keys is not None and keys[index] != current_key:
            current_key = keys[index]
            lines.append(current_key)
        if container == FMP4 and (index == 0 or discontinuity):
            clip = f"-c{index + 1}" if len(timelines) > 1 else ""
            lines.append(f'#EXT-X-MAP:URI="init{clip}{suffix}.mp4"')
        if count:
            lines.append(_segment_lines(timeline, first_number, ending))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _segment_entries(timeline: Timeline, first_number: int) -> tuple[str, list[str], list[str]]:
    """The longest EXTINF of a timeline, each segment's entry up to its number
    ("#EXTINF:<seconds>,\nseg-") and each one's number (from first_number); derived once per
    timeline (model.memoized), so a long title's playlist is one join per request."""
    def derive() -> tuple[str, list[str], list[str]]:
        durations, timescale = timeline.durations().tolist(), timeline.timescale
        longest = f"{max(durations) / timescale:.3f}" if durations else "0.000"
        # each distinct duration formatted once (the 2-hour bench title: 3 among 720 segments)
        heads = {d: f"#EXTINF:{d / timescale:.3f},\nseg-" for d in set(durations)}
        return longest, list(map(heads.__getitem__, durations)), _numbers(first_number, len(durations))

    return memoized(timeline.memo, ("playlist entries", first_number), derive)


def _segment_lines(timeline: Timeline, first_number: int, ending: str) -> str:
    """The timeline's entries as playlist lines, each URI completed with `ending` (the rendition's
    tokens and extension): their parts laid out in one list by slice assignments, and joined once
    per timeline and rendition (model.memoized)."""
    def derive() -> str:
        _, heads, numbers = _segment_entries(timeline, first_number)
        parts = [f"{ending}\n"] * (3 * len(heads))
        parts[0::3], parts[1::3] = heads, numbers
        if parts:
            parts[-1] = ending  # the last line's newline is the playlist's
        return "".join(parts)

    return memoized(timeline.memo, ("playlist lines", first_number, ending), derive)


_NUMBER_TEXTS: list[str] = []  # str(n) at n: made once for every playlist that numbers that far
NUMBER_TEXTS_KEPT = 20_000  # at most (some 1 MB): a 24-hour title in 4-second segments


def _numbers(first: int, count: int) -> list[str]:
    """str(n) for n in [first, first + count): from a table shared by all playlists (about a third
    of the time of formatting each number again). The table is replaced, never changed, so a
    playlist rendered in a worker thread always reads a whole one."""
    global _NUMBER_TEXTS
    table, stop = _NUMBER_TEXTS, first + count
    if stop > len(table):
        if stop > NUMBER_TEXTS_KEPT:
            return list(map(str, range(first, stop)))
        table = _NUMBER_TEXTS = table + list(map(str, range(len(table), stop)))
    return table[first:stop]


def vod_playlist_head(version: int, durations: list[str]) -> list[str]:
    """The tags opening a VOD media playlist; TARGETDURATION is the longest EXTINF rounded (4.3.3.1)."""
    target = max((int(float(d) + 0.5) for d in durations), default=1)
    return ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{max(target, 1)}",
            "#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:VOD"]


def init_segment(name: FileName, media: MediaSet, context: PackagerContext) -> Document:
    clip = in_clip(placed(media, name, context.segments), name.clip_index)
    document = Document(fmp4.init_segment(list(clip.tracks)), mp4_type(clip.tracks), (clip.movie.source,))
    return encrypted_init(document, clip, context)


def _segment_frames(name: FileName, media: MediaSet, context: PackagerContext
                    ) -> tuple[Placed, list[TrackFrames], list[ByteRange]]:
    """The frames of playlist segment N (in the clip that holds it) and the bytes they need."""
    assert name.number is not None
    clip, number = locate(placed(media, name, context.segments), name.number)
    frames = [segment_frames(t, clip.timeline, number, context.max_frames_per_segment) for t in clip.tracks]
    return clip, frames, merged_ranges(frames, context.read_merge_gap)


def ts_segment(name: FileName, media: MediaSet, context: PackagerContext) -> MediaSegment:
    """Continuity counters follow the playlist number, so segments stay continuous across clips."""
    clip, frames, ranges = _segment_frames(name, media, context)
    if sample_aes(context):
        return sample_aes_segment(frames, clip, name.number or 1, ranges, context)
    plan = mpegts.plan_segment(name.number or 1, frames)

    def render(source: SourceBytes) -> bytes:
        return ts_write.write_segment(plan, source)

    segment = MediaSegment(plan.size, TS_TYPE, clip.movie.source, ranges, render)
    return encrypted_segment(segment, clip, name.number or 1, MPEGTS, context)


def fmp4_segment(name: FileName, media: MediaSet, context: PackagerContext) -> MediaSegment:
    clip, frames, ranges = _segment_frames(name, media, context)
    content_type = mp4_type(tuple(f.track for f in frames))
    if sample_aes(context):
        return sample_encrypted_fragment(clip, name.number or 1, fragment_parts(frames), ranges, content_type,
                                         context)
    plan = fragment_plan(name.number or 1, frames)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_runs(f) for f in frames])

    segment = MediaSegment(plan.size, content_type, clip.movie.source, ranges, render)
    return encrypted_segment(segment, clip, name.number or 1, FMP4, context)


def fragment_plan(number: int, frames: list[TrackFrames]) -> fmp4.FragmentPlan:
    """All the rendition's tracks in one fragment."""
    return fmp4.plan_fragment(number, fragment_parts(frames))


def fragment_parts(frames: list[TrackFrames]) -> list[fmp4.FragmentTrack]:
    """Each track's part of a fragment, decode times offset by PRESENTATION_DELAY_MS."""
    return [fmp4.FragmentTrack(f, rescale(PRESENTATION_DELAY_MS, 1000, f.track.timescale)) for f in frames]


def webvtt_segment(name: FileName, media: MediaSet, context: PackagerContext) -> Document:
    """A WebVTT segment (RFC 8216 3.5): the cues shown during segment N of the set's timeline,
    whole (a cue crossing a boundary is in both segments: players keep one), times counted from
    the start of the presentation, and X-TIMESTAMP-MAP tying cue time 0 to the MPEG-TS time the
    audio and video segments give it (the presentation delay), so cues land on their frames."""
    assert name.number is not None
    clip, number = locate(placed(media, name, context.segments), name.number)
    if clip.tracks[0].media_type is not MediaType.SUBTITLE or len(clip.tracks) != 1:
        raise UnsupportedMedia("a WebVTT segment carries one subtitle track (seg-N-t1.vtt)")
    start, end = timeline_span_ms(clip.timeline, number)
    cues = cues_between(presented_cues(clip.tracks[0], clip.timeline), start, end)
    return Document(webvtt_document(cues, TIMESTAMP_MAP), VTT_TYPE, (clip.movie.source,))
