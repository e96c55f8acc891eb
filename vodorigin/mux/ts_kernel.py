"""The compiled MPEG-TS planner and writer (_ts_kernel.c), loaded with ctypes when it is built.

`scripts/setup.sh` builds it (one `cc -O2 -shared` command) next to its source, again whenever the
source is newer; without a C compiler, or if the library does not load or was built from another
version of the source (KERNEL_VERSION), mpegts.plan_segment and ts_write.write_segment do the same
work in numpy, which gives the same plans and bytes (tests/test_ts_kernel.py compares them on
every fixture and on generated frames). README: Performance gives the figures.

This module knows the kernel's arguments, not the plans: mpegts and ts_write call `plan` and
`write` with what they hold. What the C code takes on trust is checked here or before: the columns'
types and lengths, the codecs' leads (AnnexBPrefix refuses NAL length fields it cannot rewrite in
place, AdtsHeader configurations ADTS cannot carry); the kernel itself checks every frame against
the bytes read and every write against the plan.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vodorigin import kernels
from vodorigin.errors import MediaError, UnsupportedMedia
from vodorigin.media.frames import SourceBytes, TrackFrames
from vodorigin.media.model import MediaType
from vodorigin.mux.adts import AdtsHeader
from vodorigin.mux.annexb import AnnexBPrefix

LIBRARY = Path(__file__).with_name("_ts_kernel.so")
KERNEL_VERSION = 3  # ts_kernel_version() of the source this module calls (its arguments' layout)
COLUMNS = 12  # mpegts.PES_COLUMNS
ERRORS = {1: "H.264/HEVC sample: truncated NAL length", 2: "H.264/HEVC sample: NAL unit overruns the sample",
          3: "a frame's size differs from the sample table's", 4: "a frame lies before the bytes read for it",
          5: "a frame lies beyond the bytes read for it"}
REFUSALS = {6: "an AAC frame is too large for ADTS", 7: "audio PES larger than 64 KiB"}  # as mpegts's
OTHER, ANNEXB, ADTS = 0, 1, 2


class _Stream(ctypes.Structure):
    _fields_ = [("pts", ctypes.c_void_p), ("dts", ctypes.c_void_p), ("sizes", ctypes.c_void_p),
                ("offsets", ctypes.c_void_p), ("sync", ctypes.c_void_p), ("count", ctypes.c_int64),
                ("timescale", ctypes.c_int64), ("video", ctypes.c_int64), ("carries_pcr", ctypes.c_int64),
                ("pid", ctypes.c_int64), ("stream_id", ctypes.c_int64), ("kind", ctypes.c_int64),
                ("length_size", ctypes.c_int64), ("plain", ctypes.c_char_p), ("key", ctypes.c_char_p),
                ("adts", ctypes.c_char_p), ("plain_size", ctypes.c_int64), ("key_size", ctypes.c_int64)]


def _load() -> ctypes.CDLL | None:
    """The library, when it is built (kernels.load)."""
    int64, pointer = ctypes.c_int64, ctypes.c_void_p
    return kernels.load(LIBRARY, "ts_kernel_version", KERNEL_VERSION, {
        "ts_plan": [pointer, int64, pointer, int64, pointer, pointer],
        "ts_write_es": [pointer, int64, pointer, int64, int64, pointer, int64, pointer, int64]})


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


@dataclass(frozen=True, slots=True)
class StreamInput:
    """One elementary stream as mpegts plans it: its frames, PID, PES stream_id, whether its frames
    get ADTS headers, whether its PES carry the PCR."""

    frames: TrackFrames
    pid: int
    stream_id: int
    adts: bool
    carries_pcr: bool


class _Streams:
    """The kernel's Stream structs for a segment's streams, with every array and bytes object they
    point to kept alive as long as this is."""

    def __init__(self, streams: list[StreamInput], writing: bool) -> None:
        self.array = (_Stream * max(len(streams), 1))()
        self._keep: list[object] = []
        for index, stream in enumerate(streams):
            self.array[index] = self._struct(stream, writing)

    def _column(self, values: np.ndarray, dtype: type) -> int:
        column: np.ndarray = np.ascontiguousarray(values, dtype=dtype)
        self._keep.append(column)
        return int(column.ctypes.data)

    def _struct(self, stream: StreamInput, writing: bool) -> _Stream:
        frames, track = stream.frames, stream.frames.track
        video = track.media_type is MediaType.VIDEO
        kind, plain, key, adts, length_size = OTHER, b"", b"", b"", 0
        if video:
            prefix = AnnexBPrefix(track.codec)
            kind, plain, key, length_size = ANNEXB, prefix.plain, prefix.key, prefix.length_size
        elif stream.adts:
            kind = ADTS
            if writing:
                adts = AdtsHeader(track.codec).build(0)
        self._keep += [plain, key, adts]
        sync = self._column(frames.sync, np.bool_) if video else None
        return _Stream(self._column(frames.pts, np.int64), self._column(frames.dts, np.int64),
                       self._column(frames.sizes, np.int64),
                       self._column(frames.offsets, np.int64) if writing else None, sync, frames.count,
                       track.timescale, video, stream.carries_pcr, stream.pid, stream.stream_id, kind,
                       length_size, plain, key, adts, len(plain), len(key))


def plan(streams: list[StreamInput]) -> np.ndarray:
    """The segment's PES table (mpegts.PesTable's `columns`): COLUMNS rows, one column per PES in
    sending order. Raises UnsupportedMedia for what TS cannot carry, as the numpy planner does."""
    assert _LIBRARY is not None
    structs = _Streams(streams, writing=False)
    stride = max(sum(s.frames.count for s in streams), 1)
    table = np.empty((COLUMNS, stride), dtype=np.int64)
    work = np.empty((COLUMNS + 2, stride), dtype=np.int64)
    rows = ctypes.c_int64(0)
    status = _LIBRARY.ts_plan(structs.array, len(streams), table.ctypes.data, stride, work.ctypes.data,
                              ctypes.byref(rows))
    if status in REFUSALS:
        raise UnsupportedMedia(REFUSALS[status])
    if status:
        raise MediaError(ERRORS.get(status, f"the TS kernel failed ({status})"))
    return table[:, : rows.value]


def write(address: int, packets: int, table: np.ndarray, streams: list[StreamInput], source: SourceBytes
          ) -> None:
    """Write `packets` TS packets of the planned PES (`table`, as `plan` gives it) at `address`, past
    the PSI packets the caller has written there, the frames' bytes taken from `source`."""
    assert _LIBRARY is not None
    if table.dtype != np.int64 or table.ndim != 2 or table.shape[0] != COLUMNS or table.strides[1] != 8:
        raise ValueError("a PES table is COLUMNS rows of int64")
    structs = _Streams(streams, writing=True)
    views = source.views
    addresses = [np.frombuffer(view, dtype=np.uint8).ctypes.data if len(view) else 0 for view in views]
    buffers = np.array([source.starts, [len(view) for view in views], addresses], dtype=np.int64)
    buffers = buffers.reshape(3, len(views))
    status = _LIBRARY.ts_write_es(address, packets, table.ctypes.data, table.strides[0] // 8, table.shape[1],
                                  structs.array, len(streams), buffers.ctypes.data, len(views))
    if status:
        raise MediaError(ERRORS.get(status, f"the TS kernel failed ({status})"))
