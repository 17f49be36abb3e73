"""Studio handlers without a browser: sessions and their files, the cast, drag-and-drop reassignment and
the pose preview, motion sources, prompt filling, controls, scene.json / scene.zip round trips, upload
limits and the errors creators see."""

import importlib.util
import json
import os
import time
import types
import zipfile

import gradio as gr
import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from pipelines.pose.openpose import save_motion
from pipelines.pose.palette import slot_color
from pipelines.scene import Scene
from studio import compose
from studio.handlers import SCENE_KEYS, SOURCES, Handlers
from studio.session import MAX_HISTORY, Clip, Session, end_session, new_session, sweep_sessions


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSOVER_SESSIONS", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


@pytest.fixture
def h():
    return Handlers()


def view(out):
    """(session, *scene values) → dict by key."""
    return dict(zip(("session",) + SCENE_KEYS, out))


def ev(**kw):
    return types.SimpleNamespace(**kw)


def scene_of(v):
    return json.loads(v["scene_json"])


# ---- sessions -------------------------------------------------------------------------------------------
def test_sessions_are_isolated_and_cleaned_up(root, h):
    a, b = new_session(), new_session()
    assert a.folder != b.folder and a.folder.parent == b.folder.parent == root
    assert a.folder.name.startswith("sess-") and len(a.folder.name) == 5 + 32
    h.load(a)
    h.load(b)
    h.pick(a, ev(id="zed"))
    assert a.comp.picks == ["pip", "dora", "zed"] and b.comp.picks == ["pip", "dora"]
    assert a.new_path("uploads", ".png") != a.new_path("uploads", ".png")
    end_session(a)
    assert not a.folder.exists() and b.folder.exists()
    # a session untouched for longer than the age limit is swept; a fresh one stays
    old = Session()
    past = time.time() - 7 * 3600
    for p in [old.folder, *old.folder.rglob("*")]:
        os.utime(p, (past, past))
    removed = sweep_sessions(root)
    assert removed == [old.folder] and b.folder.exists()


def test_first_load_opens_a_valid_crossover_with_a_pose_preview(root, h):
    v = view(h.load(None))
    s = v["session"]
    assert isinstance(s, Session)
    doc = scene_of(v)
    scene = Scene.from_dict(doc, s.folder)                     # validated exactly like the CLI
    assert [c["id"] for c in scene.characters] == ["pip", "dora"] and scene.motion == {"template": "swap-2"}
    assert v["scene_status"].startswith("**Ready**")
    assert v["prompt"] == "[character: Pip] and [character: Dora] swap places. [scene-style: cartoon]"
    frames = imageio.mimread(v["preview"])
    assert len(frames) == 16 and frames[0].shape == (256, 256, 3)
    assert 'data-slot="0"' in v["chips"] and 'data-slot="1"' in v["chips"] and 'data-assignment="0,1"' in v["chips"]
    assert v["chips"].count('class="xo-track"') == 2


def _colour_share(frame, color, region):
    px = frame[region].reshape(-1, 3).astype(int)
    return float((np.abs(px - np.array(color)).sum(1) < 90).mean())


def test_dragging_a_chip_swaps_tracks_and_updates_preview_and_prompt(root, h):
    s = view(h.load(None))["session"]
    before = imageio.mimread(s.preview_path)[0]
    left = (slice(None), slice(0, 128))
    assert _colour_share(before, slot_color(0), left) > _colour_share(before, slot_color(1), left)
    v = view(h.reorder(s, ev(slot=0, track=1)))
    assert s.comp.assignment == [1, 0] and scene_of(v)["assignment"] == [1, 0]
    assert 'data-assignment="1,0"' in v["chips"]
    after = imageio.mimread(v["preview"])[0]
    # track 0 starts on the left: it is now drawn in Dora's colour (slot 1), no longer in Pip's
    assert _colour_share(after, slot_color(1), left) > _colour_share(after, slot_color(0), left)
    assert v["prompt"].startswith("[character: Dora] and [character: Pip]")
    # nothing changed → the preview is not re-sent (the player keeps playing)
    assert view(h.reorder(s, ev(slot=0, track=1)))["preview"] is not None
    assert isinstance(view(h.refill_prompt(s))["preview"], type(gr.skip()))
    with pytest.raises(gr.Error, match="track: 5"):
        h.reorder(s, ev(slot=0, track=5))


