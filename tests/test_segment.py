"""Click segmentation without SAM2 weights: input checking, the offline engine on world frames, refinement,
video propagation, the GrabCut last resort, missing-weights fallback and cut-outs."""

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.segment import Segmenter, WeightsNotFound, cutout
from pipelines.segment.inputs import MAX_PIXELS, as_rgb_uint8
from pipelines.segment.protocol import click_session, first_click, iou


@pytest.fixture(scope="module")
def seg():
    s = Segmenter(backend="fallback", device="cpu")
    assert s.engine == "clicknet", s.status           # the shipped weights must load
    return s


@pytest.fixture(scope="module")
def frames(world):
    """Two crowded world frames per style at 128 and one per style at 512 (both styles, 3–5 characters)."""
    out = []
    for size, per_style in ((128, 2), (512, 1)):
        found = {"cartoon": 0, "live-action": 0}
        i = 0
        while min(found.values()) < per_style:
            clip = world.clip(500 + i, n_characters=(3, 5), size=size, frames=3)
            i += 1
            if found[clip.scene_style] < per_style:
                found[clip.scene_style] += 1
                out.append((clip.frames[1], clip.masks[1], clip.scene_style, size))
    return out


def clickable(masks, min_area: int = 20):
    """The characters of a test frame worth a click: those with at least ``min_area`` visible pixels."""
    return [m for m in masks if m.sum() >= min_area]


# ---- the offline engine on the embedded world ----------------------------------------------------------
def test_fallback_iou_on_world_frames(seg, frames):
    res = {}
    for img, masks, style, size in frames:
        seg.set_image(img)
        for m in masks:
            if m.sum() >= 20:
                res.setdefault((style, size), []).append(click_session(seg, m, 3))
    allv = np.concatenate([np.array(v) for v in res.values()])
    assert len(allv) >= 15
    one, three = allv[:, 0].mean(), allv[:, 2].mean()
    # the shipped weights do NOT reach the 0.90 / 0.95 (docs/SEGMENTATION.md has the benchmark);
    # these floors sit under what they reach on this sample with the shipped inference (0.808 / 0.913; the
    # stop-11 weights reached 0.757 / 0.865 and fail them), so a regression of the weights fails. 26
    # characters are too few to tell the stop-19 inference (0.790 / 0.893 with stop 19's weights) from
    # today's: the square zoom crop and the flipped passes have tests of their own below
    assert one >= 0.77, {k: np.mean(v, 0).round(3).tolist() for k, v in res.items()}
    assert three >= 0.88, {k: np.mean(v, 0).round(3).tolist() for k, v in res.items()}
    assert three >= one
    for v in res.values():                               # both styles, both sizes work
        assert np.mean(v, 0)[2] >= 0.70


def test_predict_shapes_multimask_and_several_objects(seg, frames):
    img, masks, _, _ = frames[0]
    H, W = masks.shape[1:]
    seg.set_image(img)
    objects = [m for m in masks if m.sum() > 50][:2]
    preds = []
    for m in objects:                                    # one predict per object, each with its own clicks
        x, y, _ = first_click(m)
        ms, scores, low = seg.predict(points=[(x, y)], labels=[1])
        assert ms.shape == (1, H, W) and ms.dtype == bool
        assert scores.shape == (1,) and scores.dtype == np.float32 and 0 <= scores[0] <= 1
        assert low.shape == (1, 256, 256) and low.dtype == np.float32
        preds.append(ms[0])
        ms3, scores3, low3 = seg.predict(points=[(x, y)], labels=[1], multimask=True)
        assert ms3.shape == (3, H, W) and scores3.shape == (3,) and low3.shape == (3, 256, 256)
        assert ms3[0].sum() >= ms3[1].sum() >= ms3[2].sum()        # looser → tighter
    assert iou(preds[0], preds[1]) < 0.2                 # different clicks, different characters


def test_negative_click_and_mask_input_refine(seg, frames):
    img, masks, _, _ = frames[1]
    seg.set_image(img)
    m = max(masks, key=lambda a: a.sum())
    x, y, _ = first_click(m)
    # a deliberately bad start: the whole image claimed as the object
    everything = np.full((1, 256, 256), 10.0, np.float32)
    bad, _, bad_low = seg.predict(points=[(x, y)], labels=[1], mask_input=everything)
    ok, _, low = seg.predict(points=[(x, y)], labels=[1])
    other = next(o for o in masks if o.sum() > 50 and not (o & m).any())
    ox, oy, _ = first_click(other)
    spilled = ok[0] | other                              # pretend the first answer spilled onto a neighbour
    spill_logits = np.where(_to256(spilled), 8.0, -8.0).astype(np.float32)[None]
    fixed, _, _ = seg.predict(points=[(x, y), (ox, oy)], labels=[1, 0], mask_input=spill_logits)
    assert (fixed[0] & other).sum() < 0.2 * other.sum()  # the negative click removed the neighbour
    assert iou(fixed[0], m) > 0.6
    # mask_input is listened to: where a previous answer spilled onto the neighbour, the click alone gives the
    # neighbour a mean low-res logit of −21.0 and the click with that answer fed back −5.9 (stop 32's file;
    # stop 31's: −20.5 and −6.5) — it rises without taking the neighbour over
    _, _, claimed_low = seg.predict(points=[(x, y)], labels=[1], mask_input=spill_logits)
    neighbour = _to256(other & ~m)
    assert claimed_low[0][neighbour].mean() > low[0][neighbour].mean() + 5.0
    # … and a prompt that claims the whole image raises the logits (mean +0.9 with stop 32's file, +2.0 with
    # stop 31's: later fine-tunes lean on the clicks more) but does not take over the click's answer (1 823
    # pixels against 1 822)
    assert bad_low.mean() > low.mean()
    assert bad[0].sum() >= 0.99 * ok[0].sum()


