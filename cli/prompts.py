"""Where a command's prompts come from: flags, a file, or the embedded world's held-out captions."""
from __future__ import annotations

from pathlib import Path

from massivelens.engine.analysis.metrics import uses_world
from massivelens.engine.errors import BadRequest

# For models outside the Shapes world when the user names no prompts: simple single-subject scenes.
GENERIC_PROMPTS = (
    "a photo of a red apple on a wooden table",
    "a cat sitting on a blue sofa",
    "a yellow taxi on a city street",
    "a lighthouse on a rocky coast at sunset",
    "a white horse in a green field",
    "a teapot on a kitchen counter",
    "an astronaut standing on the moon",
    "a sunflower in front of a brick wall",
)


def read_prompt_file(path: Path) -> list[str]:
    if not path.is_file():
        raise BadRequest(f"no such prompt file: {path}")
    prompts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not prompts:
        raise BadRequest(f"{path} holds no prompts")
    return prompts


def choose_prompts(model: str, given: list[str] | None, prompt_file: Path | None, n: int) -> list[str]:
    """Given prompts, else the file's, else the first n held-out captions of the world, else generic ones."""
    if given:
        return list(given)
    if prompt_file is not None:
        return read_prompt_file(prompt_file)[:n] if n else read_prompt_file(prompt_file)
    if uses_world(model):
        from massivelens.engine.shapes.world import heldout_samples

        return [caption for caption, _, _ in heldout_samples(n)]
    return list(GENERIC_PROMPTS[:n])
