"""Cross-Character Augmentation: composites put each character's pixels exactly where its mask says, far → near,
with the set's scene-style tag; the world sampler draws CCA samples at the configured share; masks can come from
the Segmenter."""

import numpy as np
import pytest

from pipelines.cce.prompt import parse_prompt
from pipelines.train.cca import (Cutout, cca_plan, composite, interior_point, place, render_cca, segment_cutouts)
from pipelines.train.data import SampleConfig, WorldSampler
from pipelines.world import SHOWS, World, background


@pytest.fixture(scope="module")
def world():
    return World(21, size=96, frames=6)


def solo(world, plan, k, frames=None):
    """Character k of a plan rendered alone on its home show (what CCA cuts out)."""
    ids = list(range(len(plan.poses[0]["x"]))) if frames is None else frames
    poses = [{key: v[ids] for key, v in plan.poses[k].items()}]
    return world.render([plan.specs[k]], poses, plan.info["homes"][k], plan.variant, plan.size, frame_ids=ids)


def test_composite_puts_pixels_exactly_where_the_masks_are(world):
    plan = cca_plan(world, 3, 3, motion="swap")
    clips = [solo(world, plan, k) for k in range(3)]
    cut = [Cutout(c.frames, c.masks[:, 0], c.keypoints[:, 0], s.name, s.style) for c, s in zip(clips, plan.specs)]
    bg = np.ascontiguousarray(background("starport-scouts", 1, 96, 96))
    order = [2, 0, 1]
    comp = composite(cut, bg, order=order)
    F = comp.frames.shape[0]
    assert comp.masks.shape == (F, 3, 96, 96) and comp.frames.shape == (F, 96, 96, 3)
    assert comp.masks.sum(1).max() <= 1                                          # visible masks never overlap
    for k in range(3):
        m = comp.masks[:, k]
        assert m.any() and (m <= comp.amodal[:, k]).all()
        assert np.array_equal(comp.frames[m], clips[k].frames[m])                # its pixels, exactly there
    outside = ~comp.masks.any(1)
    assert np.array_equal(comp.frames[outside], np.broadcast_to(bg, comp.frames.shape)[outside])
    # the nearest character (last in order) keeps its whole silhouette; farther ones lose what it covers
    assert np.array_equal(comp.masks[:, 1], comp.amodal[:, 1])
    hidden = comp.amodal[:, 2] & comp.amodal[:, 1]
    assert not comp.masks[:, 2][hidden].any()


def test_cca_clips_cross_shows_and_styles_with_a_tag(world):
    for i in range(12):
        plan = cca_plan(world, i, (1, 4))
        clip = render_cca(world, plan)
        set_style = SHOWS[clip.show].style
        p = parse_prompt(clip.caption, resolve=False)
        assert p.scene_style == set_style and clip.caption.startswith(f"[scene-style: {set_style}] ")
        assert sorted(p.characters) == sorted(s.name for s in clip.characters)
        assert any(s.style != set_style for s in clip.characters)                # someone from the other style
        if len(clip.characters) >= 2:
            assert len(set(plan.info["homes"])) >= 2                             # from at least two shows
        assert clip.masks.sum(1).max() <= 1 and clip.info["cca"]
        bg = background(clip.show, clip.variant, 96, 96)
        outside = ~clip.masks.any(1)
        assert np.array_equal(clip.frames[outside], np.broadcast_to(bg, clip.frames.shape)[outside])
        # a keypoint counts as visible only where no nearer character's silhouette covers it
        for k in range(len(clip.characters)):
            vis = clip.keypoints[:, k, :, 2] > 0
            xy = np.clip(np.round(clip.keypoints[:, k, :, :2]).astype(int), 0, 95)
            f = np.nonzero(vis)[0]
            covered = clip.amodal[f, :, xy[vis][:, 1], xy[vis][:, 0]]
            nearer = list(clip.order[list(clip.order).index(k) + 1:])
            assert not covered[:, nearer].any()