def test_a_negative_click_rejects_the_whole_detached_piece_it_lands_on():
    from pipelines.segment.offline import _obey_negative_clicks
    logits = np.full((40, 60), -5.0, np.float32)
    logits[5:35, 5:20] = 3.0                     # the object, clicked positive at (10, 20)
    logits[10:30, 40:55] = 2.0                   # a detached piece of something else
    pos, neg = np.array([[10.0, 20.0]]), np.array([[47.0, 20.0]])
    out = _obey_negative_clicks(logits, np.vstack([pos, neg]), np.array([1, 0]))
    assert (out[10:30, 40:55] < -1).all() and np.array_equal(out[5:35, 5:20], logits[5:35, 5:20])
    # a negative click on the object itself is left to the network (the user is trimming it)
    trim = _obey_negative_clicks(logits, np.vstack([pos, [[8.0, 30.0]]]), np.array([1, 0]))
    assert np.array_equal(trim, logits)
    # the network already cleared the clicked pixel but kept two bits of that piece: the piece the user
    # rejected is the one on screen when clicking (the previous mask), so both bits go
    prev = logits.copy()
    now = logits.copy()
    now[10:30, 40:55] = -5.0
    now[10:14, 40:45] = 1.0
    now[26:30, 50:55] = 1.0
    out = _obey_negative_clicks(now, np.vstack([pos, neg]), np.array([1, 0]), prev)
    assert (out[10:30, 40:55] < -1).all() and np.array_equal(out[5:35, 5:20], now[5:35, 5:20])
    # without a negative click nothing changes
    assert np.array_equal(_obey_negative_clicks(logits, pos, np.array([1])), logits)
    # with a box, the largest piece is the object the box asked for: a positive click on a detached hand and a
    # negative click on the body trim the body (left to the network), they do not throw it away
    hand, body = np.array([[47.0, 20.0]]), np.array([[10.0, 20.0]])
    boxed = _obey_negative_clicks(logits, np.vstack([hand, body]), np.array([1, 0]), boxed=True)
    assert np.array_equal(boxed, logits)
    unboxed = _obey_negative_clicks(logits, np.vstack([hand, body]), np.array([1, 0]))
    assert (unboxed[5:35, 5:20] < -1).all()


def test_an_overruled_negative_click_on_the_object_splits_off_the_part_along_its_outline():
    from pipelines.segment.offline import _obey_negative_clicks
    img = np.full((60, 40, 3), 200, np.uint8)
    img[10:55, 10:30] = (40, 90, 200)            # a blue body …
    img[2:10, 12:28] = (220, 30, 30)             # … wearing a red hat
    logits = np.full((60, 40), -5.0, np.float32)
    logits[2:55, 10:30] = 2.0                    # the network keeps the hat despite the negative click
    pts, labs = np.array([[20.0, 30.0], [20.0, 5.0]]), np.array([1, 0])
    out = _obey_negative_clicks(logits, pts, labs, None, img)
    assert (out[2:10, 12:28] < -1).mean() > 0.95  # the hat goes, bounded by its outline …
    assert (out[12:55, 10:30] > 0).all()         # … and the body stays whole
    # a negative click whose part would be a large share of the mask takes out only the clicked spot
    flat = np.full((60, 40, 3), 120, np.uint8)
    out = _obey_negative_clicks(logits, np.array([[20.0, 50.0], [20.0, 6.0]]), labs, None, flat)
    assert out[6, 20] < -1 and (out > 0).sum() > 0.9 * (logits > 0).sum()
    # a negative click on a sliver of spill along the mask's edge: the flood behind it reaches the head, much
    # farther than the click is from the edge (SPLIT_REACH), so the head stays and only the clicked spot goes
    img = np.full((80, 50, 3), 200, np.uint8)
    img[22:75, 8:42] = (40, 90, 200)             # a body …
    img[20:22, 8:42] = 0                         # … its outline …
    img[5:20, 17:33] = (220, 30, 30)             # … and a head
    logits = np.full((80, 50), -5.0, np.float32)
    logits[20:75, 8:42] = logits[5:20, 17:33] = 2.0
    logits[5:20, 15:17] = 2.0                    # spill: two columns of background beside the head
    out = _obey_negative_clicks(logits, np.array([[25.0, 50.0], [15.0, 12.0]]), labs, None, img)
    assert out[12, 15] < -1 and (out[5:20, 17:33] > 0).all() and (out[20:75, 8:42] > 0).all()


def test_spill_samples_claim_a_neighbour_and_click_it_negative():
    from pipelines.segment.train import spill_prompt
    target = np.zeros((64, 64), bool)
    target[10:50, 10:25] = True
    neighbour = np.zeros_like(target)
    neighbour[10:50, 22:40] = True               # overlaps the target a little, touches it
    far = np.zeros_like(target)
    far[5:15, 55:62] = True
    rng = np.random.default_rng(0)
    seen_partial = False
    for _ in range(20):
        prev, clicks = spill_prompt(target, [far, neighbour], rng)
        (x, y, l1), (nx, ny, l0) = clicks
        assert (l1, l0) == (1, 0) and target[y, x] and neighbour[ny, nx] and not target[ny, nx]
        assert not far[prev > 0].any()           # the touching neighbour is the one that spilled
        assert (prev > 0)[ny, nx] and (prev > 0)[y, x]
        seen_partial |= (prev > 0)[neighbour & ~target].mean() < 0.99
    assert seen_partial                          # sometimes only the part near the target spilled
    assert spill_prompt(target, [], rng) is None and spill_prompt(target, [target & neighbour], rng) is None


