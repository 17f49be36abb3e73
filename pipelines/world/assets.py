"""Builds the shipped assets from the world (``python -m pipelines.world assets``) and the pictures in
``docs/`` (``python -m pipelines.world docs``). Everything is deterministic, so rebuilding changes no file
unless the world itself changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..paths import assets_dir
from ..pose.openpose import to_openpose_json
from .characters import NAMED, Behaviour, CharacterSpec
from .motions import MOTIONS, Layout
from .shows import SHOWS, VARIANTS, background
from .world import World

LIBRARY_SIZE = 256
TEMPLATE_CANVAS = 512

# A neutral body for motion templates: average proportions and behaviour, so templates carry the motion,
# not one character's habits.
TEMPLATE_BODY = CharacterSpec("template", "Template", "cartoon", behaviour=Behaviour(1.1, 0.03, 0.5, "still", 0.5))

TEMPLATES = (
    # name, motion, tracks, frames, description
    ("walk-1", "walk", 1, 16, "one character walks across"),
    ("run-2", "run", 2, 16, "two characters run side by side"),
    ("jump-3", "jump", 3, 16, "three characters jump"),
    ("wave-2", "wave", 2, 16, "one waves at the other"),
    ("dance-5", "dance", 5, 32, "five characters dance in a line"),
    ("chase-2", "chase", 2, 16, "one chases the other"),
    ("highfive-2", "highfive", 2, 24, "two walk up to each other and high-five"),
    ("hug-2", "hug", 2, 24, "two walk up to each other and hug"),
    ("swap-2", "swap", 2, 16, "two characters swap places"),
    ("swap-3", "swap", 3, 16, "three characters change places"),
    ("swap-4", "swap", 4, 24, "four characters change places"),
    ("swap-5", "swap", 5, 32, "five characters change places"),
)


def _save_png(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr).save(path, optimize=True)


def build_library(out: Path, world: World | None = None) -> None:
    world = world or World(0)
    out.mkdir(parents=True, exist_ok=True)
    for spec in NAMED:
        folder = out / spec.id
        folder.mkdir(exist_ok=True)
        img, mask = world.portrait(spec, LIBRARY_SIZE)
        _save_png(folder / "reference.png", img)
        _save_png(folder / "mask.png", (mask * 255).astype(np.uint8))
        meta = {"id": spec.id, "name": spec.name, "show": spec.show, "show_title": SHOWS[spec.show].title,
                "style": spec.style, "source": "world", "world_spec": spec.to_dict()}
        (folder / "character.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "index.json").write_text(json.dumps({"characters": [c.id for c in NAMED]}, indent=1) + "\n")


def build_backgrounds(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for show in SHOWS.values():
        for v in range(VARIANTS):
            name = f"{show.id}-{v}.png"
            _save_png(out / name, np.ascontiguousarray(background(show.id, v, LIBRARY_SIZE, LIBRARY_SIZE)))
            entries.append({"file": name, "show": show.id, "variant": v, "style": show.style})
    (out / "index.json").write_text(json.dumps({"backgrounds": entries}, indent=1) + "\n")


def template_keypoints(motion: str, tracks: int, frames: int, seed: int = 0, fps: float = 8.0) -> np.ndarray:
    from .body import forward_kinematics
    rng = np.random.default_rng([seed, tracks, frames])
    specs = [TEMPLATE_BODY] * tracks
    depth = rng.permutation(np.linspace(0, 1, tracks)) * (0.9 if tracks > 1 else 0) + 0.05
    lay = Layout(TEMPLATE_CANVAS, TEMPLATE_CANVAS, depth.astype(np.float32))
    t = (np.arange(frames) / fps).astype(np.float32)
    poses, _ = MOTIONS[motion].fn(specs, t, lay, rng)
    return np.stack([forward_kinematics(s, p)["keypoints"] for s, p in zip(specs, poses)], 1)


def build_motions(out: Path) -> None:
    from ..pose.openpose import swap_pairs
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for i, (name, motion, tracks, frames, desc) in enumerate(TEMPLATES):
        kp = template_keypoints(motion, tracks, frames, seed=i)
        swaps = bool(swap_pairs(kp))
        doc = to_openpose_json(kp, TEMPLATE_CANVAS, TEMPLATE_CANVAS, fps=8.0, name=name,
                               extra={"description": desc, "motion": motion, "swaps": swaps})
        (out / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
        index.append({"name": name, "motion": motion, "tracks": tracks, "frames": frames, "description": desc,
                      "swaps": swaps})
    (out / "index.json").write_text(json.dumps({"templates": index}, indent=1) + "\n")


def build_assets(out: Path | None = None) -> None:
    out = Path(out) if out else assets_dir()
    build_library(out / "characters")
    build_backgrounds(out / "backgrounds")
    build_motions(out / "motions")
    print(f"assets written to {out}")


def build_docs(out: Path) -> None:
    import imageio.v2 as imageio
    out.mkdir(parents=True, exist_ok=True)
    world = World(0)
    tiles = []
    for spec in NAMED:
        img, _ = world.portrait(spec, LIBRARY_SIZE)
        tile = Image.fromarray(img)
        from PIL import ImageDraw
        d = ImageDraw.Draw(tile)
        label = f"{spec.name} · {SHOWS[spec.show].title}"
        d.rectangle([0, LIBRARY_SIZE - 22, LIBRARY_SIZE, LIBRARY_SIZE], fill=(0, 0, 0))
        d.text((6, LIBRARY_SIZE - 18), label, fill=(255, 255, 255))
        d.text((LIBRARY_SIZE - 80, 4), spec.style, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        tiles.append(np.asarray(tile))
    sheet = np.concatenate([np.concatenate(tiles[:5], 1), np.concatenate(tiles[5:], 1)], 0)
    _save_png(out / "characters.png", sheet)
    # a three-character swap in each style's set, side by side
    a = world.clip(3, characters=["pip", "dora", "zed"], motion="swap", show="harbor-lane", size=160, frames=20)
    b = world.clip(11, characters=["bramble", "ivy", "luma"], motion="swap", show="meadow-mischief", size=160,
                   frames=20)
    both = np.concatenate([a.frames, np.full_like(a.frames[:, :, :4], 255), b.frames], 2)
    imageio.mimwrite(out / "swap3.gif", list(both), duration=1000 / a.fps, loop=0)
    print(f"docs pictures written to {out}")
