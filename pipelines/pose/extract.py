"""Pose extraction from a driving video: a body detector turns each frame into OpenPose-18 people, and
``link_tracks`` follows them from frame to frame into motion tracks — the (F, T, 18, 3) keypoint array
every other pose module reads. Owns the detector adapters, weight lookup and video reading with limits.

Detectors are controlnet-aux's, and run only with weights already on this machine (nothing is ever
downloaded):

* ``openpose`` — the OpenPose body network (repo ``lllyasviel/Annotators``, file ``body_pose_model.pth``);
  needs torch only.
* ``dwpose`` — DWPose whole-body (repo ``yzd-v/DWPose``, files ``dw-ll_ucoco_384.pth`` and the YOLOX person
  detector ``yolox_l.pth``); controlnet-aux runs it through mmpose, mmdet and mmcv, which must be installed.

Weights are looked up in order: an explicit path → ``assets/models/annotators/`` → the Hugging Face cache.
When none is usable, ``PoseWeightsMissing`` says which files are missing, where to put them, and what to use
instead (a motion template or an OpenPose JSON file).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..paths import models_dir
from .openpose import J, NUM_JOINTS, check_keypoints, empty_keypoints

OPENPOSE_REPO, OPENPOSE_FILE = "lllyasviel/Annotators", "body_pose_model.pth"
DWPOSE_REPO, DWPOSE_FILE, YOLOX_FILE = "yzd-v/DWPose", "dw-ll_ucoco_384.pth", "yolox_l.pth"
DWPOSE_PACKAGES = ("mmpose", "mmdet", "mmcv")
BACKENDS = ("auto", "dwpose", "openpose")
MAX_TRACKS = 5
MIN_CONFIDENCE = 0.3          # joints below this are "not detected" (OpenPose/DWPose draw with the same cut)


def annotators_dir() -> Path:
    return models_dir() / "annotators"


class PoseWeightsMissing(FileNotFoundError):
    """No usable pose detector on this machine; the message names the missing files and the alternatives."""


# ---------------------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------------------
def _cached(repo: str, filename: str) -> Path | None:
    """The file from the Hugging Face cache, or None — a cache lookup only, never a download."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(repo, filename)
    return Path(hit) if isinstance(hit, str) and Path(hit).is_file() else None


def find_weights(repo: str, filename: str, path: str | Path | None = None) -> Path | None:
    """Resolve a detector checkpoint: ``path`` (a file, or a folder holding ``filename``) → the assets folder →
    the Hugging Face cache. Returns None when it is nowhere on disk."""
    if path is not None:
        p = Path(path)
        p = p / filename if p.is_dir() else p
        return p if p.is_file() else None
    local = annotators_dir() / filename
    if local.is_file():
        return local
    return _cached(repo, filename)


def _missing_packages() -> list[str]:
    return [m for m in DWPOSE_PACKAGES if importlib.util.find_spec(m) is None]


def detector_report(weights: str | Path | None = None) -> dict[str, str | None]:
    """What each backend needs and whether it has it: ``{backend: None if usable else the reason}``."""
    report: dict[str, str | None] = {}
    missing = _missing_packages()
    dw = [f for f in (DWPOSE_FILE, YOLOX_FILE) if find_weights(DWPOSE_REPO, f, weights) is None]
    if missing or dw:
        parts = []
        if dw:
            parts.append(f"{DWPOSE_REPO} ({', '.join(dw)}) not on disk")
        if missing:
            parts.append(f"needs {', '.join(missing)} installed")
        report["dwpose"] = "DWPose: " + "; ".join(parts)
    else:
        report["dwpose"] = None
    report["openpose"] = None if find_weights(OPENPOSE_REPO, OPENPOSE_FILE, weights) is not None else \
        f"OpenPose: {OPENPOSE_REPO} ({OPENPOSE_FILE}) not on disk"
    return report