def test_touching_curriculum_draws_targets_that_touch_a_neighbour():
    from pipelines.segment.train import FramePool, touching
    a = np.zeros((40, 40), bool)
    a[5:20, 5:15] = True
    b = np.zeros_like(a)
    b[5:20, 16:25] = True                         # one pixel of background between a and b: touching
    c = np.zeros_like(a)
    c[30:38, 30:38] = True                        # stands apart
    masks = np.stack([a, b, c])
    assert touching(masks).tolist() == [0, 1] and touching(masks[2:]).tolist() == []
    assert touching(np.stack([a, c])).tolist() == []
    pool = FramePool(3, 6, [128], [1.0], characters=(2, 3), touching_prob=1.0)
    assert all(2 <= len(m) <= 3 for _, m, _, _ in pool.frames)
    rng = np.random.default_rng(0)
    picked = [pool.sample(rng) for _ in range(40)]
    hits = [(k in touching(m).tolist()) for s in picked if s is not None for _, m, k in [s]
            if len(touching(m))]
    assert hits and all(hits)                     # every frame with a touching pair gave a touching target


def test_fragmented_curriculum_draws_characters_an_occluder_cuts_into_pieces():
    from pipelines.segment.train import FramePool, fragmented
    a = np.zeros((40, 40), bool)
    a[5:30, 5:10] = True
    a[5:30, 20:25] = True                         # two pieces of 125 pixels: cut by something in front
    b = a.copy()
    b[5:7, 20:22] = False
    b[5:30, 20:25] = False
    b[35, 30] = True                              # one pixel apart: under 5 % of the mask, not a piece
    c = np.zeros_like(a)
    c[30:38, 30:38] = True                        # one piece
    assert fragmented(np.stack([a, b, c])).tolist() == [0] and fragmented(np.zeros((0, 40, 40), bool)).size == 0
    from pipelines.segment.protocol import pieces
    assert [pieces(m) for m in (a, b, c, np.zeros_like(a))] == [2, 1, 1, 0]
    pool = FramePool(5, 12, [128], [1.0], characters=(3, 5), fragmented_prob=1.0)
    assert any(len(cut) for _, _, _, cut in pool.frames)        # occlusion cuts characters in world frames
    rng = np.random.default_rng(0)
    picked = [pool.sample(rng) for _ in range(60)]
    hits = [(k in fragmented(m).tolist()) for s in picked if s is not None for _, m, k in [s]
            if len(fragmented(m))]
    assert hits and all(hits)                     # every frame with a cut character gave a cut target


def _to256(mask):
    import cv2
    return cv2.resize(mask.astype(np.float32), (256, 256), interpolation=cv2.INTER_AREA) > 0.5


def _tiny_clicknet(size: int = 64):
    """A random 64-pixel ClickNet: for the engine's geometry and arithmetic, not its quality."""
    from pipelines.segment.clicknet import ClickNet, ClickNetConfig
    torch.manual_seed(0)
    return ClickNet(ClickNetConfig(size=size, widths=(8, 8, 8, 8, 8))).eval()


def test_the_zoom_crop_is_a_square_around_the_first_answer_as_in_training():
    """ClickNet's zoomed training views are squares around the character; a crop stretched to the square view
    (stop 19's) showed the network characters it never saw and cost 0.02–0.03 IoU (docs/SEGMENTATION.md)."""
    from pipelines.segment.offline import ZOOM_MARGIN, OfflineSegmenter
    e = OfflineSegmenter(net=_tiny_clicknet())
    pos, one = np.array([[220.0, 250.0]]), np.array([1])
    tall = np.zeros((512, 512), bool)
    tall[150:350, 200:240] = True                        # 40 wide, 200 tall
    x0, y0, x1, y1 = e._zoom_box(tall, pos, one, None, 512, 512)
    assert x1 - x0 == y1 - y0 == int(np.ceil(200 * (1 + 2 * ZOOM_MARGIN)))
    assert abs((x0 + x1) / 2 - 220) <= 1 and abs((y0 + y1) / 2 - 250) <= 1
    edge = np.zeros((512, 512), bool)
    edge[200:300, 0:30] = True                           # at the left edge: shifted inside the image
    x0, y0, x1, y1 = e._zoom_box(edge, np.array([[10.0, 250.0]]), one, None, 512, 512)
    assert x0 == 0 and x1 - x0 == y1 - y0
    # a wide image whose character is nearly as tall as it: the square overhangs top and bottom evenly …
    wide = np.zeros((200, 600), bool)
    wide[10:190, 280:320] = True
    x0, y0, x1, y1 = e._zoom_box(wide, np.array([[300.0, 100.0]]), one, None, 600, 200)
    assert x1 - x0 == y1 - y0 > 200 and y0 < 0 < 200 < y1 and abs(y0 + (y1 - 200)) <= 1
    # … and predict pastes back only the part on the image
    e.set_image(np.random.default_rng(1).integers(0, 256, (200, 600, 3), dtype=np.uint8))
    masks, scores, low = e.predict(np.array([[300.0, 100.0]]), one)
    assert masks.shape == (1, 200, 600) and low.shape == (1, 256, 256) and np.isfinite(low).all()


