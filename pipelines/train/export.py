"""Turn a training run into a MixPipeline folder (what ships in ``assets/models/``)."""

from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint as ckpt
from .config import TrainConfig


def export(run: str | Path, which: str, out: str | Path, *, fp16: bool = True) -> Path:
    """``which`` = "final" (the finished stage's folder), "latest", or a checkpoint folder."""
    from ..mix import MixPipeline
    from ..mix.loading import save_pipeline
    run = Path(run)
    if which == "final":
        folder = run / "final"
        if not (folder / "model_index.json").is_file():
            raise ValueError(f"--run {run}: no finished stage (no final/model_index.json); "
                             "use --checkpoint latest to export the last checkpoint")
        import torch
        pipe = MixPipeline.from_pretrained(folder, dtype=torch.float32)
        meta = json.loads((folder / "training.json").read_text()) if (folder / "training.json").is_file() else {}
    else:
        from .trainer import build_pipeline, finish, trained_modules
        folder = ckpt.resolve(run, which)
        if folder is None:
            raise ValueError(f"--run {run}: no checkpoints yet")
        cfg = TrainConfig.from_dict(ckpt.read_config(folder))
        pipe = build_pipeline(cfg)
        ckpt.load(folder, trained_modules(cfg, pipe))
        if cfg.stage == "vae":                       # the latent scale is set when a VAE stage finishes
            tmp = Path(out)
            finish(cfg, pipe, tmp)
        meta = {"stage": cfg.stage, "config": cfg.to_dict(), "checkpoint": str(folder)}
    save_pipeline(pipe, out, fp16=fp16)
    (Path(out) / "training.json").write_text(json.dumps(meta, indent=1))
    return Path(out)
