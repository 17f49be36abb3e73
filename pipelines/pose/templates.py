"""Motion templates: keypoint JSON files (``pipelines.pose.openpose`` motion documents) in
``assets/motions/``. A template is referenced by its file stem, e.g. ``swap-2``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..paths import motions_dir
from .openpose import from_openpose_json


@dataclass
class Motion:
    name: str
    keypoints: np.ndarray          # (F, T, 18, 3) pixels of width × height
    width: int
    height: int
    fps: float = 8.0
    meta: dict = field(default_factory=dict)

    @property
    def tracks(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])


def load_motion_file(path: str | Path, name: str | None = None) -> Motion:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"motion file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name}: not valid JSON ({e})") from None
    kp, w, h = from_openpose_json(doc)
    meta = {k: v for k, v in doc.items() if k != "frames"} if isinstance(doc, dict) else {}
    return Motion(name or meta.get("name", path.stem), kp, w, h, float(meta.get("fps", 8.0)), meta)


def list_templates(directory: Path | None = None) -> dict[str, Path]:
    directory = directory or motions_dir()
    return {p.stem: p for p in sorted(directory.glob("*.json")) if p.name != "index.json"}


def template_info(directory: Path | None = None) -> list[dict]:
    """Name, tracks, frames and description of every template (read from the index, not the files)."""
    directory = directory or motions_dir()
    index = directory / "index.json"
    if index.exists():
        return json.loads(index.read_text())["templates"]
    return [{"name": n, **{k: v for k, v in load_motion_file(p).meta.items() if k in ("tracks", "description")}}
            for n, p in list_templates(directory).items()]


def load_template(name: str, directory: Path | None = None) -> Motion:
    templates = list_templates(directory)
    if name not in templates:
        known = ", ".join(templates) or "(none: run `python -m pipelines.world assets`)"
        raise ValueError(f"unknown motion template {name!r}; known templates: {known}")
    return load_motion_file(templates[name], name)
