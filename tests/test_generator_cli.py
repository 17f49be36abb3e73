"""`python -m pipelines.generate`, model resolution, the reference sheet and the guidance helpers."""

import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from generator_fixtures import SIZE, one_thread, static_keypoints  # noqa: F401 (one_thread: autouse)
from pipelines.generate import main
from pipelines.mix import ModelNotFoundError, compose_sheet, resolve_model, sheet_from_frame
from pipelines.mix.__main__ import init_model, model_info
from pipelines.mix.guidance import slot_regions, target_guidance
from pipelines.mix.loading import INIT_COMMAND
from pipelines.pose.palette import PALETTE


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny"
    init_model(path, seed=0, size="test")
    return path


def write_scene(folder, **kw):
    doc = {"version": 1, "characters": [{"id": "zed"}, {"id": "marcus"}], "motion": {"template": "highfive-2"},
           "assignment": [1, 0], "background": {"show": "harbor-lane"}, "width": SIZE, "height": SIZE,
           "frames": 8, "fps": 8, "sampler": {"scheduler": "ddim", "steps": 2, "guidance_scale": 2.0}, "seed": 0}
    doc.update(kw)
    path = folder / "scene.json"
    path.write_text(json.dumps(doc))
    return path


# ---- the CLI ----------------------------------------------------------------------------------------------
def test_generate_writes_video_gif_and_side_by_side(tmp_path, model_dir, capsys):
    scene = write_scene(tmp_path)
    out = tmp_path / "out" / "clip.mp4"
    code = main([str(scene), "--out", str(out), "--model", str(model_dir), "--steps", "1", "--seed", "4",
                 "--gif", "--sheet", "--quiet"])
    assert code == 0
    video = iio.imread(out)
    assert video.shape == (8, SIZE, SIZE, 3)
    assert iio.imread(out.with_suffix(".gif")).shape[:3] == (8, SIZE, SIZE)
    view = iio.imread(tmp_path / "out" / "clip-sheet.mp4")
    assert view.shape == (8, SIZE + 16, 4 * SIZE, 3)
    assert (tmp_path / "out" / "clip-sheet.gif").is_file()
    assert "8 frames 64×64" in capsys.readouterr().out


def test_bf16_generation_stays_close_to_fp32(tmp_path, model_dir):
    scene = write_scene(tmp_path)
    paths = {}
    for flag in ([], ["--bf16"]):
        paths[bool(flag)] = tmp_path / f"clip{len(flag)}.mp4"
        assert main([str(scene), "--out", str(paths[bool(flag)]), "--model", str(model_dir), "--steps", "1",
                     "--quiet"] + flag) == 0
    a, b = (iio.imread(p).astype(float) for p in paths.values())
    assert a.shape == b.shape and 0 < np.abs(a - b).mean() < 8         # bf16 differs, but only slightly


