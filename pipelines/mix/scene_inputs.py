"""From a validated ``Scene`` to the arrays the generator needs: each slot's reference image and mask (library
characters through ``Library``, user characters from their files), the motion's keypoints on the output
canvas (template, keypoints file, or a registered text-to-motion model), frame count adjusted, the
background canvas, and the sampler settings.

Text motions (``{"text": ...}``) need a text-to-motion model; until one is registered on the pipeline
(``MixPipeline.motion_model``), they raise an error naming what is missing. A motion model is any object
with

    generate_keypoints(text: str, *, prompt: str, names: list[str], num_frames: int, width: int,
                       height: int, generator: torch.Generator | None) -> np.ndarray  # (F, len(names), 18, 3)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..library import Library
from ..pose.openpose import check_keypoints, rescale
from ..pose.templates import load_motion_file, load_template
from ..scene import Scene
from .sheet import background_canvas


@dataclass
class SceneInputs:
    cutouts: list[tuple[np.ndarray, np.ndarray]]   # per slot: (image (h, w, 3) uint8, mask (h, w) bool)
    names: list[str]
    styles: list[str]
    keypoints: np.ndarray                          # (frames, tracks, 18, 3) in pixels of width × height
    assignment: list[int]
    background: np.ndarray | None                  # (height, width, 3) uint8, None = neutral
    width: int
    height: int
    fps: float
    prompt: str
    sampler: dict
    seed: int
    warnings: list[str] = field(default_factory=list)


def _load_user_character(scene: Scene, i: int, c: dict) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(scene.path(c["image"])).convert("RGB"))
    mask = np.asarray(Image.open(scene.path(c["mask"])).convert("L")) > 127
    if mask.shape != image.shape[:2]:
        raise ValueError(f"characters[{i}].mask: {mask.shape[1]}×{mask.shape[0]} does not match the image "
                         f"({image.shape[1]}×{image.shape[0]}); save the mask at the image's size")
    if not mask.any():
        raise ValueError(f"characters[{i}].mask: the mask is empty; mark the character's pixels (white)")
    return image, mask


def _background(scene: Scene) -> np.ndarray | None:
    bg = scene.background
    if bg is None:
        return None
    if "show" in bg:
        from ..world.shows import background
        return np.array(background(bg["show"], bg.get("variant", 0), scene.width, scene.height))
    if "image" in bg:
        return background_canvas(np.asarray(Image.open(scene.path(bg["image"])).convert("RGB")), scene.width,
                                 scene.height)
    return background_canvas(bg["color"], scene.width, scene.height)


def fit_frames(keypoints: np.ndarray, frames: int, what: str = "the motion") -> tuple[np.ndarray, list[str]]:
    """Trim a longer motion; hold the last pose of a shorter one (with a warning)."""
    n = keypoints.shape[0]
    if n >= frames:
        return keypoints[:frames], []
    msg = (f"{what} has {n} frames but {frames} were asked for; holding the last pose for the remaining "
           f"{frames - n} frames")
    warnings.warn(msg, stacklevel=3)
    return np.concatenate([keypoints, np.repeat(keypoints[-1:], frames - n, 0)]), [msg]


def resolve_scene(scene: Scene, library: Library | None = None, motion_model=None, generator=None) -> SceneInputs:
    """See the module docstring. Raises ``ValueError`` naming the scene field for what validation could not
    see (mask sizes, a text motion without a motion model)."""
    library = library if library is not None else Library()
    cutouts, names, styles = [], [], []
    for i, c in enumerate(scene.characters):
        if "id" in c:
            lc = library.get(c["id"], f"characters[{i}].id")
            cutouts.append(lc.load_reference())
            names.append(lc.name)
            styles.append(lc.style)
        else:
            cutouts.append(_load_user_character(scene, i, c))
            names.append(c["name"])
            styles.append(c["style"])

    motion = scene.motion
    if "template" in motion:
        m = load_template(motion["template"])
        kp, what = rescale(m.keypoints, (m.width, m.height), (scene.width, scene.height)), f"motion {m.name!r}"
    elif "keypoints" in motion:
        m = load_motion_file(scene.path(motion["keypoints"]))
        kp, what = rescale(m.keypoints, (m.width, m.height), (scene.width, scene.height)), f"motion file {motion['keypoints']!r}"
    else:
        if motion_model is None:
            raise ValueError("motion.text: this model has no text-to-motion model (motion_model) registered; give "
                             "the scene a {\"template\": name} or {\"keypoints\": file} motion instead")
        kp = motion_model.generate_keypoints(motion["text"], prompt=scene.prompt, names=names,
                                             num_frames=scene.frames, width=scene.width, height=scene.height,
                                             generator=generator)
        kp, what = check_keypoints(kp, "motion_model output"), "the generated motion"
    kp, notes = fit_frames(np.asarray(kp, np.float32), scene.frames, what)
    return SceneInputs(cutouts, names, styles, kp, list(scene.assignment), _background(scene), scene.width,
                       scene.height, float(scene.fps), scene.prompt, dict(scene.sampler), int(scene.seed), notes)


__all__ = ["SceneInputs", "resolve_scene", "fit_frames"]
