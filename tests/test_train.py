"""The trainer: stages run, resume exactly, survive SIGKILL, run under accelerate with 2 processes, export a
pipeline that generates; ablation switches build the right model. Tiny test-size models, a few steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.train import checkpoint as ckpt
from pipelines.train.config import MSM_ORDER, TrainConfig
from pipelines.train.trainer import build_pipeline, make_objective, train

FAST = dict(model_config="test", size=64, batch_size=2, num_workers=0, log_steps=1, validation_steps=0,
            characters=(2, 3))


def cfg(tmp_path, **kw):
    return TrainConfig(**{**FAST, "output_dir": str(tmp_path / "run"), **kw})


def weights(folder):
    from safetensors.torch import load_file
    return load_file(Path(folder) / "model.safetensors")


def test_generator_stage_trains_checkpoints_and_exports(tmp_path):
    c = cfg(tmp_path, stage="generator", mode="end2end", max_steps=4, checkpointing_steps=2, validation_steps=4)
    summary = train(c)
    assert summary["step"] == 4 and summary["final"] and np.isfinite(summary["last"]["loss"])
    assert [p.name for p in ckpt.list_checkpoints(c.output_dir)] == ["step_00000002", "step_00000004"]
    assert ckpt.read_config(summary["checkpoint"])["mode"] == "end2end"      # the config travels inside
    assert (Path(c.output_dir) / "validation" / "step_00000004.png").is_file()
    assert any((Path(c.output_dir) / "logs").rglob("events.out.tfevents*"))
    from pipelines.mix import MixPipeline
    from pipelines.train.export import export
    out = export(c.output_dir, "latest", tmp_path / "exported")
    pipe = MixPipeline.from_pretrained(out, dtype=torch.float32)
    assert pipe.mode == "end2end"
    w = weights(summary["checkpoint"])
    assert torch.equal(pipe.unet.state_dict()["conv_in.weight"].float(),
                       w["unet.conv_in.weight"].half().float())                  # exported fp16 copy of the checkpoint
    assert pipe.config.prior_strength is None and pipe.default_prior_strength == 0.3   # none saved: the constant
    # the SDEdit start measured for a model travels with it (model_index.json)
    out = export(c.output_dir, "latest", tmp_path / "with-strength", prior_strength=0.4)
    assert json.loads((out / "model_index.json").read_text())["prior_strength"] == 0.4
    assert MixPipeline.from_pretrained(out, dtype=torch.float32).default_prior_strength == 0.4
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="--prior_strength"):
            export(c.output_dir, "latest", tmp_path / "bad", prior_strength=bad)


def test_resume_continues_exactly(tmp_path):
    straight = train(cfg(tmp_path / "a", stage="generator", max_steps=4, checkpointing_steps=2))
    first = train(cfg(tmp_path / "b", stage="generator", max_steps=4, checkpointing_steps=2), stop_after=2)
    assert first["step"] == 2
    resumed = train(cfg(tmp_path / "b", stage="generator", max_steps=4, checkpointing_steps=2), resume="latest")
    assert resumed["step"] == 4
    a, b = weights(straight["checkpoint"]), weights(resumed["checkpoint"])
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_resume_refuses_changed_settings(tmp_path):
    train(cfg(tmp_path, stage="generator", max_steps=2, checkpointing_steps=1))
    with pytest.raises(ValueError, match="different settings"):
        train(cfg(tmp_path, stage="generator", max_steps=3, learning_rate=1e-3), resume="latest")


def test_vae_stage_sets_the_latent_scale(tmp_path):
    summary = train(cfg(tmp_path, stage="vae", max_steps=2, checkpointing_steps=2))
    from pipelines.mix import MixPipeline
    pipe = MixPipeline.from_pretrained(summary["final"], dtype=torch.float32)
    assert pipe.vae.config.scaling_factor > 0 and "l1" in summary["last"] and "kl" in summary["last"]


def test_appearance_prior_warm_start_widens_the_guider_and_refuses_to_drop_it(tmp_path):
    """--init from a model trained without the prior: the guider gains 4 zero-initialised input channels and
    keeps its weights; the trained run exports a model that reads the prior. The reverse is refused."""
    from pipelines.mix import MixPipeline
    from pipelines.train.export import export
    base = cfg(tmp_path, stage="generator", mode="end2end", max_steps=1, appearance_prior=False)
    train(base)
    out = export(base.output_dir, "latest", tmp_path / "base")
    old = MixPipeline.from_pretrained(out, dtype=torch.float32).pose_guider
    assert old.config.conditioning_channels == 3
    pipe = build_pipeline(cfg(tmp_path, stage="generator", mode="end2end", init=str(out)))
    w = pipe.pose_guider.conv_in.weight
    assert pipe.denoiser.reads_prior and w.shape[1] == 7
    assert torch.equal(w[:, :3], old.conv_in.weight) and w[:, 3:].abs().max() == 0
    wide = cfg(tmp_path, stage="generator", mode="end2end", init=str(out), max_steps=2,
               output_dir=str(tmp_path / "wide"))
    train(wide)
    again = export(wide.output_dir, "latest", tmp_path / "wide-export")
    assert MixPipeline.from_pretrained(again, dtype=torch.float32).denoiser.reads_prior
    with pytest.raises(ValueError, match="--appearance_prior false: the --init model"):
        build_pipeline(cfg(tmp_path, stage="img", init=str(again), appearance_prior=False))


@pytest.mark.parametrize("variant, mode, has_guider, img", [
    ("plain", "plain", False, False), ("ieg", "ieg", False, False), ("end2end", "end2end", True, False),
    ("end2end-m", "end2end-m", True, False), ("full", "end2end", True, True)])
def test_table2_variants_switch_the_model(tmp_path, variant, mode, has_guider, img):
    c = cfg(tmp_path, stage="img", variant=variant, msm_layers=3)
    pipe = build_pipeline(c)
    assert pipe.mode == mode and (pipe.reference_guider is not None) == has_guider
    obj = make_objective(c, pipe)
    assert c.use_img == img and (obj.img_weight > 0) == img
    assert obj.img_layers == tuple(l for l in MSM_ORDER[:3] if l in pipe.denoiser.reference_layers)
    assert obj.masked == (mode == "end2end-m")


def test_img_loss_pushes_identity_consistency_up(tmp_path):
    """A few steps with λ large on one fixed batch: IC on the captured layers rises (the loss is wired to the
    right queries and keys)."""
    from pipelines.train.trainer import _StepData
    c = cfg(tmp_path, stage="img", variant="full", img_weight=5.0, msm_layers=1, cfg_dropout=0.0)
    pipe = build_pipeline(c)
    obj = make_objective(c, pipe)
    batch, _ = _StepData(c, 0, 1, 0)[0]
    params = [p for m in (pipe.unet, pipe.reference_net) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    ics = []
    for _ in range(12):
        out = obj(batch)
        ics.append(float(out["ic"]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert ics[-1] > ics[0] + 0.1, ics


def test_bad_flags_are_explained():
    r = subprocess.run([sys.executable, "-m", "pipelines.train", "img", "--variant", "magic"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--variant: unknown 'magic'" in r.stderr
    r = subprocess.run([sys.executable, "-m", "pipelines.train", "dance"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown stage 'dance'" in r.stderr


def _cli(tmp_path, *extra):
    return [sys.executable, "-m", "pipelines.train", "generator", "--model_config", "test", "--size", "64",
            "--batch_size", "2", "--num_workers", "0", "--validation_steps", "0", "--log_steps", "1",
            "--characters", "2-3", "--output_dir", str(tmp_path / "run"), *extra]


def test_sigkill_mid_run_loses_at_most_one_checkpoint_interval(tmp_path):
    import re
    args = _cli(tmp_path, "--max_steps", "400", "--checkpointing_steps", "3")
    log = open(tmp_path / "log.txt", "w")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            cks = ckpt.list_checkpoints(tmp_path / "run")
            if cks and int(cks[-1].name.split("_")[1]) >= 6:
                break
            time.sleep(0.3)
        else:
            pytest.fail("the trainer wrote no checkpoint in time")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    reached = max(int(m) for m in re.findall(r"step (\d+) ", (tmp_path / "log.txt").read_text()))
    latest = ckpt.resolve(tmp_path / "run", "latest")
    saved = int(json.loads((latest / "state.json").read_text())["step"])
    assert 6 <= saved <= reached and reached - saved < 3          # lost less than one checkpoint interval
    r = subprocess.run(_cli(tmp_path, "--max_steps", str(saved + 3), "--checkpointing_steps", "3",
                            "--resume_from_checkpoint", "latest"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    state = json.loads((ckpt.resolve(tmp_path / "run", "latest") / "state.json").read_text())
    assert state["step"] == saved + 3 and state["resumed_from"].endswith(latest.name)


def test_two_processes_under_accelerate_both_train(tmp_path):
    # accelerate 1.15 starts several CPU processes only through its torchrun launcher (--multi_gpu); with
    # --cpu it would start one (multi-CPU there needs an MPI hostfile). The trainer asks for the CPU itself.
    args = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "pipelines.train", *_cli(tmp_path)[3:],
            "--max_steps", "2", "--checkpointing_steps", "2"]
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    state = json.loads((ckpt.resolve(tmp_path / "run", "latest") / "state.json").read_text())
    assert state["processes"] == 2 and state["samples_per_rank"] == [4, 4]
    assert state["first_sample_per_rank"] == [0, 2]                        # each rank its own samples
    from pipelines.mix import MixPipeline
    pipe = MixPipeline.from_pretrained(tmp_path / "run" / "final", dtype=torch.float32)
    assert pipe.unet is not None


def test_a_fresh_reference_guider_reads_tinted_masks_even_when_the_pose_guider_reads_the_prior(tmp_path):
    from pipelines.train.export import export
    base = cfg(tmp_path, stage="generator", mode="ieg", max_steps=1)
    train(base)
    out = export(base.output_dir, "latest", tmp_path / "ieg")
    pipe = build_pipeline(cfg(tmp_path, stage="img", variant="end2end", init=str(out)))
    assert pipe.denoiser.reads_prior
    assert pipe.reference_guider.config.conditioning_channels == 3


def test_character_weight_moves_the_loss_onto_character_pixels(tmp_path):
    """character_weights: 1 + w × coverage, normalised to mean 1 per sample; with w = 0 the objective's loss
    is the plain ε-MSE, with w > 0 it is the same squared error weighted that way (same noise, same batch)."""
    from pipelines.train.objectives import character_weights
    from pipelines.train.trainer import _StepData
    masks = torch.zeros(2, 1, 3, 8, 8)
    masks[0, 0, 1, :4, :4] = 1                        # sample 0: a character over the top-left quarter
    w = character_weights(masks, (4, 4), 3.0)
    assert w.shape == (2, 1, 4, 4)
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.ones(2))
    assert torch.allclose(w[0, 0, :2, :2], torch.full((2, 2), 4 / 1.75)) and torch.allclose(w[0, 0, 2:, 2:], torch.full((2, 2), 1 / 1.75))
    assert torch.allclose(w[1], torch.ones(1, 4, 4))   # no character: plain weights
    half = torch.zeros(1, 1, 1, 2, 2)
    half[..., 0, 0] = 1                               # a latent pixel half covered gets half the extra weight
    assert torch.allclose(character_weights(half, (1, 2), 2.0)[0, 0, 0], torch.tensor([2.0, 1.0]) / 1.5)

    c = cfg(tmp_path, cfg_dropout=0.0)
    pipe = build_pipeline(c)
    batch, _ = _StepData(c, 0, 1, 0)[0]
    assert batch["target_masks"].amax() > 0
    with torch.no_grad():
        plain = make_objective(c, pipe)(batch)
        weighted = make_objective(TrainConfig(**{**c.to_dict(), "character_weight": 4.0}), pipe)(batch)
    assert "weighted" not in plain and torch.allclose(plain["loss"], plain["diffusion"])
    assert torch.allclose(weighted["diffusion"], plain["diffusion"])      # the plain ε-MSE is still logged
    assert torch.allclose(weighted["loss"], weighted["weighted"]) and not torch.allclose(weighted["loss"], plain["loss"])
    with pytest.raises(ValueError, match="--character_weight"):
        TrainConfig(character_weight=-1.0).check()


def test_vae_prior_share_trains_on_the_appearance_prior(tmp_path):
    """--vae_prior_share: the VAE stage's batches carry the appearance prior; share 1 reconstructs the priors
    (the loss is exactly the loss on a batch whose frames are the priors, weighted by their pasted pixels),
    share 0 the frames; a share outside 0..1 or outside the vae stage is refused."""
    from pipelines.train.trainer import _StepData
    base = dict(stage="vae", vae_crop=0, character_weight=4.0)
    c0 = cfg(tmp_path, **base)
    c1 = cfg(tmp_path, **base, vae_prior_share=1.0)
    assert "prior" not in _StepData(c0, 0, 1, 0)[0][0]
    batch, _ = _StepData(c1, 0, 1, 0)[0]
    prior = batch["prior"]                                               # (B, 1, 4, H, W)
    assert prior.shape[2] == 4 and (prior[:, :, 3] > 0).any()
    pipe = build_pipeline(c1)
    as_frames = {**batch, "target": prior[:, :, :3]}
    masks = torch.zeros_like(batch["target_masks"])
    masks[:, :, 0] = (prior[:, :, 3] + 1) / 2
    as_frames["target_masks"] = masks
    with torch.no_grad():
        on_prior = make_objective(c1, pipe)(batch)
        expected = make_objective(c0, pipe)(as_frames)
        on_frames = make_objective(c0, pipe)(batch)
    assert torch.allclose(on_prior["loss"], expected["loss"]) and torch.allclose(on_prior["l1"], expected["l1"])
    assert not torch.allclose(on_prior["loss"], on_frames["loss"])
    for bad in (dict(stage="vae", vae_prior_share=1.5), dict(stage="generator", vae_prior_share=0.5)):
        with pytest.raises(ValueError, match="--vae_prior_share"):
            TrainConfig(**bad).check()


def test_timestep_focus_draws_below_the_sdedit_start(tmp_path):
    """--timestep_focus f: share f of the timesteps is redrawn below TIMESTEP_FOCUS_CUT × T (where SDEdit
    sampling spends every step); f = 0 draws exactly what the trainer always drew; refused without the prior."""
    from pipelines.train.objectives import TIMESTEP_FOCUS_CUT
    c = cfg(tmp_path)
    pipe = build_pipeline(c)
    n = 4000
    batch = {"seed": 7}

    def draw(focus):
        obj = make_objective(TrainConfig(**{**c.to_dict(), "timestep_focus": focus}), pipe)
        return obj.timesteps(batch, n, torch.Generator().manual_seed(7))
    T = pipe.scheduler.config.num_train_timesteps
    cut = int(T * TIMESTEP_FOCUS_CUT)
    assert torch.equal(draw(0.0), torch.randint(0, T, (n,), generator=torch.Generator().manual_seed(7)))
    assert int(draw(1.0).max()) < cut
    low = (draw(0.5) < cut).float().mean().item()
    assert abs(low - (0.5 + 0.5 * TIMESTEP_FOCUS_CUT)) < 0.04        # half redrawn below, half uniform
    with pytest.raises(ValueError, match="--timestep_focus"):
        TrainConfig(timestep_focus=0.5, appearance_prior=False).check()
    with pytest.raises(ValueError, match="--timestep_focus"):
        TrainConfig(timestep_focus=2.0).check()


def test_prior_start_denoises_from_the_noised_prior_to_the_frame(tmp_path):
    """--prior_start p: share p of the samples is noised from between the frame's latents and the appearance
    prior's (β = 1: the SDEdit start itself) at a timestep below the SDEdit cut, and the ε target still leads to
    the frame: a denoiser answering the ideal ε' for the frame has zero loss. p = 0 is the old objective."""
    from types import SimpleNamespace

    from pipelines.train.objectives import TIMESTEP_FOCUS_CUT, _generator, frame_noise
    from pipelines.train.trainer import _StepData
    c = cfg(tmp_path, cfg_dropout=0.0, batch_size=4)
    pipe = build_pipeline(c)
    batch, _ = _StepData(c, 0, 1, 0)[0]
    T = pipe.scheduler.config.num_train_timesteps

    # the pure part: ε' takes the frame's latents to the same noisy input
    z, other, eps = torch.randn(3, 4, 4, 2, 8, 8).unbind(0)
    t = torch.tensor([0, 99, 299, 499])
    eps2, snr = frame_noise(pipe.scheduler, other, z, eps, t)
    sched = make_objective(c, pipe).noise_scheduler
    assert torch.allclose(sched.add_noise(other, eps, t), sched.add_noise(z, eps2, t), atol=1e-4)
    assert torch.allclose(eps2, eps + snr.sqrt() * (other - z)) and snr.shape == (4, 1, 1, 1, 1)
    low, _ = frame_noise(pipe.scheduler, other.bfloat16(), z.bfloat16(), eps.bfloat16(), t)   # bf16 autocast latents
    assert low.dtype == torch.bfloat16 and bool(torch.isfinite(low).all())                      # ᾱ_0 kept in float32

    def run(share, ideal):
        obj = make_objective(TrainConfig(**{**c.to_dict(), "prior_start": share}), pipe)
        seen = {}
        frame = obj._latents(batch["target"].flatten(0, 1), _generator(batch)).unflatten(0, (4, 1)).transpose(1, 2)

        def fake(noisy, t, *a, **k):           # the ε that denoises ``noisy`` exactly to the frame's latents
            seen["t"] = t
            ab = obj.noise_scheduler.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
            out = (noisy - ab.sqrt() * frame) / (1 - ab).sqrt() if ideal else torch.zeros_like(noisy)
            return SimpleNamespace(sample=out, captures={})
        obj.denoiser.forward = fake
        with torch.no_grad():
            return obj(batch), seen["t"], obj
    plain, t_plain, obj0 = run(0.0, ideal=False)
    with torch.no_grad():
        reference = make_objective(c, pipe)
        reference.denoiser.forward = obj0.denoiser.forward
        assert torch.allclose(reference(batch)["loss"], plain["loss"])          # share 0: the objective as it was
    started, t_start, obj1 = run(1.0, ideal=False)
    assert int(t_start.max()) < T * TIMESTEP_FOCUS_CUT and not torch.equal(t_start, t_plain)
    assert not torch.allclose(started["loss"], plain["loss"])
    assert float(run(1.0, ideal=True)[0]["loss"]) < 1e-6                          # the target is the frame
    assert float(run(0.0, ideal=True)[0]["loss"]) < 1e-6

    # which samples start from the prior, and from where: z + β (z_prior − z), half of them at β = 1
    latents = torch.zeros(400, 4, 1, 2, 2)
    prior = torch.full((400, 1, 4, 16, 16), 0.5)
    obj1._latents = lambda images, g: torch.ones(len(images), 4, 2, 2)              # z_prior = 1 everywhere
    clean, t2, start = obj1.prior_starts({"seed": 3, "prior": prior}, latents, torch.full((400,), 900))
    beta = clean[:, 0, 0, 0, 0]
    assert bool(start.all()) and int(t2.max()) < T * TIMESTEP_FOCUS_CUT
    assert torch.allclose(clean, beta.view(-1, 1, 1, 1, 1).expand_as(clean)) and float(beta.min()) >= 0
    assert 0.4 < float((beta == 1).float().mean()) < 0.6
    obj1.prior_start = 0.25
    clean, t3, start = obj1.prior_starts({"seed": 3, "prior": prior}, latents, torch.full((400,), 900))
    assert 0.17 < float(start.float().mean()) < 0.33
    assert bool((t3[~start] == 900).all()) and bool((clean[~start] == 0).all())
    with pytest.raises(ValueError, match="--prior_start"):
        TrainConfig(prior_start=0.5, appearance_prior=False).check()
    with pytest.raises(ValueError, match="--prior_start"):
        TrainConfig(prior_start=1.5).check()


