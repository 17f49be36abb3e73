"""The CCE retrieval check: do a character's learned identity tokens pick it out from fresh pictures of it?

Held-out world renders of each library character (other clips, poses, sets and sizes than anything the
tokens were learned from) go through the generator's image encoder; each view is assigned to the
character whose identity tokens are nearest (cosine of ``identity_vector``). Accuracy over the ten named
characters is the number the cce stage logs, the tests check (image-derived initialisation must beat
random initialisation) and docs/CCE.md reports.
"""

from __future__ import annotations

import numpy as np
import torch

from .embedding import identity_vector


def heldout_views(ids: list[str], *, seed: int = 4242, clips: int = 4, frames: tuple[int, ...] = (0, 5),
                  size: int = 128, min_pixels: int = 40) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """(image, mask) views of each named character ``ids[c]`` from world clips of seed ``seed`` (solo clips
    in random motions on their own show), and their labels c."""
    from ..world import World
    world = World(seed, size=size, frames=max(frames) + 1)
    views, labels = [], []
    for c, cid in enumerate(ids):
        for k in range(clips):
            clip = world.clip(c * 100 + k, characters=[cid])
            for f in frames:
                m = clip.masks[f, 0]
                if m.sum() >= min_pixels:
                    views.append((clip.frames[f], m))
                    labels.append(c)
    return views, labels


@torch.no_grad()
def view_vectors(context_encoder, views) -> torch.Tensor:
    """(M, D) identity vectors of views through the generator's image encoder."""
    from .learn import cutout_tensor
    cut = cutout_tensor(views, context_encoder.config.image_size).to(context_encoder.device, context_encoder.dtype)
    return identity_vector(context_encoder.encode_slot_images(cut[None])[0])


def retrieval(queries: torch.Tensor, tokens: torch.Tensor, labels) -> dict:
    """Nearest token set for each query vector (M, D) among ``tokens`` (C, T, D) → accuracy, per-class
    accuracy and the confusion matrix (C, C)."""
    labels = torch.as_tensor(labels)
    pred = (queries.float() @ identity_vector(tokens).T).argmax(1)
    C = tokens.shape[0]
    conf = torch.zeros(C, C, dtype=torch.long)
    for t, p in zip(labels.tolist(), pred.tolist()):
        conf[t, p] += 1
    per = (conf.diag().float() / conf.sum(1).clamp(min=1)).tolist()
    return {"accuracy": float((pred == labels).float().mean()), "per_character": per, "confusion": conf}


__all__ = ["heldout_views", "view_vectors", "retrieval"]
