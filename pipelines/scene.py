"""The Scene: one JSON document that says everything needed to make a clip. The studio writes it, the
CLI reads it, the pipeline renders it, the benchmark stores it. Version 1:

    {
      "version": 1,
      "characters": [                                   # identity slots, in slot order (1..5)
        {"id": "pip"},                                  #   a library character (id or name)
        {"name": "Ada", "image": "ada.png",             #   or your own: image + mask + name + style
         "mask": "ada-mask.png", "style": "live-action"}
      ],
      "motion": {"template": "swap-2"},                 # or {"keypoints": "moves.json"} or {"text": "..."}
      "assignment": [1, 0],                             # slot i performs motion track assignment[i]
      "prompt": "[character: Pip] waves at [character: Ada].",
      "background": {"show": "meadow-mischief"},        # or {"image": "bg.png"} or {"color": "#7f7f7f"}
      "width": 128, "height": 128, "frames": 16, "fps": 8,
      "sampler": {"scheduler": "ddim", "steps": 20, "guidance_scale": 2.5},
      "seed": 0
    }

File references are relative to the scene file's folder and may not leave it. Validation collects every
problem and raises one ``SceneError`` whose lines each name the field (``characters[1].image``) and say
what to do. The slot↔track assignment is defined here and only here (``track_slots``).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .library import Library, STYLES, check_style

VERSION = 1
MAX_CHARACTERS = 5
SCHEDULERS = ("ddim", "dpm++", "euler")
MOTION_KINDS = ("template", "keypoints", "text")
DEFAULTS: dict[str, Any] = {
    "width": 128, "height": 128, "frames": 16, "fps": 8, "seed": 0, "prompt": "",
    "sampler": {"scheduler": "ddim", "steps": 20, "guidance_scale": 2.5},
}
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class SceneError(ValueError):
    """Scene validation failed; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid scene:\n  " + "\n  ".join(problems))


def track_slots(assignment: list[int], n_tracks: int) -> list[int]:
    """Invert a slot→track assignment: the slot performing each track, or -1 for a track nobody performs."""
    slots = [-1] * n_tracks
    for slot, track in enumerate(assignment):
        slots[track] = slot
    return slots


def check_assignment(assignment: Any, n_slots: int, n_tracks: int | None, where: str = "assignment") -> list[str]:
    """Problems with a slot→track assignment (empty when it is valid)."""
    if not isinstance(assignment, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in assignment):
        return [f"{where}: must be a list of track numbers, one per character (e.g. [0, 1])"]
    problems = []
    if len(assignment) != n_slots:
        problems.append(f"{where}: has {len(assignment)} entries for {n_slots} characters; give one track per character")
    if len(set(assignment)) != len(assignment):
        problems.append(f"{where}: {assignment} gives two characters the same track; each track takes one character")
    if n_tracks is not None:
        if n_slots > n_tracks:
            problems.append(f"{where}: {n_slots} characters but the motion has only {n_tracks} tracks; "
                            "remove characters or pick a motion with more tracks")
        bad = [a for a in assignment if not 0 <= a < n_tracks]
        if bad:
            problems.append(f"{where}: track(s) {bad} do not exist; the motion has tracks 0..{n_tracks - 1}")
    return problems


def safe_path(base: Path, ref: Any, where: str, problems: list[str], must_exist: bool = True) -> Path | None:
    """Resolve a file reference relative to ``base``; refuse absolute paths and paths leaving ``base``."""
    if not isinstance(ref, str) or not ref.strip():
        problems.append(f"{where}: must be a file name relative to the scene's folder")
        return None
    if Path(ref).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", ref):
        problems.append(f"{where}: {ref!r} is an absolute path; put the file beside the scene and name it relatively")
        return None
    base = base.resolve()
    path = (base / ref).resolve()
    if base != path and base not in path.parents:
        problems.append(f"{where}: {ref!r} leaves the scene's folder; copy the file next to the scene file")
        return None
    if must_exist and not path.is_file():
        problems.append(f"{where}: file {ref!r} not found next to the scene")
        return None
    return path


