"""Model sizes and the builder of a fresh (random-initialised) set of generator components.

``TINY`` is the embedded model (≈ 7.8 M parameters, 128×128, 32×32 latents); ``TEST`` a smaller one for
fast tests; ``ANIMATE_ANYONE`` the SD-1.5 shapes AnimateAnyone uses (built on the meta device to check the
classes scale — its weights are never allocated here). Why the tiny widths are what they are is written in
docs/PERFORMANCE.md: (32, 64, 128) costs 4.2 M per UNet and the ReferenceNet doubles it, so the deepest
width is 96 to keep the whole model within ~8 M parameters (16 MiB in fp16).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
from diffusers import AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel

from ..pose.prior import PRIOR_CHANNELS
from .context import ContextEncoder
from .guider import PoseGuider
from .temporal import zero_init_motion_modules

MODES = ("plain", "ieg", "end2end", "end2end-m")
"""Guidance modes (EverybodyDance Table 2): ``plain`` skeletons in OpenPose limb colours; ``ieg`` skeletons
in identity-slot colours; ``end2end`` + slot-tinted reference masks through the reference guider;
``end2end-m`` + reference attention restricted to each slot's region. IMG ("full") is a training loss on
top of any of them and changes nothing at inference."""


@dataclass(frozen=True)
class MixModelConfig:
    # denoising UNet and ReferenceNet (same layout: reference attention pairs their attn1 layers by name)
    block_out_channels: tuple[int, ...] = (32, 64, 96)
    down_block_types: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    attention_heads: tuple[int, ...] = (1, 2, 4)     # diffusers' `attention_head_dim` is the number of heads
    cross_attention_dim: int = 128
    norm_num_groups: int = 16
    # temporal layers (a diffusers MotionAdapter); none at the 32×32 level of the down path (speed)
    motion_layers_per_block: tuple[int, ...] = (0, 1, 1)
    motion_heads: tuple[int, ...] = (1, 2, 4)
    motion_max_seq_length: int = 32
    use_motion_mid_block: bool = False
    # VAE: 4× down-sampling, 4 latent channels
    vae_block_out_channels: tuple[int, ...] = (32, 64, 64)
    vae_layers_per_block: int = 1
    latent_channels: int = 4
    scaling_factor: float = 1.0                      # set from data: calibrate_vae_scale
    sample_size: int = 128
    # guiders and context
    guider_channels: tuple[int, ...] = (16, 32, 64)
    appearance_prior: bool = False                   # the pose guider also reads the RGBA appearance prior
    context_tokens_per_slot: int = 4
    context_image_size: int = 64
    context_image_channels: tuple[int, ...] = (16, 32, 64, 128)
    # noise schedule (SD's)
    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    prediction_type: str = "epsilon"

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae_block_out_channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


TINY = MixModelConfig(appearance_prior=True)
TEST = replace(TINY, block_out_channels=(16, 32, 32), attention_heads=(1, 1, 2), cross_attention_dim=32,
               norm_num_groups=8, motion_heads=(1, 1, 2), vae_block_out_channels=(16, 32, 32),
               guider_channels=(8, 16, 16), context_tokens_per_slot=1, context_image_size=32,
               context_image_channels=(8, 16), sample_size=64, appearance_prior=False)
ANIMATE_ANYONE = replace(
    TINY, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    layers_per_block=2, attention_heads=(8, 8, 8, 8), cross_attention_dim=768, norm_num_groups=32,
    motion_layers_per_block=(2, 2, 2, 2), motion_heads=(8, 8, 8, 8), motion_max_seq_length=24,
    use_motion_mid_block=True, vae_block_out_channels=(128, 256, 512, 512), vae_layers_per_block=2,
    scaling_factor=0.18215, sample_size=512, guider_channels=(16, 32, 96, 256), appearance_prior=False,
    context_tokens_per_slot=4,
    context_image_size=224, context_image_channels=(64, 128, 256, 512, 768))


def unet_kwargs(cfg: MixModelConfig) -> dict:
    return dict(sample_size=cfg.sample_size // cfg.vae_scale, in_channels=cfg.latent_channels,
                out_channels=cfg.latent_channels, down_block_types=cfg.down_block_types,
                up_block_types=cfg.up_block_types, block_out_channels=cfg.block_out_channels,
                layers_per_block=cfg.layers_per_block, attention_head_dim=cfg.attention_heads,
                cross_attention_dim=cfg.cross_attention_dim, norm_num_groups=cfg.norm_num_groups)


def build_components(cfg: MixModelConfig = TINY, *, seed: int = 0, mode: str = "end2end",
                     device: str | torch.device = "cpu") -> dict:
    """Fresh generator components for ``MixPipeline(**components)``.

    ``mode`` (one of ``MODES``) decides whether a reference guider exists (End2End modes); ``device="meta"``
    builds shapes only (parameter counts without memory). The ReferenceNet starts as a copy of the
    denoiser's spatial weights (as AnimateAnyone initialises both from SD); guiders and motion modules start
    at zero output, so an untrained model is an image model with reference attention.
    """
    if mode not in MODES:
        raise ValueError(f"mode: unknown mode {mode!r}; use one of {', '.join(MODES)}")
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**unet_kwargs(cfg))
        reference_net = UNet2DConditionModel(**unet_kwargs(cfg))
        if str(device) != "meta":
            reference_net.load_state_dict(unet.state_dict())
        motion_adapter = zero_init_motion_modules(MotionAdapter(
            block_out_channels=cfg.block_out_channels, motion_layers_per_block=cfg.motion_layers_per_block,
            motion_num_attention_heads=cfg.motion_heads, motion_norm_num_groups=cfg.norm_num_groups,
            motion_max_seq_length=cfg.motion_max_seq_length, use_motion_mid_block=cfg.use_motion_mid_block))
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(cfg.vae_block_out_channels),
            up_block_types=("UpDecoderBlock2D",) * len(cfg.vae_block_out_channels),
            block_out_channels=cfg.vae_block_out_channels, layers_per_block=cfg.vae_layers_per_block,
            latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_num_groups,
            sample_size=cfg.sample_size, scaling_factor=cfg.scaling_factor)
        pose_guider = PoseGuider(embedding_channels=cfg.block_out_channels[0], block_out_channels=cfg.guider_channels,
                                 conditioning_channels=3 + (PRIOR_CHANNELS if cfg.appearance_prior else 0))
        reference_guider = PoseGuider(embedding_channels=cfg.block_out_channels[0],
                                      block_out_channels=cfg.guider_channels) if mode.startswith("end2end") else None
        context_encoder = ContextEncoder(context_dim=cfg.cross_attention_dim,
                                         tokens_per_slot=cfg.context_tokens_per_slot,
                                         image_size=cfg.context_image_size, image_channels=cfg.context_image_channels)
    scheduler = DDIMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start,
                              beta_end=cfg.beta_end, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, timestep_spacing="trailing",
                              prediction_type=cfg.prediction_type)
    if pose_guider.downscale != cfg.vae_scale:
        raise ValueError(f"guider_channels: the guider down-samples {pose_guider.downscale}×, the VAE {cfg.vae_scale}×")
    models = dict(vae=vae, unet=unet, reference_net=reference_net, motion_adapter=motion_adapter,
                  pose_guider=pose_guider, reference_guider=reference_guider, context_encoder=context_encoder)
    for m in models.values():
        if m is not None:
            m.eval()            # as from_pretrained leaves them: a fresh and a reloaded model compute alike
    return dict(models, scheduler=scheduler)


def count_parameters(components: dict) -> dict[str, int]:
    """Parameters per module (modules that are None or have no parameters are left out) and the total."""
    out = {name: sum(p.numel() for p in m.parameters()) for name, m in components.items()
           if isinstance(m, torch.nn.Module)}
    out["total"] = sum(out.values())
    return out


@torch.no_grad()
def calibrate_vae_scale(vae: AutoencoderKL, images: torch.Tensor) -> float:
    """Set ``vae.config.scaling_factor`` to 1 / std of the latents of ``images`` (N, 3, H, W) in [-1, 1], as
    SD's 0.18215 was chosen, so the diffusion model sees unit-variance latents; returns it."""
    z = vae.encode(images.to(vae.dtype)).latent_dist.mode()
    scale = float(1.0 / z.float().std().clamp(min=1e-6))
    vae.register_to_config(scaling_factor=scale)
    return scale


__all__ = ["MixModelConfig", "TINY", "TEST", "ANIMATE_ANYONE", "MODES", "build_components", "count_parameters",
           "calibrate_vae_scale", "unet_kwargs"]
