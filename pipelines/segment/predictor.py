"""``Segmenter``: click segmentation for the studio, the CLI and training data — one API whatever engine
runs underneath, shaped like SAM2's image predictor.

Engines, in the order ``backend="auto"`` tries them:

* ``sam2`` — SAM2 through the ``sam2`` package (``sam2_engine.py``), weights by Hugging Face id or path;
* ``fallback`` — the offline click segmenter (``offline.py``): ClickNet, trained on the embedded world and
  shipped in ``assets/models/clicknet/``, with a zoom-in pass; if even those weights are missing, GrabCut
  seeded by the clicks (``grabcut.py``).

``status`` is one sentence for the UI saying which engine runs and why. Inputs are checked here
(``inputs.py``), so every engine sees the same clean arrays and users get the same errors.
"""

from __future__ import annotations

import numpy as np
import torch

from .inputs import as_rgb_uint8, check_image_size, check_prompts, image_size_of
from .sam2_engine import DEFAULT_MODEL, WeightsNotFound

BACKENDS = ("auto", "sam2", "fallback")


def default_device() -> torch.device:
    """The machine's accelerator when there is one, else the CPU."""
    acc = getattr(torch, "accelerator", None)
    if acc is not None and acc.is_available():
        return torch.device(acc.current_accelerator())
    return torch.device("cpu")


class Segmenter:
    """Click segmentation of images and propagation of masks through videos.

        seg = Segmenter()                                  # SAM2 if its weights are here, else offline
        seg.set_image(image)                               # once per image (the expensive part)
        masks, scores, logits = seg.predict(points=[(120, 80)], labels=[1])
        masks, scores, logits = seg.predict(points=[(120, 80), (90, 140)], labels=[1, 0], mask_input=logits[:1])
        tracks = seg.propagate(frames, 0, masks_on_frame_0)  # (F, N, H, W)

    Several objects on one image: one ``predict`` per object, each with its own clicks and its own
    previous logits.
    """

    def __init__(self, backend: str = "auto", model: str = DEFAULT_MODEL, device: str | torch.device | None = None,
                 *, sam2_image_size: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model
        self._hw: tuple[int, int] | None = None
        if backend in ("auto", "sam2"):
            try:
                from .sam2_engine import Sam2Engine
                self._engine = Sam2Engine(model, self.device, image_size=sam2_image_size)
                self.status = f"SAM2 {self._engine.label} on {self.device.type}"
                return
            except WeightsNotFound as e:
                if backend == "sam2":
                    raise WeightsNotFound(f"{e}. Put the checkpoint in the Hugging Face cache (run "
                                          f"`huggingface-cli download {model}` on a machine with network), pass "
                                          "a local .pt path as model=, or use backend='auto' or 'fallback'") from None
                self._engine, engine_status = _offline_engine(self.device)
                self.status = f"{e}; using {engine_status}"
                return
        self._engine, engine_status = _offline_engine(self.device)
        self.status = f"Using {engine_status}, as asked (backend='fallback')"

    @property
    def backend(self) -> str:
        """``"sam2"`` or ``"fallback"``."""
        return "sam2" if self._engine.name == "sam2" else "fallback"

    @property
    def engine(self) -> str:
        """The engine itself: ``"sam2"``, ``"clicknet"`` or ``"grabcut"``."""
        return self._engine.name

    # ---- images -----------------------------------------------------------------------------------------
    def set_image(self, image) -> None:
        """Prepare ``image`` (H×W×3 uint8 RGB; grayscale, RGBA, 16-bit, float and PIL images are
        converted) for any number of ``predict`` calls. Refuses empty images and images over 40
        megapixels before converting anything."""
        rgb = as_rgb_uint8(image)
        self._engine.set_image(rgb)
        self._hw = rgb.shape[:2]

    def reset(self) -> None:
        """Forget the image (and free its features)."""
        self._engine.reset()
        self._hw = None

    @property
    def is_image_set(self) -> bool:
        return self._hw is not None

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask: bool = False):
        """Segment one object of the current image.

        points: (x, y) pixel clicks; labels: 1 on the object, 0 not on it (one per point); box: optional
        (x0, y0, x1, y1); mask_input: optional (1, 256, 256) logits from a previous call for this object,
        to refine it. Returns masks (K, H, W) bool, scores (K,) float32, low_res_logits (K, 256, 256)
        float32, with K = 3 when ``multimask`` else 1.
        """
        if self._hw is None:
            raise RuntimeError("no image is set: call set_image(image) before predict(...)")
        pts, labs, bx, mi = check_prompts(points, labels, box, mask_input, self._hw)
        return self._engine.predict(pts, labs, bx, mi, bool(multimask))

    # ---- video ------------------------------------------------------------------------------------------
    def propagate(self, frames, frame_index: int, masks) -> np.ndarray:
        """Carry ``masks`` (N, H, W) drawn on frame ``frame_index`` of ``frames`` (F, H, W, 3) through the
        whole clip, forwards and backwards. Returns (F, N, H, W) bool; objects never overlap. Leaves no
        image set."""
        frames, frame_index, masks = self._check_video(frames, frame_index, masks)
        try:
            if self._engine.name == "sam2":
                return self._engine.propagate(frames, frame_index, masks)
            from .track import propagate
            return propagate(self._engine, frames, frame_index, masks)
        finally:
            self.reset()

    @staticmethod
    def _check_video(frames, frame_index, masks):
        if isinstance(frames, (list, tuple)):
            if not frames:
                raise ValueError("frames: the clip is empty; pass (F, H, W, 3) frames with F ≥ 1")
            sizes = {image_size_of(f) for f in frames}
            if len(sizes) != 1:
                raise ValueError(f"frames: frames differ in size ({sorted(sizes)}); all frames of a clip must match")
            check_image_size(*sizes.pop())
            frames = np.stack([as_rgb_uint8(f) for f in frames])
        else:
            shape = getattr(frames, "shape", None)
            if shape is None or len(shape) != 4 or shape[-1] != 3:
                raise ValueError(f"frames: expected (F, H, W, 3) uint8 RGB frames, got "
                                 f"{'shape ' + str(tuple(shape)) if shape is not None else type(frames).__name__}")
            if shape[0] == 0:
                raise ValueError("frames: the clip is empty; pass (F, H, W, 3) frames with F ≥ 1")
            check_image_size(int(shape[1]), int(shape[2]))
            frames = np.stack([as_rgb_uint8(f) for f in frames]) if frames.dtype != np.uint8 else np.ascontiguousarray(frames)
        F_, H, W = frames.shape[:3]
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)) or not 0 <= frame_index < F_:
            raise ValueError(f"frame_index: {frame_index!r} is not a frame of this {F_}-frame clip (0..{F_ - 1})")
        m = np.asarray(masks)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[1:] != (H, W):
            raise ValueError(f"masks: expected (N, {H}, {W}) masks on frame {frame_index}, got shape {np.asarray(masks).shape}")
        if m.shape[0] == 0:
            raise ValueError("masks: no objects to propagate; pass at least one (H, W) mask")
        return frames, int(frame_index), m.astype(bool)


def _offline_engine(device: torch.device):
    """The offline engine and how to describe it: ClickNet when its weights are here, else GrabCut."""
    from .offline import OfflineSegmenter
    try:
        return OfflineSegmenter(device=device), "the offline click segmenter (ClickNet, trained on the embedded world)"
    except (FileNotFoundError, ValueError) as e:
        from .grabcut import GrabCutEngine
        return GrabCutEngine(), (f"GrabCut (classical, weaker on crowded frames) because the ClickNet weights "
                                 f"are missing or unreadable ({e})")