def test_picking_toggles_limits_and_switches_to_a_motion_with_enough_tracks(root, h):
    s = view(h.load(None))["session"]
    v = view(h.pick(s, ev(id="zed")))
    assert s.comp.picks == ["pip", "dora", "zed"] and s.comp.motion == {"template": "swap-3"}
    assert scene_of(v)["assignment"] == [0, 1, 2] and "3 of 5 picked" in v["library"].replace("<b>", "").replace("</b>", "")
    h.pick(s, ev(id="luma"))
    h.pick(s, ev(id="Hank"))                                   # names resolve case-insensitively
    assert len(s.comp.picks) == 5 and s.comp.motion["template"] == "swap-5"
    with pytest.raises(gr.Error, match="at most 5"):
        h.pick(s, ev(id="ivy"))
    h.pick(s, ev(id="dora"))                                   # a second click removes
    # the others keep their tracks; Dora's track is left empty (not drawn)
    assert s.comp.picks == ["pip", "zed", "luma", "hank"] and s.comp.assignment == [0, 2, 3, 4]
    with pytest.raises(gr.Error, match="unknown character 'nobody'"):
        h.pick(s, ev(id="nobody"))
    h.remove(s, ev(slot=0))
    assert s.comp.picks == ["zed", "luma", "hank"]


def test_an_empty_track_can_take_a_chip(root, h):
    s = view(h.load(None))["session"]
    h.choose_template(s, "swap-3")
    assert s.comp.assignment == [0, 1]
    v = view(h.reorder(s, ev(slot=1, track=2)))
    assert s.comp.assignment == [0, 2] and "nobody — track not drawn" in v["chips"]
    assert scene_of(v)["assignment"] == [0, 2] and v["scene_status"].startswith("**Ready**")


def test_too_few_tracks_is_reported_not_hidden(root, h, tmp_path):
    s = view(h.load(None))["session"]
    h.pick(s, ev(id="zed"))                                    # swap-3 now
    kp = np.zeros((4, 2, 18, 3), np.float32)
    kp[..., 1, :] = (100, 100, 1)
    kp[:, 1, 1, 0] = 300
    path = tmp_path / "two.json"
    save_motion(path, kp, 512, 512)
    v = view(h.upload_json(s, str(path)))
    assert "No track left for" in v["chips"] and v["scene_status"].startswith("**Not ready yet**")
    assert v["generate_btn"]["interactive"] is False
    with pytest.raises(gr.Error, match="Check the scene|not ready"):
        h.validate_generate(s, s.comp.prompt, 16, 20, 2.5, 0, "ddim")


def test_openpose_json_upload_and_its_errors(root, h, tmp_path, world):
    s = view(h.load(None))["session"]
    clip = world.clip(1, characters=["pip", "dora"], motion="chase", size=128, frames=8)
    path = tmp_path / "chase.json"
    save_motion(path, clip.keypoints, 128, 128, fps=8)
    v = view(h.upload_json(s, str(path)))
    assert v["motion_source"] == SOURCES[1] and "chase.json" in v["motion_note"]
    doc = scene_of(v)
    assert doc["motion"]["keypoints"].startswith("motions/") and Scene.from_dict(doc, s.folder).n_slots == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}], "canvas_width": 10, "canvas_height": 10}))
    with pytest.raises(gr.Error, match="expected 54"):
        h.upload_json(s, str(bad))
    (tmp_path / "junk.json").write_text("{nope")
    with pytest.raises(gr.Error, match="not valid JSON"):
        h.upload_json(s, str(tmp_path / "junk.json"))
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (6 * 2**20))
    with pytest.raises(gr.Error, match="limit is 5 MB"):
        h.upload_json(s, str(big))
    # switching back to templates restores a template motion
    v = view(h.choose_source(s, SOURCES[0]))
    assert "template" in scene_of(v)["motion"] and v["template"]["visible"] is True


