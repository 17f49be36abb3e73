"""Per-session state and files. One ``Session`` lives in each browser tab's ``gr.State``; it owns a folder
of its own (unique name under the sessions root) for uploads, the user's characters, motions and clips,
and the composition being edited. Also owns the limits on what a session may upload or keep, and the
sweep that removes folders of sessions that ended long ago.

    <root>/sess-<32 hex>/
        characters/<id>/       reference.png, mask.png, character.json  (the library's folder layout)
        uploads/               images and videos as uploaded (after the limit checks)
        motions/               keypoint JSON files (uploaded or extracted from video)
        previews/              pose-preview videos (only the latest few kept)
        clips/<n>-<hex>/       one generation: video, gif, sheet, IC overlay, scene.json / scene.zip
        imports/<hex>/         unpacked scene zips
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---- limits (one place; the UI quotes them in its messages) ---------------------------------------------
MAX_UPLOAD_MB = 25                 # any single upload (also enforced by the server: launch(max_file_size=…))
MAX_IMAGE_PIXELS = 16_000_000      # an uploaded image; bigger ones are refused before decoding
WORK_IMAGE_SIDE = 1024             # uploaded images are scaled down to this longest side for segmentation
MAX_VIDEO_SECONDS = 20.0           # a driving video
MAX_VIDEO_FRAMES = 64              # frames sampled from a driving video
MAX_JSON_MB = 5                    # an OpenPose JSON / scene JSON upload
MAX_HISTORY = 12                   # clips kept per session (older clips' files are deleted)
MAX_FRAMES = 64                    # frames the studio lets a creator ask for
SESSION_MAX_AGE_S = 6 * 3600       # session folders untouched this long are swept


def sessions_root() -> Path:
    """Where session folders live: ``CROSSOVER_SESSIONS`` or ``<system temp>/crossover-studio``."""
    root = Path(os.environ.get("CROSSOVER_SESSIONS") or Path(tempfile.gettempdir()) / "crossover-studio")
    root.mkdir(parents=True, exist_ok=True)
    return root


_sweep_lock = threading.Lock()
_last_sweep = 0.0
SWEEP_EVERY_S = 600


def sweep_sessions(root: Path | None = None, max_age_s: float = SESSION_MAX_AGE_S, now: float | None = None) -> list[Path]:
    """Delete session folders whose newest file is older than ``max_age_s``; returns what was removed."""
    root = root or sessions_root()
    now = time.time() if now is None else now
    removed = []
    with _sweep_lock:
        for d in root.glob("sess-*"):
            if not d.is_dir():
                continue
            try:
                newest = max([d.stat().st_mtime] + [p.stat().st_mtime for p in d.rglob("*")])
            except FileNotFoundError:          # being deleted by its own session right now
                continue
            if now - newest > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    return removed


@dataclass
class SegObject:
    """One character being cut out of the uploaded image: its clicks and the latest prediction."""
    points: list[tuple[int, int]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)       # 1 include, 0 exclude
    mask: Any = None                                      # (H, W) bool or None
    logits: Any = None                                    # (1, 256, 256) float32, fed back as mask_input
    score: float = 0.0
    history: list[tuple[Any, Any, float]] = field(default_factory=list)   # (mask, logits, score) before each click


@dataclass
class SegWork:
    """The image on the "Add your own" canvas and the characters cut from it so far."""
    image_path: Path                                      # working copy (≤ WORK_IMAGE_SIDE), RGB PNG
    key: str                                              # unique per upload: the segmenter re-embeds on change
    width: int
    height: int
    objects: list[SegObject] = field(default_factory=lambda: [SegObject()])
    saved: list[tuple[Any, str]] = field(default_factory=list)   # (mask, name) of characters already added

    @property
    def current(self) -> SegObject:
        return self.objects[-1]


@dataclass
class Composition:
    """What the scene controls show; ``studio.scenes`` turns it into a ``pipelines.scene.Scene``."""
    picks: list[str] = field(default_factory=list)        # character ids in slot order (library or user)
    assignment: list[int] = field(default_factory=list)   # slot → motion track
    motion: dict = field(default_factory=lambda: {"template": "swap-2"})   # template | keypoints (+ "label")
    background: dict | None = field(default_factory=lambda: {"show": "meadow-mischief", "variant": 0})
    prompt: str = ""
    prompt_auto: bool = True                              # refill the prompt when choices change
    frames: int = 16
    fps: float = 8
    width: int = 128
    height: int = 128
    steps: int = 20
    guidance: float = 2.5
    scheduler: str = "ddim"
    seed: int = 0


@dataclass
class Clip:
    """One finished generation in the session's history."""
    index: int
    folder: Path
    video: Path
    gif: Path | None
    sheet: Path | None
    overlay: Path | None
    scene_file: Path                                      # scene.json, or scene.zip when it references files
    thumb: Path
    label: str
    seconds: float
    scene_doc: dict
    ic: float | None = None                               # IC accuracy of the overlay (nan: nothing judged)


class Session:
    """A browser tab's state. Cheap to create (a folder and a few lists); never holds models."""

    def __init__(self, root: Path | None = None):
        self.id = uuid.uuid4().hex
        self.root = Path(root) if root else sessions_root()
        self.folder = self.root / f"sess-{self.id}"
        for sub in ("characters", "uploads", "motions", "previews", "clips", "imports"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.created = time.time()
        self.comp = Composition()
        self.seg: SegWork | None = None
        self.history: list[Clip] = []
        self.clip_counter = 0
        self.selected_clip: int | None = None
        # what the controls show that is not part of the scene
        self.query = ""                       # library search
        self.style_filter = "All"
        self.source: str | None = None        # motion source tab; None = follow the motion
        self.started = False                  # the first page load seeds a starter cast
        self.preview_key: str | None = None   # what the current pose preview shows
        self.preview_path: Path | None = None
        self.seg_image = None                 # decoded working image of ``seg`` (cache)

    def new_path(self, sub: str, suffix: str, stem: str = "") -> Path:
        """A fresh, unique file name inside the session folder (never reused, so browsers never show a
        stale cached file)."""
        name = f"{stem + '-' if stem else ''}{uuid.uuid4().hex[:12]}{suffix}"
        return self.folder / sub / name

    def touch(self) -> None:
        os.utime(self.folder)

    def add_clip(self, clip: Clip) -> list[Clip]:
        """Record a clip; drop (and delete) the oldest beyond MAX_HISTORY. Returns the dropped clips."""
        self.history.append(clip)
        dropped = self.history[:-MAX_HISTORY]
        self.history = self.history[-MAX_HISTORY:]
        for c in dropped:
            shutil.rmtree(c.folder, ignore_errors=True)
        return dropped

    def prune_previews(self, keep: int = 4) -> None:
        files = sorted((self.folder / "previews").glob("*"), key=lambda p: p.stat().st_mtime)
        for p in files[:-keep]:
            p.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __deepcopy__(self, memo):
        # gr.State deep-copies values it is given; a session is an identity (its folder), never a value
        return self


def new_session() -> Session:
    """The ``gr.State`` factory: sweep stale folders (at most every SWEEP_EVERY_S), then start a session."""
    global _last_sweep
    if time.time() - _last_sweep > SWEEP_EVERY_S:
        _last_sweep = time.time()
        sweep_sessions()
    return Session()


def end_session(session: Session | None) -> None:
    """The ``gr.State`` delete callback: the tab closed or the state expired."""
    if isinstance(session, Session):
        session.close()
