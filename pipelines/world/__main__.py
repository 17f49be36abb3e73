"""Command line of the embedded world.

    python -m pipelines.world export --out DIR --clips N --seed S [--size 128] [--frames 16] [--characters 1-5]
    python -m pipelines.world assets [--out assets]     # character library, backgrounds, motion templates
    python -m pipelines.world docs [--out docs]         # contact sheet of the ten characters, a swap GIF
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .characters import NAMED
from .motions import MOTIONS


def _range(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a count like 3 or a range like 1-5") from None
    lo, hi = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1]) if len(parts) == 2 else (0, -1)
    if not 1 <= lo <= hi <= 5:
        raise argparse.ArgumentTypeError(f"{text!r}: characters per clip must be within 1-5 (low ≤ high)")
    return lo, hi


def _positive(lo: int, hi: int):
    def f(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is outside {lo}..{hi}")
        return v
    return f


def _size(text: str) -> int:
    v = _positive(32, 1024)(text)
    if v % 16:
        raise argparse.ArgumentTypeError(f"{v} must be a multiple of 16")
    return v


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pipelines.world", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="write clips: one mp4, npz (masks, keypoints) and json per clip, plus index.json")
    ex.add_argument("--out", required=True, type=Path, help="output folder (created; must be empty or new)")
    ex.add_argument("--clips", required=True, type=_positive(1, 1_000_000), help="number of clips")
    ex.add_argument("--seed", required=True, type=_positive(0, 2**31 - 1), help="world seed (same seed, same clips)")
    ex.add_argument("--size", default=128, type=_size, help="frame size in pixels (square, multiple of 16)")
    ex.add_argument("--frames", default=16, type=_positive(1, 512), help="frames per clip")
    ex.add_argument("--fps", default=8, type=_positive(1, 60), help="frames per second")
    ex.add_argument("--characters", default=(1, 5), type=_range, help="characters per clip: N or LO-HI (1-5)")
    ex.add_argument("--motions", default=None, help=f"comma-separated subset of: {', '.join(MOTIONS)}")
    ex.add_argument("--mix", default=0.0, type=float, help="share of clips mixing shows and styles (0..1)")
    ex.add_argument("--named-fraction", default=0.5, type=float, help="share of characters that are the named ten")
    ex.add_argument("--force", action="store_true", help="allow writing into a non-empty folder")
    a = sub.add_parser("assets", help="(re)build the character library, backgrounds and motion templates")
    a.add_argument("--out", default=None, type=Path, help="assets folder (default: the project's assets/)")
    d = sub.add_parser("docs", help="contact sheet of the ten characters and a three-character swap GIF")
    d.add_argument("--out", default=Path("docs"), type=Path)
    return ap.parse_args(argv)


def _fail(message: str) -> None:
    print(f"python -m pipelines.world export: error: {message}", file=sys.stderr)
    sys.exit(2)


def export(args) -> int:
    import imageio.v2 as imageio
    from .world import World

    motions = None
    if args.motions:
        motions = [m.strip() for m in args.motions.split(",") if m.strip()]
        bad = [m for m in motions if m not in MOTIONS]
        if bad:
            _fail(f"--motions: unknown {bad}; known motions: {', '.join(MOTIONS)}")
        if all(MOTIONS[m].min_chars > args.characters[1] for m in motions):
            _fail(f"--motions {args.motions} need at least 2 characters; raise --characters")
    if not 0 <= args.mix <= 1 or not 0 <= args.named_fraction <= 1:
        _fail("--mix and --named-fraction are shares between 0 and 1")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not args.force:
        _fail(f"--out {out} is not empty; pick a new folder or add --force")
    out.mkdir(parents=True, exist_ok=True)
    world = World(args.seed, args.size, args.frames, args.fps, args.named_fraction)
    index = []
    for i in range(args.clips):
        rng = world.rng(i, stream=1)
        n = int(rng.integers(args.characters[0], args.characters[1] + 1))
        motion = None
        if motions:
            ok = [m for m in motions if MOTIONS[m].min_chars <= n] or motions
            motion = str(rng.choice(ok))
            n = max(n, MOTIONS[motion].min_chars)
        clip = world.clip(i, n_characters=n, motion=motion, mix=bool(rng.random() < args.mix))
        stem = f"clip_{i:05d}"
        imageio.mimwrite(out / f"{stem}.mp4", list(clip.frames), fps=clip.fps, codec="libx264", quality=8,
                         macro_block_size=16, pixelformat="yuv420p")
        np.savez_compressed(out / f"{stem}.npz", masks=clip.masks, keypoints=clip.keypoints)
        meta = {"clip": stem, "index": i, "seed": args.seed, **clip.metadata()}
        (out / f"{stem}.json").write_text(json.dumps(meta, indent=1))
        index.append({"clip": stem, "caption": clip.caption, "motion": clip.motion,
                      "characters": [c["name"] for c in meta["characters"]], "show": clip.show,
                      "swap": bool(clip.swap_pairs)})
        if (i + 1) % 50 == 0 or i + 1 == args.clips:
            print(f"{i + 1}/{args.clips} clips", flush=True)
    (out / "index.json").write_text(json.dumps({"seed": args.seed, "size": args.size, "frames": args.frames,
                                                "fps": args.fps, "clips": index}, indent=1))
    print(f"wrote {args.clips} clips to {out}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.cmd == "export":
        return export(args)
    if args.cmd == "assets":
        from .assets import build_assets
        build_assets(args.out)
        return 0
    if args.cmd == "docs":
        from .assets import build_docs
        build_docs(args.out)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
