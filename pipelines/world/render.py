"""Rasterising characters and composing frames.

A character is drawn as a *label map* (uint8, one material id per pixel) with OpenCV primitives at
sub-pixel precision, then coloured:

* cartoon — every part first as a thicker shape in the dark OUTLINE label, then filled: flat fills with
  dark outlines, inner outlines where parts overlap;
* live-action — the same pass draws each part's rim in a darker *shade* of its own material (no outlines),
  then colour is modulated by a shared procedural texture bank (skin pores, hair strands, fabric weave),
  soft rim shading from a blurred silhouette and a key light from the upper left; edges are softened.

Frames get shadows under the feet (flat for cartoon characters, soft for live-action), and live-action
pixels get film grain and lens softness; cartoon pixels stay clean even on a live-action set, so mixing
styles (CCA) never repaints a character in the other style.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from ..pose.openpose import J
from .characters import HEAD_GEOMETRY, CharacterSpec
from .shows import OUTLINE as OUTLINE_RGB, fractal_noise

# material labels
EMPTY, SKIN, HAIR, TOP, PATTERN, BOTTOM, SHOES, ACCENT, EYE, PUPIL, MOUTH, OUTLINE = range(12)
SHADE = 16                  # label + SHADE: the material's rim shade (live-action)
N_LABELS = 32
SHIFT = 4
S = 1 << SHIFT


def _p(pt) -> tuple[int, int]:
    return int(round(float(pt[0]) * S)), int(round(float(pt[1]) * S))


class Painter:
    """Draws one character, frame by frame, into label maps; colours label maps into RGB + alpha."""

    def __init__(self, spec: CharacterSpec, width: int, height: int):
        self.spec, self.w, self.h = spec, width, height
        self.cartoon = spec.style == "cartoon"
        lut = np.zeros((N_LABELS, 3), np.float32)
        base = {SKIN: spec.skin, HAIR: spec.hair, TOP: spec.top, PATTERN: spec.top2, BOTTOM: spec.bottom,
                SHOES: spec.shoes, ACCENT: spec.accent, MOUTH: (120, 40, 50) if self.cartoon else (150, 80, 75),
                EYE: (255, 255, 255) if self.cartoon else (235, 230, 225), PUPIL: (20, 20, 30), OUTLINE: OUTLINE_RGB}
        for k, c in base.items():
            lut[k] = c
            lut[k + SHADE] = np.asarray(c, np.float32) * 0.72
        self.lut = lut
        gx, gy, n, bulge = HEAD_GEOMETRY[spec.head_shape]
        a = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        c, s = np.cos(a), np.sin(a)
        x = gx * np.sign(c) * np.abs(c) ** (2 / n) * (1 + bulge * np.clip(s, 0, None))
        y = gy * np.sign(s) * np.abs(s) ** (2 / n)
        self.head_unit = np.stack([x, y], -1).astype(np.float32)
        self.gy = gy

    # ---- primitives (outline pass then fill) --------------------------------------------------------
    def _ol(self, label: int) -> int:
        return OUTLINE if self.cartoon else label + SHADE

    def capsule(self, img, a, b, width: float, label: int, outline: float):
        w = max(1, int(round(width)))
        if outline > 0:
            cv2.line(img, _p(a), _p(b), self._ol(label), w + 2 * max(1, int(round(outline))), cv2.LINE_8, SHIFT)
        cv2.line(img, _p(a), _p(b), label, w, cv2.LINE_8, SHIFT)

    def poly(self, img, pts, label: int, outline: float):
        p = np.array([_p(q) for q in pts], np.int32)
        if outline > 0:
            o = max(1, int(round(outline)))
            cv2.fillPoly(img, [p], self._ol(label), cv2.LINE_8, SHIFT)
            cv2.polylines(img, [p], True, self._ol(label), 2 * o, cv2.LINE_8, SHIFT)
        cv2.fillPoly(img, [p], label, cv2.LINE_8, SHIFT)

    def disc(self, img, c, r: float, label: int, outline: float):
        if outline > 0:
            cv2.circle(img, _p(c), int(round((r + max(1, round(outline))) * S)), self._ol(label), -1, cv2.LINE_8, SHIFT)
        cv2.circle(img, _p(c), max(1, int(round(r * S))), label, -1, cv2.LINE_8, SHIFT)

    # ---- the character --------------------------------------------------------------------------------
    def draw(self, body: dict, i: int, out: np.ndarray | None = None) -> np.ndarray:
        """Label map (H, W) uint8 of frame ``i`` of a ``body.forward_kinematics`` result."""
        sp = self.spec
        img = np.zeros((self.h, self.w), np.uint8) if out is None else out
        kp = body["keypoints"][i, :, :2]
        h = float(body["h"][i])
        r = float(body["head_r"][i])
        f = float(body["facing"][i])
        ang = float(body["head_angle"][i])
        lean = float(body["lean"][i])
        head = body["head"][i]
        o = 0.018 * h if self.cartoon else 0.012 * h
        comp = 1 - 0.45 * abs(f)
        up = np.array([np.sin(lean), -np.cos(lean)], np.float32)
        right = np.array([np.cos(lean), np.sin(lean)], np.float32)
        hu = np.array([np.sin(ang), -np.cos(ang)], np.float32)
        hr = np.array([np.cos(ang), np.sin(ang)], np.float32)
        neck, hip = kp[J["neck"]], (kp[J["r_hip"]] + kp[J["l_hip"]]) / 2
        limb, leg = sp.limb * h, sp.leg * h

        # 1. behind the body
        if sp.accessory == "cape":
            top_w = sp.shoulders * h * 0.55 * comp
            knee_y = (kp[J["r_knee"]] + kp[J["l_knee"]]) / 2
            self.poly(img, [neck - right * top_w, neck + right * top_w, knee_y + right * top_w * 1.8 - up * 0.02 * h,
                            knee_y - right * top_w * 1.8 - up * 0.02 * h], ACCENT, o)
        if sp.accessory == "backpack":
            side = -np.sign(f) if abs(f) > 0.2 else 0.0
            c = neck - up * 0.14 * h + right * side * 0.12 * h
            bw, bh = sp.torso_w * h * 0.62, 0.2 * h
            self.poly(img, [c - right * bw - up * bh / 2, c + right * bw - up * bh / 2, c + right * bw + up * bh / 2,
                            c - right * bw + up * bh / 2], ACCENT, o)
        if sp.hair_style == "long":
            self.poly(img, [head - hr * r * 1.05 - hu * r * 0.2, head + hr * r * 1.05 - hu * r * 0.2,
                            neck + right * r * 1.0 - up * 0.12 * h, neck - right * r * 1.0 - up * 0.12 * h], HAIR, o)

        # 2. legs (far leg first), shoes
        legs_order = ("l", "r") if f < 0 else ("r", "l")
        bottom_leg = BOTTOM if sp.bottom_type == "pants" else SKIN
        for side in legs_order:
            hp, kn, an = kp[J[f"{side}_hip"]], kp[J[f"{side}_knee"]], kp[J[f"{side}_ankle"]]
            self.capsule(img, kn, an, leg * 0.9, bottom_leg, o)
            self.capsule(img, hp, kn, leg, BOTTOM if sp.bottom_type in ("pants", "shorts") else SKIN, o)
            toe = an + np.array([(0.06 * h) * (np.sign(f) if abs(f) > 0.2 else 0.0), 0.025 * h], np.float32)
            self.capsule(img, an, toe, leg * 0.95, SHOES, o)

        # 3. torso (and skirt), with pattern
        tw = sp.torso_w * h / 2 * comp
        bw = max(sp.hips * h / 2 + leg / 2, sp.torso_w * h * 0.42) * comp
        t0, t1 = neck - up * 0.02 * h, hip + up * 0.02 * h
        torso = [t0 - right * tw, t0 + right * tw, t1 + right * bw, t1 - right * bw]
        if sp.bottom_type in ("skirt", "dress"):
            knee = (kp[J["r_knee"]] + kp[J["l_knee"]]) / 2
            hem = hip + (knee - hip) * (0.95 if sp.bottom_type == "dress" else 0.6)
            flare = bw * (1.8 if sp.bottom_type == "dress" else 1.5)
            self.poly(img, [hip - right * bw - up * 0.0, hip + right * bw, hem + right * flare, hem - right * flare],
                      TOP if sp.bottom_type == "dress" else BOTTOM, o)
        self.poly(img, torso, TOP, o)
        self._pattern(img, torso, t0, t1, right, up, h)
        if sp.accessory == "tie":
            self.poly(img, [t0 - right * 0.02 * h, t0 + right * 0.02 * h, t0 - up * 0.2 * h + right * 0.025 * h,
                            t0 - up * 0.23 * h, t0 - up * 0.2 * h - right * 0.025 * h], ACCENT, o * 0.5)

        # 4. neck, arms, hands
        self.capsule(img, neck, neck + up * 0.05 * h, limb * 1.1, SKIN, o)
        sleeve_upper = SKIN if sp.sleeves == "none" else TOP
        sleeve_fore = TOP if sp.sleeves == "long" else SKIN
        arm_order = ("l", "r") if f < 0 else ("r", "l")
        for side in arm_order:
            sh, el, wr = kp[J[f"{side}_shoulder"]], kp[J[f"{side}_elbow"]], kp[J[f"{side}_wrist"]]
            self.capsule(img, el, wr, limb * 0.9, sleeve_fore, o)
            self.capsule(img, sh, el, limb, sleeve_upper, o)
            self.disc(img, wr, limb * 0.75, SKIN, o)
        if sp.accessory == "scarf":
            self.capsule(img, neck - right * tw * 0.8 - up * 0.01 * h, neck + right * tw * 0.8 - up * 0.01 * h,
                         0.05 * h, ACCENT, o)
            self.capsule(img, neck + right * tw * 0.4, neck + right * tw * 0.5 - up * 0.15 * h, 0.04 * h, ACCENT, o)

        # 5. head
        if sp.accessory == "ears":
            for sgn in (-1, 1):
                base = head + hr * sgn * r * 0.55 + hu * r * 0.5
                self.poly(img, [base - hr * r * 0.32, base + hr * r * 0.32, base + hr * sgn * r * 0.3 + hu * r * 0.8],
                          ACCENT, o)
        if sp.hair_style == "bun":
            self.disc(img, head + hu * r * 1.05, r * 0.42, HAIR, o)
        if sp.hair_style == "curly":
            for k in range(7):
                a = np.pi * (0.05 + 0.9 * k / 6)
                c = head + (hr * -np.cos(a) * 0.95 + hu * np.sin(a) * 0.8) * r * np.array([HEAD_GEOMETRY[sp.head_shape][0], 1.0]).mean()
                self.disc(img, c, r * 0.36, HAIR, o)
        hx = head + (self.head_unit[:, :1] * hr + self.head_unit[:, 1:] * -hu) * r
        self.poly(img, hx, SKIN, o)
        self._hair(img, head, hu, hr, r, o)
        if abs(f) < 0.92:
            self._face(img, kp, head, hu, hr, r, f, o)
        self._head_accessory(img, head, hu, hr, r, f, o, kp)
        return img

    def _pattern(self, img, torso, t0, t1, right, up, h):
        kind = self.spec.pattern
        if kind == "solid":
            return
        x0, y0 = np.floor(np.min(torso, 0)).astype(int)
        x1, y1 = np.ceil(np.max(torso, 0)).astype(int) + 1
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(self.w, x1), min(self.h, y1)
        if x1 <= x0 or y1 <= y0:
            return
        sub = np.zeros((y1 - y0, x1 - x0), np.uint8)
        off = np.array([x0, y0], np.float32)
        step = 0.055 * h
        length = float(np.linalg.norm(t1 - t0))
        cw = float(np.linalg.norm(torso[1] - torso[0]))
        def P(q):
            return _p(q - off)
        if kind == "stripes":
            for k in np.arange(step * 0.5, length, step * 1.6):
                c = t0 - up * k
                cv2.line(sub, P(c - right * cw), P(c + right * cw), 1, max(1, int(round(step * 0.7))), cv2.LINE_8, SHIFT)
        elif kind in ("dots", "checks"):
            for a, k in enumerate(np.arange(step * 0.6, length, step * 1.3)):
                for b, m in enumerate(np.arange(-cw, cw, step * 1.3)):
                    c = t0 - up * k + right * (m + (step * 0.65 if (a % 2 and kind == "dots") else 0))
                    if kind == "dots":
                        cv2.circle(sub, P(c), max(S, int(step * 0.38 * S)), 1, -1, cv2.LINE_8, SHIFT)
                    elif (a + b) % 2 == 0:
                        d = step * 0.65
                        q = np.array([c - right * d - up * d, c + right * d - up * d, c + right * d + up * d, c - right * d + up * d])
                        cv2.fillConvexPoly(sub, np.array([P(v) for v in q], np.int32), 1, cv2.LINE_8, SHIFT)
        elif kind == "zigzag":
            for k in (length * 0.35, length * 0.65):
                pts = [t0 - up * (k + (step * 0.6 if j % 2 else -step * 0.6)) + right * (-cw + j * cw / 4) for j in range(9)]
                cv2.polylines(sub, [np.array([P(q) for q in pts], np.int32)], False, 1, max(1, int(round(step * 0.5))),
                              cv2.LINE_8, SHIFT)
        elif kind == "star":
            c = t0 - up * length * 0.45
            rr = min(cw * 0.35, length * 0.3)
            a = np.linspace(-np.pi / 2, 1.5 * np.pi, 11)[:-1]
            rad = np.where(np.arange(10) % 2 == 0, rr, rr * 0.45)
            pts = [c + right * np.cos(t) * q - up * -np.sin(t) * q for t, q in zip(a, rad)]
            cv2.fillPoly(sub, [np.array([P(q) for q in pts], np.int32)], 1, cv2.LINE_8, SHIFT)
        region = img[y0:y1, x0:x1]
        region[(sub > 0) & (region == TOP)] = PATTERN

    def _hair(self, img, head, hu, hr, r, o):
        st = self.spec.hair_style
        gx = HEAD_GEOMETRY[self.spec.head_shape][0]
        top = head + hu * r * self.gy
        if st in ("short", "bob", "long", "bun", "curly"):
            # a cap over the top of the head down to the fringe line (above the eyes); bob and long add sides
            fringe = {"short": 0.3, "bob": 0.22, "long": 0.18, "bun": 0.3, "curly": 0.25}[st]
            t0 = np.arcsin(fringe)
            a = np.linspace(np.pi - t0, t0, 12)
            pts = [head + (hr * np.cos(t) * gx * 1.08 + hu * np.sin(t) * self.gy * 1.1) * r for t in a]
            if st in ("bob", "long"):
                low = 0.55 if st == "bob" else 0.9
                side = [head + hr * gx * 1.1 * r - hu * r * low, head + hr * gx * 0.8 * r - hu * r * low,
                        head + hr * gx * 0.85 * r + hu * r * fringe]
                pts = [head - hr * gx * 0.85 * r + hu * r * fringe, head - hr * gx * 0.8 * r - hu * r * low,
                       head - hr * gx * 1.1 * r - hu * r * low] + pts + side
            self.poly(img, pts, HAIR, o * 0.8)
        elif st == "tuft":
            self.poly(img, [top - hr * r * 0.25, top + hr * r * 0.15, top + hu * r * 0.45 + hr * r * 0.1], HAIR, o)
        elif st == "spiky":
            pts = []
            for k in range(7):
                t = np.pi * k / 6
                rr = 1.45 if k % 2 else 0.95
                pts.append(head + (hr * -np.cos(t) * gx + hu * np.sin(t) * self.gy) * r * rr)
            self.poly(img, pts, HAIR, o)

    def _face(self, img, kp, head, hu, hr, r, f, o):
        for name in ("r_eye", "l_eye"):
            e = kp[J[name]]
            if self.cartoon:
                self.disc(img, e, r * 0.2, EYE, o * 0.6)
                self.disc(img, e + hr * f * r * 0.07, r * 0.1, PUPIL, 0)
            else:
                self.disc(img, e, max(0.6, r * 0.1), PUPIL, 0)
                cv2.line(img, _p(e - hr * r * 0.14 + hu * r * 0.2), _p(e + hr * r * 0.14 + hu * r * 0.22), HAIR,
                         max(1, int(round(r * 0.08))), cv2.LINE_8, SHIFT)
        m = head - hu * r * 0.5 + hr * f * r * 0.3
        cv2.line(img, _p(m - hr * r * 0.18), _p(m + hr * r * 0.18), MOUTH, max(1, int(round(r * 0.09))), cv2.LINE_8, SHIFT)

    def _head_accessory(self, img, head, hu, hr, r, f, o, kp):
        acc = self.spec.accessory
        gx = HEAD_GEOMETRY[self.spec.head_shape][0]
        top = head + hu * r * self.gy * 0.95
        if acc == "hat":
            self.poly(img, [top - hr * r * 1.35, top + hr * r * 1.35, top + hr * r * 1.35 + hu * r * 0.18,
                            top - hr * r * 1.35 + hu * r * 0.18], ACCENT, o)
            self.poly(img, [top - hr * r * 0.75, top + hr * r * 0.75, top + hr * r * 0.7 + hu * r * 0.85,
                            top - hr * r * 0.7 + hu * r * 0.85], ACCENT, o)
        elif acc == "cap":
            a = np.linspace(0, np.pi, 10)
            pts = [head + (hr * np.cos(t) * gx * 1.05 + hu * (np.sin(t) * self.gy * 1.05 + 0.1)) * r for t in a]
            self.poly(img, pts, ACCENT, o)
            d = np.sign(f) if abs(f) > 0.15 else 1.0
            self.capsule(img, head + hu * r * 0.15 + hr * d * r * 0.2, head + hu * r * 0.15 + hr * d * r * 1.35,
                         0.15 * r, ACCENT, o)
        elif acc == "bow":
            c = top + hr * r * 0.45
            for sgn in (-1, 1):
                self.poly(img, [c, c + hr * sgn * r * 0.55 + hu * r * 0.3, c + hr * sgn * r * 0.55 - hu * r * 0.25],
                          ACCENT, o)
            self.disc(img, c, r * 0.13, ACCENT, o)
        elif acc == "antenna":
            tip = top + hu * r * 0.8 + hr * r * 0.15
            self.capsule(img, top, tip, max(1.0, 0.08 * r), ACCENT, o * 0.6)
            self.disc(img, tip, r * 0.2, ACCENT, o)
        elif acc == "headband":
            a = np.linspace(0.15 * np.pi, 0.85 * np.pi, 8)
            pts = [head + (hr * np.cos(t) * gx * 1.02 + hu * np.sin(t) * self.gy * 0.75) * r for t in a]
            cv2.polylines(img, [np.array([_p(q) for q in pts], np.int32)], False, ACCENT,
                          max(1, int(round(0.2 * r))), cv2.LINE_8, SHIFT)
        elif acc == "glasses" and abs(f) < 0.9:
            for name in ("r_eye", "l_eye"):
                cv2.circle(img, _p(kp[J[name]]), max(S, int(r * 0.3 * S)), ACCENT, max(1, int(round(0.08 * r))),
                           cv2.LINE_8, SHIFT)
            cv2.line(img, _p(kp[J["r_eye"]] + hr * r * 0.28), _p(kp[J["l_eye"]] - hr * r * 0.28), ACCENT,
                     max(1, int(round(0.07 * r))), cv2.LINE_8, SHIFT)

    # ---- colour -----------------------------------------------------------------------------------------
    def colorize(self, labels: np.ndarray, h_px: float, origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
        """(RGB float32 (h, w, 3), alpha float32 (h, w)) of a label map, which may be a crop of the frame
        whose top-left corner is at ``origin`` = (y, x) (textures and light are anchored to the frame)."""
        mask = (labels > 0).astype(np.float32)
        rgb = self.lut[labels]
        if self.cartoon:
            return rgb, mask
        y0, x0 = origin
        hh, ww = labels.shape
        bank = texture_bank(self.w, self.h)[:, y0:y0 + hh, x0:x0 + ww]
        gain = np.take_along_axis(bank, labels[None].astype(np.intp), 0)[0]
        rim = cv2.GaussianBlur(mask, (0, 0), max(0.6, 0.035 * h_px))
        shade = (0.62 + 0.48 * np.clip(rim * 1.25, 0, 1)) * key_light(self.w, self.h)[y0:y0 + hh, x0:x0 + ww]
        rgb *= (gain * shade)[..., None]
        soft = cv2.GaussianBlur(mask, (0, 0), 0.6)
        return rgb, mask * np.clip(0.35 + soft, 0, 1)


@lru_cache(maxsize=8)
def texture_bank(width: int, height: int) -> np.ndarray:
    """(N_LABELS, H, W) float32 multiplicative texture per material, shared by live-action characters."""
    rng = np.random.default_rng(1234)
    bank = np.ones((N_LABELS, height, width), np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    fine = rng.normal(0, 1, (height, width)).astype(np.float32)
    weave = (np.sin(xx * 2.1) * np.sin(yy * 2.1)).astype(np.float32)
    strands = cv2.resize(rng.random((max(2, height // 6), width)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    blotch = fractal_noise(rng, height, width, 4, 4)
    mats = {SKIN: 1 + 0.035 * fine + 0.06 * (blotch - 0.5), HAIR: 0.8 + 0.4 * strands + 0.04 * fine,
            TOP: 1 + 0.07 * weave + 0.05 * fine + 0.08 * (blotch - 0.5), PATTERN: 1 + 0.07 * weave + 0.05 * fine,
            BOTTOM: 1 + 0.06 * np.sin((xx + yy) * 1.7) + 0.06 * fine + 0.1 * (blotch - 0.5),
            SHOES: 1 + 0.05 * fine, ACCENT: 1 + 0.05 * fine + 0.05 * weave}
    for k, m in mats.items():
        bank[k] = m
        bank[k + SHADE] = m
    bank.setflags(write=False)
    return bank


@lru_cache(maxsize=8)
def key_light(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    g = 1.08 - 0.16 * (xx / width * 0.6 + yy / height * 0.4)
    g.setflags(write=False)
    return g


@lru_cache(maxsize=8)
def grain_bank(width: int, height: int, n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(99)
    g = rng.normal(0, 4.0, (n, height, width, 1)).astype(np.float32)
    g.setflags(write=False)
    return g
