"""What the app remembers between launches (QSettings): window geometry and docks, splitter positions, the record
form's model and prompt, and the view options. One table of keys, read at start and written at close."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

GEOMETRY, STATE = "window/geometry", "window/state"
LAUNCHED = "launched"  # set after the first launch, which opens the example session


def save_window(settings: QSettings, window: QMainWindow, splitters: dict[str, QSplitter]) -> None:
    settings.setValue(GEOMETRY, window.saveGeometry())
    settings.setValue(STATE, window.saveState())
    for name, splitter in splitters.items():
        settings.setValue(f"splitters/{name}", splitter.saveState())


def restore_window(settings: QSettings, window: QMainWindow, splitters: dict[str, QSplitter]) -> bool:
    """True when a saved geometry was applied (else the caller picks a size)."""
    for name, splitter in splitters.items():
        state = settings.value(f"splitters/{name}")
        if isinstance(state, QByteArray):
            splitter.restoreState(state)
    state = settings.value(STATE)
    if isinstance(state, QByteArray):
        window.restoreState(state)
    geometry = settings.value(GEOMETRY)
    return isinstance(geometry, QByteArray) and window.restoreGeometry(geometry)


def value(settings: QSettings, key: str, default, kind=str):
    """A setting of the type `kind` (INI files give back strings), or `default` when absent or unreadable."""
    raw = settings.value(key, None)
    if raw is None:
        return default
    if kind is bool:
        return raw in (True, "true", "1", 1)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        return default
