"""The character library: named characters on disk, each a folder

    assets/characters/<id>/character.json   id, name, show, style, (world spec for world characters)
                           reference.png    RGB reference image
                           mask.png         8-bit mask of the character in reference.png
                           cce.safetensors  learned CCE tokens (when trained)

plus ``index.json`` listing them. Names resolve case-insensitively by id or display name; an unknown
name raises an error that lists the known ones. User characters added in the studio live in a
per-session library folder with the same layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .paths import characters_dir

STYLES = ("cartoon", "live-action")


def check_style(style: str, where: str = "style") -> str:
    s = str(style).strip().lower().replace("_", "-").replace(" ", "-")
    if s == "liveaction":
        s = "live-action"
    if s not in STYLES:
        raise ValueError(f"{where}: unknown style {style!r}; use one of {', '.join(STYLES)}")
    return s


@dataclass
class LibraryCharacter:
    id: str
    name: str
    show: str
    style: str
    folder: Path
    meta: dict = field(default_factory=dict)

    @property
    def reference_path(self) -> Path:
        return self.folder / "reference.png"

    @property
    def mask_path(self) -> Path:
        return self.folder / "mask.png"

    @property
    def cce_path(self) -> Path:
        return self.folder / "cce.safetensors"

    def load_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """(image uint8 (H, W, 3), mask bool (H, W))."""
        img = np.asarray(Image.open(self.reference_path).convert("RGB"))
        mask = np.asarray(Image.open(self.mask_path).convert("L")) > 127
        return img, mask


class Library:
    def __init__(self, folder: str | Path | None = None, extra: list[LibraryCharacter] | None = None):
        self.folder = Path(folder) if folder else characters_dir()
        self._chars: dict[str, LibraryCharacter] = {}
        index = self.folder / "index.json"
        ids = json.loads(index.read_text())["characters"] if index.exists() else \
            sorted(p.parent.name for p in self.folder.glob("*/character.json"))
        for cid in ids:
            meta = json.loads((self.folder / cid / "character.json").read_text())
            self._chars[cid] = LibraryCharacter(cid, meta["name"], meta.get("show", ""), meta["style"],
                                                self.folder / cid, meta)
        for c in extra or []:
            self.add(c)

    def add(self, c: LibraryCharacter) -> None:
        key = c.id.lower()
        if key in self._chars or any(x.name.lower() == c.name.lower() for x in self._chars.values()):
            raise ValueError(f"a character named {c.name!r} is already in the library; pick another name")
        self._chars[key] = c

    def __iter__(self):
        return iter(self._chars.values())

    def __len__(self) -> int:
        return len(self._chars)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self._chars.values()]

    def find(self, name: str) -> LibraryCharacter | None:
        key = str(name).strip().lower()
        for c in self._chars.values():
            if key in (c.id.lower(), c.name.lower()):
                return c
        return None

    def get(self, name: str, where: str = "character") -> LibraryCharacter:
        c = self.find(name)
        if c is None:
            known = ", ".join(self.names) or "(the library is empty: run `python -m pipelines.world assets`)"
            raise ValueError(f"{where}: unknown character {name!r}; known characters: {known}")
        return c

    def by_show(self) -> dict[str, list[LibraryCharacter]]:
        out: dict[str, list[LibraryCharacter]] = {}
        for c in self._chars.values():
            out.setdefault(c.show, []).append(c)
        return out
