"""The training loop shared by every stage: accelerate (one process or many), deterministic world data,
atomic checkpoints with resume, TensorBoard logs, validation renders through the real pipeline, and a final
pipeline folder the next stage (or ``export``) starts from.

    run = train(TrainConfig(stage="generator", init="runs/vae/final", max_steps=6000), resume="latest")

Data is indexed by step: step ``s`` of process ``r`` (of ``P``) uses world samples
``s·P·B + r·B … + B − 1``, so a resumed run continues the exact stream and ranks never share samples.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import BOOKKEEPING_FIELDS, GENERATOR_STAGES, MSM_ORDER, TrainConfig
from .data import MotionSampleConfig, MotionSampler, SampleConfig, WorldSampler, collate, collate_motion
from .objectives import GeneratorObjective, MotionObjective, VAEObjective

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------------------
def build_pipeline(cfg: TrainConfig):
    """The stage's MixPipeline: loaded from ``cfg.init`` (or fresh from ``cfg.model_config``), switched to the
    run's guidance mode — a missing reference guider is created zero-initialised (so End2End fine-tunes start
    exactly where the base model was), an unneeded one is dropped."""
    from ..mix import MixPipeline
    from ..models import configs
    from ..models.guider import PoseGuider
    from ..pose.prior import PRIOR_CHANNELS

    mode = cfg.guidance_mode
    if cfg.init:
        pipe = MixPipeline.from_pretrained(cfg.init, dtype=torch.float32)
    else:
        mc = {"tiny": configs.TINY, "test": configs.TEST}.get(cfg.model_config)
        if mc is None:
            raise ValueError(f"--model_config: unknown {cfg.model_config!r}; use tiny or test")
        from dataclasses import replace
        mc = replace(mc, sample_size=cfg.size, appearance_prior=cfg.appearance_prior)
        pipe = MixPipeline(**configs.build_components(mc, seed=cfg.seed, mode="end2end" if mode.startswith("end2end")
                                                      else "ieg"))
    pose_guider = pipe.pose_guider
    if cfg.appearance_prior and not pipe.denoiser.reads_prior:
        pose_guider = widen_guider(pose_guider, PRIOR_CHANNELS)
    elif pipe.denoiser.reads_prior and not cfg.appearance_prior:
        raise ValueError(f"--appearance_prior false: the --init model {cfg.init} reads the appearance prior; "
                         "start from a model without it or leave the flag at true")
    guider = pipe.reference_guider
    if mode.startswith("end2end") and guider is None:
        torch.manual_seed(cfg.seed + 1)
        guider = PoseGuider.from_config({**pipe.pose_guider.config, "conditioning_channels": 3})
    elif not mode.startswith("end2end"):
        guider = None
    pipe = MixPipeline(vae=pipe.vae, unet=pipe.unet, reference_net=pipe.reference_net, pose_guider=pose_guider,
                       context_encoder=pipe.context_encoder, scheduler=pipe.scheduler,
                       motion_adapter=pipe.motion_adapter, reference_guider=guider, motion_model=None,
                       plain_skeleton=mode == "plain", masked_reference_attention=mode == "end2end-m")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def widen_guider(guider, extra: int):
    """A copy of ``guider`` reading ``extra`` more input channels, whose weights start at zero: the widened
    guider computes exactly what the old one did until training moves them (how the appearance prior is added
    to a model trained without it)."""
    from ..models.guider import PoseGuider
    cfg = dict(guider.config)
    wide = PoseGuider(embedding_channels=cfg["embedding_channels"], block_out_channels=tuple(cfg["block_out_channels"]),
                      conditioning_channels=cfg["conditioning_channels"] + extra)
    state = guider.state_dict()
    w = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([w, w.new_zeros((w.shape[0], extra) + w.shape[2:])], dim=1)
    wide.load_state_dict(state)
    return wide


class StageModels:
    """The models of a stage that does not train a MixPipeline (motion, cce), by name — ``components`` as a
    pipeline has them, so the loop freezes, switches modes and saves them alike."""

    def __init__(self, **components):
        self.components = dict(components)

    def __getattr__(self, name):
        try:
            return self.__dict__["components"][name]
        except KeyError:
            raise AttributeError(name) from None


def build_motion_model(cfg: TrainConfig):
    from ..models.motion import MOTION_TEST, MOTION_TINY, MotionModel
    if cfg.init:
        return MotionModel.from_pretrained(cfg.init).float()
    sizes = {"tiny": MOTION_TINY, "test": MOTION_TEST}.get(cfg.model_config)
    if sizes is None:
        raise ValueError(f"--model_config: unknown {cfg.model_config!r}; use tiny or test")
    torch.manual_seed(cfg.seed)
    return MotionModel(**sizes)


def build_model(cfg: TrainConfig):
    """The stage's models: a MixPipeline for the generator stages, ``StageModels`` for the others."""
    if cfg.stage == "motion":
        return StageModels(motion_model=build_motion_model(cfg))
    if cfg.stage == "cce":
        from .cce_stage import build_cce
        return build_cce(cfg)
    return build_pipeline(cfg)


