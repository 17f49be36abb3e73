"""Appearance prior: each reference character's cut-out, scaled and placed on the body box of the track it
performs, frame by frame — a coarse picture of *who* stands *where* that the generator reads through its
pose guider next to the IEG skeletons.

Why it exists (README, *Architecture*): reference attention has to discover, pixel by pixel, which reference
character each skeleton is; on a CPU budget the tiny model never learned that (identity accuracy at chance
after 2,300 generator steps). The assignment is given — the creator decided it — so this module states it in
pixels: the denoiser's job becomes refining a roughly placed, correctly coloured figure into the posed
character, a local problem a small network learns quickly. Reference attention (and IMG) still carry detail.

The body box of a skeleton (OpenPose-18, pixels) comes from the world's proportions, measured on 51 unoccluded
characters of both styles: the head top is 2.25 × (neck − eyes) above the neck (10–90 %: 1.95–2.7, the same
for cartoon and live-action heads), the soles 0.27 torso lengths below the lowest ankle, and the figure is
centred on the middle of neck and hips. The cut-out keeps its aspect ratio; its mask's horizontal centroid
goes on that centre. Tracks are pasted far → near (``depth_order``), so nearer characters cover farther ones
as they would on set.

Under the characters lies the reference's set with its characters inpainted away (``empty_set``): the set
the creator chose is where the clip plays, and the tiny model did not learn to copy it through attention
either (its backgrounds were the world's average set).

Output: (F, H, W, 4) uint8 RGBA — the empty set (alpha 0) with the characters pasted on it (alpha 255). The
generator reads it in [-1, 1] with the IEG video (``MixDenoiser.encode_pose``).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .ieg import depth_order
from .openpose import J, check_keypoints

PRIOR_CHANNELS = 4
HEAD_TOP_PER_EYES = 2.25      # neck → head top, in units of neck → eyes
HEAD_TOP_PER_NOSE = 2.95      # the same with the nose when the eyes are not visible
HEAD_TOP_PER_TORSO = 0.9      # … or in torso lengths when neither is
SOLE_PER_TORSO = 0.27         # lowest ankle → sole
LEGS_PER_TORSO = 2.5          # neck → sole when no ankle is visible (hips → sole ≈ 1.5 torso lengths)


def _mean(person: np.ndarray, names: Sequence[str]) -> np.ndarray | None:
    pts = person[[J[n] for n in names]]
    pts = pts[pts[:, 2] > 0]
    return pts[:, :2].mean(0) if len(pts) else None


def body_box(person: np.ndarray) -> tuple[float, float, float] | None:
    """(centre x, head top y, sole y) of one (18, 3) skeleton in pixels, or None when neck or hips are missing
    (too little of the body is visible to place a figure)."""
    neck, hips = _mean(person, ["neck"]), _mean(person, ["r_hip", "l_hip"])
    if neck is None or hips is None:
        return None
    torso = float(np.hypot(*(hips - neck)))
    if torso < 1e-3:
        return None
    eyes, nose = _mean(person, ["r_eye", "l_eye"]), _mean(person, ["nose"])
    if eyes is not None and neck[1] - eyes[1] > 0:
        top = neck[1] - HEAD_TOP_PER_EYES * (neck[1] - eyes[1])
    elif nose is not None and neck[1] - nose[1] > 0:
        top = neck[1] - HEAD_TOP_PER_NOSE * (neck[1] - nose[1])
    else:
        top = neck[1] - HEAD_TOP_PER_TORSO * torso
    ankles = person[[J["r_ankle"], J["l_ankle"]]]
    ankles = ankles[ankles[:, 2] > 0]
    sole = ankles[:, 1].max() + SOLE_PER_TORSO * torso if len(ankles) else neck[1] + LEGS_PER_TORSO * torso
    if sole - top < 2:
        return None
    return float((neck[0] + hips[0]) / 2), float(top), float(sole)


class _Cutout:
    """One slot's character cropped to its mask's box, and the body box it is mapped from: the reference
    skeleton's when known (a partly hidden character in a natural frame keeps its true scale), otherwise the
    mask's own (centroid x, top, bottom) — right for the whole-figure cut-outs of a reference sheet."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, box: tuple[float, float, float] | None = None):
        ys, xs = np.nonzero(mask)
        self.empty = len(ys) == 0
        if self.empty:
            return
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        self.rgb = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
        self.alpha = np.ascontiguousarray(mask[y0:y1, x0:x1].astype(np.uint8) * 255)
        self.h, self.w = y1 - y0, x1 - x0
        cx, top, sole = box if box is not None else (float(xs.mean()) + 0.5, float(y0), float(y1))
        self.cx, self.top, self.height = cx - x0, top - y0, sole - top        # in crop pixels

    def paste(self, canvas: np.ndarray, box: tuple[float, float, float]) -> None:
        cx, top, sole = box
        scale = (sole - top) / self.height
        h, w = max(1, int(round(self.h * scale))), max(1, int(round(self.w * scale)))
        if h > 4 * canvas.shape[0] or w > 4 * canvas.shape[1]:
            return                                                   # a degenerate skeleton: skip, don't blow up
        rgb = cv2.resize(self.rgb, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        alpha = cv2.resize(self.alpha, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x0, y0 = int(round(cx - self.cx * scale)), int(round(top - self.top * scale))
        H, W = canvas.shape[:2]
        ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if ax0 >= ax1 or ay0 >= ay1:
            return
        src = (slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0))
        a = alpha[src][..., None].astype(np.float32) / 255.0
        dst = canvas[ay0:ay1, ax0:ax1]
        dst[..., :3] = (rgb[src] * a + dst[..., :3] * (1 - a)).round().astype(np.uint8)
        dst[..., 3] = np.maximum(dst[..., 3], alpha[src])


def empty_set(reference: np.ndarray, masks: np.ndarray, width: int, height: int) -> np.ndarray:
    """The reference's set without its characters, (height, width, 3) uint8: character pixels (dilated by
    2 px, so no outline is left) filled by Telea inpainting from the set around them."""
    hole = masks.any(0).astype(np.uint8) if len(masks) else np.zeros(reference.shape[:2], np.uint8)
    hole = cv2.dilate(hole, np.ones((5, 5), np.uint8))
    rgb = np.ascontiguousarray(reference[..., :3].astype(np.uint8))
    filled = cv2.inpaint(rgb, hole, 5, cv2.INPAINT_TELEA) if hole.any() else rgb
    if filled.shape[:2] != (height, width):
        filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_AREA)
    return filled


