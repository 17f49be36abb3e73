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


def swap_decoder(pipe, source: str | Path) -> dict:
    """Put the VAE decoder of ``source`` (a pipeline folder, or a run whose ``final/`` is one — e.g. a
    ``--vae_decoder_only`` run) into ``pipe``. Refused unless ``source``'s encoder and latent scale are
    ``pipe``'s (to fp16 precision): the generator was trained in that latent space. Returns provenance."""
    import torch
    from diffusers import AutoencoderKL
    source = Path(source)
    folder = source / "final" if (source / "final" / "vae").is_dir() else source
    if not (folder / "vae").is_dir():
        raise ValueError(f"--decoder {source}: no vae/ folder there (give a pipeline folder or a finished vae run)")
    vae = AutoencoderKL.from_pretrained(folder / "vae", torch_dtype=torch.float32)
    mine, theirs = pipe.vae.state_dict(), vae.state_dict()
    keys = [k for k in mine if k.startswith(("encoder.", "quant_conv."))]
    differ = [k for k in keys if k not in theirs or mine[k].shape != theirs[k].shape
              or not torch.equal(mine[k].half(), theirs[k].half())]
    if differ or vae.config.scaling_factor != pipe.vae.config.scaling_factor:
        raise ValueError(f"--decoder {source}: its encoder differs from the model's ({len(differ)} tensors, latent "
                         f"scale {vae.config.scaling_factor} vs {pipe.vae.config.scaling_factor}); only a decoder "
                         "trained on this model's encoder (--vae_decoder_only, --init this model) fits")
    pipe.vae.decoder.load_state_dict(vae.decoder.state_dict())
    pipe.vae.post_quant_conv.load_state_dict(vae.post_quant_conv.state_dict())
    meta = folder / "training.json"
    return {"from": str(folder), "training": json.loads(meta.read_text()) if meta.is_file() else None}


def export(run: str | Path, which: str, out: str | Path, *, fp16: bool = True,
           encoder_out: str | Path | None = None, decoder: str | Path | None = None,
           prior_strength: float | None = None) -> Path:
    """``which`` = "final" (the finished stage's folder), "latest", or a checkpoint folder. ``out``: the
    pipeline folder (generator stages), the motion model folder (motion), the library folder (cce; the
    character encoder goes to ``encoder_out``, default ``assets/models/cce``). ``decoder``: generator stages
    only — take the VAE decoder from that folder (``swap_decoder``). ``prior_strength``: generator stages only
    — save it as the model's default SDEdit start (``MixPipeline.default_prior_strength``)."""
    import torch
    run, out = Path(run), Path(out)
    stage, folder, cfg = _stage_of(run, which)
    for flag, value in (("--decoder", decoder), ("--prior_strength", prior_strength)):
        if value is not None and stage not in GENERATOR_STAGES:
            raise ValueError(f"{flag}: only for generator stages ({', '.join(GENERATOR_STAGES)}), not {stage!r}")
    if prior_strength is not None:
        from ..mix.pipeline_mix import check_prior_strength
        check_prior_strength(prior_strength, "--prior_strength")
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
        if cfg.stage == "vae" and not cfg.vae_decoder_only:   # the latent scale is set when a VAE stage finishes
            finish(cfg, pipe, out)
        meta = {"stage": cfg.stage, "config": cfg.to_dict(), "checkpoint": str(folder)}
    if decoder is not None:
        meta = {**meta, "decoder": swap_decoder(pipe, decoder)}
    if prior_strength is not None:
        pipe.register_to_config(prior_strength=float(prior_strength))
    save_pipeline(pipe, out, fp16=fp16)
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    return out
