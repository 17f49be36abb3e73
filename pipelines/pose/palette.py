"""The identity palette: one colour per identity slot. Every module that colours an identity — IEG
skeletons, tinted reference masks, the studio's chips, CCE slot tokens, IC overlays — reads it here.

The ten hues are far apart in CIELAB (minimum pairwise ΔE76 is checked by a test) and bright enough
to survive JPEG/H.264 round trips of guidance videos.
"""

from __future__ import annotations

import numpy as np

PALETTE: tuple[tuple[int, int, int], ...] = (
    (235, 45, 45),    # 0 red
    (40, 105, 250),   # 1 blue
    (35, 200, 70),    # 2 green
    (250, 215, 20),   # 3 yellow
    (220, 40, 220),   # 4 magenta
    (20, 215, 225),   # 5 cyan
    (250, 130, 15),   # 6 orange
    (120, 50, 190),   # 7 violet
    (150, 95, 40),    # 8 brown
    (255, 160, 200),  # 9 pink
)
NAMES = ("red", "blue", "green", "yellow", "magenta", "cyan", "orange", "violet", "brown", "pink")
MAX_SLOTS = len(PALETTE)


def slot_color(slot: int) -> tuple[int, int, int]:
    if not 0 <= slot < MAX_SLOTS:
        raise ValueError(f"identity slot {slot} is outside the palette (0..{MAX_SLOTS - 1})")
    return PALETTE[slot]


def slot_hex(slot: int) -> str:
    return "#%02x%02x%02x" % slot_color(slot)


def palette_array() -> np.ndarray:
    """(MAX_SLOTS, 3) float32 in [0, 1] — what models use to embed a slot's colour."""
    return np.asarray(PALETTE, np.float32) / 255.0


def shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """Darken (factor < 1) or lighten towards white (factor > 1) a colour, keeping its hue."""
    c = np.asarray(color, np.float32)
    c = c * factor if factor <= 1 else c + (255 - c) * (factor - 1)
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) → CIELAB (D65)."""
    c = np.asarray(rgb, np.float64) / 255.0
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
