"""MassiveLens from a checkout: `python main.py [SESSION.h5] [--screenshot OUT.png]` opens the app; subcommands
run headless. Installed, the same entry point is the `massivelens` command."""
from massivelens.cli.main import entry

if __name__ == "__main__":
    entry()
