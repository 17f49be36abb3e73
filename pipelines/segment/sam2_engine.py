"""SAM2 through the ``sam2`` package: finding a checkpoint, building the model from sam2's own config,
loading weights safely, and the image and video predictors.

Checkpoints are named by Hugging Face id (``facebook/sam2.1-hiera-tiny|small|base-plus|large`` and the
SAM2.0 ids; sam2's own table says which config and file belong to each) — looked up in the Hugging Face
cache first and downloaded only when ``HF_HUB_OFFLINE`` is not set — or by a local ``.pt`` path whose
file name says which config it needs (as the official files do). Weights load with
``torch.load(weights_only=True)``; a checkpoint that does not fit its config raises a ValueError listing
what is missing, unexpected or mis-shaped (SAM2's own loader logs them and raises a bare RuntimeError).

One model serves both predictors: ``SAM2VideoPredictor`` is a ``SAM2Base``, which is all
``SAM2ImagePredictor`` needs.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .inputs import LOW_RES
from .track import non_overlapping

DEFAULT_MODEL = "facebook/sam2.1-hiera-tiny"

# the post-processing sam2's builders switch on (copied here so we can set fill_hole_area ourselves:
# its hole filling needs a CUDA extension and logs an error on every CPU run otherwise)
_POSTPROCESS = [
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
]
_SIZES = {"t": "tiny", "tiny": "tiny", "s": "small", "small": "small", "b+": "base_plus", "base_plus": "base_plus",
          "l": "large", "large": "large"}


class WeightsNotFound(Exception):
    """The SAM2 checkpoint is not on this machine (and could not be fetched). The message names the repo
    and the file; ``backend="auto"`` turns it into the fallback."""


def known_models() -> dict[str, tuple[str, str]]:
    """Hugging Face id → (sam2 config name, checkpoint file name), from sam2's own table."""
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES
    return dict(HF_MODEL_ID_TO_FILENAMES)


