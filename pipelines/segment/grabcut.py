"""GrabCut seeded by clicks: the last-resort engine, used only when neither SAM2 weights nor the shipped
ClickNet weights are on the machine. Classical (colour models + graph cut, OpenCV's implementation), no
weights at all — and much weaker on crowded frames (``docs/SEGMENTATION.md`` has its numbers).

Clicks become hard seeds (disks); the working rectangle is the box, or a character-sized window around
the positive clicks; a previous mask (``mask_input``) seeds the probable labels. Runs on a copy of the
region of interest at most ``WORK_SIDE`` pixels across, so a click stays interactive on large images.
"""

from __future__ import annotations

import cv2
import numpy as np

from .inputs import LOW_RES
from .offline import stability_score

WORK_SIDE = 320
ITERATIONS = 4


class GrabCutEngine:
    name = "grabcut"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._image = None

    @property
    def is_image_set(self) -> bool:
        return self._image is not None

    def set_image(self, image: np.ndarray) -> None:
        self._image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    def predict(self, points, labels, box, mask_input, multimask):
        # three hypotheses for multimask: windows for a part, a character, a group (no box: the box decides)
        spans = (0.3, 0.5, 0.75) if multimask and box is None else (0.5,)
        runs = [self._run(points, labels, box, mask_input, s) for s in spans]
        if multimask and box is not None:
            runs = runs * 3
        masks = np.stack([r[0] for r in runs])
        scores = np.array([stability_score(r[1], 0.0) for r in runs], np.float32)
        low = np.stack([cv2.resize(r[1], (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA) for r in runs])
        return masks, scores, low.astype(np.float32)

    def logits(self, points, labels, box=None, mask_input=None) -> np.ndarray:
        """Full-resolution logits (H, W) of one object (a character-sized window)."""
        return self._run(points, labels, box, mask_input, 0.5)[1]

    def _run(self, points, labels, box, mask_input, span: float):
        """One GrabCut; ``span`` is the assumed character height as a share of the frame height."""
        img = self._image
        H, W = img.shape[:2]
        pos, neg = points[labels == 1], points[labels == 0]
        if box is not None:
            x0, y0, x1, y1 = box
        else:
            # a standing character is about half the frame tall and a third as wide, the click near its chest
            cx, cy = pos[:, 0].mean(), pos[:, 1].mean()
            h = max(span * H, 1.3 * np.ptp(pos[:, 1]) if len(pos) > 1 else 0)
            w = max(0.3 * h, 1.3 * np.ptp(pos[:, 0]) if len(pos) > 1 else 0)
            x0, x1 = cx - w / 2, cx + w / 2
            y0, y1 = cy - 0.35 * h, cy + 0.65 * h
        x0, y0 = int(max(0, np.floor(x0))), int(max(0, np.floor(y0)))
        x1, y1 = int(min(W, np.ceil(x1))), int(min(H, np.ceil(y1)))
        # a margin of background around the rectangle gives GrabCut its background colours
        m = int(0.15 * max(x1 - x0, y1 - y0)) + 2
        rx0, ry0, rx1, ry1 = max(0, x0 - m), max(0, y0 - m), min(W, x1 + m), min(H, y1 + m)
        scale = min(1.0, WORK_SIDE / max(rx1 - rx0, ry1 - ry0))
        roi = img[ry0:ry1, rx0:rx1]
        sw, sh = max(2, int(round((rx1 - rx0) * scale))), max(2, int(round((ry1 - ry0) * scale)))
        roi = cv2.resize(roi, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else roi.copy()
        gm = np.full((sh, sw), cv2.GC_BGD, np.uint8)
        gm[int((y0 - ry0) * scale):int(np.ceil((y1 - ry0) * scale)),
           int((x0 - rx0) * scale):int(np.ceil((x1 - rx0) * scale))] = cv2.GC_PR_FGD
        if mask_input is not None:
            prior = cv2.resize(mask_input[0], (W, H), interpolation=cv2.INTER_LINEAR)[ry0:ry1, rx0:rx1]
            prior = cv2.resize(prior, (sw, sh), interpolation=cv2.INTER_LINEAR)
            gm[(prior > 0) & (gm == cv2.GC_BGD)] = cv2.GC_PR_FGD
            gm[prior <= 0] = cv2.GC_PR_BGD
        r = max(2, int(round(0.012 * max(sw, sh))))
        for pts, lab in ((pos, cv2.GC_FGD), (neg, cv2.GC_BGD)):
            for x, y in pts:
                px, py = int(round((x - rx0) * scale)), int(round((y - ry0) * scale))
                if 0 <= px < sw and 0 <= py < sh:
                    cv2.circle(gm, (px, py), r, int(lab), -1)
        if (gm == cv2.GC_FGD).any() or (gm == cv2.GC_PR_FGD).any():
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            try:
                cv2.grabCut(roi, gm, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
            except cv2.error:               # one colour only (e.g. a flat image): keep the seeds as they are
                pass
        fg = ((gm == cv2.GC_FGD) | (gm == cv2.GC_PR_FGD)).astype(np.float32)
        soft = cv2.resize(fg, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_LINEAR)
        logits = np.full((H, W), -8.0, np.float32)
        logits[ry0:ry1, rx0:rx1] = (soft - 0.5) * 16.0
        # keep the parts connected to a positive click (GrabCut also keeps look-alike colour far away)
        mask = logits > 0
        n, cc = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
        keep = {int(cc[int(round(y)), int(round(x))]) for x, y in pos} - {0}
        if keep:
            mask &= np.isin(cc, list(keep))
            logits[~mask & (logits > 0)] = -1.0
        return mask, logits
