"""Pixel metrics between a generated and a ground-truth video (our own implementations) and the Fréchet
distance the feature-based metrics (FID, FID-VID, FVD) share.

* ``ssim`` — Wang et al. 2004: Gaussian window σ = 1.5 (11×11), K1 = 0.01, K2 = 0.03, data range 255,
  per channel, averaged over the valid (un-padded) area — the settings of ``skimage`` with
  ``gaussian_weights=True, use_sample_covariance=False``.
* ``psnr`` — 10·log10(255² / MSE); identical images give +inf, so the video score averages per-frame
  values capped at ``PSNR_CAP`` dB.
* ``l1`` — mean absolute error with pixels in [0, 1].

Videos are (F, H, W, 3) uint8; scores are averaged over frames, as EverybodyDance/DisCo report them.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

PSNR_CAP = 100.0
SSIM_SIGMA, SSIM_TRUNCATE, SSIM_K1, SSIM_K2 = 1.5, 3.5, 0.01, 0.03


def _pair(a: np.ndarray, b: np.ndarray, name: str = "videos") -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ ({a.shape} vs {b.shape}); resize the generated video to the "
                         "ground truth's size first")
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"{name}: expected (H, W, 3) images or (F, H, W, 3) videos, got {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def ssim_image(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of two (H, W, 3) images."""
    x, y = _pair(a, b, "images")
    if x.ndim != 3:
        raise ValueError(f"images: expected (H, W, 3), got {x.shape}")
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(x.shape[:2]) <= 2 * pad:
        raise ValueError(f"images: {x.shape[:2]} is too small for an 11×11 SSIM window")
    blur = lambda im: gaussian_filter(im, (SSIM_SIGMA, SSIM_SIGMA, 0), truncate=SSIM_TRUNCATE, mode="reflect")
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[pad:-pad, pad:-pad].mean())


def ssim(gen: np.ndarray, gt: np.ndarray) -> float:
    """Mean SSIM over frames of two (F, H, W, 3) videos (or two images)."""
    a, b = _pair(gen, gt)
    if a.ndim == 3:
        return ssim_image(a, b)
    return float(np.mean([ssim_image(x, y) for x, y in zip(a, b)]))


def psnr_image(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    x, y = _pair(a, b, "images")
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def psnr(gen: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-frame PSNR (dB) of two videos, each frame capped at ``PSNR_CAP`` (identical frames)."""
    a, b = _pair(gen, gt)
    if a.ndim == 3:
        return psnr_image(a, b)
    return float(np.mean([min(PSNR_CAP, psnr_image(x, y)) for x, y in zip(a, b)]))


def l1(gen: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error, pixels scaled to [0, 1]."""
    a, b = _pair(gen, gt)
    return float(np.mean(np.abs(a - b)) / 255.0)


def temporal_l1(gen: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute error of the frame-to-frame changes, pixels scaled to [0, 1]:
    mean_t |(gen[t+1] − gen[t]) − (gt[t+1] − gt[t])|. 0 when the video changes exactly as the ground truth
    does; flicker, and motion the ground truth does not have (or lacks), raise it. Appearance errors that stay
    put from frame to frame do not count. Needs two frames or more (NaN otherwise)."""
    a, b = _pair(gen, gt)
    if a.ndim == 3 or len(a) < 2:
        return float("nan")
    return float(np.mean(np.abs(np.diff(a, axis=0) - np.diff(b, axis=0))) / 255.0)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features → (mean (D,), covariance (D, D)); N ≥ 2."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features: need (N ≥ 2, D) to estimate a covariance, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2·(Σ1Σ2)^½) between two Gaussians (FID / FVD).

    Tr((Σ1Σ2)^½) is computed as Σ √λ of the symmetric PSD matrix Σ1^½ Σ2 Σ1^½ (similar to Σ1Σ2, so the
    same eigenvalues): two symmetric eigendecompositions, stable for the rank-deficient covariances of
    small sample sets and much faster than a general matrix square root at 2048 dimensions."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: statistics differ in shape ({mu1.shape}, {s1.shape}) vs ({mu2.shape}, {s2.shape})")
    r1 = _sqrt_psd(s1)
    lam = np.linalg.eigvalsh(r1 @ s2 @ r1)
    diff = mu1 - mu2
    return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(lam, 0, None)).sum()))


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (N1, D) and (N2, D).

    With fewer samples than dimensions (a benchmark's few dozen videos against 2048-d features) the
    covariances have rank < N, and Tr((Σ1Σ2)^½) equals the nuclear norm of X1·X2ᵀ / √((N1−1)(N2−1))
    (X centred features: the nonzero eigenvalues of Σ1Σ2 are those of (X1X2ᵀ)(X2X1ᵀ)) — exact, and
    O(N²·D) instead of O(D³)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    for name, f in (("a", a), ("b", b)):
        if f.ndim != 2 or f.shape[0] < 2:
            raise ValueError(f"features {name}: need (N ≥ 2, D), got shape {f.shape}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features: dimensions differ ({a.shape[1]} vs {b.shape[1]})")
    if max(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))
    x1, x2 = a - a.mean(0), b - b.mean(0)
    n1, n2 = len(a) - 1, len(b) - 1
    diff = a.mean(0) - b.mean(0)
    nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    return float(max(0.0, diff @ diff + (x1 * x1).sum() / n1 + (x2 * x2).sum() / n2 - 2 * nuclear))
