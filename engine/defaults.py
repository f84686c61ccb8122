"""Defaults in one place: the embedded model, generation settings, and per-model overrides.

A pipeline folder may carry `massivelens.json` with its own generation defaults (the embedded
model does: 64x64, few steps); hub models fall back to the pipeline's own size and these values.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from massivelens.resources import EMBEDDED_MODEL

DEFAULT_MODEL = str(EMBEDDED_MODEL)
MODEL_DEFAULTS_FILE = "massivelens.json"

K = 16
STEPS = 28
GUIDANCE = 3.5
SEED = 0
DTYPE = "fp32"
DTYPES = ("fp32", "bf16", "fp16")

# Recording profiles (sessions.schema.PROFILES): a session to explore, and a batch of thousands.
PROFILE = "default"
BATCH_PROFILE = "lean"

# The disruption probe: channel sets and how many channels of each are zeroed.
STRATEGIES = ("top", "bottom", "random")
PROBE_KS = (1, 2, 4, 8, 16)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)

# Transport: where channels are copied (the default first) and how a reference image becomes a trajectory.
MASK_MODES = ("all", "union", "source", "target")
# Which token cluster is the subject (clusters, claims, transport masks, the cluster view). "score" is the
# paper's; it assumes the massive channels are larger on the subject, and picks the background where they
# are smaller (FLUX.2's channel 124). "border" needs no sign: the background is what surrounds the picture.
FOREGROUND = {"score": "the cluster with the higher mean summed normalised score (the paper's rule)",
              "border": "the cluster holding the smallest share of the image's border tokens (each frame's, "
                        "for a video); ties go to the higher score"}
DEFAULT_FOREGROUND = "score"
INVERSIONS = ("euler", "noise")
# Inversion and the reference's trajectory run without classifier-free guidance: on the width-96
# embedded model (20 steps), inverse Euler at guidance 1 reconstructed references at 26.6 dB, as well as
# the VAE round trip did; at guidance 4 at 23.2 dB, below a plain generation of the caption (24.7 dB).
# The width-128 model reconstructs at 32.1 dB at guidance 1 (bench/transport_embedded.py).
INVERSION_GUIDANCE = 1.0


def model_defaults(model: str) -> dict:
    """Generation defaults stored beside a local pipeline (keys: steps, guidance, height, width; `transport`)."""
    path = Path(model) / MODEL_DEFAULTS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


@dataclass(frozen=True)
class TransportSettings:
    """Where transport acts. A model folder's `transport` entry in massivelens.json holds the settings
    measured best on it (blocks as names or "START:END" ranges, window as [start, end], mask, k);
    anything else transports the top K channels of every block at every step, on all tokens."""

    blocks: tuple[str, ...] = ()  # () = every block
    window: tuple[int | None, int | None] = (None, None)  # half-open; None = first / last step
    mask: str = MASK_MODES[0]
    k: int = K


def transport_defaults(model: str) -> TransportSettings:
    own = model_defaults(model).get("transport", {})
    window = own.get("window", [None, None])
    return TransportSettings(blocks=tuple(own.get("blocks", ())), window=(window[0], window[1]),
                             mask=own.get("mask", MASK_MODES[0]), k=int(own.get("k", K)))
