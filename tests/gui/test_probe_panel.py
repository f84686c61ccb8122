"""The probe panel: a run through the worker with a fake probe (grid, captions, plot, export, errors, cancel)
and once with the real engine on the tiny FLUX pipeline."""
from __future__ import annotations

import csv
import time
from functools import partial
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QImage, QPixmap

from massivelens.engine.errors import BadRequest
from massivelens.gui.app import settle
from massivelens.gui.main_window import MainWindow
from massivelens.gui.probe_panel import ProbePanel, probe_job
from massivelens.gui.probe_results import TILE, caption
from massivelens.gui.record_panel import RecordPanel
from massivelens.gui.session_list import to_qimage
from massivelens.sessions.reader import open_session
from tests.gui.fakes import fake_probe, slow_job
from tests.gui.helpers import assert_not_blank, pixels
from tests.tiny_pipelines import NEGATIVE_PROMPT, tiny_call_kwargs

PROMPT = "a small red circle on a blue background at top left"


def make_panel(qtbot, tmp_path: Path, job=None, **kwargs) -> ProbePanel:
    record = RecordPanel()
    record.prompt.setText(PROMPT)
    panel = ProbePanel(record, tmp_path / "probes", job=job or partial(probe_job, run=fake_probe(world=True)), **kwargs)
    qtbot.addWidget(record)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def run(qtbot, panel: ProbePanel, timeout: int = 20_000) -> Path:
    with qtbot.waitSignal(panel.runner.finished, timeout=timeout) as done:
        panel.run_button.click()
    qtbot.waitUntil(lambda: panel.export_button.isEnabled())
    return done.args[0]


def shown(tile) -> np.ndarray:
    return pixels(tile.image.pixmap().toImage())


def scaled(image: QImage) -> np.ndarray:
    """An image as a tile shows it (small images: nearest neighbour)."""
    return pixels(QPixmap.fromImage(image).scaled(TILE, TILE).toImage())


def test_grid_has_one_tile_per_strategy_and_k_with_its_metrics(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path)
    panel.ks.setText("1 2 4")
    panel.draws.setValue(2)
    folder = run(qtbot, panel)
    results = panel.results
    assert set(results.tiles) == {(s, k) for s in ("top", "bottom", "random") for k in (1, 2, 4)}
    rows = {(r["strategy"], int(r["k"]), int(r["draw"])): r for r in csv.DictReader((folder / "probe.csv").open())}
    assert len(rows) == 3 + 3 + 6  # random: two draws per k; the grid shows one, picked by the draw box
    assert results.draw.isEnabled() and results.draw.maximum() == 2 and "draw 1 of 2" in results.title.text()
    for draw in (0, 1):
        results.draw.setValue(draw + 1)
        for (strategy, k), tile in results.tiles.items():
            row = rows[(strategy, k, draw if strategy == "random" else 0)]
            np.testing.assert_array_equal(shown(tile), scaled(QImage(str(folder / "images" / row["image"]))))
            assert tile.caption.text().startswith(f"PSNR {float(row['psnr']):.1f} dB") and "accuracy" in tile.caption.text()
    results.draw.setValue(1)
    with open_session(folder / "sessions" / "000-seed0.h5") as s:
        baseline = s.image
    np.testing.assert_array_equal(shown(results.baseline), scaled(to_qimage(baseline)))
    assert PROMPT in results.title.text() and not results.generation.isEnabled()  # one prompt: nothing to pick
    assert [results.metric_box.itemData(i) for i in range(results.metric_box.count())] == ["psnr", "accuracy", "mask_iou"]
    curves = {item.name(): item for item in results.plot_item.listDataItems()}
    summary = {(e["strategy"], e["k"]): e for e in panel.results.report.summary}
    assert set(curves) == {"top-k", "bottom-k", "random-k"}
    np.testing.assert_allclose(curves["random-k"].yData, [summary[("random", k)]["psnr"] for k in (1, 2, 4)])
    results.metric_box.setCurrentIndex(1)
    plot = results.plot_item
    names = [item.name() for item in plot.listDataItems()]
    assert names == ["unperturbed", "random-k", "top-k", "bottom-k"]  # the reference under, bottom-k over it
    styles = {item.name(): (item.opts["pen"].style(), item.opts["symbol"]) for item in plot.listDataItems()}
    assert len(set(styles.values())) == 4  # dash and marker tell overlapping lines apart
    lo, hi = plot.getViewBox().viewRange()[1]
    assert -0.1 <= lo <= 0 and 1 <= hi <= 1.1 and not plot.getAxis("left").autoSIPrefix  # a plain 0-1 axis
    settle()
    legend = next(item for item in plot.parentItem().items if isinstance(item, pg.LegendItem))
    assert not legend.sceneBoundingRect().intersects(plot.getViewBox().sceneBoundingRect())  # beside, not on, the data
    results.metric_box.setCurrentIndex(2)
    assert results.plot_item.getAxis("left").labelText == "subject-mask IoU" and results.plot_item.getViewBox().viewRange()[1][1] <= 1.1
    for suffix in ("png", "svg"):
        assert panel.export(tmp_path / f"probe.{suffix}").stat().st_size > 1000
    assert_not_blank(pixels(QImage(str(tmp_path / "probe.png"))))


