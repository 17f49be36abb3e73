"""Train the identity and style probes on world crops, measure them on held-out ground truth, save them.

    python -m pipelines.eval train-probes --out assets/models/probes [--steps 1500] [--groups 1500]

Data: casts of 2–5 characters (procedural ones of both styles and some of the ten named ones, on their
own shows or mixed onto other styles' sets) rendered in a few clips each; crops of every visible
character (ground-truth masks, or the skeleton region the ``ic`` command uses on bare videos) plus
portraits like the library's reference images at several sizes, sets and angles.

Identity: supervised contrastive loss over P characters × V views per batch (same character close,
others far). Style: binary cross-entropy on the character's own style. The held-out check renders clips
of a different world seed with characters never seen in training and scores IC accuracy exactly as the
metric does (portrait references, Hungarian matching); that number is stored inside the weights file.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..world import NAMED, SHOWS, World
from ..world.motions import MOTIONS
from ..world.shows import VARIANTS, shows_of_style
from .probes import ProbeConfig, Probes, to_input
from .regions import crop_region, judged, skeleton_regions

# ---- defaults (every knob of a run; all of them are saved inside the weights file) -----------------------
DEFAULTS = dict(
    seed=1,                # training world seed (held-out evaluation uses eval_seed: different characters)
    eval_seed=1001,
    groups=1500,           # casts rendered for training (each: clips_per_group clips of 2–5 characters)
    clips_per_group=2,
    frames_per_clip=4,     # frames rendered per training clip (spread over 2 s)
    named_fraction=0.2,    # share of cast members that are the ten named characters
    skeleton_share=0.35,   # share of frame crops cut with skeleton regions instead of ground-truth masks
    steps=1500,            # optimisation steps (each: one identity batch and one style batch)
    chars_per_batch=48,    # P characters × views_per_char crops per identity batch
    views_per_char=4,
    style_batch=128,
    lr=2e-3,
    weight_decay=1e-4,
    warmup=100,
    eval_clips=150,        # held-out clips of unseen characters for the reported accuracy
    eval_named_clips=40,   # held-out clips of the named characters (reported separately)
    crop=64, width=16, embed_dim=64, temperature=0.1, style_fine=True,
    threads=0,             # torch threads (0: torch's default)
)


@dataclass
class CropSet:
    crops: np.ndarray        # (M, s, s, 3) uint8, the region resized to the crop (identity probe input)
    native: np.ndarray       # (M, s, s, 3) uint8, the same crop never enlarged (style probe input)
    char: np.ndarray         # (M,) int character index
    portrait: np.ndarray     # (M,) bool: a portrait (reference-like) view
    style: np.ndarray        # (M,) 1 = live-action
    ids: list[str]           # character index → world id


def render_crops(seed: int, groups: int, *, clips_per_group: int = 2, frames_per_clip: int = 4,
                 named_fraction: float = 0.2, skeleton_share: float = 0.35, crop: int = 64, size: int = 128,
                 log_every: int = 250) -> CropSet:
    """Crops of ``groups`` random casts from ``World(seed)``: frame crops (masks or skeleton regions) and
    portraits of every character."""
    world = World(seed, size=size, named_fraction=named_fraction)
    crops, native, chars, portrait, style = [], [], [], [], []
    index: dict[str, int] = {}
    shows = list(SHOWS)
    t0 = time.time()
    for g in range(groups):
        rng = np.random.default_rng([seed, g, 11])
        n = int(rng.integers(2, 6))
        mix = bool(rng.random() < 0.5)
        show = str(rng.choice(shows))
        specs = world.cast(rng, n, show, mix)
        for c in range(clips_per_group):
            if c:
                show = str(rng.choice(shows)) if mix else str(rng.choice(shows_of_style(SHOWS[show].style)))
            motion = str(rng.choice([m for m, d in MOTIONS.items() if d.min_chars <= n]))
            # few frames far apart in time (fps 2): as many poses as a 16-frame clip, a quarter of the work
            clip = world.clip(g * clips_per_group + c, characters=specs, motion=motion, show=show,
                              frames=frames_per_clip, fps=frames_per_clip / 2.0)
            use_skel = rng.random(clip.n_frames) < skeleton_share
            regions = np.where(use_skel[:, None, None, None],
                               skeleton_regions(clip.keypoints, size, size), clip.masks)
            ok = judged(regions)
            for f, k in np.argwhere(ok):
                crops.append(crop_region(clip.frames[f], regions[f, k], crop))
                native.append(crop_region(clip.frames[f], regions[f, k], crop, native=True))
                chars.append(index.setdefault(specs[k].id, len(index)))
                portrait.append(False)
                style.append(specs[k].style == "live-action")
        for spec in specs:
            for _ in range(2 if spec.id not in index or rng.random() < 0.5 else 1):
                psize = int(rng.choice([96, 128, 192, 256]))
                pshow = None if rng.random() < 0.5 else str(rng.choice(shows))
                img, m = world.portrait(spec, psize, show=pshow, variant=int(rng.integers(VARIANTS)),
                                        facing=float(rng.uniform(-0.35, 0.35)))
                crops.append(crop_region(img, m, crop))
                native.append(crop_region(img, m, crop, native=True))
                chars.append(index.setdefault(spec.id, len(index)))
                portrait.append(True)
                style.append(spec.style == "live-action")
        if log_every and (g + 1) % log_every == 0:
            print(f"  rendered {g + 1}/{groups} casts, {len(crops)} crops ({time.time() - t0:.0f} s)", flush=True)
    return CropSet(np.stack(crops), np.stack(native), np.asarray(chars), np.asarray(portrait),
                   np.asarray(style, np.float32), list(index))


# ---- augmentation and losses (pure functions) -----------------------------------------------------------
def augment(x: torch.Tensor, gen: torch.Generator, blur: float = 1.0, noise: float = 0.03) -> torch.Tensor:
    """Batch (B, 3, s, s) in [-1, 1] → jittered copy: small shift/scale, flips, blur up to ``blur`` px σ,
    brightness/contrast and noise up to ``noise`` σ — what a generator's output does to a character, never
    its hue. (The style probe gets no noise: added noise looks like film grain, a live-action cue.)"""
    B = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=gen)
    scale = 0.9 + 0.2 * u(B)
    flip = torch.where(u(B) < 0.5, -1.0, 1.0)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = (u(B, 2) - 0.5) * 0.12
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)   # 0 = the grey fill
    if blur > 0:
        sigma = u(B) * blur
        k = torch.arange(-2, 3, dtype=torch.float32)
        w = torch.exp(-k[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
        w = w / w.sum(1, keepdim=True)                                # (B, 5)
        xb = x.reshape(1, B * 3, *x.shape[2:])
        wk = w.repeat_interleave(3, 0)
        xb = F.conv2d(F.pad(xb, (2, 2, 0, 0), mode="replicate"), wk[:, None, None, :], groups=B * 3)
        xb = F.conv2d(F.pad(xb, (0, 0, 2, 2), mode="replicate"), wk[:, None, :, None], groups=B * 3)
        x = xb.reshape_as(x)
    gain = 0.9 + 0.2 * u(B, 1, 1, 1)
    bias = (u(B, 1, 1, 1) - 0.5) * 0.1
    x = x * gain + bias + torch.randn(x.shape, generator=gen) * (u(B, 1, 1, 1) * noise)
    return x.clamp(-1, 1)


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised contrastive loss. z (N, D) unit vectors, labels (N,) → scalar: for each anchor, the mean
    −log softmax (over all other samples) of its positives (same label)."""
    n = z.shape[0]
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool)
    logits = logits.masked_fill(self_mask, -1e9)
    logp = logits - torch.logsumexp(logits, 1, keepdim=True)
    pos = (labels[:, None] == labels[None]) & ~self_mask
    npos = pos.sum(1)
    keep = npos > 0
    return -((logp * pos).sum(1)[keep] / npos[keep]).mean()


