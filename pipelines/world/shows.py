"""The four shows of the embedded world and their backgrounds.

Two cartoon shows (flat fills, dark outlines, saturated palettes) and two live-action shows (gradients,
procedural texture, atmospheric blur, vignette). Each show has ``VARIANTS`` backgrounds (time of day /
set dressing), rendered deterministically and cached per (show, variant, size): the camera is static,
so a clip renders its background once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

VARIANTS = 4
OUTLINE = (38, 28, 44)
GROUND_TOP = 0.70   # fraction of height where the walkable ground begins in every background


@dataclass(frozen=True)
class Show:
    id: str
    title: str
    style: str
    blurb: str


SHOWS: dict[str, Show] = {s.id: s for s in (
    Show("meadow-mischief", "Meadow Mischief", "cartoon", "farmyard cartoon: hills, a barn, sunny skies"),
    Show("starport-scouts", "Starport Scouts", "cartoon", "space-station cartoon: panels, portholes, consoles"),
    Show("harbor-lane", "Harbor Lane", "live-action", "harbour-town sitcom: quay, water, town houses"),
    Show("ridgeview-rangers", "Ridgeview Rangers", "live-action", "forest-park drama: mountains, trees, trails"),
)}


def shows_of_style(style: str) -> list[str]:
    return [s.id for s in SHOWS.values() if s.style == style]


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 4, base: int = 4) -> np.ndarray:
    """Smooth value noise in [0, 1], (h, w) float32."""
    out = np.zeros((h, w), np.float32)
    amp, tot = 1.0, 0.0
    for o in range(octaves):
        g = base * 2 ** o
        small = rng.random((g + 1, g + 1)).astype(np.float32)
        out += amp * cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        tot += amp
        amp *= 0.5
    out /= tot
    return np.clip((out - out.min()) / max(1e-6, np.ptp(out)), 0, 1)


def vertical_gradient(h: int, w: int, top, bottom, y0: float = 0.0, y1: float = 1.0) -> np.ndarray:
    t = np.clip((np.linspace(0, 1, h, dtype=np.float32) - y0) / max(1e-6, y1 - y0), 0, 1)[:, None, None]
    return np.broadcast_to(np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t, (h, w, 3)).copy()


def vignette(img: np.ndarray, strength: float = 0.35) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = np.ogrid[-1:1:h * 1j, -1:1:w * 1j]
    v = 1 - strength * np.clip((x ** 2 + y ** 2) / 2, 0, 1) ** 1.2
    return img * v[..., None].astype(np.float32)


def _pts(points, w, h, shift=4):
    s = 1 << shift
    return np.array([[int(round(x * w * s)), int(round(y * h * s))] for x, y in points], np.int32)


def _poly(img, points, color, w, h, outline=True, lw=1):
    p = _pts(points, w, h)
    cv2.fillPoly(img, [p], color, cv2.LINE_AA, shift=4)
    if outline:
        cv2.polylines(img, [p], True, OUTLINE, lw, cv2.LINE_AA, shift=4)


def _circle(img, cx, cy, r, color, w, h, outline=True, lw=1):
    s = 16
    c = (int(cx * w * s), int(cy * h * s))
    rr = max(1, int(r * w * s))
    cv2.circle(img, c, rr, color, -1, cv2.LINE_AA, shift=4)
    if outline:
        cv2.circle(img, c, rr, OUTLINE, lw, cv2.LINE_AA, shift=4)


# ---------------------------------------------------------------------------------------------------
# cartoon backgrounds
# ---------------------------------------------------------------------------------------------------
_MEADOW_SKIES = [((120, 200, 250), (250, 230, 90), (110, 200, 80)),    # morning
                 ((70, 160, 245), (255, 240, 120), (80, 190, 70)),      # noon
                 ((250, 150, 120), (255, 200, 80), (150, 170, 60)),     # sunset
                 ((120, 100, 190), (240, 240, 220), (70, 140, 90))]     # evening (moon)


def _meadow(rng, w, h, v):
    sky, sun, grass = _MEADOW_SKIES[v]
    lw = max(1, w // 128)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = sky
    _circle(img, rng.uniform(0.65, 0.9), rng.uniform(0.1, 0.22), 0.07, sun, w, h, lw=lw)
    for _ in range(rng.integers(2, 4)):
        cx, cy = rng.uniform(0.05, 0.8), rng.uniform(0.08, 0.3)
        for dx, dy, r in ((0, 0, .05), (.045, .01, .04), (-.045, .012, .038), (.02, -.025, .04)):
            _circle(img, cx + dx, cy + dy, r, (250, 250, 250), w, h, lw=lw)
        for dx, dy, r in ((0, 0, .05), (.045, .01, .04), (-.045, .012, .038), (.02, -.025, .04)):
            _circle(img, cx + dx, cy + dy, r - 0.008, (250, 250, 250), w, h, outline=False)
    far = tuple(int(c * 0.8 + 40) for c in grass)
    xs = np.linspace(-0.05, 1.05, 9)
    ys = 0.5 + 0.06 * np.sin(xs * rng.uniform(4, 8) + rng.uniform(0, 6))
    _poly(img, [(-0.05, 1.0)] + list(zip(xs, ys)) + [(1.05, 1.0)], far, w, h, lw=lw)
    # barn
    bx = rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.62, 0.78)])
    _poly(img, [(bx, 0.62), (bx + 0.2, 0.62), (bx + 0.2, 0.45), (bx + 0.1, 0.36), (bx, 0.45)], (200, 50, 45), w, h, lw=lw)
    _poly(img, [(bx + 0.07, 0.62), (bx + 0.13, 0.62), (bx + 0.13, 0.52), (bx + 0.07, 0.52)], (250, 240, 220), w, h, lw=lw)
    # near ground
    xs = np.linspace(-0.05, 1.05, 9)
    ys = GROUND_TOP - 0.04 + 0.02 * np.sin(xs * rng.uniform(3, 6) + rng.uniform(0, 6))
    _poly(img, [(-0.05, 1.05)] + list(zip(xs, ys)) + [(1.05, 1.05)], grass, w, h, lw=lw)
    # fence
    fy = GROUND_TOP - 0.02
    for x in np.arange(rng.uniform(0, 0.08), 1.0, 0.09):
        _poly(img, [(x, fy), (x + 0.025, fy), (x + 0.025, fy - 0.09), (x + 0.0125, fy - 0.105), (x, fy - 0.09)],
              (245, 235, 210), w, h, lw=lw)
    _poly(img, [(0, fy - 0.065), (1, fy - 0.065), (1, fy - 0.05), (0, fy - 0.05)], (245, 235, 210), w, h, lw=lw)
    # flowers
    for _ in range(10):
        x, y = rng.uniform(0, 1), rng.uniform(GROUND_TOP + 0.03, 0.98)
        _circle(img, x, y, 0.012, tuple(int(c) for c in rng.choice([(250, 90, 120), (250, 240, 90), (255, 255, 255)])),
                w, h, lw=lw)
    return img


_STARPORT = [((40, 60, 110), (70, 100, 160), (90, 90, 120)),
             ((70, 40, 100), (120, 70, 160), (100, 80, 120)),
             ((30, 90, 90), (60, 150, 140), (80, 110, 110)),
             ((90, 50, 50), (170, 90, 70), (110, 90, 90))]


def _starport(rng, w, h, v):
    wall, panel, floor = _STARPORT[v]
    lw = max(1, w // 128)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = wall
    # wall panels
    for x in np.arange(0.0, 1.0, 0.25):
        _poly(img, [(x + 0.02, 0.06), (x + 0.23, 0.06), (x + 0.23, GROUND_TOP - 0.06), (x + 0.02, GROUND_TOP - 0.06)],
              panel, w, h, lw=lw)
    # porthole with stars and a planet
    cx = rng.uniform(0.25, 0.75)
    _circle(img, cx, 0.3, 0.15, (15, 15, 35), w, h, lw=2 * lw)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (int(cx * w), int(0.3 * h)), int(0.14 * w), 1, -1)
    for _ in range(25):
        x, y = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        if mask[min(y, h - 1), min(x, w - 1)]:
            img[y, x] = (255, 255, 230)
    _circle(img, cx + 0.05, 0.33, 0.05, tuple(int(c) for c in rng.choice([(250, 150, 60), (90, 200, 120), (230, 90, 150)])),
            w, h, lw=lw)
    # consoles
    for x in (rng.uniform(0.0, 0.15), rng.uniform(0.78, 0.9)):
        _poly(img, [(x, GROUND_TOP), (x + 0.14, GROUND_TOP), (x + 0.14, GROUND_TOP - 0.13), (x, GROUND_TOP - 0.1)],
              (200, 205, 215), w, h, lw=lw)
        for i in range(3):
            c = tuple(int(c) for c in rng.choice([(250, 60, 60), (60, 250, 120), (250, 220, 50), (60, 180, 250)]))
            _circle(img, x + 0.03 + 0.04 * i, GROUND_TOP - 0.075, 0.011, c, w, h, lw=lw)
    # floor with perspective tiles
    _poly(img, [(-0.01, GROUND_TOP), (1.01, GROUND_TOP), (1.01, 1.01), (-0.01, 1.01)], floor, w, h, lw=lw)
    for x in np.linspace(-1, 2, 13):
        cv2.line(img, (int((0.5 + (x - 0.5) * 0.45) * w), int(GROUND_TOP * h)), (int(x * w), h), OUTLINE, lw, cv2.LINE_AA)
    for y in (0.76, 0.84, 0.95):
        cv2.line(img, (0, int(y * h)), (w, int(y * h)), OUTLINE, lw, cv2.LINE_AA)
    return img


# ---------------------------------------------------------------------------------------------------
# live-action backgrounds
# ---------------------------------------------------------------------------------------------------
_HARBOR = [((95, 150, 215), (215, 225, 235), (70, 110, 140), 1.0),    # bright day
           ((150, 160, 170), (205, 205, 205), (80, 95, 105), 0.9),    # overcast
           ((200, 140, 110), (250, 205, 150), (120, 100, 110), 0.95),  # golden hour
           ((35, 45, 85), (110, 90, 120), (30, 40, 60), 0.6)]         # dusk


def _harbor(rng, w, h, v):
    top, horizon, water, light = _HARBOR[v]
    img = vertical_gradient(h, w, top, horizon, 0.0, 0.5)
    clouds = fractal_noise(rng, h, w, 5, 3)
    img += (np.clip(clouds - 0.55, 0, 1) * 120 * light)[..., None] * (np.linspace(1, 0.2, h)[:, None, None])
    # town houses along the quay
    x = -0.02
    while x < 1.0:
        bw, bh = rng.uniform(0.08, 0.16), rng.uniform(0.12, 0.28)
        col = np.array(rng.choice([(200, 170, 140), (170, 90, 70), (225, 215, 190), (120, 140, 160), (230, 200, 120)]),
                       np.float32) * light
        y0, x0, x1 = int((0.56 - bh) * h), int(x * w), int((x + bw) * w)
        img[y0:int(0.56 * h), max(0, x0):x1] = col
        for wy in np.arange(0.56 - bh + 0.03, 0.54, 0.05):
            for wx in np.arange(x + 0.02, x + bw - 0.02, 0.035):
                lit = v == 3 and rng.random() < 0.6
                img[int(wy * h):int((wy + 0.02) * h), int(wx * w):int((wx + 0.015) * w)] = \
                    (250, 220, 140) if lit else col * 0.45
        x += bw
    img[: int(0.56 * h)] = cv2.GaussianBlur(img[: int(0.56 * h)], (0, 0), 0.012 * w)
    # water
    y0, y1 = int(0.56 * h), int(GROUND_TOP * h)
    rip = fractal_noise(rng, y1 - y0, w, 4, 6)
    img[y0:y1] = np.asarray(water, np.float32) * (0.8 + 0.4 * rip[..., None]) + \
        np.asarray(horizon, np.float32) * 0.15 * (rip[..., None] > 0.7)
    # quay: paving with texture and perspective joints
    g = vertical_gradient(h - y1, w, (150, 140, 130), (110, 100, 95))
    tex = fractal_noise(rng, h - y1, w, 5, 8)
    g *= (0.82 + 0.3 * tex[..., None])
    for k in np.linspace(-1.5, 2.5, 17):
        cv2.line(g, (int((0.5 + (k - 0.5) * 0.3) * w), 0), (int(k * w), h - y1), (80, 75, 70), 1, cv2.LINE_AA)
    img[y1:] = g * light
    img[y1 - 1:y1 + 1] = 70 * light
    img = vignette(img, 0.4)
    img = cv2.GaussianBlur(img, (0, 0), 0.004 * w + 0.3)
    return np.clip(img, 0, 255).astype(np.uint8)


_RIDGE = [((110, 165, 225), (210, 230, 240), (60, 120, 55), (95, 150, 70)),    # summer
          ((140, 170, 210), (230, 220, 200), (180, 100, 40), (150, 130, 60)),   # autumn
          ((190, 200, 205), (225, 228, 228), (90, 120, 95), (110, 140, 100)),   # mist
          ((90, 90, 140), (240, 160, 110), (40, 70, 45), (70, 100, 60))]        # evening


def _ridge(rng, w, h, v):
    top, horizon, trees, grass = _RIDGE[v]
    img = vertical_gradient(h, w, top, horizon, 0.0, 0.45)
    # mountain layers with atmospheric perspective
    for layer, (base, amp) in enumerate(((0.4, 0.12), (0.47, 0.08))):
        xs = np.arange(w)
        ridge = base + amp * fractal_noise(rng, 1, w, 3, 2)[0] - amp / 2
        col = np.asarray(horizon, np.float32) * (0.75 - 0.15 * layer) + np.asarray(trees, np.float32) * (0.15 + 0.2 * layer)
        yy = np.arange(h)[:, None] / h
        m = yy >= ridge[None, xs]
        img[m] = np.broadcast_to(col, img.shape)[m]
    # tree line: soft blobs
    tl = np.zeros((h, w), np.float32)
    for _ in range(60):
        cx, cy = rng.uniform(-0.05, 1.05), rng.uniform(0.5, 0.64)
        cv2.ellipse(tl, (int(cx * w), int(cy * h)), (int(rng.uniform(0.02, 0.05) * w), int(rng.uniform(0.05, 0.12) * h)),
                    0, 0, 360, float(rng.uniform(0.6, 1.0)), -1)
    leaf = fractal_noise(rng, h, w, 5, 10)
    tcol = np.asarray(trees, np.float32) * (0.55 + 0.6 * leaf[..., None])
    a = np.clip(cv2.GaussianBlur(tl, (0, 0), 0.006 * w + 0.5), 0, 1)[..., None]
    img = img * (1 - a) + tcol * a
    img = cv2.GaussianBlur(img, (0, 0), 0.008 * w)     # background out of focus
    # meadow and trail
    y1 = int(GROUND_TOP * h) - int(0.03 * h)
    gt = fractal_noise(rng, h - y1, w, 5, 10)
    streak = cv2.resize(rng.random((max(2, (h - y1) // 3), w)).astype(np.float32), (w, h - y1))
    ground = np.asarray(grass, np.float32) * (0.7 + 0.35 * gt[..., None] + 0.15 * streak[..., None])
    trail = np.zeros((h - y1, w), np.float32)
    c = rng.uniform(0.3, 0.7)
    pts = np.array([[int((c - 0.05) * w), 0], [int((c + 0.05) * w), 0], [int((c + 0.45) * w), h - y1], [int((c - 0.45) * w), h - y1]])
    cv2.fillPoly(trail, [pts], 1.0)
    trail = cv2.GaussianBlur(trail, (0, 0), 0.01 * w + 0.5)[..., None]
    dirt = np.array([150, 125, 95], np.float32) * (0.75 + 0.35 * gt[..., None])
    img[y1:] = ground * (1 - trail) + dirt * trail
    img = vignette(img, 0.45)
    return np.clip(img, 0, 255).astype(np.uint8)


_RENDER = {"meadow-mischief": _meadow, "starport-scouts": _starport, "harbor-lane": _harbor,
           "ridgeview-rangers": _ridge}


@lru_cache(maxsize=64)
def _background_cached(show: str, variant: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng([list(SHOWS).index(show), variant, 7])
    img = _RENDER[show](rng, width, height, variant)
    img.setflags(write=False)
    return img


def background(show: str, variant: int, width: int, height: int) -> np.ndarray:
    """The show's background ``variant`` at width×height, uint8 (H, W, 3), read-only (copy before drawing)."""
    if show not in SHOWS:
        raise ValueError(f"unknown show {show!r}; known shows: {', '.join(SHOWS)}")
    if not 0 <= variant < VARIANTS:
        raise ValueError(f"background variant {variant} out of range 0..{VARIANTS - 1}")
    return _background_cached(show, int(variant), int(width), int(height))
