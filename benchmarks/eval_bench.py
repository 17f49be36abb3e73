"""How long the evaluation itself takes on this machine (everything but the model's generation).

    python -m benchmarks.eval_bench [--runs 3] [--json out.json]

Measures, as medians over ``--runs``: the ICE-mini runner on the oracle (ground-truth regeneration and
hash check, SSIM / PSNR / L1, IC and style probes) per scene and for all 40 scenes; the ``ic`` command
on one 16-frame clip (skeleton regions, heatmap, overlay video); probe throughput (crops per second).
The benchmark's wall time for a real model is then about 40 × (generation + per-scene overhead).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import median_time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch
    from pipelines.eval.__main__ import main as cli
    from pipelines.eval.benchmark import Benchmark, load_model, run_benchmark
    from pipelines.eval.probes import Probes
    from pipelines.eval.video import write_video

    bench = Benchmark.load()
    probes = Probes.load()
    model, name = load_model("gt", bench)
    quiet = lambda *_: None
    res = {"threads": torch.get_num_threads()}

    res["oracle_40_scenes_s"] = median_time(lambda: run_benchmark(model, bench, probes=probes, model_name=name,
                                                                  log=quiet), args.runs)
    res["per_scene_overhead_s"] = res["oracle_40_scenes_s"] / len(bench.scenes)
    res["projected_tiny_model_s"] = len(bench.scenes) * (8.0 + res["per_scene_overhead_s"])

    bs = bench.scenes[1]
    clip = bs.ground_truth()
    with tempfile.TemporaryDirectory() as d:
        video = write_video(Path(d) / "clip.mp4", clip.frames, clip.fps)
        res["ic_command_s"] = median_time(
            lambda: cli(["ic", str(video), str(bs.folder / "scene.json"), "--out", str(Path(d) / "out")]), args.runs)

    crops = np.random.default_rng(0).integers(0, 255, (512, 64, 64, 3), dtype=np.uint8)
    probes.embed(crops[:32])
    res["identity_probe_crops_per_s"] = 512 / median_time(lambda: probes.embed(crops), args.runs)
    res["style_probe_crops_per_s"] = 512 / median_time(lambda: probes.live_action_prob(crops), args.runs)

    for k, v in res.items():
        print(f"{k:32s} {v:10.2f}" if isinstance(v, float) else f"{k:32s} {v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
