"""The guidance the generator reads, made from poses, masks and the slot→track assignment:

* the IEG video (``pipelines.pose.ieg.render_ieg``: each track in the colour of the slot performing it, or
  OpenPose colours for the plain-skeleton mode),
* the reference guidance (``tint_masks``: slot s's reference mask in slot s's colour),
* the appearance prior (``pipelines.pose.prior``: each slot's cut-out on the body of its track, on the
  reference's empty set; the set alone in the plain-skeleton mode, which carries no identity),
* the End2End-M regions: where each slot's character should be in each frame — its track's skeleton,
  torso filled and dilated.

The assignment is inverted only by ``pipelines.scene.track_slots``; colours come only from the palette.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..pose.ieg import default_thickness, draw_skeleton, render_ieg, tint_masks
from ..pose.openpose import J, check_keypoints
from ..pose.prior import appearance_prior
from ..scene import track_slots

_TORSO = [J["r_shoulder"], J["l_shoulder"], J["l_hip"], J["r_hip"]]


def target_guidance(keypoints: np.ndarray, width: int, height: int, assignment: Sequence[int],
                    plain: bool = False) -> np.ndarray:
    """IEG video (F, H, W, 3) uint8 for keypoints (F, T, 18, 3); tracks nobody performs are not drawn."""
    kp = check_keypoints(keypoints)
    return render_ieg(kp, width, height, slots=track_slots(list(assignment), kp.shape[1]), plain=plain)


def appearance_prior_video(reference: np.ndarray, masks: np.ndarray, keypoints: np.ndarray, width: int, height: int,
                           assignment: Sequence[int], plain: bool = False,
                           reference_keypoints: np.ndarray | None = None) -> np.ndarray:
    """(F, H, W, 4) uint8 RGBA: slot s's cut-out from the reference placed on the track slot s performs, on
    the reference's empty set (the set alone in the plain-skeleton mode, which carries no identity).
    ``reference_keypoints`` (S, 18, 3): each slot's skeleton in the reference, when known (``appearance_prior``)."""
    kp = check_keypoints(keypoints)
    slots = [-1] * kp.shape[1] if plain else track_slots(list(assignment), kp.shape[1])
    return appearance_prior(reference, masks, kp, slots, width, height, reference_keypoints=reference_keypoints)


def reference_guidance(masks: np.ndarray) -> np.ndarray:
    """Slot-tinted reference masks (H, W, 3) uint8 from (S, H, W) masks in slot order."""
    return tint_masks(masks)


def slot_regions(keypoints: np.ndarray, width: int, height: int, assignment: Sequence[int],
                 radius: int | None = None) -> np.ndarray:
    """(F, S, H, W) bool: slot s's region in every frame — the skeleton of the track slot s performs, drawn
    thick with the torso quadrilateral filled, dilated by ``radius`` pixels (default 5 % of the short side)."""
    kp = check_keypoints(keypoints)
    F_, T = kp.shape[:2]
    radius = radius if radius is not None else max(2, int(round(min(width, height) * 0.05)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    thickness = default_thickness(width, height)
    out = np.zeros((F_, len(assignment), height, width), bool)
    canvas = np.zeros((height, width, 3), np.uint8)
    for f in range(F_):
        for s, track in enumerate(assignment):
            if not 0 <= track < T:
                raise ValueError(f"assignment: track {track} does not exist; the motion has tracks 0..{T - 1}")
            person = kp[f, track]
            canvas[:] = 0
            draw_skeleton(canvas, person, (255, 255, 255), thickness)
            torso = person[_TORSO]
            if (torso[:, 2] > 0).all():
                cv2.fillPoly(canvas, [np.round(torso[:, :2]).astype(np.int32)], (255, 255, 255))
            out[f, s] = cv2.dilate(canvas[..., 0], kernel) > 0
    return out


__all__ = ["appearance_prior_video", "target_guidance", "reference_guidance", "slot_regions"]
