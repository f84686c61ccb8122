"""The transport editor: a real sweep on the tiny FLUX through the worker, the alpha slider, export, cancel."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtGui import QImage

from massivelens.gui.transport_editor import STRIP_HEIGHT, TransportEditor
from tests.gui.helpers import assert_not_blank, grab_pixels, pixels
from tests.tiny_pipelines import tiny_call_kwargs


@pytest.fixture
def editor(qtbot, tmp_path):
    widget = TransportEditor(tmp_path / "runs")
    qtbot.addWidget(widget)
    widget.show()
    return widget


def fill(editor: TransportEditor, folder: Path) -> None:
    kw = tiny_call_kwargs("flux")
    editor.model.setEditText(str(folder))
    editor.source_prompt.setText("a blue square")
    editor.target_prompt.setText("a red circle")
    editor.generation.steps.setValue(2)
    editor.generation.width_.setValue(kw["width"])
    editor.generation.height_.setValue(kw["height"])
    editor.k.setValue(4)
    editor.alphas.setText("0 0.5 1")


def test_a_run_shows_source_target_and_the_result_the_slider_picks(editor, qtbot, tiny_pipelines, tmp_path):
    fill(editor, tiny_pipelines("flux"))
    editor.blocks.setText("0:2")
    editor.window.setText("1:")
    assert editor.mask.currentText() == "all" and not editor.foreground.isEnabled()  # no mask, no foreground to pick
    editor.mask.setCurrentText("union")
    editor.foreground.setCurrentIndex(editor.foreground.findData("border"))
    assert editor.foreground.isEnabled()
    with qtbot.waitSignal(editor.runner.finished, timeout=120_000):
        editor.run_button.click()
    qtbot.waitUntil(lambda: editor.report is not None)
    assert editor.report["alphas"] == [0.0, 0.5, 1.0] and editor.report["blocks"] == ["double.0", "double.1"]
    assert (editor.report["mask"], editor.report["foreground"]) == ("union", "border")
    assert editor.alpha.isEnabled() and editor.alpha.maximum() == 2 and editor.run_button.isEnabled()
    editor.alpha.setValue(0)
    shown = pixels(editor.result_panel.image.pixmap().toImage())
    target = pixels(editor.target_panel.image.pixmap().toImage())
    np.testing.assert_array_equal(shown, target)  # alpha 0 is the plain target
    assert "alpha 0" in editor.alpha_label.text()
    editor.alpha.setValue(2)
    assert "alpha 1" in editor.result_panel.title.text()
    exported = editor.export_strip(tmp_path / "strip.png")
    assert np.array_equal(np.asarray(Image.open(exported)), np.asarray(Image.open(editor.folder / "strip.png")))
    strip = QImage(str(editor.folder / "strip.png"))
    shown = editor.strip.pixmap().toImage()
    assert shown.height() == STRIP_HEIGHT and abs(shown.width() / shown.height() - strip.width() / strip.height()) < 0.02
    from massivelens.engine.analysis.transport_report import STRIP
    assert (editor.folder / STRIP).is_file()
    vector = editor.export_strip(tmp_path / "strip.svg")
    assert vector.read_bytes().lstrip().startswith(b"<?xml") and b"<svg" in vector.read_bytes()[:500]  # not PNG bytes
    assert_not_blank(grab_pixels(editor))


def test_form_errors_stay_in_the_form(editor):
    editor.run_button.click()
    assert editor.status.text() == "enter a target prompt" and not editor.runner.running()
    editor.target_prompt.setText("a red circle")
    editor.source_kind.setCurrentText("image")
    editor.run_button.click()
    assert editor.status.text() == "choose a reference image"
    editor.source_kind.setCurrentText("prompt")
    editor.source_prompt.setText("a blue square")
    editor.alphas.setText("0 half 1")
    editor.run_button.click()
    assert "alphas must be numbers" in editor.status.text() and not editor.runner.running()


def test_engine_errors_and_cancel_come_back_as_one_line(editor, qtbot, tiny_pipelines):
    fill(editor, tiny_pipelines("flux"))
    editor.window.setText("5:9")
    with qtbot.waitSignal(editor.runner.failed, timeout=60_000):
        editor.run_button.click()
    qtbot.waitUntil(lambda: editor.run_button.isEnabled())
    assert editor.status.text().startswith("failed: step window 5:9")

    def slow(params, progress, cancel):
        while True:
            cancel.check()
            progress((0, 1, "waiting"))
            time.sleep(0.01)

    editor.runner.job = slow
    editor.window.setText("")
    editor.run_button.click()
    qtbot.waitUntil(lambda: editor.cancel_button.isEnabled())
    with qtbot.waitSignal(editor.runner.cancelled, timeout=10_000):
        editor.cancel_button.click()
    qtbot.waitUntil(lambda: editor.run_button.isEnabled())
    assert editor.status.text() == "cancelled"


def test_reference_rows_carry_the_inversion_guidance(editor, tmp_path):
    from massivelens.engine.analysis.transport import TransportRequest

    editor.target_prompt.setText("a red circle")
    guidance_row = editor.form.getWidgetPosition(editor.inversion_guidance)[0]
    assert not editor.form.isRowVisible(guidance_row)
    editor.source_kind.setCurrentText("image")
    assert editor.form.isRowVisible(guidance_row)
    assert editor.inversion_guidance.value() == TransportRequest.inversion_guidance  # the engine's default
    editor.source_image.setText(str(tmp_path / "reference.png"))
    editor.inversion_guidance.setValue(3.0)
    assert editor.params(tmp_path / "out").inversion_guidance == 3.0


def test_editor_on_its_own_without_a_display_says_so_in_one_line():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "massivelens.gui.transport_editor"], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert done.returncode == 1 and done.stderr.strip().startswith("error: no display")
    assert len(done.stderr.strip().splitlines()) == 1


def test_image_source_transport_at_the_editors_defaults_takes_from_the_reference(editor, qtbot, tmp_path):
    """The embedded model, a reference image without a caption, every setting at the editor's default but the
    alphas (only the ends, to keep the test short): at alpha 1 the result takes the reference's position."""
    from massivelens.engine.shapes.world import parse_caption, render

    reference, _ = render(parse_caption("a large red circle on a white background at top left"))
    Image.fromarray(reference).save(tmp_path / "reference.png")
    editor.source_kind.setCurrentText("image")
    editor.source_image.setText(str(tmp_path / "reference.png"))
    editor.target_prompt.setText("a large red circle on a white background at bottom right")
    editor.alphas.setText("0 1")
    with qtbot.waitSignal(editor.runner.finished, timeout=600_000):
        editor.run_button.click()
    rows = editor.report["results"]
    assert editor.report["source"]["inversion"] == "noise" and editor.report["source"]["source_psnr"] > 25
    assert rows[0]["from_source"] == 0.0 and rows[-1]["from_source"] > 0


def test_choosing_a_model_shows_its_transport_defaults(editor, tiny_pipelines, tmp_path):
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(tiny_pipelines("flux"), folder)
    (folder / "massivelens.json").write_text(json.dumps({"transport": {"blocks": ["1:3"], "window": [2, None], "mask": "union", "k": 5}}))
    start = (editor.blocks.text(), editor.window.text(), editor.mask.currentText(), editor.k.value())
    editor.model.setEditText(str(folder))
    assert (editor.blocks.text(), editor.window.text(), editor.mask.currentText(), editor.k.value()) == ("1:3", "2:", "union", 5)
    editor.source_prompt.setText("a blue square")
    editor.target_prompt.setText("a red circle")
    params = editor.params(tmp_path / "out")
    assert (params.blocks, params.window, params.mask, params.k) == ("1:3", "2:", "union", 5)
    editor.k.setValue(7)
    editor.model.setEditText(str(folder) + "/")  # the same model's defaults: the user's k stays
    assert editor.k.value() == 7
    editor.model.setCurrentIndex(0)
    assert (editor.blocks.text(), editor.window.text(), editor.mask.currentText(), editor.k.value()) == start