def _offline() -> bool:
    from huggingface_hub import constants
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def resolve_checkpoint(model: str) -> tuple[str, str, str]:
    """``model`` (HF id or local path) → (config name, checkpoint path, a short label for the status)."""
    if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
        raise ValueError(f"model: expected a SAM2 Hugging Face id such as {DEFAULT_MODEL!r} or a checkpoint "
                         f"path, got {model!r}")
    model = str(model)
    table = known_models()
    if model in table:
        config, fname = table[model]
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        cached = try_to_load_from_cache(model, fname)
        if isinstance(cached, str):
            return config, cached, f"{model} ({fname})"
        if _offline():
            raise WeightsNotFound(f"SAM2 weights not found: {model} ({fname}) is not in the Hugging Face cache "
                                  "and HF_HUB_OFFLINE=1")
        try:
            return config, hf_hub_download(model, fname), f"{model} ({fname})"
        except Exception as e:                      # no network, gated, …: every reason means "not here"
            raise WeightsNotFound(f"SAM2 weights not found: {model} ({fname}) is not in the Hugging Face cache "
                                  f"and could not be downloaded ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
    looks_like_path = (model.endswith((".pt", ".pth")) or model.startswith(("/", ".", "~"))
                       or model.count("/") > 1 or Path(model).exists())
    if not looks_like_path:
        raise ValueError(f"model: {model!r} is neither a SAM2 checkpoint id ({', '.join(table)}) nor a "
                         "path to a .pt checkpoint")
    path = Path(model).expanduser()
    if not path.is_file():
        raise WeightsNotFound(f"SAM2 weights not found: no checkpoint file at {path}")
    return config_for_file(path.name), str(path), path.name


def config_for_file(name: str) -> str:
    """The sam2 config a checkpoint file name belongs to (``sam2.1_hiera_tiny.pt`` → sam2.1 tiny)."""
    for config, fname in known_models().values():
        if name == fname:
            return config
    m = re.search(r"(sam2(?:\.1)?)[_-]hiera[_-](tiny|small|base[_-]plus|b\+|large|t|s|l)\b", name.lower())
    if m is None:
        raise ValueError(f"model: cannot tell which SAM2 configuration {name!r} belongs to; keep the official "
                         "file name (e.g. sam2.1_hiera_tiny.pt, sam2_hiera_large.pt)")
    version, size = m.group(1), _SIZES[m.group(2).replace("-", "_")]
    for config, fname in known_models().values():
        if fname == f"{version}_hiera_{size}.pt":
            return config
    raise ValueError(f"model: no SAM2 configuration for {name!r}")     # pragma: no cover - table is complete


def load_checkpoint(net: torch.nn.Module, path: str, config: str) -> None:
    """Load SAM2 weights with ``weights_only=True``; a mismatch is a ValueError that says what differs."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"model: {path} is not a readable PyTorch checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:200]})") from None
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"model: {path} holds no SAM2 state dict (expected {{'model': {{name: tensor}}}})")
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} tensors of another shape (first: {shapes[0]})")
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise ValueError(f"model: checkpoint {path} does not match the SAM2 configuration {config}: "
                         f"{'; '.join(parts)}. Is it a checkpoint of another model size or SAM2 version? "
                         "Keep the official file name so the right configuration is chosen")
    net.load_state_dict(sd, strict=True)


class Sam2Engine:
    """SAM2 image and video prediction behind the Segmenter's conventions (numpy in and out, low-res
    logits always 256 × 256, non-overlapping video masks)."""

    name = "sam2"

    def __init__(self, model: str = DEFAULT_MODEL, device: torch.device | None = None, image_size: int | None = None):
        config, ckpt, label = resolve_checkpoint(model)
        from sam2.build_sam import build_sam2_video_predictor
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        self.device = device or torch.device("cpu")
        overrides = list(_POSTPROCESS)
        overrides.append(f"++model.fill_hole_area={0 if self.device.type == 'cpu' else 8}")
        if image_size is not None:
            if image_size % 32 or not 128 <= image_size <= 2048:
                raise ValueError(f"sam2_image_size: {image_size} must be a multiple of 32 in 128..2048 (1024 as trained)")
            overrides.append(f"++model.image_size={int(image_size)}")
        net = build_sam2_video_predictor(config, ckpt_path=None, device="cpu", mode="eval",
                                         hydra_overrides_extra=overrides, apply_postprocessing=False)
        load_checkpoint(net, ckpt, config)
        self.model = net.to(self.device).eval()
        self.predictor = SAM2ImagePredictor(self.model)
        s = self.model.image_size              # the predictor assumes 1024; follow the configured size
        self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self.label = label
        self.config = config

    # ---- images -------------------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray) -> None:
        with torch.inference_mode():
            self.predictor.set_image(image)

    def reset(self) -> None:
        self.predictor.reset_predictor()

    @property
    def is_image_set(self) -> bool:
        return bool(self.predictor._is_image_set)

    def predict(self, points, labels, box, mask_input, multimask):
        mi = None
        if mask_input is not None:
            mi = _resize_logits(mask_input, self.model.image_size // 4)
        with torch.inference_mode():
            masks, scores, low = self.predictor.predict(
                point_coords=points if len(points) else None, point_labels=labels if len(points) else None,
                box=box, mask_input=mi, multimask_output=multimask)
        return masks.astype(bool), scores.astype(np.float32), _resize_logits(low, LOW_RES)

    # ---- video --------------------------------------------------------------------------------------------
    def propagate(self, frames: np.ndarray, frame_index: int, masks: np.ndarray) -> np.ndarray:
        F_, H, W = frames.shape[:3]
        N = masks.shape[0]
        out = np.zeros((F_, N, H, W), bool)
        live = [k for k in range(N) if masks[k].any()]
        if not live:
            return out
        with tempfile.TemporaryDirectory(prefix="sam2-frames-") as d:
            # the public video API reads a folder of JPEG frames; quality 95 keeps it near-lossless
            for i, f in enumerate(frames):
                cv2.imwrite(os.path.join(d, f"{i:05d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
            with torch.inference_mode():
                state = self.model.init_state(d, offload_video_to_cpu=True)
        logits = np.full((F_, N, H, W), -np.inf, np.float32)
        with torch.inference_mode():
            for k in live:
                self.model.add_new_mask(state, frame_idx=frame_index, obj_id=k, mask=masks[k])
            for reverse in (False, True):
                for f, ids, lg in self.model.propagate_in_video(state, start_frame_idx=frame_index, reverse=reverse):
                    lg = lg[:, 0].float().cpu().numpy()
                    for j, k in enumerate(ids):
                        logits[f, k] = lg[j]
        out = non_overlapping(logits)
        out[frame_index] = masks
        return out


def _resize_logits(a: np.ndarray, size: int) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.shape[-1] == size and a.shape[-2] == size:
        return a
    t = torch.from_numpy(a)[None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0].numpy()
