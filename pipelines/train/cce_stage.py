"""The cce stage: learned CCE tokens for every character of the library, from several sources at once.

    python -m pipelines.train cce [--init GENERATOR] [--motion_model assets/models/motion] [--library DIR]
    python -m pipelines.train export --run runs/cce --out assets/characters      (+ assets/models/cce)

What trains (``CCETable``): per character its identity tokens (T, D) and behaviour vector (Db), and the
``CharacterEncoder`` (identity tokens → behaviour) that new characters get their first behaviour from. The
generator and the motion model are frozen. Per step, the loss adds up (weights in ``TrainConfig``):

* **captioned clips — diffusion**: world frames whose library characters read their learned tokens as
  slot tokens (the others their image-derived ones), through the frozen generator (textual inversion);
* **masked reference images — contrastive** (``info_nce``): the image encoder's vectors of the library
  characters' cut-outs in those frames pick their own learned tokens among all characters' — aligning
  image-derived and learned embeddings, so a new character's image embedding lands near the right place;
* **motion — the behaviour model**: world motions of the library characters through the frozen motion
  model with their learned behaviour vectors (the others read the motion encoder);
* **appearance → behaviour**: the character encoder regresses the motion encoder's behaviour of every
  character in the frames (named and procedural) from its image tokens.

Identity tokens start from the image encoder on the character's reference image and world portraits
(``--cce_init images``) or at random (``--cce_init random``: the ablation the retrieval test compares);
behaviour vectors from the motion encoder averaged over clips of the character.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..cce.embedding import CharacterEmbedding, identity_vector, provenance
from .config import TrainConfig
from .data import (MotionSampleConfig, MotionSampler, SampleConfig, WorldSampler, collate, collate_motion)
from .objectives import GeneratorObjective, MotionObjective, info_nce


class CCETable(nn.Module):
    """The trainable part of the cce stage: identity (C, T, D) and behaviour (C, Db) per library character,
    the character encoder, and how often each character was seen by each source (provenance)."""

    def __init__(self, ids: list[str], identity: torch.Tensor, behaviour: torch.Tensor, encoder: nn.Module):
        super().__init__()
        self.ids = list(ids)
        self.identity = nn.Parameter(identity.clone().float())
        self.behaviour = nn.Parameter(behaviour.clone().float())
        self.encoder = encoder
        self.register_buffer("seen", torch.zeros(len(ids), 2, dtype=torch.long))      # clip frames, motion tracks

    def index(self, ids_per_row: list[list[str]], width: int) -> torch.Tensor:
        """(B, width) table index of each id (-1 for characters not in the table / padding)."""
        where = {c: i for i, c in enumerate(self.ids)}
        return torch.tensor([[where.get(c, -1) for c in row] + [-1] * (width - len(row)) for row in ids_per_row])


# ---------------------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------------------
def _library(cfg: TrainConfig):
    from ..library import Library
    return Library(cfg.library or None)


def _world_spec(c):
    from ..world.characters import CharacterSpec
    spec = c.meta.get("world_spec")
    return CharacterSpec.from_dict(spec) if spec else None


def initial_identity(context_encoder, library, views: int, seed: int, how: str = "images",
                     portrait_size: int = 256) -> torch.Tensor:
    """(C, T, D): image tokens averaged over each character's reference and ``views`` world portraits
    (``how="images"``), or random tokens with the images' overall scale (``how="random"``)."""
    from ..cce.learn import image_tokens
    from ..world import World
    world = World(seed)
    out = []
    for c in library:
        pairs = [c.load_reference()]
        spec = _world_spec(c)
        if spec is not None:
            pairs += [world.portrait(spec, portrait_size, variant=v % 4, facing=f)
                      for v, f in enumerate(np.linspace(-0.35, 0.35, views))]
        out.append(image_tokens(context_encoder, pairs).mean(0))
    tokens = torch.stack(out)
    if how == "random":
        g = torch.Generator().manual_seed(seed)
        tokens = torch.randn(tokens.shape, generator=g) * tokens.std()
    elif how != "images":
        raise ValueError(f"--cce_init: unknown {how!r}; use images or random")
    return tokens


@torch.no_grad()
def initial_behaviour(motion_model, library, sampler: MotionSampler, clips: int = 8) -> torch.Tensor:
    """(C, Db): the motion encoder averaged over ``clips`` world clips of each character (the prior for
    characters with no world motion)."""
    out = []
    for i, c in enumerate(library):
        spec = _world_spec(c)
        if spec is None:
            out.append(motion_model.behaviour_prior.detach().float())
            continue
        refs = [sampler.reference(spec, 30_000_000 + i * 64 + k) for k in range(clips)]
        frames = torch.from_numpy(np.stack([r[0] for r in refs]))
        spectra = torch.from_numpy(np.stack([r[1] for r in refs]))
        out.append(motion_model.encode_behaviour(frames, spectra).mean(0))
    return torch.stack(out)


