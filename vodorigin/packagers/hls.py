"""HLS (RFC 8216): master and media playlists, MPEG-TS segments.

URLs (REFERENCE.md): master.m3u8, index[-f1][-v1][-a1].m3u8, seg-N[-f1][-v1][-a1].ts. A media
playlist's segment names repeat its own tokens, so each variant is self-consistent.
"""

from __future__ import annotations

import numpy as np

from vodorigin.errors import BadRequest, NotFound
from vodorigin.media.frames import SourceBytes, cut_indexes, merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, MediaType, Movie, Track, select_tracks
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mux import mpegts
from vodorigin.packagers.output import Document, MediaSegment, Output, PackagerContext
from vodorigin.urls import FileName, parse_file_name

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
TS_TYPE = "video/MP2T"
HLS_VERSION = 3  # decimal EXTINF (RFC 8216 7)


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    """Route an HLS file name to its renderer."""
    if file_name == "master.m3u8":
        return _document(render_master_playlist(media, context), media)
    if file_name.startswith("index") and file_name.endswith(".m3u8"):
        name = parse_file_name(file_name)
        movie, _ = choose_rendition(media, name)  # also answers 404 for a track the file lacks
        timeline = movie_timeline(movie, context.segments, media.clip)
        return _document(render_media_playlist(timeline, name.tokens), media)
    if file_name.startswith("seg-") and file_name.endswith(".ts"):
        return ts_segment(parse_file_name(file_name, numbered=True), media, context)
    raise BadRequest(f"unknown HLS file name {file_name!r}")


def _document(text: str, media: MediaSet) -> Document:
    return Document(text.encode(), PLAYLIST_TYPE, tuple(m.source for m in media.movies))


def choose_rendition(media: MediaSet, name: FileName) -> tuple[Movie, tuple[Track, ...]]:
    """The file (f<n>, default 1) and tracks (default v1 + a1) a file name addresses."""
    index = name.file_index or 1
    if index > len(media.movies):
        raise NotFound(f"file f{index} is not in the set (it has {len(media.movies)})")
    movie = media.movies[index - 1]
    tracks = select_tracks(movie.tracks, name.tracks, default_first=True)
    if not tracks:
        raise NotFound("no such track")
    return movie, tracks


def ts_segment(name: FileName, media: MediaSet, context: PackagerContext) -> MediaSegment:
    assert name.number is not None
    movie, tracks = choose_rendition(media, name)
    timeline = movie_timeline(movie, context.segments, media.clip)
    frames = [segment_frames(t, timeline, name.number, context.max_frames_per_segment) for t in tracks]
    plan = mpegts.plan_segment(name.number, frames)

    def render(source: SourceBytes) -> bytes:
        return mpegts.write_segment(plan, [source.frame_views(f) for f in frames])

    ranges = merged_ranges(frames, context.read_merge_gap)
    return MediaSegment(plan.size, TS_TYPE, movie.source, ranges, render)


def render_media_playlist(timeline: Timeline, tokens: str) -> str:
    """A VOD media playlist (RFC 8216 4.3.3): every segment with its real duration."""
    durations = [f"{d / timeline.timescale:.3f}" for d in timeline.durations().tolist()]
    target = max((int(float(d) + 0.5) for d in durations), default=1)  # 4.3.3.1: rounded EXTINF
    suffix = f"-{tokens}" if tokens else ""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{max(target, 1)}",
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for number, duration in enumerate(durations, start=1):
        lines.append(f"#EXTINF:{duration},")
        lines.append(f"seg-{number}{suffix}.ts")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def render_master_playlist(media: MediaSet, context: PackagerContext) -> str:
    """One EXT-X-STREAM-INF per video track of each file (audio-only files: one per file)."""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for file_number, movie in enumerate(media.movies, start=1):
        timeline = movie_timeline(movie, context.segments, media.clip)
        audio = movie.tracks_of(MediaType.AUDIO)[:1]
        videos = movie.tracks_of(MediaType.VIDEO)
        for tracks in [(video, *audio) for video in videos] or [audio]:
            tokens = ([f"f{file_number}"] if len(media.movies) > 1 else []) + [t.key for t in tracks]
            lines.append(_stream_inf(tracks, timeline))
            lines.append(f"index-{'-'.join(tokens)}.m3u8")
    return "\n".join(lines) + "\n"


def _stream_inf(tracks: tuple[Track, ...], timeline: Timeline) -> str:
    peak, average = ts_bitrates(tracks, timeline)
    attributes = [f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={average}"]
    video = next((t for t in tracks if t.media_type is MediaType.VIDEO), None)
    if video is not None:
        attributes.append(f"RESOLUTION={video.codec.width}x{video.codec.height}")
        attributes.append(f"FRAME-RATE={frame_rate(video):.3f}")
    attributes.append(f'CODECS="{",".join(t.codec.codec_string for t in tracks)}"')
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)


def ts_bitrates(tracks: tuple[Track, ...], timeline: Timeline) -> tuple[int, int]:
    """(peak, average) bits per second of the TS segments, from an upper bound of their sizes.

    RFC 8216 4.3.4.2: BANDWIDTH is the peak segment bit rate; AVERAGE-BANDWIDTH the average.
    """
    packets = np.zeros(timeline.count, dtype=np.int64)
    for track in tracks:
        samples = track.samples
        per_frame = mpegts.frame_packet_bounds(
            track.codec, track.media_type is MediaType.VIDEO, samples.sizes.astype(np.int64),
            samples.is_sync(0, samples.count),
        )
        running = np.concatenate(([0], np.cumsum(per_frame)))
        cuts = cut_indexes(track, timeline)
        packets += running[cuts[1:]] - running[cuts[:-1]]
    packets += mpegts.segment_overhead_packets(len(tracks))
    bits = packets * mpegts.PACKET_SIZE * 8
    seconds = np.diff(timeline.cuts) / timeline.timescale
    valid = seconds > 0
    if not valid.any():
        return 0, 0
    peak = int(np.max(bits[valid] / seconds[valid]))
    average = int(bits[valid].sum() / seconds[valid].sum())
    return peak, average


def frame_rate(track: Track) -> float:
    """Frames per second from the median frame duration (robust to a short last frame)."""
    durations = np.diff(track.samples.dts, append=track.samples.end_dts)
    median = float(np.median(durations)) if len(durations) else 0.0
    return track.timescale / median if median > 0 else 0.0
