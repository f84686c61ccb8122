"""Run / Cancel / progress / status plumbing shared by the forms that run one engine job on a JobRunner."""
from __future__ import annotations

from PySide6.QtGui import QCloseEvent


class JobForm:
    """Mixin for a QWidget with `runner` (JobRunner), `run_button`, `cancel_button`, `progress` and
    `status`; the runner reports progress as (done, total, text). Call `_connect_runner` once built."""

    running_text = "running…"

    def _connect_runner(self) -> None:
        self.runner.queued.connect(self._queued)
        self.runner.started.connect(lambda: self._set_running(True))
        self.runner.progress.connect(self._progress)
        self.runner.failed.connect(lambda message: self._stopped(f"failed: {message}"))
        self.runner.cancelled.connect(lambda _: self._stopped("cancelled"))

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setRange(0, 0 if running else 1)  # busy until the first report (loading the model)
        if running:
            self.status.setText(self.running_text)

    def _queued(self, position: int) -> None:
        """Another job holds the model: this one waits its turn; Cancel withdraws it."""
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"queued ({position} in line) behind the {self.runner.queue.describe_active()}: "
                            "it starts when that ends; Cancel withdraws it")

    def _cancel(self) -> None:
        """Withdraw a waiting job (it reports `cancelled` at once), or stop a running one at its next block."""
        waiting = self.runner.waiting()
        self.runner.cancel()
        if not waiting:
            self.status.setText("cancelling at the next block…")

    def _progress(self, report: tuple[int, int, str]) -> None:
        done, total, text = report
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(f"{done}/{total} {text}")

    def _stopped(self, message: str) -> None:
        self._set_running(False)
        self.status.setText(message)

    def closeEvent(self, event: QCloseEvent) -> None:
        """A closing form stops its run first, so no thread outlives the widget."""
        if self.runner.running():
            self.runner.cancel()
            self.runner.wait()
        super().closeEvent(event)
