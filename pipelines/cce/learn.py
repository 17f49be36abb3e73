"""New characters for CCE: an embedding at once from 1–5 images with masks, and a short fit that improves it.

    emb = embed_character(images, masks, name="Ada", style="live-action")      # instant: ~0.1 s
    path = learn_character(images, masks, "Ada", "live-action", progress=lambda f, msg: print(f, msg))
    # → <library>/ada/cce.safetensors (+ character.json, reference.png, mask.png): a library entry

* **Instant** (``embed_character``): identity tokens = the generator's image encoder
  (``ContextEncoder.encode_slot_images``) on each masked cut-out, averaged; behaviour = the character
  encoder's estimate from those tokens (``assets/models/cce``), or the motion model's encoder when a
  keypoint track of the character is given, else the motion model's prior.
* **Fit** (``fit_character``, ≤ 2 minutes on this CPU for the tiny backbone): the identity tokens are
  optimised through the frozen generator — the diffusion loss on the character's own images cut out and
  pasted at random sizes and places on the world's sets (the generator drives them with a standing
  skeleton fitted to the cut-out, or the given keypoints), with another of its images as the reference
  sheet — plus the contrastive term that keeps the tokens nearest to the character's image embeddings
  among the library's characters. Progress goes to ``progress(fraction, message)`` and a tqdm bar.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..library import check_style
from .embedding import FILENAME, CharacterEmbedding, identity_vector, provenance

Progress = Callable[[float, str], None]
MAX_IMAGES = 5


def check_images(images, masks) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validate 1–5 (image (H, W, 3) uint8, mask (H, W)) pairs; masks may be bool or uint8 (> 127 inside)."""
    from ..mix.sheet import check_cutout
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images, masks = [images], [masks]
    images, masks = list(images), list(masks)
    if not 1 <= len(images) <= MAX_IMAGES:
        raise ValueError(f"images: give 1 to {MAX_IMAGES} images of the character, got {len(images)}")
    if len(masks) != len(images):
        raise ValueError(f"masks: {len(masks)} masks for {len(images)} images; give one mask per image")
    return [check_cutout(img, m, f"images[{i}]") for i, (img, m) in enumerate(zip(images, masks))]


def cutout_tensor(pairs: Sequence[tuple[np.ndarray, np.ndarray]], size: int) -> torch.Tensor:
    """(K, 3, size, size) masked cut-outs in [-1, 1], as the context encoder sees slots."""
    from ..models.context import slot_images
    out = []
    for img, mask in pairs:
        x = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)[None].float() / 127.5 - 1
        out.append(slot_images(x, torch.from_numpy(mask)[None, None].float(), size)[0, 0])
    return torch.stack(out)