def test_temporal_stage_trains_the_motion_modules_only(tmp_path):
    """The temporal stage on 4-frame windows of world clips: the zero-initialised motion modules leave zero,
    every other weight stays exactly the generator's, and the result loads as a pipeline."""
    from safetensors.torch import load_file
    base = train(cfg(tmp_path, stage="generator", mode="end2end", max_steps=1, output_dir=str(tmp_path / "base")))
    c = cfg(tmp_path, stage="temporal", mode="end2end", window=4, clip_frames=8, max_steps=3, learning_rate=1e-3,
            init=str(Path(base["final"])), output_dir=str(tmp_path / "temporal"))
    summary = train(c)
    assert summary["step"] == 3 and np.isfinite(summary["last"]["loss"])
    final = Path(summary["final"])

    def folder_weights(root, part):
        return load_file(next((Path(root) / part).glob("*.safetensors")))
    before, after = folder_weights(base["final"], "motion_adapter"), folder_weights(final, "motion_adapter")
    zero = [k for k, v in before.items() if k.endswith("proj_out.weight") and not v.any()]
    assert zero and all(after[k].any() for k in zero)                       # the zero-init outputs learned
    for part in ("unet", "reference_net", "pose_guider", "vae"):
        a, b = folder_weights(base["final"], part), folder_weights(final, part)
        assert all(torch.equal(a[k], b[k]) for k in a), part                 # frozen
    from pipelines.mix import MixPipeline
    assert MixPipeline.from_pretrained(final, dtype=torch.float32).motion_adapter is not None