def get_lr(step: int, cfg: dict) -> float:
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    p = (step - cfg["warmup"]) / max(1, cfg["steps"] - cfg["warmup"])
    return cfg["lr"] * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def identity_batch(data: CropSet, rng: np.random.Generator, chars: int, views: int) -> tuple[np.ndarray, np.ndarray]:
    """P characters × V views: one portrait (the reference side of IC) and V−1 frame crops each."""
    by_char = _by_char(data)
    picked = rng.choice(len(by_char), size=min(chars, len(by_char)), replace=False)
    idx, lab = [], []
    for c in picked:
        frames, portraits = by_char[c]
        pool_f = frames if len(frames) else portraits
        sel = [rng.choice(portraits)] if len(portraits) else []
        sel += list(rng.choice(pool_f, size=views - len(sel), replace=len(pool_f) < views - len(sel)))
        idx += sel
        lab += [c] * len(sel)
    return np.asarray(idx), np.asarray(lab)


_CACHE: dict[int, list] = {}


def _by_char(data: CropSet) -> list:
    key = id(data)
    if key not in _CACHE:
        order = np.argsort(data.char, kind="stable")
        bounds = np.searchsorted(data.char[order], np.arange(len(data.ids) + 1))
        _CACHE[key] = []
        for c in range(len(data.ids)):
            members = order[bounds[c]:bounds[c + 1]]
            _CACHE[key].append((members[~data.portrait[members]], members[data.portrait[members]]))
    return _CACHE[key]


