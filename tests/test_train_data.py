"""Training data from the world: PCS, samples, collation; atomic checkpoints."""

import numpy as np
import pytest
import torch

from pipelines.pose.palette import PALETTE
from pipelines.train import checkpoint
from pipelines.train.data import MAX_SLOTS, SampleConfig, WorldSampler, collate
from pipelines.train.pcs import draw_pair, orders, swap_pairs


def test_swap_pairs_and_pcs_probability():
    x = np.array([[10, 50], [20, 40], [40, 20], [50, 10]], float)      # two characters cross between frames 1 and 2
    assert orders(x) == [(0, 1), (0, 1), (1, 0), (1, 0)]
    assert set(swap_pairs(x)) == {(0, 2), (0, 3), (1, 2), (1, 3), (2, 0), (3, 0), (2, 1), (3, 1)}
    rng = np.random.default_rng(0)
    always = [draw_pair(x, 1.0, rng)[2] for _ in range(200)]
    never = [draw_pair(x, 0.0, rng)[2] for _ in range(2000)]
    assert all(always)
    assert abs(np.mean(never) - 0.5) < 0.05                        # random pairs: half of them cross here
    static = np.array([[10, 50]] * 4, float)
    assert not draw_pair(static, 1.0, rng)[2]                      # no swap pairs: falls back to random
    with pytest.raises(ValueError, match="window"):
        draw_pair(x, 0.3, rng, window=5)


def test_samples_are_deterministic_and_consistent():
    cfg = SampleConfig(sheet=0.0, window=4, characters=(2, 4))
    a, b = WorldSampler(cfg, seed=3)[5], WorldSampler(cfg, seed=3)[5]
    assert np.array_equal(a["target"], b["target"]) and np.array_equal(a["reference"], b["reference"])
    n = a["n"]
    assert a["target"].shape == (4, 128, 128, 3) and a["target_masks"].shape == (4, MAX_SLOTS, 128, 128)
    assert a["reference_masks"].shape == (MAX_SLOTS, 128, 128) and not a["reference_masks"][n:].any()
    assert sorted(a["assignment"][:n].tolist()) == list(range(n)) and (a["assignment"][n:] == -1).all()


def test_reference_guidance_and_pose_use_slot_colours():
    s = WorldSampler(SampleConfig(sheet=0.0, window=1, characters=(2, 3)), seed=1)[2]
    for slot in range(s["n"]):
        m = s["reference_masks"][slot]
        if m.any():
            assert (s["reference_pose"][m] == PALETTE[slot]).all(1).mean() > 0.5
    # each slot's target skeleton is drawn in that slot's colour, on its own character
    pose = s["pose"][0].astype(int)
    for slot in range(s["n"]):
        near = (np.abs(pose - PALETTE[slot]).sum(-1) < 90)
        if near.sum() > 10:
            assert (s["target_masks"][0, slot] | ~near).mean() > 0.9 and s["target_masks"][0, slot][near].mean() > 0.5


def test_pcs_raises_the_share_of_swaps():
    def share(p):
        sampler = WorldSampler(SampleConfig(sheet=0.0, pcs=p, characters=(2, 3)), seed=0)
        return np.mean([sampler[i]["swap"] for i in range(80)])
    assert share(1.0) > share(0.0) + 0.15


def test_collate_shapes_and_ranges():
    sampler = WorldSampler(SampleConfig(sheet=0.0, window=2), seed=0)
    b = collate([sampler[i] for i in range(3)])
    assert b["reference"].shape == (3, 3, 128, 128) and b["target"].shape == (3, 2, 3, 128, 128)
    assert b["pose"].shape == (3, 2, 3, 128, 128) and b["target_masks"].shape == (3, 2, MAX_SLOTS, 128, 128)
    assert -1.0 <= b["reference"].min() and b["reference"].max() <= 1.0


def test_checkpoint_round_trip_with_optimizer(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    folder = checkpoint.save(tmp_path, 3, {"net": net}, opt, {"config": {"lr": 1e-2}, "samples": 24})
    net2 = torch.nn.Linear(4, 3)
    opt2 = torch.optim.AdamW(net2.parameters(), lr=1e-2)
    state = checkpoint.load(folder, {"net": net2}, opt2)
    assert state["step"] == 3 and state["samples"] == 24 and checkpoint.read_config(folder) == {"lr": 1e-2}
    x = torch.randn(8, 4)
    for m, o in ((net, opt), (net2, opt2)):        # one more identical step from both
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    assert torch.equal(net.weight, net2.weight)


def test_checkpoints_are_atomic_and_latest_ignores_partial_ones(tmp_path):
    net = torch.nn.Linear(2, 2)
    for step in (1, 2, 3, 4):
        checkpoint.save(tmp_path, step, {"net": net}, None, {"config": {}}, keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000003", "step_00000004"]
    (tmp_path / "checkpoints" / "step_00000009.tmp").mkdir()            # a write that was killed
    assert checkpoint.resolve(tmp_path, "latest").name == "step_00000004"
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        checkpoint.resolve(tmp_path, str(tmp_path))


def test_loading_into_a_different_model_is_explained(tmp_path):
    folder = checkpoint.save(tmp_path, 1, {"net": torch.nn.Linear(2, 2)}, None, {"config": {}})
    with pytest.raises(ValueError, match="does not match"):
        checkpoint.load(folder, {"net": torch.nn.Linear(3, 2)})
    with pytest.raises(ValueError, match="no weights for module 'other'"):
        checkpoint.load(folder, {"other": torch.nn.Linear(2, 2)})
