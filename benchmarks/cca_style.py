"""Style delusion with vs without Cross-Character Augmentation — the fair pair (MIMIX's style question).

Two fine-tunes of one generator (``--init``): the same stage, steps, seed and sample stream, differing only in
the CCA share of the trainer's sampler (``--share``, default 0.1, against 0.0 — with the same seed the two
streams hold the same world samples except where the 0.1 run draws a CCA composite). Each fine-tuned
generator then renders the ICE-mini scenes (``pipelines.eval.benchmark``) that put a character on a set of
the other style — a live-action character in a cartoon show's set, or the reverse — and the style probe of
``pipelines.eval`` judges every visible character-frame (``ic_accuracy`` with ground-truth masks). Style
delusion = the share of judged character-frames whose predicted style is not the character's own. The
ground truth itself is scored first: its delusion is the probe's own error on these scenes, the floor no
model can beat.

    python -m benchmarks.cca_style --init runs/img/final --steps 2000 [--stage img --variant full]
                                   [--out runs/cca_style] [--table docs/cca_style.md] [--limit N]

Fine-tunes are kept in ``--out/cca-<share>``: a finished one with the same settings is reused, an interrupted
one resumes from its last checkpoint. Writes a markdown table (``--table``, default ``--out/cca_style.md``)
and the numbers as JSON beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

TRAIN_STAGES = ("generator", "temporal", "img")


# ---------------------------------------------------------------------------------------------------------
# the fair pair of fine-tunes
# ---------------------------------------------------------------------------------------------------------
def fine_tune(init: Path, share: float, steps: int, out: Path, *, seed: int = 0, stage: str = "img", log=print,
              **overrides) -> tuple[Path, int]:
    """Fine-tune ``init`` for ``steps`` with CCA share ``share``. Returns the finished pipeline folder and how
    many of the samples the run trained on were CCA composites (one process: samples 0 … steps·batch − 1).
    ``overrides``: other ``TrainConfig`` fields (variant, mode, size, batch_size, learning_rate, …); None =
    the stage's default."""
    from pipelines.train.checkpoint import list_checkpoints
    from pipelines.train.config import BOOKKEEPING_FIELDS, STAGE_DEFAULTS, TrainConfig
    from pipelines.train.data import WorldSampler
    from pipelines.train.trainer import sample_config, train
    run = out / f"cca-{share:g}"
    settings = {**STAGE_DEFAULTS[stage], **{k: v for k, v in overrides.items() if v is not None}, "stage": stage,
                "init": str(init), "mix": share, "max_steps": steps, "seed": seed, "output_dir": str(run),
                "num_workers": 0, "threads": 1, "validation_steps": 0, "checkpointing_steps": max(1, min(500, steps))}
    cfg = TrainConfig(**settings)

    def cca_samples() -> int:
        sampler = WorldSampler(sample_config(cfg), seed=cfg.seed)
        return sum(sampler.is_cca(i) for i in range(steps * cfg.batch_size))

    meta = run / "final" / "training.json"
    if meta.is_file():
        done = json.loads(meta.read_text())["config"]
        # bookkeeping fields do not change the model: a run of the same recipe made elsewhere (e.g. the
        # img-full run of scripts/train_embedded.sh, linked here) is the same fine-tune
        if all(done.get(k) == v for k, v in cfg.to_dict().items() if k not in (*BOOKKEEPING_FIELDS, "output_dir")):
            log(f"CCA share {share:g}: reusing the finished fine-tune in {run / 'final'}")
            return run / "final", cca_samples()
        raise ValueError(f"--out: {run} holds a fine-tune with other settings; give another --out or remove it")
    resume = "latest" if list_checkpoints(run) else None
    log(f"CCA share {share:g}: fine-tuning {init} for {steps} steps ({stage}, seed {seed}) → {run}"
        + (" (resuming)" if resume else ""))
    t0 = time.time()
    train(cfg, resume=resume)
    log(f"CCA share {share:g}: fine-tuned in {time.time() - t0:.0f} s")
    return run / "final", cca_samples()