def missing_message(report: dict[str, str | None]) -> str:
    reasons = "; ".join(r for r in report.values() if r)
    return (f"No pose detector weights on this machine ({reasons}). Put {OPENPOSE_FILE} in "
            f"{annotators_dir()} or the Hugging Face cache to extract poses from video (nothing is downloaded). "
            "Until then, use a motion template or upload an OpenPose JSON file.")


# ---------------------------------------------------------------------------------------------------------
# detectors: frame (H, W, 3) uint8 RGB → people (P, 18, 3) in pixels, confidence 0 for joints not found
# ---------------------------------------------------------------------------------------------------------
def _quiet_import(module: str):
    # controlnet-aux warns at import about optional packages (mmcv, timm) it does not need for OpenPose
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(module)


class OpenPoseBody:
    """controlnet-aux's OpenPose body network, loaded with ``torch.load(weights_only=True)``."""

    name = "openpose"

    def __init__(self, weights: str | Path, device=None):
        import torch
        body_mod = _quiet_import("controlnet_aux.open_pose.body")
        model = _quiet_import("controlnet_aux.open_pose.model").bodypose_model()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        # OpenPose checkpoints name layers without the block prefix our module tree has ("conv1_1.weight"
        # for "model0.conv1_1.weight"); controlnet-aux's own loader does the same mapping
        try:
            mapped = {k: state[".".join(k.split(".")[1:])] for k in model.state_dict()}
            model.load_state_dict(mapped)
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"weights: {weights} is not an OpenPose body checkpoint ({OPENPOSE_FILE} from "
                             f"{OPENPOSE_REPO}): {str(e).splitlines()[0]}") from None
        self.body = body_mod.Body.__new__(body_mod.Body)      # skip Body.__init__, which loads without weights_only
        self.body.model = model.eval().to(device or "cpu")

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        candidate, subset = self.body(np.ascontiguousarray(frame[:, :, ::-1]))    # the network wants BGR
        people = np.zeros((len(subset), NUM_JOINTS, 3), np.float32)
        for p, person in enumerate(subset):
            for j, idx in enumerate(person[:NUM_JOINTS].astype(int)):
                if idx >= 0:
                    x, y, score = candidate[idx][:3]
                    people[p, j] = (x, y, score)
        return people


class DWPoseBody:
    """DWPose through controlnet-aux's ``Wholebody`` (mmpose/mmdet); keeps the 18 body points, which
    ``Wholebody`` already returns in OpenPose order (neck inserted)."""

    name = "dwpose"

    def __init__(self, pose_weights: str | Path, det_weights: str | Path, device=None):
        wholebody = _quiet_import("controlnet_aux.dwpose.wholebody")
        self.model = wholebody.Wholebody(det_ckpt=str(det_weights), pose_ckpt=str(pose_weights),
                                         device=str(device or "cpu"))

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        keypoints, scores = self.model(np.ascontiguousarray(frame[:, :, ::-1]))
        return wholebody_to_people(keypoints, scores)


