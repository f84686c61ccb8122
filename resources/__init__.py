"""Files that ship with MassiveLens: the embedded models' pipeline folders, and an example session recorded from the default
(`python main.py record --prompt "a large red circle on a white background at top left" --k 8 --controls bottom random
--out resources/example/red-circle-top-left.h5`), which the app opens on its first launch."""
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
EMBEDDED_MODEL = FOLDER / "shapes-flux2"  # the default model
# Every embedded model the app lists, by folder name; a folder that is not shipped is left out.
EMBEDDED_LABELS = {"shapes-dit": "FLUX.1 architecture", "shapes-flux2": "FLUX.2-klein architecture"}
EXAMPLE_SESSION = FOLDER / "example" / "red-circle-top-left.h5"


def embedded_models() -> dict[str, Path]:
    """The shipped embedded models' folders by name (the default first)."""
    names = [EMBEDDED_MODEL.name, *(n for n in EMBEDDED_LABELS if n != EMBEDDED_MODEL.name)]
    return {name: FOLDER / name for name in names if (FOLDER / name / "model_index.json").is_file()}