def test_driving_video_without_detector_weights_says_what_is_missing(root, h, tmp_path, monkeypatch, world):
    from pipelines.pose import extract
    monkeypatch.setattr(extract, "_cached", lambda repo, f: None)
    s = view(h.load(None))["session"]
    path = tmp_path / "drive.mp4"
    imageio.mimwrite(path, list(world.clip(0, size=64, frames=8).frames), fps=8, codec="libx264", macro_block_size=16)
    with pytest.raises(gr.Error) as e:
        h.upload_video(s, str(path), progress=lambda *a, **k: None)
    assert "body_pose_model.pth" in e.value.message and "motion template" in e.value.message
    kind, text = h.s.motion.status()
    assert kind == "templates" and "lllyasviel/Annotators" in text


def test_driving_video_becomes_the_motion_when_a_detector_is_available(root, h, tmp_path, world):
    from pipelines.pose.extract import PoseExtractor
    clip = world.clip(4, characters=["pip", "dora"], motion="swap", size=128, frames=8)
    calls = []

    def detector(frame):                # stands in for the network: the world's ground truth, frame by frame
        calls.append(1)
        return clip.keypoints[len(calls) - 1]
    h.s.motion._extractor = PoseExtractor(detector=detector)
    s = view(h.load(None))["session"]
    path = tmp_path / "dance.mp4"
    imageio.mimwrite(path, list(clip.frames), fps=8, codec="libx264", macro_block_size=16)
    v = view(h.upload_video(s, str(path), progress=lambda *a, **k: None))
    assert len(calls) == 8 and v["motion_source"] == SOURCES[2] and "dance.mp4" in v["motion_note"]
    doc = scene_of(v)
    assert doc["motion"]["keypoints"].startswith("motions/") and doc["frames"] == 8
    info = compose.motion_info(s.comp, s.folder)
    assert info.tracks == 2 and info.keypoints.shape[0] == 8 and info.width == 128
    assert Scene.from_dict(doc, s.folder).n_slots == 2 and len(imageio.mimread(v["preview"])) == 8


def test_prompt_is_filled_stays_editable_and_refills_on_request(root, h):
    s = view(h.load(None))["session"]
    _, doc, _, _ = h.edit_prompt(s, "[character: Pip] juggles for [character: Dora].")
    assert json.loads(doc)["prompt"] == "[character: Pip] juggles for [character: Dora]." and not s.comp.prompt_auto
    v = view(h.reorder(s, ev(slot=0, track=1)))                # choices change: the creator's prompt stays
    assert v["prompt"] == "[character: Pip] juggles for [character: Dora]."
    v = view(h.refill_prompt(s))
    assert v["prompt"].startswith("[character: Dora] and [character: Pip] swap places")
    v = view(h.choose_background(s, "harbor-lane:2"))          # a live-action set: Pip is the crossover now
    assert scene_of(v)["background"] == {"show": "harbor-lane", "variant": 2}
    assert v["prompt"].endswith("[scene-style: live-action]")


def test_controls_are_validated(root, h):
    s = view(h.load(None))["session"]
    v = view(h.set_controls(s, 24, 8, 3.0, 42, "dpm++"))
    assert scene_of(v)["frames"] == 24 and scene_of(v)["sampler"] == {"scheduler": "dpm++", "steps": 8, "guidance_scale": 3.0}
    assert scene_of(v)["seed"] == 42
    with pytest.raises(gr.Error, match="frames: 0"):
        h.set_controls(s, 0, 8, 3.0, 42, "ddim")
    with pytest.raises(gr.Error, match="steps: 2.5"):
        h.set_controls(s, 16, 2.5, 3.0, 42, "ddim")
    with pytest.raises(gr.Error, match="scheduler"):
        h.set_controls(s, 16, 8, 3.0, 42, "plms")
    assert s.comp.frames == 24                                  # a refused change leaves the scene as it was


def test_validate_refuses_an_empty_cast_with_what_to_do(root, h):
    s = Session()
    h.remove(view(h.load(s))["session"], ev(slot=0))
    h.remove(s, ev(slot=0))
    with pytest.raises(gr.Error, match="none picked"):
        h.validate_generate(s, "", 16, 20, 2.5, 0, "ddim")


