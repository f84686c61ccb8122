"""Files that ship with MassiveLens: the embedded model's pipeline folder, and an example session recorded from it
(`python main.py record --prompt "a large red circle on a white background at top left" --k 8 --controls bottom random
--out resources/example/red-circle-top-left.h5`), which the app opens on its first launch."""
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
EMBEDDED_MODEL = FOLDER / "shapes-dit"
EXAMPLE_SESSION = FOLDER / "example" / "red-circle-top-left.h5"
