"""Keeps Python 3.11 alive under PySide6 wheels that hand out None without a reference.

PySide6's abi3 wheels (seen with 6.12.0) are built against 3.12+ headers, where None is immortal (PEP 683),
so a wrapped C++ method that returns None skips the incref. On Python 3.11 None is mortal: every void Qt
call (each QPainter.drawLine of a repaint) takes one reference away, and after a few thousand calls the
interpreter aborts with "Fatal Python error: none_dealloc" (True and False run down the same way, more
slowly). We detect the leak and give these singletons enough references for the lifetime of any process,
which is what 3.12 does by design.
"""
from __future__ import annotations

import ctypes
import sys

_PROBES = 16
_HEADROOM = 1 << 48  # a leak of one reference per call would need centuries of repaints to use this up
_checked = False


def keep_none_alive() -> bool:
    """Apply the fix where the leak is present (once per process); returns whether it was applied now."""
    global _checked
    if _checked or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    _checked = True
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBES):
        probe.setObjectName("probe")
    if before - sys.getrefcount(None) < _PROBES:
        return False
    for singleton in (None, True, False):
        ctypes.c_ssize_t.from_address(id(singleton)).value += _HEADROOM  # ob_refcnt: PyObject's first field
    return True
