"""The bridge between what the scene controls show (``session.Composition``) and the project's Scene spec
(``pipelines.scene.Scene``): building and validating the scene, keeping the slot→track assignment valid
as characters and motions change, filling the CCE prompt from the choices, and writing / reading
scene.json and scene.zip so a composition travels and comes back whole.

No models here and no torch: these functions are cheap and run inside event handlers.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipelines.library import Library, LibraryCharacter, check_style
from pipelines.pose.openpose import track_x
from pipelines.pose.templates import list_templates, load_motion_file, template_info
from pipelines.scene import MAX_CHARACTERS, SCHEDULERS, Scene, SceneError, track_slots
from pipelines.world.motions import MOTIONS, caption, tag

from .session import MAX_JSON_MB, MAX_UPLOAD_MB, Composition, Session

ZIP_MAX_FILES = 64
ZIP_MAX_BYTES = 200 * 2**20


# ---------------------------------------------------------------------------------------------------------
# the session's library: shipped characters + the ones this session added
# ---------------------------------------------------------------------------------------------------------
def session_library(session: Session) -> Library:
    user = Library(session.folder / "characters")
    return Library(extra=list(user))


def is_user_character(session: Session, cid: str) -> bool:
    return (session.folder / "characters" / cid / "character.json").is_file()


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s or "character"


def check_name(name: str, library: Library, replacing: str | None = None) -> str:
    """A new character's display name: non-empty, no brackets (CCE tags use them), not taken."""
    name = (name or "").strip()
    if not name:
        raise ValueError("name: give the character a name (it is how prompts refer to it: [character: Name])")
    if len(name) > 40 or "[" in name or "]" in name or ":" in name:
        raise ValueError(f"name: {name!r} must be at most 40 characters, without brackets or colons")
    taken = library.find(name)
    if taken is not None and taken.id != replacing:
        raise ValueError(f"name: {name!r} is already taken by a library character; pick another name")
    return name


