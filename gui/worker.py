"""Engine jobs off the GUI thread: a QObject worker moved to a QThread (the napari thread_worker pattern).

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
from massivelens.engine.memory import release_freed_memory

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
    profile: str = defaults.PROFILE


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


class JobWorker(QObject):
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
                log.warning("job failed", exc_info=True)
                self.failed.emit(user_message(exc))
        else:
            self.finished.emit(Path(path))
        finally:
            release_freed_memory()  # this thread's arena would otherwise keep the job's freed memory
        self.done.emit()


class JobQueue(QObject):
    """One engine job at a time for the whole app: recording, probing and transport all hook the one cached
    pipeline, and two jobs on it at once break each other (a meta-tensor copy, a KeyError in the recorder).

    A runner that asks while another runs waits here, first come first served; `changed` fires whenever the
    running job or the waiting line changes, so forms can say where they stand.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.active: JobRunner | None = None
        self.waiting: list[JobRunner] = []

    def acquire(self, runner: "JobRunner") -> bool:
        """True: `runner` may start now. False: it waits and is started by `release` when its turn comes."""
        if self.active is None:
            self.active = runner
            self.changed.emit()
            return True
        self.waiting.append(runner)
        self.changed.emit()
        return False

    def withdraw(self, runner: "JobRunner") -> None:
        if runner in self.waiting:
            self.waiting.remove(runner)
            self.changed.emit()

    def release(self, runner: "JobRunner") -> None:
        """The active job ended: start the next waiting one."""
        if self.active is runner:
            self.active = None
        if self.active is None and self.waiting:
            self.active = self.waiting.pop(0)
            self.active.launch()
        self.changed.emit()

    def position(self, runner: "JobRunner") -> int | None:
        """1 for the next to run; None when `runner` is not waiting."""
        return self.waiting.index(runner) + 1 if runner in self.waiting else None

    def describe_active(self) -> str:
        return self.active.label if self.active is not None else "nothing"


class JobRunner(QObject):
    """Owns the thread of one client's job (the recording, the probe, the transport sweep), on the shared queue.

    `start` runs at once when the queue is free, else the job waits (`queued` fires) and runs when its turn
    comes; `cancel` withdraws a waiting job or stops a running one. The outcome (finished / failed / cancelled)
    is re-emitted only after the thread has ended, so whoever hears it can start the next job at once.
    """

    queued = Signal(int)  # place in the line, 1 = next
    started = Signal()
    progress = Signal(object)
    finished = Signal(Path)
    failed = Signal(str)
    cancelled = Signal(Path)

    def __init__(self, job: Job = engine_job, queue: JobQueue | None = None, label: str = "job",
                 parent: QObject | None = None):
        super().__init__(parent)
        self.job = job
        self.queue = queue or JobQueue(self)
        self.label = label
        self.params: object | None = None
        self._thread: QThread | None = None
        self._worker: JobWorker | None = None
        self._outcome: tuple[SignalInstance, object] | None = None

    def running(self) -> bool:
        """Running or waiting its turn: either way, not free to start another job."""
        return self._thread is not None or self.waiting()

    def waiting(self) -> bool:
        return self.queue.position(self) is not None

    def start(self, params) -> None:
        if self.running():
            raise RuntimeError(f"the {self.label} is already running or queued")
        self.params = params
        if self.queue.acquire(self):
            self.launch()
        else:
            self.queued.emit(self.queue.position(self))

    def launch(self) -> None:
        """Start the thread (the queue calls this when the job's turn comes)."""
        thread, worker = QThread(), JobWorker(self.params, self.job)
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
        self.started.emit()

    def cancel(self) -> None:
        """Withdraw a waiting job (reported as cancelled), or ask a running one to stop at its next block."""
        if self.waiting():
            self.queue.withdraw(self)
            self.cancelled.emit(Path(getattr(self.params, "out", "")))
        elif self._worker is not None:
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
        outcome, self._outcome = self._outcome, None
        self.queue.release(self)
        if outcome is not None:
            signal, value = outcome
            signal.emit(value)