def wholebody_to_people(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """DWPose output (P, 134, 2) positions and (P, 134) scores → (P, 18, 3), joints under MIN_CONFIDENCE zeroed."""
    kp = np.asarray(keypoints, np.float32)[:, :NUM_JOINTS]
    sc = np.asarray(scores, np.float32)[:, :NUM_JOINTS]
    people = np.concatenate([kp, sc[..., None]], -1)
    people[sc < MIN_CONFIDENCE] = 0
    return people


# ---------------------------------------------------------------------------------------------------------
# tracking: people per frame → tracks
# ---------------------------------------------------------------------------------------------------------
def _centre(person: np.ndarray) -> np.ndarray | None:
    """Torso centre (neck and hips) of one (18, 3) person, or the mean of any visible joint."""
    vis = person[:, 2] > 0
    torso = [J["neck"], J["r_hip"], J["l_hip"]]
    pts = person[torso][vis[torso]] if vis[torso].any() else person[vis]
    return pts[:, :2].mean(0) if len(pts) else None


def link_tracks(people: Sequence[np.ndarray], width: int, height: int, max_tracks: int = MAX_TRACKS,
                gate: float = 0.3) -> np.ndarray:
    """Follow detected people through a clip.

    Args:
        people: per frame, (P_f, 18, 3) detections in pixels (confidence 0 = joint not found).
        width, height: the frame size (the gate is relative to its diagonal).
        max_tracks: most tracks to keep (the most confident people win when a frame has more).
        gate: a detection farther than ``gate`` × diagonal from a track's predicted position starts a new
            track instead of continuing it.
    Returns:
        (F, T, 18, 3) keypoints; tracks are numbered left to right by where they are first seen, and a track
        is all zeros on frames where its person was not found.
    Raises:
        ValueError: when no frame has a person in it.
    """
    if not 1 <= max_tracks <= MAX_TRACKS:
        raise ValueError(f"max_tracks: {max_tracks} is outside 1..{MAX_TRACKS}")
    frames = [np.asarray(p, np.float32).reshape(-1, NUM_JOINTS, 3) for p in people]
    frames = [p[[_centre(x) is not None for x in p]] for p in frames]        # drop empty detections
    # keep the most confident people of each frame
    frames = [p[np.argsort(-p[:, :, 2].sum(1), kind="stable")[:max_tracks]] for p in frames]
    if not any(len(p) for p in frames):
        raise ValueError("no people were found in the driving video; use a clip where people are clearly "
                         "visible, or a motion template / OpenPose JSON file instead")
    diag = float(np.hypot(width, height))
    pos: list[np.ndarray] = []         # per track: last centre
    vel: list[np.ndarray] = []         # per track: velocity per frame (constant-velocity prediction)
    last: list[int] = []               # per track: last frame seen
    first_x: list[float] = []
    assigned: list[dict[int, np.ndarray]] = []   # per frame: track → person
    for f, dets in enumerate(frames):
        centres = [_centre(d) for d in dets]
        out: dict[int, np.ndarray] = {}
        free = list(range(len(dets)))
        if pos and dets.size:
            pred = np.stack([pos[t] + vel[t] * (f - last[t]) for t in range(len(pos))])
            cost = np.linalg.norm(pred[:, None] - np.stack(centres)[None], axis=-1) / diag
            rows, cols = linear_sum_assignment(cost)
            for t, d in zip(rows, cols):
                if cost[t, d] <= gate:
                    c = centres[d]
                    vel[t] = (c - pos[t]) / max(1, f - last[t])
                    pos[t], last[t] = c, f
                    out[t] = dets[d]
                    free.remove(d)
        for d in sorted(free, key=lambda i: centres[i][0]):
            if len(pos) >= max_tracks:
                break
            pos.append(centres[d])
            vel.append(np.zeros(2, np.float32))
            last.append(f)
            first_x.append(float(centres[d][0]))
            out[len(pos) - 1] = dets[d]
        assigned.append(out)
    # number tracks left to right by first appearance position so track 0 is "the one on the left"
    order = np.argsort(first_x, kind="stable")
    rank = {int(t): r for r, t in enumerate(order)}
    kp = empty_keypoints(len(frames), len(pos))
    for f, out in enumerate(assigned):
        for t, person in out.items():
            kp[f, rank[t]] = person
    return check_keypoints(kp)


# ---------------------------------------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------------------------------------
@dataclass
class VideoClip:
    frames: np.ndarray        # (F, H, W, 3) uint8
    fps: float                # of the sampled frames
    source_fps: float
    duration: float           # seconds of the source


def read_video(path: str | Path, *, fps: float = 8.0, max_seconds: float = 20.0, max_frames: int = 64,
               max_side: int = 512) -> VideoClip:
    """Sample a video at ``fps`` (at most ``max_frames`` frames, longest side scaled to ``max_side``).

    The length is checked from the container's metadata before any frame is decoded, so a long upload is
    refused quickly: more than ``max_seconds`` → ValueError saying how to shorten it.
    """
    import cv2
    import imageio.v2 as imageio
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video: file not found: {path}")
    try:
        reader = imageio.get_reader(str(path), format="FFMPEG")
    except Exception as e:   # imageio raises several types for unreadable containers
        raise ValueError(f"video: {path.name} could not be opened as a video ({type(e).__name__}); "
                         "upload an mp4, webm or mov file") from None
    try:
        meta = reader.get_meta_data()
        src_fps = float(meta.get("fps") or 0) or 25.0
        duration = float(meta.get("duration") or 0)
        if duration > max_seconds:
            raise ValueError(f"video: {path.name} is {duration:.1f} s long; the limit is {max_seconds:g} s — "
                             "trim it to the part with the motion you want")
        step = max(1.0, src_fps / fps)
        frames, want = [], 0.0
        for i, frame in enumerate(reader):
            if i + 1e-6 < want:
                continue
            want += step
            h, w = frame.shape[:2]
            s = min(1.0, max_side / max(h, w))
            if s < 1:
                frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
            frames.append(np.ascontiguousarray(frame[..., :3]))
            if len(frames) >= max_frames:
                break
            if i / src_fps > max_seconds:           # containers without a duration in their header
                raise ValueError(f"video: {path.name} is longer than the {max_seconds:g} s limit; trim it")
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"video: {path.name} has no frames")
    return VideoClip(np.stack(frames), src_fps / step, src_fps, duration or len(frames) * step / src_fps)


