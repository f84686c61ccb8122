"""The session views. Importing this package prepares Qt once, before any plot exists: the None-refcount fix
(gui/compat.py), and pyqtgraph's global look: white figures with dark text read well on screen and in
exported figures, and row-major images match numpy."""
import pyqtgraph as pg

from gui.compat import keep_none_alive

keep_none_alive()
pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k", antialias=True)
