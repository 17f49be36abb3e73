"""``MixDenoiser``: one forward of the generator, shared by ``MixPipeline`` and the trainer.

It wires the registered models together without owning weights: the denoising ``UNet2DConditionModel``
(+ the ``MotionAdapter``'s temporal layers, the pose guider's features on ``conv_in``, reference attention
on attn1) and the ReferenceNet (+ the reference guider on its ``conv_in`` for End2End). Building it
installs processors and hooks on those module *instances*; building another one for the same modules
replaces them.

Training forward (what the trainer passes; shapes for B videos of F frames, R references):

    den = MixDenoiser(unet, reference_net, pose_guider, motion_adapter, reference_guider)
    ref = den.encode_reference(ref_latents, context, ref_guidance)      # (R, 4, h_r, w_r), (R, L, D), (R, 3, H_r, W_r)
    pose = den.encode_pose(ieg)                                          # (B, F, 3, H, W) in [-1, 1]
    out = den(noisy_latents, timesteps, context, ref, pose,             # (B, 4, F, h, w), (B,), (B, L, D)
              ref_index=…, regions=…, ref_regions=…, capture_layers=[…])
    out.sample (B, 4, F, h, w); out.captures {layer: AttentionCapture} → pipelines.models.img
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Sequence

import torch
from diffusers import MotionAdapter, UNet2DConditionModel
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn

from ..pose.prior import PRIOR_CHANNELS
from .guider import ConvInResidual, PoseGuider
from .reference_attention import (AttentionCapture, ReferenceFeatures, ReferenceState, install_reference_attention)
from .temporal import TemporalHooks


@dataclass
class DenoiserOutput(BaseOutput):
    sample: torch.Tensor                                       # (B, C, F, h, w) the model output (ε or v)
    captures: dict[str, AttentionCapture] = field(default_factory=dict)


def _remove_previous(module: nn.Module, attr: str, new) -> None:
    old = getattr(module, attr, None)
    if old is not None:
        old.remove()
    setattr(module, attr, new)


class MixDenoiser(nn.Module):
    """See the module docstring. ``reference_layers`` lists the attn1 layers that read the reference — the
    candidate layers for IMG capture."""

    def __init__(self, unet: UNet2DConditionModel, reference_net: UNet2DConditionModel, pose_guider: PoseGuider,
                 motion_adapter: MotionAdapter | None = None, reference_guider: PoseGuider | None = None):
        super().__init__()
        self.unet, self.reference_net, self.pose_guider = unet, reference_net, pose_guider
        self.motion_adapter, self.reference_guider = motion_adapter, reference_guider
        self.state = ReferenceState()
        self.reference_layers = install_reference_attention(reference_net, unet, self.state)
        self._pose_in = ConvInResidual(unet.conv_in)
        self._ref_in = ConvInResidual(reference_net.conv_in)
        self._temporal = TemporalHooks(unet, motion_adapter) if motion_adapter is not None else None
        # one set of hooks per module instance: a second MixDenoiser over the same models replaces the first's
        _remove_previous(unet, "_mix_pose_in", self._pose_in)
        _remove_previous(reference_net, "_mix_ref_in", self._ref_in)
        _remove_previous(unet, "_mix_temporal", self._temporal)

    # ---- once per generation -------------------------------------------------------------------------
    @property
    def reads_prior(self) -> bool:
        """Whether the pose guider reads the appearance prior (``pipelines.pose.prior``) after the IEG video."""
        return self.pose_guider.config.conditioning_channels == 3 + PRIOR_CHANNELS

    def encode_pose(self, guidance: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """IEG video (B, F, 3, H, W) in [-1, 1] (+ the appearance prior (B, F, 4, H, W) in [-1, 1] when
        ``reads_prior``) → pose features (B, F, C0, h, w), C0 = the UNet's first width."""
        if guidance.ndim != 5 or guidance.shape[2] != 3:
            raise ValueError(f"guidance: expected (videos, frames, 3, height, width), got {tuple(guidance.shape)}")
        if self.reads_prior:
            if prior is None:
                raise ValueError("prior: this model's pose guider reads the appearance prior; pass the "
                                 "(videos, frames, 4, height, width) RGBA video from pipelines.pose.prior")
            if prior.shape != guidance.shape[:2] + (PRIOR_CHANNELS,) + guidance.shape[3:]:
                raise ValueError(f"prior: expected {tuple(guidance.shape[:2]) + (PRIOR_CHANNELS,) + tuple(guidance.shape[3:])}"
                                 f", got {tuple(prior.shape)}")
            guidance = torch.cat([guidance, prior.to(guidance.dtype)], dim=2)
        elif prior is not None:
            raise ValueError("prior: this model's pose guider reads only the IEG video (3 channels); drop the prior")
        B = guidance.shape[0]
        feats = self.pose_guider(guidance.flatten(0, 1).to(self.pose_guider.dtype))
        return rearrange(feats, "(b f) c h w -> b f c h w", b=B)

    def encode_reference(self, latents: torch.Tensor, context: torch.Tensor,
                         guidance: torch.Tensor | None = None) -> ReferenceFeatures:
        """Run the ReferenceNet once on clean reference latents (timestep 0).

        Args:
            latents: (R, C, h_r, w_r) scaled VAE latents of the reference sheets / frames.
            context: (R, L, D) the same context the denoiser gets.
            guidance: (R, 3, H_r, W_r) in [-1, 1], the slot-tinted reference masks (End2End); required exactly
                when a reference guider is registered.
        """
        if (guidance is None) != (self.reference_guider is None):
            raise ValueError("reference guidance: pass the tinted reference masks exactly when the model has a "
                             f"reference_guider (End2End); guider {'present' if self.reference_guider else 'absent'}, "
                             f"guidance {'missing' if guidance is None else 'given'}")
        feats = self.reference_guider(guidance.to(self.reference_guider.dtype)) if guidance is not None else None
        st = self.state
        st.end()
        st.mode = "write"
        t = torch.zeros(latents.shape[0], dtype=torch.long, device=latents.device)
        try:
            with self._ref_in.active(feats):
                self.reference_net(latents, t, encoder_hidden_states=context)
            written = dict(st.written)
        finally:
            st.end()
        missing = [n for n in self.reference_layers if n not in written]
        if missing:
            raise RuntimeError(f"the ReferenceNet did not run layers {missing[:3]}")
        return ReferenceFeatures(written, tuple(latents.shape[-2:]))

    # ---- every step ---------------------------------------------------------------------------------
    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int, context: torch.Tensor,
                reference: ReferenceFeatures | None, pose_features: torch.Tensor, *,
                ref_index: torch.Tensor | None = None, regions: torch.Tensor | None = None,
                ref_regions: torch.Tensor | None = None, capture_layers: Sequence[str] = (),
                return_dict: bool = True) -> DenoiserOutput | tuple:
        """Predict the noise (or v) for noisy latents.

        Args:
            sample: (B, C, F, h, w) noisy latents.
            timestep: scalar or (B,).
            context: (B, L, D) cross-attention context (``ContextEncoder``; ``null_context`` for dropped ones).
            reference: ``encode_reference`` output for R references, or None (no reference at all).
            pose_features: (B, F, C0, h, w) from ``encode_pose``.
            ref_index: (B,) long, the reference each video reads, -1 = none (CFG's unconditional branch,
                reference dropout); default: video b reads reference b (or 0 when R = 1).
            regions: (B, F, S, H, W) bool, where identity slot s should be in each frame — End2End-M. At
                inference the dilated IEG skeleton of the track slot s performs; in training the ground-truth
                masks may be passed. Any resolution (down-sampled to each layer).
            ref_regions: (R, S, H_r, W_r) bool, slot s's mask on the reference (needed with ``regions``).
            capture_layers: attn1 layer names (from ``reference_layers``) whose queries/keys to capture.
        """
        B, _, Fr, h, w = sample.shape
        if pose_features.shape[:2] != (B, Fr):
            raise ValueError(f"pose_features: expected {B} videos × {Fr} frames, got {tuple(pose_features.shape[:2])}")
        if context.shape[0] != B:
            raise ValueError(f"context: expected batch {B}, got {context.shape[0]}")
        unknown = sorted(set(capture_layers) - set(self.reference_layers))
        if unknown:
            raise ValueError(f"capture_layers: unknown layer(s) {unknown}; candidates: {self.reference_layers}")
        if (regions is None) != (ref_regions is None):
            raise ValueError("regions and ref_regions go together (End2End-M needs both)")
        if ref_index is None:
            R = reference.batch if reference is not None else 0
            ref_index = (torch.arange(B) if R == B else torch.zeros(B, dtype=torch.long)) if R else \
                torch.full((B,), -1, dtype=torch.long)
        ref_index = torch.as_tensor(ref_index, dtype=torch.long, device=sample.device)
        if ref_index.shape != (B,):
            raise ValueError(f"ref_index: expected ({B},), got {tuple(ref_index.shape)}")
        if reference is not None and int(ref_index.max()) >= reference.batch:
            raise ValueError(f"ref_index: {ref_index.tolist()} points past the {reference.batch} reference(s)")
        if reference is None and bool((ref_index >= 0).any()):
            raise ValueError("ref_index: videos read a reference but reference is None")
        if regions is not None and (regions.shape[:2] != (B, Fr) or ref_regions.shape[1] != regions.shape[2]):
            raise ValueError(f"regions {tuple(regions.shape)} / ref_regions {tuple(ref_regions.shape)}: expected "
                             f"({B}, {Fr}, S, H, W) and (R, S, H_r, W_r) with the same S")

        x = rearrange(sample, "b c f h w -> (b f) c h w")
        t = torch.as_tensor(timestep, device=sample.device)
        t = (t.expand(B) if t.ndim == 0 else t).repeat_interleave(Fr)
        ctx = context.repeat_interleave(Fr, 0)
        pose = rearrange(pose_features, "b f c h w -> (b f) c h w")
        with self._running(Fr):
            self.state.begin_read(reference, ref_index, Fr, (h, w), regions, ref_regions, capture_layers)
            try:
                with self._pose_in.active(pose):
                    out = self.unet(x, t, encoder_hidden_states=ctx).sample
                captures = dict(self.state.captures)
            finally:
                self.state.end()
        out = rearrange(out, "(b f) c h w -> b c f h w", f=Fr)
        return DenoiserOutput(out, captures) if return_dict else (out, captures)

    @contextmanager
    def _running(self, num_frames: int):
        if self._temporal is not None:
            self._temporal.num_frames = num_frames
        try:
            yield
        finally:
            if self._temporal is not None:
                self._temporal.num_frames = None

    @contextmanager
    def cached_reference(self):
        """Inference: reuse the projected reference keys/values of every layer across steps and windows (the
        weights do not change within a generation)."""
        self.state.clear_cache()
        self.state.cache_kv = True
        try:
            yield
        finally:
            self.state.cache_kv = False
            self.state.clear_cache()


__all__ = ["MixDenoiser", "DenoiserOutput"]
