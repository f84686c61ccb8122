"""Recording off the GUI thread: a QObject worker moved to a QThread (the napari thread_worker pattern).

The worker only ever reports through signals, which Qt queues to the GUI thread; the GUI only ever reaches the
worker through the cancel token. The engine (and torch) is imported inside the worker thread, so starting
a recording never freezes the window.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import (
    QCoreApplication,
    QObject,
    Qt,
    QThread,
    Signal,
    SignalInstance,
    Slot,
)

from massivelens.engine import defaults
from massivelens.engine.cancel import CancelToken

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordParams:
    """What the form asks for; None means the model's default (as in engine.jobs.RecordRequest)."""

    prompt: str
    out: Path
    model: str | None = None  # None: the embedded model
    negative_prompt: str = ""
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    k: int = defaults.K
    dtype: str = "fp32"
    device: str | None = None  # None: CUDA when present, else CPU
    offload: bool = False
    hidden_blocks: tuple[str, ...] = ()
    control_sets: tuple[str, ...] = ()


ProgressFn = Callable[[Any], None]  # receives engine.progress.Progress(step, steps, block, blocks, block_name)
Job = Callable[[RecordParams, ProgressFn, CancelToken], Path]


def engine_job(params: RecordParams, progress: ProgressFn, cancel: CancelToken) -> Path:
    """The real job: engine.jobs.record, imported here so torch loads on the worker thread."""
    from massivelens.engine.jobs import RecordRequest, record

    fields = asdict(params)
    if fields["model"] is None:
        del fields["model"]
    return record(RecordRequest(**fields), progress=progress, cancel=cancel)


def user_message(exc: BaseException) -> str:
    """One line for a dialog: engine errors are already worded for the user; anything else is named."""
    from massivelens.engine.errors import EngineError

    if isinstance(exc, EngineError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller size, fewer steps, bf16, or offload"
    text = str(exc).strip().splitlines()
    return f"unexpected {type(exc).__name__}: {text[0][:200] if text else 'no details'}"


class RecordWorker(QObject):
    """Runs one job. Exactly one of finished / failed / cancelled is emitted, then `done`."""

    progress = Signal(object)
    finished = Signal(Path)
    failed = Signal(str)
    cancelled = Signal(Path)  # the (possibly partial) session file
    done = Signal()

    def __init__(self, params: RecordParams, job: Job = engine_job):
        super().__init__()
        self.params = params
        self.job = job
        self.token = CancelToken()

    @Slot()
    def run(self) -> None:
        try:
            path = self.job(self.params, self.progress.emit, self.token)
        except Exception as exc:  # the worker must report, never die: an escaped error would kill the app
            if self.token.cancelled:
                self.cancelled.emit(self.params.out)
            else:
                log.warning("recording failed", exc_info=True)
                self.failed.emit(user_message(exc))
        else:
            self.finished.emit(Path(path))
        self.done.emit()


class RecordRunner(QObject):
    """Owns the thread of the current recording, one at a time.

    The outcome (finished / failed / cancelled) is re-emitted only after the thread has ended, so whoever
    hears it can start the next recording at once.
    """

    progress = Signal(object)
    finished = Signal(Path)
    failed = Signal(str)
    cancelled = Signal(Path)

    def __init__(self, job: Job = engine_job, parent: QObject | None = None):
        super().__init__(parent)
        self.job = job
        self._thread: QThread | None = None
        self._worker: RecordWorker | None = None
        self._outcome: tuple[SignalInstance, object] | None = None

    def running(self) -> bool:
        return self._thread is not None

    def start(self, params: RecordParams) -> None:
        if self.running():
            raise RuntimeError("a recording is already running")
        thread, worker = QThread(), RecordWorker(params, self.job)
        worker.moveToThread(thread)
        worker.progress.connect(self.progress)
        direct = Qt.ConnectionType.DirectConnection  # these run on the worker thread, before `done`
        worker.finished.connect(lambda path: self._keep(self.finished, path), direct)
        worker.failed.connect(lambda message: self._keep(self.failed, message), direct)
        worker.cancelled.connect(lambda path: self._keep(self.cancelled, path), direct)
        worker.done.connect(thread.quit, direct)  # must work while the GUI thread blocks in wait()
        thread.started.connect(worker.run)
        thread.finished.connect(self._end)
        self._thread, self._worker, self._outcome = thread, worker, None
        thread.start()

    def cancel(self) -> None:
        """Ask the job to stop at its next block; the worker then reports `cancelled`."""
        if self._worker is not None:
            self._worker.token.cancel()

    def wait(self) -> None:
        """Block until the thread has ended, then deliver its outcome (the window is closing mid-run:
        the report must still reach the GUI so the session is kept)."""
        if self._thread is not None:
            self._thread.wait()
            QCoreApplication.sendPostedEvents(self)
            self._end()

    def _keep(self, signal: SignalInstance, value: object) -> None:
        self._outcome = (signal, value)

    def _end(self) -> None:
        """Python owns the thread and the worker: dropping them here deletes both on the GUI thread, once the
        thread has really stopped (no deleteLater: PySide would delete them a second time)."""
        if self._thread is None:
            return
        self._thread.wait()
        self._thread = self._worker = None
        if self._outcome is not None:
            signal, value = self._outcome
            self._outcome = None
            signal.emit(value)