@torch.no_grad()                                         # as the engine's public methods run
def test_flipped_passes_average_the_mirrored_view_exactly():
    """With flipping on, the decoder's answer on a mirrored view with mirrored clicks is the mirror of its
    answer: the batch-of-two pass flips the second answer back before averaging (a random ClickNet, so this
    holds by construction, not by training)."""
    from pipelines.segment.offline import OfflineSegmenter
    S = 64
    net = _tiny_clicknet(S)
    view = np.random.default_rng(0).integers(0, 256, (S, S, 3), dtype=np.uint8)
    pts, labels = np.array([[10.0, 20.0], [40.0, 33.0]]), np.array([1, 0])
    mirrored = pts.copy()
    mirrored[:, 0] = S - 1 - pts[:, 0]
    outs = {}
    for flips in ((), ("global",)):
        e = OfflineSegmenter(net=net, flip_passes=flips)
        a = e._decode(e._encode(view, "global"), (0, 0, S, S), pts, labels, None)
        b = e._decode(e._encode(np.ascontiguousarray(view[:, ::-1]), "global"), (0, 0, S, S), mirrored, labels, None)
        outs[flips] = a, b[:, ::-1]
        if flips:
            np.testing.assert_allclose(b[:, ::-1], a, atol=1e-5)
        else:                                            # one random network alone is not mirror-symmetric
            assert np.abs(b[:, ::-1] - a).max() > 1e-3
    # the flipped answer is the mean of the plain answer and the mirrored pass's answer mirrored back
    plain, back = outs[()]
    np.testing.assert_allclose(outs[("global",)][0], (plain + back) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="flip_passes: unknown pass.*'global' and 'zoom'"):
        OfflineSegmenter(net=net, flip_passes=("global", "sideways"))


def _step_image(size: int = 64):
    """A flat-coloured rectangle on a flat background (a cartoon character's outline, in miniature)."""
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (40, 120, 200)
    img[16:48, 20:44] = (200, 60, 40)
    truth = np.zeros((size, size), bool)
    truth[16:48, 20:44] = True
    return img, truth


def test_edge_snapping_moves_a_coarse_edge_onto_the_image_edge():
    """A mask edge off by a pixel and blurred, as the network's half-resolution answer upsampled is,
    lands exactly on the colour edge; logits far from the mask are kept."""
    import cv2

    from pipelines.segment.edges import snap_logits
    img, truth = _step_image()
    shifted = np.roll(truth, (1, 1), (0, 1))             # off by a pixel down and right, corners rounded
    coarse = 16.0 * (cv2.GaussianBlur(shifted.astype(np.float32), (0, 0), 1.5) - 0.5)
    coarse[:, 56:] = -20.0                               # far from the mask: not the filter's business
    assert iou(coarse > 0, truth) < 0.87
    snapped = snap_logits(coarse, img, radius=3, eps=1e-4)
    assert iou(snapped > 0, truth) > 0.99                # every edge on the outline; a few corner pixels off
    np.testing.assert_array_equal(snapped[:, 56:], coarse[:, 56:])
    nothing = np.full((64, 64), -10.0, np.float32)       # no mask at all: returned as it is
    assert snap_logits(nothing, img, 2, 1e-4) is nothing


def test_edge_snapping_raises_every_first_click_on_512_pixel_world_frames(seg, frames):
    """At 512 pixels one decoder pixel of the zoom pass spans two to three image pixels; snapping the edge onto
    the outline raised the benchmark's first click by 0.011 (docs/SEGMENTATION.md). On these frames it raises
    every character's (nine, +0.000 to +0.018 with the shipped weights)."""
    from pipelines.segment.offline import OfflineSegmenter
    plain, snapped = OfflineSegmenter(net=seg._engine.net, edge_scale=0.0), OfflineSegmenter(net=seg._engine.net)
    gains = []
    for img, masks, _, size in frames:
        if size != 512:
            continue
        plain.set_image(img)
        snapped.set_image(img)
        for m in masks:
            if m.sum() >= 20:
                x, y, _ = first_click(m)
                p, one = np.array([[x, y]], float), np.array([1])
                gains.append(iou(snapped.logits(p, one) > 0, m) - iou(plain.logits(p, one) > 0, m))
    assert len(gains) >= 6
    assert min(gains) > -0.002 and np.mean(gains) > 0.005, np.round(gains, 4)


def test_guided_filter_is_a_box_mean_on_a_flat_guide_and_checks_its_arguments():
    """With nothing in the guide to follow, every window's fit is its mean, and each pixel gets the mean of the
    means of the windows that cover it: the box filter applied twice."""
    import cv2

    from pipelines.segment.edges import guided_filter
    src = np.random.default_rng(0).random((40, 50), dtype=np.float32)
    flat = np.full((40, 50, 3), 0.3, np.float32)
    box = lambda a: cv2.blur(a, (5, 5), borderType=cv2.BORDER_REFLECT)    # noqa: E731
    np.testing.assert_allclose(guided_filter(flat, src, 2, 1e-4),
                               box(box(src)), atol=1e-5)
    with pytest.raises(ValueError, match="radius of at least 1"):
        guided_filter(flat, src, 0, 1e-4)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) guide"):
        guided_filter(flat[..., 0], src, 1, 1e-4)


