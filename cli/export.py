"""`python main.py export FILE.h5 --out DIR`: the image (a video's frames and an animated preview), the summary
and a plain-diffusers script that makes them again, for use outside MassiveLens."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "export"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="write a session's image (or video frames), summary and reproduce.py to a folder")
    p.add_argument("session", type=Path)
    p.add_argument("--out", required=True, type=Path)


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from massivelens.engine.video_files import save_animation, save_frames
    from massivelens.sessions.reader import SessionError, open_session
    from massivelens.sessions.reproduce import write_reproduction

    from .inspect import summary

    data = summary(args.session)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [args.out / "summary.json"]
    written[0].write_text(json.dumps(data, indent=1))
    with open_session(args.session) as s:
        image, frames = s.image, s.frames
        if s.call:
            written += write_reproduction(s, args.out)
    if image is None:
        raise SessionError(f"{args.session}: no image (the run did not finish, or returned latents); wrote {', '.join(map(str, written))}")
    if frames is not None:
        pngs = save_frames(frames, args.out / "frames")
        written = [save_animation(frames, args.out / "video.gif"), *written]
        print(f"wrote {len(pngs)} frames to {args.out / 'frames'}")
    else:
        Image.fromarray(image).save(args.out / "image.png")
        written.insert(0, args.out / "image.png")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