def image_tokens(context_encoder, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> torch.Tensor:
    """Identity tokens of each image (K, T, D) from the generator's image encoder."""
    cut = cutout_tensor(pairs, context_encoder.config.image_size).to(context_encoder.device, context_encoder.dtype)
    with torch.no_grad():
        return context_encoder.encode_slot_images(cut[None])[0].float()


def standing_keypoints(mask: np.ndarray, style: str = "cartoon") -> np.ndarray:
    """(18, 3) OpenPose keypoints of a standing figure filling ``mask``'s box (head at its top, feet at its
    bottom): how the fit poses a character it has no keypoints for (library portraits stand)."""
    from ..world.body import forward_kinematics, rest_pose
    from ..world.characters import CharacterSpec
    ys, xs = np.nonzero(mask)
    y0, y1 = float(ys.min()), float(ys.max() + 1)
    p = rest_pose(1)
    p["x"][:] = float(np.median(xs))
    p["ground"][:] = y1
    p["scale"][:] = y1 - y0
    p["facing"][:] = 0.18
    p["r_abd"][:] = p["l_abd"][:] = 0.25
    return forward_kinematics(CharacterSpec("standing", "standing", style), p)["keypoints"][0]


def default_pipeline():
    from ..mix.loading import load_pipeline
    return load_pipeline()


def embed_character(images, masks, *, name: str = "", style: str = "cartoon", pipe=None, encoder=None,
                    motion_model=None, keypoints: np.ndarray | None = None, fps: float = 8.0) -> CharacterEmbedding:
    """The instant embedding of a character from 1–5 images with masks (see the module docstring).
    ``keypoints`` (F, 18, 3) of the character moving (pixels of a ``keypoints``-canvas as tall as its
    first image) give its behaviour through the motion model's encoder."""
    from ..models.cce import load_character_encoder, load_motion_model
    pairs = check_images(images, masks)
    style = check_style(style)
    pipe = pipe if pipe is not None else default_pipeline()
    identity = image_tokens(pipe.context_encoder, pairs).mean(0)
    motion_model = motion_model if motion_model is not None else load_motion_model()
    sources = {"images": len(pairs)}
    if keypoints is not None:
        if motion_model is None:
            raise ValueError("keypoints: no motion model to read them (assets/models/motion); train one with "
                             "`python -m pipelines.train motion`")
        from ..models.motion import encoder_inputs
        from ..pose.openpose import check_keypoints
        kp = check_keypoints(np.asarray(keypoints)[:, None], "keypoints")[:, 0]
        frames, spectra = encoder_inputs(kp, fps, float(pairs[0][0].shape[0]))
        with torch.no_grad():
            behaviour = motion_model.encode_behaviour(torch.from_numpy(frames)[None], torch.from_numpy(spectra)[None])[0]
        sources["motion_frames"] = int(kp.shape[0])
    else:
        if encoder is None:
            encoder = load_character_encoder()
            # the shipped encoder belongs to the shipped generator: with another one (other token shape) it
            # cannot read these tokens, so the character gets the prior behaviour instead of an error
            if encoder is not None and not encoder.fits(identity):
                sources["encoder_skipped"] = "the saved character encoder was trained for another generator"
                encoder = None
        if encoder is not None:
            with torch.no_grad():
                behaviour = encoder(identity[None])[0]
            sources["behaviour"] = "character encoder (from the images)"
        elif motion_model is not None:
            behaviour = motion_model.behaviour_prior.detach()
            sources["behaviour"] = "motion model prior"
        else:
            behaviour = torch.zeros(32)
            sources["behaviour"] = "none (no motion model)"
    return CharacterEmbedding(identity, behaviour, name, style,
                              provenance=provenance(sources, generator=pipe.context_encoder,
                                                    motion_model=motion_model, method="instant"))


# ---------------------------------------------------------------------------------------------------------
# the fit
# ---------------------------------------------------------------------------------------------------------
def training_sample(pairs, rng: np.random.Generator, size: int, name: str = "", style: str = "cartoon",
                    keypoints: Sequence[np.ndarray | None] | None = None) -> dict:
    """One generator training sample (``WorldSampler``'s layout) of a character known only from images:
    image i cut out and pasted onto a random world set at a random size and place (the target, posed by
    its keypoints or a fitted standing skeleton), image j (≠ i when there are several) on a reference sheet."""
    from ..mix.guidance import appearance_prior_video
    from ..mix.sheet import compose_sheet, crop_to_mask
    from ..pose.ieg import render_ieg, tint_masks
    from ..train.cca import Cutout, composite, place
    from ..train.data import MAX_SLOTS, _pad
    from ..world.shows import SHOWS, VARIANTS, background
    K = len(pairs)
    i = int(rng.integers(K))
    j = int(rng.choice([k for k in range(K) if k != i])) if K > 1 else i
    shows = list(SHOWS)
    bg = np.ascontiguousarray(background(shows[int(rng.integers(len(shows)))], int(rng.integers(VARIANTS)), size, size))
    img, mask = pairs[i]
    ys, xs = np.nonzero(mask)
    y0, x0 = int(ys.min()), int(xs.min())
    crop, cmask = crop_to_mask(img, mask)
    kp = keypoints[i] if keypoints is not None and keypoints[i] is not None else standing_keypoints(mask, style)
    kp = kp.copy()
    kp[:, 0] -= x0
    kp[:, 1] -= y0
    h = float(rng.uniform(0.45, 0.85)) * size
    scale = h / crop.shape[0]
    if crop.shape[1] * scale > 0.9 * size:
        scale = 0.9 * size / crop.shape[1]
    w = crop.shape[1] * scale
    cx = float(rng.uniform(w / 2, size - w / 2))
    feet = float(rng.uniform(0.82, 0.97)) * size
    placed = place(Cutout(crop, cmask, kp[None], name, style), (size, size), scale=scale,
                   offset=(cx - w / 2, feet - crop.shape[0] * scale))
    comp = composite([placed], bg)
    bg2 = np.ascontiguousarray(background(shows[int(rng.integers(len(shows)))], int(rng.integers(VARIANTS)), size, size))
    sheet = compose_sheet([pairs[j]], bg2, (size, size))
    pose = render_ieg(comp.keypoints, size, size, slots=[0])
    prior = appearance_prior_video(sheet.image, sheet.masks, comp.keypoints, size, size, [0])
    return {
        "reference": sheet.image, "reference_masks": _pad(sheet.masks, MAX_SLOTS, axis=0),
        "reference_pose": tint_masks(sheet.masks), "target": comp.frames,
        "target_masks": _pad(comp.masks, MAX_SLOTS, axis=1), "pose": pose, "prior": prior,
        "keypoints": comp.keypoints,
        "assignment": np.array([0] + [-1] * (MAX_SLOTS - 1)), "slots": np.arange(MAX_SLOTS) < 1, "n": 1,
        "swap": False, "sheet": True, "caption": f"[character: {name or 'it'}] stands.", "names": [name],
    }


def library_vectors(library=None, context_encoder=None, exclude: str = "") -> torch.Tensor:
    """(C, D) identity vectors of the library's characters — their learned tokens when usable with this
    generator, else their reference images' tokens: the other characters a new one must stay apart from."""
    from ..library import Library
    library = library if library is not None else Library()
    out = []
    for c in library:
        if c.name.lower() == exclude.lower():
            continue
        emb = CharacterEmbedding.load(c.cce_path) if c.cce_path.is_file() else None
        if emb is not None and context_encoder is not None and emb.usable_with(context_encoder):
            out.append(identity_vector(emb.identity))
        elif context_encoder is not None:
            out.append(identity_vector(image_tokens(context_encoder, [c.load_reference()])[0]))
    return torch.stack(out) if out else torch.zeros(0, context_encoder.config.context_dim)


def fit_character(embedding: CharacterEmbedding, images, masks, *, pipe=None, library=None, steps: int = 400,
                  seconds: float = 90.0, batch_size: int = 2, learning_rate: float = 5e-3,
                  contrastive_weight: float = 0.1, keypoints=None, seed: int = 0,
                  progress: Progress | None = None) -> tuple[CharacterEmbedding, dict]:
    """Improve ``embedding``'s identity tokens (module docstring) for at most ``steps`` steps or ``seconds``.
    Returns the fitted embedding and a record (steps, seconds, losses)."""
    from tqdm.auto import tqdm

    from ..train.data import collate
    from ..train.objectives import GeneratorObjective, info_nce
    pairs = check_images(images, masks)
    pipe = pipe if pipe is not None else default_pipeline()
    enc = pipe.context_encoder
    if not embedding.usable_with(enc):
        raise ValueError("embedding: its identity tokens were made for another generator; embed the character "
                         "again with this pipeline (embed_character(..., pipe=pipe))")
    if steps < 1 or seconds <= 0:
        raise ValueError(f"steps / seconds: {steps} / {seconds} must be positive")
    size = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    objective = GeneratorObjective(pipe, cfg_dropout=0.0)
    modules = [m for m in pipe.components.values() if isinstance(m, torch.nn.Module)]
    modes = [(m, m.training) for m in modules]
    for m in modules:
        m.eval()
    grads = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in grads:
        p.requires_grad_(False)
    tokens = torch.nn.Parameter(embedding.identity.clone().to(enc.device))
    others = library_vectors(library, enc, exclude=embedding.name).to(enc.device)
    own = identity_vector(image_tokens(enc, pairs))                                    # (K, D)
    opt = torch.optim.Adam([tokens], lr=learning_rate)
    rng = np.random.default_rng(seed)
    kps = list(keypoints) if keypoints is not None else None
    history = {"diffusion": [], "contrastive": []}
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"fitting {embedding.name or 'character'}", leave=False)
    step = 0
    try:
        while step < steps and time.perf_counter() - start < seconds:
            batch = collate([training_sample(pairs, rng, size, embedding.name, embedding.style, kps)
                             for _ in range(batch_size)])
            batch["seed"] = seed * 1_000_003 + step
            B, S = batch["slots"].shape
            slot_tokens = tokens[None, None].expand(B, S, -1, -1)
            mask = torch.zeros(B, S, dtype=torch.bool)
            mask[:, 0] = True
            out = objective(batch, slot_tokens=slot_tokens, token_mask=mask)
            # the character's views (its images and the pasted targets) must pick its tokens among the library's
            with torch.no_grad():
                from ..models.context import slot_images
                views = enc.encode_slot_images(slot_images(batch["target"][:, 0], batch["target_masks"][:, 0, :1],
                                                           enc.config.image_size))[:, 0]
            queries = torch.cat([own, identity_vector(views)])
            keys = torch.cat([others, identity_vector(tokens)[None]])
            labels = torch.full((len(queries),), len(others), dtype=torch.long)
            con = info_nce(queries, keys, labels)
            loss = out["loss"] + contrastive_weight * con
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history["diffusion"].append(float(out["diffusion"]))
            history["contrastive"].append(float(con.detach()))
            step += 1
            bar.update()
            if progress is not None:
                progress(step / steps, f"fitting {embedding.name or 'the character'}: step {step}/{steps}, "
                                       f"diffusion {history['diffusion'][-1]:.4f}")
    finally:
        bar.close()
        for m, was in modes:
            m.train(was)
        for p, was in grads:
            p.requires_grad_(was)
    elapsed = time.perf_counter() - start
    record = {"steps": step, "seconds": round(elapsed, 2), "batch_size": batch_size, "learning_rate": learning_rate,
              "diffusion_first": float(np.mean(history["diffusion"][:10])) if step else None,
              "diffusion_last": float(np.mean(history["diffusion"][-10:])) if step else None}
    prov = dict(embedding.provenance)
    prov["sources"] = {**prov.get("sources", {}), "fit_steps": step, "fit_views": step * batch_size}
    prov.update(method="instant + fit", fit=record)
    fitted = CharacterEmbedding(tokens.detach().cpu(), embedding.behaviour, embedding.name, embedding.style,
                                embedding.id, embedding.show, prov, embedding.config)
    return fitted, {**record, "history": history}


