"""MQA / IMG math (pipelines.models.img) on hand-built queries and keys whose answer is known."""

from types import SimpleNamespace

import pytest
import torch

from pipelines.models.img import (downsample_masks, edge_weights, identity_affinity, identity_consistency,
                                  img_loss, img_loss_from_captures, layer_identity_consistency,
                                  mask_query_attention)

# 4 generated patches (p0, p1 = character 0; p2, p3 = character 1), 5 reference patches (q0, q1 = reference
# character 0; q2, q3 = reference character 1; q4 = background)
GEN = torch.tensor([[[1, 1, 0, 0], [0, 0, 1, 1]]], dtype=torch.bool)              # (1, J=2, N=4)
REF = torch.tensor([[[1, 1, 0, 0, 0], [0, 0, 1, 1, 0]]], dtype=torch.bool)        # (1, I=2, M=5)
E0, E1 = [8.0, 0.0], [0.0, 8.0]


def qk(gen_vecs, ref_vecs):
    """One head: query/key rows from lists of 2-vectors → (1, 1, N, 2), (1, 1, M, 2)."""
    return torch.tensor([gen_vecs])[:, None], torch.tensor([ref_vecs])[:, None]


def test_ic_is_one_when_each_character_matches_its_own_reference():
    q, k = qk([E0, E0, E1, E1], [E0, E0, E1, E1, E0])
    ic, valid = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[0, 1]]))
    assert valid.item() and ic.item() == pytest.approx(1.0, abs=1e-6)


def test_ic_goes_to_zero_when_characters_match_the_swapped_reference():
    q, k = qk([E1, E1, E0, E0], [E0, E0, E1, E1, E0])
    ic, _ = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[0, 1]]))
    assert ic.item() == pytest.approx(0.0, abs=1e-6)
    # the same attention with the swap as ground truth is perfect
    ic_swap, _ = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[1, 0]]))
    assert ic_swap.item() == pytest.approx(1.0, abs=1e-6)


def test_keys_outside_the_reference_characters_are_ignored():
    # the background key q4 matches every query best, but R* leaves it out
    q, k = qk([E0, E0, E1, E1], [E0, E0, E1, E1, [40.0, 40.0]])
    attn = mask_query_attention(q, k, REF.any(1))
    assert attn[..., 4].abs().max().item() == 0.0
    assert torch.allclose(attn.sum(-1), torch.ones(1, 4))
    ic, _ = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[0, 1]]))
    assert ic.item() == pytest.approx(1.0, abs=1e-6)


def test_uniform_attention_gives_weights_proportional_to_reference_size():
    # zero queries attend uniformly over R*: reference 0 has 1 patch, reference 1 has 3 → w = (1/4, 3/4)
    ref = torch.tensor([[[1, 0, 0, 0, 0], [0, 1, 1, 1, 0]]], dtype=torch.bool)
    q, k = torch.zeros(1, 1, 4, 2), torch.randn(1, 1, 5, 2)
    s = identity_affinity(mask_query_attention(q, k, ref.any(1)), GEN, ref)
    assert torch.allclose(s, torch.tensor([[[0.25, 0.25], [0.75, 0.75]]]), atol=1e-6)
    w = edge_weights(s)
    ic, _ = identity_consistency(w, torch.tensor([[0, 1]]))
    assert ic.item() == pytest.approx(0.5, abs=1e-6)
    # a generated character that is absent (empty mask) or has no target leaves the mean
    ic0, _ = identity_consistency(w, torch.tensor([[0, -1]]))
    assert ic0.item() == pytest.approx(0.25, abs=1e-6)


def test_heads_are_averaged_before_matching():
    # head 0 matches each character to its own reference, head 1 to the swapped one → IC = 1/2
    q = torch.tensor([[[E0, E0, E1, E1], [E1, E1, E0, E0]]])
    k = torch.tensor([[[E0, E0, E1, E1, E0], [E0, E0, E1, E1, E0]]])
    ic, _ = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[0, 1]]))
    assert ic.item() == pytest.approx(0.5, abs=1e-4)


