"""What the Table-2 variants make on one ICE-mini scene: a grid of frames, one row per model, the ground truth
on top — the picture behind a row of docs/RESULTS.md or docs/RESULTS-from-noise.md.

    python -m benchmarks.variant_frames --scene ice-001 --prior_strength 1.0 --steps 10 \\
        --model Full=runs/img-full/final --model End2End=runs/img-end2end/final --out docs/img-from-noise.png

Every model samples the scene with the scene's own seed (`pipelines.eval.benchmark.load_model`, the benchmark's
own path), so a row shows exactly the clip the benchmark scored. ``--model`` takes LABEL=SPEC, SPEC being
anything ``pipelines.eval benchmark --model`` accepts (a pipeline folder, ``prior``, ``gt``, …).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABEL_W = 110          # pixels of the label column


def grid(rows: list[tuple[str, np.ndarray]], frames: list[int], cell: int = 128) -> np.ndarray:
    """Rows of (label, clip (F, H, W, 3) uint8) → one uint8 image: a label column, then ``frames`` of each clip
    resized to ``cell`` × ``cell``. A frame index past a clip's end raises an error naming the clip."""
    out = []
    for label, clip in rows:
        bad = [f for f in frames if not -len(clip) <= f < len(clip)]
        if bad:
            raise ValueError(f"--frames {bad}: {label!r} has only {len(clip)} frames")
        tiles = [cv2.resize(np.ascontiguousarray(clip[f]), (cell, cell), interpolation=cv2.INTER_AREA) for f in frames]
        name = np.full((cell, LABEL_W, 3), 255, np.uint8)
        for i, part in enumerate(label.split("\n")[:4]):
            cv2.putText(name, part, (4, 20 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.concatenate([name] + tiles, axis=1))
    return np.concatenate(out, axis=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", required=True, help="an ICE-mini scene id, e.g. ice-001")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=SPEC", required=True)
    ap.add_argument("--prior_strength", type=float, default=None, help="default: the pipeline's")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the scene's)")
    ap.add_argument("--frames", type=int, nargs="+", default=[0, 5, 10, 15])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    models = []
    for m in args.model:
        label, sep, spec = m.partition("=")
        if not sep or not label or not spec:
            ap.error(f"--model {m!r}: write LABEL=SPEC, e.g. Full=runs/img-full/final")
        models.append((label.replace("\\n", "\n"), spec))
    import torch
    torch.set_num_threads(args.threads)
    from pipelines.eval.benchmark import Benchmark, _to_frames, load_model
    bench = Benchmark.load()
    found = [s for s in bench.scenes if s.id == args.scene]
    if not found:
        ap.error(f"--scene {args.scene!r}: not an ICE-mini scene; they are {bench.scenes[0].id} … {bench.scenes[-1].id}")
    scene = found[0]
    rows = [("ground truth", scene.ground_truth().frames)]
    for label, spec in models:
        fn, _ = load_model(spec, bench, steps=args.steps, prior_strength=args.prior_strength)
        rows.append((label, _to_frames(fn(scene.scene))))
    img = grid(rows, args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"{args.out}: {len(rows)} rows × frames {args.frames} of {args.scene} ({scene.tags})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