def make_objective(cfg: TrainConfig, pipe):
    if cfg.stage == "motion":
        return MotionObjective(pipe.motion_model)
    if cfg.stage == "cce":
        from .cce_stage import CCEObjective
        return CCEObjective(cfg, pipe)
    if cfg.stage == "vae":
        return VAEObjective(pipe.vae, cfg.kl_weight, cfg.edge_weight, cfg.vae_crop,
                            decoder_only=cfg.vae_decoder_only, character_weight=cfg.character_weight,
                            prior_share=cfg.vae_prior_share)
    layers = MSM_ORDER[: cfg.msm_layers] if cfg.stage == "img" else MSM_ORDER[:1]
    layers = tuple(l for l in layers if l in pipe.denoiser.reference_layers)
    return GeneratorObjective(pipe, cfg_dropout=cfg.cfg_dropout, img_layers=layers,
                              img_weight=cfg.img_weight if cfg.use_img else 0.0,
                              masked_reference_attention=cfg.guidance_mode == "end2end-m",
                              character_weight=cfg.character_weight, timestep_focus=cfg.timestep_focus,
                              prior_start=cfg.prior_start)


def trained_modules(cfg: TrainConfig, pipe) -> dict[str, torch.nn.Module]:
    """The modules this stage optimises (and checkpoints)."""
    if cfg.stage == "motion":
        return {"motion_model": pipe.motion_model}
    if cfg.stage == "cce":
        return {"cce": pipe.cce}
    if cfg.stage == "vae":
        if cfg.vae_decoder_only:
            return {"vae.decoder": pipe.vae.decoder, "vae.post_quant_conv": pipe.vae.post_quant_conv}
        return {"vae": pipe.vae}
    if cfg.stage == "temporal":
        if pipe.motion_adapter is None:
            raise ValueError("temporal stage: the model has no motion_adapter to train")
        return {"motion_adapter": pipe.motion_adapter}
    mods = {"unet": pipe.unet, "reference_net": pipe.reference_net, "pose_guider": pipe.pose_guider,
            "context_encoder": pipe.context_encoder}
    if pipe.reference_guider is not None:
        mods["reference_guider"] = pipe.reference_guider
    return mods


def freeze_unused(objective, batch: dict, modules: dict[str, torch.nn.Module]) -> list[str]:
    """Freeze parameters that receive no gradient (the ReferenceNet's layers after its last read attn1, …) —
    one probe backward with no dropout — so DDP needs no ``find_unused_parameters`` and AdamW skips them."""
    saved = getattr(objective, "cfg_dropout", None)
    if saved is not None:
        objective.cfg_dropout = 0.0
    try:
        objective(batch)["loss"].backward()
    finally:
        if saved is not None:
            objective.cfg_dropout = saved
    frozen = []
    for name, m in modules.items():
        for pname, p in m.named_parameters():
            if p.requires_grad and p.grad is None:
                p.requires_grad_(False)
                frozen.append(f"{name}.{pname}")
            p.grad = None
    return frozen


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
def sample_config(cfg: TrainConfig) -> SampleConfig:
    return SampleConfig(size=cfg.size, clip_frames=cfg.clip_frames, window=cfg.window,
                        characters=tuple(cfg.characters), pcs=cfg.pcs, sheet=cfg.sheet,
                        named_fraction=cfg.named_fraction, mix=cfg.mix,
                        plain=cfg.guidance_mode == "plain" and cfg.stage != "vae", prior=cfg.stage != "vae" or cfg.vae_prior_share > 0)


def motion_sample_config(cfg: TrainConfig) -> MotionSampleConfig:
    return MotionSampleConfig(size=cfg.size, max_frames=cfg.clip_frames, characters=tuple(cfg.characters),
                              named_fraction=cfg.named_fraction)


