"""Image statistics that tell the two styles apart from a character crop alone — the world's own check
that "cartoon" and "live-action" are different kinds of picture (no learning needed beyond a linear model):

* flatness — share of pixels equal (within 2 levels) to their right and lower neighbours: flat fills;
* fine texture — mean absolute Laplacian inside the silhouette, away from its border: grain and textures;
* ink — share of very dark, unsaturated pixels: outlines;
* palette — how many distinct colours (coarsely quantised) cover 90 % of the pixels;
* saturation — mean HSV saturation.
"""

from __future__ import annotations

import cv2
import numpy as np

FEATURES = ("flatness", "texture", "ink", "palette", "saturation")


def style_statistics(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(len(FEATURES),) float32 for the character under ``mask`` in ``image`` (H, W, 3) uint8."""
    m = mask.astype(bool)
    if m.sum() < 16:
        raise ValueError("mask: fewer than 16 pixels; the character is not visible enough to describe")
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = image[y0:y1, x0:x1].astype(np.int16)
    cm = m[y0:y1, x0:x1]
    inner = cv2.erode(cm.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if inner.sum() < 8:
        inner = cm
    dx = np.abs(np.diff(crop, axis=1)).max(-1) <= 2
    dy = np.abs(np.diff(crop, axis=0)).max(-1) <= 2
    flat = (dx[:-1, :] & dy[:, :-1])[inner[:-1, :-1]].mean()
    gray = cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = np.abs(cv2.Laplacian(gray, cv2.CV_32F))[inner].mean() / 32.0
    hsv = cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2HSV)
    px, sat = crop[cm], hsv[..., 1][cm] / 255.0
    ink = ((px.max(-1) < 70) & (sat < 0.5)).mean()
    q = (px // 32).astype(np.int32)
    codes = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    counts = np.sort(np.bincount(codes))[::-1]
    palette = np.searchsorted(np.cumsum(counts), 0.9 * counts.sum()) + 1
    return np.array([flat, lap, ink, palette / 16.0, sat.mean()], np.float32)
