"""What several packagers share: choosing a rendition, bit rates from size bounds, frame rates."""

from __future__ import annotations

import numpy as np

from vodorigin.errors import NotFound
from vodorigin.media.frames import cut_indexes
from vodorigin.media.model import MediaSet, MediaType, Movie, Track, memoized, select_tracks
from vodorigin.media.segmenter import Timeline
from vodorigin.mux import fmp4, mpegts
from vodorigin.urls import FileName

MPEGTS, FMP4 = "mpegts", "fmp4"
TS_TYPE = "video/MP2T"


def mp4_type(tracks: tuple[Track, ...]) -> str:
    """Content type of fMP4 init segments and fragments: audio/mp4 when there is no video."""
    return "video/mp4" if any(t.media_type is MediaType.VIDEO for t in tracks) else "audio/mp4"


def choose_rendition(media: MediaSet, name: FileName) -> tuple[Movie, tuple[Track, ...]]:
    """The file (f<n> or a mapped sequence's s<id>, default the first) and tracks (default v1 + a1)
    a file name addresses."""
    movie = _movie(media, name)
    tracks = select_tracks(movie.tracks, name.tracks, default_first=True)
    if not tracks:
        raise NotFound("no such track")
    return movie, tracks


def has_samples(track: Track, timeline: Timeline) -> bool:
    """Whether any sample of the track falls in the timeline (a clip may miss a shorter track)."""
    cuts = cut_indexes(track, timeline)
    return int(cuts[-1]) > int(cuts[0])


def _movie(media: MediaSet, name: FileName) -> Movie:
    if name.sequence_id is not None:
        found = [m for m in media.movies if m.sequence_id == name.sequence_id]
        if not found:
            raise NotFound(f"no sequence {name.sequence_id!r} in this media set")
        return found[0]
    index = name.file_index or 1
    if index > len(media.movies):
        raise NotFound(f"file f{index} is not in the set (it has {len(media.movies)})")
    return media.movies[index - 1]


def segment_bitrates(tracks: tuple[Track, ...], timeline: Timeline, container: str, padding: int = 0
                     ) -> tuple[int, int]:
    """(peak, average) bits per second of the segments, from their sizes computed from the sample
    tables (plus `padding` bytes each: HLS AES-128 adds up to 16).

    RFC 8216 4.3.4.2: BANDWIDTH is the peak segment bit rate; AVERAGE-BANDWIDTH the average. TS
    sizes are the muxer's layout (mpegts.segment_packets: exact for video and constant-duration
    audio); fMP4 sizes are the payload plus the moof, exact to a few bytes.
    """
    sizes = np.zeros(timeline.count, dtype=np.int64)
    frame_counts = np.zeros(timeline.count, dtype=np.int64)
    pcr = next((i for i, t in enumerate(tracks) if t.media_type is MediaType.VIDEO), 0)
    for index, track in enumerate(tracks):
        sizes += _segment_bytes(track, timeline, container, index == pcr)
        frame_counts += np.diff(cut_indexes(track, timeline))
    if container == MPEGTS:
        sizes += mpegts.PSI_PACKETS * mpegts.PACKET_SIZE
    else:
        sizes = fmp4.fragment_size_bound(sizes, frame_counts, len(tracks))
    bits = (sizes + padding) * 8
    seconds = np.diff(timeline.cuts) / timeline.timescale
    valid = seconds > 0
    if not valid.any():
        return 0, 0
    return int(np.max(bits[valid] / seconds[valid])), int(bits[valid].sum() / seconds[valid].sum())


def _segment_bytes(track: Track, timeline: Timeline, container: str, carries_pcr: bool) -> np.ndarray:
    """One track's bytes in each segment (TS packets, or the fMP4 payload), derived once per track,
    timeline and layout (model.memoized): a pass over the track's samples."""
    carries_pcr = carries_pcr and container == MPEGTS

    def derive() -> np.ndarray:
        cuts = cut_indexes(track, timeline)
        if container == MPEGTS:
            sizes = mpegts.segment_packets(track, cuts, carries_pcr) * mpegts.PACKET_SIZE
        else:
            running = np.concatenate(([0], np.cumsum(track.samples.sizes.astype(np.int64))))
            sizes = running[cuts[1:]] - running[cuts[:-1]]
        sizes.flags.writeable = False
        return sizes

    return memoized(track.memo, ("segment bytes", timeline, container, carries_pcr), derive)


def frame_rate(track: Track) -> float:
    """Frames per second from the median frame duration (robust to a short last frame)."""
    median = track.samples.decode_times.median_duration()
    return track.timescale / median if median > 0 else 0.0
