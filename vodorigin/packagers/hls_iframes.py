"""HLS I-frame playlists (RFC 8216 4.3.3.6, 4.3.4.3): iframes[-f1]-v1.m3u8 over the video-only
segments seg-N[-f1]-v1.(ts|m4s), and the EXT-X-I-FRAME-STREAM-INF lines of the master playlist.

Byte ranges come from the planned layout of the segments, so no media is read to list them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from vodorigin.errors import NotFound
from vodorigin.media.frames import cut_indexes, frames_by_index
from vodorigin.media.model import MediaSet, MediaType, Movie, Track, memoized
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mux import mpegts
from vodorigin.packagers.hls_media import choose_container, fragment_plan, vod_playlist_head
from vodorigin.packagers.output import PackagerContext
from vodorigin.packagers.renditions import part_tokens
from vodorigin.packagers.shared import FMP4, MPEGTS, choose_rendition
from vodorigin.timing import rescale
from vodorigin.urls import FileName

IFRAMES_VERSION = {MPEGTS: 4, FMP4: 6}  # EXT-X-I-FRAMES-ONLY and EXT-X-BYTERANGE: 4


BATCH_FRAMES = 65_536  # frames located at a time: the memory of a long title's playlist stays bounded
LINES_AT_ONCE = 8192  # I-frames rendered at a time


@dataclass(frozen=True, slots=True)
class IFrames:
    """Where each key frame lies in the video-only segments: one entry per I-frame."""

    segments: np.ndarray  # the segment holding it (1-based)
    offsets: np.ndarray  # its first byte in that segment
    lengths: np.ndarray  # its bytes
    times: np.ndarray  # presentation time in ticks of the track, from the timeline start

    @property
    def count(self) -> int:
        return len(self.segments)


def iframes(video: Track, timeline: Timeline, container: str, context: PackagerContext) -> IFrames:
    """The I-frames of a video track, located from the planned layout of its video-only segments;
    derived once per track, timeline and container (model.memoized): the master playlist's peak
    I-frame bit rate and the I-frame playlist are both read from them.

    RFC 8216 4.3.3.6: a byte range must not include the Media Initialization Section, which is
    either EXT-X-MAP or the bytes from the start of the resource to its first I-frame.
    * TS: every key frame, exactly the TS packets of its PES; the PAT and PMT before the segment's
      first key frame are the initialization section.
    * fMP4: the key frame opening each fragment: the moof, the mdat header and that frame, the init
      segment given by EXT-X-MAP (a key frame inside a fragment cannot be addressed without its moof).
    """
    key = ("iframes", timeline, container, context.max_clip_frames)
    return memoized(video.memo, key, lambda: _located_iframes(video, timeline, container, context))


def _located_iframes(video: Track, timeline: Timeline, container: str, context: PackagerContext) -> IFrames:
    """iframes(), located a batch of segments at a time; the columns made read-only (shared)."""
    cuts = cut_indexes(video, timeline).tolist()
    if cuts[-1] == cuts[0]:  # no video frame in the clip
        return IFrames(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
    locate = _ts_iframes if container == MPEGTS else _fmp4_iframes
    found = [locate(video, timeline, cuts, first, last, context) for first, last in _batches(cuts)]
    columns = [np.concatenate([batch[n] for batch in found]).astype(np.int64) for n in range(4)]
    for column in columns:
        column.flags.writeable = False
    return IFrames(*columns)


def _batches(cuts: list[int]) -> list[tuple[int, int]]:
    """Runs of whole segments [first, last) (0-based) of at most BATCH_FRAMES frames each (or one
    segment, when it alone has more)."""
    runs, first = [], 0
    for segment in range(1, len(cuts) - 1):
        if cuts[segment + 1] - cuts[first] > BATCH_FRAMES:
            runs.append((first, segment))
            first = segment
    runs.append((first, len(cuts) - 1))
    return runs


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _ts_iframes(video: Track, timeline: Timeline, cuts: list[int], first: int, last: int,
                context: PackagerContext) -> Columns:
    frames = frames_by_index(video, timeline, cuts[first], cuts[last], context.max_clip_frames, located=False)
    local_cuts = [cut - cuts[first] for cut in cuts[first : last + 1]]
    segments = np.repeat(np.arange(first + 1, last + 1), np.diff(local_cuts))  # segment of each frame
    packets = mpegts.video_only_packets(frames, local_cuts)
    running = np.cumsum(packets) - packets  # packets before each frame, from the batch's start
    starts = mpegts.PSI_PACKETS + running - running[np.array(local_cuts[:-1])][segments - first - 1]
    keys = np.flatnonzero(frames.sync)
    size = mpegts.PACKET_SIZE
    return segments[keys], size * starts[keys], size * packets[keys], frames.pts[keys]


def _fmp4_iframes(video: Track, timeline: Timeline, cuts: list[int], first: int, last: int,
                  context: PackagerContext) -> Columns:
    frames = frames_by_index(video, timeline, cuts[first], cuts[last], context.max_clip_frames)
    rows = []
    for number in range(first + 1, last + 1):
        start, stop = cuts[number - 1] - cuts[first], cuts[number] - cuts[first]
        if stop > start and frames.sync[start]:
            head = len(fragment_plan(number, [frames.part(start, stop)]).head)
            rows.append((number, 0, head + int(frames.sizes[start]), int(frames.pts[start])))
    columns = np.array(rows, dtype=np.int64).reshape(-1, 4).T
    return columns[0], columns[1], columns[2], columns[3]


def _iframe_durations(entries: IFrames, video: Track, timeline: Timeline) -> np.ndarray:
    """Seconds from each I-frame to the next one (the last one: to the end of the timeline)."""
    end = rescale(timeline.end - timeline.zero, timeline.timescale, video.timescale)
    last = int(entries.times[-1]) if entries.count else 0
    return np.diff(entries.times, append=max(end, last)) / video.timescale


def _iframe_rendition(name: FileName, media: MediaSet) -> tuple[Movie, Track]:
    movie, tracks = choose_rendition(media, name)
    videos = [t for t in tracks if t.media_type is MediaType.VIDEO]
    if len(videos) != 1 or name.tracks.audio is not None:
        raise NotFound("an I-frame playlist addresses exactly one video track (iframes-v1.m3u8)")
    return movie, videos[0]


def iframes_playlist(name: FileName, media: MediaSet, context: PackagerContext) -> str:
    """An EXT-X-I-FRAMES-ONLY playlist over the video-only segments seg-N[-f1]-vK.(ts|m4s)."""
    if not context.hls_iframes_playlists or media.clips or context.encrypts("hls"):
        raise NotFound("no I-frame playlists: they are turned off (hls_iframes_playlists), the set is a "
                       "playlist, or segments are encrypted whole (byte ranges cannot address a frame)")
    movie, video = _iframe_rendition(name, media)
    timeline = movie_timeline(movie, context.segments, media.clip)
    container = choose_container((video,), context.hls_container)
    entries = iframes(video, timeline, container, context)
    if not entries.count:
        raise NotFound("no key frame in this clip")
    durations = _iframe_durations(entries, video, timeline)
    tokens = part_tokens(media, name.file_index or 1, movie, (video,))
    head = vod_playlist_head(IFRAMES_VERSION[container], [f"{d:.3f}" for d in (durations.max(),)])
    text = io.StringIO()
    text.write("\n".join([*head, "#EXT-X-I-FRAMES-ONLY"]) + "\n")
    extension = "ts"
    if container == FMP4:
        text.write(f'#EXT-X-MAP:URI="init-{tokens}.mp4"\n')
        extension = "m4s"
    for at in range(0, entries.count, LINES_AT_ONCE):
        window = slice(at, at + LINES_AT_ONCE)
        for segment, offset, length, duration in zip(
                entries.segments[window].tolist(), entries.offsets[window].tolist(),
                entries.lengths[window].tolist(), durations[window].tolist(), strict=True):
            text.write(f"#EXTINF:{duration:.3f},\n#EXT-X-BYTERANGE:{length}@{offset}\n"
                       f"seg-{segment}-{tokens}.{extension}\n")
    text.write("#EXT-X-ENDLIST\n")
    return text.getvalue()


def iframe_stream_infs(media: MediaSet, context: PackagerContext) -> list[str]:
    """One EXT-X-I-FRAME-STREAM-INF per video track; BANDWIDTH is the peak I-frame bit rate. A
    mapped playlist of clips has none (as in nginx-vod-module)."""
    lines: list[str] = []
    if media.clips or context.encrypts("hls"):
        return lines
    for file_number, movie in enumerate(media.movies, start=1):
        if not movie.tracks_of(MediaType.VIDEO):
            continue
        timeline = movie_timeline(movie, context.segments, media.clip)
        for video in movie.tracks_of(MediaType.VIDEO):
            container = choose_container((video,), context.hls_container)
            entries = iframes(video, timeline, container, context)
            if not entries.count:  # no key frame in the clip
                continue
            durations = _iframe_durations(entries, video, timeline)
            timed = durations > 0
            peak = float((entries.lengths[timed] * 8 / durations[timed]).max()) if timed.any() else 0.0
            tokens = part_tokens(media, file_number, movie, (video,))
            attributes = [f"BANDWIDTH={int(peak)}",
                          f"RESOLUTION={video.codec.width}x{video.codec.height}",
                          f'CODECS="{video.codec.codec_string}"', f'URI="iframes-{tokens}.m3u8"']
            lines.append("#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes))
    return lines
