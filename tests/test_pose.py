"""OpenPose-18 JSON, the identity palette, the IEG renderer and the motion templates."""

import json

import numpy as np
import pytest

from pipelines.pose import load_template, list_templates, render_ieg, tint_masks
from pipelines.pose.ieg import depth_order
from pipelines.pose.openpose import (J, from_openpose_json, load_motion, rescale, save_motion, swap_pairs,
                                     to_openpose_json)
from pipelines.pose.palette import MAX_SLOTS, PALETTE, rgb_to_lab, slot_color
from pipelines.pose.templates import template_info


def test_openpose_json_round_trip(world, tmp_path):
    clip = world.clip(3, n_characters=3, motion="swap")
    kp = clip.keypoints.copy()
    kp[kp[..., 2] == 0] = 0                       # OpenPose writes hidden points as zeros
    doc = to_openpose_json(kp, 128, 128, fps=8)
    back, w, h = from_openpose_json(json.loads(json.dumps(doc)))
    assert (w, h) == (128, 128) and back.shape == kp.shape
    np.testing.assert_allclose(back, kp, atol=1e-3)
    save_motion(tmp_path / "m.json", kp, 128, 128, fps=8, name="mine")
    back2, *_ , meta = load_motion(tmp_path / "m.json")
    np.testing.assert_allclose(back2, kp, atol=1e-3)
    assert meta["name"] == "mine" and meta["tracks"] == 3


def test_detector_style_json_without_person_ids_is_read_in_order():
    frame = {"canvas_width": 64, "canvas_height": 48,
             "people": [{"pose_keypoints_2d": [float(i) for i in range(54)]},
                        {"pose_keypoints_2d": [1.0] * 54}]}
    kp, w, h = from_openpose_json([frame, frame])
    assert kp.shape == (2, 2, 18, 3) and (w, h) == (64, 48)
    assert kp[0, 0, 1, 0] == 3.0 and kp[1, 1, 5, 2] == 1.0


@pytest.mark.parametrize("doc, message", [
    ({"frames": [{"people": [{"pose_keypoints_2d": [0.0] * 75}]}], "width": 10, "height": 10}, "54"),
    ({"frames": []}, "no frames"),
    ({"people": [{"pose_keypoints_2d": [0.0] * 54}]}, "canvas size"),
    ({"something": 1}, "expected"),
])
def test_bad_openpose_json_is_explained(doc, message):
    with pytest.raises(ValueError, match=message):
        from_openpose_json(doc)


def test_palette_has_ten_well_separated_colours():
    lab = rgb_to_lab(np.array(PALETTE))
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    d[np.eye(len(PALETTE), dtype=bool)] = np.inf
    assert MAX_SLOTS >= 8 and d.min() >= 30
    with pytest.raises(ValueError, match="palette"):
        slot_color(MAX_SLOTS)


def _hue_pixels(frame, color, tol=60):
    return (np.abs(frame.astype(int) - np.array(color)).sum(-1) < tol).sum()


def test_ieg_draws_each_track_in_its_slot_colour_and_permuting_slots_permutes_colours(world):
    clip = world.clip(8, n_characters=2, motion="swap")
    a = render_ieg(clip.keypoints, 128, 128, slots=[0, 1])
    b = render_ieg(clip.keypoints, 128, 128, slots=[1, 0])
    assert a.shape == (clip.n_frames, 128, 128, 3) and a.dtype == np.uint8
    # track 0's skeleton region: red in a, blue in b
    single = render_ieg(clip.keypoints[:, :1], 128, 128, slots=[0])
    region = single.sum(-1) > 0
    ra, rb = a[region], b[region]
    red, blue = np.array(PALETTE[0]), np.array(PALETTE[1])
    assert (np.abs(ra - red).sum(-1) < 60).mean() > (np.abs(ra - blue).sum(-1) < 60).mean()
    assert (np.abs(rb - blue).sum(-1) < 60).mean() > (np.abs(rb - red).sum(-1) < 60).mean()


def test_nearer_skeletons_are_drawn_over_farther_ones():
    kp = np.zeros((1, 2, 18, 3), np.float32)
    for t, foot in ((0, 100), (1, 120)):         # track 1 stands lower on screen: nearer
        kp[0, t, :, 0] = 64
        kp[0, t, :, 1] = np.linspace(20, foot, 18)
        kp[0, t, :, 2] = 1
    assert list(depth_order(kp[0])) == [0, 1]
    img = render_ieg(kp, 128, 128, slots=[0, 1])[0, 40:90, 60:68].reshape(-1, 3).astype(int)
    drawn = img[img.sum(-1) > 0]
    nearer_blue = np.abs(drawn - PALETTE[1]).sum(-1) < np.abs(drawn - PALETTE[0]).sum(-1)
    assert nearer_blue.mean() > 0.9


def test_unassigned_tracks_are_not_drawn_and_plain_mode_has_no_identity_colours(world):
    clip = world.clip(8, n_characters=2, motion="swap")
    only0 = render_ieg(clip.keypoints, 128, 128, slots=[0, -1])
    assert _hue_pixels(only0, PALETTE[1], 30) == 0 and _hue_pixels(only0, PALETTE[0], 60) > 0
    p01 = render_ieg(clip.keypoints, 128, 128, slots=[0, 1], plain=True)
    p10 = render_ieg(clip.keypoints, 128, 128, slots=[1, 0], plain=True)
    assert np.array_equal(p01, p10)


def test_tint_masks_fills_each_mask_with_its_slot_colour():
    m = np.zeros((3, 8, 8), bool)
    m[0, :2], m[1, 3:5], m[2, 6:] = True, True, True
    img = tint_masks(m, [2, 0, 5])
    assert tuple(img[0, 0]) == PALETTE[2] and tuple(img[4, 4]) == PALETTE[0] and tuple(img[7, 7]) == PALETTE[5]
    assert tuple(img[2, 2]) == (0, 0, 0)


def test_motion_templates_cover_one_to_five_tracks_with_swaps():
    names = list_templates()
    info = {t["name"]: t for t in template_info()}
    assert len(names) >= 8 and set(names) == set(info)
    assert {t["tracks"] for t in info.values()} == {1, 2, 3, 4, 5}
    assert sum(t["swaps"] for t in info.values()) >= 3
    for name in names:
        m = load_template(name)
        assert m.tracks == info[name]["tracks"] and m.frames == info[name]["frames"]
        assert bool(swap_pairs(m.keypoints)) == info[name]["swaps"]
    with pytest.raises(ValueError, match="known templates"):
        load_template("moonwalk")


def test_rescale_fits_and_centres():
    kp = np.zeros((1, 1, 18, 3), np.float32)
    kp[0, 0, 0] = (256, 256, 1)
    kp[0, 0, 1] = (0, 0, 0)
    out = rescale(kp, (512, 512), (128, 128))
    assert tuple(out[0, 0, 0]) == (64, 64, 1) and tuple(out[0, 0, 1]) == (0, 0, 0)
    wide = rescale(kp, (512, 256), (128, 128))
    assert wide[0, 0, 0, 0] == 64 and wide[0, 0, 0, 1] == 96     # bottom edge of a letterboxed canvas