# ---- held-out evaluation --------------------------------------------------------------------------------
def evaluate_descriptor(descriptor, seed: int, clips: int, *, named: bool = False, probes: Probes | None = None,
                        size: int = 128) -> dict:
    """IC accuracy (Hungarian matching against library-style portraits) on held-out ground-truth clips of
    ``World(seed)`` — unseen procedural characters, or (``named``) the ten named ones — with ground-truth
    masks and with skeleton regions (reported separately); with ``probes``, the style probe's accuracy on
    the same crops."""
    from .ic import Reference, describe_references, ic_accuracy
    world = World(seed, size=size, named_fraction=1.0 if named else 0.0)
    tallies = {"masks": [0, 0], "skeleton": [0, 0], "style": [0, 0]}
    for i in range(clips):
        rng = np.random.default_rng([seed, i, 23])
        n = int(rng.integers(2, 6))
        mix = bool(rng.random() < 0.5)
        show = str(rng.choice(list(SHOWS)))
        if named:
            specs = [NAMED[j] for j in rng.choice(len(NAMED), size=n, replace=False)]
        else:
            specs = world.cast(rng, n, show, mix)
        motion = str(rng.choice([m for m, d in MOTIONS.items() if d.min_chars <= n]))
        clip = world.clip(i, characters=specs, motion=motion, show=show)
        refs = [Reference(s.name, s.style, *world.portrait(s, 256)) for s in specs]
        vecs = describe_references(descriptor, refs)
        styles = [s.style for s in specs]
        for kind, regions in (("masks", clip.masks), ("skeleton", skeleton_regions(clip.keypoints, size, size))):
            with_style = kind == "masks" and probes is not None
            rep = ic_accuracy(clip.frames, regions, vecs, list(range(n)), descriptor,
                              probes=probes if with_style else None, track_styles=styles if with_style else None)
            tallies[kind][0] += int((rep.correct == 1).sum())
            tallies[kind][1] += int(rep.judged.sum())
            if with_style:
                d = rep.deluded
                tallies["style"][0] += int((d == 0).sum())
                tallies["style"][1] += int((d >= 0).sum())
    acc = {k: (v[0] / v[1] if v[1] else None) for k, v in tallies.items()}
    return {"descriptor": descriptor.name, "ic_masks": acc["masks"], "ic_skeleton": acc["skeleton"],
            "style": acc["style"], "track_frames": tallies["masks"][1],
            "skeleton_track_frames": tallies["skeleton"][1], "clips": clips, "seed": seed,
            "characters": "named" if named else "unseen"}