def sampler_for(cfg: TrainConfig, seed: int):
    """(sampler, collate) of the stage: world frames/clips, or world motions (motion stage)."""
    if cfg.stage == "motion":
        return MotionSampler(motion_sample_config(cfg), seed=seed), collate_motion
    if cfg.stage == "cce":
        from .cce_stage import CCESampler
        return CCESampler(cfg, seed), CCESampler.collate
    return WorldSampler(sample_config(cfg), seed=seed), collate


class _StepData(torch.utils.data.Dataset):
    def __init__(self, cfg: TrainConfig, rank: int, world: int, start_step: int):
        self.sampler, self.collate = sampler_for(cfg, cfg.seed)
        self.cfg, self.rank, self.world, self.start = cfg, rank, world, start_step

    def __len__(self):
        return self.cfg.max_steps - self.start

    def __getitem__(self, i: int):
        step, B = self.start + i, self.cfg.batch_size
        first = (step * self.world + self.rank) * B
        batch = self.collate([self.sampler[first + k] for k in range(B)])
        batch["seed"] = (self.cfg.seed * 1_000_003 + first) % (2 ** 63)       # the step's own randomness
        return batch, first


def data_loader(cfg: TrainConfig, rank: int, world: int, start_step: int):
    ds = _StepData(cfg, rank, world, start_step)
    return torch.utils.data.DataLoader(ds, batch_size=None, shuffle=False, num_workers=cfg.num_workers,
                                       prefetch_factor=2 if cfg.num_workers else None,
                                       persistent_workers=False)


# ---------------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------------
def training_setup(cfg: TrainConfig):
    """(pipeline, objective, trained modules) of a stage: everything frozen but the modules the stage
    trains, which are put in train mode."""
    pipe = build_model(cfg)
    objective = make_objective(cfg, pipe)
    modules = trained_modules(cfg, pipe)
    for m in pipe.components.values():
        if isinstance(m, torch.nn.Module):
            m.requires_grad_(False)
    for m in modules.values():
        m.requires_grad_(True)
        m.train()
    return pipe, objective, modules


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant (the generator recipes of AnimateAnyone/diffusers) or a cosine down to
    10 % (the motion model, trained from scratch to convergence)."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.lr_schedule == "cosine" and step >= cfg.warmup_steps:
        u = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, u))))
    return cfg.learning_rate * warm