# ---------------------------------------------------------------------------------------------------------
# mixed-style scenes and the style probe
# ---------------------------------------------------------------------------------------------------------
def cross_set_scenes(bench) -> list:
    """ICE-mini scenes with at least one character on a set of the other style."""
    from pipelines.eval.benchmark import recipe_specs
    from pipelines.world import SHOWS
    return [s for s in bench.scenes
            if any(c.style != SHOWS[s.recipe["show"]].style for c in recipe_specs(s.recipe))]


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2
    if frames.shape[1:3] == size:
        return frames
    return np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in frames])


def style_delusion(model, scenes, probes, descriptor, *, frames: int | None = None, size: int | None = None,
                   log=print) -> dict:
    """Render every scene with ``model`` (scene → frames) and tally the style probe's verdicts per
    character-frame, split by the character's style and whether the set is of its own style."""
    from pipelines.eval.benchmark import _to_frames
    from pipelines.eval.ic import describe_references, ic_accuracy, scene_references
    from pipelines.scene import track_slots
    from pipelines.world import SHOWS
    groups = ("all", "other-style set", "live-action on cartoon set", "cartoon on live-action set", "own-style set")
    tally = {g: [0, 0] for g in groups}                   # [deluded, judged]
    per_scene = []                                        # the same tallies scene by scene (for intervals)
    correct = judged = 0
    seconds = []
    for k, bs in enumerate(scenes):
        clip = bs.ground_truth(verify=True)
        scene = bs.scene
        n = min(frames or clip.n_frames, clip.n_frames)
        if frames or size:
            scene = dataclasses.replace(scene, frames=n, width=size or scene.width, height=size or scene.height)
        t0 = time.time()
        out = _resize(_to_frames(model(scene))[:n], clip.frames.shape[1:3])
        seconds.append(time.time() - t0)
        n = min(n, len(out))
        styles = [c.style for c in clip.characters]
        rep = ic_accuracy(out[:n], clip.masks[:n], describe_references(descriptor, scene_references(scene)),
                          track_slots(scene.assignment, clip.n_characters), descriptor, probes=probes,
                          track_styles=styles)
        d = rep.deluded
        set_style = SHOWS[clip.show].style
        mine = {g: [0, 0] for g in groups}
        for t, style in enumerate(styles):
            col = d[:, t]
            bad, seen = int((col == 1).sum()), int((col >= 0).sum())
            names = ["all"] + (["own-style set"] if style == set_style else
                               ["other-style set", f"{style} on {set_style} set"])
            for g in names:
                for acc in (tally[g], mine[g]):
                    acc[0] += bad
                    acc[1] += seen
        per_scene.append({"id": bs.id, "tally": mine})
        correct += int((rep.correct == 1).sum())
        judged += int(rep.judged.sum())
        log(f"  [{k + 1}/{len(scenes)}] {bs.id} ({set_style} set, {', '.join(styles)}): "
            f"style delusion {rep.style_delusion:.3f}, IC {rep.accuracy:.3f}")
    return {"style_delusion": {g: (b / j if j else None) for g, (b, j) in tally.items()},
            "judged": {g: j for g, (_, j) in tally.items()},
            "ic_accuracy": correct / judged if judged else None,
            "per_scene": per_scene,
            "seconds_per_scene": float(np.median(seconds)) if seconds else None}


def ground_truth_model(scenes):
    """The oracle: a scene → its regenerated ground-truth frames."""
    from pipelines.eval.benchmark import render_recipe
    by_dir = {str(b.folder.resolve()): b for b in scenes}
    return lambda scene: render_recipe(by_dir[str(Path(scene.base_dir).resolve())].recipe).frames


def pipeline_model(folder: Path, sampler_steps: int | None):
    """A saved MixPipeline as a model (scene → frames), seeded by the scene."""
    from pipelines.eval.benchmark import load_model
    return load_model(str(folder), device=torch.device("cpu"), steps=sampler_steps)[0]


# ---------------------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------------------
COLUMNS = (("all", "all characters"), ("other-style set", "on the other style's set"),
           ("live-action on cartoon set", "live-action on cartoon set"),
           ("cartoon on live-action set", "cartoon on live-action set"), ("own-style set", "on their own style's set"))


