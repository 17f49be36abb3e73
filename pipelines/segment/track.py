"""Video propagation without SAM2: carry masks from one annotated frame through a clip, frame by frame.

For each step (forwards from the annotated frame, then backwards):

1. dense optical flow (Farnebäck) from the new frame back to the previous one warps every object's
   previous mask into the new frame;
2. the image engine re-segments each object on the new frame, prompted like a user would: a positive
   click deep inside its warped mask, negative clicks deep inside the other objects' warped masks, and the
   warped mask itself as the mask prompt — so the mask snaps back onto the character instead of drifting
   with flow errors;
3. pixels claimed by several objects go to the one with the highest logit (visible masks never overlap).

An object that disappears (fully occluded, or out of frame) is remembered: its last mask, moved along with
the flow of the region that covered it, is offered again on each later frame and accepted once the
character shows enough of itself there again.
"""

from __future__ import annotations

import cv2
import numpy as np

from .inputs import LOW_RES
from .protocol import interior_point

REAPPEAR_MIN_AREA = 0.15     # a remembered object comes back once this share of its last area is free again


def flow_back(cur: np.ndarray, prev: np.ndarray) -> np.ndarray:
    """(H, W, 2) flow from ``cur`` to ``prev`` (for every pixel of cur, where it was in prev)."""
    g1 = cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY)
    g0 = cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY)
    levels = max(1, int(np.log2(max(g1.shape) / 32)))
    return cv2.calcOpticalFlowFarneback(g1, g0, None, pyr_scale=0.5, levels=levels, winsize=15, iterations=3,
                                        poly_n=5, poly_sigma=1.2, flags=cv2.OPTFLOW_FARNEBACK_GAUSSIAN)


def warp(masks: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Warp (N, H, W) float masks of the previous frame into the current one."""
    H, W = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    return np.stack([cv2.remap(m.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                     for m in masks])


def propagate(engine, frames: np.ndarray, frame_index: int, masks: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) frames, (N, H, W) bool masks on ``frame_index`` → (F, N, H, W) bool."""
    F_, H, W = frames.shape[:3]
    N = masks.shape[0]
    out = np.zeros((F_, N, H, W), bool)
    out[frame_index] = masks
    for step in (1, -1):
        prev = masks.astype(np.float32)
        memory = [m.copy() if m.any() else None for m in masks]
        t = frame_index + step
        while 0 <= t < F_:
            flow = flow_back(frames[t], frames[t - step])
            warped = warp(prev, flow) > 0.5
            memory = [None if m is None else warp(m[None].astype(np.float32), flow)[0] > 0.5 for m in memory]
            engine.set_image(frames[t])
            logits = np.full((N, H, W), -np.inf, np.float32)
            for k in range(N):
                seed = warped[k]
                if not seed.any() and memory[k] is not None:
                    free = memory[k] & ~warped[np.arange(N) != k].any(0)
                    if free.sum() >= REAPPEAR_MIN_AREA * memory[k].sum():
                        seed = free
                if not seed.any():
                    continue
                logits[k] = _resegment(engine, seed, warped, k)
            cur = non_overlapping(logits[None])[0]
            for k in range(N):
                if cur[k].any():
                    memory[k] = cur[k]
            out[t] = cur
            prev = cur.astype(np.float32)
            t += step
    return out


def non_overlapping(logits: np.ndarray) -> np.ndarray:
    """(F, N, H, W) logits → (F, N, H, W) bool: each pixel goes to the object with the highest positive
    logit (objects never overlap, like the world's visible masks)."""
    best = logits.argmax(1)
    fg = logits.max(1) > 0
    N = logits.shape[1]
    return (best[:, None] == np.arange(N)[None, :, None, None]) & fg[:, None]


def _resegment(engine, seed: np.ndarray, warped: np.ndarray, k: int) -> np.ndarray:
    # positive clicks deep inside the top, middle and bottom thirds of the warped mask (head, body, legs of a
    # standing character), so a limb that flow lost is still asked for
    pts, labs = [], []
    ys = np.flatnonzero(seed.any(1))
    y0, y1 = ys.min(), ys.max() + 1
    for a, b in ((0, 1 / 3), (1 / 3, 2 / 3), (2 / 3, 1)):
        band = seed.copy()
        band[:int(y0 + a * (y1 - y0))] = False
        band[int(y0 + b * (y1 - y0)):] = False
        if np.count_nonzero(band) >= 4:
            pts.append(interior_point(band))
            labs.append(1)
    if not pts:
        pts, labs = [interior_point(seed)], [1]
    for j in range(len(warped)):
        if j != k and warped[j].any():
            pts.append(interior_point(warped[j]))
            labs.append(0)
    prior = cv2.resize(np.where(seed, 8.0, -8.0).astype(np.float32), (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA)
    return engine.logits(np.array(pts, np.float64), np.array(labs), None, prior[None])
