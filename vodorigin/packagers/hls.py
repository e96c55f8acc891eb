"""HLS (RFC 8216): master and media playlists; MPEG-TS segments, or fMP4 (CMAF) with an init segment.

URLs (REFERENCE.md): master.m3u8, index[-f1][-v1][-a1].m3u8, seg-N[-f1][-v1][-a1].ts, and for fMP4
init[-f1][-v1][-a1].mp4 + seg-N[-f1][-v1][-a1].m4s; iframes[-f1]-v1.m3u8 for I-frame playlists. A
media playlist's segment names repeat its own tokens, so each variant is self-consistent. The
container is chosen per variant by the hls_container setting; both segment formats are served
whatever the playlist lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vodorigin.errors import BadRequest, NotFound, UnsupportedMedia
from vodorigin.media.frames import (
    ByteRange,
    SourceBytes,
    TrackFrames,
    cut_indexes,
    frames_by_index,
    merged_ranges,
    segment_frames,
)
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mux import fmp4, mpegts
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.packagers.shared import (
    FMP4,
    MPEGTS,
    choose_rendition,
    frame_rate,
    mp4_type,
    segment_bitrates,
)
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale
from vodorigin.urls import FileName, parse_file_name

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
TS_TYPE = "video/MP2T"
HLS_VERSION = {MPEGTS: 3, FMP4: 6}  # decimal EXTINF (RFC 8216 7); EXT-X-MAP without I-frames only: 6
IFRAMES_VERSION = {MPEGTS: 4, FMP4: 6}  # EXT-X-I-FRAMES-ONLY and EXT-X-BYTERANGE: 4
FMP4_VIDEO = ("hvc1", "hev1", "av01")  # what `auto` packages as fMP4 (TS for H.264)


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    """Route an HLS file name to its renderer."""
    if file_name == "master.m3u8":
        return _document(render_master_playlist(media, context), media)
    kind = file_name.split("-", 1)[0].split(".", 1)[0]
    extension = file_name.rsplit(".", 1)[-1]
    if (kind, extension) == ("index", "m3u8"):
        name = parse_file_name(file_name)
        movie, tracks = choose_rendition(media, name)
        timeline = movie_timeline(movie, context.segments, media.clip)
        container = choose_container(tracks, context.hls_container)
        return _document(render_media_playlist(timeline, name.tokens, container), media)
    if (kind, extension) == ("iframes", "m3u8"):
        return _document(iframes_playlist(parse_file_name(file_name), media, context), media)
    if (kind, extension) == ("init", "mp4"):
        movie, tracks = choose_rendition(media, parse_file_name(file_name))
        return Document(fmp4.init_segment(list(tracks)), mp4_type(tracks), (movie.source,))
    if kind == "seg" and extension in ("ts", "m4s"):
        name = parse_file_name(file_name, numbered=True)
        return ts_segment(name, media, context) if extension == "ts" else fmp4_segment(name, media, context)
    raise BadRequest(f"unknown HLS file name {file_name!r}")


def _document(text: str, media: MediaSet) -> Document:
    return Document(text.encode(), PLAYLIST_TYPE, tuple(m.source for m in media.movies))


def choose_container(tracks: tuple[Track, ...], setting: str) -> str:
    """mpegts or fmp4 for a variant: the setting, or with `auto` TS unless a track needs fMP4."""
    if setting != "auto":
        return setting
    for track in tracks:
        if track.codec.fourcc in FMP4_VIDEO:
            return FMP4
        try:
            mpegts.stream_format(track.codec)
        except UnsupportedMedia:
            return FMP4
    return MPEGTS


def _segment_frames(name: FileName, media: MediaSet, context: PackagerContext
                    ) -> tuple[Movie, list[TrackFrames], list[ByteRange]]:
    assert name.number is not None
    movie, tracks = choose_rendition(media, name)
    timeline = movie_timeline(movie, context.segments, media.clip)
    frames = [segment_frames(t, timeline, name.number, context.max_frames_per_segment) for t in tracks]
    return movie, frames, merged_ranges(frames, context.read_merge_gap)


def ts_segment(name: FileName, media: MediaSet, context: PackagerContext) -> MediaSegment:
    movie, frames, ranges = _segment_frames(name, media, context)
    plan = mpegts.plan_segment(name.number or 1, frames)

    def render(source: SourceBytes) -> bytes:
        return mpegts.write_segment(plan, [source.frame_views(f) for f in frames])

    return MediaSegment(plan.size, TS_TYPE, movie.source, ranges, render)


def fmp4_segment(name: FileName, media: MediaSet, context: PackagerContext) -> MediaSegment:
    movie, frames, ranges = _segment_frames(name, media, context)
    plan = _fragment_plan(name.number or 1, frames)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_views(f) for f in frames])

    content_type = mp4_type(tuple(f.track for f in frames))
    return MediaSegment(plan.size, content_type, movie.source, ranges, render)


def _fragment_plan(number: int, frames: list[TrackFrames]) -> fmp4.FragmentPlan:
    """All the rendition's tracks in one fragment; decode times offset by PRESENTATION_DELAY_MS."""
    parts = [fmp4.FragmentTrack(f, rescale(PRESENTATION_DELAY_MS, 1000, f.track.timescale)) for f in frames]
    return fmp4.plan_fragment(number, parts)


