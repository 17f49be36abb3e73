"""The appearance prior (pipelines/pose/prior.py) and how the generator reads it: placement on each track's
body, the slot→track assignment, depth order, reference skeletons for partly hidden characters, errors, its
fit to the world's ground truth, the widened guider of a warm start, and the pipeline passing it on."""

import json

import numpy as np
import pytest
import torch

from generator_fixtures import SIZE, make_components, one_thread, static_keypoints  # noqa: F401
from pipelines.models import TEST, build_components
from pipelines.models.denoiser import MixDenoiser
from pipelines.pose.openpose import J
from pipelines.pose.prior import HEAD_TOP_PER_EYES, SOLE_PER_TORSO, appearance_prior, body_box

RED, BLUE = (220, 30, 30), (30, 30, 220)


def sheet(colours=(RED, BLUE), size=SIZE):
    """A reference with one solid upright figure per slot, left to right."""
    img = np.full((size, size, 3), 128, np.uint8)
    masks = np.zeros((len(colours), size, size), bool)
    w = size // (2 * len(colours))
    for s, c in enumerate(colours):
        x0 = s * 2 * w + w // 2
        masks[s, 8:size - 4, x0:x0 + w] = True
        img[masks[s]] = c
    return img, masks


def colour_share(rgba, colour, cols):
    region = rgba[:, cols]
    on = region[..., 3] > 127
    hit = (np.abs(region[..., :3].astype(int) - colour).sum(-1) < 30) & on
    return hit.sum() / max(on.sum(), 1)


def test_body_box_follows_the_measured_proportions():
    p = np.zeros((18, 3), np.float32)
    p[:, 2] = 1
    p[J["neck"], :2] = (50, 40)
    p[J["r_hip"], :2], p[J["l_hip"], :2] = (46, 70), (54, 70)
    p[J["r_eye"], :2], p[J["l_eye"], :2] = (48, 30), (52, 30)
    p[J["nose"], :2] = (50, 33)
    p[J["r_ankle"], :2], p[J["l_ankle"], :2] = (47, 110), (53, 112)
    cx, top, sole = body_box(p)
    assert cx == pytest.approx(50)
    assert top == pytest.approx(40 - HEAD_TOP_PER_EYES * 10)
    assert sole == pytest.approx(112 + SOLE_PER_TORSO * 30)
    p[J["neck"], 2] = 0
    assert body_box(p) is None                   # no neck: nothing to place the figure on


