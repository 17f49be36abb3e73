"""Behaviour fidelity of text mode — MIMIX's "Motion" score, measured instead of asked of a chatbot.

For each named character X, tracks of ``[character: X] walks to the left|right.`` are made by the motion model
(``assets/models/motion``) with X's behaviour taken from

* ``cce``     — X's learned CCE behaviour token (``assets/characters/<id>/cce.safetensors``),
* ``encoder`` — the motion model's encoder on one world clip of X (what a new character with a video gets),
* ``prior``   — the model's average behaviour (a character it knows nothing about),

and compared with the world's own walk of X. ``pipelines.eval.behaviour`` recovers gait frequency, bounce
and arm swing from each track; the table gives, per character, the score exp(−d²/2) against X's signature
(``CharacterSpec.behaviour``; d in the metric's units), and overall the mean score, the mean absolute error
per component and how often the nearest of the ten signatures is X's own.

    python -m benchmarks.behaviour_bench [--samples 4] [--frames 32] [--json docs/behaviour.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

SOURCES = ("cce", "encoder", "prior", "world")


def run(samples: int = 4, frames: int = 32, seed: int = 0) -> dict:
    from pipelines.cce.embedding import load_embedding
    from pipelines.eval.behaviour import behaviour_fidelity, estimate_behaviour, nearest_signature
    from pipelines.models.cce import load_motion_model
    from pipelines.train.data import MotionSampleConfig, MotionSampler
    from pipelines.world import NAMED, World

    model = load_motion_model()
    if model is None:
        raise SystemExit("no motion model in assets/models/motion: python -m pipelines.train motion, then export")
    world = World(seed + 31, frames=frames)
    refs = MotionSampler(MotionSampleConfig(max_frames=32), seed=seed + 57)
    candidates = {c.id: c.behaviour for c in NAMED}
    rows, timings = {}, []
    for i, spec in enumerate(NAMED):
        emb = load_embedding(spec.id)
        frames_in, spectra = refs.reference(spec, 1000 + i)
        with torch.no_grad():
            encoded = model.encode_behaviour(torch.from_numpy(frames_in)[None], torch.from_numpy(spectra)[None])[0]
        behaviours = {"cce": emb.behaviour if emb is not None else None, "encoder": encoded,
                      "prior": model.behaviour_prior.detach()}
        rows[spec.id] = {}
        for source in SOURCES:
            if source != "world" and behaviours[source] is None:
                continue
            ests = []
            for k in range(samples):
                direction = ("left", "right")[k % 2]
                if source == "world":
                    kp = world.plan(100 * i + k, characters=[spec], motion="walk").keypoints()
                else:
                    t0 = time.perf_counter()
                    kp = model.generate_keypoints(f"[character: {spec.name}] walks to the {direction}.",
                                                  names=[spec.name], num_frames=frames, width=128, height=128,
                                                  generator=torch.Generator().manual_seed(seed + 100 * i + k),
                                                  behaviours={spec.name: behaviours[source]})
                    timings.append(time.perf_counter() - t0)
                ests.append(estimate_behaviour(kp[:, 0], 8.0))
            fid = [behaviour_fidelity(e, spec.behaviour) for e in ests]
            rows[spec.id][source] = {
                "score": float(np.mean([f["score"] for f in fid])),
                "estimate": {k: float(np.mean([f["estimate"][k] for f in fid])) for k in fid[0]["estimate"]},
                "abs_error": {k: float(np.mean([f["abs_error"][k] for f in fid])) for k in fid[0]["abs_error"]},
                "nearest_is_self": float(np.mean([nearest_signature(e, candidates)[0] == spec.id for e in ests])),
            }
    summary = {}
    for source in SOURCES:
        got = [r[source] for r in rows.values() if source in r]
        if got:
            summary[source] = {"score": float(np.mean([g["score"] for g in got])),
                               "nearest_is_self": float(np.mean([g["nearest_is_self"] for g in got])),
                               "abs_error": {k: float(np.mean([g["abs_error"][k] for g in got]))
                                             for k in got[0]["abs_error"]}}
    return {"samples": samples, "frames": frames, "fps": 8.0, "per_character": rows, "summary": summary,
            "seconds_per_track": float(np.median(timings)) if timings else None,
            "signatures": {c.id: c.behaviour.vector().tolist() for c in NAMED}}


def table(result: dict) -> str:
    from pipelines.world import NAMED
    srcs = [s for s in SOURCES if s in result["summary"]]
    lines = ["| character | signature (gait Hz, bounce, arm swing) | " + " | ".join(srcs) + " |",
             "|---|---|" + "---|" * len(srcs)]
    for c in NAMED:
        r = result["per_character"][c.id]
        sig = ", ".join(f"{v:.3g}" for v in c.behaviour.vector())
        cells = []
        for s in srcs:
            if s not in r:
                cells.append("—")
                continue
            e = r[s]["estimate"]
            cells.append(f"{r[s]['score']:.2f} ({e['gait_hz']:.2f}, {e['bounce']:.3f}, {e['arm_swing']:.2f})")
        lines.append(f"| {c.name} | {sig} | " + " | ".join(cells) + " |")
    s = result["summary"]
    lines.append("| **mean score** | | " + " | ".join(f"**{s[k]['score']:.2f}**" for k in srcs) + " |")
    lines.append("| nearest signature is its own | | " + " | ".join(f"{s[k]['nearest_is_self']:.0%}" for k in srcs) + " |")
    for comp in ("gait_hz", "bounce", "arm_swing"):
        lines.append(f"| mean abs. error {comp} | | " + " | ".join(f"{s[k]['abs_error'][comp]:.3f}" for k in srcs) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.behaviour_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=4, help="tracks per character and source")
    ap.add_argument("--frames", type=int, default=32, help="frames per track (8 fps)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = run(args.samples, args.frames, args.seed)
    print(table(result))
    print(f"\nmotion model: {result['seconds_per_track']:.3f} s per {args.frames}-frame track (median)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
