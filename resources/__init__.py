"""Files that ship with MassiveLens: the embedded model's pipeline folder."""
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
EMBEDDED_MODEL = FOLDER / "shapes-dit"
