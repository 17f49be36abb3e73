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
  the reference guidance (slot-tinted reference masks), the appearance prior (``pipelines.pose.prior``: each
  slot's cut-out placed on the body of the track it performs, on the reference's empty set; the set alone for
  the plain-skeleton ablation), and the assignment slot→track;
* Pre-Classified Sampling draws (reference, target) pairs whose left-to-right order differs with
  probability ``pcs``.

Arrays are numpy (uint8 images, bool masks), padded to ``MAX_SLOTS`` slots; ``collate`` stacks them into
torch tensors for the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mix.guidance import appearance_prior_video
from ..pose.ieg import render_ieg, tint_masks
from ..scene import track_slots
from ..world import World
from ..world.shows import background
from . import cca
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
    mix: float = 0.1               # share of Cross-Character Augmentation samples (cca.py; MIMIX's best: 10 %)
    plain: bool = False            # plain OpenPose skeletons (no identity colours): the "plain" ablation
    prior: bool = True             # compute the appearance prior (half a sample's cost; the VAE stage needs none)
    fps: float = 8.0


class WorldSampler:
    """Deterministic stream of training samples: ``sampler[i]`` is always the same sample."""

    def __init__(self, cfg: SampleConfig, seed: int = 0):
        self.cfg = cfg
        self.world = World(seed, size=cfg.size, frames=cfg.clip_frames, fps=cfg.fps,
                           named_fraction=cfg.named_fraction)

    def _draw_cca(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.cfg.mix)

    def is_cca(self, index: int) -> bool:
        """Whether ``sampler[index]`` is a CCA composite (known without rendering it)."""
        return self._draw_cca(self.world.rng(index, stream=7))

    def __getitem__(self, index: int) -> dict:
        cfg = self.cfg
        rng = self.world.rng(index, stream=7)
        mix = self._draw_cca(rng)                     # Cross-Character Augmentation (cca.py)

        def make_plan(i):
            return cca.cca_plan(self.world, i, cfg.characters) if mix else \
                self.world.plan(i, n_characters=cfg.characters)

        plan = make_plan(index)
        if rng.random() < cfg.pcs:
            # PCS: draw from the pool of swap pairs — move on to (deterministic) other clips until one has them
            for k in range(1, 33):
                if pcs_lib.swap_pairs(plan.positions()):
                    break
                plan = make_plan(10_000_000 + index * 32 + k)
            r, t0, swap = pcs_lib.draw_pair(plan.positions(), 1.0, rng, cfg.window)
        else:
            r, t0, swap = pcs_lib.draw_pair(plan.positions(), 0.0, rng, cfg.window)
        n = len(plan.specs)
        targets = list(range(t0, t0 + cfg.window))
        use_sheet = bool(rng.random() < cfg.sheet)
        frames = targets if use_sheet else [r] + targets
        clip = cca.render_cca(self.world, plan, frames) if mix else self.world.render_plan(plan, frames=frames)
        off = 0 if use_sheet else 1
        # slot order: the reference's left-to-right order for sheets, a random permutation for natural frames
        ref_order = pcs_lib.orders(plan.positions()[[r]])[0]
        chars_in_slots = list(ref_order) if use_sheet else [int(c) for c in rng.permutation(n)]
        if use_sheet:
            reference, ref_masks = self._sheet(plan, chars_in_slots, rng, homes=plan.info.get("homes"))
        else:
            reference = clip.frames[0]
            ref_masks = clip.masks[0][chars_in_slots]
        assignment = np.full(MAX_SLOTS, -1, np.int64)
        assignment[:n] = chars_in_slots                 # world track k is character k
        slots_of_tracks = track_slots(list(assignment[:n]), n)
        kp = clip.keypoints[off:]
        pose = render_ieg(kp, cfg.size, cfg.size, slots=slots_of_tracks, order=np.tile(clip.order, (len(kp), 1)),
                          plain=cfg.plain)
        sample = {
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
            "specs": [plan.specs[c] for c in chars_in_slots],
            "show": plan.show,
            "cca": mix,
        }
        if cfg.prior:
            # natural frames: the world's true skeletons (hidden joints too) give each cut-out its scale
            ref_kp = None if use_sheet else clip.keypoints[0][chars_in_slots].copy()
            if ref_kp is not None:
                ref_kp[..., 2] = 1.0
            sample["prior"] = appearance_prior_video(reference, ref_masks, kp, cfg.size, cfg.size, chars_in_slots,
                                                     plain=cfg.plain, reference_keypoints=ref_kp)
        return sample

    def _sheet(self, plan, chars_in_slots: list[int], rng: np.random.Generator, homes: list[str] | None = None):
        """A composed reference sheet on the clip's set; CCA clips cut each portrait from its home show."""
        from ..mix.sheet import compose_sheet
        cutouts = []
        for c in chars_in_slots:
            img, mask = self.world.portrait(plan.specs[c], self.cfg.size * 2, show=homes[c] if homes else plan.show,
                                            variant=plan.variant, facing=float(rng.uniform(-0.3, 0.3)))
            cutouts.append((img, mask))
        bg = np.ascontiguousarray(background(plan.show, plan.variant, self.cfg.size, self.cfg.size))
        return compose_sheet(cutouts, bg, (self.cfg.size, self.cfg.size))


