"""Shared test set-up: offline, deterministic, one numeric thread per test process.

CI has 2 cores; with more than one torch/OpenMP thread per process, spin-waiting under contention made
torch steps up to 100× slower (measured, see docs/TRAINING.md). Set before torch is imported anywhere."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def world():
    from pipelines.world import World
    return World(seed=11)
