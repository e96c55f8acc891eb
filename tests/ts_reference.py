"""A reference MPEG-TS writer for tests: the straightforward one vodorigin used before its writer
was vectorised (issue 17). Each PES is built as bytes, cut into 184-byte packet bodies with its
adaptation fields, and the pieces joined; slow and plain, it is the oracle the fast writer
(vodorigin/mux/ts_write.py) must match byte for byte on any plan (tests/test_mpegts.py)."""

from __future__ import annotations

import struct

import numpy as np

from vodorigin.media.model import MediaType
from vodorigin.mux.adts import AdtsHeader
from vodorigin.mux.annexb import START_CODE, AnnexBPrefix
from vodorigin.mux.mpegts import (
    PACKET_PAYLOAD,
    PACKET_SIZE,
    PES_HEADER_PTS_DTS,
    TIMESTAMP_MASK,
    PesPlan,
    StreamPlan,
    TsPlan,
    psi_packets,
)


def to_annexb(sample: memoryview, length_size: int) -> bytes:
    """Each NAL length prefix replaced by a start code of the same size."""
    data = bytearray(sample)
    position = 0
    while position < len(data):
        length = int.from_bytes(data[position : position + length_size], "big")
        data[position : position + length_size] = START_CODE[4 - length_size :]
        position += length_size + length
    return bytes(data)


def reference_segment(plan: TsPlan, frame_bytes: list[list[memoryview]]) -> bytes:
    """The segment's bytes; frame_bytes[i] holds the frames of plan.streams[i] in decode order."""
    writers = [_StreamWriter(s) for s in plan.streams]
    pieces: list[bytes | memoryview] = []
    header_fields: list[tuple[int, int, list[int]]] = []  # (pid, packets, packets with an AF)
    for unit in plan.pes:
        stream = plan.streams[unit.stream]
        data = writers[unit.stream].pes_bytes(unit, frame_bytes[unit.stream])
        af_packets = _layout_pes(unit, data, pieces)
        header_fields.append((stream.pid, unit.packets, af_packets))
    body = b"".join(pieces)
    packets = np.empty((plan.packet_count, PACKET_SIZE), dtype=np.uint8)
    packets[:2] = np.frombuffer(psi_packets(plan), dtype=np.uint8).reshape(2, PACKET_SIZE)
    if header_fields:
        packets[2:, 4:] = np.frombuffer(body, dtype=np.uint8).reshape(-1, PACKET_PAYLOAD)
        packets[2:, :4] = _packet_headers(header_fields)
    return packets.tobytes()


