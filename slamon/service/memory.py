"""Giving freed memory back to the system after the service's big transient work.

A round of 100,000 devices builds and drops tens of megabytes at once (a view, its exposition,
the rows of a write); glibc keeps freed heap pages for reuse, so the service's RSS would stay at its
busiest moment's. `malloc_trim` returns them. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def _trimmer() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is None:
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


give_back = _trimmer()
"""Return freed heap memory to the system (a few milliseconds; call it off the event loop)."""
