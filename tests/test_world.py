"""The embedded world: determinism, ground-truth consistency, styles, behaviour, export."""

import json
import subprocess
import sys

import numpy as np
import pytest

from pipelines.pose.openpose import J
from pipelines.world import MOTIONS, NAMED, SHOWS, World
from pipelines.world.characters import NAMED_BY_ID, SIGNATURE_SCALE
from pipelines.world.stats import style_statistics


@pytest.fixture(scope="module")
def clips(world):
    # every motion, every show, 1–5 characters
    out = []
    for i, m in enumerate(MOTIONS):
        for n in (MOTIONS[m].min_chars, 3, 5):
            out.append(world.clip(100 + 7 * i + n, n_characters=n, motion=m, show=list(SHOWS)[(i + n) % 4]))
    return out


def test_same_seed_same_clip_other_seed_other_clip():
    a, b, c = World(5).clip(3), World(5).clip(3), World(6).clip(3)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert np.array_equal(a.keypoints, b.keypoints) and a.caption == b.caption
    assert not np.array_equal(a.frames, c.frames)


def test_shapes_and_types(clips):
    for c in clips:
        F, N = c.n_frames, c.n_characters
        assert c.frames.shape == (F, 128, 128, 3) and c.frames.dtype == np.uint8
        assert c.masks.shape == (F, N, 128, 128) and c.masks.dtype == bool
        assert c.keypoints.shape == (F, N, 18, 3) and c.keypoints.dtype == np.float32


def test_visible_masks_never_overlap_and_cover_each_character(clips):
    for c in clips:
        assert c.masks.sum(1).max() <= 1
        # every character is visible in most frames (occlusion hides some, never everyone for long)
        assert (c.masks.sum((2, 3)) > 0).mean() > 0.8


def test_visible_keypoints_fall_on_their_own_mask(clips):
    checked = 0
    for c in clips:
        F, N = c.n_frames, c.n_characters
        kp = c.keypoints
        for f in range(F):
            for n in range(N):
                for j in np.flatnonzero(kp[f, n, :, 2] > 0):
                    x, y = int(round(kp[f, n, j, 0])), int(round(kp[f, n, j, 1]))
                    assert c.masks[f, n, y, x], (c.motion, f, n, j)
                    checked += 1
    assert checked > 10000


def test_occluded_keypoints_are_marked_hidden(clips):
    hidden = sum(int((c.keypoints[..., 2] == 0).sum()) for c in clips if c.n_characters > 1)
    assert hidden > 0   # crossings and hugs do hide joints


def test_swap_pairs_are_exactly_the_pairs_whose_order_differs(clips):
    n_swaps = 0
    for c in clips:
        hips = (c.keypoints[..., J["r_hip"], 0] + c.keypoints[..., J["l_hip"], 0]) / 2
        order = [tuple(np.argsort(h)) for h in hips]
        expected = {(i, j) for i in range(len(order)) for j in range(len(order)) if i < j and order[i] != order[j]}
        assert set(c.swap_pairs) == expected
        n_swaps += bool(c.swap_pairs)
    swap_clips = [c for c in clips if c.motion == "swap"]
    assert all(c.swap_pairs for c in swap_clips) and n_swaps >= len(swap_clips)


def test_captions_name_every_character_in_cce_form(clips):
    for c in clips:
        for spec in c.characters:
            assert f"[character: {spec.name}]" in c.caption


def _crops(seed, count):
    w = World(seed, named_fraction=0.3)
    feats, labels, i = [], [], 0
    while len(feats) < count:
        c = w.clip(i, n_characters=(1, 3), mix=(i % 3 == 0))
        f = c.n_frames // 2
        for n, spec in enumerate(c.characters):
            if c.masks[f, n].sum() >= 150:
                feats.append(style_statistics(c.frames[f], c.masks[f, n]))
                labels.append(spec.style == "live-action")
        i += 1
    return np.array(feats[:count]), np.array(labels[:count], float)


def test_simple_classifier_on_image_statistics_separates_the_styles():
    xtr, ytr = _crops(1, 300)
    xte, yte = _crops(2, 300)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = (xtr - mu) / sd, (xte - mu) / sd
    w, bias = np.zeros(a.shape[1]), 0.0
    for _ in range(2000):                          # logistic regression, plain gradient descent
        p = 1 / (1 + np.exp(-(a @ w + bias)))
        w -= 0.5 * a.T @ (p - ytr) / len(ytr)
        bias -= 0.5 * (p - ytr).mean()
    acc = (((b @ w + bias) > 0) == yte).mean()
    assert 0.3 < yte.mean() < 0.7
    assert acc >= 0.95, acc


