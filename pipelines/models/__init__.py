"""The generator's models: pose guider, CCE context encoder, reference attention (+ End2End-M mask and IMG
capture), temporal layers, the denoiser that wires them, model configs, and the MQA/IMG math."""

from .configs import (ANIMATE_ANYONE, MODES, TEST, TINY, MixModelConfig, build_components, calibrate_vae_scale,
                      count_parameters)
from .context import ContextEncoder
from .denoiser import DenoiserOutput, MixDenoiser
from .guider import PoseGuider
from .reference_attention import AttentionCapture, ReferenceFeatures, self_attention_layers
from .temporal import TemporalHooks

__all__ = ["PoseGuider", "ContextEncoder", "MixDenoiser", "DenoiserOutput", "AttentionCapture",
           "ReferenceFeatures", "self_attention_layers", "TemporalHooks", "MixModelConfig", "TINY", "TEST",
           "ANIMATE_ANYONE", "MODES", "build_components", "count_parameters", "calibrate_vae_scale"]
