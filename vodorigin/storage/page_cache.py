"""Whether the page cache holds a range of a file: cachestat(2), Linux 6.5.

A file range sent with sendfile(2) from the event loop must not wait for the disk, and sendfile
has no flag that refuses to (preadv2 has RWF_NOWAIT, which local storage uses for its reads).
cachestat counts the pages of a range that the page cache holds, without touching them: when it
counts them all, the send copies nothing from the disk. Its number is 451 on every architecture
(new system calls share one table since Linux 5.1). Where the kernel lacks it (ENOSYS), or a
seccomp filter refuses it (EPERM), `holds` answers False from then on and ranges are read.
"""

from __future__ import annotations

import ctypes
import errno
import mmap

CACHESTAT = 451
PAGE = mmap.PAGESIZE


class _Range(ctypes.Structure):  # struct cachestat_range
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Counts(ctypes.Structure):  # struct cachestat
    _fields_ = [(name, ctypes.c_uint64) for name in
                ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = (ctypes.c_long, ctypes.c_int, ctypes.POINTER(_Range), ctypes.POINTER(_Counts),
                     ctypes.c_uint)
_available = True
_span, _counts = _Range(), _Counts()  # asked from the event loop's thread only: made once
_span_ref, _counts_ref = ctypes.byref(_span), ctypes.byref(_counts)


def holds(fd: int, offset: int, length: int) -> bool:
    """True when every page of [offset, offset + length) of the open file is in the page cache.

    False when some page is not, for an empty range (cachestat reads a length of 0 as "to the end
    of the file"), and on a kernel that cannot tell."""
    global _available
    if not _available or length <= 0 or offset < 0:
        return False
    _span.off, _span.len = offset, length
    if _syscall(CACHESTAT, fd, _span_ref, _counts_ref, 0) != 0:
        if ctypes.get_errno() != errno.EBADF:  # this descriptor's fault; anything else: the kernel's
            _available = False
        return False
    pages = (offset + length - 1) // PAGE - offset // PAGE + 1
    return _counts.nr_cache >= pages
