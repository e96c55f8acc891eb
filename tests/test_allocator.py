"""allocator_retain_mib: glibc's mallopt through ctypes (vodorigin/allocator.py), in processes of
their own (the options last for the process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
from vodorigin.allocator import retain_freed_memory
assert retain_freed_memory(0) is False  # glibc's defaults: nothing is called
assert retain_freed_memory(64) is True  # each mallopt accepted (it returns 1)
assert retain_freed_memory(4096) is True  # beyond glibc's ceilings the options are clamped first
"""

KEPT_AFTER_FREE = """
import os, sys
from vodorigin.allocator import retain_freed_memory
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
retain_freed_memory(int(sys.argv[1]))
before = resident()
blocks = [bytearray(1 << 20) for _ in range(32)]  # 32 MiB in 1 MiB blocks, written (zeroed)
del blocks
print((resident() - before) >> 20)
"""


def test_the_options_are_accepted() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr


def _kept_mib(retain: int) -> int:
    result = subprocess.run([sys.executable, "-c", KEPT_AFTER_FREE, str(retain)], capture_output=True,
                            text=True, timeout=60, check=True)
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_freed_memory_stays_with_the_process_only_when_asked() -> None:
    """With glibc's defaults 1 MiB blocks are mapped and unmapped one by one (RSS falls back when
    they are freed); with allocator_retain_mib 64 they come from the heap, which keeps them."""
    assert _kept_mib(0) < 8
    assert _kept_mib(64) >= 24
