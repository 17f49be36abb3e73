"""Scene-level bootstrap intervals for the benchmark tables (results.py, cca_style.py).

A benchmark's rates are ratios of counts summed over scenes (IC: correct / judged track-frames; style
delusion: deluded / judged character-frames). A scene's frames share its references and tracks, so the
scene, not the frame, is the independent unit: resample scenes with replacement and recompute the ratio.
Differences between two models are paired: each resample draws the same scenes for both.
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 4000


def _draws(n_scenes: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n_scenes, (n, n_scenes))


def ratio_interval(num, den, *, n: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of sum(num) / sum(den) over scenes resampled with replacement
    (NaN, NaN without scenes)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    if len(num) == 0:
        return float("nan"), float("nan")
    idx = _draws(len(num), n, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = num[idx].sum(1) / den[idx].sum(1)
    lo, hi = np.percentile(v[np.isfinite(v)], [2.5, 97.5])
    return float(lo), float(hi)


def paired_difference(num_a, den_a, num_b, den_b, *, n: int = RESAMPLES, seed: int = 0) -> dict:
    """Rate of ``a`` minus rate of ``b`` over the same scenes (aligned arrays), with its 95 % paired
    bootstrap interval and ``p_above``, the share of resamples where ``a``'s rate is higher."""
    na, da, nb, db = (np.asarray(x, float) for x in (num_a, den_a, num_b, den_b))
    if len(na) == 0:
        return {"scenes": 0, "diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "p_above": float("nan")}
    idx = _draws(len(na), n, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = na[idx].sum(1) / da[idx].sum(1) - nb[idx].sum(1) / db[idx].sum(1)
    d = d[np.isfinite(d)]
    lo, hi = np.percentile(d, [2.5, 97.5])
    return {"scenes": len(na), "diff": float(na.sum() / da.sum() - nb.sum() / db.sum()), "lo": float(lo),
            "hi": float(hi), "p_above": float((d > 0).mean())}
