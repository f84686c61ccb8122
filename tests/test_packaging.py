"""The wheel: one import name (massivelens), the embedded model inside, a `massivelens` command that works
from any folder, even one holding its own engine/, cli/, sessions/ packages and a main.py."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"engine", "sessions", "gui", "cli", "resources"}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {"massivelens"}
    for folder in FOLDERS:
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO).parts
            on_disk.add(".".join(("massivelens", *parts)))
    assert listed == on_disk


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the working tree: setuptools builds in the source folder, and a build/ left
    from an earlier build would carry stale modules into the wheel."""
    source, out = tmp_path_factory.mktemp("source") / "massivelens", tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", "build", "dist", "runs", "out", "*.egg-info", "__pycache__", ".pytest_cache"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return next(out.glob("massivelens-*.whl"))


def test_the_wheel_holds_one_package_with_the_embedded_model(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"massivelens"}
    for model in ("shapes-flux2", "shapes-dit"):
        assert f"massivelens/resources/{model}/transformer/diffusion_pytorch_model.safetensors" in names
        assert f"massivelens/resources/{model}/massivelens.json" in names
    assert "massivelens/resources/shapes-flux2/tokenizer/chat_template.jinja" in names
    assert "massivelens/sessions/SCHEMA.md" in names and "massivelens/engine/core/hooks.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "massivelens = massivelens.cli.main:entry" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_command_runs_from_a_folder_with_its_own_engine_and_cli(wheel, tmp_path):
    target, project = tmp_path / "site", tmp_path / "project"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for package in ("engine", "cli", "sessions", "gui"):  # a researcher's own project: importing these would fail loudly
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text("raise ImportError('the project\\'s own package was imported')\n")
    (project / "main.py").write_text("raise SystemExit('the project\\'s own main.py ran')\n")
    env = {**os.environ, "PYTHONPATH": str(target), "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, str(target / "bin" / "massivelens")]
    recorded = subprocess.run([*command, "record", "--prompt", "a small red circle on a blue background at top left",
                               "--steps", "2", "--out", "x.h5"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    shown = subprocess.run([*command, "inspect", "x.h5", "--json"], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert str(target / "massivelens" / "resources" / "shapes-flux2") in shown.stdout  # the default model came from the wheel
    screenshot = subprocess.run([*command, "x.h5", "--screenshot", "shot.png"], cwd=project, env=env, capture_output=True,
                                text=True, timeout=300)
    assert screenshot.returncode == 0, screenshot.stderr[-2000:]
    assert (project / "shot.png").stat().st_size > 10_000


def test_read_only_commands_import_neither_torch_nor_sklearn(tmp_path):
    """inspect and export answer fast: they only read the session file."""
    from tests.session_factory import write_synthetic_session

    session = write_synthetic_session(tmp_path / "s.h5")
    script = (
        "import sys\n"
        "from massivelens.cli.main import main\n"
        f"assert main(['inspect', {str(session)!r}]) == 0\n"
        f"main(['export', {str(session)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'diffusers', 'sklearn', 'transformers', 'PySide6'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
