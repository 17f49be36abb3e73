"""Behaviour fidelity: recover a character's behaviour signature from its keypoint track.

A world character's behaviour (``CharacterSpec.behaviour``) is (gait_hz, bounce, arm_swing): strides per
second, how far the body rises per step (fraction of standing height) and the arm-swing amplitude
(radians). While walking, every one of them is visible in OpenPose-18 keypoints:

* gait frequency — the ankles' horizontal separation and the arms' angles oscillate once per stride: the
  frequency that best explains them (a least-squares periodogram, so uneven visibility and short clips
  work; harmonics of a stride are not mistaken for it because one sinusoid must explain all signals);
* bounce — the lowest ankle is the foot on the ground, so its rise above the lowest point follows
  ``bounce · h · |sin(π · gait · t + φ)|`` (one bump per step); fitted at the recovered gait frequency;
* arm swing — the shoulder→wrist direction swings by ``arm_swing`` radians around its mean (the elbow
  bend is constant while walking, so the direction turns exactly as the upper arm does).

Standing height comes from the skeleton (``regions.skeleton_height``). Runs stride 1.35× faster than
walks; idle motions show no gait at all (``periodicity`` says how well a gait explains the track).

    est = estimate_behaviour(kp[:, track], fps)           # kp: (F, T, 18, 3)
    name, dist = nearest_signature(est, {c.id: c.behaviour for c in NAMED})
    behaviour_fidelity(est, spec.behaviour)               # errors per component and a 0..1 score
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..pose.openpose import J
from ..world.characters import SIGNATURE_SCALE
from .regions import track_heights

# The world's spread of each component (Hz, fraction of height, radians): distances are measured in these
# units so no component dominates — the same units the world and the CCE work compare signatures in.
SCALE = SIGNATURE_SCALE.astype(np.float64)
NAMES = ("gait_hz", "bounce", "arm_swing")


@dataclass
class BehaviourEstimate:
    gait_hz: float
    bounce: float
    arm_swing: float
    height_px: float
    periodicity: float         # share of the gait signals' variance one sinusoid at gait_hz explains (0..1)

    def vector(self) -> np.ndarray:
        return np.array([self.gait_hz, self.bounce, self.arm_swing], np.float64)

    def to_dict(self) -> dict:
        return {k: round(float(v), 5) for k, v in asdict(self).items()}


def _fit_sinusoid(t: np.ndarray, y: np.ndarray, w: np.ndarray, freq: float) -> tuple[float, float]:
    """Weighted least squares y ≈ a·sin(2πft) + b·cos(2πft) + c → (amplitude, explained variance share)."""
    X = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], 1)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    resid = y - X @ coef
    var = np.sum(w * (y - np.sum(w * y) / max(w.sum(), 1e-9)) ** 2)
    return float(np.hypot(coef[0], coef[1])), float(1 - np.sum(w * resid ** 2) / var) if var > 0 else 0.0


def _gait_signals(kp: np.ndarray, h: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(signal, weight) pairs that oscillate once per stride: ankle separation (in heights) and the two
    shoulder→wrist angles (radians)."""
    vis = kp[..., 2] > 0
    out = []
    a, b = J["r_ankle"], J["l_ankle"]
    out.append(((kp[:, a, 0] - kp[:, b, 0]) / h, (vis[:, a] & vis[:, b]).astype(float)))
    for s, w in (("r_shoulder", "r_wrist"), ("l_shoulder", "l_wrist")):
        d = kp[:, J[w], :2] - kp[:, J[s], :2]
        out.append((np.arctan2(d[:, 0], d[:, 1]), (vis[:, J[s]] & vis[:, J[w]]).astype(float)))
    return out


def estimate_gait(t: np.ndarray, signals: list[tuple[np.ndarray, np.ndarray]], fps: float,
                  lo: float = 0.3, hi: float = 3.6) -> tuple[float, float]:
    """The stride frequency best explaining all signals together → (Hz, mean explained variance)."""
    hi = min(hi, 0.49 * fps)                                  # above Nyquist a frequency cannot be told apart
    usable = [(y, w) for y, w in signals if w.sum() >= 4 and np.ptp(y[w > 0]) > 1e-6]
    if not usable:
        return float("nan"), 0.0

    def score(f):
        return np.mean([_fit_sinusoid(t, y, w, f)[1] for y, w in usable])

    grid = np.arange(lo, hi, 0.01)
    scores = np.array([score(f) for f in grid])
    best = grid[int(np.argmax(scores))]
    fine = np.arange(max(lo, best - 0.012), min(hi, best + 0.012), 0.001)
    fs = np.array([score(f) for f in fine])
    return float(fine[int(np.argmax(fs))]), float(fs.max())


