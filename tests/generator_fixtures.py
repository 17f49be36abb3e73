"""Shared helpers of the generator tests (tests/test_generator_*.py): tiny seeded components whose
zero-initialised outputs are given small random weights, so every input visibly reaches the frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.models import TEST, build_components
from pipelines.models.temporal import motion_placement

SIZE = 64


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: the machine's 2 cores are shared, and an oversubscribed second thread made
    these tiny models up to 30× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def wake(components: dict, seed: int = 1, scale: float = 0.05) -> dict:
    """Give the zero-initialised output layers (guiders' conv_out, motion modules' proj_out) small random
    weights: an untrained model ignores pose and time; a test model must not."""
    g = torch.Generator().manual_seed(seed)
    layers = [components[k].conv_out for k in ("pose_guider", "reference_guider") if components.get(k) is not None]
    adapter = components.get("motion_adapter")
    if adapter is not None:
        layers += [module.proj_out for _, _, module in motion_placement(components["unet"], adapter)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * scale)
    return components


def make_components(mode: str = "end2end", seed: int = 0) -> dict:
    return wake(build_components(TEST, seed=seed, mode=mode))


def static_keypoints(frames: int = 8, xs=(16.0, 48.0), size: int = SIZE) -> np.ndarray:
    """(frames, len(xs), 18, 3): standing skeletons centred at ``xs``, swaying a little so frames differ."""
    from pipelines.world.body import rest_pose, forward_kinematics
    from pipelines.world.characters import NAMED
    out = np.zeros((frames, len(xs), 18, 3), np.float32)
    for t, x in enumerate(xs):
        p = rest_pose(frames)
        p["x"][:] = x + np.linspace(0, 3, frames)
        p["ground"][:] = size * 0.92
        p["scale"][:] = size * 0.7
        out[:, t] = forward_kinematics(NAMED[t], p)["keypoints"]
    return out
