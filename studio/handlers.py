"""Event handlers: what happens when the creator clicks, drags, types or uploads. Each handler takes the
session (``gr.State``) and the inputs, changes the session through ``studio.compose`` and the services,
and returns the new values of its outputs. No torch and no model code here; problems reach the creator
as ``gr.Error`` with a sentence that says what to do.

Handlers that change the composition return ``(session, *view)`` where ``view`` follows ``SCENE_KEYS`` —
the layout binds those keys to components, so the two never disagree about the order.
"""

import functools
import html
import json
import random
import shutil
from pathlib import Path

import gradio as gr
import numpy as np

from pipelines.pose.openpose import save_motion
from pipelines.scene import MAX_CHARACTERS, SceneError
from pipelines.world.shows import SHOWS, VARIANTS, background

from . import compose
from .components import Card, Chip, ShowGroup, chips_html, library_html
from .services import GenerationCancelled, Services, check_upload
from .session import MAX_FRAMES, MAX_UPLOAD_MB, Clip, SegObject, SegWork, Session, new_session

SCENE_KEYS = ("library", "chips", "motion_source", "template", "json_upload", "video_upload", "text_motion",
              "text_go", "motion_note", "background", "prompt", "frames", "steps", "guidance", "seed", "scheduler", "preview",
              "scene_json", "scene_status", "generate_btn", "save_scene")
RESULT_KEYS = ("video", "sheet", "overlay", "dl_mp4", "dl_gif", "dl_scene", "result_info", "history")
SEG_KEYS = ("canvas", "seg_status")
SOURCES = ("Template", "OpenPose JSON", "Driving video", "Text")
STYLE_FILTERS = ("All", "Cartoon", "Live-action")
PLAIN_BG = "color:#7f7f7f"
SEG_COLOR = np.array([124, 58, 237], np.float32)        # the canvas highlight (not an identity colour)


