"""A character's CCE tokens on disk and in memory: its *identity* tokens (T, D) — the generator's slot tokens,
read by ``ContextEncoder(slot_tokens=…)`` — and its *behaviour* vector (Db) — read by the motion model —
saved as ``cce.safetensors`` beside the character's library entry. The safetensors metadata holds the
format, the character, the config that learned them and their provenance (which sources, how many images
and steps, fingerprints of the generator and motion model they were learned against).

    emb = load_embedding("Pip")                         # library name or id → CharacterEmbedding | None
    emb.identity (T, D), emb.behaviour (Db,), emb.provenance["sources"]
    emb.usable_with(pipe.context_encoder)               # False when the tokens were learned for another generator
    emb.save(folder / "cce.safetensors")

Identity vectors (``identity_vector``: tokens averaged and L2-normalised) are what retrieval and the
contrastive alignment compare.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "crossover-cce/1"
FILENAME = "cce.safetensors"


def fingerprint(module: torch.nn.Module) -> str:
    """16 hex digits identifying a module's weights (rounded to fp16, so an fp16 export and its fp32 load
    agree): CCE identity tokens are only meaningful for the context encoder they were learned against."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def identity_vector(tokens: torch.Tensor) -> torch.Tensor:
    """(..., T, D) identity tokens → (..., D) unit vectors (mean over tokens)."""
    return F.normalize(tokens.float().mean(-2), dim=-1)


@dataclass
class CharacterEmbedding:
    identity: torch.Tensor                       # (T, D) slot tokens for the generator's context
    behaviour: torch.Tensor                      # (Db,) the motion model's behaviour vector
    name: str
    style: str
    id: str = ""
    show: str = ""
    provenance: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def __post_init__(self):
        self.identity = torch.as_tensor(self.identity).detach().float().cpu()
        self.behaviour = torch.as_tensor(self.behaviour).detach().float().cpu().reshape(-1)
        if self.identity.ndim != 2:
            raise ValueError(f"identity: expected (tokens, dim), got {tuple(self.identity.shape)}")
        if not torch.isfinite(self.identity).all() or not torch.isfinite(self.behaviour).all():
            raise ValueError(f"{self.name}: the embedding has NaN or infinite values")

    @property
    def tokens(self) -> int:
        return int(self.identity.shape[0])

    @property
    def dim(self) -> int:
        return int(self.identity.shape[1])

    def usable_with(self, context_encoder) -> bool:
        """Were the identity tokens learned against this context encoder (same shapes and weights)?"""
        cfg = context_encoder.config
        if (self.tokens, self.dim) != (cfg.tokens_per_slot, cfg.context_dim):
            return False
        want = self.provenance.get("generator")
        return want is None or want == fingerprint(context_encoder)

    def save(self, path: str | Path) -> Path:
        """Write atomically (a temporary file renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "name": self.name, "id": self.id, "style": self.style, "show": self.show,
                "provenance": json.dumps(self.provenance), "config": json.dumps(self.config)}
        tmp = path.with_name(path.name + ".tmp")
        save_file({"identity": self.identity.contiguous(), "behaviour": self.behaviour.contiguous()}, tmp, metadata=meta)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "CharacterEmbedding":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no CCE embedding there; learn one with learn_character(...) or "
                                    "`python -m pipelines.train cce`")
        try:
            with safe_open(str(path), "pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:                       # not a safetensors file at all
            raise ValueError(f"{path}: not a CCE embedding ({type(e).__name__}: {e})") from None
        if meta.get("format") != FORMAT or {"identity", "behaviour"} - set(tensors):
            raise ValueError(f"{path}: not a CCE embedding (format {meta.get('format')!r}, tensors "
                             f"{sorted(tensors)}); expected {FORMAT} with identity and behaviour")
        return cls(tensors["identity"], tensors["behaviour"], meta.get("name", ""), meta.get("style", ""),
                   meta.get("id", ""), meta.get("show", ""), json.loads(meta.get("provenance") or "{}"),
                   json.loads(meta.get("config") or "{}"))


def provenance(sources: dict, *, generator=None, motion_model=None, **extra) -> dict:
    """The provenance record saved with an embedding: what it was learned from and against which models."""
    out = {"sources": sources, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if generator is not None:
        out["generator"] = fingerprint(generator)
    if motion_model is not None:
        out["motion_model"] = fingerprint(motion_model)
    out.update(extra)
    return out


def load_embedding(name: str, library=None) -> CharacterEmbedding | None:
    """The CCE embedding of a library character (by name or id), or None when it has none (or is not in
    the library)."""
    from ..library import Library
    library = library if library is not None else Library()
    c = library.find(name)
    if c is None or not c.cce_path.is_file():
        return None
    return CharacterEmbedding.load(c.cce_path)


__all__ = ["CharacterEmbedding", "load_embedding", "fingerprint", "identity_vector", "provenance", "FORMAT",
           "FILENAME"]
