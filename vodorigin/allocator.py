"""glibc's malloc told to keep freed memory for reuse (`allocator_retain_mib`).

By default glibc gives large freed blocks back to the operating system (allocations over its
dynamic mmap threshold, and heap tops over 128 KiB), so the next request that needs as much
memory pays the page faults again. Parsing a long title's moov allocates tens of MB of arrays
and frees most of them: with freed memory kept, a 2-hour title's index with every cache off took
11 ms instead of 22 ms here (README: Performance), at the cost of up to `mib` MiB more resident
memory per worker. glibc's mallopt (M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD); other C
libraries are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling on 64-bit systems (4 MiB x sizeof(long))
TOP_PAD_MAX = 64 << 20


def retain_freed_memory(mib: int) -> bool:
    """Keep up to `mib` MiB of freed memory in this process (0: glibc's defaults). Whether applied."""
    if mib <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    size = mib << 20
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, min(size, MMAP_THRESHOLD_MAX)), (M_TRIM_THRESHOLD, size),
        (M_TOP_PAD, min(size, TOP_PAD_MAX))))
