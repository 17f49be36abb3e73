"""Motions of the embedded world: for 1–5 characters, a pose timeline each (``body.POSE_FIELDS``) and a
CCE caption. Every motion is played *through* each character's behaviour signature: gait frequency sets
step timing, bounce sets how high the body rises (and jump height), arm swing sets arm amplitude (and how
big waves and dance moves are), and the idle habit fills every moment a character is not travelling.

A motion function gets ``(specs, t, layout, rng)`` and returns one pose dict per character plus the
caption's role order; ``layout`` holds the stage geometry (pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .body import rest_pose
from .characters import CharacterSpec
from .shows import GROUND_TOP

TAU = 2 * np.pi


@dataclass
class Layout:
    width: int
    height: int
    depth: np.ndarray        # (N,) 0 = nearest lane … 1 = farthest

    def ground(self, z):
        return self.height * (0.95 - (0.95 - GROUND_TOP - 0.08) * z)

    def scale(self, spec: CharacterSpec, z):
        return self.height * 0.56 * spec.height * (1 - 0.3 * z)

    @property
    def left(self) -> float:
        return 0.1 * self.width

    @property
    def right(self) -> float:
        return 0.9 * self.width

    def slots(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n well-spread x positions across the stage, left to right."""
        span = min(0.8, 0.22 * n) * self.width
        xs = self.width / 2 + (np.arange(n) - (n - 1) / 2) * (span / max(1, n - 1) if n > 1 else 0)
        return xs + rng.uniform(-0.025, 0.025, n) * self.width


