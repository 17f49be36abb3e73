"""The interactive-segmentation protocol shared by training, the benchmark and the tests: where a
simulated user clicks, and how a mask is scored.

* first click: the pixel of the target farthest from its border (the standard NoC protocol);
* corrective click: the pixel farthest from the border of the largest error region — positive when that
  region is a missed part of the target, negative when it is spill;
* IoU of boolean masks;
* how many pieces a visible mask is in (a character an occluder cuts in two is the hardest case);
* a whole session: clicks (or a box, then clicks), each answer's low-resolution logits fed back as the next
  ``mask_input``.
"""

from __future__ import annotations

import cv2
import numpy as np


def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of ``mask`` farthest from its border (mask must be non-empty)."""
    m = np.pad(np.asarray(mask, bool), 1).view(np.uint8)
    d = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


def first_click(target: np.ndarray) -> tuple[int, int, int]:
    x, y = interior_point(target)
    return x, y, 1


def corrective_click(pred: np.ndarray, target: np.ndarray) -> tuple[int, int, int] | None:
    """(x, y, label) on the largest error region, or None when ``pred`` equals ``target``."""
    best = None
    for err, label in ((target & ~pred, 1), (pred & ~target, 0)):
        n, cc, stats, _ = cv2.connectedComponentsWithStats(err.view(np.uint8), connectivity=4)
        if n > 1:
            j = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            if best is None or stats[j, cv2.CC_STAT_AREA] > best[0]:
                best = (int(stats[j, cv2.CC_STAT_AREA]), cc == j, label)
    if best is None:
        return None
    x, y = interior_point(best[1])
    return x, y, best[2]


def pieces(mask: np.ndarray, min_share: float = 0.05) -> int:
    """Number of 8-connected pieces of ``mask`` holding at least ``min_share`` of its area each (specks of a
    few pixels do not count): 1 for a character seen whole, 2+ for one an occluder cuts apart, 0 if empty."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(np.asarray(mask, np.uint8), connectivity=8)
    area = stats[1:, cv2.CC_STAT_AREA]
    return int((area >= min_share * area.sum()).sum()) if n > 1 else 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 1.0


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of ``mask``'s pixels, pixel edges (x1, y1 exclusive); mask must be non-empty."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def click_session(seg, target: np.ndarray, n_clicks: int, box: bool = False) -> list[float]:
    """IoU after each of ``n_clicks`` protocol prompts on ``target`` with a predictor that has its image set
    (anything with SAM's ``predict(points, labels, box=…, mask_input=…)``). With ``box`` the first prompt is
    the target's bounding box alone and the later clicks are added to it (SAM's box protocol)."""
    pts, labs, logits, ious = [], [], None, []
    pred = np.zeros_like(target)
    bx = np.array(bounding_box(target), float) if box else None
    for c in range(n_clicks):
        if box and c == 0:
            masks, _, low = seg.predict(box=bx)
            pred, logits = masks[0], low[:1]
            ious.append(iou(pred, target))
            continue
        click = first_click(target) if c == 0 else corrective_click(pred, target)
        if click is None:                          # perfect already: later clicks keep it
            ious.append(1.0)
            continue
        pts.append(click[:2])
        labs.append(click[2])
        masks, _, low = seg.predict(points=np.array(pts, float), labels=np.array(labs), box=bx, mask_input=logits)
        pred, logits = masks[0], low[:1]
        ious.append(iou(pred, target))
    return ious