def _pad(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - a.shape[axis])
    return np.pad(a, pad)


def collate(samples: list[dict]):
    """Stack samples into torch tensors: images float in [-1, 1], channels first; masks float. ``prior`` is
    there when every sample carries one (``SampleConfig.prior``)."""
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
    if all("prior" in s for s in samples):
        out["prior"] = torch.stack([img(s["prior"]) for s in samples])                     # (B, T, 4, H, W)
    return out


# ---------------------------------------------------------------------------------------------------------
# motion samples (text mode's motion model; no pixels)
# ---------------------------------------------------------------------------------------------------------
@dataclass
class MotionSampleConfig:
    size: int = 128                # canvas the world plans on (keypoints are divided by it)
    max_frames: int = 32           # clips are 16, 24 or 32 frames (≤ max_frames), padded to max_frames
    characters: tuple = (1, 5)
    named_fraction: float = 0.5
    reference_frames: int = 32     # the behaviour encoder's clip of the same character (another motion)
    reference_gait: float = 0.7    # share of walk/run reference clips (gaits show behaviour best)
    fps: float = 8.0


class MotionSampler:
    """Deterministic stream of motion samples: ``sampler[i]`` is clip ``i``'s keypoints, normalised to the
    canvas height, with what the motion model is conditioned on (caption words and roles, start point,
    travel direction, clock) and, per character, a clip of the same character in another motion."""

    def __init__(self, cfg: MotionSampleConfig, seed: int = 0):
        self.cfg = cfg
        self.world = World(seed, size=cfg.size, frames=cfg.max_frames, fps=cfg.fps, named_fraction=cfg.named_fraction)

    def reference(self, spec, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``encoder_inputs`` of character ``spec`` in reference clip ``index`` (deterministic)."""
        from ..models.motion import encoder_inputs
        from ..world.motions import MOTIONS
        rng = self.world.rng(index, stream=11)
        solo = [m for m, d in MOTIONS.items() if d.min_chars == 1]
        motion = str(rng.choice(["walk", "run"])) if rng.random() < self.cfg.reference_gait else str(rng.choice(solo))
        plan = self.world.plan(20_000_000 + index, characters=[spec], motion=motion, frames=self.cfg.reference_frames)
        return encoder_inputs(plan.keypoints()[:, 0], self.cfg.fps, self.cfg.size)

    def __getitem__(self, index: int) -> dict:
        from ..cce.prompt import parse_prompt
        from ..models.motion import clock_of, text_words
        from ..pose.openpose import J
        from ..world.characters import NAMED_BY_ID
        cfg = self.cfg
        rng = self.world.rng(index, stream=12)
        frames = int(rng.choice([f for f in (16, 24, 32) if f <= cfg.max_frames] or [cfg.max_frames]))
        plan = self.world.plan(index, n_characters=cfg.characters, frames=frames)
        kp = plan.keypoints()                                                   # (F, N, 18, 3) pixels
        n = kp.shape[1]
        parsed = parse_prompt(plan.caption, resolve=False)
        words, roles, clock, refs, refs_spec = [], [], [], [], []
        for k, spec in enumerate(plan.specs):
            acts = parsed.actions_of(spec.name)
            words.append(text_words(acts[0].words)[0] if acts else ["watches"])
            roles.append(0 if not acts or acts[0].role == "subject" else 1)
            clock.append(clock_of(kp[:, k], cfg.fps))
            refs.append(self.reference(spec, index * 8 + k))
        norm = kp.copy()
        norm[..., :2] /= cfg.size
        hip_x = (norm[:, :, J["r_hip"], 0] + norm[:, :, J["l_hip"], 0]) / 2            # (F, N)
        ground = np.maximum(norm[0, :, J["r_ankle"], 1], norm[0, :, J["l_ankle"], 1])  # (N,)
        travel = hip_x[-1] - hip_x[0]
        direction = np.where(np.abs(travel) < 0.05, 1, np.where(travel > 0, 2, 0))
        return {
            "keypoints": _pad(norm, cfg.max_frames, axis=0),                    # (Fmax, N, 18, 3)
            "frames": frames, "n": n, "words": words, "roles": np.array(roles),
            "x0": hip_x[0], "g0": ground, "direction": direction,
            "freq": np.array([c[0] for c in clock], np.float32), "phase": np.array([c[1] for c in clock], np.float32),
            "periodicity": np.array([c[2] for c in clock], np.float32),
            "ref_frames": np.stack([r[0] for r in refs]), "ref_spectra": np.stack([r[1] for r in refs]),
            "ids": [s.id if s.id in NAMED_BY_ID else "" for s in plan.specs],
            "behaviour": np.stack([s.behaviour.vector() for s in plan.specs]),
            "caption": plan.caption, "fps": cfg.fps,
        }


def collate_motion(samples: list[dict], vocabulary: tuple[str, ...] | None = None) -> dict:
    """Stack motion samples, padding characters to ``MAX_SLOTS``: tensors (B, N, …) with ``char_mask`` (B, N)
    and ``frame_mask`` (B, F); words as indices of ``vocabulary`` (default: the motion model's)."""
    import torch
    from ..models.motion import VOCABULARY, word_ids
    vocabulary = tuple(vocabulary or VOCABULARY)
    B, N = len(samples), MAX_SLOTS
    Fm = samples[0]["keypoints"].shape[0]
    Fr, spectra = samples[0]["ref_frames"].shape[1], samples[0]["ref_spectra"].shape[1:]
    out = {
        "keypoints": torch.zeros(B, N, Fm, 18, 3), "char_mask": torch.zeros(B, N, dtype=torch.bool),
        "frame_mask": torch.zeros(B, Fm, dtype=torch.bool), "time": torch.zeros(B, Fm), "duration": torch.zeros(B),
        "words": torch.zeros(B, N, 8, dtype=torch.long), "roles": torch.zeros(B, N, dtype=torch.long),
        "x0": torch.zeros(B, N), "g0": torch.zeros(B, N), "direction": torch.ones(B, N, dtype=torch.long),
        "freq": torch.ones(B, N), "phase": torch.zeros(B, N), "periodicity": torch.zeros(B, N),
        "ref_frames": torch.zeros(B, N, Fr, samples[0]["ref_frames"].shape[-1]), "ref_spectra": torch.zeros(B, N, *spectra),
        "ids": [], "captions": [],
    }
    for b, s in enumerate(samples):
        n, f = s["n"], s["frames"]
        out["keypoints"][b, :n] = torch.from_numpy(np.ascontiguousarray(s["keypoints"].transpose(1, 0, 2, 3)))
        out["char_mask"][b, :n] = True
        out["frame_mask"][b, :f] = True
        out["time"][b] = torch.arange(Fm) / s["fps"]
        out["duration"][b] = f / s["fps"]
        out["words"][b, :n] = torch.tensor([word_ids(w, vocabulary) for w in s["words"]])
        out["roles"][b, :n] = torch.from_numpy(s["roles"])
        for key in ("x0", "g0", "freq", "phase", "periodicity"):
            out[key][b, :n] = torch.from_numpy(np.asarray(s[key], np.float32))
        out["direction"][b, :n] = torch.from_numpy(s["direction"])
        out["ref_frames"][b, :n] = torch.from_numpy(s["ref_frames"])
        out["ref_spectra"][b, :n] = torch.from_numpy(s["ref_spectra"])
        out["ids"].append(s["ids"] + [""] * (N - n))
        out["captions"].append(s["caption"])
    return out
