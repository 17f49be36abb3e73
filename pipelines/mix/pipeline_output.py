"""The output of ``MixPipeline``: the clip and everything that guided it, so a user (or the IC evaluator)
can see what the model was told."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.utils import BaseOutput


@dataclass
class MixPipelineOutput(BaseOutput):
    r"""
    Args:
        frames (`np.ndarray` or `torch.Tensor`):
            The clip: (F, H, W, 3) uint8 for ``output_type="np"``, (F, 3, H, W) float in [0, 1] for ``"pt"``,
            the final latents (1, C, F, h, w) for ``"latent"``.
        guidance_frames (`np.ndarray`): the IEG video used, (F, H, W, 3) uint8.
        reference_sheet (`np.ndarray`): the reference the ReferenceNet encoded, (H, W, 3) uint8.
        reference_guidance (`np.ndarray`): the slot-tinted reference masks, (H, W, 3) uint8.
        reference_masks (`np.ndarray`): (S, H, W) bool, each slot's pixels on the reference sheet.
        assignment (`list[int]`): slot i performs motion track ``assignment[i]``.
        fps (`float`): frames per second the clip is meant to play at.
        warnings (`list[str]`): what was adjusted (e.g. a short motion held on its last pose).
        appearance_prior (`np.ndarray` or None): the RGBA appearance prior the pose guider read, (F, H, W, 4)
            uint8 (``pipelines.pose.prior``); None for a model that does not read one.
    """

    frames: np.ndarray | torch.Tensor
    guidance_frames: np.ndarray
    reference_sheet: np.ndarray
    reference_guidance: np.ndarray
    reference_masks: np.ndarray
    assignment: list[int] = field(default_factory=list)
    fps: float = 8.0
    warnings: list[str] = field(default_factory=list)
    appearance_prior: np.ndarray | None = None
