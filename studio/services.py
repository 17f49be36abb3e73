"""Service objects: the only part of the studio that touches models. Each service owns its engine, loads it
lazily on first use (never at import), serialises access with a lock, and calls ``pipelines/``:

* ``CharacterService`` — the library (shipped + the session's own), thumbnails, adding a character.
* ``SegmentService``  — ``pipelines.segment.Segmenter`` (SAM2 or the offline click segmenter).
* ``MotionService``   — motion templates, OpenPose JSON uploads, pose extraction from a driving video
  (``pipelines.pose.extract``), and the IEG pose preview (``pipelines.pose.ieg.render_ieg``).
* ``GenerateService`` — ``pipelines.mix.MixPipeline`` on the embedded model; cancellable; on a Hugging Face
  ZeroGPU Space the GPU part runs under ``spaces.GPU``.
* ``CCEService``      — learned per-character tokens (``pipelines.cce``): a new character's embedding from
  its image at once, and the optional "learn" fit with progress.
* ``EvalService``     — the identity-correspondence overlay (``pipelines.eval``).

``Services`` bundles them and reports which engines are active. Event handlers never import torch; they
call these methods.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import io
import json
import os
import threading
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from pipelines.library import LibraryCharacter
from pipelines.paths import models_dir
from pipelines.pose.ieg import render_ieg
from pipelines.pose.openpose import J, rescale, save_motion, from_openpose_json
from pipelines.pose.palette import slot_color
from pipelines.scene import Scene, track_slots

from . import compose
from .session import (MAX_IMAGE_PIXELS, MAX_JSON_MB, MAX_UPLOAD_MB, MAX_VIDEO_FRAMES, MAX_VIDEO_SECONDS,
                      WORK_IMAGE_SIDE, Session)

PREVIEW_SIZE = 256


def _gpu(fn: Callable) -> Callable:
    """``spaces.GPU`` when running on a Hugging Face ZeroGPU Space, else the function itself."""
    if importlib.util.find_spec("spaces") is None:
        return fn
    import spaces
    return spaces.GPU(duration=120)(fn)


def check_upload(path: str | Path | None, what: str, max_mb: float) -> Path:
    """An uploaded file exists and is within its size limit; raises ValueError saying what to do."""
    if not path:
        raise ValueError(f"{what}: no file was uploaded")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: the upload did not arrive; upload it again")
    size = p.stat().st_size
    if size > max_mb * 2**20:
        raise ValueError(f"{what}: {p.name} is {size / 2**20:.1f} MB; the limit is {max_mb:g} MB")
    return p


def write_video(path: Path, frames: np.ndarray, fps: float) -> Path:
    """H.264 mp4 that browsers play (yuv420p, even size) — for the pose preview, which must not wait for
    torch and diffusers to import (``pipelines.mix.export_to_video`` writes generated clips)."""
    import imageio.v2 as imageio
    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    frames = frames[:, : h - h % 2, : w - w % 2]
    imageio.mimwrite(path, list(frames), fps=float(fps), codec="libx264", quality=8, pixelformat="yuv420p",
                     macro_block_size=1, ffmpeg_log_level="error")
    return path


def data_uri(img: np.ndarray | Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(buf, fmt, optimize=True)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


# ---------------------------------------------------------------------------------------------------------
# characters
# ---------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _card_thumb(path: str, mtime: float, size: int) -> str:
    img = Image.open(path).convert("RGB")
    return data_uri(ImageOps.fit(img, (size, size), Image.LANCZOS), "JPEG")


@lru_cache(maxsize=256)
def _avatar(ref: str, mask: str, mtime: float, height: int) -> str:
    """The character cut out with its mask (transparent around it), ``height`` pixels tall."""
    img = np.asarray(Image.open(ref).convert("RGB"))
    m = np.asarray(Image.open(mask).convert("L"))
    ys, xs = np.nonzero(m > 127)
    if not len(ys):
        return _card_thumb(ref, mtime, height)
    pad = 2
    y0, y1 = max(0, ys.min() - pad), min(img.shape[0], ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(img.shape[1], xs.max() + pad + 1)
    rgba = np.dstack([img[y0:y1, x0:x1], m[y0:y1, x0:x1]])
    im = Image.fromarray(rgba, "RGBA")
    im.thumbnail((height * 2, height), Image.LANCZOS)
    return data_uri(im)


class CharacterService:
    """The shipped library plus each session's own characters (same folder layout)."""

    def library(self, session: Session):
        return compose.session_library(session)

    def thumb(self, c: LibraryCharacter, size: int = 112) -> str:
        return _card_thumb(str(c.reference_path), c.reference_path.stat().st_mtime, size)

    def avatar(self, c: LibraryCharacter, height: int = 56) -> str:
        return _avatar(str(c.reference_path), str(c.mask_path), c.mask_path.stat().st_mtime, height)

    def load_image(self, session: Session, path: str | Path) -> tuple[Path, np.ndarray]:
        """Check an uploaded image against the limits (before decoding it), orient it, flatten alpha onto
        grey, scale it to at most WORK_IMAGE_SIDE, and keep a PNG copy in the session's uploads."""
        p = check_upload(path, "image", MAX_UPLOAD_MB)
        try:
            im = Image.open(p)
            w, h = im.size                                  # header only: nothing decoded yet
        except (OSError, Image.DecompressionBombError, ValueError):
            raise ValueError(f"image: {p.name} is not an image this studio can read; upload a PNG, JPEG or WebP") from None
        if w * h > MAX_IMAGE_PIXELS:
            raise ValueError(f"image: {w}×{h} is {w * h / 1e6:.1f} megapixels; the limit is "
                             f"{MAX_IMAGE_PIXELS / 1e6:g} MP — scale it down and upload again")
        if w < 32 or h < 32:
            raise ValueError(f"image: {w}×{h} is too small to cut a character from; use at least 32×32 pixels")
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (127, 127, 127, 255))
            im = Image.alpha_composite(bg, rgba)
        im = im.convert("RGB")
        if max(im.size) > WORK_IMAGE_SIDE:
            im.thumbnail((WORK_IMAGE_SIDE, WORK_IMAGE_SIDE), Image.LANCZOS)
        out = session.new_path("uploads", ".png", "image")
        im.save(out)
        return out, np.asarray(im)

    def add(self, session: Session, image: np.ndarray, mask: np.ndarray, name: str, style: str) -> LibraryCharacter:
        return compose.add_user_character(session, image, mask, name, style)


