"""``World``: samples and renders clips of the embedded shows, with exact ground truth.

    world = World(seed=0)
    clip = world.clip(7)                                  # clip number 7 of this world: deterministic
    clip = world.clip(7, n_characters=3, motion="swap")
    clip.frames (F, H, W, 3) uint8, clip.masks (F, N, H, W) bool (visible, never overlapping),
    clip.keypoints (F, N, 18, 3) (x, y true even when hidden; confidence 0 = occluded or off-frame),
    clip.swap_pairs, clip.caption, clip.characters, clip.background …

Track k of a clip is character k. Depth is a lane per character (constant within a clip), so the
far-to-near order is fixed and crossing characters occlude each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..pose.openpose import J
from .body import forward_kinematics, rest_pose
from .characters import NAMED, NAMED_BY_ID, CharacterSpec, sample_character
from .motions import INTERACTIONS, MOTIONS, Layout, caption
from .render import Painter, grain_bank
from .shows import SHOWS, VARIANTS, background, shows_of_style


@dataclass
class Plan:
    """A clip before rendering: who, where, which motion (poses for every frame), caption."""
    specs: list[CharacterSpec]
    poses: list[dict]
    show: str
    variant: int
    size: int
    motion: str
    fps: float
    caption: str
    info: dict
    grain_seed: int

    def keypoints(self) -> np.ndarray:
        """(F, N, 18, 3) keypoints of every frame, all marked visible (no occlusion test without pixels)."""
        return np.stack([forward_kinematics(s, p)["keypoints"] for s, p in zip(self.specs, self.poses)], 1)

    def positions(self) -> np.ndarray:
        """(F, N) hip-centre x of every character."""
        return np.stack([p["x"] for p in self.poses], 1)


@dataclass
class Clip:
    frames: np.ndarray                 # (F, H, W, 3) uint8
    masks: np.ndarray                  # (F, N, H, W) bool, visible pixels of each character
    keypoints: np.ndarray              # (F, N, 18, 3) float32
    characters: list[CharacterSpec]
    show: str                          # the set (background) the clip is filmed on
    variant: int
    motion: str
    caption: str
    fps: float
    order: np.ndarray                  # (N,) track indices far → near
    amodal: np.ndarray                 # (F, N, H, W) bool, full silhouettes (before occlusion)
    info: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def n_characters(self) -> int:
        return len(self.characters)

    @property
    def scene_style(self) -> str:
        return SHOWS[self.show].style

    @property
    def positions(self) -> np.ndarray:
        """(F, N) hip-centre x of every character (true position, even when hidden)."""
        kp = self.keypoints
        return (kp[..., J["r_hip"], 0] + kp[..., J["l_hip"], 0]) / 2

    @property
    def swap_pairs(self) -> list[tuple[int, int]]:
        """Frame pairs (i < j) whose left-to-right order of characters differs."""
        orders = [tuple(np.argsort(x, kind="stable")) for x in self.positions]
        F = len(orders)
        return [(i, j) for i in range(F) for j in range(i + 1, F) if orders[i] != orders[j]]

    def metadata(self) -> dict:
        return {
            "caption": self.caption, "motion": self.motion, "fps": self.fps,
            "frames": self.n_frames, "height": int(self.frames.shape[1]), "width": int(self.frames.shape[2]),
            "characters": [{"id": c.id, "name": c.name, "show": c.show, "style": c.style,
                            "named": c.id in NAMED_BY_ID} for c in self.characters],
            "background": {"show": self.show, "variant": self.variant, "style": self.scene_style},
            "depth_order": [int(i) for i in self.order],
            "swap_pairs": [list(p) for p in self.swap_pairs],
            "info": self.info,
        }


class World:
    """A seeded universe of clips. ``named_fraction`` of characters are the ten named ones."""

    def __init__(self, seed: int = 0, size: int = 128, frames: int = 16, fps: float = 8.0,
                 named_fraction: float = 0.5):
        self.seed, self.size, self.frames, self.fps = int(seed), int(size), int(frames), float(fps)
        self.named_fraction = float(named_fraction)

    # ---- sampling -------------------------------------------------------------------------------------
    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(index), stream])

    def cast(self, rng: np.random.Generator, n: int, show: str, mix: bool = False) -> list[CharacterSpec]:
        """n distinct characters for a clip on ``show``: named ones of that show (or, with ``mix``, of any
        show) and procedural ones of the show's style (any style with ``mix``)."""
        style = SHOWS[show].style
        pool = [c for c in NAMED if mix or c.show == show]
        rng.shuffle(pool)
        out: list[CharacterSpec] = []
        for _ in range(n):
            if pool and rng.random() < self.named_fraction:
                out.append(pool.pop())
            else:
                st = (("cartoon", "live-action")[int(rng.integers(2))]) if mix else style
                out.append(sample_character(rng, st, show="" if mix else show))
        return out

    def clip(self, index: int, *, n_characters: int | tuple[int, int] = (1, 5), motion: str | None = None,
             characters: list[CharacterSpec | str] | None = None, show: str | None = None, variant: int | None = None,
             mix: bool = False, size: int | None = None, frames: int | None = None, fps: float | None = None) -> Clip:
        """Clip number ``index`` of this world (deterministic). See ``plan`` for the arguments."""
        return self.render_plan(self.plan(index, n_characters=n_characters, motion=motion, characters=characters,
                                          show=show, variant=variant, mix=mix, size=size, frames=frames, fps=fps))

    def plan(self, index: int, *, n_characters: int | tuple[int, int] = (1, 5), motion: str | None = None,
             characters: list[CharacterSpec | str] | None = None, show: str | None = None, variant: int | None = None,
             mix: bool = False, size: int | None = None, frames: int | None = None, fps: float | None = None) -> "Plan":
        """Everything about clip ``index`` except its pixels: cast, set, motion, poses, caption. Cheap
        (no rendering), so samplers can look at positions (e.g. for swap pairs) and render only the frames
        they need with ``render_plan(plan, frames=[…])``."""
        rng = self.rng(index)
        size, frames, fps = size or self.size, frames or self.frames, fps or self.fps
        if characters is not None:
            specs = [NAMED_BY_ID[c] if isinstance(c, str) else c for c in characters]
            n = len(specs)
        else:
            n = n_characters if isinstance(n_characters, int) else int(rng.integers(n_characters[0], n_characters[1] + 1))
            specs = None
        if not 1 <= n <= 5:
            raise ValueError(f"n_characters: {n} is outside 1..5")
        if show is None:
            show = str(rng.choice(list(SHOWS))) if specs is None or mix else (specs[0].show or
                                                                              str(rng.choice(shows_of_style(specs[0].style))))
        if specs is None:
            specs = self.cast(rng, n, show, mix)
        if motion is None:
            options = [m for m, d in MOTIONS.items() if d.min_chars <= n]
            # interactions (swaps above all) are what identity correspondence is about: weight them up
            weights = np.array([3.0 if m == "swap" else 1.5 if m in INTERACTIONS else 1.0 for m in options])
            motion = str(rng.choice(options, p=weights / weights.sum()))
        if motion not in MOTIONS:
            raise ValueError(f"motion: unknown {motion!r}; known motions: {', '.join(MOTIONS)}")
        if n < MOTIONS[motion].min_chars:
            raise ValueError(f"motion {motion!r} needs at least {MOTIONS[motion].min_chars} characters, got {n}")
        variant = int(rng.integers(VARIANTS)) if variant is None else variant
        depth = rng.permutation(np.linspace(0, 1, n)) * (0.9 if n > 1 else 0) + rng.uniform(0, 0.1 if n > 1 else 0.6)
        lay = Layout(size, size, depth.astype(np.float32))
        t = (np.arange(frames) / fps).astype(np.float32)
        poses, info = MOTIONS[motion].fn(specs, t, lay, rng)
        return Plan(list(specs), poses, show, int(variant), size, motion, fps,
                    caption(motion, [s.name for s in specs], info), info, int(rng.integers(1 << 30)))

    def render_plan(self, plan: "Plan", frames: list[int] | None = None) -> Clip:
        """Render a plan (all frames, or only ``frames``, in that order)."""
        poses = plan.poses if frames is None else [{k: v[list(frames)] for k, v in p.items()} for p in plan.poses]
        return self.render(plan.specs, poses, plan.show, plan.variant, plan.size, motion=plan.motion, fps=plan.fps,
                           caption=plan.caption, info=plan.info, grain_seed=plan.grain_seed,
                           frame_ids=None if frames is None else list(frames))

    # ---- rendering --------------------------------------------------------------------------------------
    def render(self, specs: list[CharacterSpec], poses: list[dict], show: str, variant: int, size: int, *,
               motion: str = "custom", fps: float = 8.0, caption: str = "", info: dict | None = None,
               grain_seed: int = 0, bg: np.ndarray | None = None, frame_ids: list[int] | None = None) -> Clip:
        W = H = size
        bg = background(show, variant, W, H) if bg is None else bg
        bg_live = SHOWS[show].style == "live-action"
        bodies = [forward_kinematics(s, p) for s, p in zip(specs, poses)]
        n, F = len(specs), len(poses[0]["x"])
        order = np.argsort([float(np.mean(p["ground"])) for p in poses], kind="stable")     # far → near
        painters = [Painter(s, W, H) for s in specs]
        frames = np.empty((F, H, W, 3), np.uint8)
        masks = np.zeros((F, n, H, W), bool)
        amodal = np.zeros((F, n, H, W), bool)
        kp = np.stack([b["keypoints"] for b in bodies], 1)         # (F, N, 18, 3)
        labels = np.zeros((n, H, W), np.uint8)
        grains = grain_bank(W, H)
        bgf = bg.astype(np.float32)
        live = np.array([s.style == "live-action" for s in specs])
        for f in range(F):
            labels[:] = 0
            hard = np.zeros((H, W), np.float32)
            soft = np.zeros((H, W), np.float32)
            for k in range(n):
                painters[k].draw(bodies[k], f, labels[k])
                b, p = bodies[k], poses[k]
                hh = float(b["h"][f])
                shrink = 1.0 / (1.0 + 3.0 * float(p["lift"][f]) / hh)
                cv2.ellipse(soft if live[k] else hard, (int(p["x"][f] * 16), int(p["ground"][f] * 16)),
                            (int(0.2 * hh * shrink * 16), int(0.035 * hh * shrink * 16 + 8)), 0, 0, 360, 1.0, -1,
                            cv2.LINE_AA, 4)
            if live.any():
                soft = cv2.GaussianBlur(soft, (0, 0), 0.025 * size + 0.5)
            shadow = np.clip(hard * 0.3 + soft * 0.42, 0, 0.6)
            img = bgf * (1 - shadow)[..., None]
            cov_live = np.zeros((H, W), np.float32)
            cov_all = np.zeros((H, W), np.float32)
            for k in order:
                x, y, bw, bh = cv2.boundingRect((labels[k] > 0).view(np.uint8))
                if bw == 0:
                    continue
                hk = float(bodies[k]["h"][f])
                pad = int(0.1 * hk) + 3                        # room for the rim-shading blur
                x0, y0 = max(0, x - pad), max(0, y - pad)
                x1, y1 = min(W, x + bw + pad), min(H, y + bh + pad)
                rgb, a = painters[k].colorize(labels[k, y0:y1, x0:x1], hk, (y0, x0))
                win = (slice(y0, y1), slice(x0, x1))
                img[win] = img[win] * (1 - a[..., None]) + rgb * a[..., None]
                cov_all[win] = cov_all[win] * (1 - a) + a
                cov_live[win] = cov_live[win] * (1 - a) + (a if live[k] else 0)
            photo = cov_live + (1 - cov_all) * bg_live
            if photo.any():
                soft_img = cv2.GaussianBlur(img, (0, 0), 0.45)
                pw = photo[..., None]
                fid = f if frame_ids is None else frame_ids[f]
                img = img * (1 - pw) + (soft_img + grains[(grain_seed + fid) % len(grains)]) * pw
            frames[f] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
            amodal[f] = labels > 0
            cover = np.zeros((H, W), bool)
            for k in order[::-1]:               # near → far
                masks[f, k] = amodal[f, k] & ~cover
                cover |= amodal[f, k]
        # keypoint visibility: inside the frame and on the character's own visible silhouette
        xi = np.clip(np.round(kp[..., 0]).astype(int), 0, W - 1)
        yi = np.clip(np.round(kp[..., 1]).astype(int), 0, H - 1)
        inside = (kp[..., 0] >= 0) & (kp[..., 0] <= W - 1) & (kp[..., 1] >= 0) & (kp[..., 1] <= H - 1)
        occluded = np.zeros(kp.shape[:3], bool)
        rank = {int(k): r for r, k in enumerate(order)}
        for k in range(n):
            for m in order[rank[k] + 1:]:          # every character nearer than k
                occluded[:, k] |= amodal[np.arange(F)[:, None], m, yi[:, k], xi[:, k]]
        kp[..., 2] *= (inside & ~occluded).astype(np.float32)
        return Clip(frames, masks, kp, list(specs), show, variant, motion, caption, fps, order, amodal, info or {})

    def portrait(self, spec: CharacterSpec, size: int = 256, show: str | None = None, variant: int = 0,
                 facing: float = 0.18) -> tuple[np.ndarray, np.ndarray]:
        """A library reference image: the character standing, three-quarter view, on its show's set.
        Returns (image uint8 (size, size, 3), mask bool (size, size))."""
        show = show or spec.show or shows_of_style(spec.style)[0]
        p = rest_pose(1)
        p["x"][:] = size / 2
        p["ground"][:] = size * 0.93
        p["scale"][:] = size * 0.8 * min(1.0, 0.85 / max(spec.height, 0.5)) * spec.height
        p["facing"][:] = facing
        p["r_abd"][:] = 0.25
        p["l_abd"][:] = 0.25
        clip = self.render([spec], [p], show, variant, size, motion="portrait")
        return clip.frames[0], clip.masks[0, 0]
