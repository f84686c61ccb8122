"""`python main.py export FILE.h5 --out DIR`: the image and the summary, for use outside MassiveLens."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="write a session's image and summary to a folder")
    p.add_argument("session", type=Path)
    p.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from massivelens.sessions.reader import SessionError, open_session

    from .inspect import summary

    data = summary(args.session)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(data, indent=1))
    with open_session(args.session) as s:
        image = s.image()
    if image is None:
        raise SessionError(f"{args.session}: incomplete session has no image; wrote {args.out / 'summary.json'} only")
    Image.fromarray(image).save(args.out / "image.png")
    print(f"wrote {args.out / 'image.png'} and {args.out / 'summary.json'}")
    return 0
