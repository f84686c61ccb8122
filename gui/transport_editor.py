"""The transport editor: source | target | result side by side, the settings of a sweep, Run / Cancel,
an alpha slider that scrubs through the sweep's results, and the strip's export.

A standalone widget: `TransportEditor(out_root).show()`, or `python -m massivelens.gui.transport_editor [FOLDER]`. A run is one engine job on
the app's job queue (`gui.worker.JobRunner`): it writes the sweep's folder (images, strip.png,
transport.json, sessions), and the editor shows what the folder holds, so the slider never waits
for the model.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from massivelens.engine.cancel import CancelToken
from massivelens.engine.defaults import (
    DEFAULT_FOREGROUND,
    DEFAULT_MODEL,
    FOREGROUND,
    INVERSION_GUIDANCE,
    INVERSIONS,
    MASK_MODES,
    K,
    transport_defaults,
)

from .export import export_reporting, save_dialog
from .generation_fields import GenerationFields
from .job_form import JobForm
from .naming import fresh_path
from .record_panel import embedded_items, model_choice
from .worker import JobQueue, JobRunner

PANEL = 160  # pixels per image panel: three fit a 1024 x 640 screen above the settings
STRIP_HEIGHT = 150  # the strip's row of images on screen (its file keeps 128 px cells and captions)


@dataclass(frozen=True)
class TransportParams:
    """The form as plain data (no torch on the GUI thread); blocks and window stay text for the engine to parse."""

    target_prompt: str
    out: Path
    source_prompt: str | None = None
    source_image: Path | None = None
    source_caption: str = ""
    inversion: str = INVERSIONS[0]
    inversion_guidance: float = INVERSION_GUIDANCE
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    blocks: str = ""
    window: str = ""
    mask: str = MASK_MODES[0]
    foreground: str = DEFAULT_FOREGROUND
    k: int = K
    model: str | None = None
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None


def transport_job(params: TransportParams, progress, cancel: CancelToken) -> Path:
    """The engine job: run the sweep and save its folder; imported here so torch loads on the worker thread."""
    from massivelens.engine import defaults
    from massivelens.engine.analysis.transport import (
        TransportRequest,
        parse_window,
        transport,
    )
    from massivelens.engine.analysis.transport_report import save
    from massivelens.engine.loading import ModelSpec

    fields = asdict(params)
    spec = ModelSpec(fields.pop("model") or defaults.DEFAULT_MODEL)
    fields.update(blocks=tuple(params.blocks.split()), window=parse_window(params.window))
    result = transport(TransportRequest(**fields, spec=spec), progress=lambda done, total, text: progress((done, total, text)), cancel=cancel)
    save(result)
    return params.out


def parse_alphas(text: str) -> tuple[float, ...]:
    """Space- or comma-separated numbers; ValueError names the bad one."""
    words = text.replace(",", " ").split()
    if not words:
        raise ValueError("give at least one alpha")
    try:
        return tuple(float(w) for w in words)
    except ValueError:
        raise ValueError(f"alphas must be numbers in [0, 1], got {text!r}") from None


# The editor starts on forward noising: on the embedded model inverse Euler reconstructs an uncaptioned reference at
# 4.5 dB (noise: 29.6 dB), and the caption field is optional (measured with tests/gui's image-source transport check).
EDITOR_INVERSION = "noise"
STRIP = "strip.png"  # engine.analysis.transport_report.STRIP (not imported: it would load torch here)


class ImagePanel(QWidget):
    """A titled image, scaled with nearest neighbour so small images stay crisp."""

    def __init__(self, title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image = QLabel("—")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(PANEL, PANEL)
        self.image.setStyleSheet("background: #222; color: #aaa;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.image)

    def show_file(self, path: Path | None, title: str | None = None) -> None:
        if title is not None:
            self.title.setText(title)
        pixmap = QPixmap(str(path)) if path is not None else QPixmap()
        if pixmap.isNull():
            self.image.setPixmap(QPixmap())
            self.image.setText("—")
            return
        self.image.setPixmap(pixmap.scaled(PANEL, PANEL, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))


class TransportEditor(JobForm, QWidget):
    """Runs one sweep at a time into `out_root/transport-<time>` and shows it."""

    def __init__(self, out_root: Path, job=transport_job, queue: JobQueue | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("MassiveLens: transport")
        self.out_root = Path(out_root)
        self.folder: Path | None = None
        self.report: dict | None = None
        self.runner = JobRunner(job, queue, "transport sweep", self)
        self.runner.finished.connect(self._finished)
        self.source_panel, self.target_panel, self.result_panel = ImagePanel("source"), ImagePanel("target"), ImagePanel("result")
        self._build_controls()
        self._layout()
        self._connect_runner()

    # Form ----------------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.source_kind = QComboBox()
        self.source_kind.addItems(["prompt", "image"])
        self.source_prompt = QLineEdit()
        self.source_prompt.setPlaceholderText("a large red circle on a white background at center")
        self.source_image = QLineEdit()
        self.source_image.setPlaceholderText("reference image file")
        self.source_caption = QLineEdit()
        self.source_caption.setPlaceholderText("caption of the reference (optional)")
        self.inversion = QComboBox()
        self.inversion.addItems(INVERSIONS)
        self.inversion.setCurrentText(EDITOR_INVERSION)
        self.inversion.setToolTip("noise: the reference forward-noised (works with or without a caption); euler: inverse "
                                  "Euler inversion, the better reconstruction when the caption describes the reference "
                                  "(without one it can fall apart: 4 dB on the embedded model)")
        self.inversion_guidance = QDoubleSpinBox()
        self.inversion_guidance.setRange(0.0, 100.0)
        self.inversion_guidance.setSingleStep(0.5)
        self.inversion_guidance.setValue(INVERSION_GUIDANCE)
        self.inversion_guidance.setToolTip("guidance of the reference's inversion and trajectory (1 = none: best reconstruction)")
        self.source_kind.currentTextChanged.connect(self._show_source_rows)
        self.target_prompt = QLineEdit()
        self.target_prompt.setPlaceholderText("a large blue circle on a white background at center")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(24)  # long entries and hub ids scroll instead of widening the window
        self.model.addItems(embedded_items())
        self.model.lineEdit().setCursorPosition(0)  # the entry reads from its start in a narrow field
        self.generation = GenerationFields()
        self.blocks = QLineEdit()
        self.blocks.setPlaceholderText("all (e.g. 0:4 single.1)")
        self.window = QLineEdit()
        self.window.setPlaceholderText("all steps (e.g. 2:10, half-open)")
        self.mask = QComboBox()
        self.mask.addItems(MASK_MODES)
        self.foreground = QComboBox()
        for name in FOREGROUND:
            self.foreground.addItem(f"{name} (paper)" if name == DEFAULT_FOREGROUND else name, name)
        self.foreground.setToolTip("which cluster is each run's foreground for the source/target/union masks: "
                                   + "; ".join(f"{n}: {d}" for n, d in FOREGROUND.items()))
        self.mask.currentTextChanged.connect(lambda mode: self.foreground.setEnabled(mode != "all"))
        self.foreground.setEnabled(self.mask.currentText() != "all")
        self.k = QSpinBox()
        self.k.setRange(1, 4096)
        self._model_defaults = None
        self.model.currentTextChanged.connect(self._show_model_defaults)
        self._show_model_defaults(self.model.currentText())
        self.alphas = QLineEdit("0 0.25 0.5 0.75 1")
        self.alpha = QSlider(Qt.Orientation.Horizontal)
        self.alpha.setEnabled(False)
        self.alpha.valueChanged.connect(self._show_result)
        self.alpha_label = QLabel("alpha —")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._cancel)
        self.export_button = QPushButton("Export strip…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_dialog)
        self.progress = QProgressBar()
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.strip = QLabel("the sweep's strip (source, then each alpha) shows here after a run")
        self.strip.setStyleSheet("color: gray")
        self.strip_scroll = QScrollArea()  # a long sweep scrolls sideways instead of widening the window
        self.strip_scroll.setWidget(self.strip)
        self.strip_scroll.setWidgetResizable(True)
        self.strip_scroll.setFixedHeight(STRIP_HEIGHT + 24)

    def _layout(self) -> None:
        images = QHBoxLayout()
        for panel in (self.source_panel, self.target_panel, self.result_panel):
            images.addWidget(panel)
        slider = QHBoxLayout()
        slider.addWidget(self.alpha_label)
        slider.addWidget(self.alpha, stretch=1)
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse_image)
        image = QHBoxLayout()
        image.addWidget(self.source_image, stretch=1)
        image.addWidget(browse)
        self.form = form = QFormLayout()
        form.addRow("source", self.source_kind)
        form.addRow("source prompt", self.source_prompt)
        form.addRow("reference", image)
        form.addRow("caption", self.source_caption)
        form.addRow("inversion", self.inversion)
        form.addRow("inversion guidance", self.inversion_guidance)
        form.addRow("target prompt", self.target_prompt)
        form.addRow("model", self.model)
        self.generation.add_rows(form)
        form.addRow("blocks", self.blocks)
        form.addRow("step window", self.window)
        mask = QHBoxLayout()
        mask.addWidget(self.mask, stretch=1)
        mask.addWidget(QLabel("foreground"))
        mask.addWidget(self.foreground, stretch=1)
        form.addRow("mask", mask)
        form.addRow("top-k channels", self.k)
        form.addRow("alphas", self.alphas)
        buttons = QHBoxLayout()
        for button in (self.run_button, self.cancel_button, self.export_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(images)
        layout.addLayout(slider)
        layout.addWidget(self.strip_scroll)
        settings = QWidget()
        settings.setLayout(form)
        form_scroll = QScrollArea()  # the settings scroll on a short screen; the images and buttons stay in view
        form_scroll.setWidget(settings)
        form_scroll.setWidgetResizable(True)
        form_scroll.setMinimumHeight(120)
        layout.addWidget(form_scroll, stretch=1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self._show_source_rows(self.source_kind.currentText())

    def _show_model_defaults(self, text: str) -> None:
        """Fill blocks, window, mask and k with the chosen model's transport defaults (its massivelens.json),
        when they differ from the last model's: typing a path keeps what the user set."""
        own = transport_defaults(model_choice(text) or DEFAULT_MODEL)
        if own == self._model_defaults:
            return
        self._model_defaults = own
        self.blocks.setText(" ".join(own.blocks))
        start, end = own.window
        self.window.setText("" if own.window == (None, None) else f"{'' if start is None else start}:{'' if end is None else end}")
        self.mask.setCurrentText(own.mask)
        self.k.setValue(own.k)

    def _show_source_rows(self, kind: str) -> None:
        """Only the rows of the chosen source kind (rows 1-5: prompt, reference, caption, inversion, its guidance)."""
        for row, wanted in ((1, "prompt"), (2, "image"), (3, "image"), (4, "image"), (5, "image")):
            self.form.setRowVisible(row, kind == wanted)

    def _browse_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a reference image", "", "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.source_image.setText(path)

    def params(self, out: Path) -> TransportParams:
        """The form as a request (ValueError for what the form itself can tell is wrong)."""
        target = self.target_prompt.text().strip()
        if not target:
            raise ValueError("enter a target prompt")
        image = self.source_kind.currentText() == "image"
        if image and not self.source_image.text().strip():
            raise ValueError("choose a reference image")
        if not image and not self.source_prompt.text().strip():
            raise ValueError("enter a source prompt")
        model = self.model.currentText().strip()
        return TransportParams(
            target_prompt=target, out=out,
            source_prompt=None if image else self.source_prompt.text().strip(),
            source_image=Path(self.source_image.text().strip()) if image else None,
            source_caption=self.source_caption.text().strip() if image else "",
            inversion=self.inversion.currentText(), inversion_guidance=self.inversion_guidance.value(), alphas=parse_alphas(self.alphas.text()),
            blocks=self.blocks.text(), window=self.window.text(), mask=self.mask.currentText(),
            foreground=self.foreground.currentData(), k=self.k.value(),
            model=model_choice(model), **self.generation.values(),
        )

    # Running ---------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.runner.running():
            return
        out = fresh_path(self.out_root, "transport")
        try:
            params = self.params(out)
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        self.runner.start(params)

    def _finished(self, folder: Path) -> None:
        self._set_running(False)
        self.show_folder(folder)

    def show_folder(self, folder: Path) -> None:
        """Show a saved sweep (a folder with transport.json), e.g. one the CLI wrote."""
        self.folder = Path(folder)
        self.report = json.loads((self.folder / "transport.json").read_text())
        reference = self.folder / "reference.png"
        source = reference if reference.is_file() else self.folder / "source.png"
        self.source_panel.show_file(source, "reference" if reference.is_file() else "source")
        self.target_panel.show_file(self.folder / "target.png")
        results = self.report["results"]
        self.alpha.setRange(0, len(results) - 1)
        self.alpha.setEnabled(len(results) > 1)
        self.export_button.setEnabled(True)
        self.alpha.setValue(len(results) - 1)
        self._show_result(self.alpha.value())
        strip = QPixmap(str(self.folder / STRIP))
        self.strip.setPixmap(strip.scaledToHeight(STRIP_HEIGHT, Qt.TransformationMode.FastTransformation)
                             if not strip.isNull() else QPixmap())
        self.strip.setToolTip(str(self.folder / STRIP))
        smooth = self.report.get("smoothness")
        self.status.setText(f"saved in {self.folder}" + ("" if smooth is None else f" · smoothness {smooth:.3f}"))

    def _show_result(self, index: int) -> None:
        if self.report is None:
            return
        row = self.report["results"][index]
        transfer = "" if row["from_source"] is None else f" · from source {row['from_source']:.2f}"
        if row.get("unchanged") is not None:
            transfer += f" · rest kept {row['unchanged']:.2f}"
        self.alpha_label.setText(f"alpha {row['alpha']:g}{transfer}")
        self.result_panel.show_file(self.folder / row["image"], f"result (alpha {row['alpha']:g})")

    def export_strip(self, path: Path) -> Path | None:
        """The sweep's strip (one row: source, then every alpha) to `path`: a PNG is the file itself, pixel for
        pixel; an SVG or PDF embeds it at its own size."""
        path = Path(path)
        if path.suffix.lower() == ".png":
            shutil.copyfile(self.folder / STRIP, path)
            self.status.setText(f"exported {path}")
            return path
        label = QLabel()
        label.setPixmap(QPixmap(str(self.folder / STRIP)))
        label.resize(label.pixmap().size())
        return export_reporting(label, path, self.status)

    def _export_dialog(self) -> None:
        path = save_dialog(self, "Export the alpha strip", (self.folder or self.out_root) / STRIP)
        if path:
            self.export_strip(path)


def main(argv: list[str]) -> int:
    """`python -m massivelens.gui.transport_editor [SWEEP_FOLDER]`: the editor on its own, runs saved under ./transport."""
    from PySide6.QtWidgets import QApplication

    from .display import has_display

    if not has_display():
        print("error: no display to open the transport editor on; use `python main.py transport` headless",
              file=sys.stderr)
        return 1

    app = QApplication.instance() or QApplication(sys.argv[:1])
    editor = TransportEditor(Path.cwd() / "transport")
    if argv:
        editor.show_folder(Path(argv[0]))
    editor.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
