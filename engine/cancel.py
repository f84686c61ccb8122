"""A cancel token shared between the caller and the hooks, checked at every block call."""
from __future__ import annotations

import threading

from .errors import Cancelled


class CancelToken:
    """Thread-safe flag: the GUI thread sets it, the worker's hooks raise at the next block."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")
