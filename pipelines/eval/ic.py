"""Identity-correspondence (IC) accuracy and style delusion of a video (DESIGN.md §3).

For every frame and motion track: take the pixels where that track's character should be (ground-truth
visible masks, or the region around the track's skeleton), describe them, compare with every reference
character, match tracks to references with the Hungarian algorithm and count the matches that equal the
scene's assignment. Style delusion: the share of judged character-frames whose style (the style probe)
differs from the character's own style.

    report = ic_accuracy(frames, regions, ref_vectors, track_slots, descriptor)
    report.accuracy, report.per_frame, report.per_track, report.affinity (tracks × references)

``evaluate_video`` does the whole thing for a video file and a Scene (the ``ic`` command), and
``write_heatmap`` / ``write_overlay`` draw its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from ..pose.palette import slot_color
from .regions import crop_region, crop_tracks, judged as judged_tracks

STYLES = ("cartoon", "live-action")


@dataclass
class Reference:
    """One identity slot's reference character: a cut-out (image + mask), its name and style."""
    name: str
    style: str
    image: np.ndarray              # (H, W, 3) uint8
    mask: np.ndarray               # (H, W) bool


def describe_references(descriptor, references: list[Reference]) -> np.ndarray:
    """(S, D) unit vectors of the reference cut-outs."""
    crops = np.stack([crop_region(r.image, r.mask, descriptor.crop) for r in references])
    return descriptor.describe(crops)


def match(similarity: np.ndarray) -> np.ndarray:
    """Hungarian matching of tracks to references. similarity (T, S) → (T,) reference of each track
    (-1 for tracks left over when there are more tracks than references)."""
    rows, cols = linear_sum_assignment(-np.asarray(similarity, np.float64))
    out = np.full(similarity.shape[0], -1, int)
    out[rows] = cols
    return out


def softmax(x: np.ndarray, temperature: float, axis: int = -1) -> np.ndarray:
    z = np.asarray(x, np.float64) / temperature
    z = np.exp(z - z.max(axis, keepdims=True))
    return z / z.sum(axis, keepdims=True)


@dataclass
class ICReport:
    correct: np.ndarray            # (F, T) int8: 1 right, 0 wrong, -1 not judged (hidden, or nobody performs it)
    matched: np.ndarray            # (F, T) reference slot each judged track received (-1 otherwise)
    similarity: np.ndarray         # (F, T, S) cosine similarity of each track's crop to each reference
    expected: list[int]            # (T,) slot that performs each track (-1: nobody)
    temperature: float = 0.1
    descriptor: str = "probe"
    trust: dict = field(default_factory=dict)
    style_pred: np.ndarray | None = None     # (F, T) P(live-action), NaN where not judged
    track_styles: list[str] | None = None    # (T,) style of the character performing each track

    # ---- IC ------------------------------------------------------------------------------------------
    @property
    def judged(self) -> np.ndarray:
        return self.correct >= 0

    @property
    def accuracy(self) -> float:
        j = self.judged
        return float(self.correct[j].mean()) if j.any() else float("nan")

    @property
    def per_frame(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.judged.any(1), np.clip(self.correct, 0, 1).sum(1) / self.judged.sum(1), np.nan)

    @property
    def per_track(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.judged.any(0), np.clip(self.correct, 0, 1).sum(0) / self.judged.sum(0), np.nan)

    @property
    def affinity(self) -> np.ndarray:
        """(T, S) edge weights of the bipartite graph: per judged frame a softmax over references of the
        similarities, averaged over frames (rows of unjudged tracks are NaN)."""
        w = softmax(self.similarity, self.temperature) if self.similarity.size else self.similarity
        j = self.judged[..., None]
        with np.errstate(invalid="ignore"):
            return (w * j).sum(0) / j.sum(0)

    @property
    def identity_similarity(self) -> float:
        """Mean cosine similarity between each judged crop and the reference that should be there."""
        vals = [self.similarity[f, t, self.expected[t]] for f, t in np.argwhere(self.judged)]
        return float(np.mean(vals)) if vals else float("nan")

    # ---- style ---------------------------------------------------------------------------------------
    @property
    def deluded(self) -> np.ndarray | None:
        """(F, T) int8: 1 where the predicted style differs from the character's own, 0 where it agrees,
        -1 not judged."""
        if self.style_pred is None or self.track_styles is None:
            return None
        own = np.array([s == "live-action" for s in self.track_styles])[None]
        out = np.where((self.style_pred >= 0.5) != own, 1, 0).astype(np.int8)
        return np.where(self.judged, out, -1).astype(np.int8)

    @property
    def style_delusion(self) -> float:
        d = self.deluded
        if d is None or not (d >= 0).any():
            return float("nan")
        return float(d[d >= 0].mean())

    def to_dict(self, names: list[str] | None = None) -> dict:
        F, T = self.correct.shape
        out = {
            "ic_accuracy": _num(self.accuracy), "judged_track_frames": int(self.judged.sum()),
            "per_track": [_num(v) for v in self.per_track], "per_frame": [_num(v) for v in self.per_frame],
            "identity_similarity": _num(self.identity_similarity), "style_delusion": _num(self.style_delusion),
            "descriptor": self.descriptor, "trust": self.trust,
            "expected_slot_of_track": list(self.expected),
            "affinity": [[_num(v) for v in row] for row in self.affinity],
            "frames": [[{"track": t, "judged": bool(self.correct[f, t] >= 0),
                         "matched_slot": int(self.matched[f, t]), "correct": bool(self.correct[f, t] == 1)}
                        for t in range(T)] for f in range(F)],
        }
        if names is not None:
            out["references"] = list(names)
        return out


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else round(v, 6)