def build_cce(cfg: TrainConfig):
    """The frozen generator and motion model, and the ``CCETable`` to train (``StageModels``)."""
    from ..mix.loading import load_pipeline
    from ..models.cce import CharacterEncoder, load_motion_model
    from .trainer import StageModels
    pipe = load_pipeline(cfg.init or None)
    motion = load_motion_model(cfg.motion_model or None)
    if motion is None:
        raise ValueError("--motion_model: no motion model in assets/models/motion; train one first with "
                         "`python -m pipelines.train motion` and export it, or pass its folder")
    library = _library(cfg)
    if len(library) == 0:
        raise ValueError(f"--library: {library.folder} holds no characters")
    enc = pipe.context_encoder
    identity = initial_identity(enc, library, cfg.cce_views, cfg.seed, cfg.cce_init, portrait_size=2 * cfg.size)
    behaviour = initial_behaviour(motion, library, MotionSampler(_motion_config(cfg), seed=cfg.seed + 7))
    torch.manual_seed(cfg.seed)
    encoder = CharacterEncoder(context_dim=enc.config.context_dim, tokens_per_slot=enc.config.tokens_per_slot,
                               behaviour_dim=motion.config.behaviour_dim)
    table = CCETable([c.id for c in library], identity, behaviour, encoder)
    # the stage's frozen motion model is --motion_model, not the one load_pipeline may have attached
    frozen = {k: v for k, v in pipe.components.items() if isinstance(v, nn.Module) and k != "motion_model"}
    parts = StageModels(**frozen, motion_model=motion, cce=table)
    parts.__dict__["pipeline"] = pipe
    parts.__dict__["library"] = library
    return parts


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
def _motion_config(cfg: TrainConfig) -> MotionSampleConfig:
    return MotionSampleConfig(size=cfg.size, max_frames=32, characters=tuple(cfg.characters),
                              named_fraction=cfg.named_fraction)


class CCESampler:
    """A cce sample: a generator sample (``WorldSampler``), a motion sample (``MotionSampler``) and, for each
    character of the generator sample, the motion encoder's inputs of a clip of it (appearance targets)."""

    def __init__(self, cfg: TrainConfig, seed: int):
        self.frames = WorldSampler(SampleConfig(size=cfg.size, clip_frames=cfg.clip_frames, window=1,
                                                characters=tuple(cfg.characters), pcs=cfg.pcs, sheet=cfg.sheet,
                                                named_fraction=cfg.named_fraction, mix=cfg.mix), seed=seed)
        self.motion = MotionSampler(_motion_config(cfg), seed=seed + 1)

    def __getitem__(self, index: int) -> dict:
        frame = self.frames[index]
        refs = [self.motion.reference(spec, 40_000_000 + index * 8 + k) for k, spec in enumerate(frame["specs"])]
        return {"frame": frame, "motion": self.motion[index], "refs": refs}

    @staticmethod
    def collate(samples: list[dict]) -> dict:
        batch = collate([s["frame"] for s in samples])
        batch["motion"] = collate_motion([s["motion"] for s in samples])
        batch["slot_ids"] = [[spec.id for spec in s["frame"]["specs"]] for s in samples]
        S = batch["reference_masks"].shape[1]
        r0 = samples[0]["refs"][0]
        frames = torch.zeros(len(samples), S, *r0[0].shape)
        spectra = torch.zeros(len(samples), S, *r0[1].shape)
        for b, s in enumerate(samples):
            for k, (f, sp) in enumerate(s["refs"]):
                frames[b, k], spectra[b, k] = torch.from_numpy(f), torch.from_numpy(sp)
        batch["ref_frames"], batch["ref_spectra"] = frames, spectra
        return batch


# ---------------------------------------------------------------------------------------------------------
# the objective
# ---------------------------------------------------------------------------------------------------------
class CCEObjective(nn.Module):
    """See the module docstring. ``forward(batch)`` returns the losses."""

    def __init__(self, cfg: TrainConfig, parts):
        super().__init__()
        self.cce = parts.cce
        self.generator = GeneratorObjective(parts.pipeline, cfg_dropout=0.0)
        self.motion = MotionObjective(parts.motion_model, prior_dropout=0.0)
        self.weights = {"diffusion": cfg.diffusion_weight, "contrastive": cfg.contrastive_weight,
                        "motion": cfg.motion_weight, "appearance": cfg.appearance_weight}

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        from ..models.context import slot_images
        table, w = self.cce, self.weights
        enc = self.generator.context_encoder
        S = batch["reference_masks"].shape[1]
        idx = table.index(batch["slot_ids"], S).to(table.identity.device)                    # (B, S)
        known = idx >= 0
        out = self.generator(batch, slot_tokens=table.identity[idx.clamp(min=0)], token_mask=known)
        # contrastive: library characters' cut-outs in the target frame pick their own learned tokens
        with torch.no_grad():
            views = enc.encode_slot_images(slot_images(batch["target"][:, 0], batch["target_masks"][:, 0],
                                                       enc.config.image_size))               # (B, S, T, D)
        contrastive = info_nce(identity_vector(views[known]), identity_vector(table.identity), idx[known]) \
            if known.any() else table.identity.sum() * 0
        # motion: the library characters' tracks read their learned behaviour
        mb = batch["motion"]
        with torch.no_grad():
            b = self.motion.behaviours(mb)
        midx = table.index(mb["ids"], mb["char_mask"].shape[1]).to(b.device)
        b = torch.where((midx >= 0)[..., None], table.behaviour[midx.clamp(min=0)], b)
        motion = self.motion(mb, behaviour=b)
        # appearance → behaviour, for every character in the frames
        slots = batch["slots"]
        with torch.no_grad():
            ref_tokens = enc.encode_slot_images(slot_images(batch["reference"], batch["reference_masks"],
                                                            enc.config.image_size))
            target_b = self.motion.model.encode_behaviour(batch["ref_frames"][slots], batch["ref_spectra"][slots])
        appearance = (table.encoder(ref_tokens[slots]) - target_b).pow(2).mean()
        with torch.no_grad():
            table.seen[:, 0] += torch.bincount(idx[known], minlength=len(table.ids)).to(table.seen)
            table.seen[:, 1] += torch.bincount(midx[midx >= 0], minlength=len(table.ids)).to(table.seen)
        loss = (w["diffusion"] * out["loss"] + w["contrastive"] * contrastive + w["motion"] * motion["loss"]
                + w["appearance"] * appearance)
        return {"loss": loss, "diffusion": out["diffusion"], "contrastive": contrastive.detach(),
                "motion": motion["loss"].detach(), "appearance": appearance.detach()}


