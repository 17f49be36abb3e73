"""benchmarks/variant_frames.py: the grid of frames behind a Table-2 row (shapes, errors, one real scene)."""

import cv2
import numpy as np
import pytest

from benchmarks import variant_frames as vf


def test_grid_layout_and_bad_frame():
    a = np.zeros((16, 64, 64, 3), np.uint8)
    b = np.full((16, 128, 128, 3), 200, np.uint8)
    g = vf.grid([("a", a), ("b\nsecond line", b)], [0, 5, -1], cell=32)
    assert g.shape == (2 * 32, vf.LABEL_W + 3 * 32, 3) and g.dtype == np.uint8
    assert (g[32:, vf.LABEL_W:] == 200).all() and (g[:32, vf.LABEL_W:] == 0).all()
    with pytest.raises(ValueError, match="'a' has only 16 frames"):
        vf.grid([("a", a)], [16])


def test_main_renders_the_ground_truth_and_the_prior(tmp_path):
    out = tmp_path / "grid.png"
    assert vf.main(["--scene", "ice-000", "--model", "prior alone=prior", "--frames", "0", "7", "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (2 * 128, vf.LABEL_W + 2 * 128, 3)
    assert not np.array_equal(img[:128, vf.LABEL_W:], img[128:, vf.LABEL_W:])     # the prior is not the truth


def test_main_rejects_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        vf.main(["--scene", "ice-000", "--model", "no-equals-sign", "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit):
        vf.main(["--scene", "nope", "--model", "p=prior", "--out", str(tmp_path / "x.png")])
