"""Train ClickNet, the offline click segmenter, on the embedded world.

    python -m pipelines.segment.train --output_dir runs/clicknet [--max_steps 6000] [--resume_from_checkpoint latest]
    python -m pipelines.segment.train --output_dir runs/clicknet --export assets/models/clicknet/clicknet.safetensors
    python -m pipelines.segment.train --output_dir runs/ft --init assets/models/clicknet/clicknet.safetensors …
    python -m pipelines.segment.train --output_dir runs/ft-a --export F.safetensors --average_with runs/ft-b

Every sample is one character of a world frame seen either whole-frame (what the first click sees) or
zoomed around the character (what the zoom-in pass sees), rendered at a random size (128–512, so 128-pixel
frames and 512-pixel frames both look familiar) with colour jitter. Clicks follow RITM's iterative
training: a first click inside the character, then zero to three corrective clicks on the largest error of
the network's own prediction (no gradient), each round feeding the previous prediction back as the mask
prompt; some samples instead start from a perturbed ground-truth mask, which is what video propagation
feeds in. Validation runs the real offline engine on held-out world seeds with the benchmark protocol.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import deque
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..world import World
from .clicknet import ClickNet, ClickNetConfig, load_clicknet, prompt_maps, read_clicknet_metadata, save_clicknet
from .offline import resample
from .protocol import click_session, corrective_click, first_click, pieces

# ---- defaults (every knob, with why) ------------------------------------------------------------------
DEFAULTS = dict(
    seed=0,                  # world seed of the training stream (validation uses seeds 90_000+)
    max_steps=6000,          # 2–3 s/step on one shared core: hours (the shipped weights stopped at 2500 of 4000)
    batch_size=8,
    lr=2e-3,                 # small BN network: a high rate with cosine decay trains fastest
    weight_decay=1e-4,
    warmup_steps=200,
    zoom_prob=0.5,           # share of zoomed-in views (the zoom pass of inference)
    max_sim_clicks=3,        # corrective clicks simulated before the gradient step (0..this)
    perturbed_prev_prob=0.15,  # share of samples whose mask prompt is a perturbed ground truth (video)
    spill_prob=0.1,          # share whose mask prompt also claims a neighbour, with a negative click on it
    pool_frames=160,         # rendered frames kept for sampling; two new frames replace old ones per step
    characters=(1, 5),       # characters per training frame (lowest, highest); the benchmark's frames hold 2-5
    touching_prob=0.0,       # share of samples whose target is drawn among characters touching another one
                             # (where one click fails most: 0.72 IoU against 0.95 for characters standing apart)
    fragmented_prob=0.0,     # share whose target is a character an occluder cuts into pieces (visible mask in 2+
                             # pieces): a fifth of the benchmark's characters and over half of its IoU loss
    render_sizes=(128, 192, 256, 384, 512),
    render_probs=(0.3, 0.15, 0.25, 0.1, 0.2),
    checkpointing_steps=500,
    validation_steps=1000,
    validation_clips=12,     # held-out clips per frame size (128 and 512) for validation; 0 = no validation
    bn_batches=40,           # batches for the precise BatchNorm statistics before validation and export
    global_attention=0,      # heads of the decoder's global self-attention block (ClickNetConfig; 0: none); a
                             # fine-tune from weights without it starts it at zero, where the network is unchanged
    attention_lr_scale=10.0,  # its learning rate over the rest's: at the same rate a block added to trained weights
                             # stayed under 1 % of its input's norm for 1 000 steps (stop 28), i.e. unused
    num_threads=1,           # one thread: on a shared 2-core machine OpenMP barriers stall (4x slower with 2)
)


ATTENTION = "decoder.attn."  # parameter-name prefix of ClickNet's optional global-attention block

# what a batch is drawn from: the export recalibrates BatchNorm on batches drawn with the run's own values
DATA_KNOBS = ("batch_size", "zoom_prob", "max_sim_clicks", "perturbed_prev_prob", "spill_prob", "characters",
              "touching_prob", "fragmented_prob", "render_sizes", "render_probs")


def parse_args(input_args=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output_dir", default="runs/clicknet")
    ap.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder")
    ap.add_argument("--export", default=None, help="write the latest checkpoint's weights here and exit")
    ap.add_argument("--average_with", nargs="+", default=None, metavar="RUN",
                    help="with --export: average the weights of the latest checkpoints of these runs with this "
                         "run's (uniformly; fine-tunes of one start), then recalibrate BatchNorm")
    ap.add_argument("--init", default=None,
                    help="start from these weights: a checkpoint folder or an exported .safetensors file such as "
                         "the shipped assets/models/clicknet/clicknet.safetensors (a fine-tune: fresh optimizer, "
                         "step 0, this run's schedule); ignored when the run resumes")
    for k, v in DEFAULTS.items():
        if isinstance(v, tuple):
            ap.add_argument(f"--{k}", type=type(v[0]), nargs="+", default=list(v))
        else:
            ap.add_argument(f"--{k}", type=type(v), default=v)
    return ap.parse_args(input_args)


# ---- data -----------------------------------------------------------------------------------------------
class FramePool:
    """Recently rendered world frames with their visible masks, refreshed a few frames per step."""

    def __init__(self, seed: int, capacity: int, sizes, probs, characters=(1, 5), touching_prob: float = 0.0,
                 fragmented_prob: float = 0.0):
        self.world = World(seed, frames=16)
        self.rng = np.random.default_rng(seed)
        self.sizes, self.probs = list(sizes), np.asarray(probs, float) / np.sum(probs)
        self.characters, self.touching_prob = (int(characters[0]), int(characters[-1])), float(touching_prob)
        self.fragmented_prob = float(fragmented_prob)
        self.frames: deque = deque(maxlen=capacity)
        self.counter = 0
        while len(self.frames) < capacity:
            self.refresh(4)

    def refresh(self, n: int = 2) -> None:
        for _ in range(n):
            self.counter += 1
            size = int(self.rng.choice(self.sizes, p=self.probs))
            mix = bool(self.rng.random() < 0.15)
            plan = self.world.plan(self.counter, n_characters=self.characters, mix=mix, size=size)
            f = int(self.rng.integers(16))
            clip = self.world.render_plan(plan, frames=[f])
            masks = clip.masks[0]
            self.frames.append((clip.frames[0], masks, touching(masks), fragmented(masks)))

    def sample(self, rng: np.random.Generator):
        """(image, all visible masks, index of the target) or None for a frame without characters. With
        probability ``fragmented_prob`` the target is drawn among the characters cut into pieces, else with
        probability ``touching_prob`` among the characters touching another one (when the frame has any)."""
        img, masks, touch, frag = self.frames[int(rng.integers(len(self.frames)))]
        areas = masks.reshape(len(masks), -1).sum(1)
        ok = np.flatnonzero(areas > 0)
        if len(ok) == 0:
            return None
        cut, near = np.intersect1d(ok, frag), np.intersect1d(ok, touch)
        if len(cut) and self.fragmented_prob > 0 and rng.random() < self.fragmented_prob:
            ok = cut
        elif len(near) and self.touching_prob > 0 and rng.random() < self.touching_prob:
            ok = near
        return img, masks, int(rng.choice(ok))


def touching(masks: np.ndarray, gap: int = 2) -> np.ndarray:
    """Indices of the visible masks (N, H, W) that touch another one: within ``gap`` pixels of it."""
    if len(masks) < 2:
        return np.zeros(0, int)
    ker = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)
    grown = [cv2.dilate(m.astype(np.uint8), ker).astype(bool) for m in masks]
    return np.array([i for i in range(len(masks))
                     if any((grown[i] & masks[j]).any() for j in range(len(masks)) if j != i)], int)


def fragmented(masks: np.ndarray) -> np.ndarray:
    """Indices of the visible masks (N, H, W) that an occluder cuts into pieces (``protocol.pieces`` ≥ 2)."""
    return np.array([i for i, m in enumerate(masks) if pieces(m) >= 2], int)


def make_view(img: np.ndarray, mask: np.ndarray, others, rng: np.random.Generator, size: int, zoom: bool):
    """Crop (whole frame with aspect jitter, or around the character) and resize to size × size; the other
    characters' masks ``others`` go through the same crop."""
    H, W = mask.shape
    if zoom:
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = max(y1 - y0, x1 - x0) * rng.uniform(1.15, 2.3)
        cw, ch = side * rng.uniform(0.85, 1.15), side * rng.uniform(0.85, 1.15)
        cx = (x0 + x1) / 2 + rng.uniform(-0.15, 0.15) * cw
        cy = (y0 + y1) / 2 + rng.uniform(-0.15, 0.15) * ch
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
    else:
        fw, fh = W * rng.uniform(0.85, 1.0), H * rng.uniform(0.85, 1.0)
        ox, oy = rng.uniform(0, W - fw), rng.uniform(0, H - fh)
        box = (ox, oy, ox + fw, oy + fh)
    v_img = resample(img, box, size)
    v_mask = resample(mask.astype(np.float32), box, size) > 0.5
    return v_img, v_mask, [resample(o.astype(np.float32), box, size) > 0.5 for o in others]