# ---------------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------------
def embeddings(cfg: TrainConfig, parts) -> list[CharacterEmbedding]:
    """The table as one ``CharacterEmbedding`` per library character, with provenance."""
    table, pipe = parts.cce, parts.pipeline
    out = []
    for i, c in enumerate(parts.library):
        seen = table.seen[i].tolist()
        sources = {"images": 1 + (cfg.cce_views if _world_spec(c) is not None else 0), "clip_frames": seen[0],
                   "motion_tracks": seen[1]}
        prov = provenance(sources, generator=pipe.context_encoder, motion_model=parts.motion_model,
                          method="python -m pipelines.train cce", init=cfg.cce_init)
        out.append(CharacterEmbedding(table.identity[i].detach(), table.behaviour[i].detach(), c.name, c.style, c.id,
                                      c.show, prov, cfg.to_dict()))
    return out


def finish_cce(cfg: TrainConfig, parts, folder: Path) -> None:
    """``final/characters/<id>/cce.safetensors`` for every character and ``final/character_encoder/``."""
    folder = Path(folder)
    for emb in embeddings(cfg, parts):
        emb.save(folder / "characters" / emb.id / "cce.safetensors")
    parts.cce.encoder.save_pretrained(folder / "character_encoder", safe_serialization=True)
    (folder / "training.json").write_text(json.dumps({"stage": cfg.stage, "config": cfg.to_dict()}, indent=1))


def export_cce(folder: Path, library_dir: Path, encoder_dir: Path) -> list[Path]:
    """Copy a finished cce run's embeddings beside their library entries and its character encoder."""
    import shutil
    written = []
    for src in sorted((folder / "characters").glob("*/cce.safetensors")):
        entry = library_dir / src.parent.name
        if not (entry / "character.json").is_file():
            raise ValueError(f"--out: {library_dir} has no character {src.parent.name!r}; export into the library "
                             "the run was trained on")
        shutil.copyfile(src, entry / "cce.safetensors")
        written.append(entry / "cce.safetensors")
    encoder_dir.mkdir(parents=True, exist_ok=True)
    for f in (folder / "character_encoder").iterdir():
        shutil.copyfile(f, encoder_dir / f.name)
    return written


@torch.no_grad()
def retrieval_now(cfg: TrainConfig, parts) -> dict:
    """Retrieval accuracy of the current tokens (and of the image-derived ones) on held-out world views."""
    from ..cce.evaluate import heldout_views, retrieval, view_vectors
    ids = [c.id for c in parts.library if _world_spec(c) is not None]
    rows = [i for i, c in enumerate(parts.library) if _world_spec(c) is not None]
    views, labels = heldout_views(ids, size=cfg.size)
    q = view_vectors(parts.pipeline.context_encoder, views)
    return retrieval(q, parts.cce.identity[rows].detach(), labels)


def validation_cce(cfg: TrainConfig, parts, step: int, accelerator=None) -> np.ndarray:
    """Logs the held-out retrieval accuracy; the picture is its confusion matrix (rows: true character)."""
    import cv2
    r = retrieval_now(cfg, parts)
    if accelerator is not None:
        accelerator.log({"retrieval_accuracy": r["accuracy"]}, step=step)
    conf = r["confusion"].float()
    img = (255 * conf / conf.sum(1, keepdim=True).clamp(min=1)).byte().numpy()
    return cv2.cvtColor(cv2.resize(img, (conf.shape[1] * 24, conf.shape[0] * 24), interpolation=cv2.INTER_NEAREST),
                        cv2.COLOR_GRAY2RGB)


__all__ = ["CCETable", "CCESampler", "CCEObjective", "build_cce", "initial_identity", "initial_behaviour",
           "embeddings", "finish_cce", "export_cce", "retrieval_now", "validation_cce"]