def user_errors(fn):
    """Turn the ValueErrors services raise (bad input, invalid scene, missing weights) into ``gr.Error``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except SceneError as e:
            raise gr.Error("The scene is not ready:<br>" + "<br>".join("• " + html.escape(p, quote=False) for p in e.problems),
                           title="Check the scene") from None
        except (ValueError, FileNotFoundError) as e:
            raise gr.Error(html.escape(str(e), quote=False), title="Cannot do that") from None
    return wrapper


def error_text(e: Exception) -> str:
    if isinstance(e, SceneError):
        return "; ".join(e.problems)
    return str(e)


class Handlers:
    def __init__(self, services: Services | None = None):
        self.s = services or Services()

    # ---- session ------------------------------------------------------------------------------------------
    @staticmethod
    def session(session: Session | None) -> Session:
        """The tab's session (created here when the State had none yet, e.g. an API client)."""
        return session if isinstance(session, Session) else new_session()

    # ---- views ----------------------------------------------------------------------------------------------
    def library_view(self, session: Session) -> str:
        lib = self.s.characters.library(session)
        query = session.query.strip().lower()
        style = session.style_filter.lower()
        slots = {cid: k for k, cid in enumerate(session.comp.picks)}
        groups: dict[str, ShowGroup] = {}
        user = ShowGroup("Your characters", None, "Cut out of your own images in “Add your own”.", [])
        for sid, show in SHOWS.items():
            groups[sid] = ShowGroup(show.title, show.style, show.blurb, [])
        for c in lib:
            hay = f"{c.name} {c.id} {c.show} {c.meta.get('show_title', '')} {c.style}".lower()
            if query and query not in hay:
                continue
            if style != "all" and c.style != style:
                continue
            card = Card(c.id, c.name, c.style, self.s.characters.thumb(c), slots.get(c.id, -1))
            if compose.is_user_character(session, c.id):
                user.cards.append(card)
            else:
                groups.setdefault(c.show, ShowGroup(c.meta.get("show_title", c.show), c.style, "", [])).cards.append(card)
        return library_html([user, *groups.values()], len(session.comp.picks), MAX_CHARACTERS, query)

    def scene_view(self, session: Session, preview: bool = True) -> tuple:
        """Every scene control's value, in SCENE_KEYS order."""
        comp = session.comp
        lib = self.s.characters.library(session)
        info = compose.motion_info(comp, session.folder)
        chars = [lib.get(c) for c in comp.picks]
        chips = [Chip(k, c.name, c.style, self.s.characters.avatar(c), t)
                 for k, (c, t) in enumerate(zip(chars, comp.assignment))]
        source = session.source or (SOURCES[0] if "template" in comp.motion else SOURCES[3] if "text" in comp.motion
                                    else comp.motion.get("source", SOURCES[1]))
        status, ready = self.status_line(session, len(chars), info.label)
        notes = f"**{html.escape(info.label)}** · {info.tracks} track{'s' * (info.tracks > 1)} · " \
                f"{info.keypoints.shape[0]} frames" + (f" · {html.escape(info.description)}" if info.description else "")
        if source == SOURCES[2]:
            kind, why = self.s.motion.status()
            notes += "\n\n" + ("Upload a video with the people whose moves you want; up to 5 are followed."
                                if kind != "templates" else "⚠ " + html.escape(why))
        text_ok = False
        if source == SOURCES[3]:
            kind, why = self.s.generate.text_motion()
            text_ok = kind == "ready"
            notes += "\n\n" + ("Describe what they do (or leave it empty: the prompt says it), then press "
                                "**Make the motion**; the preview shows the motion model's keypoints for this seed."
                                if kind == "ready" else "⚠ " + html.escape(why))
        doc = compose.scene_doc(session, lib)
        return (
            self.library_view(session),
            chips_html(chips, info.hints(), info.label),
            source,
            gr.update(value=comp.motion.get("template"), visible=source == SOURCES[0]),
            gr.update(visible=source == SOURCES[1]),
            gr.update(visible=source == SOURCES[2]),
            gr.update(value=comp.motion.get("text", ""), visible=source == SOURCES[3], interactive=text_ok),
            gr.update(visible=source == SOURCES[3], interactive=text_ok),
            notes,
            gr.update(value=self._background_value(comp), choices=self.background_choices(comp)),
            comp.prompt,
            comp.frames, comp.steps, comp.guidance, comp.seed, comp.scheduler,
            self.preview(session, [c.name for c in chars]) if preview else gr.skip(),
            json.dumps(doc, indent=2),
            status,
            gr.update(interactive=ready),
            self._saved_scene(session, doc, ready),
        )

    @staticmethod
    def status_line(session: Session, n_chars: int, motion_label: str) -> tuple[str, bool]:
        """The line above Generate: ready (and what will be made) or what to fix; and whether it is ready."""
        try:
            scene = compose.build_scene(session)
        except SceneError as e:
            return "**Not ready yet** — " + "; ".join(html.escape(p, quote=False) for p in e.problems), False
        return (f"**Ready** · {n_chars} character{'s' * (n_chars > 1)} · {html.escape(motion_label)} · "
                f"{scene.frames} frames at {scene.width}×{scene.height} · {scene.sampler['steps']} steps · "
                f"seed {scene.seed}"), True

    @staticmethod
    def _saved_scene(session: Session, doc: dict, ready: bool):
        """The "Save scene" button's file: scene.json, or scene.zip with the files it references."""
        if not ready:
            return gr.update(value=None, interactive=False, label="⬇ Save scene")
        folder = session.folder / "saved"
        shutil.rmtree(folder, ignore_errors=True)
        path = compose.export_scene(doc, session.folder, folder)
        return gr.update(value=str(path), interactive=True, label=f"⬇ Save scene ({path.name})")

    def preview(self, session: Session, names: list[str]):
        """The pose preview; re-rendered only when something it shows changed (else the player keeps playing)."""
        comp = session.comp
        key = json.dumps([comp.motion, comp.assignment, names, comp.frames, comp.fps, comp.background], sort_keys=True)
        if session.preview_key == key and session.preview_path is not None:
            return gr.skip()
        path = self.s.motion.preview(session, names, self._background_image(session))
        session.preview_key, session.preview_path = key, path
        return str(path)

    @staticmethod
    def _background_value(comp) -> str:
        bg = comp.background or {}
        if "show" in bg:
            return f"{bg['show']}:{bg.get('variant', 0)}"
        if "color" in bg:
            return f"color:{bg['color']}"
        return "image"

    @staticmethod
    def _background_image(session: Session) -> np.ndarray | None:
        bg = session.comp.background or {}
        if "show" in bg:
            return background(bg["show"], int(bg.get("variant", 0)), 256, 256)
        if "image" in bg:
            from PIL import Image
            return np.asarray(Image.open(session.folder / bg["image"]).convert("RGB"))
        if "color" in bg:
            rgb = [int(bg["color"][i:i + 2], 16) for i in (1, 3, 5)]
            return np.broadcast_to(np.array(rgb, np.uint8), (256, 256, 3)).copy()
        return None

    @staticmethod
    def background_choices(comp=None) -> list[tuple[str, str]]:
        out = [(f"{s.title} · set {v + 1} ({s.style})", f"{sid}:{v}") for sid, s in SHOWS.items() for v in range(VARIANTS)]
        out.append(("Plain grey", PLAIN_BG))
        bg = (comp.background if comp is not None else None) or {}
        if "color" in bg and f"color:{bg['color']}" != PLAIN_BG:
            out.append((f"Plain {bg['color']}", f"color:{bg['color']}"))
        if "image" in bg:
            out.append(("Image from the opened scene", "image"))
        return out

    def _changed(self, session: Session, notes: list[str] | None = None) -> tuple:
        notes = list(notes or [])
        compose.refresh_prompt(session)
        if "text" in session.comp.motion:
            notes += self._text_keypoints(session)
        for n in notes:
            gr.Info(n, duration=6)
        session.touch()
        return (session, *self.scene_view(session))

    def _text_keypoints(self, session: Session) -> list[str]:
        """Keep a text motion's keypoints (what the preview shows and the tracks come from) in step with the
        cast, the assignment, the prompt, the frames and the seed. Without a motion model the scene falls
        back to a template, and says so."""
        comp = session.comp
        if not comp.picks:
            return []
        key = json.dumps([comp.motion.get("text"), comp.prompt, comp.picks, comp.assignment, comp.frames, comp.seed,
                          comp.width, comp.height], sort_keys=True)
        if comp.motion.get("key") == key and "preview" in comp.motion:
            return []
        state, why = self.s.generate.text_motion()
        if state != "ready":
            text = comp.motion.get("text") or comp.prompt
            name = compose.template_for(len(comp.picks), None)
            compose.set_motion(session, {"template": name})
            session.source = None
            compose.refresh_prompt(session)
            return [f"This scene's motion is text (“{text}”), and {why[0].lower() + why[1:]} Showing {name} instead."]
        scene = compose.build_scene(session, by_id=True)
        kp, notes = self.s.generate.text_keypoints(scene, compose.session_library(session))
        path = session.new_path("motions", ".json", "text")
        save_motion(path, kp, scene.width, scene.height, fps=scene.fps, name="text")
        words = comp.motion.get("text") or "from the prompt"
        comp.motion.update(preview=path.relative_to(session.folder).as_posix(), key=key,
                           label=f"text: {words[:40]}")
        return notes

    # ---- page load -------------------------------------------------------------------------------------
    @user_errors
    def load(self, session: Session | None) -> tuple:
        session = self.session(session)
        if not session.comp.picks and not session.started:
            # a first visit opens on a crossover to play with: a cartoon and a live-action character swapping
            session.started = True
            compose.set_picks(session, ["pip", "dora"])
            session.comp.background = {"show": "meadow-mischief", "variant": 0}
        return self._changed(session)

    def engines_html(self) -> str:
        labels = {"segmenter": "Segmenter", "poses": "Poses", "model": "Model", "text": "Text motion", "cce": "CCE",
                  "overlay": "IC overlay"}
        pills = []
        engines = self.s.engines()
        for key, (state, text) in engines.items():
            kind = "ok" if state in ("sam2", "ready", "openpose", "dwpose") else "fallback" \
                if state in ("fallback", "templates") else "off"
            short = {"sam2": "SAM2", "fallback": "offline click segmenter", "templates": "templates & JSON",
                     "openpose": "OpenPose", "dwpose": "DWPose", "ready": "ready", "missing": "not available"}.get(state, state)
            pills.append(f'<span class="xo-pill xo-{kind}" title="{html.escape(text)}"><i></i><b>{labels[key]}</b> '
                         f'{html.escape(short)}</span>')
        details = "".join(f"<li><b>{labels[k]}:</b> {html.escape(t)}</li>" for k, (_, t) in engines.items())
        return f'<div class="xo-engines">{"".join(pills)}</div><details class="xo-engine-details">' \
               f'<summary>Engine details</summary><ul>{details}</ul></details>'

    # ---- library ------------------------------------------------------------------------------------------
    @user_errors
    def search(self, session: Session, query: str, style: str) -> str:
        session = self.session(session)
        session.query, session.style_filter = query or "", style or "All"
        return self.library_view(session)

    @user_errors
    def pick(self, session: Session, evt: gr.EventData) -> tuple:
        session = self.session(session)
        cid = str(getattr(evt, "id", "") or "")
        lib = self.s.characters.library(session)
        c = lib.get(cid, "character")
        picks = list(session.comp.picks)
        if c.id in picks:
            picks.remove(c.id)
        elif len(picks) >= MAX_CHARACTERS:
            raise gr.Error(f"A scene holds at most {MAX_CHARACTERS} characters; remove one (× on its chip) first.",
                           title="Cast is full")
        else:
            picks.append(c.id)
        return self._changed(session, compose.set_picks(session, picks))

    @user_errors
    def remove(self, session: Session, evt: gr.EventData) -> tuple:
        session = self.session(session)
        slot = int(getattr(evt, "slot", -1))
        picks = list(session.comp.picks)
        if not 0 <= slot < len(picks):
            raise ValueError(f"slot: {slot} is not a character of this scene")
        del picks[slot]
        return self._changed(session, compose.set_picks(session, picks))

    # ---- scene -------------------------------------------------------------------------------------------
    @user_errors
    def reorder(self, session: Session, evt: gr.EventData) -> tuple:
        """A chip was dropped on a track: that character performs it now (the previous performer takes the
        dropped chip's old track)."""
        session = self.session(session)
        comp = session.comp
        info = compose.motion_info(comp, session.folder)
        comp.assignment = compose.move_to_track(comp.assignment, int(getattr(evt, "slot", -1)),
                                                int(getattr(evt, "track", -1)), info.tracks)
        return self._changed(session)

    @user_errors
    def choose_source(self, session: Session, source: str) -> tuple:
        session = self.session(session)
        if source not in SOURCES:
            raise ValueError(f"motion source: {source!r} is not one of {', '.join(SOURCES)}")
        session.source = source
        if source == SOURCES[0] and "template" not in session.comp.motion:
            compose.set_motion(session, {"template": compose.template_for(max(1, len(session.comp.picks)), None)})
        return self._changed(session)

    @user_errors
    def choose_template(self, session: Session, name: str) -> tuple:
        session = self.session(session)
        if not name:
            raise ValueError("motion: pick a template from the list")
        compose.set_motion(session, {"template": name})
        session.source = SOURCES[0]
        return self._changed(session)

    @user_errors
    def make_text_motion(self, session: Session, text: str, prompt: str | None = None) -> tuple:
        """Text mode: the motion model moves the cast as the words (or, when they are empty, the prompt) say."""
        session = self.session(session)
        state, why = self.s.generate.text_motion()
        if state != "ready":
            raise ValueError(why)
        text = (text or "").strip()
        if len(text) > 300:
            raise ValueError(f"text: {len(text)} characters; describe the motion in at most 300")
        if not session.comp.picks:
            raise ValueError("characters: pick the cast first; the motion model moves the characters you chose")
        if prompt is not None and prompt != session.comp.prompt:
            session.comp.prompt, session.comp.prompt_auto = prompt, False
        n = len(session.comp.picks)
        session.comp.motion = {"text": text}
        session.comp.assignment = compose.fit_assignment(session.comp.assignment, n, n)
        session.source = SOURCES[3]
        return self._changed(session)

    @user_errors
    def upload_json(self, session: Session, path: str | None) -> tuple:
        session = self.session(session)
        motion = self.s.motion.upload_openpose(session, path)
        compose.set_motion(session, {**motion, "source": SOURCES[1]})
        session.source = SOURCES[1]
        return self._changed(session, [f"Motion from {motion['label']}: "
                                       f"{compose.motion_info(session.comp, session.folder).tracks} track(s)."])

    @user_errors
    def upload_video(self, session: Session, path: str | None, progress=gr.Progress()) -> tuple:
        session = self.session(session)
        progress(0, desc="Reading the video")
        motion = self.s.motion.extract_from_video(
            session, path, fps=session.comp.fps,
            progress=lambda i, n: progress(i / n, desc=f"Finding poses: frame {i} of {n}"))
        compose.set_motion(session, {**motion, "source": SOURCES[2]})
        session.source = SOURCES[2]
        session.comp.frames = int(min(MAX_FRAMES, compose.motion_info(session.comp, session.folder).keypoints.shape[0]))
        return self._changed(session, [f"Poses extracted from {motion['label']}."])

    @user_errors
    def choose_background(self, session: Session, value: str) -> tuple:
        session = self.session(session)
        if value == "image":
            if "image" not in (session.comp.background or {}):
                raise ValueError("background: no image background in this scene; pick a show's set or plain grey")
        elif value and value.startswith("color:"):
            session.comp.background = {"color": value.split(":", 1)[1]}
        elif value and ":" in value:
            show, variant = value.rsplit(":", 1)
            if show not in SHOWS:
                raise ValueError(f"background: unknown show {show!r}")
            session.comp.background = {"show": show, "variant": int(variant)}
        else:
            raise ValueError("background: pick a set from the list")
        return self._changed(session)

    @user_errors
    def edit_prompt(self, session: Session, text: str) -> tuple:
        """The creator typed in the prompt: it is theirs now (no more refilling until they ask)."""
        session = self.session(session)
        session.comp.prompt = text or ""
        session.comp.prompt_auto = session.comp.prompt == compose.auto_prompt(session)
        status, ready = self.status_line(session, len(session.comp.picks),
                                         compose.motion_info(session.comp, session.folder).label)
        return session, json.dumps(compose.scene_doc(session), indent=2), status, gr.update(interactive=ready)

    @user_errors
    def refill_prompt(self, session: Session) -> tuple:
        session = self.session(session)
        session.comp.prompt_auto = True
        return self._changed(session)

    def _apply_controls(self, session: Session, frames, steps, guidance, seed, scheduler) -> None:
        comp = session.comp
        problems = []

        def integer(name, v, lo, hi):
            try:
                f = float(v)
            except (TypeError, ValueError):
                problems.append(f"{name}: {v!r} is not a number")
                return None
            if not f.is_integer() or not lo <= f <= hi:
                problems.append(f"{name}: {v!r} must be a whole number in {lo}..{hi}")
                return None
            return int(f)
        frames = integer("frames", frames, 1, MAX_FRAMES)
        steps = integer("steps", steps, 1, 200)
        seed = integer("seed", seed, 0, 2**63 - 1)
        try:
            guidance = float(guidance)
            if not 0 <= guidance <= 20:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"guidance: {guidance!r} must be a number in 0..20")
            guidance = None
        if scheduler not in compose.SCHEDULERS:
            problems.append(f"scheduler: {scheduler!r} is not one of {', '.join(compose.SCHEDULERS)}")
        if problems:
            raise ValueError("; ".join(problems))
        comp.frames, comp.steps, comp.guidance, comp.seed, comp.scheduler = frames, steps, guidance, seed, scheduler

    @user_errors
    def set_controls(self, session: Session, frames, steps, guidance, seed, scheduler) -> tuple:
        session = self.session(session)
        self._apply_controls(session, frames, steps, guidance, seed, scheduler)
        return self._changed(session)

    @user_errors
    def random_seed(self, session: Session) -> tuple:
        session = self.session(session)
        session.comp.seed = random.randrange(2**31)
        return self._changed(session)

    # ---- generate -------------------------------------------------------------------------------------
    @user_errors
    def validate_generate(self, session: Session, prompt, frames, steps, guidance, seed, scheduler) -> Session:
        """Runs before ``generate`` (not queued): takes the controls' current values and refuses an invalid
        scene with the list of problems, so nothing waits in the queue for nothing."""
        session = self.session(session)
        if prompt is not None and prompt != session.comp.prompt:
            session.comp.prompt, session.comp.prompt_auto = prompt, False
        self._apply_controls(session, frames, steps, guidance, seed, scheduler)
        compose.build_scene(session)
        kind, why = self.s.generate.status()
        if kind == "missing":
            raise ValueError(why)
        return session

    @user_errors
    def generate(self, session: Session, progress=gr.Progress(track_tqdm=True)) -> tuple:
        session = self.session(session)
        for note in self._text_keypoints(session) if "text" in session.comp.motion else []:
            gr.Info(note)                                      # a text motion's keypoints for these very settings
        scene = compose.build_scene(session, by_id=True)     # the session's characters with their CCE tokens
        doc = compose.scene_doc(session)
        progress(0, desc="Loading the model")
        try:
            gen = self.s.generate.generate(scene, session.id, compose.session_library(session))
        except GenerationCancelled:
            gr.Info("Generation cancelled.")
            return (session, *[gr.skip()] * len(RESULT_KEYS))
        progress(1.0, desc="Writing the video")
        clip = self._save_clip(session, scene, doc, gen)
        session.selected_clip = clip.index
        return (session, *self.result_view(session, clip))

    def _save_clip(self, session: Session, scene, doc: dict, gen) -> Clip:
        from PIL import Image
        session.clip_counter += 1
        n = session.clip_counter
        folder = session.new_path("clips", "", f"{n:03d}")
        folder.mkdir(parents=True)
        files = self.s.generate.write(gen, folder, f"crossover-{n:03d}")
        scene_file = compose.export_scene(doc, session.folder, folder)
        overlay = self._overlay(session, gen, folder / f"crossover-{n:03d}-ic.mp4")
        thumb = folder / "thumb.png"
        Image.fromarray(gen.frames[len(gen.frames) // 2]).save(thumb)
        lib = self.s.characters.library(session)
        names = ", ".join(lib.get(c).name for c in session.comp.picks)
        label = f"#{n} · {names} · {compose.motion_info(session.comp, session.folder).label}"
        clip = Clip(n, folder, files["video"], files["gif"], files["sheet"], overlay and overlay.video, scene_file,
                    thumb, label, gen.seconds, doc, overlay.accuracy if overlay else None)
        session.add_clip(clip)
        for w in gen.warnings:
            gr.Info(w)
        return clip

    def _overlay(self, session: Session, gen, out: Path):
        """The IC overlay of a fresh clip (None when the evaluation package is missing); a clip is never lost
        because its overlay failed — the creator is told why instead."""
        comp = session.comp
        keypoints = None
        try:
            scene = compose.build_scene(session)
            if "text" in comp.motion:
                info = compose.motion_info(comp, session.folder)
                from pipelines.pose.openpose import rescale
                keypoints = rescale(info.keypoints, (info.width, info.height), (scene.width, scene.height))
                keypoints = keypoints[: len(gen.frames)]
            return self.s.evaluate.overlay(gen.frames, scene, gen.fps, out, keypoints)
        except (ValueError, FileNotFoundError) as e:
            gr.Warning(f"No IC overlay for this clip: {e}")
            return None

    def result_view(self, session: Session, clip: Clip) -> tuple:
        scene_name = clip.scene_file.name
        info = (f"**Clip #{clip.index}** — {clip.scene_doc['frames']} frames at {clip.scene_doc['width']}×"
                f"{clip.scene_doc['height']} · {clip.scene_doc['sampler']['steps']} steps · seed {clip.scene_doc['seed']}"
                f" · made in {clip.seconds:.1f} s")
        if clip.ic is not None:
            info += (f" · IC accuracy **{clip.ic:.2f}** (share of track-frames where the probe sees the assigned "
                     "character; see the IC overlay tab)" if clip.ic == clip.ic else " · IC: no track could be judged")
        return (
            str(clip.video),
            str(clip.sheet) if clip.sheet else None,
            str(clip.overlay) if clip.overlay else None,
            gr.update(value=str(clip.video), interactive=True),
            gr.update(value=str(clip.gif), interactive=True),
            gr.update(value=str(clip.scene_file), label=f"⬇ {scene_name}", interactive=True),
            info,
            self.history_view(session),
        )

    def history_view(self, session: Session) -> list:
        return [(str(c.thumb), c.label) for c in reversed(session.history)]

    @user_errors
    def cancel(self, session: Session) -> None:
        session = self.session(session)
        self.s.generate.cancel(session.id)
        gr.Info("Cancelling after the current step…")

    @user_errors
    def select_clip(self, session: Session, evt: gr.SelectData) -> tuple:
        session = self.session(session)
        clips = list(reversed(session.history))
        if not 0 <= evt.index < len(clips):
            raise ValueError("history: that clip is no longer kept")
        clip = clips[evt.index]
        session.selected_clip = clip.index
        return (session, *self.result_view(session, clip))

    @user_errors
    def restore_clip(self, session: Session) -> tuple:
        """Open the selected history clip's scene in the composer (the whole composition comes back)."""
        session = self.session(session)
        clip = next((c for c in session.history if c.index == session.selected_clip), None)
        if clip is None:
            raise ValueError("history: pick a clip in the history first")
        notes = compose.import_scene(session, clip.scene_file)
        return self._changed(session, [f"Clip #{clip.index}'s scene is open.", *notes])

    # ---- open a scene -------------------------------------------------------------------------------------
    @user_errors
    def open_scene(self, session: Session, path: str | None) -> tuple:
        session = self.session(session)
        if not path:
            raise ValueError("scene: upload a scene.json or scene.zip")
        notes = compose.import_scene(session, Path(path))
        return self._changed(session, ["Scene opened.", *notes])

    @user_errors
    def open_example(self, session: Session, name: str) -> tuple:
        from pipelines.paths import scenes_dir
        session = self.session(session)
        path = scenes_dir() / f"{name}.json"
        if not name or not path.is_file():
            raise ValueError(f"example: unknown example scene {name!r}")
        notes = compose.import_scene(session, path)
        return self._changed(session, [f"Example “{name}” opened.", *notes])

    @staticmethod
    def example_choices() -> list[str]:
        from pipelines.paths import scenes_dir
        return sorted(p.stem for p in scenes_dir().glob("*.json"))

    # ---- add your own -------------------------------------------------------------------------------------
    @user_errors
    def seg_upload(self, session: Session, path: str | None) -> tuple:
        session = self.session(session)
        work_path, image = self.s.characters.load_image(session, path)
        session.seg = SegWork(work_path, work_path.stem, image.shape[1], image.shape[0])
        session.seg_image = image
        return session, self.seg_canvas(session), self.seg_status(session)

    def _seg_image(self, session: Session) -> np.ndarray:
        if session.seg_image is None:
            from PIL import Image
            session.seg_image = np.asarray(Image.open(session.seg.image_path).convert("RGB"))
        return session.seg_image

    @user_errors
    def seg_click(self, session: Session, mode: str, evt: gr.SelectData) -> tuple:
        """A click on the canvas: add it to the current character's clicks and segment again (feeding the
        previous low-resolution logits back in, as SAM2 refines)."""
        session = self.session(session)
        work = session.seg
        if work is None:
            raise ValueError("image: upload an image first, then click on the character")
        x, y = (int(round(v)) for v in evt.index[:2])
        if not (0 <= x < work.width and 0 <= y < work.height):
            raise ValueError(f"click: ({x}, {y}) is outside the {work.width}×{work.height} image")
        obj = work.current
        label = 0 if (mode or "").lower().startswith(("exclude", "remove", "−", "-")) else 1
        if not obj.points and label == 0:
            raise ValueError("click: start with an Include click on the character; Exclude clicks trim it afterwards")
        obj.history.append((obj.mask, obj.logits, obj.score))
        obj.points.append((x, y))
        obj.labels.append(label)
        try:
            obj.mask, obj.logits, obj.score = self.s.segment.predict(
                work.key, lambda: self._seg_image(session), obj.points, obj.labels, obj.logits)
        except Exception:
            obj.points.pop(), obj.labels.pop(), obj.history.pop()
            raise
        return session, self.seg_canvas(session), self.seg_status(session)

    @user_errors
    def seg_undo(self, session: Session) -> tuple:
        session = self.session(session)
        if session.seg is None or not session.seg.current.points:
            raise ValueError("undo: there is no click to undo")
        obj = session.seg.current
        obj.points.pop()
        obj.labels.pop()
        obj.mask, obj.logits, obj.score = obj.history.pop()
        return session, self.seg_canvas(session), self.seg_status(session)

    @user_errors
    def seg_reset(self, session: Session) -> tuple:
        session = self.session(session)
        if session.seg is not None:
            session.seg.objects[-1] = SegObject()
        return session, self.seg_canvas(session), self.seg_status(session)

    @user_errors
    def seg_add(self, session: Session, name: str, style: str) -> tuple:
        """Save the current cut-out as a character of this session, pick it, and start the next character
        on the same image."""
        session = self.session(session)
        work = session.seg
        if work is None or work.current.mask is None or not work.current.mask.any():
            raise ValueError("mask: click on the character in your image first, so there is something to cut out")
        c = self.s.characters.add(session, self._seg_image(session), work.current.mask, name, style)
        work.saved.append((work.current.mask, c.name))
        work.objects.append(SegObject())
        notes = [f"{c.name} is in your characters.", *self._embed(c)]
        if len(session.comp.picks) < MAX_CHARACTERS:
            notes += compose.set_picks(session, [*session.comp.picks, c.id])
        else:
            notes.append(f"The cast is full ({MAX_CHARACTERS}); pick {c.name} from the library after removing someone.")
        out = self._changed(session, notes)
        return (*out, self.seg_canvas(session), self.seg_status(session), "",
                gr.update(choices=self.learn_choices(session), value=c.id))

    def _embed(self, c) -> list[str]:
        """A new character's CCE tokens from its image, at once (when CCE and the generator are here)."""
        state, why = self.s.cce.status()
        if state != "ready":
            return []
        try:
            _, seconds = self.s.cce.embed(c)
        except ValueError as e:
            return [f"{c.name} has no CCE tokens ({e}); the generator reads it from its image."]
        took = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
        return [f"{c.name} got its CCE tokens from its image in {took}; “Learn” refines them."]

    def learn_choices(self, session: Session | None) -> list[tuple[str, str]]:
        if not isinstance(session, Session):
            return []
        return [(c.name, c.id) for c in self.s.characters.library(session) if compose.is_user_character(session, c.id)]

    def learn_picker(self, session: Session | None, current: str | None = None):
        """The picker's choices, fresh (characters come from cutting out and from opened scenes)."""
        choices = self.learn_choices(session)
        ids = [cid for _, cid in choices]
        return gr.update(choices=choices, value=current if current in ids else (ids[-1] if ids else None))

    @user_errors
    def learn(self, session: Session, cid: str | None, progress=gr.Progress()) -> str:
        """The optional CCE fit of one of the session's characters, with its real progress; Stop ends it and
        the character keeps its earlier tokens."""
        session = self.session(session)
        state, why = self.s.cce.status()
        if state != "ready":
            raise ValueError(why)
        if not cid or not compose.is_user_character(session, cid):
            raise ValueError("character: pick one of your characters (cut one out above first)")
        c = self.s.characters.library(session).get(cid)
        progress(0, desc=f"Learning {c.name}: loading the generator")
        try:
            record = self.s.cce.learn(c, session.id, progress=lambda f, msg: progress(f, desc=msg))
        except GenerationCancelled:
            gr.Info(f"Stopped; {c.name} keeps the tokens it had.")
            return f"Learning {html.escape(c.name)} was stopped; it keeps the tokens it had."
        first, last = record.get("diffusion_first"), record.get("diffusion_last")
        loss = f" · diffusion loss {first:.3f} → {last:.3f}" if first is not None and last is not None else ""
        return (f"**{html.escape(c.name)}** learned: {record['steps']} steps in {record['seconds']:.0f} s{loss}. "
                "The next generation uses its new tokens.")

    def learn_ready(self) -> tuple:
        """Learn is offered only when CCE and the generator are here; otherwise the panel says why."""
        state, why = self.s.cce.status()
        return gr.update(interactive=state == "ready"), ("" if state == "ready" else "⚠ " + html.escape(why))

    @user_errors
    def stop_learning(self, session: Session) -> None:
        self.s.cce.cancel(self.session(session).id)

    def seg_canvas(self, session: Session):
        """The uploaded image with the current mask highlighted, earlier characters outlined, and the clicks."""
        import cv2
        if session.seg is None:
            return None
        img = self._seg_image(session).astype(np.float32)
        work = session.seg
        r = max(4, round(max(work.width, work.height) / 110))
        for m, _ in work.saved:
            img[m] = img[m] * 0.55 + 255 * 0.45 * np.array([0.85, 0.85, 0.85])
        obj = work.current
        if obj.mask is not None and obj.mask.any():
            img[obj.mask] = img[obj.mask] * 0.5 + SEG_COLOR * 0.5
        out = np.clip(img, 0, 255).astype(np.uint8)
        for m, name in work.saved:
            cs, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, cs, -1, (90, 90, 90), max(1, r // 3), cv2.LINE_AA)
            ys, xs = np.nonzero(m)
            cv2.putText(out, name, (int(xs.min()), max(12, int(ys.min()) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        r / 10, (40, 40, 40), max(1, r // 4), cv2.LINE_AA)
        if obj.mask is not None and obj.mask.any():
            cs, _ = cv2.findContours(obj.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, cs, -1, (255, 255, 255), max(2, r // 2), cv2.LINE_AA)
            cv2.drawContours(out, cs, -1, tuple(int(v) for v in SEG_COLOR), max(1, r // 4), cv2.LINE_AA)
        for (x, y), lab in zip(obj.points, obj.labels):
            color = (34, 197, 94) if lab else (239, 68, 68)
            cv2.circle(out, (x, y), r + 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, (x, y), r, color, -1, cv2.LINE_AA)
            cv2.line(out, (x - r // 2, y), (x + r // 2, y), (255, 255, 255), max(1, r // 3), cv2.LINE_AA)
            if lab:
                cv2.line(out, (x, y - r // 2), (x, y + r // 2), (255, 255, 255), max(1, r // 3), cv2.LINE_AA)
        return out

    def seg_status(self, session: Session | None) -> str:
        work = session.seg if isinstance(session, Session) else None
        if work is None:
            return "Upload an image, then click on a character: **Include** clicks add to the cut-out, **Exclude** clicks trim it."
        obj = work.current
        done = f" · {len(work.saved)} character{'s' * (len(work.saved) != 1)} added from this image" if work.saved else ""
        if not obj.points:
            return f"Click on the {'next ' if work.saved else ''}character you want to cut out.{done}"
        share = 100 * obj.mask.mean() if obj.mask is not None else 0
        inc, exc = sum(obj.labels), len(obj.labels) - sum(obj.labels)
        return (f"{inc} include / {exc} exclude click{'s' * (exc != 1)} · mask covers {share:.1f}% of the image · "
                f"score {obj.score:.2f}{done}. Name it and press **Add to library**.")

    # ---- API endpoints ------------------------------------------------------------------------------------
    @user_errors
    def api_generate(self, scene_json: str, bundle: str | None = None) -> tuple:
        """Generate a clip from a Scene JSON document (and, when it references images or keypoint files, a
        zip holding them). Returns the mp4 and the validated scene."""
        from pipelines.scene import Scene
        session = new_session()
        base, doc = session.folder / "imports", None
        if bundle:
            scene_file = compose.unpack_zip(session, check_upload(bundle, "bundle", MAX_UPLOAD_MB))
            base, doc = scene_file.parent, json.loads(scene_file.read_text())
        if scene_json and scene_json.strip():
            try:
                doc = json.loads(scene_json)
            except ValueError as e:
                raise ValueError(f"scene_json: not valid JSON ({e}); give a Scene JSON document (README, 'Scene JSON')") from None
        if doc is None:
            raise ValueError("scene_json: give a Scene JSON document, or a bundle zip holding scene.json")
        library = self.s.characters.library(session)
        scene = Scene.from_dict(doc, base, library)
        compose.check_prompt(scene.prompt, library)
        gen = self.s.generate.generate(scene, "api-" + session.id)
        files = self.s.generate.write(gen, session.folder / "clips", "crossover")
        return str(files["video"]), scene.to_dict()

    @user_errors
    def api_segment(self, image: str | None, points: str) -> tuple:
        """Segment one character in an image from clicks: ``points`` is JSON ``[[x, y, label], …]`` (label 1
        = include, 0 = exclude) in the image's pixels. Returns the mask PNG, the RGBA cut-out and the score."""
        from PIL import Image
        session = new_session()
        try:
            pts = json.loads(points)
            if not isinstance(pts, list) or not pts:
                raise ValueError
            xy = [(int(p[0]), int(p[1])) for p in pts]
            labels = [int(p[2]) if len(p) > 2 else 1 for p in pts]
        except (ValueError, TypeError, IndexError, KeyError):
            raise ValueError('points: give JSON like [[120, 80, 1], [40, 30, 0]] — x, y in pixels and 1 = include, '
                             "0 = exclude") from None
        path, img = self.s.characters.load_image(session, image)
        scale = max(img.shape[:2]) / max(Image.open(image).size)   # the working copy may be scaled down
        xy = [(int(x * scale), int(y * scale)) for x, y in xy]
        mask, _, score = self.s.segment.predict(path.stem, img, xy, labels)
        mask_path = session.folder / "uploads" / "mask.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
        cut_path = session.folder / "uploads" / "cutout.png"
        Image.fromarray(self.s.segment.cutout(img, mask)).save(cut_path)
        return str(mask_path), str(cut_path), score

