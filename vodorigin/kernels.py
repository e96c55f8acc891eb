"""Loading a compiled kernel (mux/_ts_kernel.c, mp4/_tables_kernel.c) with ctypes.

Each kernel is one small C file that `scripts/setup.sh` (and the Dockerfile) builds into a shared
library next to its source. Its module uses it only when it is built, loads, and was built from
the version of the source the module calls (the arguments' layout); otherwise the module's numpy
form does the same work.
"""

from __future__ import annotations

import ctypes
from pathlib import Path


def load(library: Path, version_function: str, version: int, functions: tuple[str, ...]
         ) -> ctypes.CDLL | None:
    """The library at `library` when it is built, `version_function()` returns `version` and it
    has every one of `functions`; else None."""
    if not library.exists():
        return None
    try:
        loaded = ctypes.CDLL(str(library))
        if getattr(loaded, version_function)() != version:
            return None
        for name in functions:
            getattr(loaded, name)
    except (OSError, AttributeError):
        return None
    return loaded
