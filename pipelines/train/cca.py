"""Cross-Character Augmentation (MIMIX): characters cut out of their own shows' footage and composited into
another show's set, with the caption tagged ``[scene-style: <the set's style>]`` — so the generator sees a
live-action character on a cartoon set (and the reverse) keep its own style, and learns that the tag speaks
about the set, not the characters. This is the one place that builds mixed-style training samples.

Two layers:

* **Compositing any footage.** ``Cutout`` = a character's frames (a video, or one image) + its masks (+ its
  keypoints); ``place`` scales/moves it onto a target canvas; ``composite`` pastes cut-outs far → near on a
  background (an image or a video) and returns the frames, each character's *visible* mask (exactly the
  pixels that came from it), full silhouettes and keypoints with occlusion. Masks come from ground truth or
  from ``segment_cutouts``, which clicks ``pipelines.segment.Segmenter`` (SAM2 or the offline fallback) on
  one frame and propagates through the video.
* **The world's CCA samples.** ``cca_plan`` casts characters from ≥ 2 home shows (at least one of the other
  style than the set) on a set of either style and plans their motion together; ``render_cca`` renders
  each character *alone on its own show* (its native look, film grain and outline included), cuts it out
  (world masks, or the Segmenter's) and composites everyone onto the target set.

``WorldSampler`` draws a CCA sample with probability ``SampleConfig.mix`` (default 0.1, MIMIX's best ratio).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import cv2
import numpy as np

from ..cce.prompt import with_scene_style
from ..pose.ieg import depth_order
from ..world.characters import NAMED, CharacterSpec, sample_character
from ..world.shows import SHOWS, background, shows_of_style
from ..world.world import Clip, Plan, World, keypoint_visibility

STYLES = ("cartoon", "live-action")


@dataclass
class Cutout:
    """One character's footage: ``frames`` (F, H, W, 3) uint8 (F = 1 for a still image), ``masks`` (F, H, W)
    bool, optional ``keypoints`` (F, 18, 3) in the same pixels."""
    frames: np.ndarray
    masks: np.ndarray
    keypoints: np.ndarray | None = None
    name: str = ""
    style: str = ""
    show: str = ""

    def __post_init__(self):
        f, m = np.asarray(self.frames), np.asarray(self.masks)
        if f.ndim == 3:
            f = f[None]
        if m.ndim == 2:
            m = m[None]
        if f.ndim != 4 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frames: expected (frames, height, width, 3) uint8, got {f.shape} {f.dtype}")
        if m.shape != f.shape[:3]:
            raise ValueError(f"masks: {m.shape} do not match the frames {f.shape[:3]}; give one (H, W) mask per frame")
        if not m.any():
            raise ValueError(f"masks: {self.name or 'the character'} has no pixels in any frame; mark it first")
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, np.float32)
            if kp.shape != (f.shape[0], 18, 3):
                raise ValueError(f"keypoints: expected ({f.shape[0]}, 18, 3), got {kp.shape}")
            self.keypoints = kp
        self.frames, self.masks = f, m.astype(bool)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass
class Composite:
    frames: np.ndarray           # (F, H, W, 3) uint8
    masks: np.ndarray            # (F, N, H, W) bool — visible pixels, exactly where each character was pasted
    amodal: np.ndarray           # (F, N, H, W) bool — full silhouettes before occlusion
    keypoints: np.ndarray | None  # (F, N, 18, 3), confidence 0 where occluded / off-frame (None without input)
    order: np.ndarray            # (N,) far → near


def place(cutout: Cutout, size: tuple[int, int], *, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)
          ) -> Cutout:
    """Move a cut-out onto a (width, height) canvas: pixel (x, y) goes to (scale·x + dx, scale·y + dy).
    Masks are warped with nearest neighbours so pasted pixels and masks stay in register."""
    if not scale > 0:
        raise ValueError(f"scale: {scale!r} must be positive")
    W, H = size
    M = np.array([[scale, 0, offset[0]], [0, scale, offset[1]]], np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    frames = np.stack([cv2.warpAffine(f, M, (W, H), flags=interp, borderMode=cv2.BORDER_REPLICATE)
                       for f in cutout.frames])
    masks = np.stack([cv2.warpAffine(m.view(np.uint8), M, (W, H), flags=cv2.INTER_NEAREST) > 0
                      for m in cutout.masks])
    kp = None
    if cutout.keypoints is not None:
        kp = cutout.keypoints.copy()
        kp[..., 0] = kp[..., 0] * scale + offset[0]
        kp[..., 1] = kp[..., 1] * scale + offset[1]
    if not masks.any():
        raise ValueError(f"offset/scale: {cutout.name or 'the character'} lands outside the {W}×{H} canvas")
    return replace(cutout, frames=frames, masks=masks, keypoints=kp)


def _background_frames(bg: np.ndarray, n: int) -> np.ndarray:
    bg = np.asarray(bg)
    if bg.dtype != np.uint8 or bg.shape[-1] != 3 or bg.ndim not in (3, 4):
        raise ValueError(f"background: expected an (H, W, 3) image or (F, H, W, 3) video, uint8; got {bg.shape} "
                         f"{bg.dtype}")
    if bg.ndim == 3:
        return np.repeat(bg[None], n, 0)
    if bg.shape[0] != n:
        raise ValueError(f"background: a {bg.shape[0]}-frame video for {n}-frame characters; give as many frames")
    return bg.copy()


def composite(cutouts: Sequence[Cutout], background: np.ndarray, order: Sequence[int] | None = None) -> Composite:
    """Paste ``cutouts`` (already on the background's canvas — see ``place``) far → near.

    ``order`` lists cut-out indices far → near; by default it is judged from the keypoints' feet (lower on
    screen = nearer) when every cut-out has keypoints, else the list order. Still images (1 frame) are held
    over a video background or other characters' videos."""
    if not cutouts:
        raise ValueError("cutouts: give at least one character to composite")
    counts = {c.n_frames for c in cutouts} - {1}
    bg = np.asarray(background)
    if bg.ndim == 4:
        counts.add(bg.shape[0])
    if len(counts) > 1:
        raise ValueError(f"cutouts: frame counts {sorted(counts)} differ; cut every video to the same length")
    F = counts.pop() if counts else 1
    frames = _background_frames(bg, F)
    H, W = frames.shape[1:3]
    for i, c in enumerate(cutouts):
        if c.frames.shape[1:3] != (H, W):
            raise ValueError(f"cutouts[{i}]: {c.frames.shape[2]}×{c.frames.shape[1]} is not the background's {W}×{H}; "
                             "place() it onto the canvas first")
    N = len(cutouts)
    have_kp = all(c.keypoints is not None for c in cutouts)

    def per_frame(a):                                   # hold still images over F frames
        return np.repeat(a, F, 0) if a.shape[0] == 1 and F > 1 else a

    src = [per_frame(c.frames) for c in cutouts]
    amodal = np.stack([per_frame(c.masks) for c in cutouts], 1)               # (F, N, H, W)
    kp = np.stack([per_frame(c.keypoints) for c in cutouts], 1) if have_kp else None
    if order is None:
        order = depth_order(np.median(kp, axis=0)) if have_kp else np.arange(N)
    order = np.asarray(order, int)
    if sorted(order.tolist()) != list(range(N)):
        raise ValueError(f"order: {order.tolist()} must list each of the {N} cut-outs once, far to near")
    for k in order:                                     # nearer characters paint over farther ones
        m = amodal[:, k]
        frames[m] = src[k][m]
    masks = np.zeros_like(amodal)
    cover = np.zeros((F, H, W), bool)
    for k in order[::-1]:                               # near → far: what is left of each silhouette
        masks[:, k] = amodal[:, k] & ~cover
        cover |= amodal[:, k]
    if kp is not None:
        kp = kp.copy()
        kp[..., 2] *= keypoint_visibility(kp, amodal, order)
    return Composite(frames, masks, amodal, kp, order)


