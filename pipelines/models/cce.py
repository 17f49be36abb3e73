"""The CCE character encoder: what a new character's images say about it beyond its identity tokens.

A character's *identity* tokens come from the generator's own image encoder (``ContextEncoder.
encode_slot_images`` on masked cut-outs, averaged over its images) — so they live in the space the
generator reads. Its *behaviour* (the motion model's vector) is seen in motion, not in a still image, but
an image does say a lot: body proportions, size, cartoon or live-action build. ``CharacterEncoder`` maps
identity tokens to a behaviour estimate; the cce stage (``python -m pipelines.train cce``) trains it on
world characters against the motion model's encoder of their clips. It ships in ``assets/models/cce``.

    enc = load_character_encoder()                 # assets/models/cce, or None when not trained yet
    behaviour = enc(identity_tokens)               # (N, T, D) → (N, Db)
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..paths import models_dir


class CharacterEncoder(ModelMixin, ConfigMixin):
    """Identity tokens (N, T, D) → behaviour (N, Db): an MLP over the flattened tokens."""

    @register_to_config
    def __init__(self, context_dim: int = 128, tokens_per_slot: int = 4, behaviour_dim: int = 32, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(tokens_per_slot * context_dim),
                                 nn.Linear(tokens_per_slot * context_dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, behaviour_dim))

    def fits(self, identity: torch.Tensor) -> bool:
        """Whether ``identity`` tokens have the shape of the generator this encoder was trained for."""
        return tuple(identity.shape[-2:]) == (self.config.tokens_per_slot, self.config.context_dim)

    def forward(self, identity: torch.Tensor) -> torch.Tensor:
        T, D = self.config.tokens_per_slot, self.config.context_dim
        if not self.fits(identity):
            raise ValueError(f"identity: expected (…, {T}, {D}) tokens, got {tuple(identity.shape)}; the character "
                             "encoder was trained for another generator")
        return self.net(identity.flatten(-2).to(self.dtype))


def _load(cls, path, default: str):
    folder = Path(path) if path is not None else models_dir() / default
    if not (folder / "config.json").is_file():
        if path is not None:
            raise FileNotFoundError(f"{folder}: no saved {cls.__name__} (config.json) there")
        return None
    return cls.from_pretrained(folder).float().eval()


def load_character_encoder(path: str | Path | None = None) -> CharacterEncoder | None:
    """``path``, else ``assets/models/cce``; None when neither holds one."""
    return _load(CharacterEncoder, path, "cce")


def load_motion_model(path: str | Path | None = None):
    """The text-mode motion model: ``path``, else ``assets/models/motion``; None when neither holds one."""
    from .motion import MotionModel
    return _load(MotionModel, path, "motion")


__all__ = ["CharacterEncoder", "load_character_encoder", "load_motion_model"]
