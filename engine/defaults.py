"""Defaults in one place: the embedded model, generation settings, and per-model overrides.

A pipeline folder may carry `massivelens.json` with its own generation defaults (the embedded
model does: 64x64, few steps); hub models fall back to the pipeline's own size and these values.
"""
from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = str(REPO / "resources" / "shapes-dit")
MODEL_DEFAULTS_FILE = "massivelens.json"

K = 16
STEPS = 28
GUIDANCE = 3.5
SEED = 0
DTYPE = "fp32"
DTYPES = ("fp32", "bf16", "fp16")


def model_defaults(model: str) -> dict:
    """Generation defaults stored beside a local pipeline (keys: steps, guidance, height, width)."""
    path = Path(model) / MODEL_DEFAULTS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())
