"""What each stage optimises, as modules whose ``forward(batch)`` returns the losses (lucidrains style), so
``accelerate`` can wrap them (DDP) without knowing the model.

* ``VAEObjective`` — L1 reconstruction + L1 on image gradients (outlines, grain) + a small KL.
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


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _generator(batch: dict) -> torch.Generator:
    """All randomness of a training step (noise, timesteps, dropout, latent samples) comes from the batch's
    own seed, so a resumed run draws exactly what the uninterrupted run would have."""
    return torch.Generator().manual_seed(int(batch.get("seed", 0)))


def _detached(capture):
    import dataclasses
    return dataclasses.replace(capture, query=capture.query.detach(), key=capture.key.detach())


class VAEObjective(nn.Module):
    def __init__(self, vae, kl_weight: float = 1e-6, edge_weight: float = 0.5, crop: int = 0):
        super().__init__()
        self.vae, self.kl_weight, self.edge_weight, self.crop = vae, kl_weight, edge_weight, crop

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x = batch["target"].flatten(0, 1)                                   # (B·T, 3, H, W) in [-1, 1]
        if self.crop and self.crop < x.shape[-1]:
            g = _generator(batch)
            y0, x0 = (int(v) for v in torch.randint(0, x.shape[-1] - self.crop + 1, (2,), generator=g))
            x = x[..., y0:y0 + self.crop, x0:x0 + self.crop]
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample(generator=_generator(batch))).sample
        l1 = (recon - x).abs().mean()
        (gx, gy), (rx, ry) = image_gradients(x), image_gradients(recon)
        edge = (gx - rx).abs().mean() + (gy - ry).abs().mean()
        kl = posterior.kl().mean() / x[0].numel()
        loss = l1 + self.edge_weight * edge + self.kl_weight * kl
        return {"loss": loss, "l1": l1.detach(), "edge": edge.detach(), "kl": kl.detach()}


class GeneratorObjective(nn.Module):
    """Holds the pipeline's trainable modules as submodules (so DDP sees their parameters) and runs one
    training forward through ``MixDenoiser``."""

    def __init__(self, pipe, *, cfg_dropout: float = 0.1, img_layers: tuple[str, ...] = (), img_weight: float = 0.2,
                 masked_reference_attention: bool = False):
        super().__init__()
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

    @torch.no_grad()
    def _latents(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        d = self.vae.encode(images).latent_dist
        return (d.sample(generator=generator) if generator is not None else d.mode()) * self.scaling

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        target, B, T = batch["target"], batch["target"].shape[0], batch["target"].shape[1]
        g = _generator(batch)
        S = batch["reference_masks"].shape[1]
        latents = self._latents(target.flatten(0, 1), g).unflatten(0, (B, T)).transpose(1, 2)   # (B, 4, T, h, w)
        ref_latents = self._latents(batch["reference"], None)
        enc = self.context_encoder
        context = enc(torch.arange(S, device=target.device).expand(B, S),
                      slot_images=slot_images(batch["reference"], batch["reference_masks"], enc.config.image_size),
                      slot_mask=batch["slots"])
        drop = torch.rand(B, generator=g).to(target.device) < self.cfg_dropout
        context = torch.where(drop[:, None, None], enc.null_context(context), context)
        ref_index = torch.where(drop, -1, torch.arange(B, device=target.device))
        noise = torch.randn(latents.shape, generator=g).to(latents)
        t = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (B,), generator=g).to(target.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, t)
        reference = self.denoiser.encode_reference(
            ref_latents, context, batch["reference_pose"] if self.reference_guider is not None else None)
        masks_on = self.masked
        out = self.denoiser(noisy, t, context, reference, self.denoiser.encode_pose(batch["pose"]), ref_index=ref_index,
                            regions=batch["target_masks"] > 0.5 if masks_on else None,
                            ref_regions=batch["reference_masks"] > 0.5 if masks_on else None,
                            capture_layers=self.img_layers)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            goal = self.noise_scheduler.get_velocity(latents, noise, t)
        else:
            goal = noise
        diffusion = F.mse_loss(out.sample.float(), goal.float())
        result = {"diffusion": diffusion.detach()}
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