def test_scene_zip_round_trip_restores_the_whole_composition(root, h, tmp_path):
    s = view(h.load(None))["session"]
    v = view(h.open_example(s, "ada-meets-pip"))
    assert [c.get("name", c.get("id")) for c in scene_of(v)["characters"]] == ["Ada", "pip"]
    h.reorder(s, ev(slot=0, track=1))
    h.set_controls(s, 12, 6, 4.0, 7, "euler")
    h.choose_background(s, "starport-scouts:3")
    doc = compose.scene_doc(s)
    path = compose.export_scene(doc, s.folder, s.folder / "clips" / "out")
    assert path.name == "scene.zip"
    assert set(zipfile.ZipFile(path).namelist()) == {"scene.json", "characters/u-ada/reference.png",
                                                    "characters/u-ada/mask.png"}
    other = Session()
    v2 = view(h.open_scene(other, str(path)))
    assert scene_of(v2) == doc                                 # same document, Ada imported into the new session
    assert other.comp.assignment == [1, 0] and other.comp.seed == 7 and other.comp.scheduler == "euler"
    assert "Ada" in v2["library"] and "Your characters" in v2["library"]
    # a scene.json alone, without its images, says what is missing
    lone = tmp_path / "lone.json"
    lone.write_text(json.dumps(doc))
    with pytest.raises(gr.Error, match="not found next to the scene"):
        h.open_scene(Session(), str(lone))


def test_save_scene_offers_json_alone_or_a_zip_with_its_files(root, h):
    v = view(h.load(None))
    saved = v["save_scene"]
    assert saved["interactive"] and saved["value"].endswith("scene.json")
    assert json.loads(open(saved["value"]).read()) == scene_of(v)
    v = view(h.open_example(v["session"], "ada-meets-pip"))
    assert v["save_scene"]["value"].endswith("scene.zip") and "scene.zip" in v["save_scene"]["label"]
    h.remove(v["session"], ev(slot=0))
    v = view(h.remove(v["session"], ev(slot=0)))
    assert v["save_scene"]["interactive"] is False               # nothing valid to save


def test_scene_zips_are_unpacked_safely(root, h, tmp_path):
    s = Session()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("scene.json", "{}")
        z.writestr("../../escape.txt", "x")
    with pytest.raises(gr.Error, match="leaves the scene"):
        h.open_scene(s, str(evil))
    notzip = tmp_path / "scene.zip"
    notzip.write_text("hello")
    with pytest.raises(gr.Error, match="not a zip"):
        h.open_scene(s, str(notzip))


def test_uploaded_images_respect_the_limits(root, h, tmp_path):
    s = Session()
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 4000)).save(huge)
    with pytest.raises(gr.Error, match="20.0 megapixels; the limit is 16 MP"):
        h.seg_upload(s, str(huge))
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (20, 20)).save(tiny)
    with pytest.raises(gr.Error, match="too small"):
        h.seg_upload(s, str(tiny))
    text = tmp_path / "text.png"
    text.write_text("not an image")
    with pytest.raises(gr.Error, match="not an image"):
        h.seg_upload(s, str(text))
    rgba = tmp_path / "big-rgba.png"
    arr = np.zeros((1500, 2000, 4), np.uint8)
    arr[..., 0] = 255                                           # transparent red: flattened onto grey
    Image.fromarray(arr, "RGBA").save(rgba)
    _, canvas, status = h.seg_upload(s, str(rgba))
    assert canvas.shape == (768, 1024, 3) and s.seg.width == 1024
    assert np.allclose(canvas[0, 0], (127, 127, 127), atol=2) and "Click on the character" in status
    with pytest.raises(gr.Error, match="no click to undo"):
        h.seg_undo(s)
    with pytest.raises(gr.Error, match="click on the character"):
        h.seg_add(s, "Blob", "cartoon")
    with pytest.raises(gr.Error, match="upload an image first"):
        h.seg_click(Session(), "Include (+)", types.SimpleNamespace(index=[5, 5]))


