"""Command line of the evaluation.

    python -m pipelines.eval benchmark --model gt|gt-swap|prior|gt+vae:FOLDER|prior+vae:FOLDER|FOLDER|py:mod:fn [--out results.json] [--limit N] [--steps N] [--threads N]
    python -m pipelines.eval ic VIDEO SCENE.json [--out DIR] [--keypoints FILE | --masks FILE.npz]
    python -m pipelines.eval behaviour KEYPOINTS.json [--fps 8]
    python -m pipelines.eval train-probes [--out assets/models/probes] [--steps 1500] …
    python -m pipelines.eval probe-accuracy [--descriptor probe|dinov2|clip] [--clips 150] [--named-clips 40]
    python -m pipelines.eval build-benchmark [--out DIR] [--scenes 40] [--seed 7]
    python -m pipelines.eval verify-benchmark [--benchmark DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pipelines.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    b = sub.add_parser("benchmark", help="score a model on ICE-mini and print the table")
    b.add_argument("--model", required=True, help="gt (oracle), gt-swap, prior, gt+vae:FOLDER or prior+vae:FOLDER "
                   "(through that pipeline's VAE: its ceiling), a MixPipeline folder (assets/models/tiny, "
                   "runs/img-full/final), a trainer run or checkpoint folder, or py:module:function")
    b.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    b.add_argument("--limit", type=int, default=None, help="only the first N scenes")
    b.add_argument("--benchmark", type=Path, default=None, help="benchmark folder (default assets/benchmarks/ice-mini)")
    b.add_argument("--descriptor", default="probe", help="identity descriptor: probe, dinov2, clip, dinov2:PATH, clip:PATH")
    b.add_argument("--probes", type=Path, default=None, help="probe weights (default assets/models/probes)")
    b.add_argument("--steps", type=int, default=None, help="override the scenes' sampler steps")
    b.add_argument("--prior_strength", type=float, default=None,
                   help="SDEdit start from the appearance prior, in (0, 1] (default: the pipeline's)")
    b.add_argument("--guidance_scale", type=float, default=None,
                   help="classifier-free guidance scale on reference + context (default: the scenes' own, 2.5)")
    b.add_argument("--device", default=None, help="torch device for the model (default: the accelerator, else cpu)")
    b.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's); use 1 on a shared CPU, where a second thread spin-waits")

    c = sub.add_parser("ic", help="IC accuracy of a video against its scene: JSON, heatmap, overlay video")
    c.add_argument("video", type=Path)
    c.add_argument("scene", type=Path)
    c.add_argument("--out", type=Path, default=None, help="output folder (default: <video>-ic next to the video)")
    c.add_argument("--keypoints", type=Path, default=None, help="OpenPose JSON of the tracks (default: the scene's motion)")
    c.add_argument("--masks", type=Path, default=None, help=".npz with 'masks' (F, T, H, W): exact regions instead of skeletons")
    c.add_argument("--descriptor", default="probe")
    c.add_argument("--probes", type=Path, default=None)

    h = sub.add_parser("behaviour", help="recover behaviour signatures (gait, bounce, arm swing) from keypoints")
    h.add_argument("keypoints", type=Path)
    h.add_argument("--fps", type=float, default=None, help="frames per second (default: the file's, else 8)")

    t = sub.add_parser("train-probes", help="train the identity and style probes on world crops")
    from .train_probes import add_arguments
    add_arguments(t)

    p = sub.add_parser("probe-accuracy", help="IC accuracy of a descriptor on held-out ground-truth clips")
    p.add_argument("--descriptor", default="probe")
    p.add_argument("--probes", type=Path, default=None)
    p.add_argument("--clips", type=int, default=150)
    p.add_argument("--seed", type=int, default=1001)
    p.add_argument("--named-clips", type=int, default=40, help="clips of the ten named characters (0: none)")

    bb = sub.add_parser("build-benchmark", help="(re)build the stored ICE-mini set")
    bb.add_argument("--out", type=Path, default=None)
    bb.add_argument("--scenes", type=int, default=40)
    bb.add_argument("--seed", type=int, default=7)

    v = sub.add_parser("verify-benchmark", help="regenerate every ground truth and check the manifest's hashes")
    v.add_argument("--benchmark", type=Path, default=None)
    return ap.parse_args(argv)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def cmd_benchmark(args) -> int:
    from .benchmark import benchmark_model, format_table
    if args.threads is not None:
        import torch
        torch.set_num_threads(args.threads)
    doc = benchmark_model(args.model, limit=args.limit, steps=args.steps, prior_strength=args.prior_strength,
                          guidance_scale=args.guidance_scale, device=args.device,
                          descriptor=args.descriptor, benchmark=args.benchmark, probes=args.probes, out=args.out)
    print(format_table(doc))
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_ic(args) -> int:
    import numpy as np
    from ..scene import Scene
    from .descriptors import get_descriptor
    from .ic import evaluate_video, overlay_frames, write_heatmap
    from .probes import Probes
    from .video import read_video, write_video
    frames, fps = read_video(args.video)
    scene = Scene.load(args.scene)
    probes = Probes.load(args.probes)
    descriptor = get_descriptor(args.descriptor, probes)
    keypoints = masks = None
    kp_notes: list[str] = []
    if args.keypoints and args.masks:
        return _fail("give --keypoints or --masks, not both")
    if args.keypoints:
        from .ic import keypoints_for_video
        keypoints, kp_notes = keypoints_for_video(args.keypoints, frames)
    if args.masks:
        with np.load(args.masks) as z:
            if "masks" not in z:
                return _fail(f"--masks {args.masks}: no array named 'masks' (found {', '.join(z.files)})")
            masks = z["masks"]
    report, regions, refs, notes = evaluate_video(frames, scene, descriptor, probes=probes, keypoints=keypoints,
                                                  masks=masks)
    notes = kp_notes + notes
    out = args.out or args.video.with_name(args.video.stem + "-ic")
    out.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in refs]
    doc = {"video": str(args.video), "scene": str(args.scene), "regions": "masks" if masks is not None else "skeleton",
           "notes": notes, **report.to_dict(names)}
    (out / "ic.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_heatmap(out / "affinity.png", report.affinity, names, report.expected,
                  title=f"IC {report.accuracy:.3f}: tracks x references, mean over frames")
    write_video(out / "overlay.mp4", overlay_frames(frames, regions, report, names), fps or scene.fps)
    print(f"IC accuracy {report.accuracy:.4f} over {int(report.judged.sum())} judged track-frames "
          f"(descriptor {report.descriptor})")
    for t, v in enumerate(report.per_track):
        slot = report.expected[t]
        who = names[slot] if slot >= 0 else "nobody"
        print(f"  track {t} ({who}): {'–' if np.isnan(v) else f'{v:.3f}'}")
    if not np.isnan(report.style_delusion):
        print(f"style delusion {report.style_delusion:.4f}")
    for note in notes + ([report.trust["note"]] if report.trust.get("note") else []):
        print(f"note: {note}")
    print(f"wrote {out / 'ic.json'}, {out / 'affinity.png'}, {out / 'overlay.mp4'}")
    return 0


def cmd_behaviour(args) -> int:
    from ..pose.openpose import load_motion
    from ..world import NAMED
    from .behaviour import estimate_tracks, nearest_signature
    kp, _, _, meta = load_motion(args.keypoints)
    fps = args.fps or float(meta.get("fps", 8.0))
    cands = {c.name: c.behaviour for c in NAMED}
    out = []
    for t, est in enumerate(estimate_tracks(kp, fps)):
        name, dist = nearest_signature(est, cands)
        out.append({"track": t, **est.to_dict(), "nearest_named": name, "distance": round(dist, 4)})
        print(f"track {t}: gait {est.gait_hz:.2f} Hz, bounce {est.bounce:.3f}, arm swing {est.arm_swing:.2f} rad "
              f"(periodicity {est.periodicity:.2f}) — nearest named signature: {name} ({dist:.2f})")
    return 0


def cmd_probe_accuracy(args) -> int:
    from .descriptors import get_descriptor
    from .probes import Probes
    from .train_probes import evaluate_descriptor
    probes = Probes.load(args.probes)
    desc = get_descriptor(args.descriptor, probes)
    # the style probe is measured on the same crops whatever the identity descriptor
    res = {"unseen": evaluate_descriptor(desc, args.seed, args.clips, probes=probes)}
    if args.named_clips:
        res["named"] = evaluate_descriptor(desc, args.seed, args.named_clips, named=True, probes=probes)
    print(json.dumps(res, indent=1))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    from .features import Unavailable
    try:
        if args.cmd == "benchmark":
            return cmd_benchmark(args)
        if args.cmd == "ic":
            return cmd_ic(args)
        if args.cmd == "behaviour":
            return cmd_behaviour(args)
        if args.cmd == "train-probes":
            from .train_probes import main as train_main
            return train_main(args)
        if args.cmd == "probe-accuracy":
            return cmd_probe_accuracy(args)
        if args.cmd == "build-benchmark":
            from .benchmark import build_benchmark
            build_benchmark(args.out, args.scenes, args.seed)
            return 0
        if args.cmd == "verify-benchmark":
            from .benchmark import Benchmark
            bench = Benchmark.load(args.benchmark)
            bench.verify()
            print(f"{bench.manifest['name']} v{bench.version}: all {len(bench.scenes)} ground truths match the manifest")
            return 0
    except (ValueError, FileNotFoundError, Unavailable) as e:
        return _fail(str(e))
    return 2


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