def jitter(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = img.astype(np.float32)
    if rng.random() < 0.6:
        hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
        hsv[..., 1] *= rng.uniform(0.75, 1.25)
        x = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
        x = (x - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
    if rng.random() < 0.05:
        x = np.repeat(x.mean(-1, keepdims=True), 3, -1)
    if rng.random() < 0.1:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.1:
        x = x + rng.normal(0, rng.uniform(2, 8), x.shape)
    return np.ascontiguousarray(np.clip(x, 0, 255).astype(np.uint8))


def perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A ground-truth mask moved, grown or shrunk a little: what a flow-warped previous frame looks like."""
    m = mask.astype(np.uint8)
    dx, dy = rng.integers(-8, 9, 2)
    m = cv2.warpAffine(m, np.float32([[1, 0, dx], [0, 1, dy]]), m.shape[::-1], flags=cv2.INTER_NEAREST)
    k = int(rng.integers(1, 5))
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
    m = cv2.dilate(m, ker) if rng.random() < 0.5 else cv2.erode(m, ker)
    return m.astype(np.float32)


def spill_prompt(mask: np.ndarray, others, rng: np.random.Generator):
    """A previous answer that spilled onto a neighbour, and the user's fix: the mask prompt claims the target
    and (part of) another character, a positive click sits in the target and a negative click in the claimed
    neighbour — what a negative click after a spill looks like. Prefers neighbours that touch the target.
    None when no other character is in view."""
    cands = [np.ascontiguousarray(o & ~mask) for o in others]
    cands = [o for o in cands if o.sum() >= 12]
    if not cands:
        return None
    near = cv2.dilate(mask.view(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    touching = [o for o in cands if (o & near).any()]
    other = (touching or cands)[int(rng.integers(len(touching or cands)))]
    claimed = other
    if rng.random() < 0.5:                                    # only the part of it near the target spilled
        grow = cv2.dilate(mask.view(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
        claimed = other & grow if (other & grow).sum() >= 12 else other
    prev = (mask | claimed).astype(np.uint8)
    if rng.random() < 0.5:                                    # a network's answer has rough edges
        ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(rng.integers(1, 3)) + 1,) * 2)
        prev = cv2.dilate(prev, ker) if rng.random() < 0.5 else cv2.erode(prev, ker)
    prev = prev.astype(np.float32)
    x, y, _ = first_click(mask)
    ox, oy, _ = first_click(claimed)
    return prev, [(x, y, 1), (ox, oy, 0)]


def make_batch(pool: FramePool, rng: np.random.Generator, args, cfg: ClickNetConfig):
    imgs, gts, prevs, clicks = [], [], [], []
    while len(imgs) < args.batch_size:
        s = pool.sample(rng)
        if s is None:
            continue
        img, masks, k = s
        zoom = bool(rng.random() < args.zoom_prob)
        v_img, v_mask, v_others = make_view(img, masks[k], [m for j, m in enumerate(masks) if j != k], rng,
                                            cfg.size, zoom)
        if v_mask.sum() < 12:
            continue
        if rng.random() < 0.5:                                    # horizontal flip
            v_img, v_mask, v_others = v_img[:, ::-1], v_mask[:, ::-1], [o[:, ::-1] for o in v_others]
        v_img = jitter(np.ascontiguousarray(v_img), rng)
        v_mask = np.ascontiguousarray(v_mask)
        prev = None
        spill = spill_prompt(v_mask, v_others, rng) if rng.random() < args.spill_prob else None
        if spill is not None:
            prev, pts = spill
        elif rng.random() < args.perturbed_prev_prob:
            prev = perturb(v_mask, rng)
            x, y, _ = first_click(v_mask & (prev > 0) if (v_mask & (prev > 0)).any() else v_mask)
            pts = [(x, y, 1)]
        elif rng.random() < 0.6:
            pts = [first_click(v_mask)]
        else:                                                     # any reasonably interior point
            d = cv2.distanceTransform(np.pad(v_mask, 1).view(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
            ys, xs = np.nonzero(d >= 0.35 * d.max())
            j = int(rng.integers(len(xs)))
            pts = [(int(xs[j]), int(ys[j]), 1)]
        imgs.append(v_img)
        gts.append(v_mask)
        prevs.append(prev)
        clicks.append(pts)
    return imgs, gts, prevs, clicks


def to_tensor_images(imgs) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255.0).contiguous()


def prompts(clicks, prevs, cfg) -> torch.Tensor:
    return torch.from_numpy(np.stack([
        prompt_maps(np.array([c[:2] for c in pts], float), np.array([c[2] for c in pts]), prev, cfg.size,
                    cfg.click_radius) for pts, prev in zip(clicks, prevs)]))


def upsample_logits(logits: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft-IoU. logits, target: (B, 1, S, S); the IoU term keeps small characters from being
    drowned by background pixels."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    union = (p + target - p * target).sum((1, 2, 3))
    return bce + (1 - (inter + 1) / (union + 1)).mean()


def get_lr(step: int, args) -> float:
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    t = (step - args.warmup_steps) / max(1, args.max_steps - args.warmup_steps)
    return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def simulate_clicks(net: ClickNet, feats, imgs_t, gts, prevs, clicks, n_rounds, cfg):
    """RITM's iterative training: let the network predict, click on its largest error, feed its
    prediction back as the mask prompt. Runs without gradient."""
    for _ in range(n_rounds):
        with torch.no_grad():
            logits = upsample_logits(net.decoder(feats, prompts(clicks, prevs, cfg)), cfg.size)
        probs = torch.sigmoid(logits)[:, 0].numpy()
        for i in range(len(gts)):
            pred = probs[i] > 0.5
            c = corrective_click(pred, gts[i])
            if c is not None:
                clicks[i] = clicks[i] + [c]
            prevs[i] = probs[i]


@torch.no_grad()
def recalibrate_bn(net: ClickNet, args, cfg: ClickNetConfig, seed: int = 12345) -> None:
    """Precise BatchNorm statistics: the running averages lag behind weights that still move fast (at
    step 500 they cost half the validation IoU), so recompute them as plain means over fresh batches
    drawn and click-simulated exactly like training batches."""
    pool = FramePool(seed, min(60, args.pool_frames), args.render_sizes, args.render_probs, args.characters,
                     args.touching_prob, args.fragmented_prob)
    rng = np.random.default_rng(seed)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                          # cumulative average
    net.train()
    for _ in range(args.bn_batches):
        imgs, gts, prevs, clicks = make_batch(pool, rng, args, cfg)
        imgs_t = to_tensor_images(imgs)
        n_rounds = int(rng.integers(0, args.max_sim_clicks + 1))
        if n_rounds:
            simulate_clicks(net, net.encoder(imgs_t), imgs_t, gts, prevs, clicks, n_rounds, cfg)
        net(imgs_t, prompts(clicks, prevs, cfg))
    for m in bns:
        m.momentum = 0.1
    net.eval()


@torch.no_grad()
def log_validation(net: ClickNet, n_clips: int = 12) -> dict:
    """Benchmark protocol on held-out world seeds through the real offline engine (call
    ``recalibrate_bn`` first)."""
    from .offline import OfflineSegmenter
    net.eval()
    seg = OfflineSegmenter(net=net)
    out = {}
    for size in (128, 512):
        res = []
        world = World(90_000 + size)
        for i in range(n_clips):
            clip = world.clip(i, n_characters=(2, 5), size=size, frames=4)
            seg.set_image(clip.frames[2])
            res += [click_session(seg, m, 3) for m in clip.masks[2] if m.any()]
        out[size] = np.mean(res, 0).round(4).tolist()
    net.train()
    return out


def init_weights(net: ClickNet, init: Path) -> dict:
    """Load ``init`` (a checkpoint folder, or a file written by ``save_clicknet``: the shipped weights) into
    ``net``; returns where the fine-tune began, for its config."""
    from ..train import checkpoint
    if init.is_file() and init.suffix == ".safetensors":
        src = load_clicknet(init)                  # ValueError naming the file when it is not ClickNet's
        # the one difference allowed: this run adds the attention block the file lacks (it starts as an identity)
        adds_attention = src.cfg.global_attention == 0 < net.cfg.global_attention
        if (replace(src.cfg, global_attention=net.cfg.global_attention) if adds_attention else src.cfg) != net.cfg:
            raise SystemExit(f"--init: {init} holds a ClickNet of another shape ({asdict(src.cfg)}); this trainer "
                             f"builds {asdict(net.cfg)}")
        missing, _ = net.load_state_dict(src.state_dict(), strict=not adds_attention)
        assert all(k.startswith(ATTENTION) for k in missing), missing
        return {"weights": str(init), "step": read_clicknet_metadata(init).get("step")}
    if not (init / "state.json").is_file():
        raise SystemExit(f"--init: {init} is neither a checkpoint folder (no state.json) nor a ClickNet "
                         ".safetensors file; use a path like runs/clicknet/checkpoints/step_00004000 or "
                         "assets/models/clicknet/clicknet.safetensors")
    return {"checkpoint": str(init), "step": checkpoint.load(init, {"net": net})["step"]}


def _run_config(folder: Path) -> ClickNetConfig:
    """The network config a checkpoint folder was trained with."""
    from ..train import checkpoint
    return ClickNetConfig.from_dict(checkpoint.read_config(folder).get("net", {}))


def _latest(run: str | Path, flag: str) -> Path:
    """The latest checkpoint folder of ``run``, or exit with a message naming ``flag``."""
    from ..train import checkpoint
    folder = checkpoint.resolve(run, "latest")
    if folder is None:
        raise SystemExit(f"{flag}: no checkpoint under {run}/checkpoints")
    return folder


def average_weights(net: ClickNet, folders: list[Path]) -> list[str]:
    """Set ``net``'s weights to the uniform mean of the checkpoints in ``folders`` (a weight average of
    fine-tunes that began from the same weights stays in one basin, so the mean is a model too). BatchNorm
    running statistics are averaged as well but are meant to be recalibrated afterwards."""
    from ..train import checkpoint
    total = None
    for folder in folders:
        m = ClickNet(net.cfg)
        checkpoint.load(folder, {"net": m})
        sd = m.state_dict()
        total = {k: v.double() for k, v in sd.items()} if total is None else {k: total[k] + sd[k].double()
                                                                               for k in total}
    ref = net.state_dict()
    net.load_state_dict({k: (total[k] / len(folders)).to(ref[k].dtype) for k in ref})
    return [str(f) for f in folders]


def main(args) -> None:
    torch.set_num_threads(args.num_threads)
    cv2.setNumThreads(1)
    torch.manual_seed(args.seed)
    from ..train import checkpoint
    out = Path(args.output_dir)
    folder = _latest(out, "--export") if args.export else None
    # an export rebuilds the network the run trained, whatever this command's flags say
    cfg = _run_config(folder) if folder else ClickNetConfig(global_attention=args.global_attention)
    net = ClickNet(cfg)
    if args.export:
        state = checkpoint.load(folder, {"net": net})
        averaged = None
        if args.average_with:
            averaged = average_weights(net, [folder] + [_latest(r, "--average_with") for r in args.average_with])
        # BatchNorm statistics from batches drawn as the run drew them (its sample mix, characters, curriculum)
        trained = state.get("config", {})
        recalibrate_bn(net, argparse.Namespace(**{**vars(args), **{k: trained[k] for k in DATA_KNOBS if k in trained}}),
                       cfg)
        extra = {"step": state["step"], "validation": state.get("validation", {}),
                 "train_config": state.get("config", {})}
        if averaged:
            # the run's own validation measured other weights: validate the average itself (after the BatchNorm
            # recalibration, as a run validates), and keep every averaged run's config, not only this one's
            extra.update(validation=log_validation(net, args.validation_clips) if args.validation_clips > 0 else {},
                         averaged=averaged, averaged_train_configs=[checkpoint.read_config(f) for f in averaged])
        save_clicknet(net, args.export, extra)
        print(f"exported {folder} → {args.export}")
        return
    groups: dict[bool, list] = {False: [], True: []}          # is it the attention block's?
    for n, p in net.named_parameters():
        groups[n.startswith(ATTENTION)].append(p)
    opt = torch.optim.AdamW([{"params": groups[False], "lr_scale": 1.0}]
                            + ([{"params": groups[True], "lr_scale": args.attention_lr_scale}] if groups[True] else []),
                            lr=args.lr, weight_decay=args.weight_decay)
    step = 0
    config = {k: v for k, v in vars(args).items() if k in DEFAULTS}
    config["net"] = asdict(cfg)
    resume = checkpoint.resolve(out, args.resume_from_checkpoint)
    if resume is not None and (trained := _run_config(resume)) != cfg:
        raise SystemExit(f"--resume_from_checkpoint: {resume} trained a ClickNet of another shape "
                         f"({asdict(trained)}); resume it with the same --global_attention")
    if resume is not None:
        step = checkpoint.load(resume, {"net": net}, opt)["step"]
        print(f"resumed from {resume} at step {step}")
    elif args.init:
        config["init"] = init_weights(net, Path(args.init))
        print(f"fine-tuning from {args.init}")
    pool = FramePool(args.seed * 7919 + step, args.pool_frames, args.render_sizes, args.render_probs,
                     args.characters, args.touching_prob, args.fragmented_prob)
    rng = np.random.default_rng([args.seed, step])
    net.train()
    t0, ema = time.time(), None
    validation = {}
    while step < args.max_steps:
        for g in opt.param_groups:
            g["lr"] = get_lr(step, args) * g.get("lr_scale", 1.0)
        pool.refresh(2)
        imgs, gts, prevs, clicks = make_batch(pool, rng, args, cfg)
        imgs_t = to_tensor_images(imgs)
        n_rounds = int(rng.integers(0, args.max_sim_clicks + 1))
        if n_rounds:
            with torch.no_grad():
                feats = net.encoder(imgs_t)
            simulate_clicks(net, feats, imgs_t, gts, prevs, clicks, n_rounds, cfg)
        logits = upsample_logits(net(imgs_t, prompts(clicks, prevs, cfg)), cfg.size)
        target = torch.from_numpy(np.stack(gts)).float()[:, None]
        loss = loss_fn(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step} loss {ema:.4f} lr {get_lr(step, args):.2e} {(time.time() - t0) / 50:.2f}s/step",
                  flush=True)
            t0 = time.time()
        if args.validation_clips > 0 and (step % args.validation_steps == 0 or step == args.max_steps):
            recalibrate_bn(net, args, cfg)
            validation = log_validation(net, args.validation_clips)
            net.train()
            print(f"step {step} validation mIoU@1..3: {json.dumps(validation)}", flush=True)
        if step % args.checkpointing_steps == 0 or step == args.max_steps:
            checkpoint.save(out, step, {"net": net}, opt, {"config": config, "validation": validation})


if __name__ == "__main__":
    main(parse_args())
