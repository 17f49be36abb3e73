"""The reference sheet: each identity slot's character cut out with its mask (cropped to the mask's bounding
box, aspect kept) and laid out left to right in slot order on one background canvas — a show's set, an
image or a flat colour. The ReferenceNet encodes the sheet once per generation; the trainer builds sheets
the same way (and also feeds natural multi-character frames with their masks, which need no sheet).

    image, masks = compose_sheet([(img0, mask0), (img1, mask1)], "#808080", (128, 128))
    image (H, W, 3) uint8, masks (S, H, W) bool — slot s's pixels, never overlapping

``ReferenceSheet`` is a named tuple (image, masks), so it unpacks as above and names its fields.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

import cv2
import numpy as np

NEUTRAL = (128, 128, 128)
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class ReferenceSheet(NamedTuple):
    image: np.ndarray                                  # (H, W, 3) uint8
    masks: np.ndarray                                  # (S, H, W) bool, slot order

    @property
    def n_slots(self) -> int:
        return int(self.masks.shape[0])


def check_cutout(image, mask, where: str = "character") -> tuple[np.ndarray, np.ndarray]:
    """Validate an (image, mask) pair: image (H, W, 3) uint8, mask (H, W) with at least one pixel."""
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{where}: image must be (height, width, 3) uint8 RGB, got {image.shape} {image.dtype}")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{where}: mask {mask.shape} does not match its image {image.shape[:2]}; "
                         "give a mask of the image's size")
    mask = mask > 127 if mask.dtype == np.uint8 else mask.astype(bool)
    if not mask.any():
        raise ValueError(f"{where}: mask is empty; mark the character's pixels")
    return image, mask


def crop_to_mask(image: np.ndarray, mask: np.ndarray, where: str = "character") -> tuple[np.ndarray, np.ndarray]:
    """Cut the character out: crop image and mask to the mask's bounding box."""
    image, mask = check_cutout(image, mask, where)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return image[y0:y1, x0:x1], mask[y0:y1, x0:x1]


def background_canvas(background, width: int, height: int) -> np.ndarray:
    """A (height, width, 3) uint8 canvas: None → neutral grey, "#rrggbb" or an (r, g, b) tuple → flat colour,
    an image array → resized to cover the canvas (centre crop, aspect kept)."""
    if background is None:
        return np.full((height, width, 3), NEUTRAL, np.uint8)
    if isinstance(background, str):
        if not _HEX.match(background):
            raise ValueError(f"background: {background!r} must look like \"#7f7f7f\"")
        return np.full((height, width, 3), [int(background[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)
    arr = np.asarray(background)
    if arr.shape == (3,):
        return np.full((height, width, 3), arr.astype(np.uint8), np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"background: expected an (H, W, 3) image, a colour or \"#rrggbb\", got shape {arr.shape}")
    h, w = arr.shape[:2]
    s = max(width / w, height / h)
    nw, nh = max(width, round(w * s)), max(height, round(h * s))
    big = cv2.resize(arr.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(big[y0:y0 + height, x0:x0 + width])


def _resize(image: np.ndarray, mask: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    shrink = w < image.shape[1]
    img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    m = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return img, m >= 0.5


def compose_sheet(cutouts: Sequence[tuple[np.ndarray, np.ndarray]], background=None,
                  size: tuple[int, int] | None = None, *, margin: float = 0.04,
                  fill_height: float = 0.9) -> ReferenceSheet:
    """Lay out characters left to right in slot order, each in an equal-width cell, feet on a common ground
    line near the bottom, scaled to ``fill_height`` of the canvas (less if its cell is too narrow).

    Args:
        cutouts: per slot, (image (h, w, 3) uint8, mask (h, w) bool) — a whole reference image with its mask
            or an already cropped cut-out; each is cropped to its mask first.
        background: see ``background_canvas``.
        size: (width, height) of the sheet; default: the background image's size.
    """
    if len(cutouts) == 0:
        raise ValueError("characters: none given; a reference sheet needs at least one character")
    if size is None:
        if not (isinstance(background, np.ndarray) and background.ndim == 3):
            raise ValueError("size: give the sheet's (width, height) unless the background is an image")
        size = (background.shape[1], background.shape[0])
    width, height = size
    crops = [crop_to_mask(img, m, f"characters[{i}]") for i, (img, m) in enumerate(cutouts)]
    canvas = background_canvas(background, width, height).copy()
    S = len(crops)
    masks = np.zeros((S, height, width), bool)
    cell = width / S
    ground = height - int(round(height * margin))
    for s, (img, m) in enumerate(crops):
        ch, cw = m.shape
        scale = min(cell * (1 - 2 * margin) / cw, height * fill_height / ch)
        w, h = max(1, int(round(cw * scale))), max(1, int(round(ch * scale)))
        rimg, rm = _resize(img, m, w, h)
        if not rm.any():
            raise ValueError(f"characters[{s}]: too small to place on a {width}×{height} sheet with {S} characters")
        x0 = int(round(cell * s + (cell - w) / 2))
        y0 = ground - h
        canvas[y0:y0 + h, x0:x0 + w][rm] = rimg[rm]
        masks[s, y0:y0 + h, x0:x0 + w] = rm
    return ReferenceSheet(canvas, masks)


def sheet_from_frame(image: np.ndarray, masks: np.ndarray) -> ReferenceSheet:
    """A natural multi-character frame used as the reference: (H, W, 3) uint8 and (S, H, W) slot masks."""
    image, masks = np.asarray(image), np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"reference_masks: expected (slots, height, width), got {masks.shape}")
    if masks.shape[0] == 0:
        raise ValueError("reference_masks: no characters; give one mask per identity slot")
    checked = [check_cutout(image, m, f"reference_masks[{i}]")[1] for i, m in enumerate(masks)]
    return ReferenceSheet(image, np.stack(checked))


__all__ = ["ReferenceSheet", "compose_sheet", "sheet_from_frame", "crop_to_mask", "check_cutout",
           "background_canvas", "NEUTRAL"]