def test_a_few_prompts_one_grid_each(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path)
    panel.prompts.setPlainText("a large blue square on a white background at center\n\n" + PROMPT)
    panel.ks.setText("2")
    panel.strategies["random"].setChecked(False)
    folder = run(qtbot, panel)
    results = panel.results
    assert results.generation.count() == 2 and results.generation.isEnabled()
    results.generation.setCurrentIndex(1)
    assert set(results.tiles) == {("top", 2), ("bottom", 2)} and PROMPT in results.title.text()
    np.testing.assert_array_equal(shown(results.tiles[("top", 2)]), scaled(QImage(str(folder / "images" / "001-seed0-top-k2-d0.png"))))
    assert caption(results.report.tiles(1, 0)[("top", 2)]) == results.tiles[("top", 2)].caption.text()


def test_form_errors_stay_in_the_form(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path)
    panel.record_panel.prompt.setText("")
    panel.run_button.click()
    assert "enter a prompt" in panel.status.text() and not panel.runner.running()
    panel.prompts.setPlainText(PROMPT)
    panel.ks.setText("1 two")
    panel.run_button.click()
    assert "k must be positive whole numbers" in panel.status.text()
    panel.ks.setText("1")
    for box in panel.strategies.values():
        box.setChecked(False)
    panel.run_button.click()
    assert panel.status.text() == "choose at least one strategy" and not panel.runner.running()


def test_errors_and_cancel_come_back_as_one_line(qtbot, tmp_path):
    def failing(error: Exception):
        def run(request, progress, cancel):
            raise error
        return partial(probe_job, run=run)

    panel = make_panel(qtbot, tmp_path, job=failing(BadRequest("unknown block(s) double.9")))
    for error, message in ((BadRequest("unknown block(s) double.9"), "failed: unknown block(s) double.9"),
                           (ValueError("bad size\ntraceback noise"), "failed: unexpected ValueError: bad size")):
        panel.runner.job = failing(error)
        with qtbot.waitSignal(panel.runner.failed):
            panel.run_button.click()
        qtbot.waitUntil(lambda: panel.run_button.isEnabled())
        assert panel.status.text() == message
    panel.runner.job = partial(probe_job, run=fake_probe(delay=0.05))
    panel.ks.setText("1 2 4 8 16")
    panel.run_button.click()
    qtbot.waitUntil(lambda: panel.progress.value() >= 2, timeout=10_000)
    with qtbot.waitSignal(panel.runner.cancelled, timeout=10_000):
        panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.run_button.isEnabled())
    assert panel.status.text() == "cancelled" and panel.results.report is None


def test_real_probe_on_the_tiny_flux_pipeline(qtbot, tmp_path, tiny_pipelines):
    kw = tiny_call_kwargs("flux")
    panel = make_panel(qtbot, tmp_path, job=probe_job)
    record = panel.record_panel
    record.model.setEditText(str(tiny_pipelines("flux")))
    record.prompt.setText(kw["prompt"])
    record.negative.setText(NEGATIVE_PROMPT)
    record.generation.steps.setValue(2)
    record.generation.guidance.setValue(kw["true_cfg_scale"])
    record.generation.width_.setValue(kw["width"])
    record.generation.height_.setValue(kw["height"])
    panel.ks.setText("1")
    panel.strategies["random"].setChecked(False)
    start = time.perf_counter()
    folder = run(qtbot, panel, timeout=60_000)
    assert time.perf_counter() - start < 30
    assert set(panel.results.tiles) == {("top", 1), ("bottom", 1)}
    rows = list(csv.DictReader((folder / "probe.csv").open()))
    for row in rows:
        tile = panel.results.tiles[(row["strategy"], int(row["k"]))]
        assert tile.caption.text() == f"PSNR {float(row['psnr']):.1f} dB"  # not the embedded model: PSNR only
        assert QImage(str(folder / "images" / row["image"])).size().toTuple() == (kw["width"], kw["height"])
    assert [panel.results.metric_box.itemData(i) for i in range(panel.results.metric_box.count())] == ["psnr"]


def test_the_main_window_runs_one_model_job_at_a_time(qtbot, settings):
    """Recording and probing share the cached pipeline: a recording asked for during a probe waits its turn,
    and closing the window withdraws it and stops the probe."""
    window = MainWindow(settings, job=slow_job(steps=200, delay=0.005), probe=partial(probe_job, run=fake_probe(delay=0.05)))
    qtbot.addWidget(window)
    window.show()
    panel = window.show_probe_panel()
    assert panel.isVisible() and panel.record_panel is window.record_panel
    assert panel.out_root == window.sessions_dir().parent / "probes"
    window.record_panel.prompt.setText(PROMPT)
    panel.run_button.click()
    assert panel.runner.running() and not panel.runner.waiting()
    window.record_panel.record.click()
    assert window.runner.waiting() and "Queued (1 in line) behind the probe" in window.record_panel.status.text()
    assert window.record_panel.cancel.isEnabled() and not window.record_panel.record.isEnabled()
    window.close()  # withdraws the recording, cancels the probe and waits for it
    assert not panel.runner.running() and not window.runner.running() and not panel.isVisible()
    assert window.jobs.active is None and window.jobs.waiting == []
