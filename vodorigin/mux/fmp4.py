"""Fragmented MP4 (ISO/IEC 14496-12 8.8): init segments and media fragments (moof + mdat).

One muxer for DASH, HLS fMP4 (CMAF) and Smooth Streaming. As with TS, a fragment is planned
from metadata alone: the moof is built completely (sizes, durations, flags, composition offsets and
data offsets are all known), so the size is exact before any media byte is read, and writing only
appends the frames.

Timestamps: the caller gives each track a `decode_offset` (ticks added to the frames' decode
times). Using one presentation offset for the whole set keeps B-frame and AAC-priming decode times
non-negative without negative composition offsets, and keeps the tracks in sync.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from vodorigin.drm import cenc
from vodorigin.drm.cenc import SampleAux
from vodorigin.errors import LimitExceeded
from vodorigin.media.frames import TrackFrames
from vodorigin.media.model import MediaType, Track
from vodorigin.mp4 import write

TFHD_DEFAULT_BASE_IS_MOOF = 0x020000  # 8.8.7.1: data offsets are relative to the moof
TFHD_SAMPLE_DESCRIPTION = 0x000002  # 8.8.7.1: sample-description-index-present
TRUN_DATA_OFFSET = 0x000001
TRUN_DURATION = 0x000100
TRUN_SIZE = 0x000200
TRUN_FLAGS = 0x000400
TRUN_COMPOSITION_OFFSET = 0x000800
SYNC_SAMPLE_FLAGS = 0x02000000  # sample_depends_on = 2 (depends on no other sample)
NON_SYNC_SAMPLE_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1
BRANDS = (b"iso6", b"cmfc", b"mp41", b"dash")


def init_segment(tracks: list[Track], moov_extra: bytes = b"", second_entries: tuple[bytes, ...] = ()
                 ) -> bytes:
    """ftyp + moov with empty sample tables and mvex/trex (8.8.1, 8.8.3); moov_extra ends the moov
    (the pssh boxes of an encrypted stream, ISO/IEC 23001-7 8.1); second_entries[i], when given,
    is tracks[i]'s second sample entry (the clear one of an encrypted track with a clear lead)."""
    traks = [_init_trak(track, second) for track, second in
             zip(tracks, second_entries or (b"",) * len(tracks), strict=True)]
    trexes = [write.full_box(b"trex", 0, 0, struct.pack(">IIIII", t.track_id, 1, 0, 0, 0)) for t in tracks]
    moov = write.box(b"moov", write.mvhd(1000, 0, write.next_track_id(t.track_id for t in tracks)), *traks,
                     write.box(b"mvex", *trexes), moov_extra)
    return write.ftyp(b"iso6", 0, BRANDS) + moov


def handler_type(track: Track) -> bytes:
    """vide, soun, or for subtitles text (WebVTT) or subt (TTML, 'stpp')."""
    if track.media_type is MediaType.SUBTITLE:
        return b"subt" if track.codec.fourcc == "stpp" else b"text"
    return b"soun" if track.media_type is MediaType.AUDIO else b"vide"


def _init_trak(track: Track, second_entry: bytes = b"") -> bytes:
    audio = track.media_type is MediaType.AUDIO
    handler, media_header = write.handler_and_header(handler_type(track))
    empty = struct.pack(">I", 0)
    entries = (track.codec.sample_entry, second_entry) if second_entry else (track.codec.sample_entry,)
    stbl = write.box(
        b"stbl", write.stsd(*entries), write.full_box(b"stts", 0, 0, empty),
        write.full_box(b"stsc", 0, 0, empty), write.full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        write.full_box(b"stco", 0, 0, empty),
    )
    media = write.box(b"mdia", write.mdhd(track.timescale, 0, track.language), handler,
                      write.box(b"minf", media_header, write.dinf(), stbl))
    tkhd = write.tkhd(track.track_id, 0, track.codec.width, track.codec.height, audio)
    return write.box(b"trak", tkhd, media)


@dataclass(frozen=True, slots=True)
class FragmentTrack:
    """One track's frames in a fragment, the ticks to add to their decode times, boxes to add to
    its traf after the trun (Smooth Streaming's tfxd, which also replaces the tfdt there), and for
    an encrypted track each sample's auxiliary information (saiz, saio, senc: drm/cenc.py)."""

    frames: TrackFrames
    decode_offset: int = 0
    traf_extra: bytes = b""
    decode_time_box: bool = True  # tfdt
    encryption: list[SampleAux] | None = None
    piff: bool = False  # the encryption's senc as PIFF's uuid box (Smooth Streaming)
    sample_description: int = 1  # the stsd entry its samples use (2: the clear one of a clear lead)

@dataclass(frozen=True, slots=True, eq=False)
class FragmentPlan:
    """A fragment whose moof is complete: writing appends the mdat header and the frames."""

    head: bytes  # [styp] + moof + mdat header
    tracks: tuple[FragmentTrack, ...]
    size: int


