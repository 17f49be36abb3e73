"""``MixPipeline``: where a scene becomes a clip. Several reference characters, each in its identity slot,
animated along identity-coloured pose tracks (IEG) by a ReferenceNet + denoising UNet with temporal layers,
in 16-frame sliding windows for long clips.

Section order follows diffusers (STYLE.md): imports, example docstring, helpers, class attributes,
``__init__``, ``encode_*``, ``check_inputs``, ``prepare_latents``, properties, ``__call__``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler,
                       EulerDiscreteScheduler, MotionAdapter, UNet2DConditionModel)
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils.torch_utils import randn_tensor

from ..library import Library
from ..models.context import ContextEncoder, slot_images
from ..models.denoiser import MixDenoiser
from ..models.guider import PoseGuider
from ..pose.openpose import check_keypoints
from ..scene import SCHEDULERS, Scene, check_assignment
from .guidance import appearance_prior_video, reference_guidance, slot_regions, target_guidance
from .pipeline_output import MixPipelineOutput
from .scene_inputs import resolve_scene
from .sheet import check_cutout, compose_sheet, sheet_from_frame

logger = logging.getLogger(__name__)
DEFAULT_PRIOR_STRENGTH = 0.3     # SDEdit start for models that read the appearance prior and save none of their own
                                 # (``prior_strength`` in model_index.json); chosen on ICE-mini scenes 21-40 for the
                                 # shipped model (docs/TRAINING.md, *The SDEdit strength*)


def check_prior_strength(value, what: str = "prior_strength") -> None:
    """``value`` must be None or a share of the schedule in (0, 1]."""
    if value is None:
        return
    try:
        ok = 0 < float(value) <= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what}: {value!r} must be in (0, 1] (1 = start from pure noise)")


EXAMPLE_DOC_STRING = """
    Examples:
        ```python
        >>> from pipelines import MixPipeline, Scene
        >>> from pipelines.mix import resolve_model, export_to_video

        >>> pipe = MixPipeline.from_pretrained(resolve_model())        # assets/models/tiny, offline
        >>> scene = Scene.load("assets/scenes/pip-dora-swap.json")
        >>> out = pipe(scene)                                          # seed, steps, sampler from the scene
        >>> export_to_video(out.frames, "swap.mp4", fps=out.fps)

        >>> # explicit arguments: a natural two-character frame as the reference, keypoints (F, T, 18, 3)
        >>> out = pipe(reference_image=frame, reference_masks=masks, keypoints=kp, assignment=[1, 0],
        ...            num_inference_steps=20, guidance_scale=2.5, generator=torch.Generator().manual_seed(0))
        ```
"""

SCHEDULER_CLASSES = {"ddim": DDIMScheduler, "dpm++": DPMSolverMultistepScheduler, "euler": EulerDiscreteScheduler}
assert set(SCHEDULER_CLASSES) == set(SCHEDULERS), "the Scene's sampler names and the pipeline's must agree"


def make_scheduler(name: str, config) -> Any:
    """A fresh scheduler of kind ``name`` ("ddim", "dpm++", "euler") on the model's noise schedule ``config``."""
    if name not in SCHEDULER_CLASSES:
        raise ValueError(f"scheduler: unknown scheduler {name!r}; use one of {', '.join(SCHEDULER_CLASSES)}")
    extra = {"algorithm_type": "dpmsolver++"} if name == "dpm++" else {}
    return SCHEDULER_CLASSES[name].from_config(config, **extra)


def temporal_windows(num_frames: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) windows of ``size`` frames, consecutive ones sharing ``overlap`` frames; the last window
    is aligned to the clip's end (it may overlap its neighbour more). One window when the clip fits."""
    if num_frames <= size:
        return [(0, num_frames)]
    stride = size - overlap
    starts = list(range(0, num_frames - size + 1, stride))
    if starts[-1] + size < num_frames:
        starts.append(num_frames - size)
    return [(s, s + size) for s in starts]


