"""Writing a planned MPEG-TS segment (ISO/IEC 13818-1): with the compiled kernel when it is built
(ts_kernel.py, _ts_kernel.c), else with numpy, where Python touches each frame at most twice, and
each PES only to read its plan. Both give the same bytes.

mpegts.plan_segment gives every PES its packets. The ES packets' 184-byte payloads, end to end, form
one buffer (`body`). A PES's own bytes (its header, then for each frame a lead, the access unit
delimiter and parameter sets of Annex B or an ADTS header, then the frame) are addressed by their
position x in the PES, and x maps into `body` in three pieces:

* x < split: after the adaptation field of the first packet (PCR, random access; or, for a PES
  that fits one packet, the stuffing that makes it end the packet);
* split <= x < regular: the bytes of the last, partial packet, placed after the stuffing
  adaptation field that fills its front;
* x >= regular: continuity padding (mpegts._pad_continuity), one byte at the end of a packet of
  its own, after 183 bytes of adaptation field.

Frames are copied with one slice per piece they fall in (two at most, their padding bytes aside).
Every other byte (PES headers, leads, the start codes that replace NAL lengths, padding bytes) is
placed by one numpy assignment through the same map, and the adaptation fields by another.
"""

from __future__ import annotations

import ctypes

import numpy as np
import numpy.ma  # noqa: F401  np.unique (_gather) imports it on its first call (24 ms): here, at startup

from vodorigin.errors import MediaError
from vodorigin.media.frames import SourceBytes
from vodorigin.media.model import MediaType
from vodorigin.mux import ts_kernel
from vodorigin.mux.adts import ADTS_HEADER_SIZE, AdtsHeader
from vodorigin.mux.annexb import START_CODE, AnnexBPrefix
from vodorigin.mux.mpegts import (
    PACKET_PAYLOAD,
    PACKET_SIZE,
    PES_HEADER_PTS_DTS,
    PSI_PACKETS,
    TIMESTAMP_MASK,
    StreamPlan,
    TsPlan,
    kernel_inputs,
    psi_packets,
)
from vodorigin.unfilled import unfilled_bytes

U8 = np.uint8
I64 = np.int64


def write_segment(plan: TsPlan, source: SourceBytes) -> bytes:
    """The segment's bytes, its frames taken from `source` (the ranges read for it): by the compiled
    kernel when it is built (ts_kernel.py, the same bytes), else by numpy."""
    if ts_kernel.available():
        return write_segment_kernel(plan, source)
    return write_segment_numpy(plan, source)


def write_segment_kernel(plan: TsPlan, source: SourceBytes) -> bytes:
    """The segment's bytes, written by the compiled kernel (which must be available) straight into
    the segment's bytes object (unfilled.py): the PSI here, then every other packet there."""
    psi = psi_packets(plan)
    if not len(plan.table):
        return psi
    out, address = unfilled_bytes(plan.size)
    ctypes.memmove(address, psi, len(psi))
    ts_kernel.write(address, plan.packet_count - PSI_PACKETS, plan.table.columns, kernel_inputs(plan.streams),
                    source)
    return out


def write_segment_numpy(plan: TsPlan, source: SourceBytes) -> bytes:
    """The segment's bytes, written with numpy (the module's docstring)."""
    count = plan.packet_count
    packets = np.empty((count, PACKET_SIZE), dtype=U8)
    packets[:PSI_PACKETS] = np.frombuffer(psi_packets(plan), dtype=U8).reshape(PSI_PACKETS, PACKET_SIZE)
    if len(plan.table):
        layout = _Layout(plan)
        body = bytearray(layout.body_size)
        array = np.frombuffer(body, dtype=U8)
        placed: list[tuple[np.ndarray, np.ndarray]] = [layout.pes_headers(plan)]  # (positions, bytes)
        for index, stream in enumerate(plan.streams):
            placed += _write_stream(index, stream, layout, source, body)
        for positions, values in placed:  # after the frames: start codes overwrite NAL lengths
            array[positions] = values
        layout.adaptation_fields(array)
        packets[PSI_PACKETS:, 4:] = array.reshape(-1, PACKET_PAYLOAD)
        packets[PSI_PACKETS:, :4] = layout.packet_headers(plan)
    return packets.tobytes()


