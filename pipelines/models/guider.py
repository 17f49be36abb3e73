"""Pose guider (AnimateAnyone): a small conv net that turns guidance images — the IEG video for the denoiser,
the slot-tinted reference masks for the ReferenceNet (End2End) — into features at latent resolution, added
to the UNet's ``conv_in`` output. The output conv starts at zero, so an untrained guider changes nothing.

Module names (``conv_in``, ``blocks.*``, ``conv_out``) follow AnimateAnyone's ``PoseGuider`` and diffusers'
``ControlNetConditioningEmbedding``, so their weights load by name. ``ConvInResidual`` is the hook that adds
the features; it is installed on one UNet's ``conv_in`` (never on the class).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class PoseGuider(ModelMixin, ConfigMixin):
    """Guidance image (N, 3, H, W) in [-1, 1] → features (N, embedding_channels, H / 2^k, W / 2^k), k =
    len(block_out_channels) − 1 (4× for the tiny model's VAE, 8× for SD's)."""

    @register_to_config
    def __init__(self, embedding_channels: int = 32, conditioning_channels: int = 3,
                 block_out_channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList([])
        for c_in, c_out in zip(block_out_channels[:-1], block_out_channels[1:]):
            self.blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = nn.Conv2d(block_out_channels[-1], embedding_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(self, guidance: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_in(guidance))
        for block in self.blocks:
            x = F.silu(block(x))
        return self.conv_out(x)


class ConvInResidual:
    """Adds a tensor to the output of one ``conv_in`` while ``active(value)`` is open; otherwise a no-op."""

    def __init__(self, conv_in: nn.Module):
        self.value: torch.Tensor | None = None
        self._handle = conv_in.register_forward_hook(self._add)

    def _add(self, module, args, output):
        if self.value is None:
            return output
        if self.value.shape != output.shape:
            raise ValueError(f"guidance features {tuple(self.value.shape)} do not match the UNet's conv_in output "
                             f"{tuple(output.shape)}; the guider's down-sampling must equal the VAE's")
        return output + self.value.to(output.dtype)

    @contextmanager
    def active(self, value: torch.Tensor | None):
        self.value = value
        try:
            yield
        finally:
            self.value = None

    def remove(self) -> None:
        self._handle.remove()


__all__ = ["PoseGuider", "ConvInResidual"]
