"""Dispatch: a known subcommand runs headless; anything else opens the desktop app.

Subcommand modules expose `add_parser(subparsers)` and `run(args) -> int`; the app is imported
only when needed so the CLI never loads Qt.
"""
from __future__ import annotations

import os
import sys

from massivelens.engine.errors import EngineError
from massivelens.gui.display import has_display
from massivelens.sessions.reader import SessionError

from . import (
    batch,
    claims,
    clusters,
    export,
    inspect,
    model_card,
    probe,
    record,
    transport,
)
from .parsing import OneLineParser

COMMANDS = {module.NAME: module for module in (record, batch, inspect, export, probe, clusters, claims, transport, model_card)}


def entry() -> None:
    """The `massivelens` console script and `python main.py`."""
    sys.exit(main(sys.argv[1:]))


def main(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return _run_command(argv)
    return _run_app(argv)


def _run_command(argv: list[str]) -> int:
    parser = OneLineParser(prog="massivelens", description="See, measure and use massive activations in DiTs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except (EngineError, SessionError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except BrokenPipeError:
        sys.stderr.close()
    except KeyboardInterrupt:
        print("error: interrupted; finished steps are kept in the session", file=sys.stderr)
    except Exception as exc:
        if os.environ.get("MASSIVELENS_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set MASSIVELENS_DEBUG=1 for details)", file=sys.stderr)
    return 1


def _run_app(argv: list[str]) -> int:
    parser = OneLineParser(
        prog="massivelens",
        description=f"Open the MassiveLens app. Headless commands: {', '.join(COMMANDS)} (python main.py COMMAND --help).",
    )
    parser.add_argument("session", nargs="?", help="a session file (.h5) to open")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the window, save a screenshot, exit")
    parser.add_argument("--size", metavar="WxH", help="window size, e.g. 1024x640")
    args = parser.parse_args(argv)
    if not has_display():
        if not args.screenshot:
            print("error: no display to open the app on; use --screenshot OUT.png or a headless command "
                  f"({', '.join(COMMANDS)})", file=sys.stderr)
            return 1
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from massivelens.gui.app import parse_size, run_app

    try:
        size = parse_size(args.size) if args.size else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return run_app(args.session, args.screenshot, size)

