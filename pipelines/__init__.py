"""Crossover Studio's compute side: the embedded world, poses and identity guidance, segmentation, the
generator, training and evaluation. Nothing here imports the UI (``studio/``).

    from pipelines import World, Scene, Segmenter, MixPipeline

Names are imported lazily so ``import pipelines`` stays cheap (no torch until a model is needed).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "World": "pipelines.world",
    "Clip": "pipelines.world",
    "Scene": "pipelines.scene",
    "SceneError": "pipelines.scene",
    "Library": "pipelines.library",
    "Segmenter": "pipelines.segment",
    "MixPipeline": "pipelines.mix",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