def test_bad_scene_prints_the_scene_error_and_exits_2(tmp_path, capsys):
    scene = write_scene(tmp_path, assignment=[0, 0], sampler={"scheduler": "nope"})
    assert main([str(scene), "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err
    assert "invalid scene" in err and "assignment" in err and "sampler.scheduler: unknown scheduler 'nope'" in err
    assert not (tmp_path / "x.mp4").exists()


def test_module_entry_point_exit_code(tmp_path):
    scene = write_scene(tmp_path, characters=[{"id": "nobody"}])
    r = subprocess.run([sys.executable, "-m", "pipelines.generate", str(scene), "--out", str(tmp_path / "x.mp4")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown character 'nobody'" in r.stderr


def test_text_motion_without_a_motion_model_exits_2(tmp_path, model_dir, capsys):
    scene = write_scene(tmp_path, motion={"text": "they wave"})
    assert main([str(scene), "--out", str(tmp_path / "x.mp4"), "--model", str(model_dir), "--motion-model", "none",
                 "--quiet"]) == 2
    assert "motion.text" in capsys.readouterr().err


def test_missing_model_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CROSSOVER_ASSETS", str(tmp_path))              # an assets folder without models
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model()
    text = str(e.value)
    assert "crossover-studio/mix-tiny" in text and "HF_HUB_OFFLINE=1" in text and INIT_COMMAND in text
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        resolve_model(tmp_path)
    monkeypatch.delenv("CROSSOVER_ASSETS")                            # the scene needs the real library
    scene = write_scene(tmp_path)
    assert main([str(scene), "--out", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "none")]) == 1
    assert "not a saved MixPipeline" in capsys.readouterr().err


def test_assets_model_is_found_and_described(tmp_path, model_dir, monkeypatch):
    import shutil
    shutil.copytree(model_dir, tmp_path / "models" / "tiny")
    monkeypatch.setenv("CROSSOVER_ASSETS", str(tmp_path))
    assert resolve_model() == tmp_path / "models" / "tiny"
    info = model_info()
    assert info["mode"] == "end2end" and info["parameters"]["total"] > 0
    assert info["total_bytes"] == sum(info["bytes_on_disk"].values())
    assert len(info["reference_layers"]) == 7


# ---- the reference sheet ---------------------------------------------------------------------------------
def blob(h, w, colour):
    img = np.zeros((h + 10, w + 6, 3), np.uint8)
    img[5:5 + h, 3:3 + w] = colour
    mask = np.zeros(img.shape[:2], bool)
    mask[5:5 + h, 3:3 + w] = True
    return img, mask


def test_sheet_lays_characters_out_left_to_right_keeping_aspect():
    cuts = [blob(40, 20, (200, 0, 0)), blob(30, 30, (0, 200, 0)), blob(50, 10, (0, 0, 200))]
    image, masks = compose_sheet(cuts, "#102030", (96, 64))
    assert image.shape == (64, 96, 3) and masks.shape == (3, 64, 96)
    assert (masks.sum(0) <= 1).all()                                   # no overlap
    xs = [np.nonzero(m)[1].mean() for m in masks]
    assert xs[0] < xs[1] < xs[2]                                       # slot order, left to right
    for m, (img, mask), colour in zip(masks, cuts, [(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        ys, xs_ = np.nonzero(m)
        h, w = np.ptp(ys) + 1, np.ptp(xs_) + 1
        assert abs(h / w - mask.sum(0).max() / mask.sum(1).max()) < 0.1 * h / w     # aspect kept
        assert (image[m] == colour).all()
    assert (image[~masks.any(0)] == [0x10, 0x20, 0x30]).all()
    bottoms = [np.nonzero(m)[0].max() for m in masks]
    assert len(set(bottoms)) == 1                                      # feet on one ground line
    bg = np.random.default_rng(0).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    assert compose_sheet(cuts[:1], bg).image.shape == (32, 48, 3)      # size from the background image


def test_sheet_errors_name_the_character():
    img, mask = blob(20, 10, (9, 9, 9))
    with pytest.raises(ValueError, match=r"characters\[1\]: mask is empty"):
        compose_sheet([(img, mask), (img, np.zeros_like(mask))], None, (64, 64))
    with pytest.raises(ValueError, match=r"characters\[0\]: mask \(5, 5\) does not match"):
        compose_sheet([(img, mask[:5, :5])], None, (64, 64))
    with pytest.raises(ValueError, match="none given"):
        compose_sheet([], None, (64, 64))
    with pytest.raises(ValueError, match="reference_masks: no characters"):
        sheet_from_frame(img, np.zeros((0,) + mask.shape, bool))


# ---- guidance ----------------------------------------------------------------------------------------------
def test_regions_follow_the_assignment_and_cover_the_skeleton():
    kp = static_keypoints(2)
    regions = slot_regions(kp, SIZE, SIZE, [1, 0])
    assert regions.shape == (2, 2, SIZE, SIZE)
    left, right = slice(0, SIZE // 2), slice(SIZE // 2, SIZE)
    assert regions[0, 0][:, right].sum() > 50 and regions[0, 0][:, left].sum() == 0      # slot 0 → track 1
    assert regions[0, 1][:, left].sum() > 50 and regions[0, 1][:, right].sum() == 0
    ieg = target_guidance(kp, SIZE, SIZE, [1, 0])
    drawn = ieg[0].any(-1)
    assert (drawn & ~regions[0].any(0)).sum() == 0                     # every skeleton pixel is in a region
    assert (ieg[0][:, right] == PALETTE[0]).all(-1).any()
