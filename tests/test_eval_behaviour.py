"""Behaviour fidelity: signatures recovered from ground-truth world motion."""

import json

import numpy as np
import pytest

from pipelines.eval.behaviour import behaviour_fidelity, estimate_behaviour, estimate_tracks, nearest_signature
from pipelines.world import NAMED, World, sample_character

NAMED_SIGNATURES = {c.id: c.behaviour for c in NAMED}


@pytest.fixture(scope="module")
def named_walks():
    """Each named character walking, at the world's default 8 fps for 2 s (the benchmark's clips)."""
    world = World(3)
    return {c.id: world.clip(i, characters=[c.id], motion="walk").keypoints[:, 0] for i, c in enumerate(NAMED)}


def test_recovers_the_ten_named_signatures(named_walks):
    for cid, track in named_walks.items():
        est = estimate_behaviour(track, fps=8.0)
        target = NAMED_SIGNATURES[cid]
        assert nearest_signature(est, NAMED_SIGNATURES)[0] == cid
        assert est.gait_hz == pytest.approx(target.gait_hz, abs=0.02), cid
        assert est.bounce == pytest.approx(target.bounce, abs=0.004), cid
        assert est.arm_swing == pytest.approx(target.arm_swing, abs=0.02), cid
        assert est.periodicity > 0.95
        fid = behaviour_fidelity(est, target)
        assert fid["score"] > 0.95 and fid["distance"] < 0.3


def test_recovers_unseen_characters_and_survives_json(tmp_path):
    from pipelines.pose.openpose import load_motion, save_motion
    rng = np.random.default_rng(5)
    specs = [sample_character(rng) for _ in range(4)]
    # one walker per clip: the bounce needs both ankles in view (a passer-by in front hides them)
    kps = np.concatenate([World(8).clip(i, characters=[s], motion="walk", frames=24, fps=12).keypoints
                          for i, s in enumerate(specs)], 1)
    save_motion(tmp_path / "m.json", kps, 128, 128, fps=12)
    kp, _, _, meta = load_motion(tmp_path / "m.json")
    for spec, est in zip(specs, estimate_tracks(kp, meta["fps"])):
        assert est.gait_hz == pytest.approx(spec.behaviour.gait_hz, abs=0.03)
        assert est.arm_swing == pytest.approx(spec.behaviour.arm_swing, abs=0.05)
        assert est.bounce == pytest.approx(spec.behaviour.bounce, abs=0.008)


def test_behaviour_command(tmp_path, capsys):
    from pipelines.eval.__main__ import main
    from pipelines.pose.openpose import save_motion
    clip = World(3).clip(0, characters=["sol", "bramble"], motion="walk")
    save_motion(tmp_path / "walk.json", clip.keypoints, 128, 128, fps=clip.fps)
    assert main(["behaviour", str(tmp_path / "walk.json")]) == 0
    out = capsys.readouterr().out
    assert "nearest named signature: Sol" in out and "nearest named signature: Bramble" in out


def test_bad_tracks_are_clear_errors():
    track = np.zeros((16, 18, 3), np.float32)
    with pytest.raises(ValueError, match="no frame shows enough joints"):
        estimate_behaviour(track, 8)
    with pytest.raises(ValueError, match="too few to see a gait"):
        estimate_behaviour(track[:4], 8)
    with pytest.raises(ValueError, match="fps"):
        estimate_behaviour(track, 0)
    with pytest.raises(ValueError, match="one character"):
        estimate_behaviour(track[:, None], 8)
    with pytest.raises(ValueError, match="candidates"):
        nearest_signature(None, {})
    assert json.dumps({k: v for k, v in NAMED_SIGNATURES["pip"].__dict__.items()})
