"""The headless CLI as a user runs it: python main.py record / inspect / export, and its errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from massivelens.sessions.reader import open_session
from tests.tiny_pipelines import tiny_call_kwargs

REPO = Path(__file__).resolve().parents[2]


def main_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def recorded(tiny_pipelines, tmp_path_factory) -> Path:
    kw = tiny_call_kwargs("flux")
    out = tmp_path_factory.mktemp("cli") / "s.h5"
    result = main_py(
        "record", "--model", str(tiny_pipelines("flux")), "--prompt", "a red circle", "--seed", "3",
        "--steps", "2", "--height", str(kw["height"]), "--width", str(kw["width"]), "--k", "5", "--out", str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    return out


def test_record_writes_a_complete_session(recorded):
    with open_session(recorded) as s:
        assert s.complete and s.info["seed"] == 3 and s.k == 5


def test_inspect_json_has_the_documented_keys(recorded):
    result = main_py("inspect", str(recorded), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"model", "prompt", "seed", "steps", "complete", "blocks"} <= set(data)
    assert data["complete"] is True and data["seed"] == 3 and data["steps"] == 2
    image_rows = [b for b in data["blocks"] if b["stream"] == "image"]
    assert [b["block"] for b in image_rows] == ["double.0", "double.1", "single.0", "single.1"]
    with open_session(recorded) as s:
        expected = np.argsort(-s.mean_abs("image").mean(axis=0)[0], kind="stable")[:5]
    assert image_rows[0]["top_channels"] == [int(c) for c in expected]
    assert all(isinstance(b["max_over_median"], float) for b in data["blocks"])
    assert {b["stream"] for b in data["blocks"]} == {"image", "text"}


def test_inspect_text_and_export(recorded, tmp_path):
    text = main_py("inspect", str(recorded))
    assert text.returncode == 0 and "complete" in text.stdout and "double.0" in text.stdout
    result = main_py("export", str(recorded), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    with open_session(recorded) as s:
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "image.png")), s.image)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["seed"] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["record", "--prompt", "x", "--model", "/no/such/folder", "--out", "{tmp}/a.h5"], "no such model folder"),
        (["record", "--prompt", "x"], "required: --out"),
        (["record", "--prompt", "x", "--dtype", "fp8", "--out", "{tmp}/a.h5"], "invalid choice"),
        (["record", "--prompt", "  ", "--model", "{flux}", "--out", "{tmp}/a.h5"], "the prompt is empty"),
        (["record", "--prompt", "x", "--model", "{flux}", "--k", "0", "--out", "{tmp}/a.h5"], "k must be at least 1"),
        (["record", "--prompt", "x", "--model", "{flux}", "--hidden-blocks", "nope", "--out", "{tmp}/a.h5"], "unknown block(s) nope"),
        (["inspect", "{tmp}/missing.h5"], "no such file"),
        (["inspect", "main.py"], "not a readable HDF5 file"),
    ],
)
def test_bad_input_gives_one_line_and_nonzero_exit(args, message, tiny_pipelines, tmp_path, capsys):
    """In process, as main.py runs it (one interpreter start for all cases; test_cli's subprocess tests
    cover the entry point itself)."""
    from massivelens.cli.main import main

    args = [a.format(tmp=tmp_path, flux=tiny_pipelines("flux")) for a in args]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    stderr = capsys.readouterr().err
    assert code != 0
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("record:")]  # the progress bar
    assert len(lines) == 1, stderr
    assert message in lines[0]
    assert "Traceback" not in stderr


def test_clusters_takes_a_foreground_rule_and_ks_and_both_rules_find_the_planted_subject(tmp_path, capsys):
    from massivelens.cli.main import main
    from tests.session_factory import write_synthetic_session

    session = write_synthetic_session(tmp_path / "s.h5", grid=(8, 8), k=3)
    mask = np.zeros((64, 64), np.uint8)
    mask[:32, :32] = 255  # the factory's planted subject, brighter on the massive channels, in a corner
    Image.fromarray(mask).save(tmp_path / "subject.png")
    for rule in ("score", "border"):
        out = tmp_path / rule
        assert main(["clusters", str(session), "--masks", str(tmp_path / "subject.png"), "--foreground", rule,
                     "--out", str(out)]) == 0
        assert "top-3      mIoU over blocks 1.000" in capsys.readouterr().out
        assert (out / "overlay-s.png").exists()
    assert main(["clusters", str(session), "--masks", str(tmp_path / "subject.png"), "--ks", "1", "3",
                 "--out", str(tmp_path / "ks")]) == 0
    printed = capsys.readouterr().out
    assert "top-1      mIoU over blocks 1.000" in printed and "top-3      mIoU" in printed
    assert (tmp_path / "ks" / "clusters_miou-step1-k1.png").exists()
    assert main(["clusters", str(session), "--ks", "4", "--out", str(tmp_path / "x")]) == 1
    assert capsys.readouterr().err.strip() == "error: s.h5 keeps 3 channels per set; --ks asks for 4"
    with pytest.raises(SystemExit) as exit_:
        main(["clusters", str(session), "--foreground", "largest", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "invalid choice: 'largest'" in capsys.readouterr().err
