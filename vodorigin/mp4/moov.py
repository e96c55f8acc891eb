"""Parse a moov box into a Movie (ISO/IEC 14496-12 8.2 - 8.7).

Tracks whose handler or codec we do not package are skipped with a reason, never fatal. Any
decoding fault below (struct, numpy, index errors on hostile input) surfaces as MediaError with
the file path, so bad media is a clear 4xx and never a 500.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from vodorigin.errors import LimitExceeded, MediaError
from vodorigin.media.model import MediaType, Movie, SourceIdentity, Track, key_times, presentation_end
from vodorigin.media.samples import SampleTable
from vodorigin.mp4.boxes import (
    Box,
    Moov,
    child_boxes,
    full_box_header,
    iter_boxes,
    read_box_header,
)
from vodorigin.mp4.codecs import parse_sample_entry
from vodorigin.mp4.names import elng_language, mdhd_language, track_label
from vodorigin.mp4.tables import RawTables, TableBounds, parse_sample_table

# text: 3GPP timed text and WebVTT (ISO/IEC 14496-30); sbtl: Apple's and ffmpeg's mov_text; subt: TTML
HANDLERS = {b"vide": MediaType.VIDEO, b"soun": MediaType.AUDIO, b"text": MediaType.SUBTITLE,
            b"sbtl": MediaType.SUBTITLE, b"subt": MediaType.SUBTITLE}
MAX_EDITS = 64  # edit list entries looked at (only leading empty edits and the first media edit count)
MAX_TIMESCALE = 2**31 - 1  # ticks per second; keeps every rescale inside 64-bit integers (timing.py)


@dataclass(frozen=True, slots=True)
class Limits:
    """Named bounds on untrusted metadata (see Settings and the README's limits).

    A file may describe at most `moov bytes + moov_sample_allowance` samples (and never more than
    max_samples_per_file): per-sample tables take at least four bytes of moov per sample, so only
    constant-size tables (CBR audio) use the allowance, and a few kilobytes of moov cannot make
    the parser allocate for millions of samples that exist only as a count.
    """

    max_tracks: int = 32
    max_samples_per_track: int = 4_000_000
    max_samples_per_file: int = 8_000_000
    moov_sample_allowance: int = 500_000
    max_frame_size: int = 32 * 1024 * 1024
    max_duration_seconds: int = 48 * 3600

    def sample_budget(self, moov_size: int) -> int:
        return min(self.max_samples_per_file, moov_size + self.moov_sample_allowance)


def parse_moov(moov: Moov, source: SourceIdentity, limits: Limits, timing_only: bool = False) -> Movie:
    """The bytes of a whole moov box -> Movie. `timing_only`: the moov is a skeleton
    (mp4/skeleton.py) whose sample sizes and chunk tables are zeros; the movie's tables then
    refuse to say where samples are (samples.unread_chunks)."""
    try:
        return _parse_moov(moov, source, limits, timing_only)
    except (struct.error, IndexError, ValueError, OverflowError) as exc:
        raise MediaError(f"{source.path}: corrupt moov ({exc})") from exc
    except MediaError as exc:
        raise type(exc)(f"{source.path}: {exc.message}") from exc


def _parse_moov(moov: Moov, source: SourceIdentity, limits: Limits, timing_only: bool) -> Movie:
    root = read_box_header(moov, 0, len(moov))
    if root is None or root.type != b"moov" or root.size != len(moov):
        raise MediaError("moov box is incomplete")
    children = list(iter_boxes(moov, root.payload_start, root.end, "moov"))
    mvhd = next((b for b in children if b.type == b"mvhd"), None)
    if mvhd is None:
        raise MediaError("moov has no mvhd")
    traks = [b for b in children if b.type == b"trak"]
    if len(traks) > limits.max_tracks:
        raise LimitExceeded(f"{len(traks)} tracks exceed max_tracks ({limits.max_tracks})")
    file = _File(_mvhd_timescale(moov, mvhd), limits, _SampleBudget(limits, len(moov), source.size),
                 source.path, timing_only, dict.fromkeys(MediaType, 0))
    tracks: list[Track] = []
    skipped: list[str] = []
    for trak in traks:
        parsed = _parse_trak(moov, trak, file)
        if isinstance(parsed, str):
            skipped.append(parsed)
            continue
        file.numbers[parsed.media_type] += 1
        tracks.append(parsed)
    if not tracks:
        raise MediaError("no playable track" + (f" ({'; '.join(skipped)})" if skipped else ""))
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise MediaError(f"two tracks share a track_ID ({ids})")
    return Movie(source, file.movie_timescale, tuple(tracks), tuple(skipped), moov_bytes=len(moov))


class _SampleBudget:
    """The samples the tracks of one file may still claim (Limits.sample_budget)."""

    def __init__(self, limits: Limits, moov_size: int, file_size: int) -> None:
        self.per_track = limits.max_samples_per_track
        self.remaining = limits.sample_budget(moov_size)
        self.file_size = file_size
        self.max_frame_size = limits.max_frame_size

    def bounds(self) -> TableBounds:
        if self.remaining < self.per_track:
            name = "the file's sample budget (moov bytes + moov_sample_allowance, <= max_samples_per_file)"
            return TableBounds(self.remaining, name, self.file_size, self.max_frame_size)
        return TableBounds(self.per_track, "max_samples_per_track", self.file_size, self.max_frame_size)

    def spend(self, count: int) -> None:
        self.remaining -= count


@dataclass(frozen=True, slots=True)
class _File:
    """What the traks of one file share while it is parsed."""

    movie_timescale: int
    limits: Limits
    budget: _SampleBudget
    path: str  # opens the message of a failure to derive a chunk map later (DeferredChunks)
    timing_only: bool  # a skeleton (parse_moov)
    numbers: dict[MediaType, int]  # the tracks of each media type so far


def _mvhd_timescale(moov: Moov, mvhd: Box) -> int:
    version, _ = full_box_header(moov, mvhd)
    offset = mvhd.payload_start + (20 if version == 1 else 12)
    return _checked_timescale(struct.unpack_from(">I", moov, offset)[0], "mvhd")


def _checked_timescale(timescale: int, box: str) -> int:
    if not 0 < timescale <= MAX_TIMESCALE:
        raise MediaError(f"{box}: timescale {timescale} is out of range (1..{MAX_TIMESCALE})")
    return timescale


def _parse_trak(moov: Moov, trak: Box, file: _File) -> Track | str:
    """One trak -> a Track, numbered after the file's tracks of its type so far, or the reason
    it is skipped."""
    boxes = child_boxes(moov, trak, "trak")
    tkhd, mdia = boxes.get(b"tkhd"), boxes.get(b"mdia")
    if tkhd is None or mdia is None:
        raise MediaError("trak without tkhd or mdia")
    version, _ = full_box_header(moov, tkhd)
    track_id = struct.unpack_from(">I", moov, tkhd.payload_start + (20 if version == 1 else 12))[0]
    if track_id == 0:
        raise MediaError("tkhd: track_ID 0 is not allowed (ISO/IEC 14496-12 8.3.2.3)")
    mdia_boxes = child_boxes(moov, mdia, "mdia")
    hdlr, mdhd = mdia_boxes.get(b"hdlr"), mdia_boxes.get(b"mdhd")
    if hdlr is None or mdhd is None:
        raise MediaError(f"track {track_id}: mdia without hdlr or mdhd")
    handler = moov[hdlr.payload_start + 8 : hdlr.payload_start + 12]
    media_type = HANDLERS.get(handler)
    if media_type is None:
        return f"track {track_id}: handler {handler.decode('latin-1')!r} not packaged"
    timescale, language = _mdhd(moov, mdhd)
    if (elng := mdia_boxes.get(b"elng")) is not None:
        language = elng_language(moov, elng) or language
    minf = mdia_boxes.get(b"minf")
    stbl = child_boxes(moov, minf).get(b"stbl") if minf is not None else None
    if stbl is None:
        raise MediaError(f"track {track_id}: no stbl")
    stbl_boxes = child_boxes(moov, stbl, "stbl")
    codec = parse_sample_entry(_first_sample_entry(moov, stbl_boxes.get(b"stsd")), media_type)
    if codec is None:
        return f"track {track_id}: codec not supported"
    try:
        samples = parse_sample_table(_raw_tables(moov, stbl_boxes, media_type), file.budget.bounds(),
                                     f"{file.path}: track {track_id}", file.timing_only)
    except MediaError as error:
        raise type(error)(f"track {track_id}: {error.message}") from error
    file.budget.spend(samples.count)
    if samples.count == 0:
        return f"track {track_id}: no samples"
    edts = boxes.get(b"edts")
    shift = _edit_shift(moov, edts, file.movie_timescale, timescale) if edts else 0
    end, keys = _timing(track_id, media_type, timescale, samples, shift, file.limits)
    return Track(track_id, file.numbers[media_type] + 1, media_type, timescale, codec, samples, language,
                 shift, end, keys, label=track_label(moov, boxes.get(b"udta"), hdlr))


def _timing(track_id: int, media_type: MediaType, timescale: int, samples: SampleTable, edit_shift: int,
            limits: Limits) -> tuple[int, np.ndarray | None]:
    """A track's presentation end and key times, once its values are checked to be sane (frame
    sizes are, by parse_sample_table): a duration, composition offsets and an edit shift within
    the limits, key frames in a video track."""
    longest = limits.max_duration_seconds * timescale
    offsets = samples.composition_offsets
    if samples.end_dts > longest or abs(edit_shift) > longest or \
            (offsets is not None and int(np.abs(offsets).max()) > longest):
        raise LimitExceeded(f"track {track_id}: times beyond max_duration_seconds "
                            f"({limits.max_duration_seconds} s)")
    keys = None
    if media_type is MediaType.VIDEO:
        keys = key_times(samples, edit_shift)
        if not len(keys):
            raise MediaError(f"track {track_id}: a video track without any sync sample (empty stss)")
    return presentation_end(samples, edit_shift), keys


def _mdhd(moov: Moov, mdhd: Box) -> tuple[int, str]:
    """(timescale, language as a BCP 47 tag) from mdhd (8.4.2)."""
    version, _ = full_box_header(moov, mdhd)
    offset = mdhd.payload_start + (20 if version == 1 else 12)
    timescale = _checked_timescale(struct.unpack_from(">I", moov, offset)[0], "mdhd")
    packed = struct.unpack_from(">H", moov, offset + (12 if version == 1 else 8))[0]
    return timescale, mdhd_language(packed)


def _first_sample_entry(moov: Moov, stsd: Box | None) -> bytes:
    if stsd is None:
        raise MediaError("stbl has no stsd")
    entries = list(iter_boxes(moov, stsd.payload_start + 8, stsd.end, "stsd"))
    if not entries:
        raise MediaError("stsd has no sample entry")
    return moov[entries[0].start : entries[0].end]


def _payload(moov: Moov, box: Box) -> memoryview:
    """A full box's payload after its version and flags (a view: a sample table's are megabytes)."""
    return memoryview(moov)[box.payload_start + 4 : box.end]


def _raw_tables(moov: Moov, boxes: dict[bytes, Box], media_type: MediaType) -> RawTables:
    """The table payloads. An audio track's stss is ignored: every audio frame of the codecs we
    package is a sync sample, and one that said otherwise would only mislabel fragments."""
    stts, stsc = boxes.get(b"stts"), boxes.get(b"stsc")
    sizes = boxes.get(b"stsz") or boxes.get(b"stz2")
    offsets = boxes.get(b"stco") or boxes.get(b"co64")
    if stts is None or stsc is None or sizes is None or offsets is None:
        raise MediaError("stbl lacks one of stts, stsc, stsz/stz2, stco/co64")
    ctts = boxes.get(b"ctts")
    stss = boxes.get(b"stss") if media_type is MediaType.VIDEO else None
    return RawTables(
        stts=_payload(moov, stts),
        stsz=_payload(moov, sizes),
        stsc=_payload(moov, stsc),
        chunk_offsets=_payload(moov, offsets),
        chunk_offsets_64bit=offsets.type == b"co64",
        ctts=_payload(moov, ctts) if ctts else None,
        ctts_version=full_box_header(moov, ctts)[0] if ctts else 0,
        stss=_payload(moov, stss) if stss else None,
        compact_sizes=sizes.type == b"stz2",
    )


def _edit_shift(moov: Moov, edts: Box, movie_timescale: int, timescale: int) -> int:
    """Edit list (8.6.6) -> ticks to add to media times for presentation times.

    Leading empty edits delay the track; the first real edit's media_time is where presentation
    starts. Later edits (rare outside editing tools) are not applied; see README known limits.
    Only the first MAX_EDITS entries are looked at, so a long list of empty edits costs nothing.
    """
    elst = child_boxes(moov, edts, "edts").get(b"elst")
    if elst is None:
        return 0
    version, _ = full_box_header(moov, elst)
    entry = struct.Struct(">QqI" if version == 1 else ">IiI")
    count = struct.unpack_from(">I", moov, elst.payload_start + 4)[0]
    if count * entry.size > elst.end - elst.payload_start - 8:
        raise MediaError("elst: entries overrun the box")
    delay = 0
    for index in range(min(count, MAX_EDITS)):
        duration, media_time, _ = entry.unpack_from(moov, elst.payload_start + 8 + index * entry.size)
        if media_time == -1:
            delay += duration
            continue
        if media_time < 0:  # -1 (an empty edit) is the only negative value 8.6.6 allows
            raise MediaError(f"elst: media_time {media_time}")
        return delay * timescale // movie_timescale - media_time
    return 0
