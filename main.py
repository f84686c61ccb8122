"""MassiveLens: `python main.py [SESSION.h5] [--screenshot OUT.png]` opens the app; subcommands run headless."""
import sys

from cli.main import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
