"""Loading a compiled kernel (mux/_ts_kernel.c, mp4/_tables_kernel.c) with ctypes.

Each kernel is one small C file that `scripts/setup.sh` (and the Dockerfile) builds into a shared
library next to its source. Its module uses it only when it is built, loads, and was built from
the version of the source the module calls (the arguments' layout); otherwise the module's numpy
form does the same work.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np

I64P = np.ctypeslib.ndpointer(dtype=np.int64, flags="C_CONTIGUOUS")  # an int64 column's argument type
Signature = list[Any]  # a function's ctypes argument types; each function returns a C int (a status)


def load(library: Path, version_function: str, version: int, functions: dict[str, Signature]
         ) -> ctypes.CDLL | None:
    """The library at `library` when it is built, `version_function()` returns `version` and it
    has every one of `functions`, each then given its argument types (returning int); else None."""
    if not library.exists():
        return None
    try:
        loaded = ctypes.CDLL(str(library))
        if getattr(loaded, version_function)() != version:
            return None
        for name, argtypes in functions.items():
            function = getattr(loaded, name)
            function.restype = ctypes.c_int
            function.argtypes = argtypes
    except (OSError, AttributeError):
        return None
    return loaded