def test_sampler_draws_cca_at_the_configured_share():
    def cca_share(mix, n):
        s = WorldSampler(SampleConfig(size=64, clip_frames=4, window=1, mix=mix, pcs=0.0, sheet=0.0), seed=1)
        samples = [s[i] for i in range(n)]
        for x in samples:
            if x["cca"]:
                assert parse_prompt(x["caption"], resolve=False).scene_style == SHOWS[x["show"]].style
            else:
                assert "[scene-style:" not in x["caption"]
        return np.mean([x["cca"] for x in samples])
    assert cca_share(0.0, 6) == 0.0 and cca_share(1.0, 6) == 1.0
    assert 0.05 < cca_share(0.2, 30) < 0.45
    sheet = WorldSampler(SampleConfig(size=64, clip_frames=4, mix=1.0, sheet=1.0), seed=2)[0]
    assert sheet["cca"] and sheet["reference_masks"][: sheet["n"]].any(axis=(1, 2)).all()


def test_place_moves_pixels_masks_and_keypoints_together(world):
    clip = world.clip(5, characters=["pip"], motion="wave", frames=2)
    c = Cutout(clip.frames, clip.masks[:, 0], clip.keypoints[:, 0], "Pip", "cartoon")
    moved = place(c, (160, 120), scale=0.5, offset=(70.0, 50.0))
    assert moved.frames.shape == (2, 120, 160, 3) and moved.masks.shape == (2, 120, 160)
    ys, xs = np.nonzero(clip.masks[0, 0])
    ys2, xs2 = np.nonzero(moved.masks[0])
    assert abs(xs2.mean() - (xs.mean() * 0.5 + 70)) < 1.0 and abs(ys2.mean() - (ys.mean() * 0.5 + 50)) < 1.0
    np.testing.assert_allclose(moved.keypoints[..., 0], clip.keypoints[:, 0, :, 0] * 0.5 + 70, atol=1e-4)
    comp = composite([moved], np.zeros((120, 160, 3), np.uint8))
    assert np.array_equal(comp.frames[comp.masks[:, 0]], moved.frames[moved.masks])


def test_composite_errors_are_explained(world):
    clip = world.clip(6, characters=["zed"], frames=3)
    c = Cutout(clip.frames, clip.masks[:, 0])
    with pytest.raises(ValueError, match="no pixels"):
        Cutout(clip.frames, np.zeros_like(clip.masks[:, 0]))
    with pytest.raises(ValueError, match="do not match the frames"):
        Cutout(clip.frames, clip.masks[:2, 0])
    with pytest.raises(ValueError, match="place\\(\\) it onto the canvas"):
        composite([c], np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="frame counts"):
        composite([c, Cutout(clip.frames[:2], clip.masks[:2, 0])], np.zeros((96, 96, 3), np.uint8))
    with pytest.raises(ValueError, match="order"):
        composite([c], np.zeros((96, 96, 3), np.uint8), order=[1])
    with pytest.raises(ValueError, match="lands outside"):
        place(c, (96, 96), offset=(500.0, 0.0))
    held = composite([Cutout(clip.frames[0], clip.masks[0, 0])], np.zeros((3, 96, 96, 3), np.uint8))
    assert held.frames.shape[0] == 3 and (held.masks[:, 0] == clip.masks[0, 0]).all()   # a still over a video


def test_segmenter_masks_composite_where_their_pixels_are(world):
    segment = pytest.importorskip("pipelines.segment")
    seg = segment.Segmenter(backend="fallback")
    plan = cca_plan(world, 8, 2, motion="walk")
    clip = solo(world, plan, 0, frames=[0, 1, 2])
    truth = clip.masks[:, 0]
    masks = segment_cutouts(seg, clip.frames, [interior_point(truth[0])])
    assert masks.shape == (3, 1, 96, 96)
    iou = (masks[:, 0] & truth).sum() / (masks[:, 0] | truth).sum()
    assert iou > 0.7
    bg = np.ascontiguousarray(background("harbor-lane", 0, 96, 96))
    comp = composite([Cutout(clip.frames, masks[:, 0])], bg)
    m = comp.masks[:, 0]
    assert np.array_equal(m, masks[:, 0]) and np.array_equal(comp.frames[m], clip.frames[m])
    seg_clip = render_cca(world, plan, [0, 1, 2], segmenter=seg)
    assert seg_clip.masks.shape == (3, 2, 96, 96) and seg_clip.masks.any(axis=(0, 2, 3)).all()