# ---- training -------------------------------------------------------------------------------------------
def train(cfg: dict, out: Path | None = None, log=print) -> Probes:
    cfg = {**DEFAULTS, **cfg}
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    gen = torch.Generator().manual_seed(cfg["seed"])
    t0 = time.time()
    log(f"rendering {cfg['groups']} training casts (world seed {cfg['seed']}) …")
    data = render_crops(cfg["seed"], cfg["groups"], clips_per_group=cfg["clips_per_group"],
                        frames_per_clip=cfg["frames_per_clip"], named_fraction=cfg["named_fraction"],
                        skeleton_share=cfg["skeleton_share"], crop=cfg["crop"])
    log(f"{len(data.crops)} crops of {len(data.ids)} characters ({data.portrait.sum()} portraits) "
        f"in {time.time() - t0:.0f} s")
    config = ProbeConfig(cfg["crop"], cfg["width"], cfg["embed_dim"], cfg["temperature"], cfg["style_fine"])
    probes = Probes.build(config)
    params = list(probes.identity.parameters()) + list(probes.style.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    frames_only = np.flatnonzero(~data.portrait)
    all_idx = np.arange(len(data.crops))
    t1 = time.time()
    for step in range(cfg["steps"]):
        for g in opt.param_groups:
            g["lr"] = get_lr(step, cfg)
        probes.identity.train()
        probes.style.train()
        idx, lab = identity_batch(data, rng, cfg["chars_per_batch"], cfg["views_per_char"])
        x = augment(to_input(data.crops[idx]), gen, blur=1.0)
        z = F.normalize(probes.identity(x), dim=1)
        loss_id = supcon_loss(z, torch.as_tensor(lab), cfg["temperature"])
        # style: mostly frame crops (what is judged), some portraits
        sidx = np.where(rng.random(cfg["style_batch"]) < 0.85, rng.choice(frames_only, cfg["style_batch"]),
                        rng.choice(all_idx, cfg["style_batch"]))
        xs = augment(to_input(data.native[sidx]), gen, blur=0.3, noise=0.0)
        loss_style = F.binary_cross_entropy_with_logits(probes.style(xs)[:, 0], torch.as_tensor(data.style[sidx]))
        opt.zero_grad(set_to_none=True)
        (loss_id + loss_style).backward()
        opt.step()
        if step % 100 == 0 or step == cfg["steps"] - 1:
            log(f"step {step:5d}  identity {loss_id.item():.4f}  style {loss_style.item():.4f}  "
                f"lr {get_lr(step, cfg):.2e}  {time.time() - t1:.0f} s")
    log("held-out evaluation …")
    from .descriptors import ProbeDescriptor
    desc = ProbeDescriptor(probes)
    unseen = evaluate_descriptor(desc, cfg["eval_seed"], cfg["eval_clips"], probes=probes)
    named = evaluate_descriptor(desc, cfg["eval_seed"] + 1, cfg["eval_named_clips"], named=True, probes=probes)
    probes.report = {
        "identity": {"accuracy": unseen["ic_masks"], "what": "IC accuracy on ground-truth frames of held-out clips "
                     "with unseen characters (ground-truth masks, portrait references, Hungarian matching)",
                     "skeleton_regions": unseen["ic_skeleton"], "named_characters": named["ic_masks"],
                     "named_skeleton_regions": named["ic_skeleton"], "track_frames": unseen["track_frames"],
                     "clips": unseen["clips"]},
        "style": {"accuracy": unseen["style"], "what": "style accuracy on ground-truth crops of held-out unseen "
                  "characters (mixed sets included)", "named_characters": named["style"],
                  "track_frames": unseen["track_frames"]},
        "train": {"crops": int(len(data.crops)), "characters": len(data.ids), "seconds": round(time.time() - t0)},
    }
    probes.train_config = cfg
    log(json.dumps(probes.report, indent=1))
    if out is not None:
        path = probes.save(out)
        log(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return probes


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", type=Path, default=None, help="folder for probes.safetensors (default: assets/models/probes)")
    for k, v in DEFAULTS.items():
        kind = _flag if isinstance(v, bool) else type(v)
        ap.add_argument(f"--{k.replace('_', '-')}", type=kind, default=v, help=f"(default {v})")


def _flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r}: use true or false")


def main(args) -> int:
    from .probes import probes_dir
    cfg = {k: getattr(args, k) for k in DEFAULTS}
    train(cfg, args.out or probes_dir())
    return 0