# ---------------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------------
def _smooth(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _base(spec: CharacterSpec, t: np.ndarray, x, z: float, lay: Layout) -> dict:
    p = rest_pose(len(t))
    p["x"][:] = x
    p["ground"][:] = lay.ground(z)
    p["scale"][:] = lay.scale(spec, z)
    return p


def apply_gait(p: dict, spec: CharacterSpec, t: np.ndarray, active: np.ndarray, run: bool = False, phase: float = 0.0):
    """Walk/run cycle on the frames where ``active`` (0..1 weight) is > 0, blended into the pose."""
    b = spec.behaviour
    w = np.asarray(active, np.float32)
    hz = b.gait_hz * (1.35 if run else 1.0)
    ph = TAU * hz * t + phase
    leg_amp, knee_amp = (0.62, 1.25) if run else (0.38, 0.6)
    arm_amp = b.arm_swing * (1.3 if run else 1.0)
    h = p["scale"]
    p["r_hip"] = p["r_hip"] * (1 - w) + w * leg_amp * np.sin(ph)
    p["l_hip"] = p["l_hip"] * (1 - w) + w * leg_amp * np.sin(ph + np.pi)
    p["r_knee"] = p["r_knee"] * (1 - w) + w * knee_amp * np.clip(np.sin(ph - 1.2), 0, None)
    p["l_knee"] = p["l_knee"] * (1 - w) + w * knee_amp * np.clip(np.sin(ph + np.pi - 1.2), 0, None)
    p["r_swing"] = p["r_swing"] * (1 - w) + w * arm_amp * np.sin(ph + np.pi)
    p["l_swing"] = p["l_swing"] * (1 - w) + w * arm_amp * np.sin(ph)
    bend = 1.3 if run else 0.35
    p["r_elbow"] = p["r_elbow"] * (1 - w) + w * bend
    p["l_elbow"] = p["l_elbow"] * (1 - w) + w * bend
    p["spread"] = p["spread"] * (1 - w)
    p["lift"] = p["lift"] + w * b.bounce * (1.5 if run else 1.0) * h * np.abs(np.sin(ph))
    p["lean"] = p["lean"] + w * (0.16 if run else 0.03) * p["facing"]


def apply_idle(p: dict, spec: CharacterSpec, t: np.ndarray, active: np.ndarray, phase: float = 0.0):
    """The character's idle habit, weighted by ``active``."""
    w = np.asarray(active, np.float32)
    h = p["scale"]
    habit = spec.behaviour.idle
    tt = t + phase
    p["lift"] = p["lift"] + w * 0.004 * h * (1 + np.sin(TAU * 0.5 * tt))      # breathing
    if habit == "bob":
        k = 0.32 * (1 + np.sin(TAU * 1.4 * tt)) / 2
        p["r_knee"] += w * k
        p["l_knee"] += w * k
        p["r_hip"] -= w * k / 2
        p["l_hip"] -= w * k / 2
    elif habit == "tap":
        s = np.clip(np.sin(TAU * 2.0 * tt), 0, None)
        p["r_knee"] += w * 0.7 * s
        p["r_hip"] += w * 0.35 * s
    elif habit == "sway":
        p["lean"] += w * 0.09 * np.sin(TAU * 0.6 * tt)
        p["r_swing"] += w * 0.15 * np.sin(TAU * 0.6 * tt)
        p["l_swing"] -= w * 0.15 * np.sin(TAU * 0.6 * tt)
    elif habit == "fidget":
        p["r_elbow"] += w * (0.7 + 0.6 * np.sin(TAU * 1.7 * tt))
        p["r_swing"] += w * 0.5
        p["l_swing"] += w * 0.3 * np.sin(TAU * 1.1 * tt + 1)
        p["tilt"] += w * 0.08 * np.sin(TAU * 0.9 * tt)
    elif habit == "hop":
        s = np.clip(np.sin(TAU * 1.6 * tt), 0, None)
        p["lift"] += w * 0.07 * h * s
        p["r_knee"] += w * 0.4 * (1 - s)
        p["l_knee"] += w * 0.4 * (1 - s)
        p["r_abd"] += w * 0.3 * s
        p["l_abd"] += w * 0.3 * s
    elif habit == "tilt":
        p["tilt"] += w * 0.22 * np.tanh(4 * np.sin(TAU * 0.7 * tt))
    elif habit == "float":
        p["lift"] += w * 0.05 * h * (1 + np.sin(TAU * 0.6 * tt)) / 2
        p["r_abd"] += w * 0.45
        p["l_abd"] += w * 0.45


def _travel(p, spec, t, x0, x1, t0, t1, run=False, phase=0.0):
    """Move from x0 to x1 between times t0 and t1 (gait while moving, idle before/after)."""
    u = np.clip((t - t0) / max(1e-6, t1 - t0), 0, 1)
    p["x"] = (x0 + (x1 - x0) * u).astype(np.float32)
    moving = ((t >= t0) & (t <= t1)).astype(np.float32)
    d = np.sign(x1 - x0) if x1 != x0 else 0.0
    ramp = np.clip(np.minimum((t - t0 + 0.15) / 0.3, (t1 + 0.15 - t) / 0.3), 0, 1)
    p["facing"] = (0.85 * d * ramp + p["facing"] * (1 - ramp)).astype(np.float32)
    apply_gait(p, spec, t, moving, run, phase)
    apply_idle(p, spec, t, 1 - moving, phase)


def _speed(spec, lay, z, run=False):
    return spec.behaviour.stride * lay.scale(spec, z) * spec.behaviour.gait_hz * (2.0 if run else 1.0)


# ---------------------------------------------------------------------------------------------------
# motions
# ---------------------------------------------------------------------------------------------------
def _locomote(specs, t, lay, rng, run):
    T = t[-1] + (t[1] - t[0] if len(t) > 1 else 0.1)
    d = rng.choice([-1.0, 1.0])
    poses = []
    for i, s in enumerate(specs):
        z = lay.depth[i]
        dist = min(_speed(s, lay, z, run) * T, 0.75 * (lay.right - lay.left))
        x0 = rng.uniform(lay.left, lay.right - dist) if d > 0 else rng.uniform(lay.left + dist, lay.right)
        p = _base(s, t, x0, z, lay)
        _travel(p, s, t, x0, x0 + d * dist, -1.0, T + 1.0, run, rng.uniform(0, TAU))
        poses.append(p)
    return poses, {"direction": "right" if d > 0 else "left"}


def walk(specs, t, lay, rng):
    return _locomote(specs, t, lay, rng, run=False)


def run_(specs, t, lay, rng):
    return _locomote(specs, t, lay, rng, run=True)


def jump(specs, t, lay, rng):
    xs = lay.slots(len(specs), rng)
    poses = []
    for i, s in enumerate(specs):
        b = s.behaviour
        p = _base(s, t, xs[i], lay.depth[i], lay)
        p["facing"][:] = rng.uniform(-0.2, 0.2)
        period = 1.0 / (0.35 + 0.45 * b.gait_hz)
        u = ((t + rng.uniform(0, period)) % period) / period          # 0..1 within a jump cycle
        crouch = np.exp(-((u - 0.15) / 0.08) ** 2) + np.exp(-((u - 0.9) / 0.06) ** 2) * 0.6
        air = np.clip(np.sin(np.pi * (u - 0.25) / 0.55), 0, None) * ((u > 0.25) & (u < 0.8))
        height = (0.12 + 1.6 * b.bounce) * p["scale"]
        p["lift"] = (height * air).astype(np.float32)
        for side in ("r", "l"):
            p[f"{side}_knee"] += 0.9 * crouch + 0.5 * air
            p[f"{side}_hip"] -= 0.45 * crouch - 0.25 * air
            p[f"{side}_abd"] += (0.6 + 1.6 * b.arm_swing) * air + 0.2
            p[f"{side}_swing"] -= 0.5 * crouch
        apply_idle(p, s, t, 0.3 * (1 - air))
        poses.append(p)
    return poses, {}


def wave(specs, t, lay, rng):
    xs = lay.slots(len(specs), rng)
    poses = []
    for i, s in enumerate(specs):
        b = s.behaviour
        p = _base(s, t, xs[i], lay.depth[i], lay)
        if i == 0:
            target = 0.0 if len(specs) == 1 else np.sign(xs[1] - xs[0]) * 0.45
            p["facing"][:] = target
            rise = _smooth(t / 0.4)
            p["r_abd"] = (0.12 + 2.45 * rise).astype(np.float32)
            osc = np.sin(TAU * (1.2 + 1.0 * b.gait_hz) * t)
            p["r_elbow"] = (0.15 + rise * (0.6 + (0.25 + 0.45 * b.arm_swing) * osc)).astype(np.float32)
            apply_idle(p, s, t, np.full_like(t, 0.5))
        else:
            p["facing"][:] = -0.3 * np.sign(xs[i] - xs[0])
            apply_idle(p, s, t, np.ones_like(t), rng.uniform(0, 2))
        poses.append(p)
    return poses, {"roles": [0] + list(range(1, len(specs)))}


def dance(specs, t, lay, rng):
    xs = lay.slots(len(specs), rng)
    poses = []
    for i, s in enumerate(specs):
        b = s.behaviour
        p = _base(s, t, xs[i], lay.depth[i], lay)
        w = TAU * b.gait_hz * t + rng.uniform(0, TAU)
        amp = 0.5 + 0.9 * b.arm_swing
        p["r_abd"] = (1.3 + amp * np.sin(w)).astype(np.float32)
        p["l_abd"] = (1.3 - amp * np.sin(w)).astype(np.float32)
        p["r_elbow"] = (0.6 + 0.4 * np.cos(w)).astype(np.float32)
        p["l_elbow"] = (0.6 - 0.4 * np.cos(w)).astype(np.float32)
        p["lean"] = (0.12 * np.sin(w / 2)).astype(np.float32)
        k = np.abs(np.sin(w))
        p["r_knee"] += 0.35 * k
        p["l_knee"] += 0.35 * k
        p["lift"] += (b.bounce * p["scale"] * np.abs(np.cos(w))).astype(np.float32)
        p["x"] = (xs[i] + 0.06 * p["scale"] * np.sin(w / 2)).astype(np.float32)
        p["facing"] = (0.35 * np.sin(w / 2)).astype(np.float32)
        poses.append(p)
    return poses, {}


def chase(specs, t, lay, rng):
    T = t[-1] + (t[1] - t[0] if len(t) > 1 else 0.1)
    d = rng.choice([-1.0, 1.0])
    n = len(specs)
    span = lay.right - lay.left
    poses = []
    # track 0 chases track 1 (caption: "A chases B"); others tag along behind
    order = [1, 0] + list(range(2, n))       # front runner first
    for rank, i in enumerate(order):
        s = specs[i]
        start = lay.left + 0.45 * span - rank * 0.12 * span if d > 0 else lay.right - 0.45 * span + rank * 0.12 * span
        dist = min(_speed(s, lay, lay.depth[i], True) * T, 0.5 * span)
        end = start + d * dist
        p = _base(s, t, start, lay.depth[i], lay)
        _travel(p, s, t, start, end, -1.0, T + 1.0, True, rng.uniform(0, TAU))
        if rank == 1:     # the chaser reaches forward
            p["r_swing"] = p["r_swing"] * 0.4 + 1.1
        poses.append((i, p))
    return [p for _, p in sorted(poses, key=lambda ip: ip[0])], {"direction": "right" if d > 0 else "left"}


def _meet(specs, t, lay, rng, kind):
    n = len(specs)
    xs = lay.slots(n, rng)
    T = t[-1] + (t[1] - t[0] if len(t) > 1 else 0.1)
    a, b = 0, 1
    reach = 0.4 if n == 2 else 0.26            # with onlookers at the edges, the two start nearer the middle
    xa, xb = lay.width * (0.5 - reach), lay.width * (0.5 + reach)
    if rng.random() < 0.5:
        xa, xb = xb, xa
    mid = (xa + xb) / 2
    gap = 0.16 * lay.height if kind == "highfive" else 0.07 * lay.height
    t_meet = 0.55 * T
    poses = [None] * n
    for i, (x0, x1) in ((a, (xa, mid - np.sign(xb - xa) * gap / 2)), (b, (xb, mid + np.sign(xb - xa) * gap / 2))):
        s = specs[i]
        p = _base(s, t, x0, lay.depth[i], lay)
        _travel(p, s, t, x0, x1, 0.05 * T, t_meet, False, rng.uniform(0, TAU))
        toward = np.sign(x1 - x0)
        after = _smooth((t - t_meet) / 0.25)
        p["facing"] = (p["facing"] * (1 - after) + 0.6 * toward * after).astype(np.float32)
        # the arm nearer the partner: right arm when the partner is on the image-left (toward < 0)
        near, far = ("r", "l") if toward < 0 else ("l", "r")
        if kind == "highfive":
            p[f"{near}_abd"] = (p[f"{near}_abd"] * (1 - after) + 2.3 * after).astype(np.float32)
            p[f"{near}_swing"] = (p[f"{near}_swing"] * (1 - after)).astype(np.float32)
            p[f"{near}_elbow"] = (p[f"{near}_elbow"] * (1 - after) + 0.2 * after).astype(np.float32)
            p["lift"] += (after * s.behaviour.bounce * p["scale"] * np.abs(np.sin(TAU * s.behaviour.gait_hz * t))).astype(np.float32)
        else:
            for side in (near, far):
                p[f"{side}_abd"] = (p[f"{side}_abd"] * (1 - after) + 1.35 * after).astype(np.float32)
                p[f"{side}_swing"] = (p[f"{side}_swing"] * (1 - after)).astype(np.float32)
                p[f"{side}_elbow"] = (p[f"{side}_elbow"] * (1 - after) + 1.3 * after).astype(np.float32)
            p["lean"] += (0.1 * toward * after + 0.05 * after * np.sin(TAU * 0.8 * t)).astype(np.float32)
        poses[i] = p
    others = [i for i in range(n) if i not in (a, b)]
    if others:
        # onlookers stand towards the edges, away from where the two meet
        edge = [lay.left + 0.02 * lay.width, lay.right - 0.02 * lay.width, lay.left + 0.14 * lay.width,
                lay.right - 0.14 * lay.width]
        ox = np.array(edge[:len(others)]) + rng.uniform(-0.02, 0.02, len(others)) * lay.width
        for i, x in zip(others, ox):
            p = _base(specs[i], t, x, lay.depth[i], lay)
            p["facing"][:] = np.sign(mid - x) * 0.3
            apply_idle(p, specs[i], t, np.ones_like(t), rng.uniform(0, 2))
            poses[i] = p
    return poses, {}


def highfive(specs, t, lay, rng):
    return _meet(specs, t, lay, rng, "highfive")


def hug(specs, t, lay, rng):
    return _meet(specs, t, lay, rng, "hug")


def swap(specs, t, lay, rng):
    n = len(specs)
    xs = lay.slots(n, rng)
    if n == 2:
        perm = np.array([1, 0])
    else:
        while True:
            perm = rng.permutation(n)
            if np.any(perm != np.arange(n)):
                break
    T = t[-1] + (t[1] - t[0] if len(t) > 1 else 0.1)
    t0, t1 = rng.uniform(0.05, 0.15) * T, rng.uniform(0.8, 0.9) * T
    poses = []
    for i, s in enumerate(specs):
        p = _base(s, t, xs[i], lay.depth[i], lay)
        if perm[i] == i:
            p["facing"][:] = rng.uniform(-0.3, 0.3)
            apply_idle(p, s, t, np.ones_like(t), rng.uniform(0, 2))
        else:
            _travel(p, s, t, xs[i], xs[perm[i]], t0, t1, False, rng.uniform(0, TAU))
        poses.append(p)
    return poses, {"permutation": [int(v) for v in perm]}


@dataclass(frozen=True)
class MotionDef:
    name: str
    fn: Callable
    min_chars: int
    verb: str            # caption template; {0}, {1} … are "[character: Name]" of tracks


MOTIONS: dict[str, MotionDef] = {m.name: m for m in (
    MotionDef("walk", walk, 1, "{all} {walk_s} to the {direction}."),
    MotionDef("run", run_, 1, "{all} {run_s} to the {direction}."),
    MotionDef("jump", jump, 1, "{all} {jump_s}."),
    MotionDef("wave", wave, 1, "{0} waves{at1}."),
    MotionDef("dance", dance, 1, "{all} {dance_s}."),
    MotionDef("chase", chase, 2, "{0} chases {1}."),
    MotionDef("highfive", highfive, 2, "{0} high-fives {1}."),
    MotionDef("hug", hug, 2, "{0} hugs {1}."),
    MotionDef("swap", swap, 2, "{all} swap places."),
)}
INTERACTIONS = ("chase", "highfive", "hug", "swap")


def tag(name: str) -> str:
    return f"[character: {name}]"


def caption(motion: str, names: list[str], info: dict) -> str:
    tags = [tag(n) for n in names]
    if len(tags) == 1:
        all_ = tags[0]
    else:
        all_ = ", ".join(tags[:-1]) + " and " + tags[-1]
    plural = len(tags) > 1
    fields = dict(all=all_, direction=info.get("direction", "right"),
                  walk_s="walk" if plural else "walks", run_s="run" if plural else "runs",
                  jump_s="jump" if plural else "jumps", dance_s="dance" if plural else "dances",
                  at1=f" at {tags[1]}" if len(tags) > 1 else "")
    verb = MOTIONS[motion].verb
    text = verb.format(*tags, **fields)
    if "{all}" not in verb:
        used = 2 if "{1}" in verb or "{at1}" in verb else 1
        rest = tags[used:]
        if rest:
            who = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
            text += f" {who} {'watches' if len(rest) == 1 else 'watch'}."
    return text
