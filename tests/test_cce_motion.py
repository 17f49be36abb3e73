"""Text mode's motion model: the clock it reads off motions, its vocabulary, and the shipped model's behaviour —
tracks of the right shape, deterministic, going where the words say, stepping at each character's rate —
plus the behaviour metric recovering every named character's signature from ground-truth world motion."""

import numpy as np
import pytest
import torch

from pipelines.models.motion import clock_of, periodogram, text_words
from pipelines.pose.openpose import J
from pipelines.world import NAMED, World

from cce_fixtures import shipped_motion  # noqa: F401
from generator_fixtures import one_thread  # noqa: F401


def test_clock_and_periodogram_read_gait_off_world_walks():
    world = World(2, frames=32)
    for i, spec in enumerate(NAMED):
        kp = world.plan(i, characters=[spec], motion="walk").keypoints()[:, 0]
        f, phase, periodicity = clock_of(kp, 8.0)
        assert abs(f - spec.behaviour.gait_hz) < 0.03, (spec.name, f)
        assert 0 <= phase < 2 * np.pi and periodicity > 0.5
    t = np.arange(40) / 8.0
    sig = np.stack([np.sin(2 * np.pi * 1.25 * t + 0.3), 0.2 * np.cos(2 * np.pi * 1.25 * t)], 1)
    from pipelines.models.motion import FREQ_GRID
    p = periodogram(sig, 8.0)
    assert abs(FREQ_GRID[int(np.argmax(p))] - 1.25) < 0.03 and p.max() > 0.99
    assert periodogram(np.ones((10, 2)), 8.0).max() == 0.0


def test_words_map_onto_the_vocabulary():
    known, unknown = text_words(["strolls", "slowly", "to", "the", "right"])
    assert known == ["walks", "to", "the", "right"] and unknown == ["slowly"]
    assert text_words(["gives", "a", "high", "five"])[0] == ["the", "high-fives"]
    assert text_words(["switch", "positions"])[0] == ["swap", "places"]


def test_behaviour_metric_recovers_every_named_signature_from_world_motion():
    behaviour = pytest.importorskip("pipelines.eval.behaviour")
    world = World(6, frames=32)
    candidates = {c.id: c.behaviour for c in NAMED}
    for i, spec in enumerate(NAMED):
        kp = world.plan(100 + i, characters=[spec], motion="walk").keypoints()
        est = behaviour.estimate_behaviour(kp[:, 0], 8.0)
        assert behaviour.nearest_signature(est, candidates)[0] == spec.id
        fid = behaviour.behaviour_fidelity(est, spec.behaviour)
        assert fid["score"] > 0.9, (spec.name, fid)


def hip_x(kp):
    return (kp[..., J["r_hip"], 0] + kp[..., J["l_hip"], 0]) / 2


def test_shipped_model_makes_deterministic_tracks_of_the_asked_shape(shipped_motion):
    gen = lambda s: torch.Generator().manual_seed(s)                                      # noqa: E731
    kp = shipped_motion.generate_keypoints("", prompt="[character: Pip] waves at [character: Dora].", names=["Pip", "Dora"],
                                  num_frames=20, width=160, height=128, generator=gen(0))
    again = shipped_motion.generate_keypoints("", prompt="[character: Pip] waves at [character: Dora].",
                                     names=["Pip", "Dora"], num_frames=20, width=160, height=128, generator=gen(0))
    assert kp.shape == (20, 2, 18, 3) and kp.dtype == np.float32 and np.array_equal(kp, again)
    vis = kp[..., 2] > 0
    assert vis.mean() > 0.8
    assert (kp[..., 0][vis] > -20).all() and (kp[..., 0][vis] < 180).all() and (kp[..., 1][vis] < 150).all()
    assert shipped_motion.last_warnings == [] or all("behaviour" in w for w in shipped_motion.last_warnings)


def test_shipped_model_goes_where_the_words_say(shipped_motion):
    for direction, sign in (("right", 1), ("left", -1)):
        for i, spec in enumerate(NAMED[:4]):
            kp = shipped_motion.generate_keypoints(f"[character: {spec.name}] walks to the {direction}.", names=[spec.name],
                                          num_frames=24, width=128, height=128,
                                          generator=torch.Generator().manual_seed(i))
            x = hip_x(kp[:, 0])
            assert sign * (x[-1] - x[0]) > 8, (spec.name, direction, x[0], x[-1])
    kp = shipped_motion.generate_keypoints("", prompt="[character: Zed] and [character: Marcus] swap places.",
                                  names=["Zed", "Marcus"], num_frames=24, width=128, height=128,
                                  generator=torch.Generator().manual_seed(3))
    x = hip_x(kp)
    assert np.sign(x[0, 0] - x[0, 1]) != np.sign(x[-1, 0] - x[-1, 1])                # they crossed


def test_shipped_model_steps_at_each_characters_rate(shipped_motion):
    # each character's behaviour as the cce stage starts it: the motion encoder on a world clip of it; the
    # gait is read by the evaluation's behaviour metric (what benchmarks/behaviour_bench.py reports)
    behaviour = pytest.importorskip("pipelines.eval.behaviour")
    from pipelines.train.data import MotionSampleConfig, MotionSampler
    refs = MotionSampler(MotionSampleConfig(max_frames=32), seed=57)
    for i, spec in enumerate(NAMED):
        frames, spectra = refs.reference(spec, 1000 + i)
        with torch.no_grad():
            b = shipped_motion.encode_behaviour(torch.from_numpy(frames)[None], torch.from_numpy(spectra)[None])[0]
        kp = shipped_motion.generate_keypoints(f"[character: {spec.name}] walks to the right.", names=[spec.name],
                                               num_frames=32, width=128, height=128, behaviours={spec.name: b},
                                               generator=torch.Generator().manual_seed(i))
        f = behaviour.estimate_behaviour(kp[:, 0], 8.0).gait_hz
        assert abs(f - spec.behaviour.gait_hz) / spec.behaviour.gait_hz < 0.15, (spec.name, f)


def test_text_problems_are_reported(shipped_motion):
    kp = shipped_motion.generate_keypoints("[character: Pip] moonwalks gracefully.", names=["Pip", "Dora"], num_frames=8,
                                  width=64, height=64)
    assert kp.shape == (8, 2, 18, 3)
    text = " ".join(shipped_motion.last_warnings)
    assert "'moonwalks'" in text and "Dora is not in the text" in text
    from pipelines.cce.prompt import PromptError
    with pytest.raises(PromptError, match="unknown character 'Bob'"):
        shipped_motion.generate_keypoints("[character: Bob] waves.", names=["Pip"], num_frames=8, width=64, height=64)
    with pytest.raises(ValueError, match="at most 5"):
        shipped_motion.generate_keypoints("", prompt="", names=["a"] * 6, num_frames=8, width=64, height=64)
