"""The embedded "shows" world: procedural characters of two styles in four shows, driven by OpenPose-18
keypoints through motions that carry each character's behaviour, rendered with exact ground truth."""

from .characters import NAMED, NAMED_BY_ID, Behaviour, CharacterSpec, sample_character
from .motions import MOTIONS
from .shows import SHOWS, background
from .world import Clip, World

__all__ = ["World", "Clip", "CharacterSpec", "Behaviour", "NAMED", "NAMED_BY_ID", "sample_character",
           "MOTIONS", "SHOWS", "background"]