# ---------------------------------------------------------------------------------------------------------
# segmentation
# ---------------------------------------------------------------------------------------------------------
class SegmentService:
    """One ``Segmenter`` shared by all sessions. ``set_image`` is the expensive step, so the service
    remembers which upload is embedded and re-embeds only when another image is asked about."""

    def __init__(self, backend: str = "auto", model: str | None = None, device=None):
        self.backend, self.model, self.device = backend, model, device
        self._seg = None
        self._key: str | None = None
        self._lock = threading.Lock()

    def segmenter(self):
        if self._seg is None:
            if importlib.util.find_spec("pipelines.segment") is None:
                raise ValueError("segmentation: click segmentation (pipelines.segment) is not installed in this "
                                 "build; open a scene.zip that holds your character's image and mask instead")
            with self._lock:
                if self._seg is None:
                    from pipelines.segment import Segmenter
                    kw = {"backend": self.backend}
                    if self.model:
                        kw["model"] = self.model
                    if self.device is not None:
                        kw["device"] = self.device
                    self._seg = Segmenter(**kw)
        return self._seg

    def status(self) -> tuple[str, str]:
        try:
            seg = self.segmenter()
        except ValueError as e:
            return "missing", str(e)
        return seg.backend, seg.status

    def predict(self, key: str, image: np.ndarray | Callable[[], np.ndarray], points: list[tuple[int, int]],
                labels: list[int], mask_input: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """Mask for one character from its clicks → (mask (H, W) bool, logits (1, 256, 256), score)."""
        seg = self.segmenter()
        with self._lock:
            if self._key != key:
                seg.set_image(image() if callable(image) else image)
                self._key = key
            masks, scores, logits = seg.predict(points=[tuple(map(int, p)) for p in points],
                                                labels=[int(v) for v in labels], mask_input=mask_input,
                                                multimask=False)
        return np.asarray(masks[0], bool), np.asarray(logits[:1], np.float32), float(scores[0])

    def cutout(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        from pipelines.segment import cutout
        return cutout(image, mask)


# ---------------------------------------------------------------------------------------------------------
# motion
# ---------------------------------------------------------------------------------------------------------
class MotionService:
    """Motion sources and the pose preview."""

    def __init__(self, pose_weights: str | Path | None = None, device=None):
        self.pose_weights, self.device = pose_weights, device
        self._extractor = None
        self._lock = threading.Lock()

    def status(self) -> tuple[str, str]:
        from pipelines.pose.extract import detector_report, missing_message
        report = detector_report(self.pose_weights)
        usable = [b for b, why in report.items() if why is None]
        if usable:
            name = {"dwpose": "DWPose", "openpose": "OpenPose body"}[usable[0]]
            return usable[0], f"{name} detector: poses can be extracted from a driving video."
        return "templates", missing_message(report)

    def extractor(self):
        if self._extractor is None:
            with self._lock:
                if self._extractor is None:
                    from pipelines.pose.extract import PoseExtractor
                    self._extractor = PoseExtractor(weights=self.pose_weights, device=self.device)
        return self._extractor

    def upload_openpose(self, session: Session, path: str | Path) -> dict:
        """An uploaded OpenPose JSON (a motion document, a list of detector frames, or one frame) → the
        session's motions folder, normalised to our motion document. Returns the composition's motion."""
        p = check_upload(path, "OpenPose JSON", MAX_JSON_MB)
        try:
            doc = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"OpenPose JSON: {p.name} is not valid JSON ({e})") from None
        try:
            kp, w, h = from_openpose_json(doc)
        except (ValueError, AttributeError, TypeError) as e:
            raise ValueError(str(e) if isinstance(e, ValueError) else
                             f"OpenPose JSON: {p.name} does not look like OpenPose output") from None
        if kp.shape[1] > 5:
            raise ValueError(f"OpenPose JSON: {kp.shape[1]} people; a scene holds at most 5 — keep the ones you need")
        if kp.shape[0] > MAX_VIDEO_FRAMES * 4:
            raise ValueError(f"OpenPose JSON: {kp.shape[0]} frames; the limit is {MAX_VIDEO_FRAMES * 4}")
        fps = float(doc.get("fps", 8.0)) if isinstance(doc, dict) else 8.0
        out = session.new_path("motions", ".json", compose.slug(p.stem))
        save_motion(out, kp, w, h, fps=fps, name=p.stem)
        return {"keypoints": out.relative_to(session.folder).as_posix(), "label": p.name}

    def extract_from_video(self, session: Session, path: str | Path, fps: float = 8.0,
                           progress: Callable[[int, int], None] | None = None) -> dict:
        """Driving video → keypoint tracks (through the pose detector) → a motion file in the session."""
        from pipelines.pose.extract import read_video
        p = check_upload(path, "video", MAX_UPLOAD_MB)
        extractor = self.extractor()                  # PoseWeightsMissing says which weights and what instead
        clip = read_video(p, fps=fps, max_seconds=MAX_VIDEO_SECONDS, max_frames=MAX_VIDEO_FRAMES)
        with self._lock:
            kp = extractor(clip.frames, progress=progress)
        h, w = clip.frames.shape[1:3]
        out = session.new_path("motions", ".json", compose.slug(p.stem))
        save_motion(out, kp, w, h, fps=clip.fps, name=p.stem, extra={"source": "video", "detector": extractor.backend})
        return {"keypoints": out.relative_to(session.folder).as_posix(), "label": p.name}

    def preview(self, session: Session, names: list[str], background: np.ndarray | None = None) -> Path:
        """The IEG animation of the composition: every track's skeleton in the colour of the identity slot
        performing it (``render_ieg`` with ``track_slots``), the performer's name over its head, on a dimmed
        set so the creator sees the stage."""
        comp = session.comp
        info = compose.motion_info(comp, session.folder)
        size = PREVIEW_SIZE
        kp = rescale(info.keypoints, (info.width, info.height), (size, size))
        n = max(1, int(comp.frames))
        kp = kp[:n] if len(kp) >= n else np.concatenate([kp, np.repeat(kp[-1:], n - len(kp), 0)])
        valid = len(comp.assignment) <= info.tracks and all(0 <= t < info.tracks for t in comp.assignment)
        slots = track_slots(comp.assignment, info.tracks) if valid else [-1] * info.tracks
        ieg = render_ieg(kp, size, size, slots=slots, thickness=4)
        if background is not None:
            bg = np.asarray(Image.fromarray(background).resize((size, size), Image.LANCZOS), np.float32) * 0.28
            on = ieg.any(-1, keepdims=True)
            frames = np.where(on, ieg, bg[None].astype(np.uint8))
        else:
            frames = ieg
        frames = np.ascontiguousarray(frames)
        _label(frames, kp, slots, names)
        out = session.new_path("previews", ".mp4", "pose")
        write_video(out, frames, comp.fps)
        session.prune_previews()
        return out


def _label(frames: np.ndarray, kp: np.ndarray, slots: list[int], names: list[str]) -> None:
    """Write each performer's name above its head, in its slot colour (in place)."""
    import cv2
    for f in range(len(frames)):
        for t, s in enumerate(slots):
            if s < 0 or s >= len(names):
                continue
            pts = kp[f, t]
            vis = pts[:, 2] > 0
            if not vis.any():
                continue
            head = pts[J["nose"]] if vis[J["nose"]] else pts[vis][np.argmin(pts[vis][:, 1])]
            text = names[s]
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, 0.5, 1)
            x = int(np.clip(head[0] - tw / 2, 2, frames.shape[2] - tw - 2))
            y = int(np.clip(head[1] - 14, th + 2, frames.shape[1] - 2))
            cv2.putText(frames[f], text, (x, y), cv2.FONT_HERSHEY_DUPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(frames[f], text, (x, y), cv2.FONT_HERSHEY_DUPLEX, 0.5, slot_color(s), 1, cv2.LINE_AA)


# ---------------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------------
class GenerationCancelled(Exception):
    """Raised inside the denoising loop when the creator pressed Cancel."""


@dataclass
class Generation:
    frames: np.ndarray              # (F, H, W, 3) uint8
    guidance_frames: np.ndarray     # (F, H, W, 3) the IEG video the model was given
    reference_sheet: np.ndarray     # (H, W, 3) what the ReferenceNet encoded
    reference_guidance: np.ndarray  # (H, W, 3) the slot-tinted reference masks
    fps: float
    warnings: list[str]             # what the pipeline adjusted (e.g. a short motion held on its last pose)
    seconds: float
    appearance_prior: np.ndarray | None = None   # (F, H, W, 4) what the pose guider read next to the IEG video


class GenerateService:
    """``MixPipeline`` on the embedded model (``pipelines.mix.resolve_model``: an explicit path → assets →
    the Hugging Face cache), loaded on first use; one generation at a time."""

    def __init__(self, model_path: str | Path | None = None, device=None):
        self.model_path = model_path
        self.device = device
        self._pipe = None
        self._lock = threading.Lock()
        self._cancel: dict[str, threading.Event] = {}

    def status(self) -> tuple[str, str]:
        if importlib.util.find_spec("pipelines.mix") is None:
            return "missing", "The generator (pipelines.mix) is not installed in this build."
        from pipelines.mix import ModelNotFoundError, resolve_model
        try:
            path = resolve_model(self.model_path)
        except ModelNotFoundError as e:
            return "missing", str(e)
        loaded = f"loaded, {self._pipe.mode} mode" if self._pipe is not None else "loads on first generation"
        return "ready", f"Embedded model {self._rel(path)} ({loaded}) on {self._device_name()}."

    @staticmethod
    def _rel(p: Path) -> str:
        try:
            return p.resolve().relative_to(Path.cwd()).as_posix()
        except ValueError:
            return str(p)

    def _device(self):
        if self.device is not None:
            return self.device
        import torch
        acc = getattr(torch, "accelerator", None)
        return acc.current_accelerator() if acc is not None and acc.is_available() else None

    def _device_name(self) -> str:
        if os.environ.get("SPACES_ZERO_GPU") == "true":
            return "ZeroGPU"
        device = self._device()
        return "CPU" if device is None else str(device)

    def pipeline(self):
        if self._pipe is None:
            with self._lock:
                if self._pipe is None:
                    from pipelines.mix import load_pipeline
                    pipe = load_pipeline(self.model_path, device=self._device())
                    # the UI follows this bar (gr.Progress(track_tqdm=True)); load_pipeline turns it off
                    pipe.set_progress_bar_config(disable=False, desc="denoising", leave=False)
                    self._pipe = pipe
        return self._pipe

    def cancel(self, session_id: str) -> None:
        self._cancel.setdefault(session_id, threading.Event()).set()

    def text_motion(self) -> tuple[str, str]:
        """Can this build turn text into motion? (The pipeline carries a text-to-motion model.)"""
        if self.status()[0] != "ready":
            return "missing", "Text motion needs the generator, which is not available."
        if self.pipeline().motion_model is None:
            return "missing", ("Text motion is not available: no text-to-motion model in assets/models/motion "
                               "(train one with `python -m pipelines.train motion`, then export it there). "
                               "Use a template, an OpenPose JSON file or a driving video.")
        return "ready", "Text motion: the motion model turns the words into keypoints for the cast."

    def text_keypoints(self, scene: Scene, library=None) -> tuple[np.ndarray, list[str]]:
        """The keypoints a text motion gives for this scene and seed — the same call the pipeline makes
        (``resolve_scene``), so the pose preview shows what the generation will be driven by."""
        import torch
        from pipelines.mix.scene_inputs import resolve_scene
        pipe = self.pipeline()
        with self._lock:
            inp = resolve_scene(scene, library, pipe.motion_model, torch.Generator().manual_seed(int(scene.seed)))
        return inp.keypoints, list(inp.warnings)

    def generate(self, scene: Scene, session_id: str = "api", library=None) -> Generation:
        """Render a validated scene (``library``: the session's, so its own characters' CCE tokens are read).
        Progress goes through the pipeline's tqdm bar (the UI tracks it); ``cancel(session_id)`` stops it
        at the next denoising step with GenerationCancelled."""
        import torch
        pipe = self.pipeline()
        flag = self._cancel.setdefault(session_id, threading.Event())
        flag.clear()

        def on_step_end(_pipe, step, timestep, tensors):
            if flag.is_set():
                raise GenerationCancelled()
            return tensors

        with self._lock:
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = _run_pipeline(pipe, scene, torch.Generator().manual_seed(int(scene.seed)), on_step_end, library)
            seconds = time.perf_counter() - t0
        # the pipeline's own notes (e.g. a short motion held on its last pose) — not library noise
        notes = list(out.warnings) + [str(w.message) for w in caught if issubclass(w.category, UserWarning)
                                      and "pipelines" in Path(w.filename).parts and str(w.message) not in out.warnings]
        return Generation(np.asarray(out.frames), np.asarray(out.guidance_frames), np.asarray(out.reference_sheet),
                          np.asarray(out.reference_guidance), float(out.fps), notes, seconds,
                          None if out.appearance_prior is None else np.asarray(out.appearance_prior))

    @staticmethod
    def write(gen: Generation, folder: Path, stem: str) -> dict[str, Path]:
        """The clip's files: mp4, gif and the side-by-side view (references | slots | guidance | [prior |] output)."""
        from pipelines.mix import export_to_gif, export_to_video, side_by_side
        view = side_by_side(gen.reference_sheet, gen.reference_guidance, gen.guidance_frames, gen.frames,
                            gen.appearance_prior)
        return {"video": export_to_video(gen.frames, folder / f"{stem}.mp4", gen.fps),
                "gif": export_to_gif(gen.frames, folder / f"{stem}.gif", gen.fps),
                "sheet": export_to_video(view, folder / f"{stem}-sheet.mp4", gen.fps)}


@_gpu
def _run_pipeline(pipe, scene: Scene, generator, callback, library=None):
    return pipe(scene, generator=generator, num_inference_steps=int(scene.sampler["steps"]),
                guidance_scale=float(scene.sampler["guidance_scale"]), scheduler=scene.sampler["scheduler"],
                callback_on_step_end=callback, library=library)


# ---------------------------------------------------------------------------------------------------------
# CCE
# ---------------------------------------------------------------------------------------------------------
@_gpu
def _on_gpu(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` inside the ZeroGPU allocation when on a Space (the CCE embedding and fit)."""
    return fn(*args, **kwargs)


class CCEService:
    """A character's learned tokens (``pipelines.cce``), written as ``cce.safetensors`` in its library
    folder: ``embed`` gives a new character its image-derived embedding at once (through the generator's
    own image encoder, so the tokens fit that generator); ``learn`` runs the short fit that improves it,
    reporting progress and stopping when cancelled. Uses the generator's pipeline and lock."""

    LEARN_SECONDS = 60.0
    LEARN_STEPS = 300

    def __init__(self, generate: GenerateService):
        self.generate = generate
        self._cancel: dict[str, threading.Event] = {}

    def status(self) -> tuple[str, str]:
        if importlib.util.find_spec("pipelines.cce") is None:
            return "missing", "CCE (pipelines.cce) is not installed in this build; characters are read from their images."
        state, why = self.generate.status()
        if state != "ready":
            return "missing", f"CCE needs the generator: {why}"
        return "ready", (f"CCE: a new character gets tokens from its image at once; “Learn” fits them "
                         f"(at most {self.LEARN_SECONDS:g} s).")

    def embed(self, c: LibraryCharacter) -> tuple[Path, float]:
        """The instant embedding of ``c`` from its reference image and mask → (its cce.safetensors, seconds)."""
        from pipelines.cce import embed_character
        image, mask = c.load_reference()
        pipe = self.generate.pipeline()
        with self.generate._lock:
            t0 = time.perf_counter()
            emb = _on_gpu(embed_character, image, mask, name=c.name, style=c.style, pipe=pipe)
            seconds = time.perf_counter() - t0
        emb.id, emb.show = c.id, c.show
        return emb.save(c.cce_path), seconds

    def cancel(self, session_id: str) -> None:
        self._cancel.setdefault(session_id, threading.Event()).set()

    def learn(self, c: LibraryCharacter, session_id: str, progress: Callable[[float, str], None] | None = None,
              seconds: float | None = None, steps: int | None = None) -> dict:
        """Fit ``c``'s identity tokens through the frozen generator (``pipelines.cce.fit_character``),
        starting from its instant embedding; overwrite its cce.safetensors. Returns the fit's record.
        ``cancel(session_id)`` stops it at the next step with GenerationCancelled (nothing is written)."""
        from pipelines.cce import fit_character
        from pipelines.cce.embedding import CharacterEmbedding
        from pipelines.library import Library
        if not c.cce_path.is_file():
            self.embed(c)
        emb = CharacterEmbedding.load(c.cce_path)
        image, mask = c.load_reference()
        pipe = self.generate.pipeline()
        flag = self._cancel.setdefault(session_id, threading.Event())
        flag.clear()

        def report(fraction: float, message: str) -> None:
            if flag.is_set():
                raise GenerationCancelled()
            if progress is not None:
                progress(fraction, message)

        with self.generate._lock:
            fitted, record = _on_gpu(fit_character, emb, [image], [mask], pipe=pipe, library=Library(),
                                           seconds=seconds or self.LEARN_SECONDS, steps=steps or self.LEARN_STEPS,
                                           progress=report)
        fitted.save(c.cce_path)
        return {k: v for k, v in record.items() if k != "history"}


# ---------------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Overlay:
    video: Path                     # the clip with each track outlined in the colour of the identity it received
    accuracy: float                 # IC accuracy over the judged track-frames (nan when none could be judged)
    per_track: list[float]
    notes: list[str]


class EvalService:
    """The identity-correspondence overlay of a generated clip (``pipelines.eval``: every track's pixels are
    described by the identity probe and matched to the references), with its IC accuracy."""

    def __init__(self, descriptor: str = "probe", probes: str | Path | None = None):
        self.descriptor_name, self.probes_path = descriptor, probes
        self._descriptor = self._probes = None
        self._lock = threading.Lock()

    def status(self) -> tuple[str, str]:
        if importlib.util.find_spec("pipelines.eval") is None:
            return "missing", "IC overlay: the evaluation package (pipelines.eval) is not installed in this build."
        try:
            self.descriptor()
        except (FileNotFoundError, ValueError) as e:
            return "missing", f"IC overlay is not available: {e}"
        return "ready", f"IC overlay: the {self.descriptor_name} descriptor judges which identity every track received."

    def descriptor(self):
        if self._descriptor is None:
            with self._lock:
                if self._descriptor is None:
                    from pipelines.eval import Probes, get_descriptor
                    self._probes = Probes.load(self.probes_path)
                    self._descriptor = get_descriptor(self.descriptor_name, self._probes)
        return self._descriptor

    def overlay(self, frames: np.ndarray, scene: Scene, fps: float, out: Path,
                keypoints: np.ndarray | None = None) -> Overlay | None:
        """IC of ``frames`` against ``scene`` (its tracks located by ``keypoints`` (F, T, 18, 3) or the scene's
        motion) → the overlay video at ``out``. None when the evaluation package is not available."""
        if self.status()[0] != "ready":
            return None
        from pipelines.eval import evaluate_video
        from pipelines.eval.ic import overlay_frames
        descriptor = self.descriptor()
        with self._lock:
            report, regions, refs, notes = evaluate_video(frames, scene, descriptor, probes=self._probes,
                                                          keypoints=keypoints)
            video = overlay_frames(frames, regions, report, [r.name for r in refs])
        write_video(out, video, fps)
        return Overlay(out, float(report.accuracy), [float(v) for v in report.per_track], list(notes))


# ---------------------------------------------------------------------------------------------------------
class Services:
    """Everything the studio's handlers call."""

    def __init__(self, *, characters: CharacterService | None = None, segment: SegmentService | None = None,
                 motion: MotionService | None = None, generate: GenerateService | None = None,
                 cce: CCEService | None = None, evaluate: EvalService | None = None):
        self.characters = characters or CharacterService()
        self.segment = segment or SegmentService()
        self.motion = motion or MotionService()
        self.generate = generate or GenerateService()
        self.cce = cce or CCEService(self.generate)
        self.evaluate = evaluate or EvalService()

    def warm_up(self) -> threading.Thread:
        """Import the engines and load the generator in the background, so the first click does not wait
        for torch and diffusers (app.py calls this once the server is starting; never at import)."""
        def work():
            try:
                self.engines()
                if self.generate.status()[0] == "ready":
                    self.generate.pipeline()
            except Exception:           # a missing engine is reported by the engines panel, not here
                pass
        t = threading.Thread(target=work, name="studio-warm-up", daemon=True)
        t.start()
        return t

    def engines(self) -> dict[str, tuple[str, str]]:
        """{engine: (state, one sentence)} for the engines panel."""
        out = {}
        for name, fn in (("segmenter", self.segment.status), ("poses", self.motion.status),
                         ("model", self.generate.status), ("text", self.generate.text_motion),
                         ("cce", self.cce.status), ("overlay", self.evaluate.status)):
            try:
                out[name] = fn()
            except ImportError as e:
                out[name] = ("missing", f"not installed in this build ({e.name})")
        return out


__all__ = ["Services", "CharacterService", "SegmentService", "MotionService", "GenerateService", "CCEService",
           "EvalService", "Generation", "Overlay", "GenerationCancelled", "check_upload", "write_video", "data_uri"]