class _Layout:
    """Where each PES lies in `body`, as arrays over the segment's PES (in plan order)."""

    def __init__(self, plan: TsPlan) -> None:
        table = plan.table
        self.stream, self.frame_start, self.frame_stop = table.stream, table.frame_start, table.frame_stop
        self.packets, self.header_size, self.es_size = table.packets, table.header_size, table.es_size
        self.first_af, self.extra = table.first_af, table.extra_packets
        self.pts, self.dts, self.pcr = table.pts, table.dts, table.pcr
        self.random_access = table.random_access.astype(bool)
        self.first_packet = np.cumsum(self.packets) - self.packets
        self.start = self.first_packet * PACKET_PAYLOAD
        self.body_size = int(self.packets.sum()) * PACKET_PAYLOAD
        self.regular = self.header_size + self.es_size - self.extra
        first_room = PACKET_PAYLOAD - self.first_af
        single = self.regular <= first_room
        rest = self.regular - first_room
        self.count = np.where(single, 1, 1 + -(-rest // PACKET_PAYLOAD))  # packets before the padding
        self.tail = np.where(single, 0, rest % PACKET_PAYLOAD)  # bytes in the last, partial packet
        self.head = np.where(single, PACKET_PAYLOAD - self.regular, self.first_af)  # first packet's AF
        self.split = np.where(self.tail > 0, self.regular - self.tail, self.regular)
        self.a = self.start + self.head  # body position of x = 0
        self.b = self.a + np.where(self.tail > 0, PACKET_PAYLOAD - self.tail, 0)  # of x = 0, past split

    def position(self, pes: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Body positions of bytes x of PES `pes` (arrays of the same length)."""
        padding = self.start[pes] + (self.count[pes] + x - self.regular[pes] + 1) * PACKET_PAYLOAD - 1
        return np.where(x < self.split[pes], self.a[pes] + x,
                        np.where(x < self.regular[pes], self.b[pes] + x, padding))

    def pes_headers(self, plan: TsPlan) -> tuple[np.ndarray, np.ndarray]:
        """Every PES header (13818-1 2.4.3.6) with PTS, and DTS when it differs: (positions, bytes)."""
        n = len(self.stream)
        with_dts = self.header_size == PES_HEADER_PTS_DTS
        length = 3 + np.where(with_dts, 10, 5) + self.es_size
        length = np.where(length > 0xFFFF, 0, length)  # unbounded: video only (mpegts._check_writable)
        headers = np.empty((n, PES_HEADER_PTS_DTS), dtype=I64)
        headers[:, :3] = (0, 0, 1)
        headers[:, 3] = np.array([s.format.stream_id for s in plan.streams], dtype=I64)[self.stream]
        headers[:, 4] = length >> 8
        headers[:, 5] = length & 0xFF
        headers[:, 6] = 0x80
        headers[:, 7] = np.where(with_dts, 0xC0, 0x80)
        headers[:, 8] = np.where(with_dts, 10, 5)
        headers[:, 9:14] = _timestamps(np.where(with_dts, 0x3, 0x2), self.pts)
        headers[:, 14:19] = _timestamps(np.full(n, 0x1), self.dts)
        x = np.tile(np.arange(PES_HEADER_PTS_DTS, dtype=I64), n)
        pes = np.repeat(np.arange(n, dtype=I64), PES_HEADER_PTS_DTS)
        keep = x < np.repeat(self.header_size, PES_HEADER_PTS_DTS)
        return self.position(pes[keep], x[keep]), headers.reshape(-1)[keep].astype(U8)

    def adaptation_fields(self, array: np.ndarray) -> None:
        """The adaptation fields (13818-1 2.4.3.4): in each PES's first packet (PCR, random access,
        or the stuffing of a PES that fits one packet), before the data of its last partial packet,
        and in front of each padding byte. Stuffing is 0xFF; flags 0 where nothing is set."""
        firsts, tails = self.head > 0, self.tail > 0
        padding_pes = np.repeat(np.arange(len(self.extra), dtype=I64), self.extra)
        at = np.concatenate((self.start[firsts], self.start[tails] + (self.count[tails] - 1) * PACKET_PAYLOAD,
                             self.start[padding_pes] + (self.count[padding_pes] + _within(self.extra))
                             * PACKET_PAYLOAD))
        size = np.concatenate((self.head[firsts], PACKET_PAYLOAD - self.tail[tails],
                               np.full(len(padding_pes), PACKET_PAYLOAD - 1, dtype=I64)))
        flags = np.zeros(len(at), dtype=I64)
        flags[: int(firsts.sum())] = np.where(self.random_access[firsts], 0x40, 0) | \
            np.where(self.pcr[firsts] >= 0, 0x10, 0)
        array[np.repeat(at, size) + _within(size)] = 0xFF
        array[at] = size - 1
        longer = size > 1
        array[at[longer] + 1] = flags[longer]
        pcr = np.full(len(at), -1, dtype=I64)
        pcr[: int(firsts.sum())] = self.pcr[firsts]
        carrying = (pcr >= 0) & (size >= 8)
        value = (pcr[carrying] << 15) | (0x3F << 9)  # 33-bit base, 6 reserved bits, extension 0
        for k in range(6):
            array[at[carrying] + 2 + k] = (value >> (8 * (5 - k))) & 0xFF

    def packet_headers(self, plan: TsPlan) -> np.ndarray:
        """4-byte headers of the ES packets (13818-1 2.4.3.2): sync byte, PUSI on each PES's first
        packet, PID, adaptation field control, continuity counter (each PID's packets from 0)."""
        total = int(self.packets.sum())
        stream_of = np.repeat(self.stream, self.packets)
        counters = np.zeros(total, dtype=I64)
        for index in range(len(plan.streams)):
            mine = stream_of == index
            counters[mine] = np.arange(int(mine.sum()), dtype=I64)
        pids = np.array([s.pid for s in plan.streams], dtype=I64)[stream_of]
        within = _within(self.packets)
        count = np.repeat(self.count, self.packets)
        with_af = (within >= count) | ((within == 0) & np.repeat(self.head > 0, self.packets)) | \
            ((within == count - 1) & np.repeat(self.tail > 0, self.packets))
        headers = np.empty((total, 4), dtype=U8)
        headers[:, 0] = 0x47
        headers[:, 1] = pids >> 8
        headers[self.first_packet, 1] |= 0x40  # payload_unit_start_indicator
        headers[:, 2] = pids & 0xFF
        headers[:, 3] = np.where(with_af, 0x30, 0x10) | (counters & 0x0F)
        return headers


def _timestamps(prefix: np.ndarray, value: np.ndarray) -> np.ndarray:
    """33-bit PTS/DTS values in their 5-byte form with marker bits (13818-1 2.4.3.7)."""
    value = value & TIMESTAMP_MASK
    return np.stack(((prefix << 4) | ((value >> 29) & 0x0E) | 1, (value >> 22) & 0xFF,
                     ((value >> 14) & 0xFE) | 1, (value >> 7) & 0xFF, ((value << 1) & 0xFE) | 1), axis=1)


def _within(counts: np.ndarray) -> np.ndarray:
    """0..count-1 for each count, end to end."""
    return np.arange(int(counts.sum()), dtype=I64) - np.repeat(np.cumsum(counts) - counts, counts)


def _gather(views: list[memoryview], buffers: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The source bytes at local offsets `at` of buffers `buffers` (one byte each)."""
    values = np.empty(len(at), dtype=U8)
    for buffer in np.unique(buffers).tolist():
        mine = buffers == buffer
        values[mine] = np.frombuffer(views[buffer], dtype=U8)[at[mine]]
    return values


def _write_stream(index: int, stream: StreamPlan, layout: _Layout, source: SourceBytes, body: bytearray
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copy the stream's frames into `body`; return the other bytes to place (leads, padding bytes
    taken from frames, the start codes over NAL lengths) as (positions, bytes)."""
    frames = stream.frames
    mine = np.nonzero(layout.stream == index)[0]
    if not frames.count or not len(mine):
        return []
    per_pes = layout.frame_stop[mine] - layout.frame_start[mine]
    first_frame = np.cumsum(per_pes) - per_pes
    if not np.array_equal(layout.frame_start[mine], first_frame) or int(per_pes.sum()) != frames.count:
        raise MediaError("the segment plan does not cover its frames in order")
    pes = np.repeat(mine, per_pes)  # each frame's PES
    sizes = frames.sizes.astype(I64)
    lead, lead_bytes = _leads(stream, sizes)
    item = lead + sizes
    item_start = np.cumsum(item) - item
    lead_at = layout.header_size[pes] + item_start - np.repeat(item_start[first_frame], per_pes)
    frame_at = lead_at + lead  # x of each frame in its PES
    if np.any(lead_at[first_frame + per_pes - 1] + item[first_frame + per_pes - 1] - layout.header_size[mine]
              != layout.es_size[mine]):
        raise MediaError("a frame's size differs from the sample table's")
    buffers, local = source.locate(frames.offsets, sizes)
    views = source.views
    placed = [(layout.position(np.repeat(pes, lead), np.repeat(lead_at, lead) + _within(lead)), lead_bytes)]
    split, regular = layout.split[pes], layout.regular[pes]
    end = frame_at + sizes
    for buffer, offset, x, first_end, y, second_end, base_a, base_b in zip(
            buffers.tolist(), local.tolist(), frame_at.tolist(), np.minimum(end, split).tolist(),
            np.maximum(frame_at, split).tolist(), np.minimum(end, regular).tolist(), layout.a[pes].tolist(),
            layout.b[pes].tolist(), strict=True):
        view = views[buffer]
        if first_end > x:
            body[base_a + x : base_a + first_end] = view[offset : offset + first_end - x]
        if second_end > y:
            body[base_b + y : base_b + second_end] = view[offset + y - x : offset + second_end - x]
    padded = end > regular
    if np.any(padded):  # the frame bytes continuity padding puts in packets of their own
        start = np.maximum(frame_at[padded], regular[padded])
        count = end[padded] - start
        x = np.repeat(start, count) + _within(count)
        at = np.repeat(local[padded] + start - frame_at[padded], count) + _within(count)
        placed.append((layout.position(np.repeat(pes[padded], count), x),
                       _gather(views, np.repeat(buffers[padded], count), at)))
    if frames.track.media_type is MediaType.VIDEO:
        width = AnnexBPrefix(frames.track.codec).length_size
        frame, offset = _nal_starts(views, buffers, local, sizes, width)
        x = np.repeat(frame_at[frame] + offset, width) + np.tile(np.arange(width, dtype=I64), len(frame))
        code = np.tile(np.frombuffer(START_CODE[4 - width :], dtype=U8), len(frame))
        placed.append((layout.position(np.repeat(pes[frame], width), x), code))
    return placed


def _leads(stream: StreamPlan, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's lead size, and the leads' bytes end to end: Annex B's access unit delimiter
    (with the parameter sets before key frames), or the ADTS header (ISO/IEC 14496-3 1.A.2)."""
    track = stream.frames.track
    if track.media_type is MediaType.VIDEO:
        prefix = AnnexBPrefix(track.codec)
        table = np.frombuffer(prefix.plain + prefix.key, dtype=U8)
        sync = stream.frames.sync
        lead = np.where(sync, len(prefix.key), len(prefix.plain)).astype(I64)
        return lead, table[np.repeat(np.where(sync, len(prefix.plain), 0), lead) + _within(lead)]
    if stream.format.adts:
        fixed = np.frombuffer(AdtsHeader(track.codec).build(0), dtype=U8).astype(I64)
        length = sizes + ADTS_HEADER_SIZE
        headers = np.empty((len(sizes), ADTS_HEADER_SIZE), dtype=I64)
        headers[:, 0:3] = fixed[0:3]
        headers[:, 3] = (fixed[3] & 0xFC) | (length >> 11)
        headers[:, 4] = (length >> 3) & 0xFF
        headers[:, 5] = ((length & 7) << 5) | 0x1F
        headers[:, 6] = 0xFC
        return np.full(len(sizes), ADTS_HEADER_SIZE, dtype=I64), headers.reshape(-1).astype(U8)
    return np.zeros(len(sizes), dtype=I64), np.zeros(0, dtype=U8)


def _nal_starts(views: list[memoryview], buffers: np.ndarray, local: np.ndarray, sizes: np.ndarray,
                width: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame index, offset in the frame) of every NAL length field (ISO/IEC 14496-15), checked.
    Frames of one NAL unit, the common case, are read with numpy; others are walked."""
    if np.any(sizes < width):
        raise MediaError("H.264/HEVC sample: truncated NAL length")
    first = np.zeros(len(sizes), dtype=I64)
    for k in range(width):
        first = (first << 8) | _gather(views, buffers, local + k)
    whole = first + width == sizes
    frames, offsets = [np.nonzero(whole)[0]], [np.zeros(int(whole.sum()), dtype=I64)]
    for index in np.nonzero(~whole)[0].tolist():
        view, start = views[int(buffers[index])], int(local[index])
        end = start + int(sizes[index])
        position, found = start, []
        while position < end:
            if position + width > end:
                raise MediaError("H.264/HEVC sample: truncated NAL length")
            found.append(position - start)
            position += width + int.from_bytes(view[position : position + width], "big")
            if position > end:
                raise MediaError("H.264/HEVC sample: NAL unit overruns the sample")
        frames.append(np.full(len(found), index, dtype=I64))
        offsets.append(np.array(found, dtype=I64))
    return np.concatenate(frames), np.concatenate(offsets)