@torch.no_grad()
def test_the_engine_snaps_over_about_one_decoder_pixel_of_its_last_pass(monkeypatch):
    """The window radius is EDGE_SCALE × image pixels per decoder output pixel (the decoder answers at half the
    view): a 64-pixel net's zoom crop of 96 pixels → 96 / 32 = 3; its global view of a 64-pixel image → 2;
    edge_scale 0 snaps nothing; a negative scale is refused."""
    from pipelines.segment import offline
    radii = []
    monkeypatch.setattr(offline, "snap_logits", lambda lg, im, r, eps: radii.append(r) or lg)
    img, _ = _step_image()
    pts, one = np.array([[30.0, 30.0]]), np.array([1])
    for crop, scale, want in (((0, 0, 96, 96), 1.0, 3), (None, 1.0, 2), (None, 2.0, 4), (None, 0.0, None)):
        e = offline.OfflineSegmenter(net=_tiny_clicknet(), edge_scale=scale)
        monkeypatch.setattr(e, "_zoom_box", lambda *a, crop=crop: crop)
        e.set_image(img)
        radii.clear()
        e.logits(pts, one)
        assert radii == ([] if want is None else [want])
    with pytest.raises(ValueError, match="edge_scale: -1.0"):
        offline.OfflineSegmenter(net=_tiny_clicknet(), edge_scale=-1.0)


def test_box_prompt_stays_inside_the_box(seg, frames):
    ious = []
    for img, masks, _, size in frames[:2]:
        seg.set_image(img)
        for m in clickable(masks):
            ys, xs = np.nonzero(m)
            box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            ms, _, _ = seg.predict(box=box)
            inside = np.zeros_like(m)
            inside[box[1]:box[3], box[0]:box[2]] = True
            assert not (ms[0] & ~inside).any()
            ious.append(iou(ms[0], m))
    # box-only is weak for a half-hidden character (its box also holds the occluder): 0.69 mean on these
    # frames, > 0.8 where the character is in the open; a click inside it fixes the ambiguity
    assert len(ious) >= 6 and np.mean(ious) >= 0.6 and np.median(ious) >= 0.75, np.round(ious, 3)


def test_box_session_starts_from_the_box_alone_and_adds_clicks_to_it(seg, frames):
    """The benchmark's box protocol (``segment_bench quality --prompt box``): the first answer is the box-only
    prompt's, the later ones keep the box and add corrective clicks, and those clicks help."""
    from pipelines.segment.protocol import bounding_box
    img, masks, _, _ = frames[0]
    seg.set_image(img)
    sessions = []
    for m in clickable(masks):
        r = click_session(seg, m, 3, box=True)
        alone, _, _ = seg.predict(box=bounding_box(m))
        assert r[0] == iou(alone[0], m) and len(r) == 3
        sessions.append(r)
    v = np.array(sessions)
    assert len(v) >= 3 and v[:, 2].mean() > v[:, 0].mean(), v.round(3)


def test_propagate_follows_characters_through_a_world_clip(seg, world):
    clip = world.clip(31, n_characters=3, motion="walk", size=128, frames=8)
    tracks = seg.propagate(clip.frames, 3, clip.masks[3])
    assert tracks.shape == clip.masks.shape and tracks.dtype == bool
    assert (tracks[3] == clip.masks[3]).all()
    assert tracks.sum(1).max() <= 1                       # objects never overlap
    ious = [iou(tracks[f, k], clip.masks[f, k]) for f in range(8) for k in range(3) if clip.masks[f, k].sum() > 20]
    assert np.mean(ious) >= 0.72                          # 0.79 with the shipped weights (the issue sets no bar)
    assert not seg.is_image_set                           # propagate leaves no image behind
    with pytest.raises(ValueError, match="frame_index"):
        seg.propagate(clip.frames, 8, clip.masks[0])
    with pytest.raises(ValueError, match="masks"):
        seg.propagate(clip.frames, 0, clip.masks[0][:, :64])


# ---- bad inputs ------------------------------------------------------------------------------------------
def test_predict_before_set_image_says_what_to_do():
    s = Segmenter(backend="fallback")
    with pytest.raises(RuntimeError, match=r"set_image"):
        s.predict(points=[(1, 1)], labels=[1])
    s.set_image(np.zeros((8, 8, 3), np.uint8))
    s.reset()
    with pytest.raises(RuntimeError, match=r"set_image"):
        s.predict(points=[(1, 1)], labels=[1])


def test_bad_prompts_name_the_argument(seg):
    seg.set_image(np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="no clicks and no box"):
        seg.predict()
    with pytest.raises(ValueError, match=r"points: \(60, 5\) is outside the 60×40 image"):
        seg.predict(points=[(60, 5)], labels=[1])
    with pytest.raises(ValueError, match="points"):
        seg.predict(points=[(-1, 5)], labels=[1])
    with pytest.raises(ValueError, match="labels: 1 labels for 2 points"):
        seg.predict(points=[(1, 1), (2, 2)], labels=[1])
    with pytest.raises(ValueError, match="labels: missing"):
        seg.predict(points=[(1, 1)])
    with pytest.raises(ValueError, match="labels"):
        seg.predict(points=[(1, 1)], labels=[2])
    with pytest.raises(ValueError, match="every click is negative"):
        seg.predict(points=[(1, 1)], labels=[0])
    with pytest.raises(ValueError, match="mask_input"):
        seg.predict(points=[(1, 1)], labels=[1], mask_input=np.zeros((1, 64, 64)))
    with pytest.raises(ValueError, match="box"):
        seg.predict(box=(10, 10, 5, 20))