def plan_fragment(sequence_number: int, tracks: list[FragmentTrack], segment_type: bool = False,
                  segment_index: bool = False) -> FragmentPlan:
    """Plan a fragment of one or more tracks (one traf each, data in track order in one mdat).

    segment_type adds an styp; segment_index a sidx indexing the fragment (one-track fragments).
    """
    styp = write.box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh", b"msix") if segment_type else b""
    data_sizes = [int(t.frames.sizes.sum()) for t in tracks]
    moof = _moof(sequence_number, tracks, data_sizes, 0)  # the moof's size does not depend on offsets
    moof = _moof(sequence_number, tracks, data_sizes, len(moof))
    payload = sum(data_sizes)
    mdat_header = write.mdat_header(payload)
    sidx = _sidx(tracks, len(moof) + len(mdat_header) + payload) if segment_index else b""
    head = styp + sidx + moof + mdat_header
    return FragmentPlan(head, tuple(tracks), len(head) + payload)


def _sidx(tracks: list[FragmentTrack], referenced_size: int) -> bytes:
    """A SegmentIndexBox (8.16.3, version 1) with one reference: the moof + mdat that follow it."""
    if len(tracks) != 1:
        raise ValueError("a segment index is written for one-track fragments")
    frames = tracks[0].frames
    timescale = frames.track.timescale
    earliest = (int(frames.pts.min()) if frames.count else 0) + tracks[0].decode_offset
    duration = int(frames.durations.sum())
    if duration > 0xFFFFFFFF:
        raise LimitExceeded(f"{frames.track.key}: a fragment of {duration} ticks is too long for a sidx")
    starts_with_sap = bool(frames.count) and bool(frames.sync[0])
    sap = (1 << 31 | 1 << 28) if starts_with_sap else 0  # starts_with_SAP, SAP_type 1, delta 0
    body = struct.pack(">IIQQHHIII", frames.track.track_id, timescale, max(earliest, 0), 0, 0, 1,
                       referenced_size & 0x7FFFFFFF, duration, sap)
    return write.full_box(b"sidx", 1, 0, body)


def _moof(sequence_number: int, tracks: list[FragmentTrack], data_sizes: list[int], moof_size: int) -> bytes:
    mfhd = write.full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
    mdat_header = len(write.mdat_header(sum(data_sizes)))
    offset = moof_size + mdat_header  # default-base-is-moof: offsets count from the moof's first byte
    position = 8 + len(mfhd)  # where the next traf starts in the moof
    trafs = []
    for track, size in zip(tracks, data_sizes, strict=True):
        trafs.append(_traf(track, offset, position))
        offset += size
        position += len(trafs[-1])
    return write.box(b"moof", mfhd, *trafs)


def _traf(fragment: FragmentTrack, data_offset: int, position: int = 0) -> bytes:
    """tfhd (8.8.7) + tfdt (8.8.12, 64-bit) + trun (8.8.8, version 1: signed composition offsets)."""
    frames = fragment.frames
    track_id = frames.track.track_id
    if fragment.sample_description == 1:
        tfhd = write.full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, struct.pack(">I", track_id))
    else:  # sample-description-index-present (8.8.7.1)
        tfhd = write.full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF | TFHD_SAMPLE_DESCRIPTION,
                              struct.pack(">II", track_id, fragment.sample_description))
    base_time = (int(frames.dts[0]) if frames.count else 0) + fragment.decode_offset
    tfdt = write.full_box(b"tfdt", 1, 0, struct.pack(">Q", max(base_time, 0)))
    flags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_COMPOSITION_OFFSET
    table = np.empty((frames.count, 4), dtype=">u4")
    table[:, 0] = frames.durations
    table[:, 1] = frames.sizes
    table[:, 2] = np.where(frames.sync, SYNC_SAMPLE_FLAGS, NON_SYNC_SAMPLE_FLAGS)
    table[:, 3] = (frames.pts - frames.dts).astype(np.int64) & 0xFFFFFFFF  # signed, two's complement
    trun = write.full_box(b"trun", 1, flags, struct.pack(">Ii", frames.count, data_offset), table.tobytes())
    boxes = [tfhd, tfdt if fragment.decode_time_box else b"", trun, fragment.traf_extra]
    if fragment.encryption is not None:
        boxes.append(cenc.traf_boxes(fragment.encryption, position + 8 + sum(len(b) for b in boxes),
                                     fragment.piff))
    return write.box(b"traf", *boxes)


def write_fragment(plan: FragmentPlan, frame_bytes: list[list[memoryview]]) -> bytes:
    """The fragment's bytes; frame_bytes[i] holds the bytes of plan.tracks[i]'s frames in decode
    order, in pieces of any size (SourceBytes.frame_runs joins neighbours)."""
    return b"".join([plan.head, *(view for views in frame_bytes for view in views)])


# --- size bounds for manifests -----------------------------------------------------------------

TRUN_ENTRY_SIZE = 16  # duration, size, flags, composition offset
FRAGMENT_HEADER_BOUND = 16 + 24 + 16  # mdat header (64-bit), moof header, mfhd
TRAF_HEADER_BOUND = 8 + 16 + 20 + 20  # traf header, tfhd, tfdt (64-bit), trun header


def fragment_size_bound(payload: np.ndarray, frames: np.ndarray, tracks: int) -> np.ndarray:
    """Upper bounds of fragment sizes (no styp) from payload bytes and frame counts per fragment."""
    return payload + TRUN_ENTRY_SIZE * frames + FRAGMENT_HEADER_BOUND + TRAF_HEADER_BOUND * tracks
