"""A probe's folder as the app reads it: `probe.json`, written by the probe job on the worker thread from
engine.probe's ProbeResult, and read on the GUI thread without importing the engine (and torch)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from massivelens.sessions.reader import open_session

REPORT = "probe.json"
METRICS = {"psnr": "PSNR to the baseline (dB)", "accuracy": "all-attributes accuracy", "mask_iou": "subject-mask IoU"}


def save_report(result, out: Path, mode: str) -> Path:
    """`result`: an engine.probe.ProbeResult; `mode`: its request's ("zero" or "mean"). Baseline sessions are
    stored relative to `out` when inside it."""
    out = Path(out)
    runs = list(dict.fromkeys((r.prompt_index, r.seed) for r in result.rows))
    data = {
        "model": result.model,
        "mode": mode,
        "baseline_accuracy": result.baseline_accuracy,
        "baselines": [{"prompt_index": p, "seed": s, "session": _relative(Path(path), out)}
                      for (p, s), path in zip(runs, result.sessions, strict=True)],
        "rows": [asdict(r) for r in result.rows],
        "summary": result.summary(),
    }
    path = out / REPORT
    path.write_text(json.dumps(data, indent=1))
    return path


def _relative(path: Path, out: Path) -> str:
    try:
        return str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path.resolve())


@dataclass(frozen=True)
class ProbeReport:
    """Rows are engine.probe.ProbeRow fields as a dict; `summary` is ProbeResult.summary()."""

    folder: Path
    model: str
    mode: str
    baseline_accuracy: float | None
    baselines: dict[tuple[int, int], Path]  # (prompt index, seed) -> baseline session
    rows: list[dict]
    summary: list[dict]

    @classmethod
    def load(cls, folder: Path) -> "ProbeReport":
        """Raises OSError or ValueError (json.JSONDecodeError, a missing key) for a folder without a usable report."""
        folder = Path(folder)
        data = json.loads((folder / REPORT).read_text())
        try:
            baselines = {(b["prompt_index"], b["seed"]): folder / b["session"] for b in data["baselines"]}
            return cls(folder, data["model"], data["mode"], data["baseline_accuracy"], baselines, data["rows"], data["summary"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{folder / REPORT}: not a probe report ({exc})") from None

    def runs(self) -> list[tuple[int, int, str]]:
        """(prompt index, seed, prompt) of every baseline generation, in run order."""
        return list(dict.fromkeys((r["prompt_index"], r["seed"], r["prompt"]) for r in self.rows))

    def strategies(self) -> list[str]:
        return list(dict.fromkeys(r["strategy"] for r in self.rows))

    def ks(self) -> list[int]:
        return sorted({r["k"] for r in self.rows})

    def metrics(self) -> list[str]:
        """The metrics this probe measured (accuracy and mask IoU only exist on the embedded model)."""
        return [m for m in METRICS if any(e[m] is not None for e in self.summary)]

    def draws(self) -> int:
        """Random draws per k (1 when the probe has no random strategy)."""
        return 1 + max((r["draw"] for r in self.rows), default=0)

    def tiles(self, prompt_index: int, seed: int, draw: int = 0) -> dict[tuple[str, int], dict]:
        """One row per (strategy, k) of one baseline generation, the random strategy at `draw`: what the grid shows."""
        return {(r["strategy"], r["k"]): r for r in self.rows
                if (r["prompt_index"], r["seed"]) == (prompt_index, seed) and r["draw"] == (draw if r["strategy"] == "random" else 0)}

    def image_path(self, row: dict) -> Path:
        return self.folder / "images" / row["image"]

    def baseline_image(self, prompt_index: int, seed: int) -> np.ndarray | None:
        with open_session(self.baselines[(prompt_index, seed)]) as session:
            return session.image
