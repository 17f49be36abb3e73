"""Edge snapping: a coarse mask's edge moved onto the image's own edges with the colour guided filter
(He, Sun and Tang, *Guided Image Filtering*, 2010/2013).

The offline engine's network answers at half its view's resolution, so at 512 pixels one of its output
pixels spans two to three image pixels and the mask edge, upsampled bilinearly, cuts across the character's
outline instead of following it. The guided filter fits, in every ``(2r + 1)²`` window, the mask probability
as a linear function of the pixel's colour (``q = a·I + b``, ridge-regularised by ``eps``) and averages the
fits of the windows covering each pixel: where the window holds one flat colour the probability is smoothed,
where it holds an edge the probability steps with the colour. Cost: a handful of box filters and a 3 × 3
solve per pixel, over the mask's neighbourhood only.
"""

from __future__ import annotations

import cv2
import numpy as np


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """``src`` (H, W) filtered with the colour image ``guide`` (H, W, 3) as guide; both float32, ``guide`` in
    [0, 1]. ``radius`` ≥ 1 is the window's half side in pixels, ``eps`` the ridge term on each window's colour
    covariance (a colour variance well below it counts as flat)."""
    if radius < 1:
        raise ValueError(f"radius: {radius}; the guided filter needs a window radius of at least 1 pixel")
    if guide.shape[:2] != src.shape or guide.ndim != 3 or guide.shape[2] != 3:
        raise ValueError(f"guide {guide.shape} and src {src.shape}: pass an (H, W, 3) guide and an (H, W) source")
    guide = guide.astype(np.float32, copy=False)
    src = src.astype(np.float32, copy=False)
    k = (2 * radius + 1, 2 * radius + 1)

    def mean(a):
        return cv2.boxFilter(a, -1, k, normalize=True, borderType=cv2.BORDER_REFLECT)

    mI, mp = mean(guide), mean(src)
    v = [mean(guide[..., i] * src) - mI[..., i] * mp for i in range(3)]          # colour–source covariance
    # window colour covariance + eps, symmetric: [[s00, s01, s02], [s01, s11, s12], [s02, s12, s22]]
    s = {(i, j): mean(guide[..., i] * guide[..., j]) - mI[..., i] * mI[..., j] + (eps if i == j else 0.0)
         for i in range(3) for j in range(i, 3)}
    # a = s⁻¹ v by cofactors (per pixel, vectorised: a batched 3 × 3 solve costs five times as much)
    c00 = s[1, 1] * s[2, 2] - s[1, 2] * s[1, 2]
    c01 = s[0, 2] * s[1, 2] - s[0, 1] * s[2, 2]
    c02 = s[0, 1] * s[1, 2] - s[0, 2] * s[1, 1]
    c11 = s[0, 0] * s[2, 2] - s[0, 2] * s[0, 2]
    c12 = s[0, 1] * s[0, 2] - s[0, 0] * s[1, 2]
    c22 = s[0, 0] * s[1, 1] - s[0, 1] * s[0, 1]
    det = s[0, 0] * c00 + s[0, 1] * c01 + s[0, 2] * c02                    # > 0: covariance + eps·I
    a = np.stack([c00 * v[0] + c01 * v[1] + c02 * v[2],
                  c01 * v[0] + c11 * v[1] + c12 * v[2],
                  c02 * v[0] + c12 * v[1] + c22 * v[2]], -1) / det[..., None]
    b = mp - (a * mI).sum(-1)
    return (mean(a) * guide).sum(-1) + mean(b)


def snap_logits(logits: np.ndarray, image: np.ndarray, radius: int, eps: float,
                floor: float = -6.0) -> np.ndarray:
    """Mask logits (H, W) with their edge snapped to the edges of ``image`` (H, W, 3) uint8: the probability
    is guided-filtered over the bounding box of the pixels above ``floor`` (plus the filter's reach) and turned
    back into logits there; outside it the logits are kept. A mask with nothing above ``floor`` is returned
    as it is."""
    ys, xs = np.nonzero(logits > floor)
    if len(ys) == 0:
        return logits
    H, W = logits.shape
    pad = 2 * radius + 1
    y0, y1 = max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, H)
    x0, x1 = max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, W)
    sub = logits[y0:y1, x0:x1].astype(np.float32)
    p = 1.0 / (1.0 + np.exp(-np.clip(sub, -30.0, 30.0)))
    q = guided_filter(image[y0:y1, x0:x1, :3].astype(np.float32) / 255.0, p, radius, eps)
    q = np.clip(q, 1e-4, 1.0 - 1e-4)
    out = logits.astype(np.float32, copy=True)
    out[y0:y1, x0:x1] = np.log(q / (1.0 - q))
    return out
