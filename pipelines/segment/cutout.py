"""``cutout``: a segmented character as an RGBA sticker — cropped to its mask, with an anti-aliased edge
and no halo of the background it was cut from.

The alpha along the edge is estimated from the image itself (each edge pixel's colour as a mix of the
nearby character colour F and background colour B: α = ⟨I − B, F − B⟩ / |F − B|²), where the two sides
differ enough in colour to tell; elsewhere it falls back to a one-pixel ramp across the mask border. It is
kept on the mask's side of ½ — alpha ≥ 128 exactly where the mask is — so the cut-out never disagrees with
the mask it came from. Edge pixels are then un-mixed (F = (I − (1 − α)·B) / α), which removes the fringe
of background colour a plain crop would carry onto another set.
"""

from __future__ import annotations

import cv2
import numpy as np

from .inputs import as_rgb_uint8

SIGMA = 2.0          # neighbourhood (pixels) over which the local character / background colours are averaged
MIN_CONTRAST = 12.0  # below this colour distance (0..441) F and B are too alike to estimate alpha from colour


def cutout(image, mask, margin: int | None = None) -> np.ndarray:
    """RGBA uint8 crop of ``image`` to the bounding box of ``mask`` plus ``margin`` pixels (default: 3 % of
    the box, at least 2), clipped to the image."""
    rgb = as_rgb_uint8(image)
    H, W = rgb.shape[:2]
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != (H, W):
        raise ValueError(f"mask: shape {m.shape} does not match the {H}×{W} image; pass one (H, W) mask of that image")
    m = m.astype(bool)
    if not m.any():
        raise ValueError("mask: it is empty; segment the character first (nothing to cut out)")
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if margin is None:
        margin = max(2, int(round(0.03 * max(y1 - y0, x1 - x0))))
    elif margin < 0:
        raise ValueError(f"margin: {margin} is negative; use 0 or more pixels")
    pad = margin + int(3 * SIGMA) + 2          # colour estimates need a little context beyond the crop
    cy0, cy1, cx0, cx1 = max(0, y0 - pad), min(H, y1 + pad), max(0, x0 - pad), min(W, x1 + pad)
    img = rgb[cy0:cy1, cx0:cx1].astype(np.float32)
    mm = m[cy0:cy1, cx0:cx1]
    alpha, colour = _edge_alpha(img, mm)
    rgba = np.dstack([np.clip(colour + 0.5, 0, 255), np.clip(alpha * 255.0 + 0.5, 0, 255)]).astype(np.uint8)
    oy0, oy1 = max(0, y0 - margin) - cy0, min(H, y1 + margin) - cy0
    ox0, ox1 = max(0, x0 - margin) - cx0, min(W, x1 + margin) - cx0
    return np.ascontiguousarray(rgba[oy0:oy1, ox0:ox1])


def _edge_alpha(img: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m8 = mask.view(np.uint8)
    d_in = cv2.distanceTransform(np.pad(m8, 1, constant_values=1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    d_out = cv2.distanceTransform(np.pad(1 - m8, 1, constant_values=1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    sd = np.where(mask, d_in - 0.5, 0.5 - d_out)          # signed distance to the mask border, + inside
    ramp = np.clip(0.5 + sd / 2.0, 0.0, 1.0)               # 0.75 / 0.25 on the two pixels astride the border
    band = np.abs(sd) <= 1.0
    # local character and background colours from pixels safely on each side (normalised convolution)
    core_f = (sd >= 1.5).astype(np.float32)
    core_b = (sd <= -1.5).astype(np.float32)
    Fc = _local_mean(img, core_f)
    Bc = _local_mean(img, core_b)
    have = (_blur(core_f) > 1e-3) & (_blur(core_b) > 1e-3)
    d = Fc - Bc
    dd = (d * d).sum(-1)
    est = ((img - Bc) * d).sum(-1) / np.maximum(dd, 1e-6)
    use = band & have & (dd > MIN_CONTRAST ** 2)
    alpha = np.where(use, np.clip(est, 0.0, 1.0), ramp)
    # stay on the mask's side of 1/2, so alpha ≥ 128 ⇔ mask
    alpha = np.where(mask, np.clip(alpha, 0.5 + 1 / 255, 1.0), np.clip(alpha, 0.0, 0.5 - 1 / 255))
    alpha[sd > 1.0] = 1.0
    alpha[sd < -1.0] = 0.0
    # un-mix edge pixels: remove the background's share of their colour
    colour = img.copy()
    edge = use & (alpha < 0.999)
    a = alpha[edge][:, None]
    colour[edge] = np.clip((img[edge] - (1 - a) * Bc[edge]) / np.maximum(a, 0.05), 0, 255)
    return alpha, colour


def _blur(a: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(a, (0, 0), SIGMA)


def _local_mean(img: np.ndarray, weight: np.ndarray) -> np.ndarray:
    w = _blur(weight)
    return cv2.GaussianBlur(img * weight[..., None], (0, 0), SIGMA) / np.maximum(w, 1e-6)[..., None]
