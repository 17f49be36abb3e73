"""Checking and normalising what users hand to the segmenter: images, clicks, boxes, mask prompts.

Every engine receives the same clean inputs — image uint8 (H, W, 3) RGB, points float (K, 2), labels
int (K,), box float (4,) or None, mask_input float32 (1, 256, 256) or None — and every bad input becomes a
ValueError that names the argument, shows the bad value and says what to do. Sizes are checked before
anything big is allocated, so a 100-megapixel upload is refused, not an out-of-memory.
"""

from __future__ import annotations

import numpy as np

MAX_PIXELS = 40_000_000
LOW_RES = 256


def image_size_of(image) -> tuple[int, int]:
    """(H, W) without converting or decoding pixels (PIL reads the size from the header)."""
    if _is_pil(image):
        w, h = image.size
        return int(h), int(w)
    shape = getattr(image, "shape", None)
    if shape is None:
        raise ValueError(f"image: expected an H×W×3 uint8 array (or grayscale, RGBA, 16-bit, or a PIL image), "
                         f"got {type(image).__name__}")
    if len(shape) not in (2, 3):
        raise ValueError(f"image: expected H×W, H×W×1, H×W×3 or H×W×4, got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def check_image_size(h: int, w: int) -> None:
    if h <= 0 or w <= 0:
        raise ValueError(f"image: it is empty ({h}×{w} pixels); pass a picture with at least one pixel")
    if h * w > MAX_PIXELS:
        raise ValueError(f"image: {w}×{h} is {h * w / 1e6:.1f} megapixels, over the {MAX_PIXELS / 1e6:.0f}-megapixel "
                         "limit; downscale it first (segmentation works on a 1024-pixel view anyway)")


def as_rgb_uint8(image) -> np.ndarray:
    """Any supported image → contiguous uint8 (H, W, 3) RGB.

    Accepts numpy arrays (H, W) / (H, W, 1) grayscale, (H, W, 3) RGB, (H, W, 4) RGBA; uint8, uint16
    (16-bit, scaled to 8), bool, other integers in 0..255, floats in [0, 1]; and PIL images of any mode.
    Transparent pixels are composited on white, the way the studio shows them.
    """
    h, w = image_size_of(image)
    check_image_size(h, w)
    if _is_pil(image):
        image = _pil_to_array(image)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] not in (1, 3, 4):
        raise ValueError(f"image: {a.shape[2]} channels in shape {a.shape}; expected 1 (gray), 3 (RGB) or 4 (RGBA)")
    a = _to_uint8(a)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(a, 3, axis=2))
    if a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        rgb = a[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return np.ascontiguousarray(a)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"image: integer values span {lo}..{hi}; expected 0..255 (uint8) or 0..65535 (uint16)")
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image: contains NaN or infinite values; pass finite values in [0, 1]")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"image: float values span {lo:g}..{hi:g}; expected [0, 1] (or pass uint8 0..255)")
        return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    raise ValueError(f"image: unsupported dtype {a.dtype}; use uint8, uint16 or float in [0, 1]")


def _is_pil(image) -> bool:
    try:
        from PIL import Image
    except ImportError:                               # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(image, Image.Image)


def _pil_to_array(image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":                                   # 32-bit integer: PNG 16-bit grayscale often loads as this
        a = np.asarray(image)
        return a.astype(np.uint16) if a.size and a.min() >= 0 and a.max() <= 65535 else a
    if mode == "F":
        return np.asarray(image, np.float32)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        return np.asarray(image.convert("RGBA"))
    if mode in ("L", "1"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


# ---- prompts ------------------------------------------------------------------------------------------
def check_prompts(points, labels, box, mask_input, hw: tuple[int, int]):
    """Validate clicks, box and mask prompt against an image of size ``hw``; return them normalised."""
    H, W = hw
    pts = np.zeros((0, 2), np.float64)
    labs = np.zeros((0,), np.int64)
    if points is not None and len(points) > 0:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"points: expected a list of (x, y) pairs, got shape {pts.shape}")
        if not np.isfinite(pts).all():
            raise ValueError("points: contain NaN or infinite coordinates")
        if labels is None:
            raise ValueError(f"labels: missing; give one label per point (1 = on the object, 0 = not), "
                             f"{len(pts)} points were given")
        labs = np.asarray(labels).reshape(-1)
        if len(labs) != len(pts):
            raise ValueError(f"labels: {len(labs)} labels for {len(pts)} points; give exactly one label per point")
        if not np.isin(labs, (0, 1)).all():
            raise ValueError(f"labels: {labs.tolist()} — each label must be 1 (on the object) or 0 (not on it)")
        labs = labs.astype(np.int64)
        out = (pts[:, 0] < 0) | (pts[:, 0] > W - 1) | (pts[:, 1] < 0) | (pts[:, 1] > H - 1)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise ValueError(f"points: ({pts[i, 0]:g}, {pts[i, 1]:g}) is outside the {W}×{H} image; clicks are "
                             f"(x, y) pixel coordinates with 0 ≤ x ≤ {W - 1} and 0 ≤ y ≤ {H - 1}")
    elif labels is not None and len(labels) > 0:
        raise ValueError(f"labels: {len(labels)} labels but no points; give one point per label")
    bx = None
    if box is not None:
        bx = np.asarray(box, dtype=np.float64).reshape(-1)
        if bx.shape != (4,) or not np.isfinite(bx).all():
            raise ValueError(f"box: expected (x0, y0, x1, y1), got {np.asarray(box).tolist()}")
        if not (bx[0] < bx[2] and bx[1] < bx[3]):
            raise ValueError(f"box: {bx.tolist()} is empty; it must satisfy x0 < x1 and y0 < y1")
        if bx[2] <= 0 or bx[3] <= 0 or bx[0] >= W or bx[1] >= H:
            raise ValueError(f"box: {bx.tolist()} lies outside the {W}×{H} image")
        bx = np.array([max(0.0, bx[0]), max(0.0, bx[1]), min(float(W), bx[2]), min(float(H), bx[3])])
    if len(pts) == 0 and bx is None:
        raise ValueError("points: no clicks and no box; click on the object (label 1) or give a box")
    if len(pts) and not (labs == 1).any() and bx is None:
        raise ValueError("labels: every click is negative (0); add at least one click on the object (label 1) "
                         "or give a box")
    mi = None
    if mask_input is not None:
        mi = np.asarray(mask_input, dtype=np.float32)
        if mi.ndim == 2:
            mi = mi[None]
        if mi.shape != (1, LOW_RES, LOW_RES):
            raise ValueError(f"mask_input: expected low-resolution logits of shape (1, {LOW_RES}, {LOW_RES}) — one "
                             f"of the low_res_logits that predict returned — got shape {np.asarray(mask_input).shape}")
        if not np.isfinite(mi).all():
            raise ValueError("mask_input: contains NaN or infinite values")
    return pts, labs, bx, mi