def ic_accuracy(frames: np.ndarray, regions: np.ndarray, ref_vectors: np.ndarray, expected: list[int],
                descriptor, *, judged: np.ndarray | None = None, probes=None,
                track_styles: list[str] | None = None) -> ICReport:
    """IC accuracy of ``frames`` (F, H, W, 3) uint8.

    Args:
        regions: (F, T, H, W) bool, where each track's character should be.
        ref_vectors: (S, D) descriptor vectors of the reference characters (slot order).
        expected: (T,) slot that performs each track, -1 for a track nobody performs (``track_slots``).
        descriptor: turns crops into unit vectors (``descriptors.get_descriptor``).
        judged: (F, T) which track-frames to judge (default ``regions.judged``).
        probes, track_styles: with both, the style probe judges every crop too (style delusion).
    """
    frames, regions = np.asarray(frames), np.asarray(regions, bool)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected (frames, height, width, 3) uint8, got shape {frames.shape}")
    if regions.ndim != 4 or regions.shape[0] != frames.shape[0] or regions.shape[2:] != frames.shape[1:3]:
        raise ValueError(f"regions: shape {regions.shape} does not fit frames {frames.shape} "
                         "(expected (frames, tracks, height, width))")
    F, T = regions.shape[:2]
    S = len(ref_vectors)
    if len(expected) != T:
        raise ValueError(f"expected: {len(expected)} entries for {T} tracks")
    if track_styles is not None and len(track_styles) != T:
        raise ValueError(f"track_styles: {len(track_styles)} entries for {T} tracks")
    mask = judged_tracks(regions) if judged is None else np.asarray(judged, bool).copy()
    mask &= (np.asarray(expected) >= 0)[None]          # tracks nobody performs are not part of the question
    crops, idx = crop_tracks(frames, regions, mask, descriptor.crop)
    sim = np.zeros((F, T, S), np.float32)
    if len(idx):
        sim[idx[:, 0], idx[:, 1]] = descriptor.describe(crops) @ np.asarray(ref_vectors).T
    matched = np.full((F, T), -1, int)
    correct = np.full((F, T), -1, np.int8)
    exp = np.asarray(expected)
    for f in range(F):
        tracks = np.flatnonzero(mask[f])
        if tracks.size == 0:
            continue
        got = match(sim[f, tracks])
        matched[f, tracks] = got
        correct[f, tracks] = (got == exp[tracks]).astype(np.int8)
    style_pred = None
    if probes is not None and track_styles is not None:
        style_pred = np.full((F, T), np.nan, np.float32)
        if len(idx):
            scrops = crop_tracks(frames, regions, mask, probes.config.crop, native=True)[0]
            style_pred[idx[:, 0], idx[:, 1]] = probes.live_action_prob(scrops)
    return ICReport(correct, matched, sim, [int(e) for e in expected], float(descriptor.temperature),
                    descriptor.name, descriptor.trust(), style_pred, track_styles)


# ---------------------------------------------------------------------------------------------------
# pictures
# ---------------------------------------------------------------------------------------------------
def _font(size: int):
    from PIL import ImageFont
    return ImageFont.load_default(size=size)


