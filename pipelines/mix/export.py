"""Writing clips: mp4 (H.264 through imageio's ffmpeg), GIF, and the side-by-side view
(references | guidance | output) that shows what the model was told next to what it made."""

from __future__ import annotations

from pathlib import Path

import cv2
import imageio
import imageio.v3 as iio
import numpy as np

HEADER = 16          # label strip above each panel (16 keeps video sides multiples of 16)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames: expected (frames, height, width, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


def export_to_video(frames: np.ndarray, path: str | Path, fps: float = 8.0) -> Path:
    """H.264 mp4 (yuv420p, plays everywhere); sides must be even, which multiples of 16 are."""
    frames = _check_frames(frames)
    path = Path(path)
    imageio.mimwrite(path, list(frames), fps=fps, codec="libx264", quality=8, pixelformat="yuv420p",
                     macro_block_size=16)
    return path


def export_to_gif(frames: np.ndarray, path: str | Path, fps: float = 8.0) -> Path:
    frames = _check_frames(frames)
    path = Path(path)
    iio.imwrite(path, frames, duration=int(round(1000 / fps)), loop=0)
    return path


def _panel(image: np.ndarray, label: str) -> np.ndarray:
    h, w = image.shape[:2]
    out = np.full((h + HEADER, w, 3), 24, np.uint8)
    out[HEADER:] = image
    cv2.putText(out, label, (3, HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (235, 235, 235), 1, cv2.LINE_AA)
    return out


def side_by_side(reference_sheet: np.ndarray, reference_guidance: np.ndarray, guidance_frames: np.ndarray,
                 frames: np.ndarray, prior_frames: np.ndarray | None = None) -> np.ndarray:
    """(F, H + 16, 4·W, 3) uint8: reference sheet | tinted reference | IEG frame | output frame, labelled
    (5·W with the appearance prior's RGB, ``prior_frames`` (F, H, W, 3 or 4), as a panel before the output).
    The still panels repeat on every frame; all panels are brought to the output's height."""
    frames, guidance_frames = _check_frames(frames), _check_frames(guidance_frames)
    if len(guidance_frames) != len(frames):
        raise ValueError(f"guidance_frames: {len(guidance_frames)} frames for a {len(frames)}-frame clip")
    if prior_frames is not None:
        prior_frames = _check_frames(np.asarray(prior_frames)[..., :3])
        if len(prior_frames) != len(frames):
            raise ValueError(f"prior_frames: {len(prior_frames)} frames for a {len(frames)}-frame clip")
    h = frames.shape[1]

    def fit(img):
        s = h / img.shape[0]
        return cv2.resize(img, (max(1, round(img.shape[1] * s)), h), interpolation=cv2.INTER_AREA) if s != 1 else img

    still = np.concatenate([_panel(fit(reference_sheet), "references"), _panel(fit(reference_guidance), "slots")], 1)
    priors = prior_frames if prior_frames is not None else [None] * len(frames)
    return np.stack([np.concatenate([still, _panel(fit(g), "guidance")]
                                    + ([_panel(fit(p), "prior")] if p is not None else []) + [_panel(f, "output")], 1)
                     for g, p, f in zip(guidance_frames, priors, frames)])


__all__ = ["export_to_video", "export_to_gif", "side_by_side"]
