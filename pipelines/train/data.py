"""Training samples straight from the world, on the fly (no dataset on disk, no waiting on data).

Each sample is one reference and a target of ``window`` frames from the same world clip:

* reference — either a *natural* frame of the clip (all its characters on the set, their visible masks)
  or a *composed sheet* (each character's portrait cut out and laid left to right on the clip's set, in
  the left-to-right order the characters have in the reference frame) — the layout the studio builds from
  library images at inference;
* slots — reference characters in slot order; slot ``s`` owns palette colour ``s``. For natural
  references the slot order is a random permutation, so colours never encode positions or track numbers;
* target — ``window`` frames, their visible masks per slot, the pose guidance (IEG: each track's skeleton
  in the colour of the slot performing it; or OpenPose's plain colours for the plain-skeleton ablation),
  the reference guidance (slot-tinted reference masks), and the assignment slot→track;
* Pre-Classified Sampling draws (reference, target) pairs whose left-to-right order differs with
  probability ``pcs``.

Arrays are numpy (uint8 images, bool masks), padded to ``MAX_SLOTS`` slots; ``collate`` stacks them into
torch tensors for the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pose.ieg import render_ieg, tint_masks
from ..scene import track_slots
from ..world import World
from ..world.shows import background
from . import pcs as pcs_lib

MAX_SLOTS = 5


@dataclass
class SampleConfig:
    size: int = 128                # frame size
    clip_frames: int = 16          # frames per world clip
    window: int = 1                # target frames per sample (1: image stage; 8–16: temporal stage)
    characters: tuple = (1, 5)     # characters per clip (inclusive range)
    pcs: float = 0.3               # probability of drawing a swap pair (Pre-Classified Sampling)
    sheet: float = 0.5             # probability of a composed reference sheet instead of a natural frame
    named_fraction: float = 0.3    # share of characters that are the ten named ones (the rest are unseen)
    mix: float = 0.1               # share of clips mixing shows/styles (Cross-Character Augmentation)
    plain: bool = False            # plain OpenPose skeletons (no identity colours): the "plain" ablation
    fps: float = 8.0


class WorldSampler:
    """Deterministic stream of training samples: ``sampler[i]`` is always the same sample."""

    def __init__(self, cfg: SampleConfig, seed: int = 0):
        self.cfg = cfg
        self.world = World(seed, size=cfg.size, frames=cfg.clip_frames, fps=cfg.fps,
                           named_fraction=cfg.named_fraction)

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = self.world.rng(index, stream=7)
        mix = bool(rng.random() < cfg.mix)
        plan = self.world.plan(index, n_characters=cfg.characters, mix=mix)
        if rng.random() < cfg.pcs:
            # PCS: draw from the pool of swap pairs — move on to (deterministic) other clips until one has them
            for k in range(1, 33):
                if pcs_lib.swap_pairs(plan.positions()):
                    break
                plan = self.world.plan(10_000_000 + index * 32 + k, n_characters=cfg.characters, mix=mix)
            r, t0, swap = pcs_lib.draw_pair(plan.positions(), 1.0, rng, cfg.window)
        else:
            r, t0, swap = pcs_lib.draw_pair(plan.positions(), 0.0, rng, cfg.window)
        n = len(plan.specs)
        targets = list(range(t0, t0 + cfg.window))
        use_sheet = bool(rng.random() < cfg.sheet)
        frames = targets if use_sheet else [r] + targets
        clip = self.world.render_plan(plan, frames=frames)
        off = 0 if use_sheet else 1
        # slot order: the reference's left-to-right order for sheets, a random permutation for natural frames
        ref_order = pcs_lib.orders(plan.positions()[[r]])[0]
        chars_in_slots = list(ref_order) if use_sheet else [int(c) for c in rng.permutation(n)]
        if use_sheet:
            reference, ref_masks = self._sheet(plan, chars_in_slots, rng)
        else:
            reference = clip.frames[0]
            ref_masks = clip.masks[0][chars_in_slots]
        assignment = np.full(MAX_SLOTS, -1, np.int64)
        assignment[:n] = chars_in_slots                 # world track k is character k
        slots_of_tracks = track_slots(list(assignment[:n]), n)
        kp = clip.keypoints[off:]
        pose = render_ieg(kp, cfg.size, cfg.size, slots=slots_of_tracks, order=np.tile(clip.order, (len(kp), 1)),
                          plain=cfg.plain)
        return {
            "reference": reference,
            "reference_masks": _pad(ref_masks, MAX_SLOTS, axis=0),
            "reference_pose": tint_masks(ref_masks),
            "target": clip.frames[off:],
            "target_masks": _pad(clip.masks[off:][:, chars_in_slots], MAX_SLOTS, axis=1),
            "pose": pose,
            "keypoints": kp,
            "assignment": assignment,
            "slots": np.arange(MAX_SLOTS) < n,
            "n": n,
            "swap": bool(swap),
            "sheet": use_sheet,
            "caption": plan.caption,
            "styles": np.array([s.style == "live-action" for s in (plan.specs[c] for c in chars_in_slots)]
                               + [False] * (MAX_SLOTS - n)),
            "names": [plan.specs[c].name for c in chars_in_slots],
            "show": plan.show,
        }

    def _sheet(self, plan, chars_in_slots: list[int], rng: np.random.Generator):
        from ..mix.sheet import compose_sheet
        cutouts = []
        for c in chars_in_slots:
            img, mask = self.world.portrait(plan.specs[c], self.cfg.size * 2, show=plan.show, variant=plan.variant,
                                            facing=float(rng.uniform(-0.3, 0.3)))
            cutouts.append((img, mask))
        bg = np.ascontiguousarray(background(plan.show, plan.variant, self.cfg.size, self.cfg.size))
        return compose_sheet(cutouts, bg, (self.cfg.size, self.cfg.size))


def _pad(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - a.shape[axis])
    return np.pad(a, pad)


def collate(samples: list[dict]):
    """Stack samples into torch tensors: images float in [-1, 1], channels first; masks float."""
    import torch

    def img(x):
        t = torch.from_numpy(np.ascontiguousarray(x)).float().div(127.5).sub(1.0)
        return t.movedim(-1, -3)

    out = {
        "reference": torch.stack([img(s["reference"]) for s in samples]),                   # (B, 3, H, W)
        "reference_pose": torch.stack([img(s["reference_pose"]) for s in samples]),         # (B, 3, H, W)
        "reference_masks": torch.stack([torch.from_numpy(s["reference_masks"]).float() for s in samples]),
        "target": torch.stack([img(s["target"]) for s in samples]),                         # (B, T, 3, H, W)
        "pose": torch.stack([img(s["pose"]) for s in samples]),                             # (B, T, 3, H, W)
        "target_masks": torch.stack([torch.from_numpy(s["target_masks"]).float() for s in samples]),  # (B,T,S,H,W)
        "assignment": torch.stack([torch.from_numpy(s["assignment"]) for s in samples]),
        "slots": torch.stack([torch.from_numpy(s["slots"]) for s in samples]),
        "swap": torch.tensor([s["swap"] for s in samples]),
        "captions": [s["caption"] for s in samples],
        "names": [s["names"] for s in samples],
    }
    return out