def train(cfg: TrainConfig, resume: str | None = None, *, stop_after: int | None = None) -> dict:
    """Run (or continue) a stage. Returns a summary: steps run, last losses, checkpoint and final folders.
    ``stop_after`` ends the process's work after that many steps of this call (tests)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    cfg.check()
    out_dir = Path(cfg.output_dir)
    torch.set_num_threads(cfg.threads)
    # cpu=True when there is no GPU: accelerate then runs several processes (launched by
    # `accelerate launch --multi_gpu --num_processes N` / torchrun) as MULTI_CPU over gloo
    accelerator = Accelerator(project_config=ProjectConfiguration(project_dir=str(out_dir),
                                                                  logging_dir=str(out_dir / "logs")),
                              log_with="tensorboard", cpu=not torch.cuda.is_available(),
                              mixed_precision=cfg.mixed_precision)
    rank, world = accelerator.process_index, accelerator.num_processes
    set_seed(cfg.seed + 1000 * rank)
    saved_cfg = None
    start_folder = ckpt.resolve(out_dir, resume) if resume else None
    if start_folder is not None:
        saved_cfg = TrainConfig.from_dict(ckpt.read_config(start_folder))
        changed = {k for k, v in saved_cfg.to_dict().items()
                   if k not in (*BOOKKEEPING_FIELDS, "max_steps") and v != cfg.to_dict()[k]}
        if changed:
            raise ValueError(f"--resume_from_checkpoint: the checkpoint was trained with different settings "
                             f"({', '.join(sorted(changed))}); resume with the same flags or start a new --output_dir")

    pipe, objective, modules = training_setup(cfg)
    probe = _StepData(cfg, rank, world, 0)[0][0]
    probe = {k: (v[:2] if torch.is_tensor(v) or isinstance(v, list) else v) for k, v in probe.items()}
    frozen = freeze_unused(objective, probe, modules) if cfg.stage in GENERATOR_STAGES[1:] else []
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    step = 0
    state_extra: dict = {}
    if start_folder is not None:
        state = ckpt.load(start_folder, modules, optimizer)
        step = int(state["step"])
        state_extra = {"resumed_from": str(start_folder)}
        if accelerator.is_main_process:
            logger.info("resumed from %s at step %d", start_folder, step)
    objective, optimizer = accelerator.prepare(objective, optimizer)
    if accelerator.is_main_process:
        accelerator.init_trackers("train", config={k: (str(v) if isinstance(v, (list, tuple)) else v)
                                                   for k, v in cfg.to_dict().items()})
        (out_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))

    loader = data_loader(cfg, rank, world, step)
    t0, seen, last, first_index = time.time(), 0, {}, None
    n_steps = cfg.max_steps - step if stop_after is None else min(stop_after, cfg.max_steps - step)
    ckpt_folder = None
    for batch, first in loader:
        if n_steps <= 0:
            break
        first_index = first if first_index is None else first_index
        lr = learning_rate(cfg, step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        out = objective(batch)
        accelerator.backward(out["loss"])
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(out["loss"]):
            raise FloatingPointError(f"step {step}: the loss is {float(out['loss'])}; lower --learning_rate or "
                                     "resume from the last checkpoint")
        step += 1
        n_steps -= 1
        seen += cfg.batch_size
        if step % cfg.log_steps == 0 or step == cfg.max_steps:
            logs = {k: float(accelerator.gather(v.detach().reshape(1)).mean()) for k, v in out.items()}
            logs.update(lr=lr, samples_per_s=seen * world / max(1e-9, time.time() - t0))
            accelerator.log(logs, step=step)
            last = logs
            if accelerator.is_main_process:
                logger.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in logs.items()))
        if step % cfg.checkpointing_steps == 0 or step == cfg.max_steps or n_steps == 0:
            ckpt_folder = _save(accelerator, cfg, step, modules, optimizer, seen, first_index, frozen, state_extra)
        if cfg.validation_steps and step % cfg.validation_steps == 0 and accelerator.is_main_process:
            validate(cfg, pipe, step, accelerator)
    final = None
    if step == cfg.max_steps:
        final = out_dir / "final"
        if accelerator.is_main_process:
            finish(cfg, pipe, final)
        accelerator.wait_for_everyone()
    accelerator.end_training()
    return {"step": step, "last": last, "checkpoint": str(ckpt_folder) if ckpt_folder else None,
            "final": str(final) if final else None, "frozen": len(frozen)}


def _save(accelerator, cfg, step, modules, optimizer, seen, first_index, frozen, extra) -> Path:
    # every rank reports what it trained on, so a multi-process run can show that all ranks worked
    counts = accelerator.gather(torch.tensor([seen, first_index if first_index is not None else -1]).reshape(1, 2))
    folder = Path(cfg.output_dir) / "checkpoints" / f"step_{step:08d}"
    if accelerator.is_main_process:
        state = {"config": cfg.to_dict(), "samples_per_rank": counts[:, 0].tolist(),
                 "first_sample_per_rank": counts[:, 1].tolist(), "processes": accelerator.num_processes,
                 "frozen_parameters": len(frozen), **extra}
        folder = ckpt.save(cfg.output_dir, step, modules, getattr(optimizer, "optimizer", optimizer), state,
                           keep=cfg.checkpoints_total_limit)
    accelerator.wait_for_everyone()
    return folder


def finish(cfg: TrainConfig, pipe, folder: Path) -> None:
    """Write the stage's result as a complete pipeline folder (fp32) for the next stage or ``export``."""
    for m in pipe.components.values():
        if isinstance(m, torch.nn.Module):
            m.eval()
    folder = Path(folder)
    if cfg.stage == "motion":
        pipe.motion_model.save_pretrained(folder, safe_serialization=True)
        (folder / "training.json").write_text(json.dumps({"stage": cfg.stage, "config": cfg.to_dict()}, indent=1))
        return
    if cfg.stage == "cce":
        from .cce_stage import finish_cce
        finish_cce(cfg, pipe, folder)
        return
    if cfg.stage == "vae" and not cfg.vae_decoder_only:   # a new encoder: measure its latent scale
        from ..models.configs import calibrate_vae_scale
        frames = collate([WorldSampler(sample_config(cfg), seed=cfg.seed + 99)[i] for i in range(32)])["target"]
        scale = calibrate_vae_scale(pipe.vae, frames.flatten(0, 1))
        logger.info("VAE latent scale set to %.4f", scale)
    pipe.save_pretrained(folder, safe_serialization=True)
    (folder / "training.json").write_text(json.dumps({"stage": cfg.stage, "config": cfg.to_dict()}, indent=1))