def appearance_prior(reference: np.ndarray, reference_masks: np.ndarray, keypoints: np.ndarray,
                     slots: Sequence[int], width: int, height: int,
                     reference_keypoints: np.ndarray | None = None) -> np.ndarray:
    """The appearance prior video.

    Args:
        reference: (H_r, W_r, 3) uint8 reference image (a natural frame or a composed sheet).
        reference_masks: (S, H_r, W_r) masks in slot order (padding slots may be empty).
        keypoints: (F, T, 18, 3) in pixels of the ``width``×``height`` output.
        slots: the slot performing each track (length T; -1 = nobody, not drawn) — ``track_slots``.
        reference_keypoints: optional (S, 18, 3) skeleton of each slot's character in the reference (the
            world knows it for natural frames); without it each cut-out's mask box is taken as its whole body.
    Returns:
        (F, height, width, 4) uint8 RGBA: the reference's set without its characters (``empty_set``, alpha 0)
        with the characters pasted on it (alpha 255).
    """
    kp = check_keypoints(keypoints)
    reference, masks = np.asarray(reference), np.asarray(reference_masks).astype(bool)
    if reference.ndim != 3 or reference.shape[2] < 3:
        raise ValueError(f"reference: expected (height, width, 3), got {reference.shape}")
    if masks.ndim != 3 or masks.shape[1:] != reference.shape[:2]:
        raise ValueError(f"reference_masks: expected (slots, {reference.shape[0]}, {reference.shape[1]}), "
                         f"got {masks.shape}")
    slots = list(slots)
    if len(slots) != kp.shape[1]:
        raise ValueError(f"slots: got {len(slots)} entries for {kp.shape[1]} tracks")
    if any(s >= len(masks) for s in slots):
        raise ValueError(f"slots: slot {max(slots)} has no reference mask (there are {len(masks)})")
    ref_boxes = [None] * len(masks)
    if reference_keypoints is not None:
        rk = np.asarray(reference_keypoints, np.float32)
        if rk.ndim != 3 or rk.shape[1:] != (18, 3) or len(rk) > len(masks):
            raise ValueError(f"reference_keypoints: expected (slots ≤ {len(masks)}, 18, 3), got {rk.shape}")
        ref_boxes[:len(rk)] = [body_box(p) for p in rk]
    cutouts = {s: _Cutout(reference, masks[s], ref_boxes[s]) for s in set(slots) if s >= 0}
    out = np.zeros((kp.shape[0], height, width, PRIOR_CHANNELS), np.uint8)
    out[..., :3] = empty_set(reference, masks, width, height)
    for f in range(kp.shape[0]):
        for t in depth_order(kp[f]):
            s = slots[t]
            if s < 0 or cutouts[s].empty:
                continue
            box = body_box(kp[f, t])
            if box is not None:
                cutouts[s].paste(out[f], box)
    return out


__all__ = ["appearance_prior", "body_box", "empty_set", "PRIOR_CHANNELS"]
