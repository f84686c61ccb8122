"""One background thread that does a recording's file work, so the denoising loop never waits on disk.

The producer submits callables to a bounded queue: the bound is the back-pressure (a writer that falls
behind makes the producer wait instead of filling memory). The first error in the thread stops it and
is raised to the producer at its next submit or at close, so a failing disk ends the run with a clear
message instead of a hang; later work is dropped, and what was written stays as it was.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

QUEUE_STEPS = 4  # steps in flight: a FLUX-1024 default step is ~9 MB of host memory


class WriterFailed(Exception):
    """The background writer stopped; the message says why (and is one line)."""


class BackgroundWriter:
    def __init__(self, name: str = "massivelens-writer", depth: int = QUEUE_STEPS):
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 - reported to the producer, which owns the run
                self._error = exc
            finally:
                self._queue.task_done()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue one piece of work; waits while the queue is full, raises if the writer has failed."""
        self._raise_if_failed()
        while True:
            try:
                self._queue.put(job, timeout=0.1)
                return
            except queue.Full:
                self._raise_if_failed()

    def drain(self) -> None:
        """Wait until everything submitted is done; raise if any of it failed."""
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Finish the queued work and stop the thread (idempotent); raise a failure not yet reported."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise WriterFailed(f"writing the session failed: {_one_line(self._error)}") from self._error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
