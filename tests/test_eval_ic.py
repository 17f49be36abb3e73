"""IC accuracy and style delusion on ground truth, on videos with identities exchanged or styles flipped,
the Hungarian matching, the regions, and the ``ic`` command's outputs."""

import json

import numpy as np
import pytest

from pipelines.eval import ic as IC
from pipelines.eval.descriptors import ProbeDescriptor
from pipelines.eval.probes import Probes
from pipelines.eval.regions import crop_region, judged, skeleton_regions
from pipelines.world import World
from pipelines.world.characters import with_style

SEED = 4242                  # a world seed the probes never trained on (training: 1, held-out report: 1001/1002)


@pytest.fixture(scope="module")
def probes():
    return Probes.load()


@pytest.fixture(scope="module")
def desc(probes):
    return ProbeDescriptor(probes)


@pytest.fixture(scope="module")
def world():
    return World(SEED, named_fraction=0.0)


def cast(world, n, index, style=None):
    rng = np.random.default_rng([SEED, index])
    from pipelines.world import sample_character
    return [sample_character(rng, style) for _ in range(n)]


def refs_of(world, specs):
    return [IC.Reference(s.name, s.style, *world.portrait(s, 256)) for s in specs]


def score(desc, probes, world, frames, regions, specs, expected=None):
    vecs = IC.describe_references(desc, refs_of(world, specs))
    expected = list(range(len(specs))) if expected is None else expected
    return IC.ic_accuracy(frames, regions, vecs, expected, desc, probes=probes, track_styles=[s.style for s in specs])


@pytest.mark.parametrize("index,n,motion,show", [(0, 3, "swap", "harbor-lane"), (1, 4, "swap", "meadow-mischief"),
                                                 (2, 2, "hug", "starport-scouts")])
def test_ground_truth_scores_ic_one(probes, desc, world, index, n, motion, show):
    specs = cast(world, n, index)                           # unseen procedural characters of both styles
    clip = world.clip(index, characters=specs, motion=motion, show=show)
    rep = score(desc, probes, world, clip.frames, clip.masks, specs)
    assert rep.judged.sum() >= n * 8
    assert rep.accuracy >= 0.97
    assert np.nanmin(rep.per_track) >= 0.9
    assert rep.style_delusion <= 0.05
    # the affinity graph puts its weight on the right edges
    aff = rep.affinity
    assert np.all(np.argmax(aff, 1) == np.arange(n))
    # skeleton regions (what a bare video + scene gives) also recover the identities
    sk = score(desc, probes, world, clip.frames, skeleton_regions(clip.keypoints, 128, 128), specs)
    assert sk.accuracy >= 0.9


def test_identities_exchanged_score_zero_on_those_tracks(probes, desc, world):
    specs = cast(world, 3, 7)
    clip = world.clip(7, characters=specs, motion="swap", show="ridgeview-rangers")
    # the same clip (same paths, set and timing) with characters 0 and 1 exchanged
    swapped = world.clip(7, characters=[specs[1], specs[0], specs[2]], motion="swap", show="ridgeview-rangers")
    assert not np.array_equal(clip.frames, swapped.frames)
    rep = score(desc, probes, world, swapped.frames, clip.masks, specs)      # regions where they should be
    assert rep.per_track[0] <= 0.1 and rep.per_track[1] <= 0.1
    assert rep.per_track[2] >= 0.9
    # exchanging them back in the assignment makes the video right again
    back = score(desc, probes, world, swapped.frames, clip.masks, specs, expected=[1, 0, 2])
    assert back.accuracy >= 0.9


def test_style_delusion_detects_flipped_styles(probes, desc, world):
    specs = cast(world, 3, 11)
    flipped = [with_style(s, "cartoon" if s.style == "live-action" else "live-action") for s in specs]
    clip = world.clip(11, characters=specs, motion="walk", show="harbor-lane")
    deluded = world.clip(11, characters=flipped, motion="walk", show="harbor-lane")
    assert score(desc, probes, world, clip.frames, clip.masks, specs).style_delusion <= 0.05
    assert score(desc, probes, world, deluded.frames, deluded.masks, specs).style_delusion >= 0.9


def test_hungarian_matching_and_unperformed_tracks(desc):
    sim = np.array([[0.1, 0.9, 0.2], [0.8, 0.85, 0.1]])
    assert list(IC.match(sim)) == [1, 0]            # the global optimum, not row-wise argmax
    assert list(IC.match(sim.T)) == [1, 0, -1]      # more tracks than references: one is left over
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    regions = np.zeros((2, 2, 64, 64), bool)
    regions[:, 0, 10:50, 5:25] = True
    regions[:, 1, 10:50, 35:55] = True
    vecs = np.eye(2, desc.probes.config.embed_dim, dtype=np.float32)
    rep = IC.ic_accuracy(frames, regions, vecs, [0, -1], desc)
    assert (rep.correct[:, 1] == -1).all()          # nobody performs track 1: not judged
    with pytest.raises(ValueError, match="expected: 3 entries for 2 tracks"):
        IC.ic_accuracy(frames, regions, vecs, [0, 1, 2], desc)
    with pytest.raises(ValueError, match="regions"):
        IC.ic_accuracy(frames, regions[:, :, :32], vecs, [0, 1], desc)


