"""The Help menu: keyboard shortcuts, what each view shows, the paper, the example session, About (versions).

Texts live here, in one place; dialogs are non-modal message boxes, so the app keeps running behind them.
"""
from __future__ import annotations

import importlib.metadata
import platform
from typing import Callable

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox

PAPER_URL = "https://arxiv.org/abs/2605.13974"
PAPER = "Turri et al. 2026, <i>Few Channels Draw The Whole Picture</i> (arXiv 2605.13974)"

SHORTCUTS = [
    ("Ctrl+O", "open a session, a batch folder or its summary.h5"),
    ("Ctrl+Shift+S", "save the session under another name"),
    ("Ctrl+W / Delete (in the list)", "close the session (its file stays on disk)"),
    ("Ctrl+E", "export every view (PNG, SVG, PDF) into a folder"),
    ("click a cell", "select its block and channel (or step) in every view"),
    ("arrow keys (on a heatmap)", "move the selection by one block or one column"),
    ("wheel / right-drag", "zoom a heatmap"),
    ("double-click / Home", "show the whole heatmap again (also: right-click > View All)"),
    ("hover a cell", "its block, channel, step and value"),
    ("Ctrl+click in the list", "select two sessions to compare"),
    ("Ctrl+Q", "quit (a running recording is cancelled; its finished steps are kept)"),
]

VIEWS = [
    ("Block × channel heatmap", "mean |x| of every channel at every block, at the selected step and stream; a circle "
     "marks a channel that passes Sun et al.'s rule (max |x| > 100 and > 1000 × the block's median); the box marks "
     "the selection."),
    ("Block × step heatmap", "mean |x| of the selected channel at every block and step: how a massive channel grows "
     "through the run."),
    ("Ranking", "per block, the top channels by mean |x| (the paper's rule; the selected one in brackets), max/median "
     "and max |x|; tinted rows hold a channel massive by Sun et al.'s rule. A row click selects its top channel."),
    ("Image and token map", "the generated image and the selected channel's signed values over the image tokens "
     "(recorded for the top-k channels, or every channel of a block kept with --hidden-blocks)."),
    ("Token clusters", "KMeans on a channel set's first k token maps at the selected block and step; magenta is the "
     "cluster shown (by default the rule's foreground: the paper's rule takes the highest summed score, the border rule "
     "the cluster holding the least of the image's border, for channels smaller on the subject), the cyan outline the "
     "subject mask; the title gives every cluster's IoU with that mask."),
]


def add_help_menu(window: QMainWindow, open_example: Callable[[], object]) -> QMenu:
    menu = window.menuBar().addMenu("&Help")
    for text, slot in (("&Keyboard Shortcuts", lambda: show(window, "Keyboard shortcuts", shortcuts_html())),
                       ("&What Each View Shows", lambda: show(window, "What each view shows", views_html())),
                       ("&Supported Architectures", lambda: show(window, "Supported architectures", architectures_html())),
                       ("The &Paper (arXiv)", lambda: QDesktopServices.openUrl(QUrl(PAPER_URL))),
                       ("Open the &Example Session", open_example),
                       ("&About MassiveLens", lambda: show(window, "About MassiveLens", about_html()))):
        menu.addAction(text).triggered.connect(slot)
    return menu


def show(window: QMainWindow, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Close, window)
    box.open()
    return box


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><b>{key}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for key, what in SHORTCUTS)
    return f"<table>{rows}</table>"


def views_html() -> str:
    return "".join(f"<p><b>{name}</b>: {what}</p>" for name, what in VIEWS)


def architectures_html() -> str:
    """The adapter table's classes (loads torch: asked for, never at start)."""
    from massivelens.engine.core.architectures import ADAPTERS

    rows = "".join(f"<tr><td>{name}&nbsp;&nbsp;</td><td>{adapter.cfg} guidance</td></tr>" for name, adapter in ADAPTERS.items())
    return ("<p>Transformer classes with an adapter (where the blocks are, which output is which stream, how "
            "guidance branches are laid out). Any other diffusers DiT gets an adapter inferred on its first call, "
            "noted in the session, or a one-line reason why not.</p>"
            f"<table>{rows}</table>")


def about_html() -> str:
    names = ("massivelens", "PySide6", "pyqtgraph", "h5py", "numpy", "torch", "diffusers")
    versions = "".join(f"<tr><td>{name}&nbsp;&nbsp;</td><td>{version(name)}</td></tr>" for name in names)
    return (f"<p><b>MassiveLens</b>: see, measure and use massive activations in diffusion transformers, "
            f"after {PAPER}.</p><table>{versions}<tr><td>Python</td><td>{platform.python_version()}</td></tr></table>")


def version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
