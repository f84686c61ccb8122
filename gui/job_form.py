"""Run / Cancel / progress / status plumbing shared by the forms that run one engine job on a RecordRunner."""
from __future__ import annotations

from PySide6.QtGui import QCloseEvent


class JobForm:
    """Mixin for a QWidget with `runner` (RecordRunner), `run_button`, `cancel_button`, `progress` and
    `status`; the runner reports progress as (done, total, text)."""

    running_text = "running…"

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setRange(0, 0 if running else 1)  # busy until the first report (loading the model)
        if running:
            self.status.setText(self.running_text)

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
