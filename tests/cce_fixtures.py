"""Shared helpers of the CCE tests (tests/test_cce_*.py)."""

import pytest

from pipelines.models.cce import load_motion_model


@pytest.fixture(scope="module")
def shipped_motion():
    """The motion model in assets/models/motion (the tests of its behaviour need the trained one)."""
    m = load_motion_model()
    if m is None:
        pytest.skip("no motion model in assets/models/motion (python -m pipelines.train motion, then export)")
    return m