def render_media_playlist(timeline: Timeline, tokens: str, container: str = MPEGTS) -> str:
    """A VOD media playlist (RFC 8216 4.3.3): every segment with its real duration."""
    durations = [f"{d / timeline.timescale:.3f}" for d in timeline.durations().tolist()]
    suffix = f"-{tokens}" if tokens else ""
    lines = _vod_playlist_head(HLS_VERSION[container], durations)
    extension = "ts"
    if container == FMP4:
        lines.append(f'#EXT-X-MAP:URI="init{suffix}.mp4"')
        extension = "m4s"
    for number, duration in enumerate(durations, start=1):
        lines.append(f"#EXTINF:{duration},")
        lines.append(f"seg-{number}{suffix}.{extension}")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _vod_playlist_head(version: int, durations: list[str]) -> list[str]:
    """The tags opening a VOD media playlist; TARGETDURATION is the longest EXTINF rounded (4.3.3.1)."""
    target = max((int(float(d) + 0.5) for d in durations), default=1)
    return ["#EXTM3U", f"#EXT-X-VERSION:{version}", f"#EXT-X-TARGETDURATION:{max(target, 1)}",
            "#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:VOD"]


def render_master_playlist(media: MediaSet, context: PackagerContext) -> str:
    """One EXT-X-STREAM-INF per video track of each file (audio-only files: one per file)."""
    variants = []
    for file_number, movie in enumerate(media.movies, start=1):
        timeline = movie_timeline(movie, context.segments, media.clip)
        audio = movie.tracks_of(MediaType.AUDIO)[:1]
        videos = movie.tracks_of(MediaType.VIDEO)
        for tracks in [(video, *audio) for video in videos] or [audio]:
            tokens = ([f"f{file_number}"] if len(media.movies) > 1 else []) + [t.key for t in tracks]
            container = choose_container(tracks, context.hls_container)
            variants.append((_stream_inf(tracks, timeline, container), f"index-{'-'.join(tokens)}.m3u8",
                             container))
    version = max(HLS_VERSION[container] for _, _, container in variants)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for stream_inf, uri, _ in variants:
        lines += [stream_inf, uri]
    if context.hls_iframes_playlists:
        lines += _iframe_stream_infs(media, context)
    return "\n".join(lines) + "\n"


