"""The offline click segmenter: ClickNet (trained on the embedded world, shipped in ``assets/models``)
seen through two views, with SAM's predictor conventions.

Owns turning clicks, a box and a previous mask into full-resolution masks without SAM2 weights:

1. ``set_image`` encodes the whole image, stretched to the network's square view, once;
2. ``predict`` runs the prompt decoder on that view (cheap), then a *zoom-in* pass: a square around the
   first result and what it was unsure of (logits above ``ZOOM_FLOOR``), or around the box, is cropped from the full-resolution image and segmented again at the
   network's full view size, so small characters and 512-pixel edges come out sharp (the zoom-in of
   RITM/FocalClick); the zoomed logits replace the global ones inside the crop. Square, because the
   network's zoomed training views are: a crop stretched to the view shows it characters it never saw;
3. each pass in ``FLIP_PASSES`` also sees its view mirrored (a batch of two) and averages the two answers;
4. the answer's edge is snapped onto the image's edges (``edges.snap_logits``, a colour guided filter whose
   window spans about one of the last pass's decoder pixels): the network answers at half its view's
   resolution, so at 512 pixels its edge would otherwise cut across the character's outline;
5. low-resolution logits are the full mask logits resampled to 256 × 256 over the whole image — the same
   geometry as SAM2's, so either engine's output can be fed back as ``mask_input``.

Inputs arrive validated (``pipelines.segment.predictor`` checks them): image uint8 (H, W, 3), points
(K, 2) float x, y in pixels, labels (K,) in {0, 1}, box (4,) x0, y0, x1, y1 or None, mask_input
(1, 256, 256) float or None.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..paths import models_dir
from .clicknet import WEIGHTS_NAME, ClickNet, load_clicknet, prompt_maps
from .edges import snap_logits
from .inputs import LOW_RES
from .protocol import interior_point

# the zoom crop is a square (as the network's zoomed training views are: a stretched crop is a character it
# never saw) whose side is the longer side of the first result's bounding box grown by 20 % on each side …
ZOOM_MARGIN = 0.2
ZOOM_FLOOR = -2.0          # the crop holds the first result and what it was unsure of: pixels with logits above this
ZOOM_MIN_FRACTION = 0.12   # … but at least 12 % of the image side, so a click on a tiny part still has context
# where a box-only prompt tries its positive click (fractions of the box): centre, then up and down the
# middle (head, legs of a standing character) and left and right of it
BOX_SEEDS = ((0.5, 0.5), (0.5, 0.3), (0.5, 0.7), (0.35, 0.5), (0.65, 0.5))
REJECTED_LOGIT = -4.0      # what a rejected pixel's logit is pushed down to: below every threshold predict uses
SPLIT_MAX_SHARE = 0.25     # an overruled negative click drops its watershed region only up to this share of the mask …
SPLIT_REACH = 3.0          # … and only if the region lies within this many times the click's distance to the mask's
                           # edge (at least 2 pixels) of the click: a click on a sliver at the edge drops a sliver
REFINE_PASSES = 0          # extra zoom-decoder passes fed with their own answer
# passes that also see the view mirrored left-right and average the two answers' logits (flip test-time
# augmentation): the world's characters and scenes are left-right symmetric in law, the network is not exactly
PASSES = ("global", "zoom")  # the engine's two views, by the names FLIP_PASSES uses
FLIP_PASSES = PASSES
# edge snapping: the guided filter's window radius is EDGE_SCALE × the image pixels one decoder output pixel of
# the last pass spans (at least 1 pixel; 0 turns snapping off), its regulariser EDGE_EPS (colours in [0, 1])
EDGE_SCALE = 1.0
EDGE_EPS = 1e-4


def default_weights() -> Path:
    return models_dir() / "clicknet" / WEIGHTS_NAME


class OfflineSegmenter:
    name = "clicknet"

    def __init__(self, net: ClickNet | None = None, weights: str | Path | None = None,
                 device: torch.device | str | None = None, refine_passes: int = REFINE_PASSES,
                 flip_passes: tuple[str, ...] | list[str] = FLIP_PASSES, edge_scale: float = EDGE_SCALE):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.refine_passes = int(refine_passes)
        unknown = set(flip_passes) - set(PASSES)
        if unknown:
            raise ValueError(f"flip_passes: unknown pass(es) {sorted(unknown)}; choose from "
                             + " and ".join(repr(p) for p in PASSES))
        self.flip_passes = tuple(flip_passes)
        if edge_scale < 0:
            raise ValueError(f"edge_scale: {edge_scale}; use 0 (no edge snapping) or a positive window scale")
        self.edge_scale = float(edge_scale)
        self.net = net if net is not None else load_clicknet(weights or default_weights(), self.device)
        self.size = self.net.cfg.size
        self.reset()

    def reset(self) -> None:
        self._image = None
        self._feats = None

    @property
    def is_image_set(self) -> bool:
        return self._image is not None

    # ---- per image --------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_image(self, image: np.ndarray) -> None:
        self._image = image
        self._feats = self._encode(self._view(image, (0.0, 0.0, image.shape[1], image.shape[0])), "global")

    def _view(self, image: np.ndarray, box) -> np.ndarray:
        """The box (x0, y0, x1, y1) of ``image`` resampled to the square view (zeros outside the image)."""
        return resample(image, box, self.size)

    def _encode(self, view: np.ndarray, pass_name: str) -> tuple[torch.Tensor, ...]:
        """Encoder features of the view; a batch of two — the view and its mirror image — when this pass flips."""
        x = torch.from_numpy(view).to(self.device).permute(2, 0, 1)[None].float().div(255.0)
        if pass_name in self.flip_passes:
            x = torch.cat([x, x.flip(-1)])
        return self.net.encoder(x)

    # ---- per click --------------------------------------------------------------------------------------
    def predict(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None = None,
                mask_input: np.ndarray | None = None, multimask: bool = False):
        full = self.logits(points, labels, box, mask_input)
        H, W = full.shape
        low = cv2.resize(full, (LOW_RES, LOW_RES), interpolation=cv2.INTER_AREA if min(H, W) > LOW_RES
                         else cv2.INTER_LINEAR).astype(np.float32)
        # multimask: looser, as-trained and tighter thresholds of the same logits, each with SAM's stability score
        thresholds = (-1.0, 0.0, 1.0) if multimask else (0.0,)
        masks = np.stack([full > t for t in thresholds])
        scores = np.array([stability_score(full, t) for t in thresholds], np.float32)
        return masks, scores, np.repeat(low[None], len(thresholds), 0)

    @torch.no_grad()
    def logits(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None = None,
               mask_input: np.ndarray | None = None) -> np.ndarray:
        """Full-resolution mask logits (H, W) float32 for one object's prompts."""
        if box is not None:
            return self._box_logits(points.reshape(-1, 2), labels, box, mask_input)
        return self._click_logits(points, labels, None, mask_input)

    def _click_logits(self, points: np.ndarray, labels: np.ndarray, box: np.ndarray | None,
                      mask_input: np.ndarray | None) -> np.ndarray:
        """The logits of one set of clicks (with at least one positive click, or a box), through both views."""
        img = self._image
        H, W = img.shape[:2]
        prev_full = None
        if mask_input is not None:
            prev_full = cv2.resize(mask_input[0].astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        # 1. global view
        full = cv2.resize(self._decode(self._feats, (0.0, 0.0, float(W), float(H)), points, labels, prev_full),
                          (W, H), interpolation=cv2.INTER_LINEAR)
        if box is not None:
            full = _outside_box(full, box)
        # 2. zoom-in around the first result (or inside the box)
        crop = self._zoom_box(full > ZOOM_FLOOR, points, labels, box, W, H)
        view_side = max(W, H)                            # image pixels the last pass's view spans
        if crop is not None:
            view_side = crop[2] - crop[0]
            x0, y0, x1, y1 = crop
            feats = self._encode(self._view(img, crop), "zoom")
            # the global answer (which already took mask_input into account) is the zoom pass's mask prompt;
            # then the zoomed answer is fed back ``refine_passes`` times (RITM-style iterative inference)
            prompt = full
            for _ in range(1 + self.refine_passes):
                z = resample(self._decode(feats, crop, points, labels, prompt), (0, 0, self.size, self.size), None,
                             out_hw=(y1 - y0, x1 - x0))
                prompt = full.copy()                      # the part of the crop that lies on the image
                ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
                prompt[iy0:iy1, ix0:ix1] = z[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            full = prompt
        # 3. the edge onto the image's edges, over a window of about one decoder output pixel
        if self.edge_scale > 0:
            radius = max(1, int(round(self.edge_scale * view_side / (self.size / 2))))
            full = snap_logits(full, img, radius, EDGE_EPS)
        if box is not None:
            full = _outside_box(full, box)
        return _obey_negative_clicks(full, points, labels, prev_full, img, boxed=box is not None).astype(np.float32)

    def _box_logits(self, points, labels, box, mask_input) -> np.ndarray:
        """A box, with or without clicks. The network only knows clicks, so the box becomes candidate click sets,
        and the answer whose own bounding box fits the given box best is kept — an object fills its box by
        definition. Costs one click per candidate (box prompts are rare):

        * without a positive click, a positive click at a few places in the box (``BOX_SEEDS``): its centre is
          often not on the object (a character half hidden behind another, arms spread);
        * with one, the clicks alone and, when ``mask_input`` holds an answer inside the box, the clicks plus
          that answer's innermost pixel as a positive click: a click on a missed hand then adds the hand to
          the object the box already gave instead of segmenting the hand alone."""
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = x1 - x0, y1 - y0
        if not (labels == 1).any():
            cands = [(x0 + fx * w, y0 + fy * h) for fx, fy in BOX_SEEDS]
        else:
            cands = [None]
            if mask_input is not None:
                H, W = self._image.shape[:2]
                prev = cv2.resize(mask_input[0].astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR) > 0
                prev = _outside_box(prev.astype(np.float32), box) > 0
                if prev.any():
                    cands.append(interior_point(prev))
        best, best_fit = None, -1.0
        for c in cands:
            pts, labs = (points, labels) if c is None else (np.vstack([points, [c]]), np.append(labels, 1))
            full = self._click_logits(pts, labs, box, mask_input)
            fit = _box_iou(full > 0, (x0, y0, x1, y1))
            if fit > best_fit:
                best, best_fit = full, fit
        return best

    def _decode(self, feats, view_box, points, labels, prev_full) -> np.ndarray:
        """Decoder logits (S/2, S/2) for the prompts mapped into ``view_box``, upsampled to (S, S)."""
        S = self.size
        x0, y0, x1, y1 = view_box
        sx, sy = S / (x1 - x0), S / (y1 - y0)
        pv = np.stack([(points[:, 0] - x0) * sx, (points[:, 1] - y0) * sy], 1)
        inside = (pv[:, 0] >= 0) & (pv[:, 0] < S) & (pv[:, 1] >= 0) & (pv[:, 1] < S)
        prev = None
        if prev_full is not None:
            prev = 1.0 / (1.0 + np.exp(-np.clip(resample(prev_full, view_box, S), -30, 30)))
        p = torch.from_numpy(prompt_maps(pv[inside], labels[inside], prev, S, self.net.cfg.click_radius))[None]
        p = p.to(self.device)
        if feats[0].shape[0] == 2:                        # a flipped pass: the mirrored prompts on the mirrored view
            out = self.net.decoder(feats, torch.cat([p, p.flip(-1)]))
            out = (out[:1] + out[1:].flip(-1)) / 2
        else:
            out = self.net.decoder(feats, p)
        out = torch.nn.functional.interpolate(out, size=(S, S), mode="bilinear", align_corners=False)
        return out[0, 0].cpu().numpy()

    def _zoom_box(self, mask: np.ndarray, points, labels, box, W: int, H: int):
        """The square zoom crop (x0, y0, x1, y1) in whole pixels around the first result and the positive clicks
        (or the box), or None when the global view already is that view. Kept inside the image where it fits
        (the network was trained mostly on in-image crops); where it is larger than the image it overhangs both
        edges evenly and the overhang is zeros, as in training."""
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in box)
        else:
            pos = points[labels == 1]
            ys, xs = np.nonzero(mask)
            xs = np.concatenate([xs, pos[:, 0]])
            ys = np.concatenate([ys, pos[:, 1]])
            x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        side = int(np.ceil(max(max(x1 - x0, y1 - y0) * (1 + 2 * ZOOM_MARGIN), ZOOM_MIN_FRACTION * max(W, H))))
        if W == H and side >= 0.9 * W and W <= self.size * 1.2:
            return None                                   # the global view already is this view

        def start(c: float, n: int) -> int:               # whole pixels: the zoomed logits paste back unshifted
            return int(np.clip(round(c - side / 2), 0, n - side)) if side <= n else int(round((n - side) / 2))

        left, top = start((x0 + x1) / 2, W), start((y0 + y1) / 2, H)
        return left, top, left + side, top + side


def resample(a: np.ndarray, box, size: int | None, out_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The box (x0, y0, x1, y1) of ``a``, in pixel-edge coordinates, resampled to size × size (or
    ``out_hw``) — area averaging when shrinking, bilinear when enlarging, zeros outside ``a``."""
    oh, ow = out_hw if out_hw is not None else (size, size)
    x0, y0, x1, y1 = (float(v) for v in box)
    sx, sy = (x1 - x0) / ow, (y1 - y0) / oh
    H, W = a.shape[:2]
    if min(sx, sy) > 1.5 and x0 >= 0 and y0 >= 0 and x1 <= W + 0.5 and y1 <= H + 0.5:
        sub = a[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))]
        return cv2.resize(sub, (ow, oh), interpolation=cv2.INTER_AREA)
    M = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5]], np.float32)
    return cv2.warpAffine(a, M, (ow, oh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)


def _box_iou(mask: np.ndarray, box) -> float:
    """IoU of ``mask``'s bounding box with ``box`` (x0, y0, x1, y1); 0 for an empty mask."""
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(xs) == 0:
        return 0.0
    mx0, my0, mx1, my1 = xs[0], ys[0], xs[-1] + 1, ys[-1] + 1
    iw = max(0.0, min(mx1, box[2]) - max(mx0, box[0]))
    ih = max(0.0, min(my1, box[3]) - max(my0, box[1]))
    inter = iw * ih
    union = (mx1 - mx0) * (my1 - my0) + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _pixels(points: np.ndarray, W: int, H: int) -> np.ndarray:
    """(K, 2) integer x, y of click ``points``, rounded and clamped into a W × H image."""
    return np.clip(np.round(points).astype(int), 0, [W - 1, H - 1]).reshape(-1, 2)


def _obey_negative_clicks(logits: np.ndarray, points: np.ndarray, labels: np.ndarray,
                          prev: np.ndarray | None = None, image: np.ndarray | None = None,
                          boxed: bool = False) -> np.ndarray:
    """A negative click on a detached piece rejects the whole piece. The piece is what the user saw when
    clicking: a connected component of the previous mask (``prev`` logits, when given) or of this answer
    that holds a negative click and no positive click. Every component of this answer that holds no
    positive click and lies mostly inside a rejected piece is pushed below every threshold ``predict``
    uses. A negative click on the piece that holds a positive click trims the object: when the network
    still keeps the clicked pixel, the piece is split between the clicks along the image's edges (marker
    watershed, ``image`` given) and the part that floods from the negative click is dropped — or, when that
    part would exceed ``SPLIT_MAX_SHARE`` of the mask or reach farther from its click than ``SPLIT_REACH`` times the
    click's distance to the mask's edge, only the clicked spot. With a box (``boxed``) the largest piece counts as
    holding a positive click: it is the object the box asked for, and the user's negative click on it trims it,
    even when the positive clicks so far all fell on smaller pieces (a hand, a foot)."""
    neg, pos = points[labels == 0], points[labels == 1]
    if len(neg) == 0:
        return logits
    H, W = logits.shape

    def components(mask):
        return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[1]

    def at(cc, pts):
        xy = _pixels(pts, W, H)
        return {int(c) for c in cc[xy[:, 1], xy[:, 0]]} - {0}

    def held(cc):                                 # pieces that hold a positive click (or are the boxed object)
        kept = at(cc, pos)
        if boxed and cc.max() > 0:
            kept.add(1 + int(np.argmax(np.bincount(cc.ravel())[1:])))
        return kept

    rejected = np.zeros((H, W), bool)
    for shown in ([prev > 0] if prev is not None else []) + [logits > 0]:
        cc = components(shown)
        drop = at(cc, neg) - held(cc)
        if drop:
            rejected |= np.isin(cc, sorted(drop))
    out = logits
    if image is not None:
        out = _split_off_negative_clicks(out, pos, neg, image)
    if not rejected.any():
        return out
    cc = components(out > 0)
    keep = held(cc)
    out = out.copy()
    n = int(cc.max())
    area = np.bincount(cc.ravel(), minlength=n + 1)
    inside = np.bincount(cc[rejected], minlength=n + 1)
    for c in range(1, n + 1):
        if c not in keep and inside[c] > 0.5 * area[c]:
            piece = cc == c
            out[piece] = np.minimum(out[piece], REJECTED_LOGIT)
    return out


def _split_off_negative_clicks(logits: np.ndarray, pos: np.ndarray, neg: np.ndarray,
                               image: np.ndarray) -> np.ndarray:
    """Negative clicks the network overruled (the clicked pixel is still in the mask): flood the mask from
    every click at once, uphill along the image's colour gradient and never outside the mask (marker
    watershed), and drop what floods from a negative click. A user who excludes a hat or a head gets the
    part bounded by its outline, not a hole the size of the click."""
    from skimage.segmentation import watershed
    H, W = logits.shape
    mask = logits > 0
    overruled = [(x, y) for x, y in _pixels(neg, W, H) if mask[y, x]]
    if not overruled or len(pos) == 0:
        return logits
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = np.ascontiguousarray(image[y0:y1, x0:x1, :3]).astype(np.float32)
    grad = np.max([np.hypot(cv2.Sobel(sub[..., c], cv2.CV_32F, 1, 0), cv2.Sobel(sub[..., c], cv2.CV_32F, 0, 1))
                   for c in range(3)], 0)
    markers = np.zeros(grad.shape, np.int32)
    for x, y in overruled:
        cv2.circle(markers, (int(x - x0), int(y - y0)), 1, 2, -1)
    for x, y in _pixels(pos, W, H):
        cv2.circle(markers, (int(x - x0), int(y - y0)), 1, 1, -1)        # positive wins where clicks are close
    m = mask[y0:y1, x0:x1]
    markers[~m] = 0
    drop = watershed(grad, markers, mask=m) == 2
    # how far the part may reach: a click at the centre of what should go (the protocol's, and a user's) sits
    # about as far from that part's edge as the part is wide, so a click on a sliver along the mask's edge
    # may take a sliver, not the head the flood found behind it
    edge_dist = cv2.distanceTransform(np.pad(m, 1).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    reach = np.zeros(m.shape, np.uint8)
    for x, y in overruled:
        r = SPLIT_REACH * max(float(edge_dist[y - y0, x - x0]), 2.0)
        cv2.circle(reach, (int(x - x0), int(y - y0)), int(np.ceil(r)), 1, -1)
    out = logits.copy()
    if drop.sum() <= SPLIT_MAX_SHARE * m.sum() and not (drop & (reach == 0)).any():
        out[y0:y1, x0:x1][drop] = np.minimum(out[y0:y1, x0:x1][drop], REJECTED_LOGIT)
    else:                 # too large a share, or too far: only the clicked spot goes (the disk of the click)
        spot = np.zeros((H, W), np.uint8)
        for x, y in overruled:
            cv2.circle(spot, (int(x), int(y)), max(1, int(round(0.01 * max(H, W)))), 1, -1)
        out[spot > 0] = np.minimum(out[spot > 0], REJECTED_LOGIT)
    return out


def _outside_box(logits: np.ndarray, box) -> np.ndarray:
    H, W = logits.shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(W, int(np.ceil(box[2]))), min(H, int(np.ceil(box[3])))
    out = np.full_like(logits, -20.0)
    out[y0:y1, x0:x1] = logits[y0:y1, x0:x1]
    return out


def stability_score(logits: np.ndarray, threshold: float, offset: float = 1.0) -> float:
    """SAM's stability score: IoU of the masks thresholded at ``threshold ± offset``; a mask whose edges
    sit on steep logit slopes (a confident prediction) scores near 1."""
    hi = np.count_nonzero(logits > threshold + offset)
    lo = np.count_nonzero(logits > threshold - offset)
    return float(hi / lo) if lo else 0.0
