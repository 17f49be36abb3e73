"""Mask-Query Attention (MQA) and the Identity Matching Graph (IMG) loss of EverybodyDance, as pure functions
exactly as DESIGN.md §3 writes them. The generator only *captures* queries and keys (see
``pipelines.models.reference_attention.AttentionCapture``); this module turns them into identity
consistency and a loss, so the trainer (and tests) can use them without a model.

Notation (one *sample* = one generated frame with the reference it reads):

    query      (B, heads, N, d)   generated-frame queries of one layer, that layer's own ``to_q``
    key        (B, heads, M, d)   reference keys of the same layer, that layer's own ``to_k``
    gen_masks  (B, J, N) bool     generated characters j on the layer's N = h·w token grid
    ref_masks  (B, I, M) bool     reference characters i on the reference's M = h_r·w_r grid
    target     (B, J) long        the reference character each generated character must match (-1: none)

    A      = softmax(Q · K_R*ᵀ / √d) averaged over heads      keys restricted to R* = ∪_i ref_masks_i
    s_ij   = mean_{p ∈ j} Σ_{q ∈ i} A[p, q]
    w_ij   = s_ij / Σ_i' s_i'j
    IC     = Σ_{(i, j) ground truth} w_ij / Σ_{(i, j)} w_ij
    L_IMG  = 1 − mean_ℓ IC_ℓ                                     (the trainer adds λ·L_IMG, λ = 0.2)
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F


def downsample_masks(masks: torch.Tensor, size: tuple[int, int], threshold: float = 0.5,
                     keep_nonempty: bool = True) -> torch.Tensor:
    """Down-sample instance masks to a layer's token grid.

    Args:
        masks: (..., H, W) bool or float in [0, 1].
        size: (h, w) of the layer's grid.
        threshold: a cell belongs to a mask when at least this share of its area does; 0 means "any pixel"
            (what dilated guidance regions want).
        keep_nonempty: a mask that is non-empty at full resolution but would vanish keeps its best-covered
            cell, so small characters still take part at coarse layers (8×8 cells are 16 px wide at 128 px).
    Returns:
        (..., h, w) bool.
    """
    lead = masks.shape[:-2]
    H, W = masks.shape[-2:]
    x = masks.reshape(-1, 1, H, W).float()
    cover = F.interpolate(x, size=tuple(size), mode="area") if (H, W) != tuple(size) else x
    out = cover > 0 if threshold <= 0 else cover >= threshold - 1e-6
    if keep_nonempty:
        lost = (~out.flatten(1).any(1)) & (x.flatten(1).amax(1) > 0)
        if lost.any():
            best = cover.flatten(1).argmax(1)
            flat = out.flatten(1).clone()
            idx = lost.nonzero().squeeze(1)
            flat[idx, best[idx]] = True
            out = flat.view_as(out)
    return out.reshape(*lead, *size)


def mask_query_attention(query: torch.Tensor, key: torch.Tensor, ref_union: torch.Tensor) -> torch.Tensor:
    """Head-averaged attention of generated queries over the aggregated reference node R*.

    Args:
        query: (B, heads, N, d).
        key: (B, heads, M, d).
        ref_union: (B, M) bool, the union of reference character masks (R*).
    Returns:
        A: (B, N, M), each row a distribution over the R* columns (zero outside R*); all zeros for a sample
        whose R* is empty.
    """
    if query.shape[:2] != key.shape[:2] or query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query {tuple(query.shape)} and key {tuple(key.shape)} must share batch, heads and head dim")
    if ref_union.shape != (key.shape[0], key.shape[2]):
        raise ValueError(f"ref_union: expected {(key.shape[0], key.shape[2])}, got {tuple(ref_union.shape)}")
    empty = ~ref_union.any(1)
    # an empty R* would make every logit -inf (NaN forward and backward): open it, then zero the sample
    cols = ref_union | empty[:, None]
    logits = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
    logits = logits.masked_fill(~cols[:, None, None, :], float("-inf"))
    attn = logits.softmax(-1).mean(1)
    return attn * (~empty).to(attn.dtype)[:, None, None]


def identity_affinity(attn: torch.Tensor, gen_masks: torch.Tensor, ref_masks: torch.Tensor) -> torch.Tensor:
    """s_ij = mean over generated patches p of character j of the attention mass on reference character i.

    Args:
        attn: (B, N, M) from ``mask_query_attention``.
        gen_masks: (B, J, N) bool.
        ref_masks: (B, I, M) bool.
    Returns:
        s: (B, I, J); column j is zero when generated character j has no patch.
    """
    mass = attn @ ref_masks.to(attn.dtype).transpose(1, 2)                  # (B, N, I): Σ_{q∈i} A[p, q]
    g = gen_masks.to(attn.dtype)
    s = (g @ mass) / g.sum(-1, keepdim=True).clamp(min=1)                   # (B, J, I)
    return s.transpose(1, 2)


def edge_weights(s: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """w_ij = s_ij / Σ_i' s_i'j — the bipartite graph's edge weights, normalised over reference characters.
    (B, I, J) → (B, I, J); a column with no mass stays zero."""
    return s / s.sum(1, keepdim=True).clamp(min=eps)


def identity_consistency(w: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IC = share of edge weight on ground-truth edges.

    Args:
        w: (B, I, J) edge weights.
        target: (B, J) long, the reference character generated character j must match; -1 leaves j out.
    Returns:
        (ic (B,), valid (B,) bool): a sample is valid when at least one of its characters has a target and
        some attention mass; invalid samples have ic = 0.
    """
    B, I, J = w.shape
    if target.shape != (B, J):
        raise ValueError(f"target: expected {(B, J)}, got {tuple(target.shape)}")
    if (target >= I).any():
        raise ValueError(f"target: indices must be < {I} reference characters (or -1), got max {int(target.max())}")
    has = target >= 0
    on_gt = w.gather(1, target.clamp(min=0)[:, None, :]).squeeze(1) * has     # w_{target(j), j}
    total = (w.sum(1) * has).sum(1)
    valid = total > 0
    return torch.where(valid, on_gt.sum(1) / total.clamp(min=1e-12), torch.zeros_like(total)), valid


