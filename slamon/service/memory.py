"""The service's heap at city scale: freed memory given back, long-lived objects kept out of the
garbage collector's full passes.

A round of 100,000 devices builds and drops tens of megabytes at once (a view, its exposition,
the rows of a write); glibc keeps freed heap pages for reuse, so the service's RSS would stay at its
busiest moment's. `malloc_trim` returns them, and `limit_arenas` keeps each thread from holding
a fragmented malloc arena of its own. Elsewhere (musl, macOS) both do nothing.

The fleet and its live state are about a million objects that live as long as the service; every
full collection walked them all, a pause of 0.2 s on the event loop (an API answer waiting behind
it) two or three times a round. `settle` exempts them once they are built.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
ARENAS = 2


def limit_arenas() -> None:
    """At most ARENAS malloc arenas for the whole process: glibc gives each thread that allocates
    its own (up to 8 per core), and the writer, the reader and the render threads each keep a
    fragmented one, tens of MB at city scale. Call it before the threads start."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        return
    if mallopt is not None:
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        mallopt(M_ARENA_MAX, ARENAS)


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


def settle() -> None:
    """Collect once, then keep every object alive now out of later full collections (gc.freeze):
    call it when the long-lived state is built (after the first round, after a reload).

    Frozen objects are still freed when their last reference goes; only a cycle among them would
    wait for the next `settle`, which thaws them first. The collection itself (~0.15 s at 100,000
    devices) replaces the automatic one that would have come within the round anyway."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
