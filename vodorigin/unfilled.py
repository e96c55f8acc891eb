"""New bytes objects written in place before anyone sees them.

CPython builds bytes in C this way: PyBytes_FromStringAndSize(NULL, n) makes an object whose n
bytes are not yet written, and its maker fills them before handing it out. Through ctypes the TS
kernel writes a segment into one (mux/ts_kernel.py), and local storage reads a range from the page
cache into one (storage/local.py): the bytes arrive in their final object in one copy, without a
zeroed buffer that would then be copied into bytes.

The contract is the maker's: fill every byte, and let no one see the object before (or if filling
fails: drop it). Empty objects are CPython's shared singleton, so a size of 0 gets b"" and nothing
to write.
"""

from __future__ import annotations

import ctypes

_NEW_BYTES = ctypes.pythonapi.PyBytes_FromStringAndSize
_NEW_BYTES.restype = ctypes.py_object
_NEW_BYTES.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)
_BYTES_DATA = ctypes.pythonapi.PyBytes_AsString
_BYTES_DATA.restype = ctypes.c_void_p
_BYTES_DATA.argtypes = (ctypes.py_object,)


def unfilled_bytes(size: int) -> tuple[bytes, int]:
    """A new bytes object of `size` bytes, not yet written, and the address of its contents (0 for
    size 0, which has none to write)."""
    if size <= 0:
        return b"", 0
    data: bytes = _NEW_BYTES(None, size)
    address = _BYTES_DATA(data)
    assert address
    return data, address


def writable_view(address: int, size: int) -> memoryview:
    """A writable view of `size` bytes at `address` (of an unfilled bytes object, which must stay
    referenced while the view is used)."""
    return memoryview((ctypes.c_char * size).from_address(address)).cast("B")
