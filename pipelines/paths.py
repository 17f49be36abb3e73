"""Where the project's files live. ``CROSSOVER_ASSETS`` overrides the assets folder (tests point it at a
temporary copy; a Space can point it at a mounted volume)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def assets_dir() -> Path:
    return Path(os.environ.get("CROSSOVER_ASSETS", ROOT / "assets"))


def characters_dir() -> Path:
    return assets_dir() / "characters"


def motions_dir() -> Path:
    return assets_dir() / "motions"


def backgrounds_dir() -> Path:
    return assets_dir() / "backgrounds"


def scenes_dir() -> Path:
    return assets_dir() / "scenes"


def models_dir() -> Path:
    return assets_dir() / "models"


def user_characters_dir() -> Path:
    """Where characters a user teaches the studio are kept (a library folder; ``CROSSOVER_USER_CHARACTERS``
    overrides it) — outside ``assets/`` so the shipped library stays as released."""
    return Path(os.environ.get("CROSSOVER_USER_CHARACTERS", Path.home() / ".cache" / "crossover-studio" / "characters"))
