"""Seed, steps, guidance and size: the generation settings every job form asks for, built and read in one place."""
from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QSpinBox

DEFAULT = "default"  # shown at a box's minimum, which means "the model's default"


def default_spin(maximum: int, step: int = 1) -> QSpinBox:
    """A spin box whose 0 reads "default" (the engine then applies the model's own value)."""
    box = QSpinBox()
    box.setRange(0, maximum)
    box.setSingleStep(step)
    box.setSpecialValueText(DEFAULT)
    return box


class GenerationFields:
    """The widgets; `add_rows` puts them in a form and `values` reads them as request fields (None: the model's)."""

    def __init__(self) -> None:
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.steps = default_spin(1000)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(-1.0, 100.0)
        self.guidance.setValue(-1.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setSpecialValueText(DEFAULT)
        self.width_, self.height_ = default_spin(4096, 16), default_spin(4096, 16)

    def add_rows(self, form: QFormLayout) -> None:
        size = QHBoxLayout()
        size.addWidget(self.width_)
        size.addWidget(QLabel("×"))
        size.addWidget(self.height_)
        form.addRow("seed", self.seed)
        form.addRow("steps", self.steps)
        form.addRow("guidance", self.guidance)
        form.addRow("size (w × h)", size)

    def values(self) -> dict:
        return dict(
            seed=self.seed.value(),
            steps=self.steps.value() or None,
            guidance=None if self.guidance.value() < 0 else self.guidance.value(),
            height=self.height_.value() or None,
            width=self.width_.value() or None,
        )
