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



def world_samples(spec, n: int, *, seed: int = 99, size: int = 128, reference=None) -> list[dict]:
    """``n`` held-out generator samples (``WorldSampler``'s layout) of one character: a frame of a world clip of
    it (its mask, its keypoints as IEG) as the target, and ``reference`` (image, mask) — default a world
    portrait — on a composed sheet."""
    from ..mix.guidance import appearance_prior_video
    from ..mix.sheet import compose_sheet
    from ..pose.ieg import render_ieg, tint_masks
    from ..train.data import MAX_SLOTS, _pad
    from ..world import World
    from ..world.shows import background
    world = World(seed, size=size, frames=8)
    ref = reference if reference is not None else world.portrait(spec, 2 * size)
    out = []
    for i in range(n):
        clip = world.clip(i, characters=[spec])
        f = int(np.argmax(clip.masks[:, 0].reshape(len(clip.frames), -1).sum(1)))
        sheet = compose_sheet([ref], np.ascontiguousarray(background(clip.show, clip.variant, size, size)), (size, size))
        out.append({"reference": sheet.image, "reference_masks": _pad(sheet.masks, MAX_SLOTS, axis=0),
                    "reference_pose": tint_masks(sheet.masks), "target": clip.frames[f:f + 1],
                    "target_masks": _pad(clip.masks[f:f + 1], MAX_SLOTS, axis=1),
                    "pose": render_ieg(clip.keypoints[f:f + 1], size, size, slots=[0]),
                    "prior": appearance_prior_video(sheet.image, sheet.masks, clip.keypoints[f:f + 1], size, size,
                                                    [0]),
                    "assignment": np.array([0] + [-1] * (MAX_SLOTS - 1)), "slots": np.arange(MAX_SLOTS) < 1,
                    "swap": False, "caption": clip.caption, "names": [spec.name]})
    return out


@torch.no_grad()
def heldout_diffusion_loss(pipe, tokens: torch.Tensor | None, samples: list[dict], *, repeats: int = 4,
                           seed: int = 0) -> float:
    """Mean diffusion loss of the frozen generator on ``samples`` with slot 0 reading ``tokens`` (T, D)
    (None: its image-derived tokens), over ``repeats`` fixed draws of noise and timestep — lower is better."""
    from ..train.data import collate
    from ..train.objectives import GeneratorObjective
    objective = GeneratorObjective(pipe, cfg_dropout=0.0)
    batch = collate(samples)
    B, S = batch["slots"].shape
    losses = []
    for r in range(repeats):
        batch["seed"] = seed * 7919 + r
        if tokens is None:
            out = objective(batch)
        else:
            mask = torch.zeros(B, S, dtype=torch.bool)
            mask[:, 0] = True
            out = objective(batch, slot_tokens=tokens[None, None].expand(B, S, -1, -1), token_mask=mask)
        losses.append(float(out["diffusion"]))
    return float(np.mean(losses))


__all__ = ["heldout_views", "view_vectors", "retrieval", "world_samples", "heldout_diffusion_loss"]
