"""Training command line (also under ``accelerate launch``).

    python -m pipelines.train vae       [--flags] [--resume_from_checkpoint latest]
    python -m pipelines.train generator --init runs/vae/final [--mode plain] …
    python -m pipelines.train temporal  --init runs/generator/final …
    python -m pipelines.train img       --init runs/temporal/final --variant full|end2end-m|end2end|ieg|plain
                                        [--msm_layers 1-4] [--pcs P] [--img_weight λ] …
    python -m pipelines.train motion    [--max_steps 3000] …             text mode's motion model (from scratch)
    python -m pipelines.train cce       [--init GENERATOR] [--motion_model PATH] [--library DIR] [--cce_init images|random]
    python -m pipelines.train export    --run runs/img [--checkpoint latest|final|PATH] --out assets/models/tiny
    python -m pipelines.train export    --run runs/motion --out assets/models/motion
    python -m pipelines.train export    --run runs/cce --out assets/characters [--encoder_out assets/models/cce]
    accelerate launch --multi_gpu --num_processes 2 -m pipelines.train generator …   (CPU too: see below)

On a machine without a GPU, `--multi_gpu` still works: accelerate starts the processes with torchrun and the
trainer asks for the CPU, so they train together over gloo. (`accelerate launch --cpu --num_processes N`
starts a single process in accelerate 1.15 unless an MPI hostfile is given.)

Every flag is a field of ``pipelines.train.config.TrainConfig`` (its comments say what each does); stage
defaults come from ``STAGE_DEFAULTS``. The full config is saved inside every checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from .config import STAGE_DEFAULTS, STAGES, TrainConfig


def _parser_for(stage: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m pipelines.train {stage}",
                                 description=f"train the {stage} stage (see pipelines/train/config.py)")
    defaults = {**{f.name: f.default for f in dataclasses.fields(TrainConfig)}, **STAGE_DEFAULTS[stage]}
    for f in dataclasses.fields(TrainConfig):
        if f.name == "stage":
            continue
        d = defaults[f.name]
        if isinstance(d, bool):
            ap.add_argument(f"--{f.name}", type=lambda s: s.lower() in ("1", "true", "yes"), default=d)
        elif isinstance(d, tuple):
            ap.add_argument(f"--{f.name}", type=_range, default=d, help="LO-HI")
        else:
            ap.add_argument(f"--{f.name}", type=type(d), default=d)
    ap.add_argument("--resume_from_checkpoint", default=None,
                    help="'latest' or a checkpoint folder; the run continues exactly where it stopped")
    return ap


def _range(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split("-")) if "-" in text else (int(text), int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give N or LO-HI") from None
    if not 1 <= lo <= hi <= 5:
        raise argparse.ArgumentTypeError(f"{text!r}: characters must be within 1-5")
    return lo, hi


def export_main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.train export",
                                 description="write a trained run as a MixPipeline folder (fp16 safetensors)")
    ap.add_argument("--run", required=True, type=Path, help="the run's --output_dir")
    ap.add_argument("--checkpoint", default="final", help="'final' (the finished stage), 'latest', or a folder")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--fp32", action="store_true", help="keep fp32 weights (default: fp16, half the size)")
    ap.add_argument("--encoder_out", type=Path, default=None,
                    help="cce runs: where the character encoder goes (default: assets/models/cce)")
    ap.add_argument("--decoder", type=Path, default=None,
                    help="generator runs: take the VAE decoder from this pipeline folder or finished "
                         "--vae_decoder_only run (its encoder must be the model's)")
    ap.add_argument("--prior_strength", type=float, default=None,
                    help="generator runs: save this SDEdit start as the model's default (model_index.json), the "
                         "strength measured best for it; default: keep the run's (none: the pipeline's constant)")
    args = ap.parse_args(argv)
    from .export import export
    try:
        path = export(args.run, args.checkpoint, args.out, fp16=not args.fp32, encoder_out=args.encoder_out,
                      decoder=args.decoder, prior_strength=args.prior_strength)
    except ValueError as e:
        print(f"python -m pipelines.train export: error: {e}", file=sys.stderr)
        return 2
    print(f"exported {path}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    stage, rest = argv[0], argv[1:]
    if stage == "export":
        return export_main(rest)
    if stage not in STAGES:
        print(f"python -m pipelines.train: unknown stage {stage!r}; use one of {', '.join(STAGES)} or export",
              file=sys.stderr)
        return 2
    args = _parser_for(stage).parse_args(rest)
    resume = args.resume_from_checkpoint
    fields = {k: v for k, v in vars(args).items() if k != "resume_from_checkpoint"}
    cfg = TrainConfig(stage=stage, **fields)
    try:
        cfg.check()
    except ValueError as e:
        print(f"python -m pipelines.train {stage}: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from .trainer import train
    summary = train(cfg, resume)
    print(f"done: step {summary['step']}, final {summary['final']}, last {summary['last']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
