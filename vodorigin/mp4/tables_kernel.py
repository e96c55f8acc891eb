"""stsc's pass in C (_tables_kernel.c), loaded with ctypes when it is built.

`scripts/setup.sh` builds it next to its source, as it builds the TS writer (mux/ts_kernel.py), and
again whenever the source is newer. Without a C compiler, or if the library does not load or was
built from another version of the source (KERNEL_VERSION), mp4/tables.py does the same in numpy:
tests/test_tables_kernel.py compares the two on every fixture and on generated tables, refusals
included. For the audio track of a 2-hour title (190,000 runs) the pass takes about a third of a
millisecond, against 1.3 ms for numpy's passes over the big-endian columns (README: Performance).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from vodorigin import kernels

LIBRARY = Path(__file__).with_name("_tables_kernel.so")
KERNEL_VERSION = 1  # tables_kernel_version() of the source this module calls (its arguments' layout)
MAX_CHUNKS = 2**30  # the kernel's sums stay below 2^62 for fewer chunks (a moov under 4 GiB has fewer)


def _load() -> ctypes.CDLL | None:
    """The library, when it is built (kernels.load)."""
    int64 = ctypes.c_int64
    signature = [ctypes.c_void_p, int64, int64, kernels.I64P, ctypes.POINTER(int64)]
    return kernels.load(LIBRARY, "tables_kernel_version", KERNEL_VERSION, {"stsc_first_samples": signature})


_LIBRARY = _load()


def available() -> bool:
    return _LIBRARY is not None


def stsc_first_samples(runs: memoryview, n_runs: int, n_chunks: int) -> tuple[np.ndarray, int] | None:
    """(first sample of each run, largest samples-per-chunk) of stsc's `n_runs` runs (12 bytes each,
    as the file has them), or None when the runs are not numbered in order from chunk 1 to at most
    `n_chunks`. The kernel must be available, and n_chunks below MAX_CHUNKS."""
    assert _LIBRARY is not None and len(runs) >= 12 * n_runs and n_chunks < MAX_CHUNKS
    first_sample = np.empty(n_runs, dtype=np.int64)
    largest = ctypes.c_int64(0)
    address = np.frombuffer(runs, dtype=np.uint8).ctypes.data  # the moov's bytes, read in place
    if _LIBRARY.stsc_first_samples(address, n_runs, n_chunks, first_sample, ctypes.byref(largest)):
        return None
    return first_sample, largest.value