def window_weights(windows: Sequence[tuple[int, int]], num_frames: int) -> list[torch.Tensor]:
    """Blending weights per window (1-D over its frames): linear ramps across the frames it shares with its
    neighbours, normalised so the weights of every frame sum to 1 over the windows that cover it."""
    raw = []
    for k, (s, e) in enumerate(windows):
        w = torch.ones(e - s)
        if k > 0:
            shared = max(0, windows[k - 1][1] - s)
            w[:shared] = torch.arange(1, shared + 1) / (shared + 1)
        if k + 1 < len(windows):
            shared = max(0, e - windows[k + 1][0])
            w[e - s - shared:] = torch.minimum(w[e - s - shared:], torch.arange(shared, 0, -1) / (shared + 1))
        raw.append(w)
    total = torch.zeros(num_frames)
    for (s, e), w in zip(windows, raw):
        total[s:e] += w
    return [w / total[s:e] for (s, e), w in zip(windows, raw)]


def _image_tensor(images: np.ndarray, device, dtype) -> torch.Tensor:
    """(..., H, W, 3) uint8 → (..., 3, H, W) float in [-1, 1], the range of every image the models read
    (references, IEG video, reference guidance — as the trainer's ``collate`` makes them)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32) / 127.5 - 1
    return x.movedim(-1, -3).to(dtype)


class MixPipeline(DiffusionPipeline):
    r"""
    Multi-character, pose-driven video generation with identity-embedded guidance.

    Args:
        vae ([`AutoencoderKL`]): frames ↔ latents (``vae.config.scaling_factor`` scales the latents).
        unet ([`UNet2DConditionModel`]): the denoising UNet (reference attention on its attn1 layers).
        reference_net ([`UNet2DConditionModel`]): encodes the reference sheet once per generation.
        pose_guider ([`PoseGuider`]): IEG video → features added after the UNet's ``conv_in``.
        context_encoder ([`ContextEncoder`]): per-slot tokens carrying the slot colour (CCE interface).
        scheduler: DDIM / DPM-Solver++ / Euler on the model's noise schedule.
        motion_adapter ([`MotionAdapter`], optional): temporal layers (see ``pipelines.models.temporal``).
        reference_guider ([`PoseGuider`], optional): slot-tinted reference masks → ReferenceNet (End2End).
        motion_model (optional): text-to-motion model for ``{"text": …}`` motions (see ``scene_inputs``).
        plain_skeleton (`bool`): draw OpenPose-coloured skeletons (the plain-skeleton ablation).
        masked_reference_attention (`bool`): End2End-M — each slot's region reads only that slot's reference.
        prior_strength (`float`, optional): this model's default SDEdit start (see ``__call__``), measured for
            it and saved with it (``python -m pipelines.train export --prior_strength S``); None: the
            pipeline's ``DEFAULT_PRIOR_STRENGTH`` for a model that reads the appearance prior, 1 otherwise.
    """

    model_cpu_offload_seq = "context_encoder->reference_net->unet->vae"
    _optional_components = ["motion_adapter", "reference_guider", "motion_model"]
    _callback_tensor_inputs = ["latents", "noise_pred", "context"]

    def __init__(self, vae: AutoencoderKL, unet: UNet2DConditionModel, reference_net: UNet2DConditionModel,
                 pose_guider: PoseGuider, context_encoder: ContextEncoder, scheduler: DDIMScheduler,
                 motion_adapter: MotionAdapter | None = None, reference_guider: PoseGuider | None = None,
                 motion_model: Any = None, plain_skeleton: bool = False, masked_reference_attention: bool = False,
                 prior_strength: float | None = None):
        super().__init__()
        check_prior_strength(prior_strength, "prior_strength (the model's default, model_index.json)")
        if masked_reference_attention and reference_guider is None:
            raise ValueError("masked_reference_attention: End2End-M builds on End2End; register a reference_guider "
                             "(build_components(mode='end2end-m') makes one)")
        self.register_modules(vae=vae, unet=unet, reference_net=reference_net, pose_guider=pose_guider,
                              context_encoder=context_encoder, scheduler=scheduler, motion_adapter=motion_adapter,
                              reference_guider=reference_guider, motion_model=motion_model)
        self.register_to_config(plain_skeleton=bool(plain_skeleton),
                                masked_reference_attention=bool(masked_reference_attention),
                                prior_strength=None if prior_strength is None else float(prior_strength))
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        # pixels per token at the UNet's coarsest level: sizes must be multiples of it
        self.size_multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        self._denoiser: MixDenoiser | None = None
        self._denoiser_parts: tuple = ()
        self._interrupt = False
        self._guidance_scale = 1.0
        self._num_timesteps = 0

    # ---- models ---------------------------------------------------------------------------------------
    @property
    def denoiser(self) -> MixDenoiser:
        """The UNets wired together (rebuilt when a component is swapped)."""
        parts = (self.unet, self.reference_net, self.pose_guider, self.motion_adapter, self.reference_guider)
        if self._denoiser is None or any(a is not b for a, b in zip(parts, self._denoiser_parts)):
            self._denoiser = MixDenoiser(*parts)
            self._denoiser_parts = parts
        return self._denoiser

    @property
    def mode(self) -> str:
        """Guidance mode (``pipelines.models.configs.MODES``) of this model."""
        if self.config.plain_skeleton:
            return "plain"
        if self.reference_guider is None:
            return "ieg"
        return "end2end-m" if self.config.masked_reference_attention else "end2end"

    @property
    def default_prior_strength(self) -> float:
        """The SDEdit start ``__call__`` uses when given none: the model's own (``config.prior_strength``), else
        ``DEFAULT_PRIOR_STRENGTH`` for a model that reads the appearance prior and 1 (pure noise) otherwise."""
        own = self.config.get("prior_strength")
        if own is not None:
            return float(own)
        return DEFAULT_PRIOR_STRENGTH if self.denoiser.reads_prior else 1.0

    def set_scheduler(self, name: str) -> None:
        """Swap the sampler ("ddim", "dpm++", "euler") keeping the noise schedule."""
        self.scheduler = make_scheduler(name, self.scheduler.config)

    # ---- encoders -------------------------------------------------------------------------------------
    def encode_context(self, reference: torch.Tensor, masks: torch.Tensor, slot_tokens: torch.Tensor | None = None,
                       word_tokens: torch.Tensor | None = None,
                       cce_tokens: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """(1, S·T + W, D) context from the reference (1, 3, H, W) in [-1, 1] and its slot masks (1, S, H, W):
        each slot's cut-out through the context encoder (or the given CCE ``slot_tokens`` (1, S, T, D)) plus
        its palette colour, then ``word_tokens`` (1, W, D). ``cce_tokens`` (one (T, D) or None per slot)
        replace the image-derived tokens of the slots that have them (library characters' learned tokens)."""
        enc = self.context_encoder
        slots = torch.arange(masks.shape[1], device=masks.device)[None]
        images = None if slot_tokens is not None else slot_images(reference, masks, enc.config.image_size)
        if slot_tokens is None and cce_tokens is not None and any(t is not None for t in cce_tokens):
            slot_tokens = enc.encode_slot_images(images).clone()
            for s, t in enumerate(cce_tokens):
                if t is not None:
                    slot_tokens[0, s] = t.to(slot_tokens)
            images = None
        return enc(slots, slot_images=images, slot_tokens=slot_tokens, word_tokens=word_tokens)

    def usable_cce_tokens(self, embeddings, names: Sequence[str]) -> tuple[list[torch.Tensor | None], list[str]]:
        """Per slot, the learned identity tokens of a ``CharacterEmbedding`` when they were learned for this
        generator's context encoder, else None (with a note saying why they are not used)."""
        tokens, notes = [], []
        for emb, name in zip(embeddings, names):
            if emb is None:
                tokens.append(None)
            elif emb.usable_with(self.context_encoder):
                tokens.append(emb.identity)
            else:
                tokens.append(None)
                notes.append(f"{name}: its CCE tokens were learned for another generator; using its reference image "
                             "(re-learn them: python -m pipelines.train cce, then export)")
        return tokens, notes

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) in [-1, 1] → (1, C, H / f, W / f) scaled latents (the posterior mean: deterministic)."""
        return self.vae.encode(image.to(self.vae.dtype)).latent_dist.mode() * self.vae.config.scaling_factor

    def decode_latents(self, latents: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """(1, C, F, h, w) → (F, 3, H, W) in [0, 1], ``chunk`` frames at a time to bound memory."""
        z = latents[0].transpose(0, 1) / self.vae.config.scaling_factor
        frames = [self.vae.decode(z[i:i + chunk].to(self.vae.dtype)).sample for i in range(0, z.shape[0], chunk)]
        return (torch.cat(frames).float() / 2 + 0.5).clamp(0, 1)

    # ---- inputs -----------------------------------------------------------------------------------------
    def check_inputs(self, scene, reference_image, reference_masks, characters, keypoints, assignment, width,
                     height, num_frames, num_inference_steps, guidance_scale, scheduler, window_size,
                     window_overlap, output_type, callback_on_step_end_tensor_inputs):
        if scene is not None:
            if not isinstance(scene, Scene):
                raise ValueError(f"scene: expected a pipelines.scene.Scene, got {type(scene).__name__}; "
                                 "load one with Scene.load(path)")
            given = [n for n, v in (("reference_image", reference_image), ("reference_masks", reference_masks),
                                    ("characters", characters), ("keypoints", keypoints),
                                    ("assignment", assignment), ("width", width), ("height", height),
                                    ("num_frames", num_frames)) if v is not None]
            if given:
                raise ValueError(f"{given[0]}: the scene already says this; pass either a scene or explicit "
                                 "arguments (only sampler settings and the generator override a scene)")
            for name in ("width", "height"):
                if getattr(scene, name) % self.size_multiple:
                    raise ValueError(f"{name}: the scene's {getattr(scene, name)} is not a multiple of "
                                     f"{self.size_multiple}, which this model needs")
        else:
            self._check_explicit(reference_image, reference_masks, characters, keypoints, assignment, width,
                                 height, num_frames)
        if num_inference_steps is not None and (not isinstance(num_inference_steps, int) or num_inference_steps < 1):
            raise ValueError(f"num_inference_steps: {num_inference_steps!r} must be a positive integer")
        if guidance_scale is not None and not (isinstance(guidance_scale, (int, float)) and guidance_scale >= 0):
            raise ValueError(f"guidance_scale: {guidance_scale!r} must be a number ≥ 0 (≤ 1 turns guidance off)")
        if scheduler is not None and scheduler not in SCHEDULER_CLASSES:
            raise ValueError(f"scheduler: unknown scheduler {scheduler!r}; use one of {', '.join(SCHEDULER_CLASSES)}")
        max_len = self.motion_adapter.config.motion_max_seq_length if self.motion_adapter is not None else None
        if not isinstance(window_size, int) or window_size < 1 or (max_len and window_size > max_len):
            raise ValueError(f"window_size: {window_size!r} must be an integer in 1..{max_len or 'any'} "
                             "(the temporal layers' longest sequence)")
        if not isinstance(window_overlap, int) or not 0 <= window_overlap < window_size:
            raise ValueError(f"window_overlap: {window_overlap!r} must be an integer in 0..{window_size - 1}")
        if output_type not in ("np", "pt", "latent"):
            raise ValueError(f"output_type: {output_type!r} is not one of 'np', 'pt', 'latent'")
        bad = [k for k in callback_on_step_end_tensor_inputs or [] if k not in self._callback_tensor_inputs]
        if bad:
            raise ValueError(f"callback_on_step_end_tensor_inputs: {bad} are not available; choose from "
                             f"{self._callback_tensor_inputs}")

    def _check_explicit(self, reference_image, reference_masks, characters, keypoints, assignment, width, height,
                        num_frames):
        if characters is None and reference_image is None:
            raise ValueError("characters: no reference given; pass a scene, characters=[(image, mask), …], or "
                             "reference_image with reference_masks")
        if characters is not None and (reference_image is not None or reference_masks is not None):
            raise ValueError("characters: give either characters or reference_image + reference_masks, not both")
        if characters is not None:
            if len(characters) == 0:
                raise ValueError("characters: zero characters; give at least one (image, mask) pair")
            for i, c in enumerate(characters):
                if not isinstance(c, (tuple, list)) or len(c) != 2:
                    raise ValueError(f"characters[{i}]: expected an (image, mask) pair")
                check_cutout(c[0], c[1], f"characters[{i}]")
            n_slots = len(characters)
        else:
            if reference_masks is None:
                raise ValueError("reference_masks: missing; give one (H, W) mask per character for reference_image")
            img, masks = np.asarray(reference_image), np.asarray(reference_masks)
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"reference_image: must be (height, width, 3) uint8, got {img.shape} {img.dtype}")
            if masks.ndim != 3:
                raise ValueError(f"reference_masks: expected (characters, height, width), got {masks.shape}")
            if masks.shape[0] == 0:
                raise ValueError("reference_masks: zero characters; give one mask per character")
            if masks.shape[1:] != img.shape[:2]:
                raise ValueError(f"reference_masks: masks are {masks.shape[2]}×{masks.shape[1]} but reference_image "
                                 f"is {img.shape[1]}×{img.shape[0]}; give masks of the image's size")
            empty = [i for i, m in enumerate(masks) if not m.any()]
            if empty:
                raise ValueError(f"reference_masks: mask(s) {empty} are empty; every character needs pixels")
            m = self.size_multiple
            if img.shape[0] % m or img.shape[1] % m:
                raise ValueError(f"reference_image: {img.shape[1]}×{img.shape[0]} must have sides that are multiples "
                                 f"of {m}; resize it, or pass characters=[(image, mask), …] to build a sheet")
            n_slots = masks.shape[0]
        if keypoints is None:
            raise ValueError("keypoints: missing; give the motion as (frames, tracks, 18, 3) OpenPose-18 keypoints")
        kp = check_keypoints(keypoints)
        if n_slots > kp.shape[1]:
            raise ValueError(f"characters: {n_slots} characters but keypoints have only {kp.shape[1]} tracks; "
                             "remove characters or give a motion with more tracks")
        if assignment is not None:
            problems = check_assignment(list(assignment), n_slots, kp.shape[1])
            if problems:
                raise ValueError("; ".join(problems))
        if num_frames is not None and num_frames != kp.shape[0]:
            raise ValueError(f"num_frames: {num_frames} does not match keypoints ({kp.shape[0]} frames); "
                             "leave num_frames out or give keypoints for every frame")
        for name, v in (("width", width), ("height", height)):
            if v is not None and (not isinstance(v, int) or v < self.size_multiple or v % self.size_multiple):
                raise ValueError(f"{name}: {v!r} must be a positive multiple of {self.size_multiple}")

    def prepare_latents(self, num_frames: int, height: int, width: int, dtype, device, generator,
                        latents: torch.Tensor | None = None, init_noise_sigma: float = 1.0) -> torch.Tensor:
        shape = (1, self.unet.config.in_channels, num_frames, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ValueError(f"latents: expected shape {shape} (1, channels, frames, h, w), got {tuple(latents.shape)}")
            return latents.to(device=device, dtype=dtype)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype) * init_noise_sigma

    # ---- state -----------------------------------------------------------------------------------------
    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # ---- the denoising step ------------------------------------------------------------------------------
    def predict_noise(self, latents, t, context, reference, pose, regions, ref_regions, windows, weights):
        """Model output for the whole clip: every window run (with CFG: unconditional = no reference and
        null context, pose kept) and blended with ``weights``."""
        den = self.denoiser
        cfg = self.do_classifier_free_guidance
        out = torch.zeros_like(latents)
        null = self.context_encoder.null_context(context)
        for (s, e), w in zip(windows, weights):
            x, p = latents[:, :, s:e], pose[:, s:e]
            r = regions[:, s:e] if regions is not None else None
            if cfg:
                x, p = torch.cat([x, x]), torch.cat([p, p])
                ctx, ref_index = torch.cat([null, context]), torch.tensor([-1, 0])
                r = torch.cat([r, r]) if r is not None else None
            else:
                ctx, ref_index = context, torch.tensor([0])
            pred = den(x, t, ctx, reference, p, ref_index=ref_index, regions=r, ref_regions=ref_regions).sample
            if cfg:
                uncond, cond = pred.chunk(2)
                pred = uncond + self.guidance_scale * (cond - uncond)
            out[:, :, s:e] += pred * w.to(pred)[None, None, :, None, None]
        return out

    @torch.no_grad()
    def __call__(
        self,
        scene: Scene | None = None,
        *,
        reference_image: np.ndarray | None = None,
        reference_masks: np.ndarray | None = None,
        characters: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
        background: Any = None,
        keypoints: np.ndarray | None = None,
        assignment: Sequence[int] | None = None,
        prompt: str = "",
        width: int | None = None,
        height: int | None = None,
        num_frames: int | None = None,
        fps: float = 8.0,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        scheduler: str | None = None,
        generator: torch.Generator | None = None,
        latents: torch.Tensor | None = None,
        prior_strength: float | None = None,
        slot_tokens: torch.Tensor | None = None,
        word_tokens: torch.Tensor | None = None,
        window_size: int = 16,
        window_overlap: int = 4,
        library: Library | None = None,
        use_cce: bool = True,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> MixPipelineOutput | tuple:
        r"""
        Generate a clip from a ``Scene`` or from explicit arguments.

        Args:
            scene: a validated ``Scene``; its characters, motion, assignment, background, size, frames, fps,
                sampler and seed are used (``num_inference_steps``, ``guidance_scale``, ``scheduler`` and
                ``generator`` override the sampler and seed).
            reference_image / reference_masks: a reference frame (H, W, 3) uint8 and per-slot masks (S, H, W)
                — e.g. a natural multi-character frame; sides must be multiples of ``size_multiple``.
            characters: or per-slot cut-outs [(image, mask), …], laid out on a sheet over ``background``
                (an image, a colour or None for neutral grey).
            keypoints: (F, T, 18, 3) OpenPose-18 in pixels of the ``width`` × ``height`` output.
            prior_strength: start denoising from the appearance prior noised to this share of the schedule
                (SDEdit) instead of pure noise: 1 = pure noise, lower keeps more of the prior's colours and
                layout. Default ``default_prior_strength``: the model's own, else ``DEFAULT_PRIOR_STRENGTH``
                for a model that reads the prior, 1 otherwise.
                Ignored when ``latents`` are given.
            assignment: slot i performs track ``assignment[i]`` (default slot i ↦ track i).
            prompt: kept for the CCE text encoder; this model reads identities from the slots, not words.
            num_frames: must equal the keypoints' frame count when given.
            slot_tokens: (1, S, T, D) learned CCE tokens replacing the image-derived slot tokens.
            use_cce: with a scene, library characters that have learned CCE tokens (``cce.safetensors``, learned
                for this generator) read them instead of their image-derived tokens.
            word_tokens: (1, W, D) extra context tokens.
            window_size / window_overlap: sliding temporal windows for clips longer than one window.
            output_type: "np" (uint8 frames), "pt" (float frames) or "latent".
            callback_on_step_end: called as ``fn(pipe, step, timestep, tensors)`` after every step; may
                return replacements for ``latents``; set ``pipe._interrupt = True`` to stop early.

        Examples:
            see ``EXAMPLE_DOC_STRING``.

        Returns:
            ``MixPipelineOutput`` (or, with ``return_dict=False``, the tuple (frames, guidance_frames,
            reference_sheet, reference_guidance)).
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs

        # 1. Check inputs
        self.check_inputs(scene, reference_image, reference_masks, characters, keypoints, assignment, width,
                          height, num_frames, num_inference_steps, guidance_scale, scheduler, window_size,
                          window_overlap, output_type, callback_on_step_end_tensor_inputs)
        device = self._execution_device
        dtype = self.unet.dtype

        # 2. Resolve the scene (or the explicit arguments) into a reference sheet, poses and an assignment
        notes: list[str] = []
        cce_tokens = None
        if scene is not None:
            motion_generator = generator if generator is not None else torch.Generator().manual_seed(int(scene.seed))
            inp = resolve_scene(scene, library, self.motion_model, motion_generator)
            sheet = compose_sheet(inp.cutouts, inp.background, (inp.width, inp.height))
            kp, assignment, width, height = inp.keypoints, inp.assignment, inp.width, inp.height
            fps, prompt, notes = inp.fps, inp.prompt, inp.warnings
            num_inference_steps = num_inference_steps or inp.sampler["steps"]
            guidance_scale = inp.sampler["guidance_scale"] if guidance_scale is None else guidance_scale
            scheduler = scheduler or inp.sampler["scheduler"]
            generator = generator if generator is not None else torch.Generator().manual_seed(inp.seed)
            if use_cce and slot_tokens is None:
                cce_tokens, cce_notes = self.usable_cce_tokens(inp.embeddings, inp.names)
                notes = notes + cce_notes
        else:
            width, height = width or 128, height or 128
            sheet = (compose_sheet(characters, background, (width, height)) if characters is not None
                     else sheet_from_frame(reference_image, reference_masks))
            kp = check_keypoints(keypoints)
            assignment = list(range(sheet.n_slots)) if assignment is None else [int(a) for a in assignment]
            num_inference_steps = num_inference_steps or 20
            guidance_scale = 2.5 if guidance_scale is None else guidance_scale
        self._guidance_scale = float(guidance_scale)
        self._interrupt = False
        num_frames = kp.shape[0]
        if prompt and getattr(self, "text_encoder", None) is None:
            logger.info("prompt %r is kept for CCE; this model has no text encoder and reads identities from the "
                        "slots", prompt)

        # 3. Guidance: the IEG video, the tinted reference, End2End-M regions
        ieg = target_guidance(kp, width, height, assignment, plain=self.config.plain_skeleton)
        ref_guidance = reference_guidance(sheet.masks)
        regions = ref_regions = None
        if self.config.masked_reference_attention:
            regions = torch.from_numpy(slot_regions(kp, width, height, assignment))[None].to(device)
            ref_regions = torch.from_numpy(sheet.masks)[None].to(device)

        # 4. Encode the context and the reference — once per generation
        ref_image = _image_tensor(sheet.image, device, dtype)[None]
        ref_masks = torch.from_numpy(sheet.masks).to(device)[None]
        context = self.encode_context(ref_image, ref_masks, slot_tokens, word_tokens, cce_tokens).to(dtype)
        ref_latents = self.encode_image(ref_image).to(dtype)
        ref_guid = _image_tensor(ref_guidance, device, dtype)[None] if self.reference_guider is not None else None
        reference = self.denoiser.encode_reference(ref_latents, context, ref_guid)

        # 5. Encode the pose — once per generation
        if prior_strength is None:
            prior_strength = self.default_prior_strength
        check_prior_strength(prior_strength)
        from_prior = prior_strength < 1 and latents is None          # SDEdit start (step 6)
        prior = None
        if self.denoiser.reads_prior or from_prior:
            prior = appearance_prior_video(sheet.image, sheet.masks, kp, width, height, assignment,
                                           plain=self.config.plain_skeleton)
        pose = self.denoiser.encode_pose(_image_tensor(ieg, device, dtype)[None],
                                         _image_tensor(prior, device, dtype)[None] if self.denoiser.reads_prior else None)

        # 6. Prepare timesteps and latents
        sched = self.scheduler if scheduler is None else make_scheduler(scheduler, self.scheduler.config)
        sched.set_timesteps(num_inference_steps, device=device)
        timesteps = sched.timesteps
        latents = self.prepare_latents(num_frames, height, width, dtype, device, generator, latents,
                                       sched.init_noise_sigma)
        if from_prior:      # SDEdit: the prior's latents noised to the first kept timestep
            skip = min(num_inference_steps - 1, int(round(num_inference_steps * (1 - prior_strength))))
            timesteps = timesteps[skip * sched.order:]
            if hasattr(sched, "set_begin_index"):
                sched.set_begin_index(skip * sched.order)
            frames_in = _image_tensor(prior[..., :3], device, dtype)
            init = torch.cat([self.encode_image(frames_in[i:i + 8]) for i in range(0, num_frames, 8)])
            latents = sched.add_noise(init.transpose(0, 1)[None].to(dtype), latents / sched.init_noise_sigma,
                                      timesteps[:1])
        self._num_timesteps = len(timesteps)
        windows = temporal_windows(num_frames, window_size, window_overlap)
        weights = window_weights(windows, num_frames)

        # 7. Denoising loop (sliding windows blended every step)
        with self.progress_bar(total=len(timesteps)) as progress_bar, self.denoiser.cached_reference():
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                latent_in = sched.scale_model_input(latents, t)
                noise_pred = self.predict_noise(latent_in, t, context, reference, pose, regions, ref_regions,
                                                windows, weights)
                latents = sched.step(noise_pred, t, latents, return_dict=False)[0]

                if callback_on_step_end is not None:
                    available = {"latents": latents, "noise_pred": noise_pred, "context": context}
                    tensors = {k: available[k] for k in callback_on_step_end_tensor_inputs}
                    returned = callback_on_step_end(self, i, t, tensors) or {}
                    latents = returned.pop("latents", latents)
                if not bool(torch.isfinite(latents).all()):
                    raise FloatingPointError(
                        f"latents became NaN/inf at denoising step {i + 1} of {len(timesteps)} (timestep {int(t)}); "
                        "the model weights may be corrupt or diverged — reload or re-train the model, or try "
                        "scheduler='ddim', a lower guidance_scale, or float32")
                progress_bar.update()

        # 8. Decode
        if output_type == "latent":
            frames = latents
        else:
            frames = self.decode_latents(latents)
            if output_type == "np":
                frames = (frames.permute(0, 2, 3, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
        self.maybe_free_model_hooks()

        if not return_dict:
            return frames, ieg, sheet.image, ref_guidance
        return MixPipelineOutput(frames=frames, guidance_frames=ieg, reference_sheet=sheet.image,
                                 reference_guidance=ref_guidance, reference_masks=sheet.masks,
                                 assignment=list(assignment), fps=float(fps), warnings=list(notes),
                                 appearance_prior=prior)


__all__ = ["MixPipeline", "make_scheduler", "temporal_windows", "window_weights", "SCHEDULER_CLASSES"]