def _bounce_and_cadence(world, cid):
    c = world.clip(0, characters=[cid], motion="walk", show=NAMED_BY_ID[cid].show, frames=48, fps=24)
    kp = c.keypoints[:, 0]
    hip_y = (kp[:, J["r_hip"], 1] + kp[:, J["l_hip"], 1]) / 2
    h = kp[:, J["r_ankle"], 1].max() - kp[:, J["nose"], 1].min()
    spread = kp[:, J["r_ankle"], 0] - kp[:, J["l_ankle"], 0]
    crossings = np.sum(np.diff(np.sign(spread - spread.mean())) != 0)
    return np.ptp(hip_y) / h, crossings


def test_behaviour_signature_shows_in_the_walk(world):
    bounce_luma, _ = _bounce_and_cadence(world, "luma")
    bounce_zed, _ = _bounce_and_cadence(world, "zed")
    _, steps_sol = _bounce_and_cadence(world, "sol")
    _, steps_bramble = _bounce_and_cadence(world, "bramble")
    assert bounce_luma > 2 * bounce_zed        # both dip by leg geometry; only Luma bounces on top
    assert steps_sol > 2 * steps_bramble


def test_ten_named_characters_are_distinct():
    assert len(NAMED) == 10 and len({c.name for c in NAMED}) == 10
    assert {c.show for c in NAMED} == set(SHOWS)
    for a in NAMED:
        for b in NAMED:
            if a.id < b.id:
                looks = [a.head_shape != b.head_shape, a.pattern != b.pattern, a.accessory != b.accessory,
                         a.top != b.top, a.hair_style != b.hair_style]
                assert sum(looks) >= 3, (a.id, b.id)
                gap = np.abs(a.behaviour.vector() - b.behaviour.vector()) / SIGNATURE_SCALE
                assert gap.max() > 0.2, (a.id, b.id)


def test_procedural_characters_vary():
    from pipelines.world import sample_character
    rng = np.random.default_rng(0)
    specs = [sample_character(rng) for _ in range(200)]
    assert len({s.top for s in specs}) == 200
    assert {s.style for s in specs} == {"cartoon", "live-action"}
    assert len({(s.head_shape, s.pattern, s.accessory, s.hair_style) for s in specs}) > 150


def test_bad_clip_arguments_raise(world):
    with pytest.raises(ValueError, match="at least 2"):
        world.clip(0, n_characters=1, motion="swap")
    with pytest.raises(ValueError, match="known motions"):
        world.clip(0, motion="moonwalk")
    with pytest.raises(ValueError, match="1..5"):
        world.clip(0, n_characters=6)


def test_export_writes_video_arrays_json_and_index(tmp_path):
    out = tmp_path / "ds"
    r = subprocess.run([sys.executable, "-m", "pipelines.world", "export", "--out", str(out), "--clips", "3",
                        "--seed", "4", "--frames", "8", "--characters", "2-3"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    index = json.loads((out / "index.json").read_text())
    assert len(index["clips"]) == 3
    for e in index["clips"]:
        meta = json.loads((out / f"{e['clip']}.json").read_text())
        arrays = np.load(out / f"{e['clip']}.npz")
        n = len(meta["characters"])
        assert 2 <= n <= 3 and meta["caption"] == e["caption"]
        assert arrays["masks"].shape == (8, n, 128, 128) and arrays["keypoints"].shape == (8, n, 18, 3)
        assert (out / f"{e['clip']}.mp4").stat().st_size > 1000
        assert {"swap_pairs", "background", "depth_order"} <= set(meta)
        assert all({"name", "style", "show"} <= set(c) for c in meta["characters"])
    import imageio.v3 as iio
    video = iio.imread(out / "clip_00000.mp4")
    assert video.shape == (8, 128, 128, 3)


@pytest.mark.parametrize("args, message", [
    (["--characters", "0-7"], "within 1-5"),
    (["--size", "100"], "multiple of 16"),
    (["--clips", "zero"], "not a whole number"),
    (["--motions", "moonwalk"], "unknown"),
])
def test_export_rejects_bad_arguments(tmp_path, args, message):
    base = ["--out", str(tmp_path / "x"), "--clips", "1", "--seed", "0"]
    if args[0] == "--clips":
        base = ["--out", str(tmp_path / "x"), "--seed", "0"]
    r = subprocess.run([sys.executable, "-m", "pipelines.world", "export", *base, *args],
                       capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_export_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    r = subprocess.run([sys.executable, "-m", "pipelines.world", "export", "--out", str(tmp_path), "--clips", "1",
                        "--seed", "0"], capture_output=True, text=True)
    assert r.returncode != 0 and "not empty" in r.stderr and (tmp_path / "keep.txt").read_text() == "mine"
