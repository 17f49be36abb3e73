"""The articulated body: pose parameters → OpenPose-18 keypoints (2-D forward kinematics).

A pose is a set of per-frame arrays (``POSE_FIELDS``), all shape (F,):

    x, ground      hip-centre x and the ground line y under the character, pixels
    scale          standing height h in pixels (depth perspective shrinks it)
    lift           how far the lowest foot is above the ground (bounce, jumps), pixels
    lean, tilt     torso lean and extra head tilt, radians (positive leans towards +x)
    facing         -1 (turned to image-left) … 0 (to camera) … +1 (to image-right)
    r_abd, l_abd   arm abduction (outwards from the body, radians)
    r_swing, l_swing  arm swing towards the facing direction (radians)
    r_elbow, l_elbow  elbow bend (radians, forearm folds forwards)
    r_hip, l_hip   leg swing towards the facing direction (radians); spread is a separate field
    r_knee, l_knee knee bend (radians, shin folds backwards)
    spread         legs apart (radians each side)

The lowest ankle is put on the ground (minus ``lift``), so gaits never float or sink.
"""

from __future__ import annotations

import numpy as np

from ..pose.openpose import J
from .characters import HEAD_GEOMETRY, CharacterSpec

POSE_FIELDS = ("x", "ground", "scale", "lift", "lean", "tilt", "facing", "r_abd", "l_abd", "r_swing", "l_swing",
               "r_elbow", "l_elbow", "r_hip", "l_hip", "r_knee", "l_knee", "spread")
FOOT = 0.035      # ankle height above the sole, fraction of h
NECK = 0.025


def rest_pose(frames: int) -> dict[str, np.ndarray]:
    p = {k: np.zeros(frames, np.float32) for k in POSE_FIELDS}
    p["scale"][:] = 1.0
    p["r_abd"][:] = p["l_abd"][:] = 0.12
    p["r_elbow"][:] = p["l_elbow"][:] = 0.15
    p["spread"][:] = 0.06
    return p


def torso_length(spec: CharacterSpec) -> float:
    return max(0.12, 1.0 - FOOT - spec.legs - NECK - 2 * spec.head)


def _dir(a: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(a), np.cos(a)], -1)      # angle from straight down, +x positive


def forward_kinematics(spec: CharacterSpec, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return ``{"keypoints": (F, 18, 3), "head": (F, 2), "head_r": (F,), "h": (F,), "facing": (F,),
    "lean": (F,), "head_angle": (F,), "dir": (F,)}`` in pixels."""
    h = np.asarray(p["scale"], np.float32)
    F = h.shape[0]
    f = np.clip(p["facing"], -1, 1).astype(np.float32)
    sgn = np.where(f >= 0, 1.0, -1.0).astype(np.float32)
    comp = 1.0 - 0.45 * np.abs(f)
    lean = p["lean"].astype(np.float32)
    up = np.stack([np.sin(lean), -np.cos(lean)], -1)
    right = np.stack([np.cos(lean), np.sin(lean)], -1)
    r = spec.head * h
    hip = np.stack([p["x"], np.zeros(F, np.float32)], -1)
    neck = hip + (torso_length(spec) * h)[:, None] * up
    head_angle = lean + p["tilt"]
    head = neck + ((NECK * h + 0.92 * r))[:, None] * np.stack([np.sin(head_angle), -np.cos(head_angle)], -1)
    sh_off = (spec.shoulders * h / 2 * comp)[:, None] * right
    sh_down = (0.035 * h)[:, None] * (-up)
    r_sh, l_sh = neck - sh_off + sh_down, neck + sh_off + sh_down
    hip_off = (spec.hips * h / 2 * comp)[:, None] * right
    r_hp, l_hp = hip - hip_off, hip + hip_off

    arm = spec.arms * h / 2
    th_r = -p["r_abd"] + p["r_swing"] * sgn + lean
    th_l = p["l_abd"] + p["l_swing"] * sgn + lean
    r_el = r_sh + arm[:, None] * _dir(th_r)
    l_el = l_sh + arm[:, None] * _dir(th_l)
    r_wr = r_el + arm[:, None] * _dir(th_r + p["r_elbow"] * sgn)
    l_wr = l_el + arm[:, None] * _dir(th_l + p["l_elbow"] * sgn)

    leg = spec.legs * h / 2
    tr = -p["spread"] + p["r_hip"] * sgn
    tl = p["spread"] + p["l_hip"] * sgn
    r_kn = r_hp + leg[:, None] * _dir(tr)
    l_kn = l_hp + leg[:, None] * _dir(tl)
    r_an = r_kn + leg[:, None] * _dir(tr - p["r_knee"] * sgn)
    l_an = l_kn + leg[:, None] * _dir(tl - p["l_knee"] * sgn)

    # face points, in the head's rotated frame
    ca, sa = np.cos(head_angle), np.sin(head_angle)

    def face(dx, dy):
        return head + np.stack([dx * ca - dy * sa, dx * sa + dy * ca], -1) * r[:, None]

    rx = HEAD_GEOMETRY[spec.head_shape][0]
    narrow = 1 - 0.5 * np.abs(f)
    zero = np.zeros_like(f)
    nose = face(0.42 * rx * f, 0.22 + zero)
    r_eye = face(rx * (-0.36 * narrow + 0.3 * f), -0.08 + zero)
    l_eye = face(rx * (0.36 * narrow + 0.3 * f), -0.08 + zero)
    r_ear = face(rx * (-0.8 * (1 - 0.35 * np.abs(f)) + 0.12 * f), 0.02 + zero)
    l_ear = face(rx * (0.8 * (1 - 0.35 * np.abs(f)) + 0.12 * f), 0.02 + zero)

    pts = np.zeros((F, 18, 2), np.float32)
    for name, v in (("nose", nose), ("neck", neck), ("r_shoulder", r_sh), ("r_elbow", r_el), ("r_wrist", r_wr),
                    ("l_shoulder", l_sh), ("l_elbow", l_el), ("l_wrist", l_wr), ("r_hip", r_hp), ("r_knee", r_kn),
                    ("r_ankle", r_an), ("l_hip", l_hp), ("l_knee", l_kn), ("l_ankle", l_an), ("r_eye", r_eye),
                    ("l_eye", l_eye), ("r_ear", r_ear), ("l_ear", l_ear)):
        pts[:, J[name]] = v
    # ground contact: lowest ankle at ground - FOOT*h - lift
    low = np.maximum(pts[:, J["r_ankle"], 1], pts[:, J["l_ankle"], 1])
    dy = (p["ground"] - FOOT * h - p["lift"]) - low
    pts[..., 1] += dy[:, None]
    head = head + np.stack([np.zeros(F), dy], -1)
    conf = np.ones((F, 18), np.float32)
    conf[:, J["l_ear"]] = np.where(f > 0.6, 0, 1)     # turned right: the far (left) ear is hidden
    conf[:, J["r_ear"]] = np.where(f < -0.6, 0, 1)
    conf[:, J["l_eye"]] = np.where(f > 0.85, 0, 1)
    conf[:, J["r_eye"]] = np.where(f < -0.85, 0, 1)
    kp = np.concatenate([pts, conf[..., None]], -1).astype(np.float32)
    return {"keypoints": kp, "head": head.astype(np.float32), "head_r": r.astype(np.float32), "h": h,
            "facing": f, "lean": lean, "head_angle": head_angle.astype(np.float32), "dir": sgn}
