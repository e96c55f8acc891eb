"""Progressive download: the source file as it is, or a clip of it (clipFrom/clipTo).

A clip is a new, self-contained MP4: ftyp + a moov describing only the clip's samples + one mdat
whose payload is a single byte range of the source, from the first byte of the first kept sample
to the last byte of the last. Bytes in between that belong to no kept sample stay as they are and
are simply not referenced (one range read, no re-interleaving). Video starts on a key frame.
"""

from __future__ import annotations

import posixpath

import numpy as np

from vodorigin.errors import BadRequest
from vodorigin.media.frames import ByteRange, frames_between
from vodorigin.media.model import MediaSet, MediaType, SourceIdentity, Track
from vodorigin.media.segmenter import Timeline, movie_timeline
from vodorigin.mp4 import write
from vodorigin.packagers.output import FileParts, PackagerContext
from vodorigin.timing import rescale

CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".m4a": "audio/mp4", ".mov": "video/quicktime",
                 ".mp3": "audio/mpeg"}
MOVIE_TIMESCALE = 1000


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(posixpath.splitext(path)[1].lower(), "application/octet-stream")


def whole_file(source: SourceIdentity) -> FileParts:
    return FileParts(content_type(source.path), source, (ByteRange(0, source.size),))


def clipped_file(media: MediaSet, context: PackagerContext) -> FileParts:
    """The clip of media.movies[0] selected by media.clip, as a new MP4."""
    movie = media.movies[0]
    timeline = movie_timeline(movie, context.segments, media.clip)
    tracks = [t for t in movie.tracks if t.media_type is not MediaType.SUBTITLE]  # subtitles: not in clips
    spans = [_TrackSpan(t, timeline, context.max_clip_frames) for t in tracks]
    spans = [s for s in spans if s.count]
    if not spans:
        raise BadRequest("the clip holds no samples")
    low = min(s.low for s in spans)
    high = max(s.high for s in spans)
    duration = rescale(timeline.end - timeline.start, timeline.timescale, MOVIE_TIMESCALE)
    probe = _moov(spans, duration, 0, low)
    mdat_header = write.mdat_header(high - low)
    head = write.ftyp()
    base = len(head) + len(probe) + len(mdat_header)
    head += _moov(spans, duration, base, low) + mdat_header
    return FileParts(content_type(movie.source.path), movie.source, (head, ByteRange(low, high - low)))


class _TrackSpan:
    """One track's samples inside the clip (frames_between), and where they sit in the source."""

    def __init__(self, track: Track, timeline: Timeline, max_frames: int) -> None:
        self.track = track
        self.frames = frames_between(track, timeline, timeline.start, timeline.end, max_frames)
        frames = self.frames
        self.low = int(frames.offsets.min()) if frames.count else 0
        self.high = int((frames.offsets + frames.sizes).max()) if frames.count else 0
        # frames.dts count from the clip start: the first frame's is where presentation starts
        self.media_time = -int(frames.dts[0]) if frames.count else 0

    @property
    def count(self) -> int:
        return self.frames.count

    def edits(self) -> list[tuple[int, int]]:
        """Edit list entries (movie timescale) putting the clip start at presentation time 0."""
        total = int(self.frames.durations.sum())
        if self.media_time >= 0:
            shown = max(total - self.media_time, 0)
            return [(rescale(shown, self.track.timescale, MOVIE_TIMESCALE), self.media_time)]
        delay = rescale(-self.media_time, self.track.timescale, MOVIE_TIMESCALE)
        return [(delay, -1), (rescale(total, self.track.timescale, MOVIE_TIMESCALE), 0)]

    def trak(self, base: int, low: int) -> bytes:
        track, frames = self.track, self.frames
        audio = track.media_type is MediaType.AUDIO
        edits = self.edits()
        table = [write.stsd(track.codec.sample_entry), write.stts(frames.durations)]
        if track.samples.composition_offsets is not None:
            table.append(write.ctts(frames.pts - frames.dts))
        if track.samples.sync is not None:
            table.append(write.stss(np.nonzero(frames.sync)[0] + 1))
        table += [write.stsz(frames.sizes), write.stsc_one_sample_per_chunk(),
                  write.chunk_offsets(frames.offsets - low + base)]
        media = write.box(
            b"mdia",
            write.mdhd(track.timescale, int(frames.durations.sum()), track.language),
            write.hdlr(b"soun" if audio else b"vide", "SoundHandler" if audio else "VideoHandler"),
            write.box(b"minf", write.media_header(audio), write.dinf(), write.box(b"stbl", *table)),
        )
        return write.box(
            b"trak",
            write.tkhd(track.track_id, sum(d for d, _ in edits), track.codec.width, track.codec.height,
                       audio),
            write.elst(edits),
            media,
        )


def _moov(spans: list[_TrackSpan], duration: int, base: int, low: int) -> bytes:
    next_id = write.next_track_id(s.track.track_id for s in spans)
    return write.box(b"moov", write.mvhd(MOVIE_TIMESCALE, duration, next_id),
                     *(s.trak(base, low) for s in spans))