def test_images_of_every_kind_are_accepted(seg):
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    assert (as_rgb_uint8(gray) == gray[..., None]).all() and as_rgb_uint8(gray).shape == (24, 32, 3)
    assert as_rgb_uint8(gray[..., None]).shape == (24, 32, 3)
    wide = rgb.astype(np.uint16) * 257                     # 16-bit with the same content
    assert (as_rgb_uint8(wide) == rgb).all()
    assert np.abs(as_rgb_uint8(rgb / 255.0).astype(int) - rgb).max() <= 1
    rgba = np.dstack([rgb, np.full((24, 32), 255, np.uint8)])
    rgba[0, 0, 3] = 0                                      # transparent pixels are shown on white
    out = as_rgb_uint8(rgba)
    assert (out[1:] == rgb[1:]).all() and (out[0, 0] == 255).all()
    assert (as_rgb_uint8(Image.fromarray(rgb)) == rgb).all()
    assert (as_rgb_uint8(Image.fromarray(rgba, "RGBA"))[0, 0] == 255).all()
    assert (as_rgb_uint8(Image.fromarray(gray)) == gray[..., None]).all()
    pil16 = Image.fromarray(gray.astype(np.uint16) * 257)
    assert (as_rgb_uint8(pil16) == gray[..., None]).all()
    for img in (gray, wide, rgba, Image.fromarray(rgba, "RGBA"), pil16):
        seg.set_image(img)
        ms, _, _ = seg.predict(points=[(5, 5)], labels=[1])
        assert ms.shape == (1, 24, 32)
    with pytest.raises(ValueError, match="channels"):
        as_rgb_uint8(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        as_rgb_uint8(np.full((4, 4), 3.0))
    with pytest.raises(ValueError, match="image: expected"):
        seg.set_image("picture.png")


def test_empty_image_is_refused(seg):
    for empty in (np.zeros((0, 10, 3), np.uint8), np.zeros((10, 0), np.uint8)):
        with pytest.raises(ValueError, match="empty"):
            seg.set_image(empty)


def test_huge_images_are_refused_before_anything_is_allocated(seg):
    side = int(np.sqrt(MAX_PIXELS)) + 100
    virtual = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (side, side, 3))   # 40+ MP, no memory behind it
    tracemalloc.start()
    with pytest.raises(ValueError, match="megapixels"):
        seg.set_image(virtual)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000
    # a PNG that claims 8000×6000 pixels: PIL reads the size from the header, nothing is decoded
    with pytest.raises(ValueError, match=r"8000×6000 is 48.0 megapixels"):
        seg.set_image(Image.open(io.BytesIO(_png_claiming(8000, 6000))))


def _png_claiming(w, h):
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]                                   # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", w, h)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