def table(result: dict) -> str:
    def cell(v):
        return "—" if v is None else f"{v:.3f}"
    lines = [f"Style delusion (↓) on {result['scenes']} ICE-mini scenes with a character on the other style's set; "
             f"generator fine-tuned from `{result['init']}` ({result['stage']}, {result['steps']} steps, seed "
             f"{result['seed']}), {result['sampler_steps'] or 'scene'} sampler steps"
             + (f", {result['frames']} frames" if result["frames"] else "")
             + (f", rendered at {result['size']} px" if result["size"] else "") + ".",
             f"Style probe: held-out accuracy {result['probe']['accuracy']}"
             + ("" if result["probe"]["trustworthy"] else f" — {result['probe']['note']}") + ".", "",
             "| model | CCA share (composites trained on) | " + " | ".join(h for _, h in COLUMNS)
             + " | IC accuracy | character-frames |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|---|"]
    for row in result["rows"]:
        r = row["result"]
        seen = "" if row["cca_samples"] is None else f" ({row['cca_samples']} of {result['samples']})"
        lines.append(f"| {row['model']} | {row['share']}{seen} | "
                     + " | ".join(cell(r["style_delusion"][k]) for k, _ in COLUMNS)
                     + f" | {cell(r['ic_accuracy'])} | {r['judged']['all']} |")
    return "\n".join(lines + difference(result))