def test_each_track_gets_the_cutout_of_the_slot_performing_it():
    img, masks = sheet()
    kp = static_keypoints(2)                     # track 0 left (x 16), track 1 right (x 48)
    left, right = slice(0, SIZE // 2), slice(SIZE // 2, SIZE)
    a = appearance_prior(img, masks, kp, [0, 1], SIZE, SIZE)
    b = appearance_prior(img, masks, kp, [1, 0], SIZE, SIZE)
    assert a.shape == (2, SIZE, SIZE, 4) and a.dtype == np.uint8
    assert colour_share(a[0], RED, left) > 0.9 and colour_share(a[0], BLUE, right) > 0.9
    assert colour_share(b[0], BLUE, left) > 0.9 and colour_share(b[0], RED, right) > 0.9
    # alpha only on the bodies: none above the head box, all of it inside the frame
    assert a[0, :2, ..., 3].max() == 0 and (a[0, ..., 3] > 0).mean() < 0.5
    # a track nobody performs is not drawn
    c = appearance_prior(img, masks, kp, [0, -1], SIZE, SIZE)
    assert c[0, :, right, 3].max() == 0 and c[0, :, left, 3].max() == 255


def test_characters_stand_on_the_reference_set_without_its_characters():
    img, masks = sheet()
    out = appearance_prior(img, masks, static_keypoints(1), [-1, -1], SIZE, SIZE)
    assert out[..., 3].max() == 0
    assert np.abs(out[0, ..., :3].astype(int) - 128).max() <= 2        # the figures are inpainted away
    big = appearance_prior(img, masks, static_keypoints(1), [-1, -1], 2 * SIZE, SIZE)
    assert big.shape == (1, SIZE, 2 * SIZE, 4)


def test_nearer_tracks_cover_farther_ones():
    img, masks = sheet()
    kp = static_keypoints(1, xs=(30.0, 34.0))
    kp[:, 1, :, 1] += 3                          # track 1 stands lower on screen: nearer the camera
    out = appearance_prior(img, masks, kp, [0, 1], SIZE, SIZE)
    assert colour_share(out[0], BLUE, slice(30, 35)) > 0.9


def test_reference_skeleton_keeps_the_scale_of_a_partly_hidden_character():
    img, masks = sheet()
    kp = static_keypoints(1)
    full = appearance_prior(img, masks, kp, [0, 1], SIZE, SIZE)
    hidden = masks.copy()
    hidden[0, SIZE // 2:] = False                # only the top half of slot 0 shows in the reference
    ref_kp = np.zeros((2, 18, 3), np.float32)
    for s in range(2):                           # skeletons whose body boxes are the figures' own boxes
        x0 = np.nonzero(masks[s].any(0))[0]
        cx = (x0.min() + x0.max() + 1) / 2
        ref_kp[s, :, 2] = 1
        ref_kp[s, J["neck"], :2], ref_kp[s, J["nose"], :2] = (cx, 20), (cx, 20 - (20 - 8) / 2.95)
        ref_kp[s, J["r_hip"], :2] = ref_kp[s, J["l_hip"], :2] = (cx, 35)
        ref_kp[s, J["r_ankle"], :2] = ref_kp[s, J["l_ankle"], :2] = (cx, SIZE - 4 - 0.27 * 15)
        ref_kp[s, [J["r_eye"], J["l_eye"]], 2] = 0
    with_kp = appearance_prior(img, hidden, kp, [0, 1], SIZE, SIZE, reference_keypoints=ref_kp)
    without = appearance_prior(img, hidden, kp, [0, 1], SIZE, SIZE)
    rows = lambda a: np.nonzero(a[0, :, : SIZE // 2, 3].any(1))[0]          # noqa: E731
    # with the skeleton the visible half lands on the upper half of the body; without, it is stretched over all
    assert rows(with_kp).max() < rows(full).mean() + 3
    assert rows(without).max() == pytest.approx(rows(full).max(), abs=2)


@pytest.mark.parametrize("change, message", [
    (dict(slots=[0]), "slots: got 1 entries for 2 tracks"),
    (dict(slots=[0, 2]), "slot 2 has no reference mask"),
    (dict(reference_masks=np.zeros((2, 10, 10), bool)), "reference_masks: expected (slots, 64, 64)"),
    (dict(reference_keypoints=np.zeros((3, 18, 3))), "reference_keypoints: expected"),
])
def test_bad_inputs_say_what_is_wrong(change, message):
    img, masks = sheet()
    kw = dict(reference=img, reference_masks=masks, keypoints=static_keypoints(1), slots=[0, 1],
              width=SIZE, height=SIZE)
    kw.update(change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        appearance_prior(**kw)


def test_prior_covers_the_world_characters_where_they_are():
    """On world samples the prior's figures overlap the true visible masks (IoU of the unions; measured 0.67
    on 40 samples with this seed) — placement, not just presence."""
    from pipelines.train.data import SampleConfig, WorldSampler
    s = WorldSampler(SampleConfig(size=128, window=2), seed=0)
    ious = []
    for i in range(12):
        d = s[i]
        union = d["target_masks"][:, : d["n"]].any(1)
        alpha = d["prior"][..., 3] > 127
        ious.append((alpha & union).sum() / max((alpha | union).sum(), 1))
        assert d["prior"].shape == (2, 128, 128, 4)
    assert np.mean(ious) > 0.55
    plain = WorldSampler(SampleConfig(size=64, plain=True), seed=0)[0]
    assert plain["prior"][..., 3].max() == 0     # the identity-free ablation: the empty set, no characters
    assert plain["prior"][..., :3].std() > 5


def test_widened_guider_starts_where_the_old_one_was():
    from pipelines.train.trainer import widen_guider
    c = make_components()
    old = c["pose_guider"]
    wide = widen_guider(old, 4)
    assert wide.config.conditioning_channels == 7
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    prior = torch.rand(2, 4, SIZE, SIZE) * 2 - 1
    torch.testing.assert_close(wide(torch.cat([x, prior], 1)), old(x))


def test_denoiser_demands_the_prior_it_reads_and_refuses_one_it_does_not():
    from dataclasses import replace
    c = build_components(replace(TEST, appearance_prior=True), seed=0)
    den = MixDenoiser(c["unet"], c["reference_net"], c["pose_guider"], c["motion_adapter"], c["reference_guider"])
    ieg = torch.zeros(1, 2, 3, SIZE, SIZE)
    assert den.reads_prior
    with pytest.raises(ValueError, match="reads the appearance prior"):
        den.encode_pose(ieg)
    with pytest.raises(ValueError, match="prior: expected"):
        den.encode_pose(ieg, torch.zeros(1, 2, 3, SIZE, SIZE))
    assert den.encode_pose(ieg, torch.zeros(1, 2, 4, SIZE, SIZE)).shape[:2] == (1, 2)
    c = make_components()
    den = MixDenoiser(c["unet"], c["reference_net"], c["pose_guider"], c["motion_adapter"], c["reference_guider"])
    with pytest.raises(ValueError, match="reads only the IEG video"):
        den.encode_pose(ieg, torch.zeros(1, 2, 4, SIZE, SIZE))


def test_pipeline_feeds_the_prior_and_the_prior_changes_the_frames():
    from dataclasses import replace

    from generator_fixtures import wake
    from pipelines.mix import MixPipeline
    c = wake(build_components(replace(TEST, appearance_prior=True), seed=0))
    pipe = MixPipeline(**c)
    pipe.set_progress_bar_config(disable=True)
    img, masks = sheet()
    kp = static_keypoints(2)
    kw = dict(reference_image=img, reference_masks=masks, keypoints=kp, width=SIZE, height=SIZE,
              num_inference_steps=2)
    out = pipe(**kw, generator=torch.Generator().manual_seed(0))
    expected = appearance_prior(img, masks, kp, [0, 1], SIZE, SIZE)
    np.testing.assert_array_equal(out.appearance_prior, expected)
    # the guider's prior channels are read: zeroing them changes the frames
    with torch.no_grad():
        pipe.pose_guider.conv_in.weight[:, 3:] = 0
    other = pipe(**kw, generator=torch.Generator().manual_seed(0))
    assert not np.array_equal(out.frames, other.frames)


def test_side_by_side_shows_the_prior_panel_when_given():
    from pipelines.mix import side_by_side
    frames = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    ref = np.zeros((SIZE, SIZE, 3), np.uint8)
    assert side_by_side(ref, ref, frames, frames).shape == (2, SIZE + 16, 4 * SIZE, 3)
    prior = np.full((2, SIZE, SIZE, 4), 200, np.uint8)
    view = side_by_side(ref, ref, frames, frames, prior)
    assert view.shape == (2, SIZE + 16, 5 * SIZE, 3)
    assert view[0, 16:, 3 * SIZE:4 * SIZE].mean() > 150          # the prior's panel, before the output
    with pytest.raises(ValueError, match="prior_frames: 1 frames for a 2-frame clip"):
        side_by_side(ref, ref, frames, frames, prior[:1])


def test_prior_strength_starts_from_the_noised_prior():
    """SDEdit start: a low strength keeps the output near the prior, runs only its share of the steps, and
    bad strengths are refused; a model without the prior still starts from pure noise by default."""
    from dataclasses import replace

    from generator_fixtures import wake
    from pipelines.mix import MixPipeline
    pipe = MixPipeline(**wake(build_components(replace(TEST, appearance_prior=True), seed=0)))
    pipe.set_progress_bar_config(disable=True)
    img, masks = sheet()
    kw = dict(reference_image=img, reference_masks=masks, keypoints=static_keypoints(2), width=SIZE, height=SIZE,
              num_inference_steps=10, generator=torch.Generator().manual_seed(0))
    steps = []
    low = pipe(**kw, prior_strength=0.2, callback_on_step_end=lambda p, i, t, d: steps.append(int(t)) or {})
    full = pipe(**{**kw, "generator": torch.Generator().manual_seed(0)}, prior_strength=1.0)
    assert len(steps) == 2
    prior = low.appearance_prior[..., :3].astype(float)
    assert np.abs(low.frames - prior).mean() < np.abs(full.frames - prior).mean()
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="prior_strength"):
            pipe(**kw, prior_strength=bad)
    old = MixPipeline(**make_components())
    old.set_progress_bar_config(disable=True)
    assert old(**{**kw, "num_inference_steps": 2}).appearance_prior is None      # pure noise, no prior needed


def test_a_model_carries_its_own_default_prior_strength(tmp_path):
    """``prior_strength`` in the pipeline's config (model_index.json) is the SDEdit start used when a call gives
    none; a call's own value still wins; without one the pipeline's constant applies; bad values are refused."""
    from dataclasses import replace

    from generator_fixtures import wake
    from pipelines.mix import MixPipeline
    from pipelines.mix.loading import save_pipeline
    from pipelines.mix.pipeline_mix import DEFAULT_PRIOR_STRENGTH
    parts = wake(build_components(replace(TEST, appearance_prior=True), seed=0))
    assert MixPipeline(**parts).default_prior_strength == DEFAULT_PRIOR_STRENGTH
    pipe = MixPipeline(**parts, prior_strength=0.2)
    pipe.set_progress_bar_config(disable=True)
    img, masks = sheet()
    kw = dict(reference_image=img, reference_masks=masks, keypoints=static_keypoints(2), width=SIZE, height=SIZE,
              num_inference_steps=10, generator=torch.Generator().manual_seed(0))

    def steps_run(p, **extra):
        seen = []
        p(**kw, **extra, callback_on_step_end=lambda _p, i, t, d: seen.append(int(t)) or {})
        return len(seen)
    assert steps_run(pipe) == 2 and steps_run(pipe, prior_strength=0.5) == 5
    save_pipeline(pipe, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model_index.json").read_text())["prior_strength"] == 0.2
    loaded = MixPipeline.from_pretrained(tmp_path / "m", dtype=torch.float32)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.default_prior_strength == 0.2 and steps_run(loaded) == 2
    for bad in (0, 1.5, "x"):
        with pytest.raises(ValueError, match=r"prior_strength \(the model's default"):
            MixPipeline(**parts, prior_strength=bad)
