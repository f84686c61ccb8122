"""The recording form: model, prompt and generation settings, Record / Cancel, and progress."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from massivelens.engine import defaults
from massivelens.resources import EMBEDDED_LABELS, EMBEDDED_MODEL
from massivelens.sessions.schema import CONTROL_SETS, PROFILES

from .generation_fields import GenerationFields
from .worker import RecordParams

EMBEDDED = f"embedded model ({EMBEDDED_MODEL.name}, {EMBEDDED_LABELS[EMBEDDED_MODEL.name]})"


def embedded_items() -> list[str]:
    """The model list's fixed entries: the default embedded model, then every other shipped one by folder."""
    from massivelens.resources import embedded_models

    others = [f"{name} ({EMBEDDED_LABELS[name]})" for name in embedded_models() if name != EMBEDDED_MODEL.name]
    return [EMBEDDED, *others]


def model_choice(text: str) -> str | None:
    """The model a list entry names: None for the default embedded model, a folder for another shipped one."""
    from massivelens.resources import embedded_models

    text = text.strip()
    if text in ("", EMBEDDED):
        return None
    name = text.split(" (")[0]
    if name in embedded_models() and text in embedded_items():
        return str(embedded_models()[name])
    return text


# A caption of the embedded model's world, so Record works at once; the placeholder shows the grammar.
DEFAULT_PROMPT = "a small blue triangle on a yellow background at bottom right"
REMEMBERED = ("model", "prompt", "dtype", "device", "profile")  # form fields kept between launches (record/<name>)
PROFILE_TIPS = {
    "full": "statistics in float32 at every step, token maps at every step",
    "default": "16-bit statistics and token maps at every step (a FLUX-1024 28-step session: ~244 MB)",
    "lean": "statistics and token maps at the middle and last step only, exact run aggregates (~24 MB at FLUX size)",
}
AUTO_DEVICE = "auto"
DEVICES = (AUTO_DEVICE, "cpu", "cuda", "mps")
class RecordPanel(QWidget):
    """Emits `recordRequested` on a valid form; the window picks the output file, calls `params(out)` and runs it."""

    recordRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setMinimumContentsLength(24)  # long entries and hub ids scroll instead of widening the window
        self.model.addItems(embedded_items())
        self.model.lineEdit().setCursorPosition(0)  # the entry reads from its start in a narrow field
        self.model.setToolTip("the embedded model, a hub id (e.g. black-forest-labs/FLUX.1-dev) or a local folder; "
                              "Help > Supported Architectures lists the transformer classes")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("choose a local diffusers pipeline folder")
        browse.clicked.connect(self._browse_model)
        self.dtype = QComboBox()
        self.dtype.addItems(defaults.DTYPES)
        self.offload = QCheckBox("CPU offload")
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItems(DEVICES)
        self.device.setToolTip("torch device; auto = CUDA when present, else CPU; also e.g. cuda:1")
        self.prompt = QLineEdit(DEFAULT_PROMPT)
        self.prompt.setCursorPosition(0)
        self.prompt.setPlaceholderText("e.g. a large red circle on a white background at top left")
        self.negative = QLineEdit()
        self.generation = GenerationFields()
        self.k = QSpinBox()
        self.k.setRange(1, 256)
        self.k.setValue(defaults.K)
        self.k.setToolTip("how many top channels per block keep their token maps")
        self.controls = {name: QCheckBox(f"{name}-k") for name in CONTROL_SETS}
        for name, box in self.controls.items():
            box.setToolTip(f"also keep the token maps of a {name}-k channel set (the paper's controls)")
        self.profile = QComboBox()
        self.profile.addItems(PROFILES)
        self.profile.setCurrentText(defaults.PROFILE)
        for i, name in enumerate(PROFILES):
            self.profile.setItemData(i, PROFILE_TIPS[name], Qt.ItemDataRole.ToolTipRole)
        self.profile.setToolTip("what the session keeps: " + "; ".join(f"{k}: {v}" for k, v in PROFILE_TIPS.items()))
        self.hidden_blocks = QLineEdit()
        self.hidden_blocks.setPlaceholderText("none (e.g. double.0 single.3)")
        self.hidden_blocks.setToolTip("blocks whose full hidden states are kept, so every channel has a token map")
        self.record = QPushButton("Record")
        self.record.setDefault(True)
        self.record.clicked.connect(self._emit_record)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self.cancelRequested)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self._layout(browse)

    def _layout(self, browse: QToolButton) -> None:
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, stretch=1)
        model_row.addWidget(browse)
        precision = QHBoxLayout()
        precision.addWidget(self.dtype)
        precision.addWidget(self.device)
        precision.addWidget(self.offload)
        controls = QHBoxLayout()
        for box in self.controls.values():
            controls.addWidget(box)
        form = QFormLayout()
        form.addRow("model", model_row)
        form.addRow("dtype, device", precision)
        form.addRow("prompt", self.prompt)
        form.addRow("negative", self.negative)
        self.generation.add_rows(form)
        form.addRow("top-k maps", self.k)
        form.addRow("profile", self.profile)
        form.addRow("controls", controls)
        form.addRow("hidden blocks", self.hidden_blocks)
        buttons = QHBoxLayout()
        buttons.addWidget(self.record)
        buttons.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

    def remember(self, settings) -> None:
        for name in REMEMBERED:
            widget = getattr(self, name)
            settings.setValue(f"record/{name}", widget.text() if isinstance(widget, QLineEdit) else widget.currentText())

    def restore(self, settings) -> None:
        for name in REMEMBERED:
            text = settings.value(f"record/{name}")
            widget = getattr(self, name)
            if not isinstance(text, str) or not text:
                continue
            if isinstance(widget, QLineEdit):
                widget.setText(text)
            elif widget.isEditable():
                widget.setEditText(text)
            elif widget.findText(text) >= 0:
                widget.setCurrentText(text)
        self.prompt.setCursorPosition(0)  # the start of a long prompt says most

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a diffusers pipeline folder")
        if folder:
            self.model.setEditText(folder)

    def params(self, out: Path) -> RecordParams:
        """The form as a request; unset fields stay None so the engine applies the model's defaults."""
        model = self.model.currentText().strip()
        device = self.device.currentText().strip()
        return RecordParams(
            prompt=self.prompt.text().strip(),
            out=out,
            model=model_choice(model),
            negative_prompt=self.negative.text().strip(),
            **self.generation.values(),
            k=self.k.value(),
            dtype=self.dtype.currentText(),
            device=None if device in ("", AUTO_DEVICE) else device,
            offload=self.offload.isChecked(),
            hidden_blocks=tuple(self.hidden_blocks.text().replace(",", " ").split()),
            control_sets=tuple(name for name, box in self.controls.items() if box.isChecked()),
            profile=self.profile.currentText(),
        )

    def _emit_record(self) -> None:
        if not self.prompt.text().strip():
            self.status.setText("Enter a prompt first.")
            self.prompt.setFocus()
            return
        self.recordRequested.emit()

    # State shown while a job runs ----------------------------------------------------------------------
    def set_running(self, running: bool, message: str) -> None:
        self.record.setEnabled(not running)
        self.cancel.setEnabled(running)
        self.status.setText(message)
        if running:
            self.progress.setRange(0, 0)  # busy until the first block reports (loading the model)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")

    def set_queued(self, place: int, active: str) -> None:
        """Another job holds the model: the recording waits its turn; Cancel withdraws it."""
        self.record.setEnabled(False)
        self.cancel.setEnabled(True)
        self.status.setText(f"Queued ({place} in line) behind the {active}; Cancel withdraws it.")

    def show_progress(self, p) -> None:
        """p: engine Progress(step, steps, block, blocks, block_name), 0-based step and block."""
        total = max(1, p.steps * p.blocks)
        self.progress.setRange(0, total)
        self.progress.setValue(p.step * p.blocks + p.block + 1)
        self.progress.setFormat(f"step {p.step + 1}/{p.steps} · block {p.block + 1}/{p.blocks} ({p.block_name})")