def test_regions_and_crops():
    clip = World(3).clip(2, n_characters=3, motion="swap")
    sk = skeleton_regions(clip.keypoints, 128, 128)
    assert sk.shape == clip.masks.shape
    assert not (sk.sum(1) > 1).any()                 # overlaps go to one track only
    inter = (sk & clip.masks).sum() / clip.masks.sum()
    assert inter >= 0.7                               # the skeleton region covers most of each character
    j = judged(clip.masks)
    assert j.dtype == bool and j.shape == (16, 3)
    crop = crop_region(clip.frames[0], clip.masks[0, 0], 64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    empty = crop_region(clip.frames[0], np.zeros((128, 128), bool), 64)
    assert (empty == 127).all()
    from pipelines.eval.regions import bbox
    k = int(np.argmin(clip.masks[0].sum((1, 2)) + 10 ** 6 * (clip.masks[0].sum((1, 2)) == 0)))
    y0, y1, x0, x1 = bbox(clip.masks[0, k])
    assert max(y1 - y0, x1 - x0) < 60
    native = crop_region(clip.frames[0], clip.masks[0, k], 64, native=True)
    ys, xs = np.nonzero((native != 127).any(-1))
    assert np.ptp(ys) + 1 <= y1 - y0 and np.ptp(xs) + 1 <= x1 - x0        # a small character keeps its pixel scale
    resized = crop_region(clip.frames[0], clip.masks[0, k], 64)
    assert np.ptp(np.nonzero((resized != 127).any(-1))[0]) > np.ptp(ys)   # the identity crop enlarges it


def test_ic_command_writes_its_outputs(tmp_path, world):
    from pipelines.eval.__main__ import main
    from pipelines.eval.benchmark import Benchmark
    from pipelines.eval.video import write_video
    bs = Benchmark.load().scenes[1]                   # a stored scene: unseen characters, keypoints motion
    clip = bs.ground_truth()
    video = write_video(tmp_path / "clip.mp4", clip.frames, clip.fps)
    out = tmp_path / "ic"
    assert main(["ic", str(video), str(bs.folder / "scene.json"), "--out", str(out)]) == 0
    doc = json.loads((out / "ic.json").read_text())
    assert doc["regions"] == "skeleton" and doc["ic_accuracy"] >= 0.9
    assert len(doc["frames"]) == clip.n_frames and len(doc["per_track"]) == clip.n_characters
    assert len(doc["affinity"]) == clip.n_characters and len(doc["affinity"][0]) == clip.n_characters
    from PIL import Image
    assert Image.open(out / "affinity.png").size[0] > 100
    from pipelines.eval.video import read_video
    overlay, _ = read_video(out / "overlay.mp4")
    assert overlay.shape == (clip.n_frames, 384, 384, 3)
    # exact masks instead of skeletons
    np.savez_compressed(tmp_path / "masks.npz", masks=clip.masks)
    assert main(["ic", str(video), str(bs.folder / "scene.json"), "--out", str(tmp_path / "ic2"),
                 "--masks", str(tmp_path / "masks.npz")]) == 0
    assert json.loads((tmp_path / "ic2" / "ic.json").read_text())["ic_accuracy"] >= 0.97


def test_ic_command_rejects_bad_input(tmp_path, capsys):
    from pipelines.eval.__main__ import main
    from pipelines.eval.benchmark import Benchmark
    scene = Benchmark.load().scenes[0].folder / "scene.json"
    assert main(["ic", str(tmp_path / "missing.mp4"), str(scene)]) == 2
    assert "file not found" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((4, 8, 8), np.uint8))
    assert main(["ic", str(tmp_path / "bad.npy"), str(scene)]) == 2
    assert "expected (frames, height, width, 3)" in capsys.readouterr().err


def test_video_io_round_trips(tmp_path):
    from pipelines.eval.video import read_video, write_video
    frames = World(1, size=64).clip(0, n_characters=2, frames=4).frames
    np.savez(tmp_path / "v.npz", frames=frames, fps=12.0)
    got, fps = read_video(tmp_path / "v.npz")
    assert np.array_equal(got, frames) and fps == 12.0
    np.save(tmp_path / "f.npy", frames.astype(np.float32) / 255.0)
    assert np.abs(read_video(tmp_path / "f.npy")[0].astype(int) - frames).max() <= 1
    got, fps = read_video(write_video(tmp_path / "v.gif", frames, 8.0))
    assert got.shape == frames.shape and fps == pytest.approx(8.0, rel=0.05)
    np.savez(tmp_path / "w.npz", video=frames)
    with pytest.raises(ValueError, match="no array named 'frames'"):
        read_video(tmp_path / "w.npz")


def test_scene_motion_fitted_to_a_video():
    from pipelines.paths import scenes_dir
    from pipelines.scene import Scene
    scene = Scene.load(scenes_dir() / "pip-dora-swap.json")         # a template motion on a 512 canvas
    kp, notes = IC.scene_keypoints(scene, 20, 128, 128)
    assert kp.shape == (20, 2, 18, 3) and notes and "holding the last pose" in notes[0]
    assert np.array_equal(kp[-1], kp[15])
    vis = kp[..., 2] > 0
    assert kp[vis][:, :2].max() <= 128 and kp[vis][:, :2].min() >= 0
    refs = IC.scene_references(scene)
    assert [r.name for r in refs] == ["Pip", "Dora"] and refs[0].mask.any()
    text = Scene.from_dict({**scene.to_dict(), "motion": {"text": "they swap"}}, scene.base_dir)
    with pytest.raises(ValueError, match="--keypoints"):
        IC.scene_keypoints(text, 16, 128, 128)
