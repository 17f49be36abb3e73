"""Scene JSON: validation messages, path safety, round trip; the character library; shipped assets."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pipelines.library import Library
from pipelines.paths import scenes_dir
from pipelines.scene import Scene, SceneError, track_slots


def base():
    return {"version": 1, "characters": [{"id": "pip"}, {"id": "Dora"}], "motion": {"template": "swap-2"},
            "assignment": [1, 0], "prompt": "[character: Pip] and [character: Dora] swap places."}


def problems(doc, tmp_path):
    with pytest.raises(SceneError) as e:
        Scene.from_dict(doc, tmp_path)
    return "\n".join(e.value.problems)


def test_example_scenes_load_and_round_trip(tmp_path):
    files = sorted(scenes_dir().glob("*.json"))
    assert len(files) >= 4
    for f in files:
        s = Scene.load(f)
        again = Scene.from_dict(json.loads(s.to_json()), f.parent)
        assert again.to_dict() == s.to_dict()


def test_defaults_and_case_insensitive_names(tmp_path):
    s = Scene.from_dict(base(), tmp_path)
    assert s.characters == [{"id": "pip"}, {"id": "dora"}]
    assert (s.width, s.height, s.frames, s.sampler["scheduler"]) == (128, 128, 16, "ddim")
    assert s.track_slots(2) == [1, 0]


def test_missing_field(tmp_path):
    doc = base()
    del doc["motion"]
    assert "motion: give exactly one of" in problems(doc, tmp_path)
    doc = base()
    del doc["version"]
    assert "version: missing" in problems(doc, tmp_path)


def test_unknown_character_lists_the_known_ones(tmp_path):
    doc = base()
    doc["characters"][1] = {"id": "Bob"}
    text = problems(doc, tmp_path)
    assert "characters[1].id: unknown character 'Bob'" in text and "Pip" in text and "Sol" in text


@pytest.mark.parametrize("ref", ["../outside.png", "sub/../../outside.png", "/etc/passwd"])
def test_paths_may_not_leave_the_scene_folder(tmp_path, ref):
    doc = base()
    doc["characters"][1] = {"name": "Ada", "image": ref, "mask": "m.png", "style": "live-action"}
    text = problems(doc, tmp_path / "scene")
    assert "characters[1].image" in text and ("leaves the scene's folder" in text or "absolute path" in text)


def test_user_character_files_must_exist_and_style_must_be_known(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    doc = base()
    doc["characters"][1] = {"name": "Ada", "image": "a.png", "mask": "nope.png", "style": "anime"}
    text = problems(doc, tmp_path)
    assert "characters[1].mask: file 'nope.png' not found" in text
    assert "characters[1].style: unknown style 'anime'" in text


def test_every_problem_is_reported_at_once(tmp_path):
    doc = base()
    doc.update(width=100, frames=0, sampler={"scheduler": "plms"}, colour="red")
    text = problems(doc, tmp_path)
    for needle in ("width: 100 must be a multiple of 16", "frames: 0", "sampler.scheduler: unknown scheduler 'plms'",
                   "colour: unknown field"):
        assert needle in text


def test_assignment_errors(tmp_path):
    doc = base()
    doc["assignment"] = [0, 0]
    assert "same track" in problems(doc, tmp_path)
    doc["assignment"] = [0, 5]
    assert "track(s) [5] do not exist" in problems(doc, tmp_path)
    doc = base()
    doc["characters"].append({"id": "zed"})
    doc["assignment"] = [0, 1, 2]
    assert "only 2 tracks" in problems(doc, tmp_path)


def test_unknown_template_and_keypoints_file(tmp_path):
    doc = base()
    doc["motion"] = {"template": "moonwalk"}
    assert "known templates" in problems(doc, tmp_path)
    (tmp_path / "k.json").write_text("{not json")
    doc["motion"] = {"keypoints": "k.json"}
    assert "motion.keypoints" in problems(doc, tmp_path)


def test_track_slots_inverts_the_assignment():
    assert track_slots([2, 0], 3) == [1, -1, 0]


def test_load_reports_bad_json_with_position(tmp_path):
    (tmp_path / "s.json").write_text('{"version": 1,,}')
    with pytest.raises(SceneError, match="not valid JSON"):
        Scene.load(tmp_path / "s.json")


def test_library_has_the_ten_characters_with_matching_images():
    lib = Library()
    assert len(lib) == 10
    assert len(lib.by_show()) == 4 and {c.style for c in lib} == {"cartoon", "live-action"}
    for c in lib:
        img, mask = c.load_reference()
        assert img.shape[:2] == mask.shape and 0.03 < mask.mean() < 0.6
    assert lib.get("PIP").id == "pip" and lib.get("Marcus").name == "Marcus"
    with pytest.raises(ValueError, match="known characters: Pip"):
        lib.get("nobody")


def test_shipped_assets_match_what_the_world_renders(tmp_path):
    """assets/ is produced by `python -m pipelines.world assets`; if the world changes, rerun it."""
    from pipelines.paths import assets_dir
    from pipelines.world.assets import build_library, build_motions
    build_library(tmp_path / "characters")
    build_motions(tmp_path / "motions")
    for f in sorted((tmp_path / "characters").rglob("*.png")):
        shipped = assets_dir() / "characters" / f.relative_to(tmp_path / "characters")
        assert np.array_equal(np.asarray(Image.open(f)), np.asarray(Image.open(shipped))), \
            f"{shipped} is stale: run `python -m pipelines.world assets`"
    for f in sorted((tmp_path / "motions").glob("*.json")):
        shipped = assets_dir() / "motions" / f.name
        assert json.loads(f.read_text()) == json.loads(shipped.read_text()), f"{shipped} is stale"