def test_user_characters_join_the_library_escaped_and_uniquely_named(root, h):
    s = view(h.load(None))["session"]
    img = np.full((96, 64, 3), 200, np.uint8)
    mask = np.zeros((96, 64), bool)
    mask[20:80, 16:48] = True
    c = h.s.characters.add(s, img, mask, "Ada & <b>Co</b>", "live action")
    assert c.style == "live-action" and c.folder.parent == s.folder / "characters"
    assert (c.folder / "reference.png").is_file() and np.array_equal(np.asarray(Image.open(c.mask_path)) > 127, mask)
    lib_html = h.library_view(s)
    assert "Ada &amp; &lt;b&gt;Co&lt;/b&gt;" in lib_html and "<b>Co</b>" not in lib_html
    with pytest.raises(ValueError, match="already taken"):
        h.s.characters.add(s, img, mask, "pip", "cartoon")
    with pytest.raises(ValueError, match="brackets"):
        h.s.characters.add(s, img, mask, "[Ada]", "cartoon")
    with pytest.raises(ValueError, match="mask is empty"):
        h.s.characters.add(s, img, np.zeros_like(mask), "Empty", "cartoon")
    with pytest.raises(ValueError, match="unknown style"):
        h.s.characters.add(s, img, mask, "Bo", "anime")
    assert Session().folder != s.folder and "Ada" not in h.library_view(Session())   # other sessions do not see it


def test_library_search_and_style_filter(root, h):
    s = view(h.load(None))["session"]
    out = h.search(s, "harbor", "All")
    assert 'data-id="dora"' in out and 'data-id="marcus"' in out and 'data-id="pip"' not in out
    out = h.search(s, "", "Cartoon")
    assert 'data-id="pip"' in out and 'data-id="dora"' not in out and "live-action</span>" not in out
    assert "No character matches" in h.search(s, "zzz", "All")


def test_history_keeps_the_latest_clips_and_deletes_older_files(root):
    s = Session()
    for i in range(MAX_HISTORY + 2):
        folder = s.new_path("clips", "", f"{i:03d}")
        folder.mkdir()
        s.add_clip(Clip(i, folder, folder / "v.mp4", None, None, None, folder / "scene.json", folder / "t.png",
                        f"#{i}", 1.0, {}))
    assert len(s.history) == MAX_HISTORY and s.history[0].index == 2
    assert len(list((s.folder / "clips").iterdir())) == MAX_HISTORY


def test_engines_panel_names_every_engine(root, h):
    out = h.engines_html()
    for label in ("Segmenter", "Poses", "Model", "IC overlay"):
        assert f"<b>{label}</b>" in out
    assert "body_pose_model.pth" in out or "detector" in out


def test_history_selection_shows_a_clip_and_reopens_its_scene(root, h):
    s = view(h.load(None))["session"]
    h.open_example(s, "ada-meets-pip")
    h.reorder(s, ev(slot=0, track=1))
    doc = compose.scene_doc(s)
    folder = s.new_path("clips", "", "001")
    scene_file = compose.export_scene(doc, s.folder, folder)
    for name in ("v.mp4", "v.gif", "t.png"):
        (folder / name).write_bytes(b"")
    s.add_clip(Clip(1, folder, folder / "v.mp4", folder / "v.gif", None, None, scene_file, folder / "t.png",
                    "#1 · Ada, Pip", 2.0, doc))
    h.pick(s, ev(id="zed"))                                    # the composition moves on
    h.set_controls(s, 8, 5, 2.0, 99, "ddim")
    out = h.select_clip(s, types.SimpleNamespace(index=0))
    assert out[1] == str(folder / "v.mp4") and out[6]["label"] == "⬇ scene.zip" and "Clip #1" in out[7]
    assert out[8] == [(str(folder / "t.png"), "#1 · Ada, Pip")]
    v = view(h.restore_clip(s))
    assert scene_of(v) == doc and s.comp.assignment == [1, 0] and s.comp.seed == 0
    with pytest.raises(gr.Error, match="no longer kept"):
        h.select_clip(s, types.SimpleNamespace(index=3))


