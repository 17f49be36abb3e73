"""Poses and identity guidance: OpenPose-18 keypoints and JSON, the identity palette, the IEG renderer,
motion templates (and, with detector weights, pose extraction from video)."""

from .openpose import JOINTS, LIMBS, NUM_JOINTS, from_openpose_json, to_openpose_json, swap_pairs
from .palette import PALETTE, MAX_SLOTS, slot_color, slot_hex
from .ieg import render_ieg, tint_masks
from .templates import Motion, load_template, list_templates, load_motion_file

__all__ = ["JOINTS", "LIMBS", "NUM_JOINTS", "from_openpose_json", "to_openpose_json", "swap_pairs",
           "PALETTE", "MAX_SLOTS", "slot_color", "slot_hex", "render_ieg", "tint_masks",
           "Motion", "load_template", "list_templates", "load_motion_file"]
