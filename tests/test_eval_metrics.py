"""Pixel metrics (SSIM, PSNR, L1) and the Fréchet distance against known values."""

import cv2
import numpy as np
import pytest

from pipelines.eval import metrics as M
from pipelines.world import World


@pytest.fixture(scope="module")
def video():
    return World(0).clip(1, n_characters=3, motion="swap", frames=6).frames


def test_identical_videos(video):
    assert M.ssim(video, video) == pytest.approx(1.0, abs=1e-12)
    assert M.psnr_image(video[0], video[0]) == float("inf")
    assert M.psnr(video, video) == M.PSNR_CAP
    assert M.l1(video, video) == 0.0


def test_constant_offset_has_closed_form_values():
    a = np.full((32, 32, 3), 100, np.uint8)
    b = a + np.uint8(20)
    assert M.psnr(b, a) == pytest.approx(10 * np.log10(255 ** 2 / 20 ** 2), abs=1e-9)
    assert M.l1(b, a) == pytest.approx(20 / 255)
    c1 = (0.01 * 255) ** 2
    # constant images: no variance, so SSIM is the luminance term alone
    expected = (2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1)
    assert M.ssim(b, a) == pytest.approx(expected, abs=1e-9)


def test_blur_lowers_ssim_and_psnr_monotonically(video):
    ssims, psnrs, l1s = [], [], []
    for sigma in (0.5, 1.0, 1.5, 2.5, 4.0):
        blurred = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in video])
        ssims.append(M.ssim(blurred, video))
        psnrs.append(M.psnr(blurred, video))
        l1s.append(M.l1(blurred, video))
    assert all(a > b for a, b in zip(ssims, ssims[1:])), ssims
    assert all(a > b for a, b in zip(psnrs, psnrs[1:])), psnrs
    assert all(a < b for a, b in zip(l1s, l1s[1:])), l1s
    assert ssims[0] < 1.0 and psnrs[0] < M.PSNR_CAP


def test_ssim_matches_the_reference_implementation(video):
    skm = pytest.importorskip("skimage.metrics")
    a, b = video[0], np.clip(video[3].astype(int) + 7, 0, 255).astype(np.uint8)
    ref = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255, channel_axis=-1)
    assert M.ssim_image(a, b) == pytest.approx(ref, abs=1e-9)
    assert M.psnr_image(a, b) == pytest.approx(skm.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)


def test_shape_mismatch_is_a_clear_error(video):
    with pytest.raises(ValueError, match="shapes differ"):
        M.ssim(video, video[:, :64])
    with pytest.raises(ValueError, match="expected"):
        M.l1(video[..., 0], video[..., 0])


def test_frechet_distance_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    assert M.frechet_from_features(x, x) == pytest.approx(0.0, abs=1e-9)
    # same covariance, shifted mean: the distance is the squared shift
    mu, cov = np.zeros(3), np.diag([1.0, 2.0, 3.0])
    assert M.frechet_distance(mu, cov, mu + [1, 2, 2], cov) == pytest.approx(9.0, abs=1e-9)
    # isotropic Gaussians: (σ1 − σ2)² per dimension
    assert M.frechet_distance(mu, np.eye(3) * 4, mu, np.eye(3)) == pytest.approx(3 * (2 - 1) ** 2, abs=1e-9)


def test_frechet_small_sample_path_equals_full_path():
    from scipy import linalg
    rng = np.random.default_rng(1)
    a = rng.normal(size=(12, 40))
    b = rng.normal(size=(9, 40)) * 1.5 + 0.3
    fast = M.frechet_from_features(a, b)            # N < D: nuclear-norm path
    (m1, s1), (m2, s2) = M.gaussian_stats(a), M.gaussian_stats(b)
    full = M.frechet_distance(m1, s1, m2, s2)
    ref = float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert fast == pytest.approx(full, rel=1e-6)
    assert fast == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match="N ≥ 2"):
        M.frechet_from_features(a[:1], b)


def test_temporal_l1_counts_changes_not_steady_errors(video):
    assert M.temporal_l1(video, video) == 0.0
    dim = video // 2
    steady = dim + np.uint8(30)                                        # the same error in every frame: no change error
    assert M.temporal_l1(steady, dim) == 0.0 and M.l1(steady, dim) == pytest.approx(30 / 255)
    frozen = np.repeat(video[:1], len(video), axis=0)                  # a still picture of frame 0
    moved = np.abs(np.diff(video.astype(float), axis=0)).mean() / 255
    assert M.temporal_l1(frozen, video) == pytest.approx(moved)
    a = np.zeros((3, 8, 8, 3), np.uint8)
    flicker = a.copy()
    flicker[1] = 51                                                    # one frame 0.2 brighter: up, then down
    assert M.temporal_l1(flicker, a) == pytest.approx(0.2)
    assert np.isnan(M.temporal_l1(a[:1], a[:1]))
