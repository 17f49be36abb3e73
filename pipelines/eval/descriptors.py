"""Descriptors: what turns a character crop into a vector for identity matching.

* ``probe`` (default, offline) — the identity probe trained here on world crops (``probes.py``);
* ``dinov2`` / ``clip`` — DINOv2 or CLIP image features through transformers, used **only** when the
  weights are already on this machine (Hugging Face cache or a local folder). Nothing is downloaded; a
  missing model raises ``Unavailable`` naming the repository, never a silent substitute.

Every descriptor returns unit vectors, so cosine similarity is a dot product, and says how far it can be
trusted (``trust()``: held-out IC accuracy on ground-truth frames when it was measured).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .features import Unavailable
from .probes import Probes

HF_MODELS = {"dinov2": "facebook/dinov2-small", "clip": "openai/clip-vit-base-patch32"}


class ProbeDescriptor:
    name = "probe"

    def __init__(self, probes: Probes | None = None):
        self.probes = probes if probes is not None else Probes.load()
        self.crop = self.probes.config.crop
        self.temperature = self.probes.config.temperature

    def describe(self, crops: np.ndarray) -> np.ndarray:
        return self.probes.embed(crops)

    def trust(self) -> dict:
        return self.probes.trust("identity")


class FeatureDescriptor:
    """DINOv2 (CLS token) or CLIP (projected image embedding) features of a crop, from local weights."""

    crop = 224
    temperature = 0.05

    def __init__(self, kind: str, source: str | Path | None = None, device: str | torch.device = "cpu"):
        from transformers import AutoImageProcessor
        if kind not in HF_MODELS:
            raise ValueError(f"descriptor: unknown feature model {kind!r}; use one of {', '.join(HF_MODELS)}")
        self.kind, self.name = kind, kind
        src = str(source or HF_MODELS[kind])
        try:
            if kind == "dinov2":
                from transformers import Dinov2Model
                self.model = Dinov2Model.from_pretrained(src, local_files_only=True)
            else:
                from transformers import CLIPVisionModelWithProjection
                self.model = CLIPVisionModelWithProjection.from_pretrained(src, local_files_only=True)
            self.processor = AutoImageProcessor.from_pretrained(src, local_files_only=True)
        except (OSError, ValueError) as e:
            raise Unavailable(f"{kind} features unavailable: weights for {src!r} are not on this machine "
                              f"(looked in the Hugging Face cache, offline). Download them once with "
                              f"`huggingface-cli download {HF_MODELS[kind]}` or pass a local folder; "
                              f"the offline identity probe needs nothing ({type(e).__name__}: {str(e)[:160]})") from None
        self.source = src
        self.device = torch.device(device)
        self.model.to(self.device).eval()

    @torch.no_grad()
    def describe(self, crops: np.ndarray, batch: int = 32) -> np.ndarray:
        out = []
        for i in range(0, len(crops), batch):
            inputs = self.processor(images=list(crops[i:i + batch]), return_tensors="pt").to(self.device)
            res = self.model(**inputs)
            v = res.pooler_output if self.kind == "dinov2" else res.image_embeds
            out.append(torch.nn.functional.normalize(v.float(), dim=1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 1), np.float32)

    def trust(self) -> dict:
        return {"accuracy": None, "trustworthy": False,
                "note": f"{self.kind} features: accuracy on ground truth not measured here; measure it with "
                        f"`python -m pipelines.eval probe-accuracy --descriptor {self.kind}`"}


def get_descriptor(name: str = "probe", probes: Probes | None = None, device: str | torch.device = "cpu"):
    """``probe`` (the shipped identity probe or ``probes``), ``dinov2``, ``clip``, ``dinov2:PATH`` or
    ``clip:PATH`` (a local transformers folder)."""
    if name == "probe":
        return ProbeDescriptor(probes)
    kind, _, path = name.partition(":")
    if kind in HF_MODELS:
        return FeatureDescriptor(kind, path or None, device)
    raise ValueError(f"descriptor: unknown {name!r}; use probe, dinov2, clip, dinov2:PATH or clip:PATH")