# ---------------------------------------------------------------------------------------------------------
# the studio's entry point
# ---------------------------------------------------------------------------------------------------------
def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not s:
        raise ValueError(f"name: {name!r} has no letters or digits to name the character's folder")
    return s


def user_library_dir() -> Path:
    from ..paths import user_characters_dir
    return user_characters_dir()


def learn_character(images, masks, name: str, style: str, progress: Progress | None = None, *,
                    library_dir: str | Path | None = None, pipe=None, motion_model=None, encoder=None,
                    seconds: float = 90.0, steps: int = 400, keypoints: np.ndarray | None = None, fps: float = 8.0,
                    seed: int = 0) -> Path:
    """Give a new character CCE tokens: the instant embedding, then the fit (``seconds`` at most), written
    with its first image and mask as a library entry ``<library_dir>/<slug>/`` (default: the user library,
    ``pipelines.paths.user_characters_dir()``). Returns the path of its ``cce.safetensors``.

    ``progress(fraction, message)`` is called after the instant embedding and every fit step."""
    from PIL import Image

    if not isinstance(name, str) or not name.strip() or "[" in name or "]" in name:
        raise ValueError(f"name: {name!r} must be a non-empty name without brackets (it is written as "
                         "[character: Name] in prompts)")
    name = name.strip()
    style = check_style(style)
    pairs = check_images(images, masks)
    folder = Path(library_dir) if library_dir is not None else user_library_dir()
    cid = slug(name)
    entry = folder / cid
    meta_path = entry / "character.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("name", "").lower() != name.lower():
            raise ValueError(f"name: the folder {entry} already holds {old.get('name')!r}; pick another name")
    pipe = pipe if pipe is not None else default_pipeline()
    t0 = time.perf_counter()
    emb = embed_character([p[0] for p in pairs], [p[1] for p in pairs], name=name, style=style, pipe=pipe,
                          encoder=encoder, motion_model=motion_model,
                          keypoints=keypoints if keypoints is not None and np.asarray(keypoints).ndim == 3 else None,
                          fps=fps)
    emb.id = cid
    instant = time.perf_counter() - t0
    if progress is not None:
        progress(0.0, f"{name}: instant embedding from {len(pairs)} image(s) in {instant:.2f} s; fitting…")
    emb, record = fit_character(emb, [p[0] for p in pairs], [p[1] for p in pairs], pipe=pipe, steps=steps,
                                seconds=seconds, seed=seed, progress=progress)
    emb.provenance["instant_seconds"] = round(instant, 3)
    entry.mkdir(parents=True, exist_ok=True)
    img, mask = pairs[0]
    Image.fromarray(img).save(entry / "reference.png")
    Image.fromarray((mask * 255).astype(np.uint8)).save(entry / "mask.png")
    meta_path.write_text(json.dumps({"id": cid, "name": name, "show": "", "style": style, "source": "user",
                                     "images": len(pairs)}, indent=1))
    index = folder / "index.json"
    if index.is_file():
        doc = json.loads(index.read_text())
        if cid not in doc.get("characters", []):
            doc.setdefault("characters", []).append(cid)
            index.write_text(json.dumps(doc, indent=1))
    path = emb.save(entry / FILENAME)
    if progress is not None:
        progress(1.0, f"{name}: learned in {instant + record['seconds']:.1f} s ({record['steps']} fit steps) → {path}")
    return path


__all__ = ["embed_character", "fit_character", "learn_character", "image_tokens", "standing_keypoints",
           "training_sample", "check_images", "cutout_tensor", "library_vectors", "slug", "user_library_dir"]