# ---- weights -----------------------------------------------------------------------------------------------
def test_missing_sam2_weights_fall_back_with_a_status_naming_repo_and_file(tmp_path, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    s = Segmenter(backend="auto", model="facebook/sam2.1-hiera-tiny")
    assert s.backend == "fallback"
    assert "facebook/sam2.1-hiera-tiny" in s.status and "sam2.1_hiera_tiny.pt" in s.status
    assert "HF_HUB_OFFLINE=1" in s.status and "offline click segmenter" in s.status
    with pytest.raises(WeightsNotFound, match=r"facebook/sam2.1-hiera-large \(sam2.1_hiera_large.pt\)"):
        Segmenter(backend="sam2", model="facebook/sam2.1-hiera-large")
    with pytest.raises(WeightsNotFound, match="no checkpoint file"):
        Segmenter(backend="sam2", model=str(tmp_path / "sam2.1_hiera_tiny.pt"))
    with pytest.raises(ValueError, match="neither a SAM2 checkpoint id"):
        Segmenter(model="facebook/sam3")
    with pytest.raises(ValueError, match="backend"):
        Segmenter(backend="gpu")


def test_grabcut_is_the_last_resort_when_clicknet_weights_are_missing(tmp_path, monkeypatch, frames):
    monkeypatch.setenv("CROSSOVER_ASSETS", str(tmp_path))
    s = Segmenter(backend="fallback")
    assert s.backend == "fallback" and s.engine == "grabcut"
    assert "GrabCut" in s.status and "clicknet.safetensors" in s.status
    img, masks, _, _ = frames[0]
    s.set_image(img)
    ious = []
    for m in clickable(masks):
        x, y, _ = first_click(m)
        ms, scores, low = s.predict(points=[(x, y)], labels=[1], multimask=True)
        assert ms.shape == (3,) + m.shape and scores.shape == (3,) and low.shape == (3, 256, 256)
        assert ms[:, y, x].all()                           # every hypothesis holds the click
        single, _, _ = s.predict(points=[(x, y)], labels=[1])
        ious.append(iou(single[0], m))
    assert np.mean(ious) > 0.2          # weak, as docs/SEGMENTATION.md says (0.37 at 128 px), but working


def test_unreadable_clicknet_weights_give_a_clear_error(tmp_path):
    from pipelines.segment.clicknet import load_clicknet
    bad = tmp_path / "clicknet.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(Exception, match="clicknet.safetensors"):
        load_clicknet(bad)


# ---- cut-outs ----------------------------------------------------------------------------------------------
def test_cutout_round_trip_alpha_matches_the_mask(world):
    img, mask = world.portrait(world_character(), 192)
    rgba = cutout(img, mask)
    ys, xs = np.nonzero(mask)
    margin = max(2, round(0.03 * max(np.ptp(ys) + 1, np.ptp(xs) + 1)))
    y0, x0 = max(0, ys.min() - margin), max(0, xs.min() - margin)
    crop = mask[y0:y0 + rgba.shape[0], x0:x0 + rgba.shape[1]]
    assert rgba.dtype == np.uint8 and rgba.shape[2] == 4
    assert rgba.shape[:2] == (min(192, ys.max() + 1 + margin) - y0, min(192, xs.max() + 1 + margin) - x0)
    assert ((rgba[..., 3] >= 128) == crop).all()        # alpha ≥ ½ exactly on the mask
    assert (rgba[..., 3][_interior(crop)] == 255).all()  # solid inside …
    assert (rgba[..., 3][_interior(~crop)] == 0).all()   # … clear outside, soft only along the border
    edge = rgba[..., 3][(rgba[..., 3] > 0) & (rgba[..., 3] < 255)]
    assert edge.size > 0                                  # anti-aliased, not a hard cut
    with pytest.raises(ValueError, match="empty"):
        cutout(img, np.zeros_like(mask))
    with pytest.raises(ValueError, match="does not match"):
        cutout(img, mask[:10])


def world_character():
    from pipelines.world import NAMED
    return NAMED[0]


def _interior(m):
    import cv2
    return cv2.erode(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def test_cutout_removes_the_background_fringe():
    # a red disc drawn anti-aliased on green: its edge pixels are red-green mixes
    import cv2
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = (0, 200, 0)
    cv2.circle(img, (32 * 16, 32 * 16), 16 * 16, (220, 0, 0), -1, cv2.LINE_AA, 4)   # sub-pixel: 4 fraction bits
    mask = np.zeros((64, 64), np.uint8)
    cv2.circle(mask, (32, 32), 16, 1, -1)
    mask = mask.astype(bool)
    rgba = cutout(img, mask, margin=2)
    y0, x0 = np.nonzero(mask)[0].min() - 2, np.nonzero(mask)[1].min() - 2
    src = img[y0:y0 + rgba.shape[0], x0:x0 + rgba.shape[1]].astype(int)
    edge = (rgba[..., 3] >= 128) & (src[..., 1] > 20)     # mask pixels carrying some green
    assert edge.any()
    assert rgba[..., 1][edge].astype(int).mean() < 0.5 * src[..., 1][edge].mean()
    soft = (rgba[..., 3] > 10) & (rgba[..., 3] < 245)
    assert soft.sum() >= 20                                # the edge alpha follows the drawn anti-aliasing


# ---- training ----------------------------------------------------------------------------------------------
def test_training_script_trains_resumes_and_exports(tmp_path):
    import cv2
    import torch

    from pipelines.segment import train
    from pipelines.segment.clicknet import load_clicknet, read_clicknet_metadata
    from pipelines.train import checkpoint
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    common = ["--output_dir", str(tmp_path / "run"), "--batch_size", "2", "--pool_frames", "3", "--render_sizes", "128",
              "--render_probs", "1", "--validation_clips", "1", "--bn_batches", "1", "--checkpointing_steps", "2",
              "--warmup_steps", "1", "--max_sim_clicks", "1"]
    try:
        train.main(train.parse_args(common + ["--max_steps", "2"]))
        state = checkpoint.load(checkpoint.resolve(tmp_path / "run", "latest"), {"net": train.ClickNet()})
        assert state["step"] == 2 and set(state["validation"]) == {"128", "512"}
        assert state["config"]["batch_size"] == 2 and state["config"]["net"]["size"] == 256
        train.main(train.parse_args(common + ["--max_steps", "3", "--resume_from_checkpoint", "latest",
                                              "--validation_clips", "0"]))
        assert checkpoint.resolve(tmp_path / "run", "latest").name == "step_00000003"
        out = tmp_path / "clicknet.safetensors"
        train.main(train.parse_args(common + ["--export", str(out)]))
        # a fine-tune: starts at step 0 from those weights, with its own schedule, and records where it began
        init = checkpoint.resolve(tmp_path / "run", "latest")
        ft = ["--output_dir", str(tmp_path / "ft")] + common[2:]
        train.main(train.parse_args(ft + ["--max_steps", "2", "--init", str(init), "--validation_clips", "0",
                                          "--lr", "0"]))
        start, tuned = train.ClickNet(), train.ClickNet()
        checkpoint.load(init, {"net": start})
        state = checkpoint.load(checkpoint.resolve(tmp_path / "ft", "latest"), {"net": tuned})
        assert state["step"] == 2 and state["config"]["init"] == {"checkpoint": str(init), "step": 3}
        # lr 0 leaves the weights where --init put them (BatchNorm running statistics move, weights do not)
        w0, w1 = start.state_dict(), tuned.state_dict()
        assert all(torch.equal(w0[k], w1[k]) for k in w0 if "running" not in k and "num_batches" not in k)
        with pytest.raises(SystemExit, match="neither a checkpoint folder"):
            train.main(train.parse_args(ft + ["--init", str(tmp_path)]))
        # or from exported weights (the shipped file): the same start, recorded with the step it was exported at
        ft2 = ["--output_dir", str(tmp_path / "ft2")] + common[2:]
        train.main(train.parse_args(ft2 + ["--max_steps", "1", "--init", str(out), "--validation_clips", "0",
                                           "--lr", "0"]))
        state = checkpoint.load(checkpoint.resolve(tmp_path / "ft2", "latest"), {"net": tuned})
        assert state["config"]["init"] == {"weights": str(out), "step": 3}
        w0, w1 = load_clicknet(out).state_dict(), tuned.state_dict()
        assert all(torch.equal(w0[k], w1[k]) for k in w0 if "running" not in k and "num_batches" not in k)
        # a weight average of two fine-tunes of one start: the mean of their weights (BatchNorm recalibrated)
        ft3 = ["--output_dir", str(tmp_path / "ft3")] + common[2:]
        train.main(train.parse_args(ft3 + ["--max_steps", "1", "--init", str(out), "--validation_clips", "0"]))
        soup = tmp_path / "soup.safetensors"
        train.main(train.parse_args(ft3 + ["--export", str(soup), "--average_with", str(tmp_path / "ft")]))
        a, b = train.ClickNet(), train.ClickNet()
        checkpoint.load(checkpoint.resolve(tmp_path / "ft3", "latest"), {"net": a})
        checkpoint.load(checkpoint.resolve(tmp_path / "ft", "latest"), {"net": b})
        wa, wb, ws = a.state_dict(), b.state_dict(), load_clicknet(soup).state_dict()
        learned = [k for k, _ in a.named_parameters()]
        assert sum((wa[k] - wb[k]).abs().sum().item() for k in learned) > 1.0   # one step at lr 2e-3 moved them
        assert all(torch.allclose(ws[k], ((wa[k] + wb[k]) / 2).half().float()) for k in learned)
        # its metadata describes the average: its own validation (ft3 trained without one), every run's config
        meta = read_clicknet_metadata(soup)
        assert set(meta["validation"]) == {"128", "512"} and len(meta["averaged"]) == 2
        assert [c["init"] for c in meta["averaged_train_configs"]] == [{"weights": str(out), "step": 3},
                                                                       {"checkpoint": str(init), "step": 3}]
        assert meta["averaged_train_configs"][0] == meta["train_config"]
        with pytest.raises(SystemExit, match="no checkpoint under"):
            train.main(train.parse_args(ft + ["--export", str(soup), "--average_with", str(tmp_path / "none")]))
        with pytest.raises(ValueError, match="not a ClickNet checkpoint"):
            bad = tmp_path / "bad.safetensors"
            bad.write_bytes(b"not safetensors")
            train.main(train.parse_args(ft2 + ["--init", str(bad)]))
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    net = load_clicknet(out)
    with torch.no_grad():
        logits = net(torch.rand(1, 3, 256, 256), torch.zeros(1, 3, 256, 256))
    assert logits.shape == (1, 1, 128, 128) and torch.isfinite(logits).all()


def test_global_attention_starts_as_the_network_without_it_and_the_trainer_adds_it(tmp_path):
    """``global_attention``: a zero-initialised residual block, so shipped weights without it load into a network
    with it and answer exactly the same; the trainer's ``--init`` adds it to such a file, training moves it, the
    export carries it in the config, and a run is never resumed or started with another shape."""
    import cv2
    import torch

    from pipelines.segment import train
    from pipelines.segment.clicknet import (ClickNet, ClickNetConfig, GlobalAttention, load_clicknet,
                                            save_clicknet)
    from pipelines.train import checkpoint
    torch.manual_seed(0)
    plain, att = ClickNet().eval(), ClickNet(ClickNetConfig(global_attention=4)).eval()
    missing, unexpected = att.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.startswith("decoder.attn.") for k in missing)
    x, p = torch.rand(2, 3, 256, 256), torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(plain(x, p), att(x, p))
        block = GlobalAttention(8, 2)
        torch.nn.init.normal_(block.proj.weight)
        y = torch.rand(1, 8, 4, 4)
        assert not torch.allclose(block(y), y)                     # once trained it mixes all cells
    with pytest.raises(ValueError, match="5 heads do not divide 96 channels"):
        ClickNet(ClickNetConfig(global_attention=5))
    start = tmp_path / "plain.safetensors"
    save_clicknet(plain, start)
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    common = ["--output_dir", str(tmp_path / "att"), "--batch_size", "2", "--pool_frames", "3", "--render_sizes",
              "128", "--render_probs", "1", "--validation_clips", "0", "--bn_batches", "1", "--warmup_steps", "1",
              "--max_sim_clicks", "1", "--init", str(start), "--global_attention", "4"]
    try:
        train.main(train.parse_args(common + ["--max_steps", "2"]))
        folder = checkpoint.resolve(tmp_path / "att", "latest")
        tuned = ClickNet(ClickNetConfig(global_attention=4))
        state = checkpoint.load(folder, {"net": tuned})
        assert state["config"]["net"]["global_attention"] == 4 and state["config"]["init"]["weights"] == str(start)
        assert tuned.decoder.attn.proj.weight.abs().max() > 0        # the block learns from its first steps
        # … at its own rate: scaled to 0 it stays an identity while the rest of the network trains
        frozen = ["--output_dir", str(tmp_path / "frozen")] + common[2:] + ["--attention_lr_scale", "0"]
        train.main(train.parse_args(frozen + ["--max_steps", "2"]))
        still = ClickNet(ClickNetConfig(global_attention=4))
        checkpoint.load(checkpoint.resolve(tmp_path / "frozen", "latest"), {"net": still})
        assert still.decoder.attn.proj.weight.abs().max() == 0
        assert not torch.equal(still.decoder.out.weight, plain.decoder.out.weight)
        with pytest.raises(SystemExit, match="same --global_attention"):
            train.main(train.parse_args(common[:-2] + ["--max_steps", "3", "--resume_from_checkpoint", "latest"]))
        out = tmp_path / "att.safetensors"
        train.main(train.parse_args(common[:-2] + ["--export", str(out)]))   # the run's shape, not the flag's
        assert load_clicknet(out).cfg.global_attention == 4
        with pytest.raises(SystemExit, match="another shape"):           # attention weights into a plain network
            train.main(train.parse_args(["--output_dir", str(tmp_path / "back"), "--init", str(out),
                                         "--max_steps", "1"]))
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
