"""Handing freed heap memory back to the operating system after a job.

The app runs each job on a fresh worker thread. glibc gives each thread its own malloc arena, and the
megabytes a job frees there (latents, activations, HDF5 buffers) stay mapped to the process until something
trims them: a long session's RSS then grows by arenas of dead memory. `malloc_trim(0)` returns the free
pages of every arena. Elsewhere (macOS, Windows, musl) there is nothing to call and this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> bool:
    """True when the C library trimmed its heaps (glibc); False where it has no malloc_trim."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
