"""allocator_retain_mib: glibc's mallopt through ctypes (vodorigin/allocator.py), in a process of
its own (the options last for the process)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
from vodorigin.allocator import retain_freed_memory
assert retain_freed_memory(0) is False  # glibc's defaults: nothing is called
assert retain_freed_memory(64) is True  # each mallopt accepted (it returns 1)
assert retain_freed_memory(4096) is True  # beyond glibc's ceilings the options are clamped first
"""


def test_glibc_keeps_freed_memory_when_asked() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
