"""ICE-mini: a fixed, versioned set of crossover scenes with exact ground truth, and the runner that
scores a model on it (EverybodyDance Table 1's columns plus IC accuracy and style delusion).

On disk (``assets/benchmarks/ice-mini/``)::

    manifest.json            name, version, the recipe of every scene, tags, the ground-truth hashes
    ice-000/scene.json       a Scene (version 1): characters in slot order, keypoints motion, assignment …
    ice-000/motion.json      the clip's OpenPose-18 keypoints (pipelines.pose.openpose.save_motion)
    ice-000/ref-2.png (+ ref-2-mask.png)   portraits of unseen characters (named ones come from the library)

Ground-truth videos are not stored: each is regenerated from its recipe (world seed, clip index,
characters — library ids or full procedural specs —, motion, show, variant, size, frames, fps) and
checked against the manifest's sha256, so a changed world is caught instead of silently moving the
goalposts. Slots are shuffled against tracks, so the assignment is never the identity by accident.

A model is any callable ``scene -> frames (F, H, W, 3) uint8``: ``load_model("gt")`` is the oracle,
``"gt-swap"`` the ground truth with identities rotated between tracks (what a model that loses identity
correspondence produces; IC ≈ 0), a folder is a saved ``MixPipeline``, ``py:module:function`` a plug-in.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from ..paths import assets_dir
from ..pose.openpose import save_motion
from ..scene import Scene, track_slots
from ..world import NAMED, NAMED_BY_ID, SHOWS, CharacterSpec, World, sample_character
from ..world.shows import VARIANTS, shows_of_style
from . import metrics as M
from .ic import ICReport, describe_references, ic_accuracy, scene_references

NAME = "ice-mini"
VERSION = "1.1"              # 1.1: rebuilt after the world changed (meet motion, signatures, crop-local colouring)
SIZE, FRAMES, FPS = 128, 16, 8.0
Model = Callable[[Scene], np.ndarray]


def benchmark_dir(name: str = NAME) -> Path:
    return assets_dir() / "benchmarks" / name


class BenchmarkMismatch(ValueError):
    """The world no longer reproduces a scene's ground truth (its hash differs from the manifest's)."""


# ---------------------------------------------------------------------------------------------------
# recipes → ground truth
# ---------------------------------------------------------------------------------------------------
def recipe_specs(recipe: dict) -> list[CharacterSpec]:
    return [NAMED_BY_ID[c] if isinstance(c, str) else CharacterSpec.from_dict(c) for c in recipe["characters"]]


def render_recipe(recipe: dict, rotate: int = 0):
    """The recipe's ground-truth ``Clip``. ``rotate`` > 0 renders the same clip (same paths, set and
    timing draws) with the characters rotated between tracks: the identities exchanged."""
    specs = recipe_specs(recipe)
    if rotate:
        specs = specs[rotate % len(specs):] + specs[:rotate % len(specs)]
    world = World(recipe["seed"], size=recipe["size"], frames=recipe["frames"], fps=recipe["fps"])
    return world.clip(recipe["clip"], characters=specs, motion=recipe["motion"], show=recipe["show"],
                      variant=recipe["variant"])


def ground_truth_hash(clip) -> str:
    """sha256 of the frames, visible masks and keypoints (to 1/1000 px) of a clip."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(clip.frames).tobytes())
    h.update(np.packbits(clip.masks).tobytes())
    h.update(np.round(clip.keypoints.astype(np.float64) * 1000).astype(np.int64).tobytes())
    return h.hexdigest()


def scene_tags(recipe: dict, clip) -> dict:
    """What a scene tests: swaps, seen/unseen characters, mixed styles, occlusion."""
    specs = clip.characters
    named = [s.id in NAMED_BY_ID for s in specs]
    set_style = SHOWS[clip.show].style
    amodal = clip.amodal.sum((2, 3)).astype(np.float64)
    hidden = 1 - clip.masks.sum((2, 3)) / np.maximum(amodal, 1)
    return {
        "n_characters": len(specs),
        "swap": bool(clip.swap_pairs),
        "seen": "seen" if all(named) else "unseen" if not any(named) else "mixed",
        "mixed_style": bool(len({s.style for s in specs}) > 1 or any(s.style != set_style for s in specs)),
        "occlusion": round(float(hidden[amodal > 0].max()) if (amodal > 0).any() else 0.0, 3),
    }


