"""Exact reproduction: `record` with no flags makes the plain diffusers image on every family, and the
reproduce.py that `export` writes makes it again with plain diffusers, without MassiveLens."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from PIL import Image

import massivelens
from massivelens.cli.main import main
from tests.hooked import generation
from tests.tiny_pipelines import ARCHITECTURES, PROMPT

# Runs each exported reproduce.py as `python reproduce.py OUT.png` would, in one fresh interpreter
# (one torch/diffusers import for all), and reports whether anything imported MassiveLens.
DRIVER = textwrap.dedent(
    """
    import json, runpy, sys
    for script, out in json.loads(sys.argv[1]):
        sys.argv = [script, out]
        runpy.run_path(script, run_name="__main__")
    print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("massivelens", "engine", "sessions"))))
    """
)


def size_flags(arch: str) -> list[str]:
    kw = generation(arch)
    return ["--height", str(kw["height"]), "--width", str(kw["width"])]


def run_scripts(pairs: list[tuple[Path, Path]], cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([[str(s), str(o)] for s, o in pairs])],
                            cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def exported(tiny_pipelines, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Per family: a CLI session recorded with no flags but prompt, seed, steps and size, and its export."""
    root = tmp_path_factory.mktemp("reproduce")
    out = {}
    for arch in ARCHITECTURES:
        session, folder = root / f"{arch}.h5", root / arch
        code = main(["record", "--model", str(tiny_pipelines(arch)), "--prompt", PROMPT, "--seed", "7", "--steps", "2",
                     *size_flags(arch), "--out", str(session)])
        assert code == 0
        assert main(["export", str(session), "--out", str(folder)]) == 0
        out[arch] = session, folder
    return out


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_record_without_flags_makes_the_plain_diffusers_image(arch, exported, tiny_pipelines):
    """PixArt and Sana keep resolution binning, Qwen-Image runs without true CFG: as diffusers does."""
    session, _ = exported[arch]
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines(arch), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    kw = generation(arch)
    image = pipe(prompt=PROMPT, height=kw["height"], width=kw["width"], num_inference_steps=2,
                 generator=torch.Generator("cpu").manual_seed(7)).images[0]
    with massivelens.open_session(session) as s:
        np.testing.assert_array_equal(s.image, np.asarray(image))
        assert s.call["kwargs"].keys() == {"prompt", "height", "width", "num_inference_steps"}
        if arch in ("pixart", "sana"):
            assert s.call["defaults"]["use_resolution_binning"] is True
            assert s.grid != (kw["height"] // 16, kw["width"] // 16)  # the binned grid the transformer saw


def test_reproduce_scripts_remake_every_family_without_massivelens(exported, tmp_path):
    pairs = [(folder / "reproduce.py", tmp_path / f"{arch}.png") for arch, (_, folder) in exported.items()]
    assert run_scripts(pairs, tmp_path) == []
    for arch, (session, _) in exported.items():
        with massivelens.open_session(session) as s:
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{arch}.png")), s.image, err_msg=arch)


def test_reproduce_replays_latents_and_a_generator_already_drawn_from(tiny_pipelines, tmp_path):
    """A user's call: their own latents, a generator they used before, output as numpy."""
    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines("sd3"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    kw = generation("sd3")
    generator = torch.Generator("cpu").manual_seed(3)
    torch.randn(5, generator=generator)  # drawn from before the call
    latents = torch.randn(1, 4, kw["height"] // 8, kw["width"] // 8, generator=torch.Generator().manual_seed(4))
    massivelens.record(pipe, tmp_path / "s.h5", **kw, latents=latents, generator=generator, output_type="np")
    assert main(["export", str(tmp_path / "s.h5"), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "call_inputs.npz").is_file()
    assert run_scripts([(tmp_path / "x" / "reproduce.py", tmp_path / "again.png")], tmp_path) == []
    with massivelens.open_session(tmp_path / "s.h5") as s:
        assert s.call["generator"] == {"device": "cpu", "seed": 3, "fresh": False}
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png")), s.image)
