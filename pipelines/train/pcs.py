"""Pre-Classified Sampling (EverybodyDance §3.3): position swaps are rare in ordinary footage, so swap
pairs are found ahead of time and drawn with probability ``p``; otherwise a pair is drawn at random.

A *pair* is (reference frame, target frame). Swap pairs are the pairs whose left-to-right order of
characters differs. For video targets a window counts as a swap when its middle frame's order differs
from the reference frame's.
"""

from __future__ import annotations

import numpy as np


def orders(positions: np.ndarray) -> list[tuple[int, ...]]:
    """(F, N) x positions → the left-to-right order of characters in each frame."""
    return [tuple(int(i) for i in np.argsort(x, kind="stable")) for x in positions]


def swap_pairs(positions: np.ndarray) -> list[tuple[int, int]]:
    """All ordered pairs (r, t), r ≠ t, whose left-to-right order differs."""
    o = orders(positions)
    F = len(o)
    return [(r, t) for r in range(F) for t in range(F) if r != t and o[r] != o[t]]


def draw_pair(positions: np.ndarray, p: float, rng: np.random.Generator, window: int = 1) -> tuple[int, int, bool]:
    """Draw (reference frame, first target frame, is_swap) for a target of ``window`` frames.

    With probability ``p`` the pair is drawn among swap pairs (when the clip has any); otherwise uniformly.
    The target window starts at the returned frame; the reference may lie inside or outside it."""
    F = len(positions)
    if window > F:
        raise ValueError(f"window: {window} frames requested from a {F}-frame clip")
    o = orders(positions)
    starts = np.arange(F - window + 1)
    mid = starts + window // 2

    def is_swap(r, s):
        return o[r] != o[mid[s]]

    if rng.random() < p:
        cands = [(r, s) for r in range(F) for s in starts if is_swap(r, s)]
        if cands:
            r, s = cands[int(rng.integers(len(cands)))]
            return int(r), int(s), True
    r, s = int(rng.integers(F)), int(rng.choice(starts))
    return r, s, bool(is_swap(r, s))