def difference(result: dict) -> list[str]:
    """Lines saying how sure the scenes let us be of the with − without CCA difference: the paired scene
    bootstrap of ``benchmarks.stats`` on all characters and on the other style's set (empty for results
    written before per-scene tallies were kept)."""
    from benchmarks.stats import RESAMPLES, paired_difference
    with_cca, without = (row["result"].get("per_scene") for row in result["rows"][1:3])
    if not with_cca or not without or [s["id"] for s in with_cca] != [s["id"] for s in without]:
        return []
    parts = []
    for g, label in (("all", "all characters"), ("other-style set", "on the other style's set")):
        a = np.array([s["tally"][g] for s in with_cca], float).reshape(-1, 2)
        b = np.array([s["tally"][g] for s in without], float).reshape(-1, 2)
        d = paired_difference(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
        parts.append(f"{label} {d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]")
    return ["", f"With − without CCA, style delusion, 95 % interval from a paired bootstrap over the {len(with_cca)} "
                f"scenes ({RESAMPLES:,} resamples): " + "; ".join(parts) + ". An interval that holds 0 is a "
                "difference these scenes cannot show."]


def run(init: Path, steps: int, out: Path, *, share: float = 0.1, seed: int = 0, stage: str = "img",
        benchmark: Path | None = None, probes: Path | None = None, limit: int | None = None,
        sampler_steps: int | None = None, frames: int | None = None, size: int | None = None,
        train_size: int | None = None, log=print, **train) -> dict:
    """The fair pair, then style delusion of the ground truth and both fine-tunes; returns the results
    document (``table(result)`` is its markdown). ``train``: ``TrainConfig`` fields for both fine-tunes."""
    from pipelines.eval.benchmark import Benchmark
    from pipelines.eval.descriptors import get_descriptor
    from pipelines.eval.probes import Probes
    from pipelines.train.config import STAGE_DEFAULTS
    if not Path(init).is_dir():
        raise ValueError(f"--init: {init} is not a folder; give a saved MixPipeline (e.g. runs/img/final)")
    if steps < 1:
        raise ValueError(f"--steps: {steps} must be ≥ 1")
    if not 0 < share <= 1:
        raise ValueError(f"--share: {share} must be in (0, 1]; it is compared with 0")
    if stage not in TRAIN_STAGES:
        raise ValueError(f"--stage: {stage!r} does not fine-tune the generator; use one of {', '.join(TRAIN_STAGES)}")
    bench = Benchmark.load(benchmark)
    scenes = cross_set_scenes(bench)[:limit] if limit else cross_set_scenes(bench)
    probe = Probes.load(probes)
    descriptor = get_descriptor("probe", probe)
    train = {**train, "size": train_size}
    tuned = {s: fine_tune(Path(init), s, steps, Path(out), seed=seed, stage=stage, log=log, **train)
             for s in (share, 0.0)}
    rows = []
    for name, s, tuned_run in (("ground truth (the probe's floor)", "—", None),
                               ("fine-tuned with CCA", f"{share:g}", tuned[share]),
                               ("fine-tuned without CCA", "0", tuned[0.0])):
        log(f"{name}:")
        model = tuned_run[0] if tuned_run else None
        fn = ground_truth_model(scenes) if model is None else pipeline_model(model, sampler_steps)
        r = style_delusion(fn, scenes, probe, descriptor, frames=frames, size=None if model is None else size, log=log)
        rows.append({"model": name, "share": s, "folder": str(model) if model else None, "result": r,
                     "cca_samples": tuned_run[1] if tuned_run else None})
    trust = probe.trust("style")
    batch_size = train.get("batch_size") or STAGE_DEFAULTS[stage]["batch_size"]
    return {"init": str(init), "steps": steps, "samples": steps * batch_size, "seed": seed, "stage": stage,
            "train": {k: v for k, v in train.items() if v is not None},
            "scenes": len(scenes), "scene_ids": [s.id for s in scenes], "benchmark_version": bench.version,
            "sampler_steps": sampler_steps, "frames": frames, "size": size,
            "probe": {"accuracy": trust["accuracy"], "trustworthy": trust["trustworthy"], "note": trust["note"]},
            "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cca_style", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True, type=Path, help="the generator to fine-tune (a MixPipeline folder)")
    ap.add_argument("--steps", required=True, type=int, help="fine-tune steps of each run")
    ap.add_argument("--share", type=float, default=0.1, help="CCA share of the 'with' run (the other has 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage", default="img", choices=TRAIN_STAGES, help="trainer stage of the fine-tunes")
    ap.add_argument("--variant", default="full", help="img stage variant (see pipelines.train)")
    ap.add_argument("--mode", default="end2end", help="generator/temporal stage guidance mode")
    ap.add_argument("--train_size", type=int, default=128, help="training sample size (the generator's)")
    ap.add_argument("--batch_size", type=int, default=8, help="as scripts/train_embedded.sh's img stage")
    ap.add_argument("--learning_rate", type=float, default=1e-4, help="as scripts/train_embedded.sh's img stage")
    ap.add_argument("--warmup_steps", type=int, default=20)
    ap.add_argument("--character_weight", type=float, default=4.0,
                    help="diffusion loss weight on character pixels, as scripts/train_embedded.sh's img stage")
    ap.add_argument("--mixed_precision", default="no", choices=("no", "bf16"), help="bf16 autocast (CPU too)")
    ap.add_argument("--out", type=Path, default=Path("runs/cca_style"), help="where the two fine-tunes go")
    ap.add_argument("--table", type=Path, default=None, help="markdown table (default OUT/cca_style.md)")
    ap.add_argument("--benchmark", type=Path, default=None, help="ICE-mini folder (default: the shipped one)")
    ap.add_argument("--probes", type=Path, default=None, help="probe weights (default: assets/models/probes)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N mixed-style scenes")
    ap.add_argument("--sampler_steps", type=int, default=None, help="denoising steps (default: each scene's)")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames of each scene")
    ap.add_argument("--size", type=int, default=None, help="render at N×N (scored at the scene's size)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        result = run(args.init, args.steps, args.out, share=args.share, seed=args.seed, stage=args.stage,
                     benchmark=args.benchmark, probes=args.probes, limit=args.limit,
                     sampler_steps=args.sampler_steps, frames=args.frames, size=args.size,
                     variant=args.variant, mode=args.mode, train_size=args.train_size, batch_size=args.batch_size,
                     learning_rate=args.learning_rate, warmup_steps=args.warmup_steps,
                     character_weight=args.character_weight, mixed_precision=args.mixed_precision)
    except (ValueError, FileNotFoundError) as e:
        print(f"python -m benchmarks.cca_style: error: {e}")
        return 2
    text = table(result)
    print(text)
    path = args.table or args.out / "cca_style.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.cca_style " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    path.write_text(f"{text}\n\nCommand: `{command}`\n")
    path.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
