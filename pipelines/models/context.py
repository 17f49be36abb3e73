"""The cross-attention context: per-slot identity tokens that carry their slot's IEG colour (the CCE
interface), plus optional word tokens.

    context = [ slot 0: T tokens | slot 1: T tokens | … | word tokens ]         (B, S·T + W, D)
    slot s tokens = identity tokens (T, D) + colour_embed(palette[slot s]) + token_position (T, D)

Where the identity tokens come from is pluggable, and nothing downstream (UNet, ReferenceNet) changes:

* ``slot_tokens`` (B, S, T, D) given → used as they are. This is the CCE hook: learned per-character
  tokens (``assets/characters/<id>/cce.safetensors``) are passed here.
* else ``slot_images`` (B, S, 3, h, w) in [-1, 1] — each slot's cut-out on black, made from the reference
  and its slot masks by ``slot_images`` — go through a small image encoder (``encode_slot_images``);
* else zeros, so only the colour says which slot is which.

The colour embedding reads ``pipelines.pose.palette.palette_array()``, the same colours IEG draws, so the
text side and the pose side agree about who is who. Padding slots (``slot_mask`` False) become zero
tokens, which is also the unconditional context (``null_context``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..pose.palette import palette_array


def slot_images(images: torch.Tensor, masks: torch.Tensor, size: int) -> torch.Tensor:
    """Each slot's character cut out of its reference: cropped to the mask's bounding box, background black,
    centred on a size×size square with its aspect kept. Works the same for composed sheets and natural
    frames (training and inference share it).

    Args:
        images: (B, 3, H, W) in [-1, 1].
        masks: (B, S, H, W) bool or float (> 0.5 is inside); empty masks (padding slots) give black squares.
    Returns:
        (B, S, 3, size, size) in [-1, 1].
    """
    B, S = masks.shape[:2]
    if images.shape[0] != B or images.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    out = images.new_full((B, S, 3, size, size), -1.0)
    for b in range(B):
        for s in range(S):
            m = masks[b, s] > 0.5
            if not m.any():
                continue
            ys, xs = m.any(1).nonzero().squeeze(1), m.any(0).nonzero().squeeze(1)
            y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
            crop = torch.where(m[y0:y1, x0:x1], images[b, :, y0:y1, x0:x1], images.new_tensor(-1.0))
            h, w = y1 - y0, x1 - x0
            nh, nw = max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w)))
            crop = F.interpolate(crop[None], size=(nh, nw), mode="bilinear", align_corners=False,
                                 antialias=nh < h)[0]
            oy, ox = (size - nh) // 2, (size - nw) // 2
            out[b, s, :, oy:oy + nh, ox:ox + nw] = crop
    return out


class SlotImageEncoder(nn.Module):
    """A cut-out (N, 3, s, s) → (N, T, D) tokens: strided convs, pooled to a √T × √T grid."""

    def __init__(self, dim: int, tokens: int, channels: tuple[int, ...]):
        super().__init__()
        side = int(round(tokens ** 0.5))
        if side * side != tokens:
            raise ValueError(f"tokens_per_slot: {tokens} must be a square number (1, 4, 9, …)")
        layers, c_in = [], 3
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(min(8, c), c), nn.SiLU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.side = side
        self.proj = nn.Linear(c_in, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.convs(images), self.side)          # (N, C, √T, √T)
        return self.norm(self.proj(x.flatten(2).transpose(1, 2)))


class ContextEncoder(ModelMixin, ConfigMixin):
    """Builds the cross-attention context from identity slots (see the module docstring)."""

    @register_to_config
    def __init__(self, context_dim: int = 128, tokens_per_slot: int = 4, image_size: int = 64,
                 image_channels: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.image_encoder = SlotImageEncoder(context_dim, tokens_per_slot, tuple(image_channels))
        self.colour_embed = nn.Linear(3, context_dim)
        self.token_position = nn.Parameter(torch.zeros(tokens_per_slot, context_dim))
        nn.init.normal_(self.token_position, std=0.02)
        # the palette is the project's, not a learned weight: keep it out of the state dict
        self.register_buffer("palette", torch.from_numpy(palette_array()), persistent=False)

    @property
    def tokens_per_slot(self) -> int:
        return self.config.tokens_per_slot

    def encode_slot_images(self, slot_images: torch.Tensor) -> torch.Tensor:
        """(B, S, 3, h, w) cut-outs in [-1, 1] → (B, S, T, D) identity tokens."""
        B, S = slot_images.shape[:2]
        size = self.config.image_size
        x = slot_images.flatten(0, 1).to(self.dtype)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.image_encoder(x).view(B, S, self.tokens_per_slot, -1)

    def slot_colour_tokens(self, slots: torch.Tensor) -> torch.Tensor:
        """(B, S) palette slot ids → (B, S, T, D): colour embedding + token position."""
        if slots.min() < 0 or slots.max() >= self.palette.shape[0]:
            raise ValueError(f"slots: palette slots must be in 0..{self.palette.shape[0] - 1}, got {slots.tolist()}")
        colour = self.colour_embed(self.palette[slots].to(self.dtype))            # (B, S, D)
        return colour[:, :, None, :] + self.token_position

    def forward(self, slots: torch.Tensor, slot_images: torch.Tensor | None = None,
                slot_tokens: torch.Tensor | None = None, slot_mask: torch.Tensor | None = None,
                word_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Args:
            slots: (B, S) long, the palette slot of every entry (normally 0..S-1).
            slot_images: (B, S, 3, h, w) in [-1, 1], optional.
            slot_tokens: (B, S, T, D), optional; overrides ``slot_images`` (learned CCE tokens).
            slot_mask: (B, S) bool, False for padding entries (batches with different numbers of characters).
            word_tokens: (B, W, D), optional, appended after the slots.
        Returns:
            (B, S·T + W, D).
        """
        B, S = slots.shape
        T, D = self.tokens_per_slot, self.config.context_dim
        if slot_tokens is not None:
            if slot_tokens.shape != (B, S, T, D):
                raise ValueError(f"slot_tokens: expected {(B, S, T, D)} (batch, slots, tokens per slot, dim), "
                                 f"got {tuple(slot_tokens.shape)}")
            ident = slot_tokens.to(self.dtype)
        elif slot_images is not None:
            if slot_images.shape[:3] != (B, S, 3):
                raise ValueError(f"slot_images: expected ({B}, {S}, 3, h, w), got {tuple(slot_images.shape)}")
            ident = self.encode_slot_images(slot_images)
        else:
            ident = torch.zeros(B, S, T, D, dtype=self.dtype, device=slots.device)
        tokens = ident + self.slot_colour_tokens(slots)
        if slot_mask is not None:
            tokens = tokens * slot_mask[:, :, None, None].to(tokens.dtype)
        context = tokens.reshape(B, S * T, D)
        if word_tokens is not None:
            if word_tokens.ndim != 3 or word_tokens.shape[0] != B or word_tokens.shape[2] != D:
                raise ValueError(f"word_tokens: expected ({B}, words, {D}), got {tuple(word_tokens.shape)}")
            context = torch.cat([context, word_tokens.to(context.dtype)], 1)
        return context

    @staticmethod
    def null_context(context: torch.Tensor) -> torch.Tensor:
        """The unconditional context (classifier-free guidance, context dropout): zero tokens of the same shape,
        which attend to nothing (zero keys and values)."""
        return torch.zeros_like(context)


__all__ = ["ContextEncoder", "SlotImageEncoder", "slot_images"]
