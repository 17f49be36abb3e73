"""Characters of the embedded world: what a character *is* (``CharacterSpec``: body, look, behaviour),
the ten named characters of the four shows, and a seeded sampler of unlimited new ones.

Proportions are fractions of the character's standing height ``h`` (feet to top of head); the renderer
and the body model turn them into pixels. Behaviour is the signature every motion shows: gait frequency
(strides per second), bounce (fraction of ``h`` the body rises per step), arm swing (radians of swing
amplitude) and an idle habit.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, field, replace

import numpy as np

HEAD_SHAPES = ("circle", "oval", "square", "pear", "tall", "wide")
# (x radius, y radius, superellipse exponent, bottom bulge) of each head shape, in units of the head radius
HEAD_GEOMETRY = {"circle": (1.0, 1.0, 2.0, 0.0), "oval": (0.85, 1.06, 2.0, 0.0), "square": (0.95, 0.95, 4.5, 0.0),
                 "pear": (0.82, 1.0, 2.2, 0.3), "tall": (0.72, 1.15, 2.4, 0.0), "wide": (1.18, 0.88, 2.6, 0.0)}
HAIR_STYLES = ("none", "short", "tuft", "spiky", "bob", "long", "curly", "bun")
PATTERNS = ("solid", "stripes", "dots", "checks", "zigzag", "star")
BOTTOMS = ("pants", "shorts", "skirt", "dress")
SLEEVES = ("long", "short", "none")
ACCESSORIES = ("none", "hat", "cap", "scarf", "glasses", "bow", "antenna", "backpack", "cape", "ears", "headband", "tie")
IDLE_HABITS = ("still", "bob", "tap", "sway", "fidget", "hop", "tilt", "float")


@dataclass(frozen=True)
class Behaviour:
    gait_hz: float = 1.0      # strides per second (a stride = left + right step)
    bounce: float = 0.02      # vertical rise per step, fraction of height
    arm_swing: float = 0.5    # arm swing amplitude while walking, radians
    idle: str = "still"       # idle habit shown when not travelling
    stride: float = 0.5       # stride length, fraction of height (with gait_hz sets travel speed)

    def vector(self) -> np.ndarray:
        """The numeric signature (gait_hz, bounce, arm_swing) the behaviour metric recovers."""
        return np.array([self.gait_hz, self.bounce, self.arm_swing], np.float32)


# the spread of each signature component over the world's characters: divide by it to compare signatures
SIGNATURE_SCALE = np.array([1.4, 0.09, 0.85], np.float32)


@dataclass(frozen=True)
class CharacterSpec:
    id: str
    name: str
    style: str                      # "cartoon" | "live-action"
    show: str = ""                  # show id, "" for procedural characters
    # body (fractions of height)
    height: float = 1.0             # relative standing height (1.0 = average adult of its show)
    head: float = 0.09              # head radius
    head_shape: str = "oval"
    legs: float = 0.45              # hip to ankle
    arms: float = 0.38              # shoulder to wrist
    shoulders: float = 0.22         # shoulder width
    hips: float = 0.15              # hip width
    limb: float = 0.05              # arm thickness
    leg: float = 0.065              # leg thickness
    torso_w: float = 0.24           # torso width at chest
    # look
    skin: tuple = (230, 190, 160)
    hair: tuple = (60, 40, 30)
    top: tuple = (60, 90, 180)
    top2: tuple = (240, 240, 240)   # pattern colour
    bottom: tuple = (50, 50, 60)
    shoes: tuple = (30, 30, 30)
    accent: tuple = (200, 40, 40)   # accessory colour
    hair_style: str = "short"
    pattern: str = "solid"
    bottom_type: str = "pants"
    sleeves: str = "short"
    accessory: str = "none"
    behaviour: Behaviour = field(default_factory=Behaviour)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["behaviour"] = asdict(self.behaviour)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CharacterSpec":
        d = dict(d)
        d["behaviour"] = Behaviour(**d.get("behaviour", {}))
        for k in ("skin", "hair", "top", "top2", "bottom", "shoes", "accent"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)


# ---------------------------------------------------------------------------------------------------
# The ten named characters. Each differs from every other in silhouette (proportions, head shape),
# palette, clothing pattern and accessory, and in behaviour (the signatures are far apart on purpose:
# the behaviour metric must tell them apart from motion alone).
# ---------------------------------------------------------------------------------------------------
NAMED: tuple[CharacterSpec, ...] = (
    # --- Meadow Mischief (cartoon, countryside) ---
    CharacterSpec("pip", "Pip", "cartoon", "meadow-mischief", height=0.74, head=0.19, head_shape="circle",
                  legs=0.30, arms=0.27, shoulders=0.22, hips=0.16, limb=0.06, leg=0.075, torso_w=0.27,
                  skin=(245, 150, 50), hair=(245, 150, 50), top=(40, 110, 230), top2=(255, 255, 255),
                  bottom=(60, 170, 70), shoes=(140, 40, 30), accent=(245, 150, 50),
                  hair_style="tuft", pattern="stripes", bottom_type="shorts", sleeves="none", accessory="ears",
                  behaviour=Behaviour(gait_hz=1.9, bounce=0.075, arm_swing=0.95, idle="hop", stride=0.5)),
    CharacterSpec("bramble", "Bramble", "cartoon", "meadow-mischief", height=1.12, head=0.11, head_shape="tall",
                  legs=0.49, arms=0.42, shoulders=0.19, hips=0.13, limb=0.04, leg=0.05, torso_w=0.2,
                  skin=(120, 200, 90), hair=(90, 60, 30), top=(140, 60, 170), top2=(250, 210, 60),
                  bottom=(110, 80, 50), shoes=(60, 40, 20), accent=(120, 80, 40),
                  hair_style="none", pattern="checks", bottom_type="pants", sleeves="long", accessory="hat",
                  behaviour=Behaviour(gait_hz=0.7, bounce=0.01, arm_swing=0.28, idle="sway", stride=0.62)),
    CharacterSpec("clover", "Clover", "cartoon", "meadow-mischief", height=0.85, head=0.16, head_shape="wide",
                  legs=0.33, arms=0.3, shoulders=0.2, hips=0.2, limb=0.055, leg=0.065, torso_w=0.3,
                  skin=(250, 170, 190), hair=(250, 220, 70), top=(250, 230, 80), top2=(230, 60, 110),
                  bottom=(250, 230, 80), shoes=(230, 60, 110), accent=(230, 40, 90),
                  hair_style="bob", pattern="dots", bottom_type="dress", sleeves="short", accessory="bow",
                  behaviour=Behaviour(gait_hz=1.3, bounce=0.045, arm_swing=0.55, idle="fidget", stride=0.45)),
    # --- Starport Scouts (cartoon, space station) ---
    CharacterSpec("zed", "Zed", "cartoon", "starport-scouts", height=0.95, head=0.13, head_shape="square",
                  legs=0.38, arms=0.36, shoulders=0.27, hips=0.18, limb=0.06, leg=0.07, torso_w=0.3,
                  skin=(170, 185, 200), hair=(170, 185, 200), top=(40, 200, 210), top2=(30, 60, 90),
                  bottom=(90, 100, 115), shoes=(50, 55, 65), accent=(250, 70, 50),
                  hair_style="none", pattern="zigzag", bottom_type="pants", sleeves="long", accessory="antenna",
                  behaviour=Behaviour(gait_hz=1.55, bounce=0.0, arm_swing=0.12, idle="tilt", stride=0.42)),
    CharacterSpec("luma", "Luma", "cartoon", "starport-scouts", height=1.0, head=0.14, head_shape="pear",
                  legs=0.4, arms=0.4, shoulders=0.18, hips=0.15, limb=0.045, leg=0.055, torso_w=0.22,
                  skin=(170, 120, 240), hair=(250, 250, 250), top=(250, 250, 250), top2=(170, 120, 240),
                  bottom=(60, 40, 120), shoes=(60, 40, 120), accent=(240, 60, 130),
                  hair_style="spiky", pattern="star", bottom_type="skirt", sleeves="none",
                  accessory="cape",
                  behaviour=Behaviour(gait_hz=0.85, bounce=0.09, arm_swing=0.7, idle="float", stride=0.55)),
    # --- Harbor Lane (live-action sitcom, harbour town) ---
    CharacterSpec("dora", "Dora", "live-action", "harbor-lane", height=0.97, head=0.075, head_shape="oval",
                  legs=0.47, arms=0.39, shoulders=0.2, hips=0.16, limb=0.042, leg=0.055, torso_w=0.21,
                  skin=(200, 150, 115), hair=(45, 30, 25), top=(190, 40, 55), top2=(250, 225, 210),
                  bottom=(190, 40, 55), shoes=(60, 30, 30), accent=(235, 200, 90),
                  hair_style="curly", pattern="dots", bottom_type="dress", sleeves="short", accessory="none",
                  behaviour=Behaviour(gait_hz=1.1, bounce=0.02, arm_swing=0.42, idle="fidget", stride=0.5)),
    CharacterSpec("marcus", "Marcus", "live-action", "harbor-lane", height=1.1, head=0.07, head_shape="square",
                  legs=0.48, arms=0.41, shoulders=0.25, hips=0.17, limb=0.05, leg=0.065, torso_w=0.26,
                  skin=(120, 80, 55), hair=(25, 20, 18), top=(70, 110, 170), top2=(200, 215, 235),
                  bottom=(95, 95, 100), shoes=(40, 30, 25), accent=(30, 30, 30),
                  hair_style="short", pattern="checks", bottom_type="pants", sleeves="long", accessory="glasses",
                  behaviour=Behaviour(gait_hz=0.8, bounce=0.02, arm_swing=0.85, idle="sway", stride=0.6)),
    # --- Ridgeview Rangers (live-action, forest park) ---
    CharacterSpec("hank", "Hank", "live-action", "ridgeview-rangers", height=1.02, head=0.08, head_shape="wide",
                  legs=0.43, arms=0.4, shoulders=0.28, hips=0.2, limb=0.058, leg=0.075, torso_w=0.31,
                  skin=(225, 180, 150), hair=(110, 70, 40), top=(95, 105, 60), top2=(70, 75, 45),
                  bottom=(120, 95, 65), shoes=(70, 50, 35), accent=(200, 120, 40),
                  hair_style="short", pattern="solid", bottom_type="pants", sleeves="long", accessory="backpack",
                  behaviour=Behaviour(gait_hz=1.0, bounce=0.065, arm_swing=0.18, idle="tap", stride=0.45)),
    CharacterSpec("ivy", "Ivy", "live-action", "ridgeview-rangers", height=0.96, head=0.074, head_shape="oval",
                  legs=0.49, arms=0.39, shoulders=0.19, hips=0.15, limb=0.04, leg=0.052, torso_w=0.2,
                  skin=(240, 200, 175), hair=(180, 70, 30), top=(50, 140, 90), top2=(230, 235, 220),
                  bottom=(40, 50, 80), shoes=(200, 200, 200), accent=(240, 240, 240),
                  hair_style="long", pattern="stripes", bottom_type="pants", sleeves="short", accessory="headband",
                  behaviour=Behaviour(gait_hz=1.45, bounce=0.05, arm_swing=0.35, idle="bob", stride=0.55)),
    CharacterSpec("sol", "Sol", "live-action", "ridgeview-rangers", height=0.7, head=0.1, head_shape="circle",
                  legs=0.4, arms=0.35, shoulders=0.22, hips=0.16, limb=0.052, leg=0.066, torso_w=0.27,
                  skin=(170, 115, 80), hair=(30, 25, 20), top=(245, 200, 40), top2=(250, 235, 150),
                  bottom=(50, 70, 120), shoes=(200, 50, 40), accent=(200, 50, 50),
                  hair_style="bun", pattern="solid", bottom_type="shorts", sleeves="long", accessory="scarf",
                  behaviour=Behaviour(gait_hz=2.1, bounce=0.035, arm_swing=0.6, idle="hop", stride=0.4)),
)
NAMED_BY_ID = {c.id: c for c in NAMED}


# ---------------------------------------------------------------------------------------------------
# Procedural sampler
# ---------------------------------------------------------------------------------------------------
_SYLL = ("ka", "lo", "mi", "ra", "zu", "ti", "ne", "bo", "fa", "qui", "sa", "ve", "do", "ry", "mo", "ki",
         "lu", "pa", "xe", "no", "ju", "wen", "tor", "bel")


def _name(rng: np.random.Generator) -> str:
    return "".join(rng.choice(_SYLL, size=int(rng.integers(2, 4)))).capitalize()


def _hsv(h: float, s: float, v: float) -> tuple:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _skin_tone(rng: np.random.Generator) -> tuple:
    light, dark = np.array([245, 210, 185]), np.array([95, 60, 40])
    t = rng.uniform(0, 1)
    return tuple(int(v) for v in np.clip(light * (1 - t) + dark * t + rng.normal(0, 6, 3), 0, 255))


def sample_character(rng: np.random.Generator, style: str | None = None, show: str = "",
                     id_prefix: str = "proc") -> CharacterSpec:
    """A new random character of ``style`` (drawn at random when None). Deterministic for ``rng``'s state."""
    style = style or ("cartoon" if rng.random() < 0.5 else "live-action")
    u = rng.uniform
    cartoon = style == "cartoon"
    if cartoon:
        head = u(0.11, 0.2)
        height = u(0.7, 1.15)
        h1 = u(0, 1)
        skin = _hsv(h1, u(0.35, 0.75), u(0.75, 1.0)) if rng.random() < 0.6 else _skin_tone(rng)
        top = _hsv(h1 + u(0.25, 0.75), u(0.6, 0.95), u(0.7, 1.0))
        top2 = _hsv(h1 + u(0.1, 0.9), u(0.0, 0.8), u(0.85, 1.0))
        bottom = _hsv(h1 + u(0.3, 0.7), u(0.5, 0.9), u(0.4, 0.8))
        hair = _hsv(u(0, 1), u(0.5, 1.0), u(0.3, 1.0))
        accent = _hsv(u(0, 1), u(0.7, 1.0), u(0.7, 1.0))
        head_shape = str(rng.choice(HEAD_SHAPES))
        accessory = str(rng.choice(ACCESSORIES))
    else:
        head = u(0.068, 0.1)
        height = u(0.75, 1.12)
        skin = _skin_tone(rng)
        top = _hsv(u(0, 1), u(0.2, 0.75), u(0.3, 0.85))
        top2 = _hsv(u(0, 1), u(0.0, 0.4), u(0.6, 0.95))
        bottom = _hsv(u(0, 1), u(0.1, 0.6), u(0.15, 0.6))
        hair = _hsv(u(0.02, 0.1), u(0.3, 0.8), u(0.08, 0.75))
        accent = _hsv(u(0, 1), u(0.2, 0.8), u(0.2, 0.9))
        head_shape = str(rng.choice(("oval", "circle", "square", "wide")))
        accessory = str(rng.choice(("none", "hat", "cap", "scarf", "glasses", "backpack", "headband", "tie")))
    legs = u(0.3, 0.42) if cartoon else u(0.42, 0.5)
    behaviour = Behaviour(gait_hz=float(u(0.6, 2.2)), bounce=float(u(0.0, 0.09)), arm_swing=float(u(0.1, 1.0)),
                          idle=str(rng.choice(IDLE_HABITS)), stride=float(u(0.38, 0.65)))
    return CharacterSpec(
        id=f"{id_prefix}-{int(rng.integers(0, 2**31)):08x}", name=_name(rng), style=style, show=show,
        height=float(height), head=float(head), head_shape=head_shape, legs=float(legs),
        arms=float(u(0.75, 0.95) * legs + 0.05), shoulders=float(u(0.17, 0.28)), hips=float(u(0.12, 0.2)),
        limb=float(u(0.038, 0.062)), leg=float(u(0.05, 0.078)), torso_w=float(u(0.19, 0.31)),
        skin=skin, hair=hair, top=top, top2=top2, bottom=bottom, shoes=_hsv(u(0, 1), u(0, 0.7), u(0.1, 0.6)),
        accent=accent, hair_style=str(rng.choice(HAIR_STYLES)), pattern=str(rng.choice(PATTERNS)),
        bottom_type=str(rng.choice(BOTTOMS)), sleeves=str(rng.choice(SLEEVES)), accessory=accessory,
        behaviour=behaviour)


def with_style(spec: CharacterSpec, style: str) -> CharacterSpec:
    """The same character drawn in the other style (used to *measure* style delusion, never for training)."""
    return replace(spec, style=style)
