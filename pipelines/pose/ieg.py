"""Identity-Embedded Guidance (IEG): pose skeletons and reference masks drawn in identity-slot colours.

* ``render_ieg`` — the target guidance video: each motion track's OpenPose-18 skeleton in the colour of
  the identity slot that performs it, drawn far-to-near so nearer characters cover farther ones.
  Limbs of one skeleton differ in brightness (right side full colour, left side darker, head lighter)
  so a model can still tell limbs apart while the hue carries identity.
* ``tint_masks`` — the reference guidance: each reference character's mask filled with its slot colour
  (works for cartoon characters, where skeleton detection fails).

Which slot performs which track is the scene's assignment (``pipelines.scene.track_slots``); this module
only draws what it is told.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .openpose import J, LIMBS, check_keypoints
from .palette import shade, slot_color

_LEFT = {J[n] for n in ("l_shoulder", "l_elbow", "l_wrist", "l_hip", "l_knee", "l_ankle", "l_eye", "l_ear")}
_HEAD = {J[n] for n in ("nose", "r_eye", "l_eye", "r_ear", "l_ear")}


def _limb_factor(a: int, b: int) -> float:
    if a in _HEAD or b in _HEAD:
        return 1.35
    if a in _LEFT or b in _LEFT:
        return 0.6
    return 1.0


def depth_order(kp_frame: np.ndarray) -> np.ndarray:
    """Tracks of one frame (T, 18, 3) sorted far → near, judging depth by the lowest visible ankle (or any
    joint): on a ground plane seen from a standing camera, lower on screen means nearer."""
    y = np.where(kp_frame[..., 2] > 0, kp_frame[..., 1], -np.inf)
    feet = y[:, [J["r_ankle"], J["l_ankle"]]].max(1)
    anyj = y.max(1)
    key = np.where(np.isfinite(feet), feet, anyj)
    return np.argsort(key, kind="stable")


def default_thickness(width: int, height: int) -> int:
    return max(2, int(round(min(width, height) / 42)))


def draw_skeleton(canvas: np.ndarray, person: np.ndarray, color: tuple[int, int, int], thickness: int) -> None:
    """Draw one (18, 3) skeleton onto ``canvas`` (H, W, 3) uint8 in place."""
    pts = person[:, :2]
    vis = person[:, 2] > 0
    for a, b in LIMBS:
        if vis[a] and vis[b]:
            pa = tuple(int(round(v)) for v in pts[a])
            pb = tuple(int(round(v)) for v in pts[b])
            cv2.line(canvas, pa, pb, shade(color, _limb_factor(a, b)), thickness, cv2.LINE_AA)
    r = max(1, thickness // 2 + 1)
    for j in np.flatnonzero(vis):
        cv2.circle(canvas, tuple(int(round(v)) for v in pts[j]), r, shade(color, 1.2), -1, cv2.LINE_AA)


# OpenPose's own limb colours: the plain, identity-free skeleton of the "plain skeleton" ablation
OPENPOSE_LIMB_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170),
)


def draw_plain_skeleton(canvas: np.ndarray, person: np.ndarray, thickness: int) -> None:
    """Draw one (18, 3) skeleton in OpenPose's per-limb colours (no identity information)."""
    pts, vis = person[:, :2], person[:, 2] > 0
    for (a, b), color in zip(LIMBS, OPENPOSE_LIMB_COLORS):
        if vis[a] and vis[b]:
            cv2.line(canvas, tuple(int(round(v)) for v in pts[a]), tuple(int(round(v)) for v in pts[b]),
                     color, thickness, cv2.LINE_AA)


def render_ieg(keypoints: np.ndarray, width: int, height: int, *, slots: Sequence[int] | None = None,
               order: np.ndarray | None = None, thickness: int | None = None, plain: bool = False) -> np.ndarray:
    """Render the IEG video.

    Args:
        keypoints: (F, T, 18, 3) in pixels of a ``width``×``height`` canvas.
        slots: palette slot of each track (length T), -1 for a track nobody performs (not drawn);
            default: track t uses slot t.
        order: optional (F, T) far→near track order per frame (the world knows it exactly); default
            ``depth_order``.
        plain: draw every skeleton in OpenPose's per-limb colours instead (no identity — the "plain
            skeleton" baseline); ``slots`` then only decides which tracks are drawn (slot -1 = skip).
    Returns:
        (F, height, width, 3) uint8, black where no skeleton is.
    """
    kp = check_keypoints(keypoints)
    n_frames, n_tracks = kp.shape[:2]
    slots = list(range(n_tracks)) if slots is None else list(slots)
    if len(slots) != n_tracks:
        raise ValueError(f"slots: got {len(slots)} entries for {n_tracks} tracks")
    colors = [slot_color(s) if s >= 0 else None for s in slots]
    thickness = thickness or default_thickness(width, height)
    out = np.zeros((n_frames, height, width, 3), np.uint8)
    for f in range(n_frames):
        for t in (order[f] if order is not None else depth_order(kp[f])):
            if colors[t] is None:
                continue                    # a track nobody performs
            if plain:
                draw_plain_skeleton(out[f], kp[f, t], thickness)
            else:
                draw_skeleton(out[f], kp[f, t], colors[t], thickness)
    return out


def tint_masks(masks: np.ndarray, slots: Sequence[int] | None = None) -> np.ndarray:
    """Reference IEG: (S, H, W) boolean masks in slot order → (H, W, 3) uint8, each mask in its slot colour
    (later slots drawn over earlier ones where masks overlap), black elsewhere."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks: expected (slots, height, width), got {masks.shape}")
    slots = list(range(len(masks))) if slots is None else list(slots)
    if len(slots) != len(masks):
        raise ValueError(f"slots: got {len(slots)} entries for {len(masks)} masks")
    out = np.zeros(masks.shape[1:] + (3,), np.uint8)
    for m, s in zip(masks, slots):
        out[m.astype(bool)] = slot_color(s)
    return out
