"""OpenPose-18 (COCO-18, the DWPose body format): keypoint layout, limbs, and OpenPose JSON I/O.

Owns the one array convention every other module uses for poses:

    keypoints: float32 (F, T, 18, 3) — frames, tracks, joints, (x, y, confidence) in pixels of a canvas
               of known width/height; confidence 0 means "not visible / not detected" (x, y are then 0).

and the conversion to and from the JSON that pose detectors (OpenPose, DWPose through controlnet-aux)
write: one dict per frame, ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, …]}], "canvas_width", …}``.
We carry the track index in OpenPose's own ``person_id`` field so a round trip keeps identities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

JOINTS = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
)
NUM_JOINTS = len(JOINTS)
J = {name: i for i, name in enumerate(JOINTS)}

# The 17 limbs OpenPose draws for the body (pairs of joint indices), in OpenPose's drawing order.
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

FORMAT = "openpose-18"


def empty_keypoints(frames: int, tracks: int) -> np.ndarray:
    return np.zeros((frames, tracks, NUM_JOINTS, 3), np.float32)


def check_keypoints(kp: np.ndarray, name: str = "keypoints") -> np.ndarray:
    """Validate and return ``kp`` as float32 (F, T, 18, 3); raise ValueError naming ``name`` otherwise."""
    kp = np.asarray(kp)
    if kp.ndim != 4 or kp.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected shape (frames, tracks, 18, 3), got {tuple(kp.shape)}")
    if not np.all(np.isfinite(kp)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return kp.astype(np.float32, copy=False)


def frame_to_openpose(kp_frame: np.ndarray, width: int, height: int) -> dict:
    """One frame (T, 18, 3) → an OpenPose JSON dict (one person per track, ``person_id`` = track)."""
    people = []
    for t, person in enumerate(kp_frame):
        flat = np.where(person[:, 2:3] > 0, person, 0.0).reshape(-1)
        people.append({"person_id": [t], "pose_keypoints_2d": [round(float(v), 3) for v in flat]})
    return {"version": 1.3, "canvas_width": int(width), "canvas_height": int(height), "people": people}


def openpose_to_frame(doc: dict, tracks: int | None = None) -> np.ndarray:
    """An OpenPose JSON dict → (T, 18, 3). People with a ``person_id`` ≥ 0 go to that track; others fill
    the remaining tracks in order. Extra points (OpenPose-25 / COCO-17 foot points) are rejected."""
    people = doc.get("people")
    if not isinstance(people, list):
        raise ValueError("OpenPose JSON: missing the 'people' list")
    rows: dict[int, np.ndarray] = {}
    loose: list[np.ndarray] = []
    for i, person in enumerate(people):
        flat = np.asarray(person.get("pose_keypoints_2d", []), np.float32)
        if flat.size != NUM_JOINTS * 3:
            raise ValueError(
                f"OpenPose JSON: people[{i}].pose_keypoints_2d has {flat.size} numbers; expected 54 "
                "(18 body points × x, y, confidence — the OpenPose-18/COCO-18 body format)")
        pid = person.get("person_id", [-1])
        pid = pid[0] if isinstance(pid, list) and pid else pid
        arr = flat.reshape(NUM_JOINTS, 3)
        if isinstance(pid, int) and pid >= 0:
            if pid in rows:
                raise ValueError(f"OpenPose JSON: person_id {pid} appears twice in one frame")
            rows[pid] = arr
        else:
            loose.append(arr)
    n = max([len(rows) + len(loose)] + [k + 1 for k in rows])
    if tracks is not None:
        if n > tracks:
            raise ValueError(f"OpenPose JSON: a frame has {n} people but the clip has {tracks} tracks")
        n = tracks
    out = np.zeros((n, NUM_JOINTS, 3), np.float32)
    for k, arr in rows.items():
        out[k] = arr
    free = [k for k in range(n) if k not in rows]
    for k, arr in zip(free, loose):
        out[k] = arr
    return out


def to_openpose_json(kp: np.ndarray, width: int, height: int, *, fps: float | None = None,
                     name: str | None = None, extra: dict | None = None) -> dict:
    """(F, T, 18, 3) → a motion document: ``{"format", "width", "height", "fps", "tracks", "frames": [OpenPose dicts]}``."""
    kp = check_keypoints(kp)
    doc = {"format": FORMAT, "version": 1, "width": int(width), "height": int(height),
           "tracks": int(kp.shape[1]), "frames": [frame_to_openpose(f, width, height) for f in kp]}
    if fps is not None:
        doc["fps"] = float(fps)
    if name is not None:
        doc["name"] = name
    if extra:
        doc.update(extra)
    return doc


def from_openpose_json(doc: dict | list) -> tuple[np.ndarray, int, int]:
    """A motion document, or a bare list of OpenPose frame dicts (what a detector writes per video), or a
    single OpenPose frame dict → (keypoints (F, T, 18, 3), width, height)."""
    if isinstance(doc, list):
        frames = doc
        width = height = None
    elif "frames" in doc:
        frames = doc["frames"]
        width, height = doc.get("width"), doc.get("height")
    elif "people" in doc:
        frames = [doc]
        width = height = None
    else:
        raise ValueError("OpenPose JSON: expected a 'frames' list, a list of frames, or one frame with 'people'")
    if not frames:
        raise ValueError("OpenPose JSON: no frames")
    width = width or frames[0].get("canvas_width")
    height = height or frames[0].get("canvas_height")
    if not width or not height:
        raise ValueError("OpenPose JSON: canvas size unknown; add 'canvas_width' and 'canvas_height'")
    tracks = doc.get("tracks") if isinstance(doc, dict) else None
    per_frame = [openpose_to_frame(f) for f in frames]
    tracks = tracks or max(len(p) for p in per_frame)
    kp = empty_keypoints(len(frames), tracks)
    for i, p in enumerate(per_frame):
        if len(p) > tracks:
            raise ValueError(f"OpenPose JSON: frame {i} has {len(p)} people but the motion has {tracks} tracks")
        kp[i, : len(p)] = p
    return kp, int(width), int(height)


def save_motion(path: str | Path, kp: np.ndarray, width: int, height: int, **kw) -> None:
    Path(path).write_text(json.dumps(to_openpose_json(kp, width, height, **kw)))


def load_motion(path: str | Path) -> tuple[np.ndarray, int, int, dict]:
    """Read a keypoint JSON file → (keypoints, width, height, the document's other fields)."""
    try:
        doc = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    kp, w, h = from_openpose_json(doc)
    meta = {k: v for k, v in doc.items() if k != "frames"} if isinstance(doc, dict) else {}
    return kp, w, h, meta


def rescale(kp: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    """Map keypoints from a (width, height) canvas to another, keeping aspect by fitting and centring."""
    (sw, sh), (dw, dh) = src, dst
    s = min(dw / sw, dh / sh)
    ox, oy = (dw - sw * s) / 2, (dh - sh * s) / 2
    out = kp.copy()
    vis = out[..., 2] > 0
    out[..., 0] = np.where(vis, out[..., 0] * s + ox, 0)
    out[..., 1] = np.where(vis, out[..., 1] * s + oy, 0)
    return out


def track_x(kp: np.ndarray) -> np.ndarray:
    """Horizontal position of each track per frame (F, T): mean x of its visible torso joints (neck, hips),
    falling back to any visible joint; NaN where a track has none."""
    torso = kp[..., [J["neck"], J["r_hip"], J["l_hip"]], :]
    def mean_x(pts):
        w = (pts[..., 2] > 0).astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pts[..., 0] * w).sum(-1) / w.sum(-1)
    x = mean_x(torso)
    return np.where(np.isnan(x), mean_x(kp), x)


def left_to_right(kp_frame: np.ndarray) -> tuple[int, ...]:
    """Tracks of one frame (T, 18, 3) ordered left to right by ``track_x`` (ties by index)."""
    x = track_x(kp_frame[None])[0]
    x = np.where(np.isnan(x), np.inf, x)
    return tuple(int(i) for i in np.argsort(x, kind="stable"))


def swap_pairs(kp: np.ndarray) -> list[tuple[int, int]]:
    """All frame pairs (i < j) whose left-to-right order of tracks differs — the PCS "swap pairs"."""
    orders = [left_to_right(f) for f in kp]
    return [(i, j) for i in range(len(orders)) for j in range(i + 1, len(orders)) if orders[i] != orders[j]]