def _stream_inf(tracks: tuple[Track, ...], timeline: Timeline, container: str) -> str:
    peak, average = segment_bitrates(tracks, timeline, container)
    attributes = [f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={average}"]
    video = next((t for t in tracks if t.media_type is MediaType.VIDEO), None)
    if video is not None:
        attributes.append(f"RESOLUTION={video.codec.width}x{video.codec.height}")
        attributes.append(f"FRAME-RATE={frame_rate(video):.3f}")
    attributes.append(f'CODECS="{",".join(t.codec.codec_string for t in tracks)}"')
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


# --- I-frame playlists (RFC 8216 4.3.3.6, 4.3.4.3) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class IFrame:
    """A key frame's bytes inside the video-only segment `segment` (1-based)."""

    segment: int
    offset: int
    length: int
    time: int  # presentation time in ticks of the track, from the timeline start


def iframes(video: Track, timeline: Timeline, container: str, context: PackagerContext) -> list[IFrame]:
    """The I-frames of a video track, located from the planned layout of its video-only segments.

    RFC 8216 4.3.3.6: a byte range must not include the Media Initialization Section, which is
    either EXT-X-MAP or the bytes from the start of the resource to its first I-frame.
    * TS: every key frame, exactly the TS packets of its PES; the PAT and PMT before the segment's
      first key frame are the initialization section.
    * fMP4: the key frame opening each fragment: the moof, the mdat header and that frame, the init
      segment given by EXT-X-MAP (a key frame inside a fragment cannot be addressed without its moof).
    """
    cuts = cut_indexes(video, timeline)
    whole = frames_by_index(video, timeline, int(cuts[0]), int(cuts[-1]), context.max_clip_frames)
    local_cuts = (cuts - cuts[0]).tolist()
    segments = np.repeat(np.arange(1, timeline.count + 1), np.diff(cuts))  # segment of each frame
    if container == MPEGTS:
        packets = mpegts.video_only_packets(whole, local_cuts)
        running = np.cumsum(packets) - packets  # packets before each frame, from the track's start
        starts = mpegts.PSI_PACKETS + running - running[np.array(local_cuts[:-1])][segments - 1]
        keys = np.flatnonzero(whole.sync)
        size = mpegts.PACKET_SIZE
        columns = (segments[keys], starts[keys], packets[keys], whole.pts[keys])
        return [IFrame(int(n), size * int(s), size * int(p), int(t))
                for n, s, p, t in zip(*columns, strict=True)]
    entries = []
    for number, (start, stop) in enumerate(zip(local_cuts, local_cuts[1:], strict=False), start=1):
        if stop > start and whole.sync[start]:
            head = len(_fragment_plan(number, [whole.part(start, stop)]).head)
            entries.append(IFrame(number, 0, head + int(whole.sizes[start]), int(whole.pts[start])))
    return entries


def _iframe_durations(entries: list[IFrame], video: Track, timeline: Timeline) -> list[float]:
    """Seconds from each I-frame to the next one (the last one: to the end of the timeline)."""
    end = rescale(timeline.end - timeline.start, timeline.timescale, video.timescale)
    times = [e.time for e in entries] + [max(end, entries[-1].time if entries else 0)]
    return [(b - a) / video.timescale for a, b in zip(times, times[1:], strict=False)]


def _iframe_rendition(name: FileName, media: MediaSet) -> tuple[Movie, Track]:
    movie, tracks = choose_rendition(media, name)
    videos = [t for t in tracks if t.media_type is MediaType.VIDEO]
    if len(videos) != 1 or name.tracks.audio is not None:
        raise NotFound("an I-frame playlist addresses exactly one video track (iframes-v1.m3u8)")
    return movie, videos[0]


def iframes_playlist(name: FileName, media: MediaSet, context: PackagerContext) -> str:
    """An EXT-X-I-FRAMES-ONLY playlist over the video-only segments seg-N[-f1]-vK.(ts|m4s)."""
    if not context.hls_iframes_playlists:
        raise NotFound("I-frame playlists are turned off (hls_iframes_playlists)")
    movie, video = _iframe_rendition(name, media)
    timeline = movie_timeline(movie, context.segments, media.clip)
    container = choose_container((video,), context.hls_container)
    entries = iframes(video, timeline, container, context)
    durations = [f"{d:.3f}" for d in _iframe_durations(entries, video, timeline)]
    tokens = "-".join(([f"f{name.file_index}"] if name.file_index else []) + [video.key])
    lines = [*_vod_playlist_head(IFRAMES_VERSION[container], durations), "#EXT-X-I-FRAMES-ONLY"]
    extension = "ts"
    if container == FMP4:
        lines.append(f'#EXT-X-MAP:URI="init-{tokens}.mp4"')
        extension = "m4s"
    for entry, duration in zip(entries, durations, strict=True):
        lines += [f"#EXTINF:{duration},", f"#EXT-X-BYTERANGE:{entry.length}@{entry.offset}",
                  f"seg-{entry.segment}-{tokens}.{extension}"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _iframe_stream_infs(media: MediaSet, context: PackagerContext) -> list[str]:
    """One EXT-X-I-FRAME-STREAM-INF per video track; BANDWIDTH is the peak I-frame bit rate."""
    lines = []
    for file_number, movie in enumerate(media.movies, start=1):
        timeline = movie_timeline(movie, context.segments, media.clip)
        for video in movie.tracks_of(MediaType.VIDEO):
            container = choose_container((video,), context.hls_container)
            entries = iframes(video, timeline, container, context)
            durations = _iframe_durations(entries, video, timeline)
            rates = [e.length * 8 / d for e, d in zip(entries, durations, strict=True) if d > 0]
            tokens = ([f"f{file_number}"] if len(media.movies) > 1 else []) + [video.key]
            attributes = [f"BANDWIDTH={int(max(rates, default=0))}",
                          f"RESOLUTION={video.codec.width}x{video.codec.height}",
                          f'CODECS="{video.codec.codec_string}"', f'URI="iframes-{"-".join(tokens)}.m3u8"']
            lines.append("#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes))
    return lines