def test_api_endpoints_refuse_bad_input_with_what_to_do(root, h, tmp_path):
    with pytest.raises(gr.Error, match="scene_json: not valid JSON"):
        h.api_generate("{oops", None)
    with pytest.raises(gr.Error, match="give a Scene JSON document"):
        h.api_generate("", None)
    bad = {"version": 1, "characters": [{"id": "nobody"}], "motion": {"template": "walk-1"}}
    with pytest.raises(gr.Error, match="unknown character 'nobody'"):
        h.api_generate(json.dumps(bad), None)
    lone = {"version": 1, "characters": [{"name": "Ada", "image": "ada.png", "mask": "ada-mask.png",
                                          "style": "live-action"}], "motion": {"template": "walk-1"}}
    with pytest.raises(gr.Error, match="not found next to the scene"):
        h.api_generate(json.dumps(lone), None)                 # its images must come in the bundle zip
    img = tmp_path / "img.png"
    Image.new("RGB", (64, 64)).save(img)
    for points in ("nope", "[]", '[["a", 1]]'):
        with pytest.raises(gr.Error, match="points"):
            h.api_segment(str(img), points)


# ---- generation (the embedded model, kept short) ---------------------------------------------------------
@pytest.fixture(scope="module")
def gen_handlers():
    return Handlers()                                           # one pipeline for the module's generations


def _quiet_progress(*args, **kwargs):
    return None


def test_generate_writes_the_clip_its_views_and_its_scene(root, gen_handlers):
    import threading
    from studio.handlers import RESULT_KEYS
    h = gen_handlers
    s = view(h.load(None))["session"]
    h.reorder(s, ev(slot=0, track=1))
    h.validate_generate(s, s.comp.prompt, 8, 2, 2.5, 5, "ddim")
    r = dict(zip(("session",) + RESULT_KEYS, h.generate(s, progress=_quiet_progress)))
    frames = imageio.mimread(r["video"])
    assert len(frames) == 8 and frames[0].shape == (128, 128, 3)
    assert len(imageio.mimread(r["dl_gif"]["value"])) == 8
    sheet = imageio.mimread(r["sheet"])
    assert len(sheet) == 8 and sheet[0].shape[1] > 3 * 128                      # references | slots | guidance | output
    scene_file = r["dl_scene"]["value"]
    assert scene_file.endswith("scene.json") and json.loads(open(scene_file).read())["assignment"] == [1, 0]
    assert "Clip #1" in r["result_info"] and "8 frames" in r["result_info"]
    if importlib.util.find_spec("pipelines.eval") is not None:      # the IC overlay comes with every clip
        overlay = imageio.mimread(r["overlay"])
        assert len(overlay) == 8 and overlay[0].shape[0] > 128 and "IC accuracy" in r["result_info"]
        assert 0.0 <= s.history[-1].ic <= 1.0
    else:                                                            # …or the panel says it is not there
        assert r["overlay"] is None and h.s.engines()["overlay"][0] == "missing"
    assert len(r["history"]) == 1 and len(s.history) == 1
    # the same scene and seed give the same clip
    again = dict(zip(("session",) + RESULT_KEYS, h.generate(s, progress=_quiet_progress)))
    assert np.abs(np.asarray(imageio.mimread(again["video"]), float) - np.asarray(frames, float)).mean() < 1.0
    assert len(again["history"]) == 2 and again["history"][0][1].startswith("#2")

    # Cancel stops a long generation at the next step: nothing is added to the history
    h.validate_generate(s, s.comp.prompt, 8, 200, 2.5, 5, "ddim")
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=h.generate(s, progress=_quiet_progress)))
    worker.start()
    while worker.is_alive():
        h.cancel(s)
        worker.join(0.2)
    assert all(isinstance(v, type(gr.skip())) for v in result["out"][1:]) and len(s.history) == 2