# ---------------------------------------------------------------------------------------------------------
# the extractor
# ---------------------------------------------------------------------------------------------------------
class PoseExtractor:
    """Video → OpenPose-18 motion tracks.

        extractor = PoseExtractor()                 # raises PoseWeightsMissing when no detector is usable
        kp = extractor(frames)                      # (F, T, 18, 3) in pixels of the frames

    ``backend``: "auto" (DWPose when usable, else OpenPose), "dwpose" or "openpose"; ``weights``: a file or a
    folder holding the checkpoints; ``detector``: any callable frame → (P, 18, 3) to use instead.
    """

    def __init__(self, backend: str = "auto", weights: str | Path | None = None, device=None,
                 detector: Callable[[np.ndarray], np.ndarray] | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend: unknown pose backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if detector is not None:
            self.detector, self.backend = detector, getattr(detector, "name", "custom")
            return
        report = detector_report(weights)
        wanted = ("dwpose", "openpose") if backend == "auto" else (backend,)
        usable = [b for b in wanted if report[b] is None]
        if not usable:
            raise PoseWeightsMissing(missing_message({b: report[b] for b in wanted}))
        self.backend = usable[0]
        if self.backend == "dwpose":
            self.detector = DWPoseBody(find_weights(DWPOSE_REPO, DWPOSE_FILE, weights),
                                       find_weights(DWPOSE_REPO, YOLOX_FILE, weights), device)
        else:
            self.detector = OpenPoseBody(find_weights(OPENPOSE_REPO, OPENPOSE_FILE, weights), device)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame: expected (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        people = np.asarray(self.detector(frame), np.float32).reshape(-1, NUM_JOINTS, 3)
        people[people[..., 2] < MIN_CONFIDENCE] = 0
        return people

    def __call__(self, frames: np.ndarray, max_tracks: int = MAX_TRACKS,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames: expected (F, H, W, 3), got {frames.shape}")
        people = []
        for i, frame in enumerate(frames):
            people.append(self.detect(frame))
            if progress is not None:
                progress(i + 1, len(frames))
        return link_tracks(people, frames.shape[2], frames.shape[1], max_tracks)


__all__ = ["PoseExtractor", "PoseWeightsMissing", "OpenPoseBody", "DWPoseBody", "link_tracks", "read_video",
           "VideoClip", "detector_report", "find_weights", "missing_message", "wholebody_to_people",
           "OPENPOSE_REPO", "OPENPOSE_FILE", "DWPOSE_REPO", "DWPOSE_FILE", "YOLOX_FILE"]
