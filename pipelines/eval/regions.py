"""Where each motion track's character *should* be in a frame, and the crops the probes describe.

Two sources of regions:

* ground truth — the world's visible masks (the benchmark knows them exactly);
* a bare video + its scene — the region around each track's OpenPose-18 skeleton: the torso polygon,
  limbs drawn thick and the head as a disc, sized from the skeleton itself; where two tracks' regions
  overlap, the nearer track keeps the pixels (``pipelines.pose.ieg.depth_order``, the order IEG draws in).

A region is judged only when enough of the character is visible: an occluded sliver says nothing about
identity, and counting it would make the metric measure occlusion instead of identity.

Crops (``crop_region``) keep only the region's pixels (the rest is a flat grey), squared around the
region's bounding box and resized to the probe's input size. The region's *shape* comes from the ground
truth or the skeleton, never from the generated pixels, so only the pixels inside can carry identity.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..pose.ieg import depth_order
from ..pose.openpose import J, LIMBS, check_keypoints

FILL = 127                 # grey outside the region in a crop
MIN_PIXELS_128 = 48        # at 128×128; scaled with the frame area
MIN_SHARE = 0.35           # of the track's largest region in the clip


def skeleton_height(person: np.ndarray) -> float:
    """Standing height (pixels) of one (18, 3) skeleton, in the world's convention (feet to top of head):
    leg (hip→knee→ankle) + torso (hip centre→neck) + 2 × neck→eyes, over 0.99 — in the world's body model
    (``world.body``) the neck→eyes distance is the neck (2.5 % of height) plus the head radius, and foot,
    neck and head add up to exactly that. NaN when the joints needed are not visible."""
    p, v = person[:, :2], person[:, 2] > 0

    def seg(*names):
        idx = [J[n] for n in names]
        if not all(v[i] for i in idx):
            return np.nan
        return float(sum(np.linalg.norm(p[a] - p[b]) for a, b in zip(idx[:-1], idx[1:])))

    legs = [x for x in (seg("r_hip", "r_knee", "r_ankle"), seg("l_hip", "l_knee", "l_ankle")) if np.isfinite(x)]
    if not legs or not (v[J["neck"]] and v[J["r_hip"]] and v[J["l_hip"]]):
        return np.nan
    leg = max(legs)
    torso = float(np.linalg.norm(p[J["neck"]] - (p[J["r_hip"]] + p[J["l_hip"]]) / 2))
    eyes = [J[n] for n in ("r_eye", "l_eye") if v[J[n]]]
    head = float(np.linalg.norm(p[eyes].mean(0) - p[J["neck"]])) if eyes else \
        (float(np.linalg.norm(p[J["nose"]] - p[J["neck"]])) if v[J["nose"]] else 0.35 * torso)
    return float((leg + torso + 2.0 * head) / 0.99)


def track_heights(keypoints: np.ndarray) -> np.ndarray:
    """(F, T, 18, 3) → (F, T) standing height of every track-frame: the frame's own estimate when its joints
    are visible, else the track's median over the clip (occlusion hides joints, not body size), else a
    guess from whatever limbs are visible."""
    kp = check_keypoints(keypoints)
    F, T = kp.shape[:2]
    h = np.array([[skeleton_height(kp[f, t]) for t in range(T)] for f in range(F)], np.float64).reshape(F, T)
    for t in range(T):
        ok = np.isfinite(h[:, t])
        if ok.any():
            h[~ok, t] = np.median(h[ok, t])
            continue
        for f in range(F):
            p, v = kp[f, t, :, :2], kp[f, t, :, 2] > 0
            lengths = [np.linalg.norm(p[a] - p[b]) for a, b in LIMBS if v[a] and v[b]]
            h[f, t] = 4.0 * float(np.median(lengths)) if lengths else 0.0
    return h


def skeleton_region(person: np.ndarray, width: int, height: int, h: float | None = None,
                    grow: float = 1.0) -> np.ndarray:
    """Approximate silhouette (H, W) bool of one (18, 3) skeleton: torso polygon, thick limbs, head disc,
    all scaled by the character's standing height ``h`` (pixels; default: estimated from this skeleton);
    ``grow`` > 1 makes it looser."""
    out = np.zeros((height, width), np.uint8)
    p, v = person[:, :2], person[:, 2] > 0
    if v.sum() < 2:
        return out.astype(bool)
    h = track_heights(person[None, None])[0, 0] if h is None else float(h)
    S = 16

    def P(q):
        return int(round(float(q[0]) * S)), int(round(float(q[1]) * S))

    limb = max(2, int(round(0.14 * h * grow)))
    body = [J[n] for n in ("r_shoulder", "l_shoulder", "l_hip", "r_hip")]
    if v[body].all():
        cv2.fillPoly(out, [np.array([P(p[i]) for i in body], np.int32)], 1, cv2.LINE_8, 4)
        cv2.polylines(out, [np.array([P(p[i]) for i in body], np.int32)], True, 1, limb, cv2.LINE_8, 4)
    for a, b in LIMBS:
        if v[a] and v[b] and J["nose"] not in (a, b) and a < 14 and b < 14:
            cv2.line(out, P(p[a]), P(p[b]), 1, limb, cv2.LINE_8, 4)
    face = [J[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear") if v[J[n]]]
    if face:
        centre = p[face].mean(0)
        r = 0.14 * h * grow + 1
        if v[J["neck"]]:
            up = centre - p[J["neck"]]
            up = up / max(1e-6, np.linalg.norm(up))
            centre = centre + up * 0.043 * h
        cv2.circle(out, P(centre), int(round(r * S)), 1, -1, cv2.LINE_8, 4)
        if v[J["neck"]]:
            cv2.line(out, P(centre), P(p[J["neck"]]), 1, limb, cv2.LINE_8, 4)
    return out.astype(bool)


def skeleton_regions(keypoints: np.ndarray, width: int, height: int, grow: float = 1.0) -> np.ndarray:
    """(F, T, 18, 3) keypoints → (F, T, H, W) bool regions, overlaps given to the nearer track."""
    kp = check_keypoints(keypoints)
    F, T = kp.shape[:2]
    heights = track_heights(kp)
    out = np.zeros((F, T, height, width), bool)
    for f in range(F):
        taken = np.zeros((height, width), bool)
        for t in depth_order(kp[f])[::-1]:            # near → far: nearer tracks claim pixels first
            r = skeleton_region(kp[f, t], width, height, heights[f, t], grow) & ~taken
            out[f, t] = r
            taken |= r
    return out


def judged(regions: np.ndarray, min_pixels: int | None = None, min_share: float = MIN_SHARE) -> np.ndarray:
    """(F, T, H, W) regions → (F, T) bool: which track-frames show enough of the character to judge.

    A track-frame counts when its region has at least ``min_pixels`` pixels (default 48 at 128×128,
    scaled with the frame area) and at least ``min_share`` of that track's largest region in the clip."""
    regions = np.asarray(regions, bool)
    if regions.ndim != 4:
        raise ValueError(f"regions: expected (frames, tracks, height, width), got shape {regions.shape}")
    H, W = regions.shape[2:]
    if min_pixels is None:
        min_pixels = max(8, int(round(MIN_PIXELS_128 * H * W / 128 ** 2)))
    area = regions.sum((2, 3))
    return (area >= min_pixels) & (area >= min_share * np.maximum(area.max(0, keepdims=True), 1))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of a boolean mask's pixels (exclusive ends), or None when it is empty."""
    ys = np.flatnonzero(mask.any(1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(0))
    return int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1


def crop_region(image: np.ndarray, region: np.ndarray, size: int = 64, pad: float = 0.06,
                fill: int = FILL, native: bool = False) -> np.ndarray:
    """The region's pixels of ``image`` (H, W, 3) uint8, outside filled with grey, squared around the
    region's bounding box (``pad`` of its side added around) and resized to (size, size, 3) uint8.
    ``native``: never enlarge — a small region stays at its own pixel scale, centred (the style probe
    reads pixel-level texture: grain, outlines, which enlarging would smear). An empty region gives a
    grey crop."""
    if image.shape[:2] != region.shape:
        raise ValueError(f"region: shape {region.shape} does not match the image's {image.shape[:2]}")
    box = bbox(region)
    if box is None:
        return np.full((size, size, 3), fill, np.uint8)
    y0, y1, x0, x1 = box
    side = int(np.ceil(max(y1 - y0, x1 - x0) * (1 + 2 * pad))) + 1
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    canvas = np.full((side, side, 3), fill, np.uint8)
    sy0, sx0 = cy - side // 2, cx - side // 2
    ys0, xs0 = max(0, sy0), max(0, sx0)
    ys1, xs1 = min(image.shape[0], sy0 + side), min(image.shape[1], sx0 + side)
    patch = np.where(region[ys0:ys1, xs0:xs1, None], image[ys0:ys1, xs0:xs1], np.uint8(fill))
    canvas[ys0 - sy0:ys1 - sy0, xs0 - sx0:xs1 - sx0] = patch
    if native and side <= size:
        out = np.full((size, size, 3), fill, np.uint8)
        o = (size - side) // 2
        out[o:o + side, o:o + side] = canvas
        return out
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interp)


def crop_tracks(frames: np.ndarray, regions: np.ndarray, mask: np.ndarray, size: int = 64,
                native: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Crops of every judged track-frame: frames (F, H, W, 3), regions (F, T, H, W), mask (F, T) bool →
    (crops (K, size, size, 3) uint8, index (K, 2) of (frame, track))."""
    idx = np.argwhere(mask)
    crops = np.stack([crop_region(frames[f], regions[f, t], size, native=native) for f, t in idx]) if len(idx) else \
        np.zeros((0, size, size, 3), np.uint8)
    return crops, idx