# ---------------------------------------------------------------------------------------------------------
# masks from the Segmenter
# ---------------------------------------------------------------------------------------------------------
def interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The (x, y) pixel of ``mask`` farthest from its border: the click a person would make."""
    d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


def segment_cutouts(segmenter, frames: np.ndarray, points: Sequence[tuple[float, float]],
                    frame_index: int = 0) -> np.ndarray:
    """Masks of clicked characters through an image or a video with a ``pipelines.segment.Segmenter``:
    one positive click per character on ``frames[frame_index]``, then ``propagate`` through the video.

    Args:
        frames: (F, H, W, 3) uint8, or one (H, W, 3) image.
        points: one (x, y) click per character on that frame.
    Returns:
        (F, N, H, W) bool (F = 1 for an image).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if not 0 <= frame_index < len(frames):
        raise ValueError(f"frame_index: {frame_index} is outside the video's {len(frames)} frames")
    if not points:
        raise ValueError("points: give one (x, y) click per character")
    segmenter.set_image(frames[frame_index])
    first = []
    for x, y in points:
        masks, scores, _ = segmenter.predict(points=[(x, y)], labels=[1], multimask=False)
        first.append(np.asarray(masks[0], bool))
    first = np.stack(first)
    if len(frames) == 1:
        return first[None]
    return np.asarray(segmenter.propagate(frames, frame_index, first), bool)