def layer_identity_consistency(query: torch.Tensor, key: torch.Tensor, gen_masks: torch.Tensor,
                               ref_masks: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MQA → s → w → IC for one layer. Shapes as in the module docstring; returns (ic (B,), valid (B,))."""
    attn = mask_query_attention(query, key, ref_masks.any(1))
    return identity_consistency(edge_weights(identity_affinity(attn, gen_masks, ref_masks)), target)


def img_loss(layer_ics: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """L_IMG = 1 − mean_ℓ IC_ℓ, IC_ℓ the mean over a layer's valid samples (layers without any valid sample are
    skipped; with none at all the loss is 0 and carries no gradient)."""
    per_layer = [ic[valid].mean() for ic, valid in layer_ics if valid.any()]
    if not per_layer:
        return torch.zeros(())
    return 1 - torch.stack(per_layer).mean()


def img_loss_from_captures(captures: Mapping[str, object] | Sequence[object], gen_masks: torch.Tensor,
                           ref_masks: torch.Tensor, target: torch.Tensor | None = None,
                           gen_threshold: float = 0.5, ref_threshold: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """The IMG loss straight from the generator's captures (multi-scale matching = several layers).

    Args:
        captures: ``AttentionCapture`` objects (``DenoiserOutput.captures``); each has ``query`` (B·F, heads,
            N, d), ``key`` (R, heads, M, d), ``size`` (h, w), ``ref_size`` (h_r, w_r), ``num_frames`` F and
            ``ref_index`` (B,) (-1 = that video read no reference; its frames are left out).
        gen_masks: (B, F, J, H, W) bool, generated character j in every frame (any resolution).
        ref_masks: (R, I, H_r, W_r) bool, reference characters.
        target: (B, J) long, reference character of each generated character; default j ↦ j (masks indexed by
            identity slot on both sides).
    Returns:
        (loss, {layer: IC}) — the per-layer IC values are detached floats for logging.
    """
    items = captures.items() if isinstance(captures, Mapping) else enumerate(captures)
    B, Fr, J = gen_masks.shape[:3]
    if target is None:
        target = torch.arange(J, device=gen_masks.device).expand(B, J)
    ics, report = [], {}
    for name, cap in items:
        if cap.num_frames != Fr or cap.ref_index.shape[0] != B:
            raise ValueError(f"gen_masks: {B} videos × {Fr} frames do not match capture {name!r} "
                             f"({cap.ref_index.shape[0]} videos × {cap.num_frames} frames)")
        keep = (cap.ref_index >= 0).repeat_interleave(Fr)                       # (B·F,)
        ridx = cap.ref_index.clamp(min=0).repeat_interleave(Fr)[keep]
        g = downsample_masks(gen_masks.flatten(0, 1), cap.size, gen_threshold).flatten(-2)[keep]
        r = downsample_masks(ref_masks, cap.ref_size, ref_threshold).flatten(-2)[ridx]
        t = target.repeat_interleave(Fr, 0)[keep]
        ic, valid = layer_identity_consistency(cap.query[keep], cap.key[ridx], g, r, t)
        ics.append((ic, valid))
        report[str(name)] = float(ic[valid].detach().mean()) if valid.any() else float("nan")
    return img_loss(ics), report


__all__ = ["downsample_masks", "mask_query_attention", "identity_affinity", "edge_weights",
           "identity_consistency", "layer_identity_consistency", "img_loss", "img_loss_from_captures"]