def _layout_pes(unit: PesPlan, data: bytes, pieces: list[bytes | memoryview]) -> list[int]:
    """Append the 184-byte packet bodies of one PES to pieces; return the packets with an AF."""
    view = memoryview(data)
    regular = len(data) - unit.extra_packets
    first_room = PACKET_PAYLOAD - unit.first_af
    af_packets = []
    if regular <= first_room:
        if regular < PACKET_PAYLOAD:
            pieces.append(_adaptation_field(PACKET_PAYLOAD - regular, unit.pcr, unit.random_access))
            af_packets.append(0)
        pieces.append(view[:regular])
        count = 1
    else:
        if unit.first_af:
            pieces.append(_adaptation_field(unit.first_af, unit.pcr, unit.random_access))
            af_packets.append(0)
        tail = (regular - first_room) % PACKET_PAYLOAD
        count = 1 + -(-(regular - first_room) // PACKET_PAYLOAD)
        pieces.append(view[: regular - tail])
        if tail:
            pieces.append(_adaptation_field(PACKET_PAYLOAD - tail))
            pieces.append(view[regular - tail : regular])
            af_packets.append(count - 1)
    for i in range(unit.extra_packets):
        pieces.append(_STUFFING_183)
        pieces.append(view[regular + i : regular + i + 1])
        af_packets.append(count + i)
    return af_packets


_STUFFING = [b"", b"\x00"] + [bytes((n - 1, 0x00)) + b"\xff" * (n - 2) for n in range(2, PACKET_PAYLOAD + 1)]
_STUFFING_183 = _STUFFING[183]  # an adaptation field leaving one payload byte


def _adaptation_field(total: int, pcr: int | None = None, random_access: bool = False) -> bytes:
    """An adaptation field of `total` bytes, length byte included (13818-1 2.4.3.4)."""
    if pcr is None and not random_access:
        return _STUFFING[total]
    if total == 1:
        return b"\x00"
    flags = (0x40 if random_access else 0) | (0x10 if pcr is not None else 0)
    field = bytearray((total - 1, flags))
    if pcr is not None:
        field += (pcr << 15 | 0x3F << 9).to_bytes(6, "big")  # 33-bit base, 6 reserved, 9-bit ext 0
    field += b"\xff" * (total - len(field))
    return bytes(field)


def _packet_headers(fields: list[tuple[int, int, list[int]]]) -> np.ndarray:
    """4-byte headers of every ES packet: sync, PUSI, PID, adaptation control, continuity counter."""
    pids = np.repeat([f[0] for f in fields], [f[1] for f in fields]).astype(np.int64)
    total = len(pids)
    starts = np.concatenate(([0], np.cumsum([f[1] for f in fields])[:-1])).astype(np.int64)
    pusi = np.zeros(total, dtype=np.int64)
    pusi[starts] = 1
    control = np.ones(total, dtype=np.int64)  # payload only
    af_index = [start + i for start, f in zip(starts.tolist(), fields, strict=True) for i in f[2]]
    control[af_index] = 3  # adaptation field and payload
    counters = np.zeros(total, dtype=np.int64)
    for pid in np.unique(pids):
        mask = pids == pid
        counters[mask] = np.arange(int(mask.sum())) & 0x0F
    headers = np.empty((total, 4), dtype=np.uint8)
    headers[:, 0] = 0x47
    headers[:, 1] = (pusi << 6) | (pids >> 8)
    headers[:, 2] = pids & 0xFF
    headers[:, 3] = (control << 4) | counters
    return headers


class _StreamWriter:
    """Builds PES packets of one stream: the PES header and the elementary stream bytes."""

    def __init__(self, stream: StreamPlan) -> None:
        self.stream = stream
        codec = stream.frames.track.codec
        self.video = stream.frames.track.media_type is MediaType.VIDEO
        self.prefix = AnnexBPrefix(codec) if self.video else None
        self.adts = AdtsHeader(codec) if stream.format.adts else None
        self.sync = stream.frames.sync.tolist()

    def pes_bytes(self, unit: PesPlan, frames: list[memoryview]) -> bytes:
        parts: list[bytes | bytearray | memoryview] = [self._header(unit)]
        for index in range(unit.frame_start, unit.frame_stop):
            frame = frames[index]
            if self.prefix is not None:
                parts.append(self.prefix.key if self.sync[index] else self.prefix.plain)
                parts.append(to_annexb(frame, self.prefix.length_size))
            elif self.adts is not None:
                parts.append(self.adts.build(len(frame)))
                parts.append(frame)
            else:
                parts.append(frame)
        return b"".join(parts)

    def _header(self, unit: PesPlan) -> bytes:
        """PES header (13818-1 2.4.3.6) with PTS, and DTS when it differs."""
        with_dts = unit.header_size == PES_HEADER_PTS_DTS
        length = 3 + (10 if with_dts else 5) + unit.es_size
        if length > 0xFFFF:
            if not self.video:
                raise ValueError("audio PES larger than 64 KiB")
            length = 0  # unbounded, allowed for video (2.4.3.7)
        header = struct.pack(">3sBHBBB", b"\x00\x00\x01", self.stream.format.stream_id, length, 0x80,
                             0xC0 if with_dts else 0x80, 10 if with_dts else 5)
        if with_dts:
            return header + _timestamp(0x3, unit.pts) + _timestamp(0x1, unit.dts)
        return header + _timestamp(0x2, unit.pts)


def _timestamp(prefix: int, value: int) -> bytes:
    """A 33-bit PTS/DTS in its 5-byte form with marker bits (13818-1 2.4.3.7)."""
    value &= TIMESTAMP_MASK
    return bytes(
        (
            (prefix << 4) | ((value >> 29) & 0x0E) | 1,
            (value >> 22) & 0xFF,
            ((value >> 14) & 0xFE) | 1,
            (value >> 7) & 0xFF,
            ((value << 1) & 0xFE) | 1,
        )
    )