# ---------------------------------------------------------------------------------------------------------
# the world's CCA samples
# ---------------------------------------------------------------------------------------------------------
def home_show(spec: CharacterSpec, rng: np.random.Generator) -> str:
    """The show a character comes from (procedural characters: a show of their style)."""
    return spec.show or str(rng.choice(shows_of_style(spec.style)))


def cca_cast(world: World, rng: np.random.Generator, n: int, target_show: str) -> list[CharacterSpec]:
    """``n`` distinct characters for a CCA clip on ``target_show``: at least one of the other style than
    the set, and (n ≥ 2) from at least two home shows. Named characters with ``world.named_fraction``."""
    set_style = SHOWS[target_show].style
    other = STYLES[1 - STYLES.index(set_style)]
    styles = [other] + [STYLES[int(rng.integers(2))] for _ in range(n - 1)]
    rng.shuffle(styles)
    pool = {s: [c for c in NAMED if c.style == s] for s in STYLES}
    for s in STYLES:
        rng.shuffle(pool[s])
    out: list[CharacterSpec] = []
    for st in styles:
        if pool[st] and rng.random() < world.named_fraction:
            out.append(pool[st].pop())
        else:
            out.append(sample_character(rng, st, show=str(rng.choice(shows_of_style(st))), id_prefix="cca"))
    if n >= 2 and len({c.show for c in out}) < 2:
        # every character from one show: move the last (procedural) one to the other show of its style, or
        # replace it with a procedural character of another show
        last = out[-1]
        shows = [s for s in shows_of_style(last.style) if s != last.show]
        out[-1] = sample_character(rng, last.style, show=shows[0], id_prefix="cca")
    return out


def cca_plan(world: World, index: int, n_characters: int | tuple[int, int] = (1, 5), *,
             show: str | None = None, motion: str | None = None, frames: int | None = None) -> Plan:
    """Plan of CCA clip ``index``: a cross-show cast (``cca_cast``) on a set of either style (or ``show``),
    moving together in one motion; the caption carries ``[scene-style: <the set's style>]``."""
    rng = world.rng(index, stream=9)
    n = n_characters if isinstance(n_characters, int) else int(rng.integers(n_characters[0], n_characters[1] + 1))
    show = show or str(rng.choice(list(SHOWS)))
    specs = cca_cast(world, rng, n, show)
    plan = world.plan(index, characters=specs, show=show, motion=motion, frames=frames)
    plan.caption = with_scene_style(plan.caption, SHOWS[show].style)
    plan.info = {**plan.info, "cca": True, "homes": [c.show for c in specs]}
    return plan


def render_cca(world: World, plan: Plan, frames: Sequence[int] | None = None, *, segmenter=None) -> Clip:
    """Render a CCA plan: every character alone on its home show (same poses, same frames), cut out with
    its world mask (or the ``segmenter``'s, clicked on its first visible frame and propagated), composited
    far → near onto the plan's set. Returns a ``Clip`` like ``World.render_plan`` (masks are the visible
    pasted pixels; ``info["cca"]`` is True)."""
    homes = plan.info.get("homes") or [home_show(c, world.rng(plan.grain_seed, stream=k))
                                       for k, c in enumerate(plan.specs)]
    ids = list(range(len(plan.poses[0]["x"]))) if frames is None else list(frames)
    cutouts = []
    for k, (spec, home) in enumerate(zip(plan.specs, homes)):
        poses = [{key: v[ids] for key, v in plan.poses[k].items()}]
        solo = world.render([spec], poses, home, plan.variant, plan.size, motion=plan.motion, fps=plan.fps,
                            grain_seed=plan.grain_seed + 7919 * (k + 1), frame_ids=ids)
        masks = solo.masks[:, 0]
        if segmenter is not None:
            visible = np.flatnonzero(masks.reshape(len(ids), -1).any(1))
            f0 = int(visible[0]) if len(visible) else 0
            masks = segment_cutouts(segmenter, solo.frames, [interior_point(masks[f0])], frame_index=f0)[:, 0]
            if not masks.any():
                masks = solo.masks[:, 0]       # the segmenter lost the character everywhere: keep the world mask
        cutouts.append(Cutout(solo.frames, masks, solo.keypoints[:, 0], spec.name, spec.style, home))
    order = np.argsort([float(np.mean(p["ground"])) for p in plan.poses], kind="stable")       # far → near
    bg = background(plan.show, plan.variant, plan.size, plan.size)
    comp = composite(cutouts, np.ascontiguousarray(bg), order=order)
    return Clip(comp.frames, comp.masks, comp.keypoints, list(plan.specs), plan.show, plan.variant, plan.motion, plan.caption,
                plan.fps, order, comp.amodal, {**plan.info, "cca": True})


__all__ = ["Cutout", "Composite", "place", "composite", "segment_cutouts", "interior_point", "home_show",
           "cca_cast", "cca_plan", "render_cca"]
