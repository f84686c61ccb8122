"""The one selection every view follows: stream, block, step, channel, and a video's frame."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

FIELDS = ("stream", "block", "step", "channel", "frame")


class Selection(QObject):
    """Shared by all views of a window (and by both sides of a comparison).

    `changed` carries the names of the fields that changed, so a view redraws only what depends on them
    (a step move must not recompute the block x step heatmap, for example).
    """

    changed = Signal(frozenset)

    def __init__(self, stream: str = "image", block: int = 0, step: int = 0, channel: int = 0, frame: int = 0,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.stream, self.block, self.step, self.channel, self.frame = stream, block, step, channel, frame

    def set(self, **values: str | int) -> None:
        """Update any fields at once and emit `changed` once, only if something changed."""
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown selection fields: {', '.join(sorted(unknown))}")
        changed = frozenset(name for name, value in values.items() if getattr(self, name) != value)
        for name in changed:
            setattr(self, name, values[name])
        if changed:
            self.changed.emit(changed)
