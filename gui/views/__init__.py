"""The session views. Importing this package sets pyqtgraph's global look once, before any plot exists:
white figures with dark text read well on screen and in exported figures, and row-major images match numpy."""
import pyqtgraph as pg

pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)