@torch.no_grad()
def validate(cfg: TrainConfig, pipe, step: int, accelerator=None) -> Path:
    """Render a validation picture: VAE reconstructions, or a generation of a fixed world scene
    (reference sheet | guidance | output, a row per frame sampled) — saved and sent to TensorBoard."""
    from PIL import Image
    out_dir = Path(cfg.output_dir) / "validation"
    out_dir.mkdir(parents=True, exist_ok=True)
    modes = {n: m.training for n, m in pipe.components.items() if isinstance(m, torch.nn.Module)}
    for m in pipe.components.values():
        if isinstance(m, torch.nn.Module):
            m.eval()
    try:
        if cfg.stage == "motion":
            img = validation_motion(cfg, pipe.motion_model, step)
        elif cfg.stage == "cce":
            from .cce_stage import validation_cce
            img = validation_cce(cfg, pipe, step, accelerator)
        else:
            img = validation_generator(cfg, pipe)
        path = out_dir / f"step_{step:08d}.png"
        Image.fromarray(img).save(path)
        if accelerator is not None:
            for tracker in accelerator.trackers:
                if tracker.name == "tensorboard":
                    tracker.writer.add_image("validation", img, step, dataformats="HWC")
        return path
    finally:
        for n, was in modes.items():
            pipe.components[n].train(was)


def validation_generator(cfg: TrainConfig, pipe) -> np.ndarray:
    """VAE reconstructions, or a generation of a fixed world scene (reference sheet | guidance | output)."""
    sampler = WorldSampler(sample_config(cfg), seed=cfg.seed + 12345)
    if cfg.stage == "vae":
        x = collate([sampler[i] for i in range(4)])["target"].flatten(0, 1)
        r = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
        grid = torch.cat([torch.cat(list(x), 2), torch.cat(list(r), 2)], 1)
    else:
        frames = min(8, cfg.clip_frames)
        plan = sampler.world.plan(4242, n_characters=2, motion="swap", frames=frames)
        clip = sampler.world.render_plan(plan)
        ref = clip.frames[0]
        order = list(np.argsort(clip.positions[0]))
        res = pipe(reference_image=ref, reference_masks=clip.masks[0][order], keypoints=clip.keypoints,
                   assignment=[int(o) for o in order], num_inference_steps=10, guidance_scale=2.0,
                   generator=torch.Generator().manual_seed(0), width=cfg.size, height=cfg.size,
                   num_frames=frames)
        top = np.concatenate([res.reference_sheet] + list(res.guidance_frames[::2]), 1)
        bottom = np.concatenate([clip.frames[0]] + list(res.frames[::2]), 1)
        grid = torch.from_numpy(np.concatenate([top, bottom], 0)).permute(2, 0, 1).float() / 127.5 - 1
    return ((grid.clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).numpy()


VALIDATION_PROMPTS = ("[character: Pip] walks to the right.", "[character: Bramble] walks to the left.",
                      "[character: Zed] chases [character: Dora].", "[character: Luma] and [character: Hank] swap places.")


def validation_motion(cfg: TrainConfig, model, step: int) -> np.ndarray:
    """Skeletons the model makes for fixed prompts (top of each pair) over the world's own motion of the
    same caption and cast (bottom), every other frame; the behaviours are encoded from reference clips."""
    from ..cce.prompt import parse_prompt
    from ..pose.ieg import render_ieg
    from ..world.characters import NAMED_BY_ID
    sampler = MotionSampler(motion_sample_config(cfg), seed=cfg.seed + 12345)
    rows = []
    for i, prompt in enumerate(VALIDATION_PROMPTS):
        ids = parse_prompt(prompt).ids
        specs = [NAMED_BY_ID[c] for c in ids]
        refs = [sampler.reference(s, 900 + i * 8 + k) for k, s in enumerate(specs)]
        frames = torch.from_numpy(np.stack([r[0] for r in refs])).to(model.dtype)
        spectra = torch.from_numpy(np.stack([r[1] for r in refs])).to(model.dtype)
        b = model.encode_behaviour(frames, spectra)
        kp = model.generate_keypoints("", prompt=prompt, names=[s.name for s in specs], num_frames=16,
                                      width=cfg.size, height=cfg.size, generator=torch.Generator().manual_seed(i),
                                      behaviours={s.name: b[k] for k, s in enumerate(specs)})
        motion = parse_prompt(prompt).sentences[0].words[0]
        motion = {"walks": "walk", "chases": "chase", "swap": "swap"}.get(motion, motion)
        gt = sampler.world.plan(50_000 + i, characters=specs, motion=motion, frames=16).keypoints()
        rows.append(np.concatenate(list(render_ieg(kp, cfg.size, cfg.size)[::2]), 1))
        rows.append(np.concatenate(list(render_ieg(gt, cfg.size, cfg.size)[::2]), 1))
    return np.concatenate(rows, 0)
