"""The two offline probes the IC and style metrics rest on, and how they are stored.

* ``identity`` — a small CNN embedding a character crop to a unit vector; trained by metric learning on
  world crops (same character in other poses, frames, sets and at other scales: close; other characters:
  far), so it works on procedural characters it never saw. Identity correspondence is judged by cosine
  similarity between a track's crop and each reference character's cut-out.
* ``style`` — the same network shape with one logit: P(live-action) of a character crop.

Both live in one safetensors file (``assets/models/probes/probes.safetensors``, fp16, a few MB) whose
metadata holds the training config and the accuracy measured on held-out ground-truth frames of unseen
characters (``report``). Below ``TRUST_THRESHOLD`` a metric built on a probe says it is not trustworthy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..paths import models_dir

TRUST_THRESHOLD = 0.98
FILENAME = "probes.safetensors"


def probes_dir() -> Path:
    return models_dir() / "probes"


@dataclass
class ProbeConfig:
    crop: int = 64                 # input crop side (pixels)
    width: int = 32                # channels of the first stage (doubles twice)
    embed_dim: int = 64            # identity embedding size
    temperature: float = 0.1       # contrastive temperature (also the softmax temperature of IC affinities)
    style_fine: bool = True        # style probe starts with a full-resolution conv (grain, outlines are 1-px cues)

    def to_dict(self) -> dict:
        return asdict(self)


class ProbeNet(nn.Module):
    """Crop (B, 3, s, s) in [-1, 1] → (B, out_dim). Strided convs to s/16, mean- and max-pooled, a 2-layer
    head. ``fine``: one more 3×3 conv at full resolution first (for pixel-level texture)."""

    def __init__(self, out_dim: int, *, width: int = 32, fine: bool = False):
        super().__init__()
        w = width

        def cbr(i, o, k=3, s=1):
            return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.GroupNorm(8, o), nn.ReLU(inplace=True))

        stem = [cbr(3, w, 3, 1), cbr(w, w, 3, 2)] if fine else [cbr(3, w, 5, 2)]
        self.features = nn.Sequential(
            *stem,
            cbr(w, 2 * w, 3, 2), cbr(2 * w, 2 * w),
            cbr(2 * w, 4 * w, 3, 2), cbr(4 * w, 4 * w),
            cbr(4 * w, 4 * w, 3, 2),
        )
        self.head = nn.Sequential(nn.Linear(8 * w, 4 * w), nn.ReLU(inplace=True), nn.Linear(4 * w, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        # mean and max pooling: the mean keeps colour proportions, the max keeps small accessories
        return self.head(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))


def to_input(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(B, s, s, 3) uint8 → (B, 3, s, s) float in [-1, 1]."""
    x = torch.as_tensor(np.ascontiguousarray(crops) if isinstance(crops, np.ndarray) else crops)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"crops: expected (batch, size, size, 3) uint8, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


@dataclass
class Probes:
    """The identity and style probes with their config and held-out report."""
    identity: ProbeNet
    style: ProbeNet
    config: ProbeConfig = field(default_factory=ProbeConfig)
    report: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    path: Path | None = None

    @torch.no_grad()
    def embed(self, crops: np.ndarray, batch: int = 256) -> np.ndarray:
        """(K, s, s, 3) uint8 crops → (K, embed_dim) float32 unit vectors."""
        self.identity.eval()
        out = [F.normalize(self.identity(to_input(crops[i:i + batch])), dim=1) for i in range(0, len(crops), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.embed_dim), np.float32)

    @torch.no_grad()
    def live_action_prob(self, crops: np.ndarray, batch: int = 256) -> np.ndarray:
        """(K, s, s, 3) uint8 crops cut with ``crop_region(..., native=True)`` → (K,) P(live-action)."""
        self.style.eval()
        out = [torch.sigmoid(self.style(to_input(crops[i:i + batch]))[:, 0]) for i in range(0, len(crops), batch)]
        return torch.cat(out).numpy() if out else np.zeros((0,), np.float32)

    def accuracy(self, probe: str) -> float | None:
        """Held-out accuracy recorded at training time (``identity``: IC accuracy on ground-truth frames of
        unseen characters; ``style``: style accuracy on their crops); None when not measured."""
        v = self.report.get(probe, {}).get("accuracy")
        return None if v is None else float(v)

    def trust(self, probe: str) -> dict:
        """``{"accuracy", "trustworthy", "note"}`` for a metric built on ``probe``."""
        acc = self.accuracy(probe)
        if acc is None:
            return {"accuracy": None, "trustworthy": False,
                    "note": f"the {probe} probe has no recorded held-out accuracy; retrain it with "
                            "`python -m pipelines.eval train-probes`"}
        ok = acc >= TRUST_THRESHOLD
        note = "" if ok else (f"NOT TRUSTWORTHY: the {probe} probe scores {acc:.3f} on held-out ground truth "
                              f"(< {TRUST_THRESHOLD}); retrain it with more steps or data")
        return {"accuracy": acc, "trustworthy": ok, "note": note}

    # ---- storage ---------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file
        path = Path(path)
        if path.suffix != ".safetensors":
            path = path / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"identity.{k}": v.detach().half().contiguous() for k, v in self.identity.state_dict().items()}
        tensors.update({f"style.{k}": v.detach().half().contiguous() for k, v in self.style.state_dict().items()})
        meta = {"format": "crossover-probes", "version": "1", "config": json.dumps(self.config.to_dict()),
                "report": json.dumps(self.report), "train_config": json.dumps(self.train_config)}
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def build(cls, config: ProbeConfig | None = None) -> "Probes":
        config = config or ProbeConfig()
        return cls(ProbeNet(config.embed_dim, width=config.width),
                   ProbeNet(1, width=config.width, fine=config.style_fine), config)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Probes":
        """Load from ``path`` (a file or a folder holding ``probes.safetensors``; default: the shipped probes
        in ``assets/models/probes``)."""
        from safetensors import safe_open
        path = Path(path) if path is not None else probes_dir()
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"probe weights not found at {path}; train them with "
                                    "`python -m pipelines.eval train-probes --out assets/models/probes`")
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "crossover-probes":
                raise ValueError(f"probes: {path} is not a probe file (metadata format {meta.get('format')!r})")
            state = {k: f.get_tensor(k).float() for k in f.keys()}
        probes = cls.build(ProbeConfig(**json.loads(meta["config"])))
        for name in ("identity", "style"):
            sub = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
            try:
                getattr(probes, name).load_state_dict(sub)
            except RuntimeError as e:
                raise ValueError(f"probes: the {name} probe in {path} does not fit this code's architecture "
                                 f"(config {meta['config']}); retrain with `python -m pipelines.eval train-probes` "
                                 f"({str(e).splitlines()[0]})") from None
            getattr(probes, name).eval()
        probes.report = json.loads(meta.get("report", "{}"))
        probes.train_config = json.loads(meta.get("train_config", "{}"))
        probes.path = path
        return probes
