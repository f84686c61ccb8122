"""The disruption probe in the app (issue 5): engine.probe.probe on the record panel's model, for one or a few
prompts, run on the recording worker (cancellable, one-line errors), then its image grid and quality-vs-k plot.

A run writes a folder (images/, sessions/, probe.csv, probe_summary.csv and probe.json) under `out_root`; the
panel shows what the folder holds, so nothing on the GUI thread imports the engine's model code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from massivelens.engine.cancel import CancelToken
from massivelens.engine.defaults import PROBE_KS, STRATEGIES
from massivelens.sessions.schema import RANDOM_DRAWS

from .export import ExportPreferences, export_reporting, save_dialog
from .job_form import JobForm
from .naming import fresh_path
from .probe_report import ProbeReport, save_report
from .probe_results import ProbeResults
from .record_panel import RecordPanel
from .worker import Job, JobQueue, JobRunner, ProgressFn

MODES = ("zero", "mean")


@dataclass(frozen=True)
class ProbeParams:
    """The probe form plus the record panel's model settings, as plain data; None means the model's default."""

    prompts: tuple[str, ...]
    out: Path
    ks: tuple[int, ...] = PROBE_KS
    strategies: tuple[str, ...] = STRATEGIES
    draws: int = RANDOM_DRAWS
    mode: str = "zero"
    model: str | None = None
    dtype: str = "fp32"
    offload: bool = False
    seed: int = 0
    negative_prompt: str = ""
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None


def probe_job(params: ProbeParams, progress: ProgressFn, cancel: CancelToken, run: Callable | None = None) -> Path:
    """The worker's job: engine.probe.probe (or `run`, a stand-in with its signature: tests inject one), then
    the tables and probe.json. The engine is imported here, so torch loads on the worker thread."""
    from massivelens.engine import defaults
    from massivelens.engine.analysis.probe import ProbeRequest, probe, write_tables
    from massivelens.engine.loading import ModelSpec

    fields = asdict(params)
    spec = ModelSpec(fields.pop("model") or defaults.DEFAULT_MODEL, fields.pop("dtype"), offload=fields.pop("offload"))
    seeds = (fields.pop("seed"),)
    request = ProbeRequest(**{**fields, "prompts": list(params.prompts)}, spec=spec, seeds=seeds)
    result = (run or probe)(request, progress=lambda done, total, text: progress((done, total, text)), cancel=cancel)
    write_tables(result, params.out)
    save_report(result, params.out, params.mode)
    return params.out


def parse_ks(text: str) -> tuple[int, ...]:
    """Space- or comma-separated positive integers, in the order given, without repeats."""
    words = text.replace(",", " ").split()
    if not words or not all(w.isdigit() and int(w) > 0 for w in words):
        raise ValueError(f"k must be positive whole numbers, e.g. 1 2 4 8 16; got {text!r}")
    return tuple(dict.fromkeys(int(w) for w in words))


class ProbePanel(JobForm, QWidget):
    """A window of its own; its runs go through `queue`, the app's one line of engine jobs."""

    running_text = "running (the model loads first)…"

    def __init__(self, record_panel: RecordPanel, out_root: Path, job: Job = probe_job,
                 queue: JobQueue | None = None, preferences: ExportPreferences | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("MassiveLens · disruption probe")
        self.record_panel = record_panel
        self.out_root = Path(out_root)
        self.preferences = preferences or ExportPreferences()
        self.folder: Path | None = None
        self.runner = JobRunner(job, queue, "probe", self)
        self.runner.finished.connect(self.show_folder)
        self.results = ProbeResults()
        self._build()
        self._connect_runner()
        self.resize(1280, 860)

    # Form ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.prompts = QPlainTextEdit()
        self.prompts.setPlaceholderText("one prompt a line (default: the record panel's prompt)")
        self.prompts.setMaximumHeight(90)
        self.ks = QLineEdit(" ".join(map(str, PROBE_KS)))
        self.ks.setToolTip("channels disrupted per block; one grid column each")
        self.strategies = {name: QCheckBox(name) for name in STRATEGIES}
        for box in self.strategies.values():
            box.setChecked(True)
        self.draws = QSpinBox()
        self.draws.setRange(1, 20)
        self.draws.setValue(RANDOM_DRAWS)
        self.draws.setToolTip("random draws per k (the random strategy only)")
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("set the chosen channels to zero, or to their mean over tokens")
        self.model = QLabel()
        self.model.setWordWrap(True)
        self.model.setStyleSheet("color: gray")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)
        self.export_button = QPushButton("Export…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_dialog)
        self.progress = QProgressBar()
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        strategies = QHBoxLayout()
        for box in self.strategies.values():
            strategies.addWidget(box)
        form = QFormLayout()
        form.addRow("prompts", self.prompts)
        form.addRow("k", self.ks)
        form.addRow("strategies", strategies)
        form.addRow("random draws", self.draws)
        form.addRow("mode", self.mode)
        form.addRow("model", self.model)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.cancel_button, self.export_button):
            buttons.addWidget(button)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addLayout(buttons)
        side.addWidget(self.progress)
        side.addWidget(self.status)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(330)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.results)
        layout = QHBoxLayout(self)
        layout.addWidget(side_widget, alignment=Qt.AlignmentFlag.AlignTop)
        layout.addWidget(scroll, stretch=1)
        self.describe_model()

    def describe_model(self) -> None:
        """The generation settings come from the record panel: say which, so a run holds no surprise."""
        p = self.record_panel.params(Path())
        size = f"{p.width or 'default'}×{p.height or 'default'}"
        self.model.setText(f"{p.model or 'embedded model'} · {p.dtype} · seed {p.seed} · steps {p.steps or 'default'} · "
                           f"guidance {p.guidance if p.guidance is not None else 'default'} · {size} "
                           f"(from the record panel)")

    def params(self, out: Path) -> ProbeParams:
        """The form as a request (ValueError for what the form itself can tell is wrong)."""
        record = self.record_panel.params(out)
        prompts = tuple(line.strip() for line in self.prompts.toPlainText().splitlines() if line.strip())
        prompts = prompts or ((record.prompt,) if record.prompt else ())
        if not prompts:
            raise ValueError("enter a prompt (here or in the record panel)")
        strategies = tuple(name for name, box in self.strategies.items() if box.isChecked())
        if not strategies:
            raise ValueError("choose at least one strategy")
        return ProbeParams(
            prompts=prompts, out=out, ks=parse_ks(self.ks.text()), strategies=strategies, draws=self.draws.value(),
            mode=self.mode.currentText(), model=record.model, dtype=record.dtype, offload=record.offload, seed=record.seed,
            negative_prompt=record.negative_prompt, steps=record.steps, guidance=record.guidance,
            height=record.height, width=record.width,
        )

    # Running -------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.runner.running():
            return
        self.describe_model()
        try:
            params = self.params(fresh_path(self.out_root, "probe"))
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.runner.start(params)

    def show_folder(self, folder: Path) -> None:
        """Show a probe's folder (one with probe.json)."""
        self._set_running(False)
        try:
            report = ProbeReport.load(folder)
        except (OSError, ValueError) as exc:
            self.status.setText(f"cannot show {folder}: {exc}")
            return
        self.folder = Path(folder)
        self.results.show_report(report)
        self.export_button.setEnabled(True)
        self.status.setText(f"{len(report.rows)} generations saved in {self.folder}")

    # Export --------------------------------------------------------------------------------------
    def export(self, path: Path) -> Path | None:
        """The grid and the plot as one figure (PNG, SVG or PDF by suffix)."""
        return export_reporting(self.results.figure, path, self.status, self.preferences.png_scale)

    def _export_dialog(self) -> None:
        path = save_dialog(self, "Export the probe figure", (self.folder or self.out_root) / "probe_figure.png")
        if path:
            self.export(path)