# ---------------------------------------------------------------------------------------------------
# building the stored set (python -m pipelines.eval build-benchmark)
# ---------------------------------------------------------------------------------------------------
def design_recipes(n_scenes: int = 40, seed: int = 7) -> list[dict]:
    """A balanced, deterministic set: 2–5 characters; ~55 % swap motions (the rest walks, runs, chases,
    high-fives, hugs, dances, jumps, waves); a third each all-named, all-unseen and mixed casts; half the
    scenes put characters on another style's set."""
    rng = np.random.default_rng([seed, 2024])
    counts = (2, 3, 4, 5)
    others = ("walk", "chase", "highfive", "hug", "run", "dance", "jump", "wave")
    recipes = []
    n_other = 0
    for i in range(n_scenes):
        n = counts[i % 4] if i % 8 < 4 else counts[(i // 2) % 3]
        motion = "swap" if i % 20 < 11 else others[n_other % len(others)]
        n_other += motion != "swap"
        cast_kind = ("seen", "unseen", "mixed")[i % 3]
        cross = i % 2 == 1                                          # someone on another style's set
        show = str(rng.choice(list(SHOWS)))
        set_style = SHOWS[show].style
        n_named = {"seen": n, "unseen": 0, "mixed": max(1, n // 2)}[cast_kind]
        named = [NAMED[j] for j in rng.choice(len(NAMED), size=n_named, replace=False)]
        specs: list = []
        for spec in named:
            specs.append(spec.id)
        for k in range(n - n_named):
            style = set_style if not cross else ("live-action" if set_style == "cartoon" else "cartoon")
            if cross and k % 2:
                style = set_style
            spec = sample_character(np.random.default_rng([seed, i, k]), style,
                                    id_prefix=f"ice{i:03d}")
            specs.append(spec.to_dict())
        if cross and all(isinstance(s, str) for s in specs) and all(NAMED_BY_ID[s].style == set_style for s in specs):
            # an all-named cast of the set's style: move it to a set of the other style
            show = str(rng.choice(shows_of_style("live-action" if set_style == "cartoon" else "cartoon")))
        order = rng.permutation(n)
        specs = [specs[j] for j in order]
        recipes.append({"id": f"ice-{i:03d}", "seed": seed, "clip": i, "characters": specs, "motion": motion,
                        "show": show, "variant": int(rng.integers(VARIANTS)), "size": SIZE, "frames": FRAMES,
                        "fps": FPS, "slots": [int(v) for v in rng.permutation(n)]})
    return recipes


def _save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(arr).save(path, optimize=True)


def build_benchmark(out: Path | None = None, n_scenes: int = 40, seed: int = 7, log=print) -> Path:
    """Render every recipe, write scenes, motions, portraits and the manifest with the ground-truth hashes."""
    out = Path(out) if out else benchmark_dir()
    out.mkdir(parents=True, exist_ok=True)
    portrait_world = World(0)
    entries = []
    for recipe in design_recipes(n_scenes, seed):
        clip = render_recipe(recipe)
        folder = out / recipe["id"]
        folder.mkdir(exist_ok=True)
        save_motion(folder / "motion.json", clip.keypoints, clip.frames.shape[2], clip.frames.shape[1],
                    fps=clip.fps, name=recipe["id"], extra={"motion": clip.motion})
        specs = clip.characters
        chars = []
        for slot, track in enumerate(recipe["slots"]):
            spec = specs[track]
            if spec.id in NAMED_BY_ID:
                chars.append({"id": spec.id})
                continue
            img, mask = portrait_world.portrait(spec, 256)         # exactly how the library's images are made
            _save_png(folder / f"ref-{slot}.png", img)
            _save_png(folder / f"ref-{slot}-mask.png", (mask * 255).astype(np.uint8))
            chars.append({"name": spec.name, "image": f"ref-{slot}.png", "mask": f"ref-{slot}-mask.png",
                          "style": spec.style})
        doc = {"version": 1, "characters": chars, "motion": {"keypoints": "motion.json"},
               "assignment": list(recipe["slots"]), "prompt": clip.caption,
               "background": {"show": clip.show, "variant": clip.variant}, "width": SIZE, "height": SIZE,
               "frames": FRAMES, "fps": FPS, "seed": int(recipe["clip"])}
        Scene.from_dict(doc, folder).save(folder / "scene.json")          # validated on the way out
        entries.append({"id": recipe["id"], "scene": f"{recipe['id']}/scene.json", "recipe": recipe,
                        "tags": scene_tags(recipe, clip), "gt_sha256": ground_truth_hash(clip)})
        log(f"  {recipe['id']}: {clip.n_characters} characters, {clip.motion} on {clip.show}, {entries[-1]['tags']}")
    total = hashlib.sha256("".join(e["gt_sha256"] for e in entries).encode()).hexdigest()
    manifest = {"name": NAME, "version": VERSION, "description": "ICE-mini: identity correspondence and style "
                "fidelity of crossover clips (embedded world ground truth)",
                "rebuild": f"python -m pipelines.eval build-benchmark --scenes {n_scenes} --seed {seed}",
                "size": SIZE, "frames": FRAMES, "fps": FPS, "gt_sha256": total, "scenes": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"wrote {len(entries)} scenes to {out}")
    return out


# ---------------------------------------------------------------------------------------------------
# loading and checking
# ---------------------------------------------------------------------------------------------------
@dataclass
class BenchmarkScene:
    id: str
    folder: Path
    recipe: dict
    tags: dict
    gt_sha256: str

    @cached_property
    def scene(self) -> Scene:
        return Scene.load(self.folder / "scene.json")

    def ground_truth(self, verify: bool = True):
        """The regenerated ground-truth clip; with ``verify`` its hash must equal the manifest's."""
        clip = render_recipe(self.recipe)
        if verify:
            got = ground_truth_hash(clip)
            if got != self.gt_sha256:
                raise BenchmarkMismatch(
                    f"benchmark scene {self.id}: the world no longer reproduces its ground truth (sha256 "
                    f"{got[:12]}… ≠ manifest {self.gt_sha256[:12]}…). The world changed since the benchmark was "
                    f"built; results would not be comparable. Rebuild it with `python -m pipelines.eval "
                    f"build-benchmark` and bump benchmark.VERSION")
        return clip


@dataclass
class Benchmark:
    folder: Path
    manifest: dict
    scenes: list[BenchmarkScene] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "Benchmark":
        folder = Path(folder) if folder else benchmark_dir()
        path = folder / "manifest.json"
        if not path.is_file():
            raise FileNotFoundError(f"benchmark: no manifest.json in {folder}; build it with "
                                    "`python -m pipelines.eval build-benchmark`")
        manifest = json.loads(path.read_text())
        scenes = [BenchmarkScene(e["id"], folder / Path(e["scene"]).parent, e["recipe"], e["tags"], e["gt_sha256"])
                  for e in manifest["scenes"]]
        return cls(folder, manifest, scenes)

    def verify(self) -> None:
        """Regenerate every ground truth and compare hashes (raises ``BenchmarkMismatch``)."""
        for s in self.scenes:
            s.ground_truth(verify=True)


# ---------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------
def _by_scene(bench_scene_of: dict, rotate: int) -> Model:
    def model(scene: Scene) -> np.ndarray:
        key = str(scene.base_dir)
        if key not in bench_scene_of:
            raise ValueError(f"the ground-truth oracle only knows benchmark scenes; {key} is not one")
        return render_recipe(bench_scene_of[key].recipe, rotate=rotate).frames
    return model


def load_model(spec: str, bench: Benchmark | None = None, device=None, steps: int | None = None,
               prior_strength: float | None = None, guidance_scale: float | None = None) -> tuple[Model, str]:
    """A model by name → (callable scene → frames, description).

    * ``gt`` — the ground truth (oracle); ``gt-swap`` — the ground truth with identities rotated between
      tracks (a model that keeps motion and appearance but loses identity correspondence);
    * ``prior`` — the appearance prior itself (``pipelines.pose.prior``; no network): the floor a
      generator reading it must beat;
    * a folder — a saved ``MixPipeline`` (``assets/models/tiny``, ``runs/img-full/final``), a trainer run or
      a trainer checkpoint (see ``load_pipeline_folder``); sampled with each scene's sampler and seed
      (``steps`` overrides the number of steps, ``prior_strength`` the SDEdit start, default the pipeline's,
      ``guidance_scale`` the scenes' classifier-free guidance scale);
    * ``gt+vae:FOLDER`` / ``prior+vae:FOLDER`` — the ground truth / the prior encoded and decoded by the VAE
      of a pipeline folder: what that VAE keeps of a perfect video (the practical ceiling of a generator
      decoding through it), and the prior as a model starting from it sees it;
    * ``py:package.module:function`` — a callable scene → frames, or a factory returning one.
    """
    spec = str(spec)
    for base in ("gt", "prior"):
        if spec.startswith(f"{base}+vae:"):
            folder = spec[len(base) + 5:]
            inner, what = load_model(base, bench)
            return through_vae(inner, folder, device), f"{what}, through the VAE of {folder}"
    if spec in ("gt", "gt-swap"):
        bench = bench or Benchmark.load()
        table = {str(s.folder.resolve()): s for s in bench.scenes}
        return _by_scene(table, 0 if spec == "gt" else 1), \
            "ground truth (oracle)" if spec == "gt" else "ground truth, identities rotated between tracks"
    if spec == "prior":
        return prior_model, "appearance prior only: the cut-outs pasted on their tracks, no generator"
    if spec.startswith("py:"):
        import importlib
        mod, _, attr = spec[3:].rpartition(":")
        if not mod:
            raise ValueError(f"--model: {spec!r} must look like py:package.module:function")
        fn = getattr(importlib.import_module(mod), attr)
        try:
            import inspect
            is_factory = len(inspect.signature(fn).parameters) == 0
        except (TypeError, ValueError):
            is_factory = False
        return (fn() if is_factory else fn), spec
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"--model: {spec!r} is neither gt, gt-swap, prior, gt+vae:FOLDER, prior+vae:FOLDER, "
                         "py:module:function nor an existing folder")
    import torch
    device = device or _default_device()
    pipe, what = load_pipeline_folder(path, device)

    def model(scene: Scene) -> np.ndarray:
        # the scene's own seed, on the CPU, so a model gives the same clip on any device
        gen = torch.Generator(device="cpu").manual_seed(int(scene.seed))
        return _to_frames(pipe(scene=scene, generator=gen, num_inference_steps=steps,
                               prior_strength=prior_strength, guidance_scale=guidance_scale).frames)

    return model, what


def through_vae(model: Model, folder: str | Path, device=None) -> Model:
    """``model``'s frames encoded (posterior mode) and decoded by the VAE of the pipeline folder ``folder``,
    with the pipeline's own ``encode_image`` / ``decode_latents``."""
    import torch
    from ..mix.pipeline_mix import _image_tensor
    if not (Path(folder) / "vae" / "config.json").is_file():
        raise ValueError(f"--model …+vae:{folder}: no VAE there (expected {Path(folder) / 'vae'}/config.json); "
                         "give a pipeline folder such as assets/models/tiny")
    device = device or _default_device()
    pipe, _ = load_pipeline_folder(folder, device)

    def run(scene: Scene) -> np.ndarray:
        x = _image_tensor(_to_frames(model(scene)), device, torch.float32)            # (F, 3, H, W)
        with torch.no_grad():
            z = torch.cat([pipe.encode_image(c) for c in x.split(8)])                  # (F, C, h, w)
            return _to_frames(pipe.decode_latents(z.transpose(0, 1)[None]))
    return run


def prior_model(scene: Scene) -> np.ndarray:
    """The appearance prior's RGB as the clip: the scene resolved exactly as ``MixPipeline`` resolves it."""
    from ..mix.guidance import appearance_prior_video
    from ..mix.scene_inputs import resolve_scene
    from ..mix.sheet import compose_sheet
    import torch
    inp = resolve_scene(scene, None, None, torch.Generator().manual_seed(int(scene.seed)))
    sheet = compose_sheet(inp.cutouts, inp.background, (inp.width, inp.height))
    return appearance_prior_video(sheet.image, sheet.masks, inp.keypoints, inp.width, inp.height,
                                  inp.assignment)[..., :3]


def load_pipeline_folder(path: str | Path, device=None):
    """A ``MixPipeline`` from any folder the generator and the trainer write → (pipeline, description):

    * a pipeline folder (``model_index.json``): ``assets/models/tiny``, ``runs/img-full/final``, an export;
    * a trainer run folder (``runs/img-full``): its ``final/`` if the stage finished, else its latest checkpoint;
    * a trainer checkpoint folder (``runs/img-full/checkpoints/step_00001000``: ``state.json`` +
      ``model.safetensors``): the stage's pipeline rebuilt from the config stored inside, with the weights.
    """
    path = Path(path)
    try:
        from ..mix.loading import load_pipeline
    except ImportError as e:
        raise ValueError(f"--model {path}: MixPipeline is not available in this checkout ({e}); "
                         "run with --model gt to check the benchmark itself") from None
    if (path / "model_index.json").is_file():
        pipe = load_pipeline(path, device=device)
        meta = path / "training.json"
        stage = json.loads(meta.read_text()) if meta.is_file() else {}
        variant = f", variant {stage['config']['variant']}" if stage.get("stage") == "img" else ""
        trained = f" (stage {stage['stage']}{variant})" if stage.get("stage") else ""
        return pipe, f"MixPipeline from {path}{trained}"
    from ..train import checkpoint as ckpt
    if (path / "final" / "model_index.json").is_file():
        return load_pipeline_folder(path / "final", device)
    if not (path / "state.json").is_file() and ckpt.list_checkpoints(path):
        return load_pipeline_folder(ckpt.list_checkpoints(path)[-1], device)
    if not ((path / "state.json").is_file() and (path / "model.safetensors").is_file()):
        raise ValueError(f"--model {path}: not a MixPipeline folder (no model_index.json), a trainer run (no final/ "
                         "or checkpoints/) nor a trainer checkpoint (no state.json + model.safetensors); pass e.g. "
                         "assets/models/tiny, runs/img-full/final or runs/img-full/checkpoints/step_00001000")
    from ..train.config import TrainConfig
    from ..train.trainer import build_pipeline, trained_modules
    cfg = TrainConfig.from_dict(ckpt.read_config(path))
    if cfg.stage == "vae":
        raise ValueError(f"--model {path}: a VAE-stage checkpoint is not a generator; benchmark a generator, "
                         "temporal or img stage")
    import torch
    pipe = build_pipeline(cfg)                   # the stage's model, from cfg.init (e.g. runs/temporal/final)
    state = ckpt.load(path, trained_modules(cfg, pipe))
    for m in pipe.components.values():
        if isinstance(m, torch.nn.Module):
            m.eval()
    variant = f", variant {cfg.variant}" if cfg.stage == "img" else ""
    return pipe.to(device) if device is not None else pipe, \
        f"MixPipeline from checkpoint {path} (stage {cfg.stage}{variant}, step {state.get('step', '?')})"


def _default_device():
    import torch
    acc = torch.accelerator.current_accelerator(check_available=True) if hasattr(torch, "accelerator") else None
    return acc or torch.device("cpu")


def _to_frames(frames) -> np.ndarray:
    """Whatever a model returns (numpy / torch, uint8 / float in [0, 1], a leading batch of one) →
    (F, H, W, 3) uint8."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 5 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim == 4 and frames.shape[1] == 3 and frames.shape[-1] != 3:
        frames = frames.transpose(0, 2, 3, 1)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"model output: expected frames (F, H, W, 3), got shape {frames.shape}")
    if frames.dtype != np.uint8:
        frames = np.clip(np.round(frames.astype(np.float64) * (255.0 if frames.max() <= 1.0 else 1.0)), 0, 255)
        frames = frames.astype(np.uint8)
    return frames


# ---------------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------------
GROUPS = ("all", "swap", "no swap", "seen", "unseen")
COLUMNS = ("SSIM", "PSNR", "LPIPS", "L1", "tL1", "FID", "FID-VID", "FVD", "IC", "Style-del", "ID-sim")
ARROWS = {"SSIM": "↑", "PSNR": "↑", "LPIPS": "↓", "L1": "↓", "tL1": "↓", "FID": "↓", "FID-VID": "↓", "FVD": "↓", "IC": "↑",
          "Style-del": "↓", "ID-sim": "↑"}


def in_group(tags: dict, group: str) -> bool:
    return {"all": True, "swap": tags["swap"], "no swap": not tags["swap"],
            "seen": tags["seen"] == "seen", "unseen": tags["seen"] != "seen"}[group]


def _fit(frames: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Bring a generated video to the ground truth's size and length (notes say what was done)."""
    import cv2
    notes = []
    if frames.shape[1:3] != gt.shape[1:3]:
        notes.append(f"resized {frames.shape[2]}×{frames.shape[1]} → {gt.shape[2]}×{gt.shape[1]}")
        frames = np.stack([cv2.resize(f, (gt.shape[2], gt.shape[1]), interpolation=cv2.INTER_AREA) for f in frames])
    if len(frames) != len(gt):
        notes.append(f"{len(frames)} frames for {len(gt)}: compared on the first {min(len(frames), len(gt))}")
    return frames, notes


def run_benchmark(model: Model, bench: Benchmark | None = None, *, limit: int | None = None, descriptor=None,
                  probes=None, features=None, model_name: str = "", log=print) -> dict:
    """Score ``model`` on the benchmark. Returns the results document (what ``--out`` writes)."""
    from .descriptors import get_descriptor
    from .features import FeatureMetrics, Unavailable
    from .probes import Probes
    bench = bench or Benchmark.load()
    probes = probes or Probes.load()
    descriptor = descriptor or get_descriptor("probe", probes)
    features = features or FeatureMetrics()
    status = features.status()
    scenes = bench.scenes[:limit] if limit else bench.scenes
    t0 = time.time()
    gen_wall = gen_cpu = 0.0
    rows, gens, gts = [], [], []
    for i, bs in enumerate(scenes):
        clip = bs.ground_truth(verify=True)
        scene = bs.scene
        t1, c1 = time.time(), time.process_time()
        out = _to_frames(model(scene))
        gen_s, gen_c = time.time() - t1, time.process_time() - c1       # CPU s: what waiting for a core does not inflate
        gen_wall, gen_cpu = gen_wall + gen_s, gen_cpu + gen_c
        out, notes = _fit(out, clip.frames)
        n = min(len(out), len(clip.frames))
        gen, gt, masks = out[:n], clip.frames[:n], clip.masks[:n]
        refs = scene_references(scene)
        expected = track_slots(scene.assignment, clip.n_characters)
        styles = [c.style for c in clip.characters]                      # style of whoever performs each track
        rep = ic_accuracy(gen, masks, describe_references(descriptor, refs), expected, descriptor,
                          probes=probes, track_styles=styles)
        row = {"id": bs.id, "tags": bs.tags, "generate_s": round(gen_s, 3), "generate_cpu_s": round(gen_c, 3),
               "notes": notes,
               "SSIM": M.ssim(gen, gt), "PSNR": M.psnr(gen, gt), "L1": M.l1(gen, gt), "tL1": M.temporal_l1(gen, gt),
               "LPIPS": features.lpips(gen, gt) if status["LPIPS"] is None else None,
               "ic": _tally(rep), "ID-sim": rep.identity_similarity, "per_track_ic": [None if np.isnan(v) else float(v)
                                                                               for v in rep.per_track]}
        rows.append(row)
        gens.append(gen)
        gts.append(gt)
        log(f"[{i + 1}/{len(scenes)}] {bs.id}: IC {rep.accuracy:.3f}  style-del {_fmt(rep.style_delusion)}  "
            f"SSIM {row['SSIM']:.3f}  PSNR {row['PSNR']:.2f}  ({gen_s:.1f} s to generate)")
    groups = {}
    for g in GROUPS:
        idx = [k for k, r in enumerate(rows) if in_group(r["tags"], g)]
        groups[g] = _aggregate([rows[k] for k in idx], [gens[k] for k in idx], [gts[k] for k in idx], features, status)
    doc = {"benchmark": bench.manifest["name"], "version": bench.version, "model": model_name,
           "scenes_run": len(rows), "scenes_total": len(bench.scenes), "descriptor": descriptor.name,
           "trust": {"identity": descriptor.trust(), "style": probes.trust("style")},
           "unavailable": {k: v for k, v in status.items() if v is not None},
           "groups": groups, "scenes": rows, "seconds": round(time.time() - t0, 1)}
    wall = time.time() - t0
    doc["timing"] = {"wall_s": round(wall, 1), "generate_wall_s": round(gen_wall, 1),
                     "generate_cpu_s": round(gen_cpu, 1), "evaluate_wall_s": round(wall - gen_wall, 1),
                     "torch_threads": _threads(),
                     # linear in the number of scenes (they all have 16 frames at 128²)
                     "projected_wall_s_all_scenes": round(wall / len(rows) * len(bench.scenes), 1)}
    return doc


def _threads() -> int:
    import torch
    return torch.get_num_threads()


def benchmark_model(model: "str | Path | Model", *, limit: int | None = None, steps: int | None = None,
                    prior_strength: float | None = None, guidance_scale: float | None = None, device=None,
                    descriptor: str = "probe", benchmark: str | Path | None = None,
                    probes: str | Path | None = None, out: str | Path | None = None, log=print) -> dict:
    """Benchmark one model on ICE-mini and return the results document (what ``benchmark --out`` writes).

    ``model``: a folder (``assets/models/tiny``, ``runs/img-full/final``, a trainer run or checkpoint), ``gt``,
    ``gt-swap``, ``py:module:function``, or a callable scene → frames. ``out``: also write the JSON there.
    ``format_table(doc)`` gives the printed table. The probes and the benchmark load once per call."""
    from .descriptors import get_descriptor
    from .probes import Probes
    if limit is not None and limit < 1:
        raise ValueError(f"limit: {limit} — give a positive number of scenes (or None for all)")
    bench = Benchmark.load(benchmark)
    loaded = Probes.load(probes)
    if callable(model):
        fn, name = model, getattr(model, "__name__", "callable")
    else:
        fn, name = load_model(model, bench, device, steps, prior_strength, guidance_scale)
    doc = run_benchmark(fn, bench, limit=limit, descriptor=get_descriptor(descriptor, loaded), probes=loaded,
                        model_name=name, log=log)
    # what was sampled differently from the scenes' own settings and the model's defaults (None: not overridden;
    # the SDEdit start is then the model's own, ``MixPipeline.default_prior_strength``)
    doc["sampling"] = {"steps": steps, "prior_strength": prior_strength, "guidance_scale": guidance_scale}
    if out:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    return doc


def _tally(rep: ICReport) -> dict:
    d = rep.deluded
    return {"correct": int((rep.correct == 1).sum()), "judged": int(rep.judged.sum()),
            "deluded": int((d == 1).sum()) if d is not None else 0,
            "style_judged": int((d >= 0).sum()) if d is not None else 0,
            "sim_sum": float(rep.identity_similarity * rep.judged.sum()) if rep.judged.any() else 0.0}


def _aggregate(rows: list[dict], gens: list, gts: list, features, status: dict) -> dict:
    if not rows:
        return {"scenes": 0}
    from .features import Unavailable
    out: dict = {"scenes": len(rows)}
    for k in ("SSIM", "PSNR", "L1", "tL1"):
        vals = [r[k] for r in rows if k in r and r[k] == r[k]]           # tL1: NaN for one-frame videos
        out[k] = float(np.mean(vals)) if vals else None
    out["LPIPS"] = float(np.mean([r["LPIPS"] for r in rows])) if status["LPIPS"] is None else "unavailable"
    for name, fn in (("FID", features.fid), ("FID-VID", features.fid_vid), ("FVD", features.fvd)):
        if status[name] is not None:
            out[name] = "unavailable"
        elif len(rows) < 2:
            out[name] = None                    # a distribution needs two videos at least
        else:
            try:
                out[name] = fn(gens, gts)
            except Unavailable:
                out[name] = "unavailable"
    judged = sum(r["ic"]["judged"] for r in rows)
    out["IC"] = sum(r["ic"]["correct"] for r in rows) / judged if judged else None
    out["ID-sim"] = sum(r["ic"]["sim_sum"] for r in rows) / judged if judged else None
    mixed = [r for r in rows if r["tags"]["mixed_style"]]
    sj = sum(r["ic"]["style_judged"] for r in mixed)
    out["Style-del"] = sum(r["ic"]["deluded"] for r in mixed) / sj if sj else None
    sj_all = sum(r["ic"]["style_judged"] for r in rows)
    out["style_delusion_all_scenes"] = sum(r["ic"]["deluded"] for r in rows) / sj_all if sj_all else None
    out["judged_track_frames"] = judged
    out["mixed_style_scenes"] = len(mixed)
    return out


def _fmt(v, k: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and np.isnan(v):
        return "–"
    if k == "PSNR":
        return f"{v:.2f}"
    if k in ("FID", "FID-VID", "FVD"):
        return f"{v:.1f}"
    if k in ("L1", "tL1"):
        return f"{v:.4f}"
    return f"{v:.3f}"


def format_table(doc: dict) -> str:
    """The results as a table shaped like EverybodyDance Table 1 (+ IC, style delusion, identity similarity)."""
    head = f"{doc['benchmark']} v{doc['version']} — {doc['model']} — {doc['scenes_run']}/{doc['scenes_total']} scenes"
    cols = [f"{c}{ARROWS[c]}" for c in COLUMNS]
    width = [max(12, len(c) + 2) for c in cols]
    lines = [head, f"{'':16s}" + "".join(f"{c:>{w}s}" for c, w in zip(cols, width))]
    for g, vals in doc["groups"].items():
        if not vals.get("scenes"):
            continue
        lines.append(f"{g + ' (' + str(vals['scenes']) + ')':16s}" +
                     "".join(f"{_fmt(vals.get(c), c):>{w}s}" for c, w in zip(COLUMNS, width)))
    lines.append("IC: share of judged track-frames matched to the right reference (Hungarian, ground-truth masks); "
                 "Style-del: share of character-frames on mixed-style scenes whose style flipped; "
                 "ID-sim: cosine to the right reference.")
    for why in doc["unavailable"].values():
        lines.append(why)
    for probe, t in doc["trust"].items():
        acc = "not measured" if t["accuracy"] is None else f"{t['accuracy']:.4f}"
        lines.append(f"{probe} probe: held-out accuracy {acc}" + (f" — {t['note']}" if t["note"] else " (trustworthy)"))
    t = doc.get("timing")
    if t:
        lines.append(f"{t['wall_s']:.0f} s ({t['generate_wall_s']:.0f} s generating, {t['generate_cpu_s']:.0f} CPU-s; "
                     f"{t['evaluate_wall_s']:.0f} s evaluating; {t['torch_threads']} torch threads); all "
                     f"{doc['scenes_total']} scenes ≈ {t['projected_wall_s_all_scenes']:.0f} s at this rate")
    else:
        lines.append(f"{doc['seconds']:.0f} s")
    return "\n".join(lines)
