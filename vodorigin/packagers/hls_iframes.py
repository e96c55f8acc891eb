"""HLS I-frame playlists (RFC 8216 4.3.3.6, 4.3.4.3): iframes[-f1]-v1.m3u8 over the video-only
segments seg-N[-f1]-v1.(ts|m4s), and the EXT-X-I-FRAME-STREAM-INF lines of the master playlist.

Byte ranges come from the planned layout of the segments, so no media is read to list them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vodorigin.errors import NotFound
from vodorigin.media.frames import cut_indexes, frames_by_index
from vodorigin.media.model import MediaSet, MediaType, Movie, Track
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mux import mpegts
from vodorigin.packagers.hls_media import choose_container, fragment_plan, vod_playlist_head
from vodorigin.packagers.output import PackagerContext
from vodorigin.packagers.renditions import part_tokens
from vodorigin.packagers.shared import FMP4, MPEGTS, choose_rendition
from vodorigin.timing import rescale
from vodorigin.urls import FileName

IFRAMES_VERSION = {MPEGTS: 4, FMP4: 6}  # EXT-X-I-FRAMES-ONLY and EXT-X-BYTERANGE: 4


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
    if cuts[-1] == cuts[0]:  # no video frame in the clip
        return []
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
            head = len(fragment_plan(number, [whole.part(start, stop)]).head)
            entries.append(IFrame(number, 0, head + int(whole.sizes[start]), int(whole.pts[start])))
    return entries


def _iframe_durations(entries: list[IFrame], video: Track, timeline: Timeline) -> list[float]:
    """Seconds from each I-frame to the next one (the last one: to the end of the timeline)."""
    end = rescale(timeline.end - timeline.zero, timeline.timescale, video.timescale)
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
    if not context.hls_iframes_playlists or media.clips:
        raise NotFound("I-frame playlists are turned off (hls_iframes_playlists) or the set is a playlist")
    movie, video = _iframe_rendition(name, media)
    timeline = movie_timeline(movie, context.segments, media.clip)
    container = choose_container((video,), context.hls_container)
    entries = iframes(video, timeline, container, context)
    if not entries:
        raise NotFound("no key frame in this clip")
    durations = [f"{d:.3f}" for d in _iframe_durations(entries, video, timeline)]
    tokens = part_tokens(media, name.file_index or 1, movie, (video,))
    lines = [*vod_playlist_head(IFRAMES_VERSION[container], durations), "#EXT-X-I-FRAMES-ONLY"]
    extension = "ts"
    if container == FMP4:
        lines.append(f'#EXT-X-MAP:URI="init-{tokens}.mp4"')
        extension = "m4s"
    for entry, duration in zip(entries, durations, strict=True):
        lines += [f"#EXTINF:{duration},", f"#EXT-X-BYTERANGE:{entry.length}@{entry.offset}",
                  f"seg-{entry.segment}-{tokens}.{extension}"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def iframe_stream_infs(media: MediaSet, context: PackagerContext) -> list[str]:
    """One EXT-X-I-FRAME-STREAM-INF per video track; BANDWIDTH is the peak I-frame bit rate. A
    mapped playlist of clips has none (as in nginx-vod-module)."""
    lines: list[str] = []
    if media.clips:
        return lines
    for file_number, movie in enumerate(media.movies, start=1):
        if not movie.tracks_of(MediaType.VIDEO):
            continue
        timeline = movie_timeline(movie, context.segments, media.clip)
        for video in movie.tracks_of(MediaType.VIDEO):
            container = choose_container((video,), context.hls_container)
            entries = iframes(video, timeline, container, context)
            if not entries:  # no key frame in the clip
                continue
            durations = _iframe_durations(entries, video, timeline)
            rates = [e.length * 8 / d for e, d in zip(entries, durations, strict=True) if d > 0]
            tokens = part_tokens(media, file_number, movie, (video,))
            attributes = [f"BANDWIDTH={int(max(rates, default=0))}",
                          f"RESOLUTION={video.codec.width}x{video.codec.height}",
                          f'CODECS="{video.codec.codec_string}"', f'URI="iframes-{tokens}.m3u8"']
            lines.append("#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes))
    return lines
