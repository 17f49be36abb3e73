"""Crossover Studio's browser UI (Gradio): layout, event handlers, per-session state, the custom
drag-and-drop components, and the service objects that call ``pipelines/``. Nothing here computes
images itself, and nothing is loaded at import.

    from studio import build_studio, launch_kwargs
    demo = build_studio()
    demo.queue(...).launch(**launch_kwargs())
"""

from .layout import build_studio
from .theme import launch_kwargs

__all__ = ["build_studio", "launch_kwargs"]
