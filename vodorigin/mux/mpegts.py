"""MPEG-2 transport stream segments for HLS (ISO/IEC 13818-1; RFC 8216 3.2).

A segment is first planned from metadata alone (`plan_segment`): the PES units, how many 188-byte
packets each takes, and so the exact byte size. Writing (`ts_write.write_segment`) then needs
only the frames' bytes. Each segment begins with a PAT and a PMT.

Continuity counters (13818-1 2.4.3.3) are derived from the segment number, never carried over from
another request: PAT/PMT count `number mod 16`, and each elementary stream starts at 0 and is padded
to a multiple of 16 packets by spreading the last bytes of a PES over extra packets (one payload
byte and adaptation-field stuffing each). Consecutive segments are thus continuous however they
are built, which is what nginx-vod-module does too.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vodorigin.errors import UnsupportedMedia
from vodorigin.media.frames import TrackFrames
from vodorigin.media.languages import UNDETERMINED, iso639_2
from vodorigin.media.model import CodecInfo, MediaType, Track
from vodorigin.mp4.codecs import parse_audio_specific_config
from vodorigin.mux import ts_kernel
from vodorigin.mux.adts import ADTS_HEADER_SIZE, MAX_FRAME_LENGTH
from vodorigin.mux.annexb import AnnexBPrefix
from vodorigin.timing import MPEG_TS_CLOCK, PRESENTATION_DELAY_MS, rescale_array

PACKET_SIZE = 188
PACKET_PAYLOAD = 184
PAT_PID = 0x0000
PMT_PID = 0x1000
FIRST_ES_PID = 0x0100
PROGRAM_NUMBER = 1
TIMESTAMP_OFFSET = PRESENTATION_DELAY_MS * MPEG_TS_CLOCK // 1000  # keeps early B-frame dts positive
PCR_LEAD = 9_000  # PCR runs 100 ms ahead of the dts of the PES it is sent with
TIMESTAMP_MASK = (1 << 33) - 1  # PTS/DTS/PCR base are 33-bit
AUDIO_PES_MAX_DURATION_MS = 100  # frames grouped per audio PES: a PCR at least every 100 ms
AUDIO_PES_MAX_BYTES = 60_000  # PES_packet_length must fit 16 bits
CC_PADDING_SEARCH = 40  # extra packets tried to align a stream's packet count on 16
PSI_PACKETS = 2  # PAT + PMT open every segment
PES_HEADER_PTS, PES_HEADER_PTS_DTS = 14, 19  # PES header bytes with PTS only, with PTS and DTS
PCR_ADAPTATION_FIELD, RAP_ADAPTATION_FIELD = 8, 2  # adaptation field bytes: with a PCR, flags only


IntSequence = Sequence[int] | np.ndarray


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """How one codec is carried: PMT stream_type (13818-1 Table 2-34) and PES stream_id, and the
    PMT descriptors its stream needs besides the language (SAMPLE-AES)."""

    stream_type: int
    stream_id: int
    descriptors: bytes = b""

    @property
    def adts(self) -> bool:
        """AAC, which TS carries with an ADTS header before each frame (clear or SAMPLE-AES)."""
        return self.stream_type in (0x0F, 0xCF)


H264 = StreamFormat(0x1B, 0xE0)
HEVC = StreamFormat(0x24, 0xE0)
MP3 = StreamFormat(0x03, 0xC0)  # MPEG-1 audio layer III
AAC = StreamFormat(0x0F, 0xC0)  # in ADTS
AC3 = StreamFormat(0x81, 0xBD)  # ATSC AC-3, private stream 1
EAC3 = StreamFormat(0x87, 0xBD)  # ATSC E-AC-3


def stream_format(codec: CodecInfo, sample_aes: bool = False) -> StreamFormat:
    if sample_aes:
        return _sample_aes_format(codec)
    if codec.fourcc in ("avc1", "avc3"):
        return H264
    if codec.fourcc in ("hvc1", "hev1"):
        return HEVC
    if codec.codec_string.startswith("mp4a.40.34"):
        return MP3
    if codec.fourcc == "mp4a":
        return AAC
    if codec.fourcc == "ac-3":
        return AC3
    if codec.fourcc == "ec-3":
        return EAC3
    raise UnsupportedMedia(f"{codec.codec_string} cannot be carried in MPEG-TS; use fMP4")


def _sample_aes_format(codec: CodecInfo) -> StreamFormat:
    """SAMPLE-AES streams (Apple's MPEG-2 Stream Encryption Format, 2.3 and 2.4): their own stream
    types, a private_data_indicator_descriptor, and for audio a registration descriptor 'apad'
    with the audio setup information (as nginx-vod-module writes them; drm/sample_aes.py)."""
    if codec.fourcc in ("avc1", "avc3"):
        return StreamFormat(0xDB, 0xE0, _private_data(b"zavc"))
    if codec.fourcc == "mp4a" and not codec.codec_string.startswith("mp4a.40.34"):
        object_type = parse_audio_specific_config(codec.decoder_config).object_type
        kind = {5: b"zach", 29: b"zacp"}.get(object_type, b"zaac")  # HE-AAC, HE-AAC v2, else AAC
        return StreamFormat(0xCF, 0xC0, _private_data(b"aacd") + _audio_setup(kind, codec.decoder_config))
    if codec.fourcc == "ac-3":
        magic = b"\x0b\x77" + bytes(8)  # an AC-3 syncword, what players need of the setup data
        return StreamFormat(0xC1, 0xBD, _private_data(b"ac3d") + _audio_setup(b"zac3", magic))
    raise UnsupportedMedia(f"SAMPLE-AES in MPEG-TS carries H.264, AAC and AC-3, not {codec.codec_string}")


def _private_data(indicator: bytes) -> bytes:
    return bytes((0x0F, 4)) + indicator  # private_data_indicator_descriptor (13818-1 2.6.29)


def _audio_setup(kind: bytes, setup: bytes) -> bytes:
    """registration_descriptor 'apad' with audio_setup_information: type, priming 0, version 1,
    setup data (the AudioSpecificConfig)."""
    body = b"apad" + kind + b"\x00\x00\x01" + bytes((len(setup),)) + setup
    return bytes((0x05, len(body))) + body


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """One elementary stream of the segment."""

    pid: int
    format: StreamFormat
    frames: TrackFrames


@dataclass(frozen=True, slots=True)
class PesPlan:
    """One PES packet: which frames, its timestamps, and how it is laid out in TS packets (a row
    of PesTable, for readers that take one PES at a time)."""

    stream: int  # index into TsPlan.streams
    frame_start: int
    frame_stop: int
    pts: int  # 90 kHz with TIMESTAMP_OFFSET
    dts: int
    header_size: int
    es_size: int
    first_af: int  # adaptation field bytes in the first packet (PCR / random access), 0 if none
    pcr: int | None
    random_access: bool
    extra_packets: int  # continuity padding: packets carrying one payload byte each
    packets: int  # TS packets


PES_COLUMNS = ("stream", "frame_start", "frame_stop", "pts", "dts", "header_size", "es_size", "first_af",
               "pcr", "random_access", "extra_packets", "packets")


@dataclass(frozen=True, slots=True, eq=False)
class PesTable:
    """The segment's PES packets in the order they are sent: `columns` holds one int64 row per
    field of PesPlan (PES_COLUMNS; pcr -1 where there is none, random_access 0 or 1) and one
    column per PES. A segment's few hundred PES are planned in one C call or with numpy, not one
    Python object each."""

    columns: np.ndarray

    def __len__(self) -> int:
        return int(self.columns.shape[1])

    stream = property(lambda self: self.columns[0])
    frame_start = property(lambda self: self.columns[1])
    frame_stop = property(lambda self: self.columns[2])
    pts = property(lambda self: self.columns[3])
    dts = property(lambda self: self.columns[4])
    header_size = property(lambda self: self.columns[5])
    es_size = property(lambda self: self.columns[6])
    first_af = property(lambda self: self.columns[7])
    pcr = property(lambda self: self.columns[8])
    random_access = property(lambda self: self.columns[9])
    extra_packets = property(lambda self: self.columns[10])
    packets = property(lambda self: self.columns[11])

    def rows(self) -> tuple[PesPlan, ...]:
        return tuple(PesPlan(stream, start, stop, pts, dts, header, es, af, None if pcr < 0 else pcr,
                             bool(random_access), extra, packets)
                     for stream, start, stop, pts, dts, header, es, af, pcr, random_access, extra, packets
                     in zip(*self.columns.tolist(), strict=True))


@dataclass(frozen=True, slots=True)
class TsPlan:
    number: int
    streams: tuple[StreamPlan, ...]
    table: PesTable
    pcr_pid: int

    @property
    def pes(self) -> tuple[PesPlan, ...]:
        """The PES one by one (the reference writer in the tests reads them so)."""
        return self.table.rows()

    @property
    def packet_count(self) -> int:
        return PSI_PACKETS + int(self.table.packets.sum())

    @property
    def size(self) -> int:
        return PACKET_SIZE * self.packet_count


def pes_packet_count(size: int, first_af: int) -> int:
    """TS packets for a PES of `size` bytes whose first packet has `first_af` adaptation bytes."""
    first_room = PACKET_PAYLOAD - first_af
    return 1 + max(0, -(-(size - first_room) // PACKET_PAYLOAD))


def to_90khz(ticks: np.ndarray, timescale: int) -> np.ndarray:
    """Track ticks -> 90 kHz, rounded to nearest (timing.rescale, vectorised), plus the offset."""
    return rescale_array(ticks, timescale, MPEG_TS_CLOCK) + TIMESTAMP_OFFSET


def plan_segment(number: int, tracks: list[TrackFrames], sample_aes: bool = False) -> TsPlan:
    """Lay out segment `number` (1-based) from frame metadata alone (with sample_aes, from frames
    already encrypted: drm/sample_aes.py): each stream's PES, sent in decode order (by stream on
    equal times), and each stream's continuity padding. The compiled kernel does it when it is
    built (ts_kernel.py), else numpy (_plan_columns): the same plan."""
    streams = tuple(StreamPlan(FIRST_ES_PID + i, stream_format(t.track.codec, sample_aes), t)
                    for i, t in enumerate(tracks))
    video = [i for i, s in enumerate(streams) if s.frames.track.media_type is MediaType.VIDEO]
    pcr_stream = video[0] if video else 0
    if ts_kernel.available():
        columns = ts_kernel.plan(kernel_inputs(streams, pcr_stream))
    else:
        columns = _plan_columns(streams, pcr_stream)
    pcr_pid = streams[pcr_stream].pid if streams else FIRST_ES_PID
    return TsPlan(number, streams, PesTable(columns), pcr_pid)


def kernel_inputs(streams: tuple[StreamPlan, ...], pcr_stream: int = -1) -> list[ts_kernel.StreamInput]:
    """The streams as the compiled kernel takes them (the PCR on stream `pcr_stream`'s PES)."""
    return [ts_kernel.StreamInput(s.frames, s.pid, s.format.stream_id, s.format.adts, i == pcr_stream)
            for i, s in enumerate(streams)]


def _plan_columns(streams: tuple[StreamPlan, ...], pcr_stream: int) -> np.ndarray:
    """plan_segment's table with numpy: PesTable's columns."""
    parts = [_plan_stream(index, stream, index == pcr_stream) for index, stream in enumerate(streams)]
    columns = {name: np.concatenate([part[name] for part in parts]) if parts else np.zeros(0, dtype=np.int64)
               for name in PES_COLUMNS}
    _check_writable(streams, columns)
    order = np.lexsort((columns["stream"], columns["dts"]))  # stable: a stream's PES keep their order
    columns = {name: column[order] for name, column in columns.items()}
    for index in range(len(streams)):
        _pad_continuity(columns, np.flatnonzero(columns["stream"] == index))
    return np.stack([columns[name] for name in PES_COLUMNS]).astype(np.int64, copy=False)


def _check_writable(streams: tuple[StreamPlan, ...], columns: dict[str, np.ndarray]) -> None:
    """What no writer can carry, refused before a byte is read (415): an AAC frame longer than
    ADTS's 13-bit length, an audio PES past PES_packet_length's 16 bits (video may leave it 0)."""
    for stream in streams:
        if stream.format.adts and np.any(stream.frames.sizes + ADTS_HEADER_SIZE > MAX_FRAME_LENGTH):
            raise UnsupportedMedia("an AAC frame is too large for ADTS")
    video = np.array([s.frames.track.media_type is MediaType.VIDEO for s in streams], dtype=bool)
    length = columns["header_size"] - 6 + columns["es_size"]  # PES_packet_length
    if len(length) and np.any((length > 0xFFFF) & ~video[columns["stream"]]):
        raise UnsupportedMedia("audio PES larger than 64 KiB")


def _plan_stream(index: int, stream: StreamPlan, carries_pcr: bool) -> dict[str, np.ndarray]:
    """One stream's PES as columns: a PES per video frame (a PCR on each when the stream carries
    it, else a random-access flag on key frames), audio frames grouped (_audio_groups)."""
    frames = stream.frames
    if not frames.count:
        return {name: np.zeros(0, dtype=np.int64) for name in PES_COLUMNS}
    timescale = frames.track.timescale
    pts = to_90khz(frames.pts, timescale)
    dts = to_90khz(frames.dts, timescale)
    if frames.track.media_type is MediaType.VIDEO:
        starts = np.arange(frames.count, dtype=np.int64)
        stops = starts + 1
        es = video_es_sizes(frames).astype(np.int64)
        random_access = np.asarray(frames.sync, dtype=np.int64)
    else:
        sizes = frames.sizes.astype(np.int64) + (ADTS_HEADER_SIZE if stream.format.adts else 0)
        starts = np.array(_audio_groups(frames, sizes.tolist()), dtype=np.int64)
        stops = np.append(starts[1:], frames.count)
        es = np.add.reduceat(sizes, starts)
        random_access = np.zeros(len(starts), dtype=np.int64)
    pts, dts = pts[starts], dts[starts]
    header = np.where(pts != dts, PES_HEADER_PTS_DTS, PES_HEADER_PTS)
    pcr = (dts - PCR_LEAD) & TIMESTAMP_MASK if carries_pcr else np.full(len(starts), -1, dtype=np.int64)
    first_af = np.full(len(starts), PCR_ADAPTATION_FIELD, dtype=np.int64) if carries_pcr else \
        np.where(random_access == 1, RAP_ADAPTATION_FIELD, 0)
    return {"stream": np.full(len(starts), index, dtype=np.int64), "frame_start": starts, "frame_stop": stops,
            "pts": pts, "dts": dts, "header_size": header, "es_size": es, "first_af": first_af, "pcr": pcr,
            "random_access": random_access, "extra_packets": np.zeros(len(starts), dtype=np.int64),
            "packets": _pes_packets(header + es, first_af)}


def _audio_groups(frames: TrackFrames, sizes: list[int]) -> list[int]:
    """The first frame of each audio PES: consecutive frames, at most AUDIO_PES_MAX_DURATION_MS
    and AUDIO_PES_MAX_BYTES each."""
    max_ticks = frames.track.timescale * AUDIO_PES_MAX_DURATION_MS // 1000
    dts = frames.dts.tolist()
    starts = [0]
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (dts[i] - dts[start] >= max_ticks or total + size > AUDIO_PES_MAX_BYTES):
            starts.append(i)
            start, total = i, 0
        total += size
    return starts


def _pad_continuity(columns: dict[str, np.ndarray], rows: np.ndarray) -> None:
    """Make one stream's packet count (its PES `rows`, in sending order) a multiple of 16 so the
    next segment can start at continuity counter 0."""
    es_sizes, first_afs = columns["es_size"][rows], columns["first_af"][rows]
    sizes = columns["header_size"][rows] + es_sizes
    padding = continuity_padding(int(columns["packets"][rows].sum()), sizes, es_sizes, first_afs)
    if padding is not None:
        unit, extra = padding
        row = rows[unit]
        columns["extra_packets"][row] = extra
        columns["packets"][row] = pes_packet_count(int(sizes[unit]) - extra, int(first_afs[unit])) + extra


def continuity_padding(total: int, sizes: IntSequence, es_sizes: IntSequence, first_afs: IntSequence
                       ) -> tuple[int, int] | None:
    """(PES index, extra packets) that make a stream's `total` packets a multiple of 16, trying the
    last PES first; None when it already is one (or, for tiny PES only, when no PES can take it).

    sizes are PES bytes (header included) and first_afs the adaptation field bytes of each PES's
    first packet: a PES takes pes_packet_count(size, first_af) packets without padding.
    """
    if total % 16 == 0:
        return None
    for unit in range(len(sizes) - 1, -1, -1):
        size, first_af = int(sizes[unit]), int(first_afs[unit])
        base = pes_packet_count(size, first_af)
        for extra in range(1, min(CC_PADDING_SEARCH, int(es_sizes[unit])) + 1):
            if (total - base + pes_packet_count(size - extra, first_af) + extra) % 16 == 0:
                return unit, extra
    return None


def video_es_sizes(frames: TrackFrames) -> np.ndarray:
    """Elementary-stream bytes of each video frame: Annex B start codes, AUD and key-frame parameter sets."""
    return _annexb_sizes(frames.track.codec, frames.sizes, frames.sync)


def _annexb_sizes(codec: CodecInfo, sizes: np.ndarray, sync: np.ndarray) -> np.ndarray:
    prefix = AnnexBPrefix(codec)
    return sizes + np.where(sync, len(prefix.key), len(prefix.plain))


def video_only_packets(frames: TrackFrames, cuts: Sequence[int] | None = None) -> np.ndarray:
    """TS packets of each frame's PES in segments holding this video track alone, exactly as
    plan_segment lays them out (one PES per frame, a PCR on each, continuity padding included).

    `cuts` are the segment boundaries as indexes into `frames` (default: they are one segment).
    With the PAT and PMT first, a segment's frame i starts at packet PSI_PACKETS + the packets of
    the segment's frames before it: this is how I-frame playlists find key frames without planning
    whole segments.
    """
    es = video_es_sizes(frames).astype(np.int64)
    if frames.track.samples.composition_offsets is None:  # every pts is its dts
        sizes = es + PES_HEADER_PTS
    else:
        timescale = frames.track.timescale
        reordered = to_90khz(frames.pts, timescale) != to_90khz(frames.dts, timescale)
        sizes = es + np.where(reordered, PES_HEADER_PTS_DTS, PES_HEADER_PTS)
    packets = _pes_packets(sizes, PCR_ADAPTATION_FIELD)
    bounds = np.array([0, frames.count] if cuts is None else list(cuts), dtype=np.int64)
    starts, stops = bounds[:-1], bounds[1:]
    running = np.concatenate(([0], np.cumsum(packets)))
    totals = running[stops] - running[starts]
    # continuity padding (continuity_padding, vectorised for the usual case): each segment whose
    # packets are not a multiple of 16 gives its last PES the fewest extra packets that make them so
    needs = np.flatnonzero((totals % 16 != 0) & (stops > starts))
    last = stops[needs] - 1
    extras = np.arange(1, CC_PADDING_SEARCH + 1)
    shrunk = _pes_packets(sizes[last][:, None] - extras, PCR_ADAPTATION_FIELD)
    fits = ((totals[needs] - packets[last])[:, None] + shrunk + extras) % 16 == 0
    fits &= extras <= es[last][:, None]
    found, choice = fits.any(axis=1), fits.argmax(axis=1)
    packets[last[found]] = (shrunk[np.flatnonzero(found), choice[found]] + extras[choice[found]])
    first_afs = np.full(len(sizes), PCR_ADAPTATION_FIELD)
    for segment in needs[~found].tolist():  # the last PES cannot take it: the earlier ones are tried
        start, stop = int(starts[segment]), int(stops[segment])
        padding = continuity_padding(int(totals[segment]), sizes[start:stop], es[start:stop],
                                     first_afs[start:stop])
        if padding is not None:
            unit, extra = padding
            size = int(sizes[start + unit]) - extra
            packets[start + unit] = pes_packet_count(size, PCR_ADAPTATION_FIELD) + extra
    return packets


# --- program specific information --------------------------------------------------------------


def psi_packets(plan: TsPlan) -> bytes:
    """PAT and PMT packets; their continuity counter is the segment number mod 16."""
    counter = plan.number & 0x0F
    pat = struct.pack(">HH", PROGRAM_NUMBER, 0xE000 | PMT_PID)
    pmt = struct.pack(">HH", 0xE000 | plan.pcr_pid, 0xF000)  # PCR PID, no program info
    for stream in plan.streams:
        descriptors = _language_descriptor(stream.frames.track) + stream.format.descriptors
        pmt += struct.pack(">BHH", stream.format.stream_type, 0xE000 | stream.pid, 0xF000 | len(descriptors))
        pmt += descriptors
    pat_packet = _psi_packet(PAT_PID, 0x00, 1, pat, counter)
    return pat_packet + _psi_packet(PMT_PID, 0x02, PROGRAM_NUMBER, pmt, counter)


def _language_descriptor(track: Track) -> bytes:
    """ISO_639_language_descriptor (13818-1 2.6.18) of an audio stream whose language is known:
    the ISO 639-2 code and audio_type 0 (undefined), so players can tell several audios apart."""
    if track.media_type is not MediaType.AUDIO or track.language == UNDETERMINED:
        return b""
    return bytes((0x0A, 4)) + iso639_2(track.language).encode("latin-1") + b"\x00"


def _psi_packet(pid: int, table_id: int, table_id_extension: int, body: bytes, counter: int) -> bytes:
    """One section (13818-1 2.4.4.3/2.4.4.8) in one packet, with pointer field and CRC."""
    section_length = 5 + len(body) + 4
    section = struct.pack(">BHHBBB", table_id, 0xB000 | section_length, table_id_extension, 0xC1, 0, 0)
    section += body
    section += struct.pack(">I", crc32_mpeg2(section))
    header = struct.pack(">BHB", 0x47, 0x4000 | pid, 0x10 | counter)
    packet = header + b"\x00" + section
    if len(packet) > PACKET_SIZE:
        raise UnsupportedMedia(f"a {len(section)}-byte program table does not fit one TS packet")
    return packet + b"\xff" * (PACKET_SIZE - len(packet))


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (13818-1 Annex A): polynomial 0x04C11DB7, initial 0xFFFFFFFF, no reflection."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


# --- size bounds for manifests -----------------------------------------------------------------


def segment_packets(track: Track, cuts: np.ndarray, carries_pcr: bool) -> np.ndarray:
    """TS packets each segment of the track takes, from its sample table alone, as plan_segment
    lays them out: one PES per video frame (with a PCR, or a random-access flag on key frames);
    audio frames in PES of AUDIO_PES_MAX_DURATION_MS from each segment's first frame; continuity
    padding to a multiple of 16. `cuts` are the sample indexes of the segments' first samples,
    plus the end.

    Exact for video and for audio of constant frame durations (AAC, AC-3); with varying durations
    the grouping assumes the longest, so audio PES are never undercounted. The manifests' BANDWIDTH
    and AVERAGE-BANDWIDTH come from these counts, for a 2-hour title in a few milliseconds.
    """
    cuts = np.asarray(cuts, dtype=np.int64)
    segments = len(cuts) - 1
    first, last = int(cuts[0]), int(cuts[-1])
    if last <= first:
        return np.zeros(segments, dtype=np.int64)
    samples = track.samples
    sizes = samples.sizes[first:last].astype(np.int64)
    starts = cuts[:-1] - first  # each segment's first sample, counted from `first`
    if track.media_type is MediaType.VIDEO:
        sync = samples.is_sync(first, last)
        pes = _annexb_sizes(track.codec, sizes, sync) + PES_HEADER_PTS
        offsets = samples.composition_offsets
        if offsets is not None:
            pes += (offsets[first:last] != 0) * (PES_HEADER_PTS_DTS - PES_HEADER_PTS)
        first_af = PCR_ADAPTATION_FIELD if carries_pcr else np.where(sync, RAP_ADAPTATION_FIELD, 0)
        per_segment = _sums(_pes_packets(pes, first_af), starts)
    else:
        es = sizes + ADTS_HEADER_SIZE if stream_format(track.codec).adts else sizes
        longest = max(samples.decode_times.longest(first, last), 1)
        largest = max(int(es.max()), 1)
        per_pes = max(min(-(-(track.timescale * AUDIO_PES_MAX_DURATION_MS // 1000) // longest),
                          max(AUDIO_PES_MAX_BYTES // largest, 1)), 1)
        groups = -(-np.diff(cuts) // per_pes)  # PES in each segment, from its first frame
        first_pes = np.cumsum(groups) - groups  # each segment's first PES
        within = np.arange(int(groups.sum())) - np.repeat(first_pes, groups)  # PES index in its segment
        pes_starts = np.repeat(starts, groups) + within * per_pes
        packets = _pes_packets(np.add.reduceat(es, pes_starts) + PES_HEADER_PTS,
                               PCR_ADAPTATION_FIELD if carries_pcr else 0)
        per_segment = _sums(packets, first_pes)
    return per_segment + (-per_segment) % 16  # continuity padding


def _sums(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The sum of values[starts[k]:starts[k + 1]] (the last: to the end) for each k; starts never
    decrease, and equal ones (an empty segment) sum to 0."""
    running = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=running[1:])
    return running[np.append(starts[1:], len(values))] - running[starts]


def _pes_packets(sizes: np.ndarray, first_af: np.ndarray | int) -> np.ndarray:
    """pes_packet_count, vectorised (in place on a new array: these are per frame)."""
    packets = sizes - (PACKET_PAYLOAD - first_af)  # bytes past the first packet
    np.maximum(packets, 0, out=packets)
    packets += 2 * PACKET_PAYLOAD - 1  # the first packet, and the rest rounded up
    packets //= PACKET_PAYLOAD
    return packets



