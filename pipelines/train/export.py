"""Turn a training run into what ships: a MixPipeline folder (generator stages, ``assets/models/tiny``), the
motion model (``assets/models/motion``), or the library's CCE tokens (``assets/characters/<id>/cce.safetensors``
and the character encoder in ``assets/models/cce``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import checkpoint as ckpt
from .config import GENERATOR_STAGES, TrainConfig


def _stage_of(run: Path, which: str) -> tuple[str, Path | None, TrainConfig | None]:
    """(stage, finished folder or None, config of the checkpoint when exporting one)."""
    if which == "final":
        folder = run / "final"
        meta = folder / "training.json"
        if not meta.is_file():
            raise ValueError(f"--run {run}: no finished stage (no final/training.json); "
                             "use --checkpoint latest to export the last checkpoint")
        return json.loads(meta.read_text())["stage"], folder, None
    folder = ckpt.resolve(run, which)
    if folder is None:
        raise ValueError(f"--run {run}: no checkpoints yet")
    cfg = TrainConfig.from_dict(ckpt.read_config(folder))
    return cfg.stage, folder, cfg


def export(run: str | Path, which: str, out: str | Path, *, fp16: bool = True,
           encoder_out: str | Path | None = None) -> Path:
    """``which`` = "final" (the finished stage's folder), "latest", or a checkpoint folder. ``out``: the
    pipeline folder (generator stages), the motion model folder (motion), the library folder (cce; the
    character encoder goes to ``encoder_out``, default ``assets/models/cce``)."""
    import torch
    run, out = Path(run), Path(out)
    stage, folder, cfg = _stage_of(run, which)
    if stage == "motion":
        from ..models.motion import MotionModel
        if cfg is None:
            model = MotionModel.from_pretrained(folder)
            meta = json.loads((folder / "training.json").read_text())
        else:
            from .trainer import build_motion_model
            model = build_motion_model(cfg)
            ckpt.load(folder, {"motion_model": model})
            meta = {"stage": stage, "config": cfg.to_dict(), "checkpoint": str(folder)}
        model.to(torch.float16 if fp16 else torch.float32).save_pretrained(out, safe_serialization=True)
        (out / "training.json").write_text(json.dumps(meta, indent=1))
        return out
    if stage == "cce":
        from ..paths import models_dir
        from .cce_stage import export_cce, finish_cce
        encoder_out = Path(encoder_out) if encoder_out is not None else models_dir() / "cce"
        if cfg is None:
            export_cce(folder, out, encoder_out)
        else:
            from .trainer import build_model
            parts = build_model(cfg)
            ckpt.load(folder, {"cce": parts.cce})
            with tempfile.TemporaryDirectory() as tmp:
                finish_cce(cfg, parts, Path(tmp))
                export_cce(Path(tmp), out, encoder_out)
        return out
    if stage not in GENERATOR_STAGES:
        raise ValueError(f"--run {run}: cannot export stage {stage!r}")
    from ..mix import MixPipeline
    from ..mix.loading import save_pipeline
    if cfg is None:
        pipe = MixPipeline.from_pretrained(folder, dtype=torch.float32)
        meta = json.loads((folder / "training.json").read_text())
    else:
        from .trainer import build_pipeline, finish, trained_modules
        pipe = build_pipeline(cfg)
        ckpt.load(folder, trained_modules(cfg, pipe))
        if cfg.stage == "vae":                       # the latent scale is set when a VAE stage finishes
            finish(cfg, pipe, out)
        meta = {"stage": cfg.stage, "config": cfg.to_dict(), "checkpoint": str(folder)}
    save_pipeline(pipe, out, fp16=fp16)
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    return out
