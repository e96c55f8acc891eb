"""The compiled MPEG-TS writer (_ts_kernel.c), loaded with ctypes when it is built.

`scripts/setup.sh` builds it (one `cc -O2 -shared` command) next to its source, again whenever the
source is newer; without a C compiler, or if the library does not load or was built from another
version of the source (KERNEL_VERSION), `ts_write.write_segment` uses the numpy writer, which gives
the same bytes (tests/test_ts_kernel.py compares them on every fixture and on generated plans).
The kernel writes a 1.7 MB segment in about 1 ms, about 1.7 times a join of its frames' bytes,
straight into the segment's bytes object (unfilled.py); the numpy writer takes about four times as
long (README: Performance).

What the C code takes on trust is checked before: the plan (mpegts.plan_segment refuses ADTS frames
and audio PES too long for their length fields), the codecs' leads (AnnexBPrefix refuses NAL
length fields it cannot rewrite in place) and where each frame's bytes are (SourceBytes.locate).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from vodorigin import kernels
from vodorigin.errors import MediaError
from vodorigin.media.frames import SourceBytes
from vodorigin.media.model import MediaType
from vodorigin.mux.adts import AdtsHeader
from vodorigin.mux.annexb import AnnexBPrefix
from vodorigin.mux.mpegts import PSI_PACKETS, TsPlan, psi_packets
from vodorigin.unfilled import unfilled_bytes

LIBRARY = Path(__file__).with_name("_ts_kernel.so")
ERRORS = {1: "H.264/HEVC sample: truncated NAL length", 2: "H.264/HEVC sample: NAL unit overruns the sample",
          3: "a frame's size differs from the sample table's", 4: "a PES larger than its scratch buffer"}
OTHER, ANNEXB, ADTS = 0, 1, 2
KERNEL_VERSION = 2  # ts_kernel_version() of the source this module calls (its arguments' layout)


class _Stream(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_int64), ("stream_id", ctypes.c_int64), ("kind", ctypes.c_int64),
                ("length_size", ctypes.c_int64), ("plain", ctypes.c_char_p), ("key", ctypes.c_char_p),
                ("adts", ctypes.c_char_p), ("plain_size", ctypes.c_int64), ("key_size", ctypes.c_int64),
                ("first_frame", ctypes.c_int64)]


def _load() -> ctypes.CDLL | None:
    """The library, when it is built (kernels.load)."""
    u8p = np.ctypeslib.ndpointer(dtype=np.uint8, flags="C_CONTIGUOUS")
    int64 = ctypes.c_int64
    write_es = [ctypes.c_void_p, int64, int64, int64, *([kernels.I64P] * 12), ctypes.POINTER(_Stream), int64,
                kernels.I64P, kernels.I64P, u8p, ctypes.c_void_p, int64]
    return kernels.load(LIBRARY, "ts_kernel_version", KERNEL_VERSION, {"ts_write_es": write_es})


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


def write_segment(plan: TsPlan, source: SourceBytes) -> bytes:
    """The segment's bytes, as ts_write.write_segment writes them (the kernel must be available)."""
    assert _LIBRARY is not None
    table = plan.table
    if not len(table):
        return psi_packets(plan)
    out, address = unfilled_bytes(plan.size)  # every byte is written below: the PSI, then the packets
    psi = psi_packets(plan)
    ctypes.memmove(address, psi, len(psi))
    streams = (_Stream * len(plan.streams))()
    keep: list[bytes] = []  # the leads' bytes, alive while the kernel reads them
    addresses, sizes, sync, first = [], [], [], 0
    bases = np.array([np.frombuffer(view, dtype=np.uint8).ctypes.data if len(view) else 0
                      for view in source.views], dtype=np.int64)
    for index, stream in enumerate(plan.streams):
        frames, track = stream.frames, stream.frames.track
        kind, plain, key, adts, length_size = OTHER, b"", b"", b"", 0
        frame_sizes = frames.sizes.astype(np.int64)
        if track.media_type is MediaType.VIDEO:
            prefix = AnnexBPrefix(track.codec)
            kind, plain, key, length_size = ANNEXB, prefix.plain, prefix.key, prefix.length_size
        elif stream.format.adts:
            kind, adts = ADTS, AdtsHeader(track.codec).build(0)
        keep += [plain, key, adts]
        streams[index] = _Stream(stream.pid, stream.format.stream_id, kind, length_size, plain, key, adts,
                                 len(plain), len(key), first)
        buffers, local = source.locate(frames.offsets, frame_sizes)
        addresses.append(bases[buffers] + local)
        sizes.append(frame_sizes)
        sync.append(np.asarray(frames.sync, dtype=np.uint8) if kind == ANNEXB else
                    np.zeros(frames.count, dtype=np.uint8))
        first += frames.count
    scratch_size = int((table.header_size + table.es_size).max())
    scratch = ctypes.create_string_buffer(scratch_size)
    status = _LIBRARY.ts_write_es(
        address, plan.packet_count - PSI_PACKETS, first, len(table), table.stream,
        table.frame_start, table.frame_stop, table.pts, table.dts, table.header_size, table.es_size,
        table.first_af, table.pcr, table.random_access, table.extra_packets, table.packets, streams,
        len(plan.streams), np.concatenate(addresses), np.concatenate(sizes), np.concatenate(sync), scratch,
        scratch_size)
    if status:
        raise MediaError(ERRORS.get(status, f"the TS kernel failed ({status})"))
    return out