def test_own_character_gets_cce_tokens_at_once_and_learns_with_real_progress(root, gen_handlers, monkeypatch):
    import threading
    from pipelines.cce.embedding import CharacterEmbedding
    from studio.handlers import RESULT_KEYS
    from pipelines.world import World, sample_character
    from studio.session import SegWork
    h = gen_handlers
    s = view(h.load(None))["session"]
    img, mask = World(0).portrait(sample_character(np.random.default_rng(5), "cartoon"), 128)
    path = s.folder / "uploads" / "me.png"
    Image.fromarray(img).save(path)
    s.seg, s.seg_image = SegWork(path, "me", 128, 128), img
    s.seg.current.mask = mask                                  # as a click would have left it
    cid = h.seg_add(s, "Ada", "cartoon")[-1]["value"]
    c = compose.session_library(s).get(cid)
    emb = CharacterEmbedding.load(c.cce_path)                  # written at once, for this generator
    assert emb.name == "Ada" and emb.usable_with(h.s.generate.pipeline().context_encoder)
    # the generator gets the session's characters by id (with the session library), so it reads those tokens;
    # the scene that is shown and downloaded keeps image + mask, so it travels
    assert {"id": cid} in compose.build_scene(s, by_id=True).characters
    assert any(ch.get("name") == "Ada" and "image" in ch for ch in compose.scene_doc(s)["characters"])

    monkeypatch.setattr(h.s.cce, "LEARN_STEPS", 3)
    seen = []
    msg = h.learn(s, cid, progress=lambda f, desc=None: seen.append(f))
    assert "3 steps" in msg and seen[0] == 0 and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    learned = CharacterEmbedding.load(c.cce_path)
    assert not np.allclose(learned.identity.numpy(), emb.identity.numpy())
    assert learned.provenance["method"] == "instant + fit"
    h.validate_generate(s, s.comp.prompt, 4, 1, 2.5, 0, "ddim")
    r = dict(zip(("session",) + RESULT_KEYS, h.generate(s, progress=_quiet_progress)))
    assert len(imageio.mimread(r["video"])) == 4 and "Ada" in r["history"][0][1]

    # Stop: the fit ends between steps and the character keeps the tokens it had
    monkeypatch.setattr(h.s.cce, "LEARN_STEPS", 500)
    before = c.cce_path.read_bytes()
    out = {}
    worker = threading.Thread(target=lambda: out.update(msg=h.learn(s, cid, progress=_quiet_progress)))
    worker.start()
    while worker.is_alive():
        h.stop_learning(s)
        worker.join(0.2)
    assert "stopped" in out["msg"] and c.cce_path.read_bytes() == before
    assert h.learn_ready()[0]["interactive"] is True
    with pytest.raises(gr.Error, match="pick one of your characters"):
        h.learn(s, "pip", progress=_quiet_progress)


def test_text_motion_without_a_motion_model_says_so_and_falls_back(root, h):
    s = view(h.load(None))["session"]
    h.s.generate.pipeline().register_modules(motion_model=None)  # a build without assets/models/motion
    v = view(h.choose_source(s, "Text"))
    assert v["text_motion"]["visible"] and "no text-to-motion model" in v["motion_note"]
    assert v["text_go"]["interactive"] is False                  # the button does not pretend
    with pytest.raises(gr.Error, match="no text-to-motion model"):
        h.make_text_motion(s, "[character: Pip] chases [character: Dora].")
    v = view(h.open_example(s, "text-chase"))
    assert s.comp.motion.get("template") and v["scene_status"].startswith("**Ready**")