def test_sample_without_reference_characters_is_invalid_not_nan():
    q, k = qk([E0, E0, E1, E1], [E0, E0, E1, E1, E0])
    empty = torch.zeros_like(REF)
    ic, valid = layer_identity_consistency(q, k, GEN, empty, torch.tensor([[0, 1]]))
    assert not valid.item() and ic.item() == 0.0 and torch.isfinite(ic).all()


def test_img_loss_gradient_pulls_queries_towards_their_own_reference():
    q = torch.tensor([[[[1.0, 0.5], [1.0, 0.5], [0.5, 1.0], [0.5, 1.0]]]], requires_grad=True)
    k = torch.tensor([[[E0, E0, E1, E1, E0]]])
    ic, valid = layer_identity_consistency(q, k, GEN, REF, torch.tensor([[0, 1]]))
    loss = img_loss([(ic, valid)])
    assert loss.item() == pytest.approx(1 - ic.item())
    loss.backward()
    step = q.detach() - 0.5 * q.grad
    ic2, _ = layer_identity_consistency(step, k, GEN, REF, torch.tensor([[0, 1]]))
    assert ic2.item() > ic.item()
    # multi-scale matching: the loss averages the layers' IC
    assert img_loss([(torch.tensor([1.0]), torch.tensor([True])), (torch.tensor([0.5]), torch.tensor([True]))]
                    ).item() == pytest.approx(0.25)


def test_downsample_masks_area_threshold_and_small_characters_survive():
    m = torch.zeros(1, 8, 8, dtype=torch.bool)
    m[0, :4, :4] = True                     # exactly the top-left 2×2 cells of a 4×4 grid
    m[0, 4, 4] = True                       # one stray pixel: 1/4 of a cell, below the threshold
    d = downsample_masks(m, (4, 4))
    assert d[0, :2, :2].all() and d.sum() == 4
    assert downsample_masks(m, (4, 4), threshold=0.0).sum() == 5        # "any pixel" counts it
    tiny = torch.zeros(1, 16, 16, dtype=torch.bool)
    tiny[0, 9, 10] = True
    kept = downsample_masks(tiny, (2, 2))
    assert kept.sum() == 1 and kept[0, 1, 1]
    assert downsample_masks(torch.zeros(1, 16, 16, dtype=torch.bool), (2, 2)).sum() == 0


def test_loss_from_captures_uses_layer_grids_and_skips_videos_without_reference():
    # 2 videos × 1 frame on a 2×2 token grid; video 1 read no reference (CFG's unconditional half)
    q1, k1 = qk([E0, E1, E0, E1], [E0, E1, E0, E1])
    cap = SimpleNamespace(query=torch.cat([q1, -q1]), key=k1, size=(2, 2), ref_size=(2, 2), num_frames=1,
                          ref_index=torch.tensor([0, -1]))
    gen = torch.zeros(2, 1, 2, 8, 8, dtype=torch.bool)            # character 0 left column, 1 right
    gen[:, :, 0, :, :4] = True
    gen[:, :, 1, :, 4:] = True
    ref = gen[0, 0][None]                                           # the reference has the same layout
    loss, report = img_loss_from_captures({"layer": cap}, gen, ref)
    assert loss.item() == pytest.approx(0.0, abs=1e-5) and report["layer"] == pytest.approx(1.0, abs=1e-5)
    loss_sw, _ = img_loss_from_captures({"layer": cap}, gen, ref, target=torch.tensor([[1, 0], [1, 0]]))
    assert loss_sw.item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="gen_masks"):
        img_loss_from_captures({"layer": cap}, gen[:, :, :, :, :][None].flatten(0, 1).repeat(1, 2, 1, 1, 1), ref)


def test_bad_shapes_are_reported():
    q, k = qk([E0, E0, E1, E1], [E0, E0, E1, E1, E0])
    with pytest.raises(ValueError, match="ref_union"):
        mask_query_attention(q, k, torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="target"):
        identity_consistency(torch.rand(1, 2, 2), torch.tensor([[0, 5]]))
