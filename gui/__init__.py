"""The MassiveLens desktop app (PySide6 + pyqtgraph). Reads sessions/, runs engine/ on a worker thread.

Importing this package does not import Qt (the CLI imports gui.figures lazily).
"""