def write_heatmap(path: str | Path, affinity: np.ndarray, ref_names: list[str], expected: list[int],
                  title: str = "") -> Path:
    """PNG of the (tracks × references) affinity matrix; cells on the scene's assignment are framed.
    (PIL's built-in font has ASCII only: keep ``title`` and names plain.)"""
    from PIL import Image, ImageDraw
    T, S = affinity.shape
    cell, left, top = 64, 96, 56 + (18 if title else 0)
    img = Image.new("RGB", (left + S * cell + 16, top + T * cell + 16), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font, small = _font(14), _font(12)
    if title:
        d.text((8, 6), title, fill=(0, 0, 0), font=font)
    for s, name in enumerate(ref_names):
        x = left + s * cell
        d.rectangle([x + 4, top - 46, x + 18, top - 32], fill=slot_color(s))
        d.text((x + 4, top - 26), name[:9], fill=(0, 0, 0), font=small)
    for t in range(T):
        y = top + t * cell
        d.text((8, y + cell // 2 - 8), f"track {t}", fill=(0, 0, 0), font=font)
        for s in range(S):
            v = affinity[t, s]
            x = left + s * cell
            if np.isnan(v):
                d.rectangle([x, y, x + cell - 2, y + cell - 2], fill=(220, 220, 220))
                d.text((x + 20, y + 24), "n/a", fill=(90, 90, 90), font=small)
                continue
            c = tuple(int(255 - (255 - a) * float(v)) for a in (20, 60, 160))      # white → dark blue
            d.rectangle([x, y, x + cell - 2, y + cell - 2], fill=c)
            d.text((x + 14, y + 24), f"{v:.2f}", fill=(0, 0, 0) if v < 0.55 else (255, 255, 255), font=font)
            if expected[t] == s:
                d.rectangle([x, y, x + cell - 2, y + cell - 2], outline=(230, 150, 0), width=3)
    path = Path(path)
    img.save(path)
    return path


def overlay_frames(frames: np.ndarray, regions: np.ndarray, report: ICReport, ref_names: list[str],
                   scale: int = 3) -> np.ndarray:
    """Frames with each judged track outlined in the palette colour of the reference it received, labelled
    with that reference's name (+ "ok" / "WRONG"). (F, H·scale, W·scale, 3) uint8."""
    from PIL import Image, ImageDraw
    F, H, W = frames.shape[:3]
    font = _font(12)
    out = []
    for f in range(F):
        big = cv2.resize(frames[f], (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
        for t in range(regions.shape[1]):
            s = report.matched[f, t]
            if report.correct[f, t] < 0 or s < 0:
                continue
            m = cv2.resize(regions[f, t].astype(np.uint8), (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(big, contours, -1, slot_color(int(s)), 2, cv2.LINE_AA)
        img = Image.fromarray(big)
        d = ImageDraw.Draw(img)
        for t in range(regions.shape[1]):
            s = report.matched[f, t]
            if report.correct[f, t] < 0 or s < 0:
                continue
            ys, xs = np.nonzero(regions[f, t])
            x, y = int(xs.mean() * scale) - 20, max(0, int(ys.min() * scale) - 16)
            label = f"{ref_names[s]} {'ok' if report.correct[f, t] == 1 else 'WRONG'}"
            box = d.textbbox((x, y), label, font=font)
            d.rectangle(box, fill=slot_color(int(s)))
            d.text((x, y), label, fill=(0, 0, 0) if sum(slot_color(int(s))) > 380 else (255, 255, 255), font=font)
        acc = report.per_frame[f]
        d.text((4, 4), f"frame {f}  IC {'n/a' if np.isnan(acc) else f'{acc:.2f}'}", fill=(255, 255, 255),
               font=font, stroke_width=2, stroke_fill=(0, 0, 0))
        out.append(np.asarray(img))
    return np.stack(out)


# ---------------------------------------------------------------------------------------------------
# a bare video + its scene (the ``ic`` command)
# ---------------------------------------------------------------------------------------------------
def scene_references(scene, library=None) -> list[Reference]:
    """The scene's characters in slot order as cut-outs: library characters from their reference image +
    mask, the scene's own characters from its image + mask files."""
    from PIL import Image
    from ..library import Library
    library = library or Library()
    refs = []
    for c in scene.characters:
        if "id" in c:
            lc = library.get(c["id"])
            img, mask = lc.load_reference()
            refs.append(Reference(lc.name, lc.style, img, mask))
        else:
            img = np.asarray(Image.open(scene.path(c["image"])).convert("RGB"))
            mask = np.asarray(Image.open(scene.path(c["mask"])).convert("L")) > 127
            if mask.shape != img.shape[:2]:
                raise ValueError(f"characters: mask {c['mask']!r} is {mask.shape[::-1]} but image {c['image']!r} "
                                 f"is {img.shape[1::-1]}; they must match")
            refs.append(Reference(c["name"], c["style"], img, mask))
    return refs


def fit_keypoints(kp: np.ndarray, src: tuple[int, int], n_frames: int, width: int, height: int
                  ) -> tuple[np.ndarray, list[str]]:
    """Keypoints (F, T, 18, 3) drawn on a ``src`` (width, height) canvas → (n_frames, T, 18, 3) on the
    video's canvas, plus notes: a longer motion is trimmed, a shorter one holds its last pose (as the
    generator does)."""
    from ..pose.openpose import rescale
    kp = rescale(kp, src, (width, height))
    notes = []
    if len(kp) > n_frames:
        kp = kp[:n_frames]
    elif len(kp) < n_frames:
        notes.append(f"the motion has {len(kp)} frames and the video {n_frames}: holding the last pose")
        kp = np.concatenate([kp, np.repeat(kp[-1:], n_frames - len(kp), 0)])
    return kp, notes


def scene_keypoints(scene, n_frames: int, width: int, height: int) -> tuple[np.ndarray, list[str]]:
    """The scene's motion (template or keypoints file) fitted to a video (``fit_keypoints``)."""
    from ..pose.templates import load_motion_file, load_template
    if "template" in scene.motion:
        motion = load_template(scene.motion["template"])
    elif "keypoints" in scene.motion:
        motion = load_motion_file(scene.path(scene.motion["keypoints"]))
    else:
        raise ValueError("scene.motion: a text motion has no keypoints to locate the tracks; pass the keypoints "
                         "the generator used with --keypoints FILE (OpenPose JSON), or masks with --masks FILE")
    return fit_keypoints(motion.keypoints, (motion.width, motion.height), n_frames, width, height)


def keypoints_for_video(path: str | Path, frames: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """An OpenPose JSON file fitted to a video (``fit_keypoints``)."""
    from ..pose.templates import load_motion_file
    motion = load_motion_file(path)
    return fit_keypoints(motion.keypoints, (motion.width, motion.height), len(frames), frames.shape[2],
                         frames.shape[1])


def evaluate_video(frames: np.ndarray, scene, descriptor, *, probes=None, keypoints: np.ndarray | None = None,
                   masks: np.ndarray | None = None) -> tuple[ICReport, np.ndarray, list[Reference], list[str]]:
    """IC accuracy (and style delusion) of ``frames`` against ``scene``. Regions: ``masks`` (F, T, H, W) when
    given, else skeleton regions of ``keypoints`` (F, T, 18, 3) or of the scene's motion.
    Returns (report, regions, references, notes)."""
    from ..pose.openpose import check_keypoints
    from .regions import skeleton_regions
    F_, H, W = frames.shape[:3]
    notes: list[str] = []
    if masks is not None:
        regions = np.asarray(masks, bool)
        if regions.ndim != 4 or regions.shape[0] != F_ or regions.shape[2:] != (H, W):
            raise ValueError(f"masks: shape {regions.shape} does not fit the video {frames.shape[:3]} "
                             "(expected (frames, tracks, height, width))")
    else:
        if keypoints is None:
            kp, notes = scene_keypoints(scene, F_, W, H)
        else:
            kp = check_keypoints(keypoints)
            if len(kp) != F_:
                raise ValueError(f"keypoints: {len(kp)} frames for a {F_}-frame video")
        regions = skeleton_regions(kp, W, H)
    n_tracks = regions.shape[1]
    if max(scene.assignment) >= n_tracks:
        raise ValueError(f"scene.assignment: {scene.assignment} names track {max(scene.assignment)} but the motion has "
                         f"{n_tracks} tracks")
    refs = scene_references(scene)
    expected = scene.track_slots(n_tracks)
    styles = [refs[s].style if s >= 0 else "cartoon" for s in expected]
    report = ic_accuracy(frames, regions, describe_references(descriptor, refs), expected, descriptor,
                         probes=probes, track_styles=styles)
    return report, regions, refs, notes