def test_click_segmentation_include_exclude_undo_reset_and_two_characters_from_one_image(root, h, tmp_path, world):
    from scipy.ndimage import distance_transform_edt
    clip = world.clip(0, n_characters=2, motion="wave", size=256, frames=1)
    img, masks = clip.frames[0], clip.masks[0]                # two characters standing apart
    path = tmp_path / "two.png"
    Image.fromarray(img).save(path)
    s = view(h.load(None))["session"]
    _, canvas, status = h.seg_upload(s, str(path))
    assert canvas.shape == img.shape and "Click on the" in status

    def inside(m):
        y, x = np.unravel_index(np.argmax(distance_transform_edt(m)), m.shape)
        return [int(x), int(y)]

    def iou(a, b):
        return (a & b).sum() / max(1, (a | b).sum())

    first = s.seg.current
    _, canvas, status = h.seg_click(s, "Include (+)", ev(index=inside(masks[0])))
    assert iou(first.mask, masks[0]) > 0.6 and "1 include / 0 exclude" in status and first.logits.shape == (1, 256, 256)
    # the mask is shown on the canvas (tinted) and the click is drawn
    assert np.abs(canvas.astype(int) - img.astype(int))[masks[0]].mean() > 20
    one_click = first.mask.copy()
    # an Exclude click on the character's head takes the head out of the cut-out
    ys, xs = np.nonzero(masks[0])
    head = masks[0] & (np.arange(256)[:, None] < ys.min() + 0.2 * (ys.max() - ys.min()))
    hx, hy = inside(head)
    assert one_click[hy, hx]
    _, _, status = h.seg_click(s, "Exclude (−)", ev(index=[hx, hy]))
    assert "1 include / 1 exclude" in status and not first.mask[hy, hx] and first.mask.sum() < one_click.sum()
    _, _, status = h.seg_undo(s)                               # back to exactly the one-click mask
    assert np.array_equal(first.mask, one_click) and first.labels == [1]
    h.seg_reset(s)
    assert s.seg.current.points == [] and s.seg.current.mask is None
    with pytest.raises(gr.Error, match="start with an Include click"):
        h.seg_click(s, "Exclude (−)", ev(index=[5, 5]))
    h.seg_click(s, "Include (+)", ev(index=inside(masks[0])))
    a = h.seg_add(s, "Ada", "cartoon")
    # the second character of the same image, cut out after the first
    h.seg_click(s, "Include (+)", ev(index=inside(masks[1])))
    assert iou(s.seg.current.mask, masks[1]) > 0.6
    h.seg_add(s, "Bo", "live-action")
    lib = compose.session_library(s)
    assert [lib.get(c).name for c in s.comp.picks][-2:] == ["Ada", "Bo"] and len(s.seg.saved) == 2
    assert a[-1]["value"] in [cid for _, cid in h.learn_choices(s)]
    with pytest.raises(gr.Error, match="outside"):
        h.seg_click(s, "Include (+)", ev(index=[900, 5]))


def test_a_prompt_naming_an_unknown_character_is_reported(root, h):
    s = view(h.load(None))["session"]
    s, _, status, button = h.edit_prompt(s, "[character: Pip] waves at [character: Nobody].")
    assert status.startswith("**Not ready yet**") and "Nobody" in status and button["interactive"] is False
    with pytest.raises(gr.Error, match="Nobody"):
        h.validate_generate(s, s.comp.prompt, 16, 20, 2.5, 0, "ddim")
    v = view(h.refill_prompt(s))
    assert v["scene_status"].startswith("**Ready**")


def test_text_motion_drives_the_preview_the_tracks_and_the_generation(root):
    from studio.handlers import RESULT_KEYS
    h = Handlers()
    assert h.s.generate.pipeline().motion_model is not None    # the shipped one (assets/models/motion)
    s = view(h.load(None))["session"]
    assert view(h.choose_source(s, "Text"))["text_go"]["interactive"] is True
    text = "[character: Pip] chases [character: Dora]."
    v = view(h.make_text_motion(s, text))
    assert scene_of(v)["motion"] == {"text": text} and v["motion_source"] == "Text"
    assert len(imageio.mimread(v["preview"])) == 16 and compose.motion_info(s.comp, s.folder).tracks == 2
    first = s.comp.motion["preview"]
    h.reorder(s, ev(slot=0, track=1))                          # names go to the model in track order: remade
    assert s.comp.motion["preview"] != first and s.comp.assignment == [1, 0]
    h.validate_generate(s, s.comp.prompt, 4, 1, 2.5, 0, "ddim")
    r = dict(zip(("session",) + RESULT_KEYS, h.generate(s, progress=_quiet_progress)))
    assert len(imageio.mimread(r["video"])) == 4 and len(imageio.mimread(r["overlay"])) == 4
    assert json.loads(open(r["dl_scene"]["value"]).read())["motion"] == {"text": text}
    with pytest.raises(gr.Error, match="at most 300"):
        h.make_text_motion(s, "x" * 301)
