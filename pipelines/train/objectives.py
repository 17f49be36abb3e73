"""What each stage optimises, as modules whose ``forward(batch)`` returns the losses (lucidrains style), so
``accelerate`` can wrap them (DDP) without knowing the model.

* ``VAEObjective`` — L1 reconstruction + L1 on image gradients (outlines, grain) + a small KL.
* ``MotionObjective`` — text mode's motion model on world motions (positions, pose, velocities, latents, clock).
* ``GeneratorObjective`` — the diffusion loss of the pose-driven generator, with classifier-free dropout of
  reference + context, and (``img_layers``) the Identity-Matching-Graph loss
  ``L = L_diffusion + λ (1 − mean_ℓ IC_ℓ)`` computed by MQA on the captured layers
  (``pipelines.models.img``). Which parameters train is the stage's business (``trainable_parameters``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from torch import nn

from ..models.context import slot_images
from ..models.img import img_loss_from_captures
from ..pose.openpose import J

J_HIPS = (J["r_hip"], J["l_hip"])
J_ANKLES = (J["r_ankle"], J["l_ankle"])


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


TIMESTEP_FOCUS_CUT = 0.5   # --timestep_focus draws below this share of the schedule (the SDEdit start it was measured
                           # against: half the schedule; sampling at a lower strength uses only steps below it too)
PRIOR_START_SNR_CAP = 5.0  # --prior_start samples weigh their x0 error by min(SNR, 5) (min-SNR weighting): their ε target
                           # holds the prior's error scaled by √SNR, which near t = 0 no network can (or should) chase


def _generator(batch: dict, stream: int = 0) -> torch.Generator:
    """All randomness of a training step (noise, timesteps, dropout, latent samples) comes from the batch's
    own seed, so a resumed run draws exactly what the uninterrupted run would have. ``stream`` > 0 gives an
    independent draw from the same seed (a new draw must not shift the ones an existing run makes)."""
    return torch.Generator().manual_seed(int(batch.get("seed", 0)) + 1_000_003 * stream)


def _detached(capture):
    import dataclasses
    return dataclasses.replace(capture, query=capture.query.detach(), key=capture.key.detach())


class VAEObjective(nn.Module):
    """Reconstruction L1 + ``edge_weight`` × L1 of image gradients + ``kl_weight`` × KL. ``decoder_only``: the
    encoder runs without gradients and the KL term is left out (the latent space is fixed).
    ``character_weight``: the L1 terms weigh character pixels 1 + w (``character_weights``, per image).
    ``prior_share``: that share of the images (drawn per image from the batch's seed) is the sample's appearance
    prior instead of its frame — the pasted cut-outs every generation's SDEdit start is encoded from; their
    character pixels are the pasted ones (the prior's alpha)."""

    def __init__(self, vae, kl_weight: float = 1e-6, edge_weight: float = 0.5, crop: int = 0, *,
                 decoder_only: bool = False, character_weight: float = 0.0, prior_share: float = 0.0):
        super().__init__()
        self.vae, self.kl_weight, self.edge_weight, self.crop = vae, kl_weight, edge_weight, crop
        self.decoder_only, self.character_weight = decoder_only, float(character_weight)
        self.prior_share = float(prior_share)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x = batch["target"].flatten(0, 1)                                   # (B·T, 3, H, W) in [-1, 1]
        masks = batch["target_masks"].flatten(0, 1)[:, None] if self.character_weight > 0 else None  # (B·T,1,S,H,W)
        if self.prior_share > 0:
            if "prior" not in batch:
                raise ValueError("VAEObjective: prior_share needs batches with the appearance prior "
                                 "(SampleConfig.prior true)")
            prior = batch["prior"].flatten(0, 1)                            # (B·T, 4, H, W): RGB + alpha in [-1, 1]
            pick = torch.rand(len(x), generator=_generator(batch, 1)) < self.prior_share
            x = torch.where(pick[:, None, None, None], prior[:, :3], x)
            if masks is not None:
                pasted = torch.zeros_like(masks)
                pasted[:, 0, 0] = (prior[:, 3] + 1) / 2
                masks = torch.where(pick[:, None, None, None, None], pasted, masks)
        if self.crop and self.crop < x.shape[-1]:
            g = _generator(batch)
            y0, x0 = (int(v) for v in torch.randint(0, x.shape[-1] - self.crop + 1, (2,), generator=g))
            x = x[..., y0:y0 + self.crop, x0:x0 + self.crop]
            if masks is not None:
                masks = masks[..., y0:y0 + self.crop, x0:x0 + self.crop]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample(generator=_generator(batch))).sample
        w = character_weights(masks, x.shape[-2:], self.character_weight) if masks is not None else None  # (B·T,1,H,W)
        (gx, gy), (rx, ry) = image_gradients(x), image_gradients(recon)

        def mean(e):
            return e.mean() if w is None else (e * w[..., :e.shape[-2], :e.shape[-1]]).mean()
        error = (recon - x).abs()
        l1 = mean(error)
        edge = mean((gx - rx).abs()) + mean((gy - ry).abs())
        kl = posterior.kl().mean() / x[0].numel()
        loss = l1 + self.edge_weight * edge + (0.0 if self.decoder_only else self.kl_weight * kl)
        out = {"loss": loss, "l1": error.mean().detach(), "edge": edge.detach(), "kl": kl.detach()}
        if w is not None:
            out["weighted_l1"] = l1.detach()
        return out


def frame_noise(scheduler, clean: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
    """The noise that takes the frame's ``latents`` to ``add_noise(clean, noise, t)``: the ε target of a sample
    noised from another point (the prior start), ``ε' = ε + √SNR_t (clean − latents)``, so that
    ``√ᾱ_t latents + √(1−ᾱ_t) ε'`` is the same noisy input. Tensors (B, C, T, h, w), ``t`` (B,). Returns (ε', SNR_t
    broadcastable to the tensors)."""
    # float32 throughout: under bf16 autocast the latents are bf16, where ᾱ_0 = 0.99915 rounds to 1 and SNR to inf
    ab = scheduler.alphas_cumprod.to(latents.device, torch.float32)[t].view(-1, *([1] * (latents.dim() - 1)))
    snr = ab / (1 - ab)
    return (noise.float() + snr.sqrt() * (clean.float() - latents.float())).to(noise.dtype), snr


def character_weights(target_masks: torch.Tensor, size: tuple[int, int], weight: float) -> torch.Tensor:
    """Per-latent-pixel loss weights (B, T, h, w): 1 + ``weight`` × the share of the pixel covered by any
    character (area pooling of the union of ``target_masks`` (B, T, S, H, W)), scaled so every sample's
    weights average 1 — the loss keeps its magnitude and only its attention moves to the characters."""
    B, T = target_masks.shape[:2]
    union = target_masks.float().amax(2).flatten(0, 1)[:, None]                          # (B·T, 1, H, W)
    cover = F.adaptive_avg_pool2d(union, tuple(size))[:, 0].unflatten(0, (B, T))         # (B, T, h, w)
    w = 1.0 + weight * cover
    return w / w.mean(dim=(1, 2, 3), keepdim=True)


class GeneratorObjective(nn.Module):
    """Holds the pipeline's trainable modules as submodules (so DDP sees their parameters) and runs one
    training forward through ``MixDenoiser``."""

    def __init__(self, pipe, *, cfg_dropout: float = 0.1, img_layers: tuple[str, ...] = (), img_weight: float = 0.2,
                 masked_reference_attention: bool = False, character_weight: float = 0.0,
                 timestep_focus: float = 0.0, prior_start: float = 0.0):
        super().__init__()
        self.character_weight, self.timestep_focus = float(character_weight), float(timestep_focus)
        self.prior_start = float(prior_start)
        self.vae = pipe.vae
        self.unet, self.reference_net = pipe.unet, pipe.reference_net
        self.pose_guider, self.reference_guider = pipe.pose_guider, pipe.reference_guider
        self.motion_adapter, self.context_encoder = pipe.motion_adapter, pipe.context_encoder
        self.denoiser = pipe.denoiser
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.scaling = float(pipe.vae.config.scaling_factor)
        self.cfg_dropout, self.img_layers, self.img_weight = cfg_dropout, tuple(img_layers), img_weight
        self.masked = masked_reference_attention
        unknown = set(self.img_layers) - set(self.denoiser.reference_layers)
        if unknown:
            raise ValueError(f"img layers {sorted(unknown)} are not reference-attention layers of this model; "
                             f"candidates: {self.denoiser.reference_layers}")

    def timesteps(self, batch: dict, B: int, g: torch.Generator) -> torch.Tensor:
        """Uniform over the schedule; with ``timestep_focus`` f, that share of the samples (an independent draw
        from the batch's seed) is redrawn below ``TIMESTEP_FOCUS_CUT`` × T, where SDEdit sampling spends every step."""
        n = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(0, n, (B,), generator=g)
        if self.timestep_focus > 0:
            h = _generator(batch, 2)
            focus = torch.rand(B, generator=h) < self.timestep_focus
            t = torch.where(focus, torch.randint(0, int(n * TIMESTEP_FOCUS_CUT), (B,), generator=h), t)
        return t

    @torch.no_grad()
    def prior_starts(self, batch: dict, latents: torch.Tensor, t: torch.Tensor):
        """Where sampling really starts. Share ``prior_start`` of the samples (an independent draw from the batch's
        seed) is noised not from the frame's latents but from a point between them and the appearance prior's,
        ``z + β (z_prior − z)``, at a timestep below ``TIMESTEP_FOCUS_CUT`` × T, and still has to denoise to the
        frame. β = 1 (half of them) is the SDEdit start itself; β < 1 are the later steps, where a deterministic
        sampler carries part of the prior's error along (after a perfect step from t = 299, β = 0.69 at 199).
        Returns (clean latents to noise, timesteps, which samples) — the other samples are untouched."""
        B = latents.shape[0]
        h = _generator(batch, 3)
        start = torch.rand(B, generator=h) < self.prior_start
        n = self.noise_scheduler.config.num_train_timesteps
        t_low = torch.randint(0, int(n * TIMESTEP_FOCUS_CUT), (B,), generator=h)
        uniform = torch.rand(B, generator=h)
        beta = torch.where(torch.rand(B, generator=h) < 0.5, torch.ones(B), uniform)
        if not bool(start.any()):
            return latents, t, start
        prior = batch["prior"][:, :, :3]                                            # (B, T, 3, H, W) in [-1, 1]
        z_prior = self._latents(prior.flatten(0, 1), None).unflatten(0, prior.shape[:2]).transpose(1, 2)
        beta = torch.where(start, beta, torch.zeros(B)).to(latents)
        clean = latents + beta.view(B, 1, 1, 1, 1) * (z_prior.to(latents) - latents)
        return clean, torch.where(start, t_low, t.cpu()).to(t.device), start

    @torch.no_grad()
    def _latents(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        d = self.vae.encode(images).latent_dist
        return (d.sample(generator=generator) if generator is not None else d.mode()) * self.scaling

    def forward(self, batch: dict, slot_tokens: torch.Tensor | None = None,
                token_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``slot_tokens`` (B, S, T, D) with ``token_mask`` (B, S): learned CCE tokens for those slots (the
        cce stage), image-derived tokens for the others."""
        target, B, T = batch["target"], batch["target"].shape[0], batch["target"].shape[1]
        g = _generator(batch)
        S = batch["reference_masks"].shape[1]
        latents = self._latents(target.flatten(0, 1), g).unflatten(0, (B, T)).transpose(1, 2)   # (B, 4, T, h, w)
        ref_latents = self._latents(batch["reference"], None)
        enc = self.context_encoder
        slots = torch.arange(S, device=target.device).expand(B, S)
        cutouts = slot_images(batch["reference"], batch["reference_masks"], enc.config.image_size)
        if slot_tokens is None:
            context = enc(slots, slot_images=cutouts, slot_mask=batch["slots"])
        else:
            ident = torch.where(token_mask[..., None, None], slot_tokens.to(enc.dtype), enc.encode_slot_images(cutouts))
            context = enc(slots, slot_tokens=ident, slot_mask=batch["slots"])
        drop = torch.rand(B, generator=g).to(target.device) < self.cfg_dropout
        context = torch.where(drop[:, None, None], enc.null_context(context), context)
        ref_index = torch.where(drop, -1, torch.arange(B, device=target.device))
        noise = torch.randn(latents.shape, generator=g).to(latents)
        t = self.timesteps(batch, B, g).to(target.device)
        clean, start = latents, None
        if self.prior_start > 0:
            clean, t, start = self.prior_starts(batch, latents, t)
        noisy = self.noise_scheduler.add_noise(clean, noise, t)
        reference = self.denoiser.encode_reference(
            ref_latents, context, batch["reference_pose"] if self.reference_guider is not None else None)
        masks_on = self.masked
        pose = self.denoiser.encode_pose(batch["pose"], batch["prior"] if self.denoiser.reads_prior else None)
        out = self.denoiser(noisy, t, context, reference, pose, ref_index=ref_index,
                            regions=batch["target_masks"] > 0.5 if masks_on else None,
                            ref_regions=batch["reference_masks"] > 0.5 if masks_on else None,
                            capture_layers=self.img_layers)
        start_weight = None
        if start is not None:
            noise, snr = frame_noise(self.noise_scheduler, clean, latents, noise, t)
            # min-SNR weights on the prior starts: x0 error × min(SNR, cap), where ε-MSE is x0 error × SNR and
            # v-MSE x0 error × (SNR + 1); the logged "diffusion" includes these weights
            v = self.noise_scheduler.config.prediction_type == "v_prediction"
            capped = torch.clamp(snr, max=PRIOR_START_SNR_CAP) / (snr + 1 if v else snr)
            start_weight = torch.where(start.to(capped.device).view(B, 1, 1, 1, 1), capped, 1.0)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            goal = self.noise_scheduler.get_velocity(latents, noise, t)
        else:
            goal = noise
        error = (out.sample.float() - goal.float()) ** 2                   # (B, C, T, h, w)
        if start_weight is not None:
            error = error * start_weight
        diffusion = error.mean()
        result = {"diffusion": diffusion.detach()}
        if self.character_weight > 0:
            weight = character_weights(batch["target_masks"], error.shape[-2:], self.character_weight)
            diffusion = (error * weight[:, None]).mean()
            result["weighted"] = diffusion.detach()
        loss = diffusion
        if self.img_layers:
            captures = out.captures
            if self.img_weight == 0:          # monitoring only: IC is logged, nothing flows back
                captures = {k: _detached(c) for k, c in captures.items()}
            img, per_layer = img_loss_from_captures(captures, batch["target_masks"] > 0.5,
                                                    batch["reference_masks"] > 0.5)
            if self.img_weight > 0:
                loss = loss + self.img_weight * img
            result["img"] = img.detach()
            ics = [v for v in per_layer.values() if v == v]
            if ics:
                result["ic"] = torch.tensor(sum(ics) / len(ics))
        result["loss"] = loss
        return result


class MotionObjective(nn.Module):
    """Text mode's motion model (``pipelines.models.motion``) on world clips: joint positions, velocities, the
    pose around the hips and the feet's height (L1, units of canvas height) with the clock teacher-forced,
    joint visibility (BCE), the latents (start
    bin, ground bin, direction: cross-entropy, autoregressive over characters) and the step rate (log
    error weighted by how periodic the clip is). Behaviours come from the encoder on *another* clip of the
    same character; with ``prior_dropout`` they are replaced by the learned prior (unknown characters)."""

    def __init__(self, model, *, prior_dropout: float = 0.1, velocity_weight: float = 2.0, pose_weight: float = 2.0,
                 feet_weight: float = 4.0, latent_weight: float = 0.05, frequency_weight: float = 0.2,
                 visibility_weight: float = 0.05):
        super().__init__()
        self.model = model
        self.prior_dropout, self.velocity_weight, self.pose_weight = prior_dropout, velocity_weight, pose_weight
        self.feet_weight = feet_weight
        self.latent_weight, self.frequency_weight, self.visibility_weight = latent_weight, frequency_weight, visibility_weight

    def behaviours(self, batch: dict) -> torch.Tensor:
        """(B, N, Db) behaviour of every character, from its reference clip (zeros for padding)."""
        cm = batch["char_mask"]
        b = torch.zeros(*cm.shape, self.model.config.behaviour_dim, device=cm.device)
        b[cm] = self.model.encode_behaviour(batch["ref_frames"][cm], batch["ref_spectra"][cm])
        return b

    def forward(self, batch: dict, behaviour: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        m, cm, fm = self.model, batch["char_mask"], batch["frame_mask"]
        b = self.behaviours(batch) if behaviour is None else behaviour
        if self.prior_dropout and self.training:
            g = _generator(batch)
            drop = (torch.rand(cm.shape, generator=g) < self.prior_dropout).to(cm.device)
            b = torch.where(drop[..., None], m.behaviour_prior.expand_as(b), b)
        tokens = m.condition(b, batch["words"], batch["roles"], cm)
        values = m.latent_values(batch["x0"], batch["g0"], batch["direction"])
        lx, lg, ld = m.split_logits(m.latent_logits(tokens, values, cm))
        xb, gb = m.values_to_bins(batch["x0"], batch["g0"])
        latent = (F.cross_entropy(lx[cm], xb[cm]) + F.cross_entropy(lg[cm], gb[cm])
                  + F.cross_entropy(ld[cm], batch["direction"][cm]))
        freq = m.frequency(tokens, b)
        w = batch["periodicity"][cm]
        frequency = ((freq[cm].log() - batch["freq"][cm].clamp(min=0.3).log()).abs() * w).sum() / w.sum().clamp(min=1e-6)
        out = m.decode(m.context(tokens, values, cm), b, batch["time"], batch["duration"], batch["freq"], batch["phase"])
        start = torch.stack([batch["x0"], batch["g0"]], -1)[:, :, None, None]            # (B, N, 1, 1, 2)
        target = batch["keypoints"][..., :2] - start
        valid = (cm[:, :, None] & fm[:, None, :]).float()                                 # (B, N, F)
        err = (out[..., :2] - target).abs().sum(-1).mean(-1)                              # (B, N, F)
        position = (err * valid).sum() / valid.sum()
        # the body's shape around its hips (arm swing, stride, bounce of the head): root placement dominates the
        # absolute error, so the pose gets its own term
        def around_hips(x):
            return x - (x[..., J_HIPS[0]:J_HIPS[0] + 1, :] + x[..., J_HIPS[1]:J_HIPS[1] + 1, :]) / 2
        shape = ((around_hips(out[..., :2]) - around_hips(target)).abs().sum(-1).mean(-1) * valid).sum() / valid.sum()
        # foot contact: the lower ankle's height over the ground is where bounce and jumps show (a few pixels,
        # lost in the absolute error otherwise)
        def feet(x):
            return torch.maximum(x[..., J_ANKLES[0], 1], x[..., J_ANKLES[1], 1])
        foot = ((feet(out[..., :2]) - feet(target)).abs() * valid).sum() / valid.sum()
        both = valid[..., 1:] * valid[..., :-1]
        dv = ((out[..., 1:, :, :2] - out[..., :-1, :, :2]) - (target[..., 1:, :, :] - target[..., :-1, :, :]))
        velocity = (dv.abs().sum(-1).mean(-1) * both).sum() / both.sum().clamp(min=1)
        vis = F.binary_cross_entropy_with_logits(out[..., 2], batch["keypoints"][..., 2], reduction="none").mean(-1)
        visibility = (vis * valid).sum() / valid.sum()
        loss = (position + self.velocity_weight * velocity + self.pose_weight * shape + self.feet_weight * foot
                + self.latent_weight * latent
                + self.frequency_weight * frequency + self.visibility_weight * visibility)
        pixels = position.detach() / 2 * 128          # mean |error| per coordinate, pixels of a 128-pixel canvas
        return {"loss": loss, "position": position.detach(), "velocity": velocity.detach(), "pose": shape.detach(),
                "feet": foot.detach(),
                "latent": latent.detach(),
                "frequency": frequency.detach(), "visibility": visibility.detach(), "error_px128": pixels}


def info_nce(queries: torch.Tensor, keys: torch.Tensor, labels: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Contrastive alignment (CLIP's InfoNCE, one direction): each query (M, D) should be nearest, by
    cosine, to its key ``keys[labels[m]]`` among all keys (C, D). Returns the mean cross-entropy."""
    logits = scale * F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    return F.cross_entropy(logits, labels)