def add_user_character(session: Session, image: np.ndarray, mask: np.ndarray, name: str, style: str,
                       show: str = "") -> LibraryCharacter:
    """Write a character into the session's library folder (same layout as ``assets/characters``)."""
    from PIL import Image
    library = session_library(session)
    name = check_name(name, library)
    style = check_style(style, "style")
    mask = np.asarray(mask, bool)
    if mask.shape != image.shape[:2] or mask.sum() < 16:
        raise ValueError("mask: the character's mask is empty; click on the character first")
    cid = "u-" + slug(name)
    while (session.folder / "characters" / cid).exists():
        cid = f"u-{slug(name)}-{uuid.uuid4().hex[:4]}"
    folder = session.folder / "characters" / cid
    folder.mkdir(parents=True)
    Image.fromarray(np.ascontiguousarray(image[..., :3])).save(folder / "reference.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / "mask.png")
    meta = {"id": cid, "name": name, "show": show or "your-characters", "show_title": "Your characters",
            "style": style, "source": "upload"}
    (folder / "character.json").write_text(json.dumps(meta, indent=1) + "\n")
    return session_library(session).get(cid)


# ---------------------------------------------------------------------------------------------------------
# motions
# ---------------------------------------------------------------------------------------------------------
@dataclass
class MotionInfo:
    label: str
    kind: str | None            # world motion kind ("swap", "wave", …) when known: drives the prompt
    keypoints: np.ndarray       # (F, T, 18, 3) pixels of width × height
    width: int
    height: int
    fps: float
    description: str = ""

    @property
    def tracks(self) -> int:
        return int(self.keypoints.shape[1])

    def direction(self) -> str:
        x = track_x(self.keypoints)
        d = np.nanmean(x[-1] - x[0]) if np.isfinite(x[[0, -1]]).any() else 0.0
        return "left" if d < 0 else "right"

    def hints(self) -> list[str]:
        """Per track, where it starts and ends, in words ("left → right")."""
        x = track_x(self.keypoints) / max(1, self.width)

        def word(v):
            return "—" if not np.isfinite(v) else "left" if v < 0.38 else "right" if v > 0.62 else "centre"
        out = []
        for t in range(self.tracks):
            seen = np.flatnonzero(np.isfinite(x[:, t]))
            if not len(seen):
                out.append("not visible")
                continue
            a, b = word(x[seen[0], t]), word(x[seen[-1], t])
            out.append(a if a == b else f"{a} → {b}")
        return out


@lru_cache(maxsize=64)
def _motion_cached(path: str, mtime: float, name: str) -> MotionInfo:
    m = load_motion_file(path, name)
    kind = m.meta.get("motion") if m.meta.get("motion") in MOTIONS else None
    return MotionInfo(name, kind, m.keypoints, m.width, m.height, m.fps, m.meta.get("description", ""))


def motion_info(comp: Composition, base: Path) -> MotionInfo:
    """The composition's motion, loaded (cached by file and modification time)."""
    if "template" in comp.motion:
        templates = list_templates()
        name = comp.motion["template"]
        if name not in templates:
            raise ValueError(f"motion: unknown template {name!r}; known templates: {', '.join(templates)}")
        path = templates[name]
    elif "keypoints" in comp.motion:
        path = (base / comp.motion["keypoints"]).resolve()
        name = comp.motion.get("label") or path.name
    elif "text" in comp.motion and "preview" in comp.motion:
        # a text motion: the keypoints the motion model made for this cast and seed (see Handlers.text_motion)
        path = (base / comp.motion["preview"]).resolve()
        name = comp.motion.get("label") or "text"
    else:
        raise ValueError("motion: this text motion has no keypoints yet; press “Make the motion”, or pick a "
                         "template, upload an OpenPose JSON file or a driving video")
    return _motion_cached(str(path), Path(path).stat().st_mtime, name)


def template_choices() -> list[tuple[str, str]]:
    """(label, name) pairs for the template dropdown, e.g. ("swap-2 · two characters swap places · 2 tracks", "swap-2")."""
    return [(f"{t['name']} · {t.get('description', '')} · {t['tracks']} track{'s' * (t['tracks'] > 1)}", t["name"])
            for t in template_info()]


def template_for(n_characters: int, kind: str | None) -> str | None:
    """The template that fits ``n_characters``: the same kind of motion if one has enough tracks (fewest
    tracks first), else any motion with enough tracks."""
    infos = [t for t in template_info() if t["tracks"] >= n_characters]
    same = sorted((t for t in infos if t.get("motion") == kind), key=lambda t: t["tracks"])
    rest = sorted(infos, key=lambda t: (t["tracks"], t["name"]))
    pick = (same or rest or [None])[0]
    return pick["name"] if pick else None


# ---------------------------------------------------------------------------------------------------------
# assignment
# ---------------------------------------------------------------------------------------------------------
def fit_assignment(assignment: list[int], n_slots: int, n_tracks: int) -> list[int]:
    """Keep each slot's track where still valid; give new or displaced slots the lowest free tracks.
    Slots beyond ``n_tracks`` keep no track (-1) — the scene is then invalid until fixed."""
    out: list[int] = []
    used: set[int] = set()
    for k in range(n_slots):
        t = assignment[k] if k < len(assignment) else -1
        if 0 <= t < n_tracks and t not in used:
            out.append(t)
            used.add(t)
        else:
            out.append(-1)
    free = [t for t in range(n_tracks) if t not in used]
    return [t if t >= 0 else (free.pop(0) if free else -1) for t in out]


def move_to_track(assignment: list[int], slot: int, track: int, n_tracks: int) -> list[int]:
    """Drag-and-drop: ``slot`` takes ``track``; whoever performed it takes ``slot``'s old track."""
    if not 0 <= slot < len(assignment):
        raise ValueError(f"slot: {slot} is not a character of this scene (0..{len(assignment) - 1})")
    if not 0 <= track < n_tracks:
        raise ValueError(f"track: {track} is not a track of this motion (0..{n_tracks - 1})")
    out = list(assignment)
    old = out[slot]
    for k, t in enumerate(out):
        if t == track:
            out[k] = old
    out[slot] = track
    return out


def set_picks(session: Session, picks: list[str]) -> list[str]:
    """Change the cast (slot order = ``picks``), keep the assignment valid, switch to a template with
    enough tracks when needed. Returns notes for the creator."""
    if len(picks) > MAX_CHARACTERS:
        raise ValueError(f"characters: a scene holds at most {MAX_CHARACTERS}; remove one before adding another")
    comp, notes = session.comp, []
    old = {cid: t for cid, t in zip(comp.picks, comp.assignment)}
    if "text" in comp.motion:
        # the motion model moves however many characters there are: one track each
        comp.picks = list(picks)
        comp.assignment = fit_assignment([old.get(c, -1) for c in picks], len(picks), len(picks))
        return notes
    info = motion_info(comp, session.folder)
    if len(picks) > info.tracks and "template" in comp.motion:
        name = template_for(len(picks), info.kind)
        if name and name != comp.motion["template"]:
            comp.motion = {"template": name}
            notes.append(f"Motion switched to {name} so that all {len(picks)} characters have a track.")
            info = motion_info(comp, session.folder)
    comp.picks = list(picks)
    comp.assignment = fit_assignment([old.get(c, -1) for c in picks], len(picks), info.tracks)
    if len(picks) > info.tracks:
        notes.append(f"This motion has {info.tracks} track(s) for {len(picks)} characters; "
                     "pick a motion with more tracks or remove a character.")
    _sync_frames(comp, info)
    return notes


def set_motion(session: Session, motion: dict) -> MotionInfo:
    comp = session.comp
    previous = comp.motion
    comp.motion = dict(motion)
    try:
        info = motion_info(comp, session.folder)
    except (ValueError, OSError):
        comp.motion = previous
        raise
    comp.assignment = fit_assignment(comp.assignment, len(comp.picks), info.tracks)
    _sync_frames(comp, info)
    return info


def _sync_frames(comp: Composition, info: MotionInfo) -> None:
    # a template has its natural length (dance-5: 32 frames); start from it, the creator may change it
    if "template" in comp.motion:
        comp.frames = int(min(info.keypoints.shape[0], 64))


# ---------------------------------------------------------------------------------------------------------
# prompt
# ---------------------------------------------------------------------------------------------------------
def auto_prompt(session: Session, library: Library | None = None, info: MotionInfo | None = None) -> str:
    """The CCE prompt the choices imply: character names in the order of the tracks they perform, in the
    world's caption for that kind of motion (``pipelines.world.motions.caption``)."""
    comp = session.comp
    if not comp.picks:
        return ""
    library = library or session_library(session)
    if info is None and "text" in comp.motion:
        kind, tracks = None, len(comp.picks)            # the words decide; one track per character
    else:
        info = info or motion_info(comp, session.folder)
        kind, tracks = info.kind, info.tracks
    chars = [library.get(c) for c in comp.picks]
    names = [c.name for c in chars]
    if all(0 <= t < tracks for t in comp.assignment):
        by_track = [names[s] for s in track_slots(comp.assignment, tracks) if s >= 0]
    else:
        by_track = names
    if kind and len(by_track) >= MOTIONS[kind].min_chars:
        text = caption(kind, by_track, {"direction": info.direction()})
    else:
        tags = [tag(n) for n in by_track]
        text = (", ".join(tags[:-1]) + " and " + tags[-1] + " move together.") if len(tags) > 1 else f"{tags[0]} moves."
    # MIMIX tags crossovers (characters on another style's set) with the scene's style, as CCA trains it
    style = _scene_style(comp)
    if style and any(c.style != style for c in chars):
        text += f" [scene-style: {style}]"
    return text


def _scene_style(comp: Composition) -> str | None:
    if comp.background and "show" in comp.background:
        from pipelines.world.shows import SHOWS
        show = SHOWS.get(comp.background["show"])
        return show.style if show else None
    return None


def refresh_prompt(session: Session) -> None:
    if session.comp.prompt_auto:
        session.comp.prompt = auto_prompt(session)


# ---------------------------------------------------------------------------------------------------------
# composition → Scene
# ---------------------------------------------------------------------------------------------------------
def scene_doc(session: Session, library: Library | None = None, by_id: bool = False) -> dict:
    """The composition as a Scene JSON document (file references relative to the session folder). The
    session's own characters are written as image + mask + name + style, so the document travels; with
    ``by_id`` they are named by their id in the session library instead (how the generator gets to read
    their CCE tokens)."""
    comp = session.comp
    library = library or session_library(session)
    characters = []
    for cid in comp.picks:
        c = library.get(cid)
        if c.folder.parent == session.folder / "characters" and not by_id:
            rel = c.folder.relative_to(session.folder).as_posix()
            characters.append({"name": c.name, "image": f"{rel}/reference.png", "mask": f"{rel}/mask.png",
                               "style": c.style})
        else:
            characters.append({"id": c.id})
    motion = {k: v for k, v in comp.motion.items() if k in ("template", "keypoints", "text")}
    doc = {"version": 1, "characters": characters, "motion": motion, "assignment": list(comp.assignment),
           "prompt": comp.prompt}
    if comp.background is not None:
        doc["background"] = dict(comp.background)
    doc.update(width=comp.width, height=comp.height, frames=int(comp.frames), fps=comp.fps,
               sampler={"scheduler": comp.scheduler, "steps": int(comp.steps), "guidance_scale": float(comp.guidance)},
               seed=int(comp.seed))
    return doc


def build_scene(session: Session, by_id: bool = False) -> Scene:
    """Validate the composition exactly as the CLI validates a scene file. Raises SceneError. ``by_id``:
    the scene the generator gets (see ``scene_doc``), to be rendered with ``session_library(session)``."""
    library = session_library(session)
    if not session.comp.picks:
        raise SceneError(["characters: none picked; pick one to five characters from the library"])
    scene = Scene.from_dict(scene_doc(session, library, by_id), session.folder, library)
    check_prompt(session.comp.prompt, library)
    return scene


def check_prompt(prompt: str, library: Library) -> None:
    """The CCE prompt parses (``pipelines.cce.parse_prompt``): tags well formed, every ``[character: Name]``
    known to the library (the session's own characters included). Raises SceneError saying what to fix."""
    if not prompt.strip():
        return
    from pipelines.cce import PromptError, parse_prompt
    try:
        parse_prompt(prompt, library=library)
    except PromptError as e:
        raise SceneError([str(e)]) from None


def referenced_files(doc: dict) -> list[str]:
    refs = [c[k] for c in doc.get("characters", []) for k in ("image", "mask") if k in c]
    refs += [doc["motion"]["keypoints"]] if "keypoints" in doc.get("motion", {}) else []
    refs += [doc["background"]["image"]] if "image" in (doc.get("background") or {}) else []
    return refs


def export_scene(doc: dict, base: Path, out_dir: Path) -> Path:
    """Write the scene for download: ``scene.json`` when it stands alone, else ``scene.zip`` holding
    scene.json with every referenced file next to it (same relative paths), so it loads again."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=2) + "\n"
    refs = referenced_files(doc)
    if not refs:
        path = out_dir / "scene.json"
        path.write_text(text)
        return path
    path = out_dir / "scene.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("scene.json", text)
        for ref in dict.fromkeys(refs):
            z.write(base / ref, ref)
    return path


# ---------------------------------------------------------------------------------------------------------
# scene.json / scene.zip → composition
# ---------------------------------------------------------------------------------------------------------
def unpack_zip(session: Session, path: Path) -> Path:
    """Extract an uploaded zip safely (no absolute paths, nothing leaving the folder, bounded size) and
    return its scene file."""
    dest = session.folder / "imports" / uuid.uuid4().hex[:12]
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"scene: {path.name} is not a zip file; upload scene.json or the scene.zip the studio wrote") from None
    with z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        if len(infos) > ZIP_MAX_FILES or sum(i.file_size for i in infos) > ZIP_MAX_BYTES:
            raise ValueError(f"scene: {path.name} holds too much ({len(infos)} files); a scene zip holds the scene "
                             f"and its images, at most {ZIP_MAX_FILES} files and {ZIP_MAX_BYTES >> 20} MB")
        for i in infos:
            target = (dest / i.filename).resolve()
            if Path(i.filename).is_absolute() or dest.resolve() not in target.parents:
                raise ValueError(f"scene: {path.name} contains {i.filename!r}, which leaves the scene's folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(i) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    candidates = [dest / "scene.json"] if (dest / "scene.json").is_file() else sorted(dest.rglob("*.json"))
    scenes = [p for p in candidates if _looks_like_scene(p)]
    if not scenes:
        raise ValueError(f"scene: {path.name} has no scene.json inside")
    return scenes[0]


def _looks_like_scene(p: Path) -> bool:
    try:
        d = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(d, dict) and "characters" in d


def import_scene(session: Session, path: str | Path) -> list[str]:
    """Restore a whole composition from scene.json or scene.zip: cast (importing the scene's own
    characters into the session library), motion, assignment, prompt, background, size, sampler, seed.
    Raises ValueError (SceneError for validation problems) with what to fix."""
    path = Path(path)
    limit = MAX_UPLOAD_MB if path.suffix.lower() == ".zip" else MAX_JSON_MB
    if path.stat().st_size > limit * 2**20:
        raise ValueError(f"scene: {path.name} is larger than {limit} MB; a scene file is a few kB")
    scene_path = unpack_zip(session, path) if path.suffix.lower() == ".zip" else path
    try:
        doc = json.loads(scene_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"scene: {path.name} is not valid JSON ({e})") from None
    library = session_library(session)
    scene = Scene.from_dict(doc, scene_path.parent, library)      # raises SceneError with every problem
    notes: list[str] = []
    comp = Composition()
    for i, c in enumerate(scene.characters):
        if "id" in c:
            comp.picks.append(c["id"])
            continue
        existing = library.find(c["name"])
        if existing is not None and not is_user_character(session, existing.id):
            raise ValueError(f"characters[{i}].name: {c['name']!r} is a library character's name; rename the "
                             "uploaded character in the scene file")
        from PIL import Image
        image = np.asarray(Image.open(scene.path(c["image"])).convert("RGB"))
        mask = np.asarray(Image.open(scene.path(c["mask"])).convert("L")) > 127
        if existing is not None:         # the same character again (e.g. reopening a saved clip): refresh it
            shutil.rmtree(existing.folder)
        added = add_user_character(session, image, mask, c["name"], c["style"], c.get("show", ""))
        comp.picks.append(added.id)
        notes.append(f"{c['name']} was added to your characters.")
    if "template" in scene.motion:
        comp.motion = {"template": scene.motion["template"]}
    elif "text" in scene.motion:
        comp.motion = {"text": scene.motion["text"]}         # its keypoints are made when the scene is shown
    else:
        src = scene.path(scene.motion["keypoints"])
        dst = session.new_path("motions", ".json", slug(src.stem))
        shutil.copyfile(src, dst)
        comp.motion = {"keypoints": dst.relative_to(session.folder).as_posix(), "label": src.name}
    comp.assignment = list(scene.assignment)
    if scene.background and "image" in scene.background:
        src = scene.path(scene.background["image"])
        dst = session.new_path("uploads", src.suffix, "background")
        shutil.copyfile(src, dst)
        comp.background = {"image": dst.relative_to(session.folder).as_posix()}
    else:
        comp.background = copy.deepcopy(scene.background)
    comp.width, comp.height, comp.frames, comp.fps = scene.width, scene.height, scene.frames, scene.fps
    comp.steps = int(scene.sampler.get("steps", comp.steps))
    comp.guidance = float(scene.sampler.get("guidance_scale", comp.guidance))
    comp.scheduler = scene.sampler.get("scheduler", comp.scheduler)
    comp.seed = int(scene.seed)
    comp.prompt = scene.prompt
    session.comp = comp
    session.source = None                # the motion controls follow the scene's motion
    comp.prompt_auto = not scene.prompt or scene.prompt == auto_prompt(session)
    return notes


__all__ = ["session_library", "add_user_character", "check_name", "motion_info", "MotionInfo", "template_choices",
           "template_for", "fit_assignment", "move_to_track", "set_picks", "set_motion", "auto_prompt",
           "refresh_prompt", "scene_doc", "build_scene", "export_scene", "import_scene", "referenced_files",
           "SceneError", "SCHEDULERS"]