@dataclass
class Scene:
    characters: list[dict]
    motion: dict
    assignment: list[int]
    prompt: str = ""
    background: dict | None = None
    width: int = 128
    height: int = 128
    frames: int = 16
    fps: float = 8
    sampler: dict = field(default_factory=lambda: dict(DEFAULTS["sampler"]))
    seed: int = 0
    base_dir: Path = field(default_factory=Path.cwd)
    version: int = VERSION

    # ---- construction -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, doc: Any, base_dir: str | Path = ".", library: Library | None = None,
                  check_files: bool = True) -> "Scene":
        """Validate a scene document. ``library`` resolves character ids (default: the assets library)."""
        if not isinstance(doc, dict):
            raise SceneError(["scene: must be a JSON object"])
        base = Path(base_dir)
        problems: list[str] = []
        version = doc.get("version")
        if version is None:
            problems.append("version: missing; add \"version\": 1")
        elif version != VERSION:
            problems.append(f"version: {version!r} is not supported; this release reads version {VERSION}")
        known = {"version", "characters", "motion", "assignment", "prompt", "background", "width", "height",
                 "frames", "fps", "sampler", "seed"}
        for k in doc:
            if k not in known:
                problems.append(f"{k}: unknown field; known fields are {', '.join(sorted(known))}")

        library = library if library is not None else Library()
        characters = _check_characters(doc.get("characters"), base, library, problems, check_files)
        motion, n_tracks = _check_motion(doc.get("motion"), base, problems, check_files, len(characters))
        assignment = doc.get("assignment", list(range(len(characters))))
        if characters:
            problems += check_assignment(assignment, len(characters), n_tracks)

        def number(key, lo, hi, kind=int):
            v = doc.get(key, DEFAULTS[key])
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or float(v).is_integer())
            if not ok or not lo <= v <= hi:
                problems.append(f"{key}: {v!r} must be {'an integer' if kind is int else 'a number'} in {lo}..{hi}")
                return DEFAULTS[key]
            return kind(v)

        width, height = number("width", 64, 1024), number("height", 64, 1024)
        for key, v in (("width", width), ("height", height)):
            if v % 16:
                problems.append(f"{key}: {v} must be a multiple of 16 (the model works on 16-pixel blocks)")
        frames, fps, seed = number("frames", 1, 256), number("fps", 1, 60, float), number("seed", 0, 2**63 - 1)
        sampler = _check_sampler(doc.get("sampler", {}), problems)
        prompt = doc.get("prompt", "")
        if not isinstance(prompt, str):
            problems.append("prompt: must be a string like \"[character: Pip] waves.\"")
            prompt = ""
        background = _check_background(doc.get("background"), base, problems, check_files)
        if problems:
            raise SceneError(problems)
        return cls(characters, motion, list(assignment), prompt, background, width, height, frames, fps,
                   sampler, seed, base.resolve())

    @classmethod
    def load(cls, path: str | Path, library: Library | None = None) -> "Scene":
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise SceneError([f"scene file not found: {path}"]) from None
        except json.JSONDecodeError as e:
            raise SceneError([f"{path.name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})"]) from None
        return cls.from_dict(doc, path.parent, library)

    # ---- output -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"version": self.version, "characters": copy.deepcopy(self.characters), "motion": dict(self.motion),
             "assignment": list(self.assignment), "prompt": self.prompt}
        if self.background is not None:
            d["background"] = dict(self.background)
        d.update(width=self.width, height=self.height, frames=self.frames, fps=self.fps,
                 sampler=dict(self.sampler), seed=self.seed)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    # ---- helpers ------------------------------------------------------------------------------------
    def path(self, ref: str) -> Path:
        """Absolute path of a file reference (already validated to stay inside ``base_dir``)."""
        return (self.base_dir / ref).resolve()

    @property
    def n_slots(self) -> int:
        return len(self.characters)

    def track_slots(self, n_tracks: int) -> list[int]:
        return track_slots(self.assignment, n_tracks)

    def with_assignment(self, assignment: list[int], n_tracks: int | None = None) -> "Scene":
        problems = check_assignment(assignment, self.n_slots, n_tracks)
        if problems:
            raise SceneError(problems)
        s = copy.copy(self)
        s.assignment = list(assignment)
        return s