def estimate_bounce(t: np.ndarray, kp: np.ndarray, h: float, gait_hz: float) -> float:
    """Rise of the grounded (lowest) ankle per step, as a fraction of height: fit c + b·|sin(πf·2t + φ)|."""
    vis = kp[..., 2] > 0
    both = vis[:, J["r_ankle"]] & vis[:, J["l_ankle"]]
    if both.sum() < 4 or not np.isfinite(gait_hz):
        return float("nan")
    low = np.maximum(kp[:, J["r_ankle"], 1], kp[:, J["l_ankle"], 1])[both]
    tt = t[both]
    lift = low.max() - low                                 # image y grows downwards
    best = (np.inf, 0.0)
    for phi in np.linspace(0, np.pi, 90, endpoint=False):
        X = np.stack([np.abs(np.sin(2 * np.pi * gait_hz * tt + phi)), np.ones_like(tt)], 1)
        coef, *_ = np.linalg.lstsq(X, lift, rcond=None)
        err = float(np.sum((lift - X @ coef) ** 2))
        if err < best[0]:
            best = (err, float(coef[0]))
    return max(0.0, best[1] / h)


def estimate_behaviour(track: np.ndarray, fps: float) -> BehaviourEstimate:
    """One track's keypoints (F, 18, 3) sampled at ``fps`` → its behaviour signature."""
    kp = np.asarray(track, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (18, 3):
        raise ValueError(f"track: expected (frames, 18, 3) keypoints of one character, got shape {kp.shape}")
    if not fps > 0:
        raise ValueError(f"fps: {fps!r} must be positive")
    if kp.shape[0] < 6:
        raise ValueError(f"track: {kp.shape[0]} frames are too few to see a gait; give at least 6 (better 2 s)")
    heights = track_heights(kp[:, None].astype(np.float32))[:, 0]
    h = float(np.median(heights[heights > 0])) if (heights > 0).any() else float("nan")
    if not np.isfinite(h) or h <= 0:
        raise ValueError("track: no frame shows enough joints (neck, hips, a leg) to measure the body's height")
    t = np.arange(kp.shape[0]) / float(fps)
    signals = _gait_signals(kp, h)
    gait, periodicity = estimate_gait(t, signals, fps)
    swings = [_fit_sinusoid(t, y, w, gait)[0] for y, w in signals[1:] if w.sum() >= 4] if np.isfinite(gait) else []
    return BehaviourEstimate(gait, estimate_bounce(t, kp, h, gait), float(np.mean(swings)) if swings else float("nan"),
                             h, periodicity)


def estimate_tracks(keypoints: np.ndarray, fps: float) -> list[BehaviourEstimate]:
    """(F, T, 18, 3) → one estimate per track."""
    kp = np.asarray(keypoints)
    if kp.ndim != 4:
        raise ValueError(f"keypoints: expected (frames, tracks, 18, 3), got shape {kp.shape}")
    return [estimate_behaviour(kp[:, k], fps) for k in range(kp.shape[1])]


def signature_distance(est: BehaviourEstimate | np.ndarray, target) -> float:
    """Distance between an estimate and a ``Behaviour`` (or a (3,) vector) in ``SCALE`` units."""
    a = est.vector() if isinstance(est, BehaviourEstimate) else np.asarray(est, np.float64)
    b = target.vector() if hasattr(target, "vector") else np.asarray(target, np.float64)
    return float(np.linalg.norm((a - b) / SCALE))


def nearest_signature(est: BehaviourEstimate, candidates: dict) -> tuple[str, float]:
    """The candidate (name → ``Behaviour``) whose signature is nearest → (name, distance)."""
    if not candidates:
        raise ValueError("candidates: give at least one named behaviour to compare with")
    d = {k: signature_distance(est, v) for k, v in candidates.items()}
    name = min(d, key=d.get)
    return name, d[name]


def behaviour_fidelity(est: BehaviourEstimate, target) -> dict:
    """Per-component absolute errors, relative errors and a 0..1 score exp(−d²/2) with d the distance
    in ``SCALE`` units (1 = the signature recovered exactly)."""
    b = target.vector() if hasattr(target, "vector") else np.asarray(target, np.float64)
    a = est.vector()
    err = a - b
    d = signature_distance(est, b)
    return {"estimate": dict(zip(NAMES, map(float, a))), "target": dict(zip(NAMES, map(float, b))),
            "abs_error": dict(zip(NAMES, map(float, np.abs(err)))),
            "distance": d, "score": float(np.exp(-0.5 * d * d)) if np.isfinite(d) else 0.0}
