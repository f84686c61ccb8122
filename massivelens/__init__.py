"""MassiveLens: see, measure and use massive activations in diffusion transformers.

The Python API (`massivelens.record`, `recording`, `zero_channels`, `open_session`, `cluster_tokens`) is loaded on first
use, so `import massivelens` (and the read-only CLI commands built on it) never pays for torch.

In a source checkout the subpackages (engine, sessions, gui, cli, resources) sit beside this folder,
as the design card lays the repository out; an installed wheel holds them inside it. Both import as
`massivelens.engine`, ... and never as generic top-level names.
"""
from __future__ import annotations

import importlib
from pathlib import Path

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "engine" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 - a package's own __path__

_API = {
    "record": "massivelens.engine.api",
    "recording": "massivelens.engine.api",
    "zero_channels": "massivelens.engine.api",
    "RecordingError": "massivelens.engine.api",
    "cluster_tokens": "massivelens.engine.analysis.clusters",
    "open_session": "massivelens.sessions.reader",
    "Session": "massivelens.sessions.reader",
    "SessionError": "massivelens.sessions.reader",
}

__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'massivelens' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value
