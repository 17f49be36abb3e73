"""MixPipeline: the generator pipeline (a diffusers ``DiffusionPipeline``), its output, the reference sheet,
guidance preparation, scene resolution, model resolution and clip export."""

from .export import export_to_gif, export_to_video, side_by_side
from .loading import ModelNotFoundError, load_pipeline, resolve_model
from .pipeline_mix import MixPipeline, make_scheduler, temporal_windows, window_weights
from .pipeline_output import MixPipelineOutput
from .scene_inputs import SceneInputs, resolve_scene
from .sheet import ReferenceSheet, compose_sheet, sheet_from_frame

__all__ = ["MixPipeline", "MixPipelineOutput", "make_scheduler", "temporal_windows", "window_weights",
           "ReferenceSheet", "compose_sheet", "sheet_from_frame", "SceneInputs", "resolve_scene",
           "resolve_model", "load_pipeline", "ModelNotFoundError", "export_to_video", "export_to_gif",
           "side_by_side"]
