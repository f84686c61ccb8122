"""`python main.py transport` as a user runs it: text and image sources, transport.json, CLIP, errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from massivelens.cli.main import main
from massivelens.sessions.reader import open_session
from tests.cli.test_batch_cli import run
from tests.tiny_pipelines import build_tiny_clip, tiny_call_kwargs


def flags(folder: Path) -> list[str]:
    kw = tiny_call_kwargs("flux")
    return ["--model", str(folder), "--steps", "2", "--height", str(kw["height"]), "--width", str(kw["width"]), "--k", "4"]


@pytest.fixture(scope="module")
def text_run(tiny_pipelines, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("transport")
    result = run("main.py", "transport", "--source-prompt", "a blue square", "--target-prompt", "a red circle",
                 "--alpha", "0", "0.5", "1", "--blocks", "0:2", "single.1", "--window", "1:2", "--mask", "union",
                 *flags(tiny_pipelines("flux")), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_text_transport_writes_images_strip_and_report(text_run):
    out, stdout = text_run
    data = json.loads((out / "transport.json").read_text())
    assert data["alphas"] == [0.0, 0.5, 1.0]
    assert [r["alpha"] for r in data["results"]] == data["alphas"]
    assert data["blocks"] == ["double.0", "double.1", "single.1"] and data["steps"] == [1, 2]
    assert data["mask"] == "union" and data["k"] == 4
    assert data["source"]["prompt"] == "a blue square" and data["target"]["prompt"] == "a red circle"
    for row in data["results"]:
        assert (out / row["image"]).is_file() and row["from_source"] is None and row["from_target"] is None  # not the Shapes world
        with open_session(out / row["session"]) as s:
            assert s.info["kind"] == "transport" and s.info["extra"]["alpha"] == row["alpha"]
    assert 0.0 <= data["smoothness"] <= 1.0
    first = np.asarray(Image.open(out / data["results"][0]["image"]))
    np.testing.assert_array_equal(first, np.asarray(Image.open(out / "target.png")))
    strip = Image.open(out / "strip.png")
    assert strip.width > 4 * strip.height  # one row: source and three results
    assert "wrote" in stdout and "smoothness" in stdout


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


def test_image_transport_with_noising_and_clip_scores(text_run, tiny_pipelines, tiny_clip, tmp_path):
    reference = text_run[0] / "source.png"
    out = tmp_path / "image"
    code = main(["transport", "--source-image", str(reference), "--source-caption", "a blue square", "--inversion", "noise",
                 "--target-prompt", "a red circle", "--alpha", "0", "1", "--clip", str(tiny_clip),
                 *flags(tiny_pipelines("flux")), "--out", str(out)])
    assert code == 0
    data = json.loads((out / "transport.json").read_text())
    assert data["source"]["inversion"] == "noise" and data["source"]["caption"] == "a blue square"
    assert data["source"]["source_psnr"] > 0 and (out / "reference.png").is_file()
    for row in data["results"]:
        assert set(row["clip"]) == {"target_prompt", "source_prompt", "reference"}
        assert all(-1.0 <= v <= 1.0 for v in row["clip"].values())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source-prompt", "a", "--source-image", "x.png"], "not allowed with argument"),
        (["--source-prompt", "a", "--window", "3"], "START:END"),
        (["--source-prompt", "a", "--window", "1:9"], "step window 1:9"),
        (["--source-prompt", "a", "--blocks", "middle"], "unknown block 'middle'"),
        (["--source-prompt", "a", "--alpha", "2"], "alpha must be in [0, 1]"),
        (["--source-image", "{tmp}/missing.png"], "cannot read reference image"),
        (["--source-prompt", "a", "--clip", "{tmp}/no-clip"], "cannot load CLIP model"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args, message, tiny_pipelines, tmp_path, capsys):
    argv = ["transport", "--target-prompt", "a red circle", *flags(tiny_pipelines("flux")), "--out", str(tmp_path / "o")]
    argv += [a.format(tmp=tmp_path) for a in args]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    assert code != 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "%|" not in line]  # not the progress bar
    assert len(lines) == 1 and message in lines[0], lines


def test_image_source_on_another_pipeline_is_refused(tiny_pipelines, tmp_path, capsys):
    picture = tmp_path / "ref.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(picture)
    kw = tiny_call_kwargs("sd3")
    code = main(["transport", "--source-image", str(picture), "--target-prompt", "a red circle", "--model", str(tiny_pipelines("sd3")),
                 "--steps", "1", "--height", str(kw["height"]), "--width", str(kw["width"]), "--out", str(tmp_path / "o")])
    assert code == 1
    assert "need a FluxPipeline" in capsys.readouterr().err


def test_a_models_transport_defaults_apply_unless_given(tiny_pipelines, tmp_path):
    """A model folder's massivelens.json `transport` entry sets blocks, window, mask and k; flags override it."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_pipelines("flux"), folder)
    own = {"blocks": ["single.0"], "window": [1, 2], "mask": "target", "k": 2}
    (folder / "massivelens.json").write_text(json.dumps({"transport": own}))
    kw = tiny_call_kwargs("flux")
    common = ["transport", "--source-prompt", "a blue square", "--target-prompt", "a red circle", "--alpha", "1", "--model", str(folder),
              "--steps", "2", "--height", str(kw["height"]), "--width", str(kw["width"])]
    assert main([*common, "--out", str(tmp_path / "own")]) == 0
    data = json.loads((tmp_path / "own" / "transport.json").read_text())
    assert (data["blocks"], data["steps"], data["mask"], data["k"]) == (["single.0"], [1, 2], "target", 2)
    assert main([*common, "--blocks", "all", "--window", ":", "--mask", "all", "--k", "3", "--out", str(tmp_path / "given")]) == 0
    data = json.loads((tmp_path / "given" / "transport.json").read_text())
    assert (data["blocks"], data["steps"], data["mask"], data["k"]) == (["double.0", "double.1", "single.0", "single.1"], [0, 2], "all", 3)
