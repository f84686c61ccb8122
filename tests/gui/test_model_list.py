"""The app's model list names every shipped embedded model; the default entry still means "the default model"."""
from __future__ import annotations

from pathlib import Path

import massivelens.resources as resources
from massivelens.gui.record_panel import EMBEDDED, RecordPanel, embedded_items, model_choice
from massivelens.gui.transport_editor import TransportEditor


def test_the_lists_name_each_shipped_embedded_model(qtbot, tmp_path):
    items = embedded_items()
    assert items == [EMBEDDED, "shapes-dit (FLUX.1 architecture)"]
    assert "shapes-flux2" in EMBEDDED and "FLUX.2-klein" in EMBEDDED  # the default names itself
    assert model_choice(EMBEDDED) is None and model_choice("") is None
    assert model_choice(items[1]) == str(resources.FOLDER / "shapes-dit")
    assert model_choice("black-forest-labs/FLUX.1-dev") == "black-forest-labs/FLUX.1-dev"
    for widget in (RecordPanel(), TransportEditor(tmp_path / "runs")):
        qtbot.addWidget(widget)
        assert [widget.model.itemText(i) for i in range(widget.model.count())] == items
    panel = RecordPanel()
    qtbot.addWidget(panel)
    panel.prompt.setText("a small red circle on a blue background at top left")
    panel.model.setCurrentIndex(1)
    assert panel.params(Path(tmp_path / "x.h5")).model == str(resources.FOLDER / "shapes-dit")


def test_only_shipped_folders_are_listed():
    shipped = resources.embedded_models()
    assert next(iter(shipped)) == resources.EMBEDDED_MODEL.name
    assert all((folder / "model_index.json").is_file() for folder in shipped.values())