def _check_characters(chars: Any, base: Path, library: Library, problems: list[str], check_files: bool) -> list[dict]:
    if not isinstance(chars, list) or not chars:
        problems.append("characters: missing; list 1 to 5 characters, e.g. [{\"id\": \"pip\"}]")
        return []
    if len(chars) > MAX_CHARACTERS:
        problems.append(f"characters: {len(chars)} given; a scene holds at most {MAX_CHARACTERS}")
    out = []
    for i, c in enumerate(chars):
        where = f"characters[{i}]"
        if not isinstance(c, dict):
            problems.append(f"{where}: must be an object with an \"id\", or \"image\", \"mask\", \"name\", \"style\"")
            continue
        if "id" in c:
            extra = set(c) - {"id"}
            if extra:
                problems.append(f"{where}: a library character takes only \"id\"; remove {sorted(extra)}")
            try:
                lc = library.get(c["id"], f"{where}.id")
                out.append({"id": lc.id})
            except ValueError as e:
                problems.append(str(e))
            continue
        missing = [k for k in ("image", "mask", "name", "style") if k not in c]
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}; give a library \"id\" or all of image, mask, name, style")
            continue
        extra = set(c) - {"image", "mask", "name", "style", "show"}
        if extra:
            problems.append(f"{where}: unknown field(s) {sorted(extra)}")
        entry = dict(c)
        safe_path(base, c["image"], f"{where}.image", problems, check_files)
        safe_path(base, c["mask"], f"{where}.mask", problems, check_files)
        if not isinstance(c["name"], str) or not c["name"].strip() or "[" in c["name"] or "]" in c["name"]:
            problems.append(f"{where}.name: must be a non-empty name without brackets")
        try:
            entry["style"] = check_style(c["style"], f"{where}.style")
        except ValueError as e:
            problems.append(str(e))
        out.append(entry)
    names = [(c.get("id") or c.get("name", "")).lower() for c in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append(f"characters: {dup} appear more than once; each slot needs a different character")
    return out


def _check_motion(motion: Any, base: Path, problems: list[str], check_files: bool, n_chars: int) -> tuple[dict, int | None]:
    if not isinstance(motion, dict) or len([k for k in MOTION_KINDS if k in motion]) != 1:
        problems.append("motion: give exactly one of {\"template\": name}, {\"keypoints\": file}, {\"text\": words}")
        return {}, None
    extra = set(motion) - set(MOTION_KINDS)
    if extra:
        problems.append(f"motion: unknown field(s) {sorted(extra)}")
    if "template" in motion:
        from .pose.templates import list_templates, template_info
        name = motion["template"]
        if name not in list_templates():
            problems.append(f"motion.template: unknown template {name!r}; known templates: {', '.join(list_templates())}")
            return dict(motion), None
        info = {t["name"]: t for t in template_info()}
        return dict(motion), info.get(name, {}).get("tracks")
    if "keypoints" in motion:
        path = safe_path(base, motion["keypoints"], "motion.keypoints", problems, check_files)
        if path is None or not check_files:
            return dict(motion), None
        from .pose.templates import load_motion_file
        try:
            return dict(motion), load_motion_file(path).tracks
        except ValueError as e:
            problems.append(f"motion.keypoints: {e}")
            return dict(motion), None
    if not isinstance(motion["text"], str):
        problems.append("motion.text: must be a string (it may be empty to use the prompt's actions)")
    return dict(motion), n_chars


def _check_sampler(s: Any, problems: list[str]) -> dict:
    out = dict(DEFAULTS["sampler"])
    if not isinstance(s, dict):
        problems.append("sampler: must be an object like {\"scheduler\": \"ddim\", \"steps\": 20, \"guidance_scale\": 2.5}")
        return out
    for k, v in s.items():
        if k == "scheduler":
            if v not in SCHEDULERS:
                problems.append(f"sampler.scheduler: unknown scheduler {v!r}; use one of {', '.join(SCHEDULERS)}")
            else:
                out[k] = v
        elif k == "steps":
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 200:
                problems.append(f"sampler.steps: {v!r} must be an integer in 1..200")
            else:
                out[k] = v
        elif k == "guidance_scale":
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 20:
                problems.append(f"sampler.guidance_scale: {v!r} must be a number in 0..20 (1 turns guidance off)")
            else:
                out[k] = float(v)
        else:
            problems.append(f"sampler.{k}: unknown field; known: scheduler, steps, guidance_scale")
    return out


def _check_background(bg: Any, base: Path, problems: list[str], check_files: bool) -> dict | None:
    if bg is None:
        return None
    if not isinstance(bg, dict) or len([k for k in ("show", "image", "color") if k in bg]) != 1:
        problems.append("background: give one of {\"show\": id}, {\"image\": file}, {\"color\": \"#rrggbb\"}")
        return None
    if "image" in bg:
        safe_path(base, bg["image"], "background.image", problems, check_files)
    elif "color" in bg and not (isinstance(bg["color"], str) and _HEX.match(bg["color"])):
        problems.append(f"background.color: {bg['color']!r} must look like \"#7f7f7f\"")
    elif "show" in bg:
        from .world.shows import SHOWS, VARIANTS
        if bg["show"] not in SHOWS:
            problems.append(f"background.show: unknown show {bg['show']!r}; known shows: {', '.join(SHOWS)}")
        v = bg.get("variant", 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < VARIANTS:
            problems.append(f"background.variant: {v!r} must be an integer in 0..{VARIANTS - 1}")
    extra = set(bg) - {"show", "variant", "image", "color"} - set()
    if extra or ("variant" in bg and "show" not in bg):
        problems.append(f"background: unknown field(s) {sorted(extra) or ['variant']}; variant goes with show")
    return dict(bg)


__all__ = ["Scene", "SceneError", "track_slots", "check_assignment", "safe_path", "VERSION", "MAX_CHARACTERS",
           "SCHEDULERS", "STYLES"]
