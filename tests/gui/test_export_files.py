"""Exported figures look the same outside Qt: every SVG rendered by librsvg (and every PDF by poppler) matches the
PNG of the same view; PNGs come at the chosen resolution; file names get the chosen type."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from massivelens.gui.export import SCALES, ExportPreferences, export_widget, with_suffix
from massivelens.gui.figures import line_figure
from massivelens.gui.main_window import MainWindow
from tests.gui.helpers import pixels, qt_warnings
from tests.session_factory import PLANTED

RSVG, PDFTOPPM = shutil.which("rsvg-convert"), shutil.which("pdftoppm")


def rendered_elsewhere(path: Path, size: tuple[int, int], tmp: Path) -> np.ndarray:
    """The file drawn by a non-Qt renderer at `size` pixels, on white."""
    out = tmp / f"{path.stem}-{path.suffix[1:]}.png"
    if path.suffix == ".svg":
        subprocess.run([RSVG, "-w", str(size[0]), "-h", str(size[1]), "-b", "white", str(path), "-o", str(out)], check=True)
    else:
        subprocess.run([PDFTOPPM, "-png", "-singlefile", "-r", "72", str(path), str(out.with_suffix(""))], check=True)
    return pixels(QImage(str(out)))


def assert_alike(reference: np.ndarray, other: np.ndarray, name: str) -> None:
    """Same picture up to anti-aliasing and edges placed a pixel apart: strokes scaled into bars, blurred cells
    or stray shapes differ a lot over large areas (the issue's wide crosshairs covered ~5% of a heatmap, a
    flat shape the whole plot, smoothed cells change the inside of every cell)."""
    assert other.shape == reference.shape, name
    difference = np.full(reference.shape[:2], 255)
    padded = np.pad(other.astype(int), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = reference.shape[:2]
    for dy in range(3):
        for dx in range(3):
            shifted = padded[dy:dy + h, dx:dx + w]
            difference = np.minimum(difference, np.abs(reference.astype(int) - shifted).max(axis=2))
    assert (difference > 64).mean() < 0.04, f"{name}: {(difference > 64).mean():.1%} of pixels differ"
    assert difference.mean() < 8, f"{name}: mean difference {difference.mean():.1f}"


@pytest.mark.skipif(RSVG is None, reason="rsvg-convert (Debian's librsvg2-bin) is not installed")
def test_every_exported_view_renders_in_librsvg_as_in_qt(qtbot, settings, session_path, tmp_path, qtlog):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    window.open_path(session_path)
    window.selection.set(block=1, channel=PLANTED[0])
    window.export_preferences.png_scale = 1.0
    written = window.export_figures(tmp_path)
    for png in [p for p in written if p.suffix == ".png" and p.stem != "image"]:
        reference = pixels(QImage(str(png)))
        size = (reference.shape[1], reference.shape[0])
        assert_alike(reference, rendered_elsewhere(png.with_suffix(".svg"), size, tmp_path), png.stem + ".svg")
        if PDFTOPPM:
            assert_alike(reference, rendered_elsewhere(png.with_suffix(".pdf"), size, tmp_path), png.stem + ".pdf")
    assert qt_warnings(qtlog) == []


@pytest.mark.skipif(RSVG is None, reason="rsvg-convert (Debian's librsvg2-bin) is not installed")
def test_command_line_figures_render_in_librsvg_as_in_qt(qtbot, tmp_path):
    """claims' probe.svg and clusters_miou.svg: lines, error bars, markers and a flat reference line."""
    series = {"top": ([0, 1, 2], [1.0, 0.5, 0.1], [0.1, 0.05, 0.1]), "bottom": ([0, 1, 2], [1.0, 1.0, 1.0], None),
              "unperturbed": ([0, 1, 2], [1.0, 1.0, 1.0], None)}
    png, svg = line_figure(series, "probe", "k", "accuracy", tmp_path / "probe", x_ticks=["1", "2", "4"])
    reference = pixels(QImage(str(png)))
    assert_alike(reference, rendered_elsewhere(svg, (reference.shape[1], reference.shape[0]), tmp_path), "probe.svg")


def test_png_resolution_and_file_types(qtbot, settings, session_path, tmp_path):
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.show()
    window.open_path(session_path)
    view = window.view.heatmap
    assert window.export_preferences.png_scale == 2.0  # the default: twice the screen's pixels
    (two,) = window.export_view("channel_heatmap", tmp_path / "two.png")
    image = QImage(str(two))
    assert (image.width(), image.height()) == (2 * view.width(), 2 * view.height())
    next(a for a in window.resolution_actions.actions() if a.text() == "300 dpi").trigger()
    assert window.export_preferences.png_scale == SCALES["300 dpi"]
    assert float(settings.value("export/png_scale")) == SCALES["300 dpi"]  # remembered
    print_ready = QImage(str(export_widget(view, tmp_path / "print.png", window.export_preferences.png_scale)))
    assert print_ready.width() == round(view.width() * 300 / 96)
    assert round(print_ready.dotsPerMeterX() * 0.0254) == 300
    assert ExportPreferences(float(settings.value("export/png_scale"))).png_scale == SCALES["300 dpi"]
    assert with_suffix(Path("fig"), "SVG vector (*.svg)") == Path("fig.svg")
    assert with_suffix(Path("fig.pdf"), "SVG vector (*.svg)") == Path("fig.pdf")
    assert with_suffix(Path("v1.2"), "PNG image (*.png)") == Path("v1.2.png")
    saved = window.save_as(tmp_path / "my-triangle")
    assert saved is not None and saved.path == tmp_path / "my-triangle.h5"


def test_a_figure_of_many_blocks_gives_each_its_own_colour_and_marker():
    from massivelens.gui.figures import style

    looks = [style(f"single.{i}", i) for i in range(12)]
    assert len({colour for colour, _, _ in looks[:8]}) == 8  # a six-block model's curves never share a colour
    assert len({(colour, marker) for colour, _, marker in looks}) == 12
    assert style("top-k", 5)[0] == style("top", 0)[0]  # the strategies keep their own colours