def test_decoder_only_vae_stage_keeps_the_latent_space_and_swaps_into_a_model(tmp_path):
    """--vae_decoder_only: the decoder learns, the encoder and latent scale stay --init's (so the generator's
    latents still mean the same), and `export --decoder` puts that decoder into another model of the same
    encoder — a model with another encoder is refused."""
    from safetensors.torch import load_file
    from pipelines.train.export import export
    from pipelines.mix import MixPipeline
    base = train(cfg(tmp_path, stage="generator", mode="end2end", max_steps=1, output_dir=str(tmp_path / "base")))
    dec = train(cfg(tmp_path, stage="vae", vae_decoder_only=True, character_weight=4.0, vae_crop=32, max_steps=3,
                    learning_rate=1e-3, init=base["final"], output_dir=str(tmp_path / "dec")))
    assert np.isfinite(dec["last"]["loss"]) and "weighted_l1" in dec["last"]

    def vae_weights(folder):
        return load_file(next((Path(folder) / "vae").glob("*.safetensors")))
    a, b = vae_weights(base["final"]), vae_weights(dec["final"])
    enc = [k for k in a if k.startswith(("encoder.", "quant_conv."))]
    assert enc and all(torch.equal(a[k], b[k]) for k in enc)
    assert not torch.equal(a["decoder.conv_in.weight"], b["decoder.conv_in.weight"])
    assert json.loads((Path(dec["final"]) / "vae" / "config.json").read_text())["scaling_factor"] == \
        json.loads((Path(base["final"]) / "vae" / "config.json").read_text())["scaling_factor"]

    out = export(tmp_path / "base", "final", tmp_path / "shipped", fp16=False, decoder=tmp_path / "dec")
    c = vae_weights(out)
    assert torch.equal(c["decoder.conv_in.weight"], b["decoder.conv_in.weight"])
    assert torch.equal(load_file(next((out / "unet").glob("*.safetensors")))["conv_in.weight"],
                       load_file(next((Path(base["final"]) / "unet").glob("*.safetensors")))["conv_in.weight"])
    assert json.loads((out / "training.json").read_text())["decoder"]["training"]["config"]["vae_decoder_only"]
    MixPipeline.from_pretrained(out, dtype=torch.float32)
    other = train(cfg(tmp_path, stage="generator", mode="end2end", max_steps=1, seed=5, output_dir=str(tmp_path / "other")))
    with pytest.raises(ValueError, match="encoder differs"):
        export(tmp_path / "other", "final", tmp_path / "bad", decoder=tmp_path / "dec")
    with pytest.raises(ValueError, match="--vae_decoder_only"):
        TrainConfig(stage="vae", vae_decoder_only=True).check()
