"""HLS (RFC 8216): master and media playlists; MPEG-TS segments, or fMP4 (CMAF) with an init segment.

URLs (REFERENCE.md): master.m3u8, index[-f1][-v1][-a1].m3u8, seg-N[-f1][-v1][-a1].ts, and for fMP4
init[-f1][-v1][-a1].mp4 + seg-N[-f1][-v1][-a1].m4s. A media playlist's segment names repeat its own
tokens, so each variant is self-consistent. The container is chosen per variant by the
hls_container setting; both segment formats are served whatever the playlist lists.
"""

from __future__ import annotations

from vodorigin.errors import BadRequest, UnsupportedMedia
from vodorigin.media.frames import (
    ByteRange,
    SourceBytes,
    TrackFrames,
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
    """All the rendition's tracks in one fragment; decode times offset by PRESENTATION_DELAY_MS."""
    movie, frames, ranges = _segment_frames(name, media, context)
    parts = [fmp4.FragmentTrack(f, rescale(PRESENTATION_DELAY_MS, 1000, f.track.timescale)) for f in frames]
    plan = fmp4.plan_fragment(name.number or 1, parts)

    def render(source: SourceBytes) -> bytes:
        return fmp4.write_fragment(plan, [source.frame_views(f) for f in frames])

    content_type = mp4_type(tuple(f.track for f in frames))
    return MediaSegment(plan.size, content_type, movie.source, ranges, render)


def render_media_playlist(timeline: Timeline, tokens: str, container: str = MPEGTS) -> str:
    """A VOD media playlist (RFC 8216 4.3.3): every segment with its real duration."""
    durations = [f"{d / timeline.timescale:.3f}" for d in timeline.durations().tolist()]
    target = max((int(float(d) + 0.5) for d in durations), default=1)  # 4.3.3.1: rounded EXTINF
    suffix = f"-{tokens}" if tokens else ""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION[container]}",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    extension = "ts"
    if container == FMP4:
        lines.append(f'#EXT-X-MAP:URI="init{suffix}.mp4"')
        extension = "m4s"
    for number, duration in enumerate(durations, start=1):
        lines.append(f"#EXTINF:{duration},")
        lines.append(f"seg-{number}{suffix}.{extension}")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


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
