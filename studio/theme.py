"""How the studio looks: a calm light theme (dark mode follows the browser's), the page header, and the
CSS for the step headings, engine pills and small notes. The identity colours themselves come from
``pipelines.pose.palette`` (chips, cards, preview), never from here."""

from __future__ import annotations

import gradio as gr

THEME = gr.themes.Soft(
    primary_hue=gr.themes.colors.violet,
    secondary_hue=gr.themes.colors.sky,
    neutral_hue=gr.themes.colors.slate,
    radius_size=gr.themes.sizes.radius_lg,
    font=[gr.themes.LocalFont("IBM Plex Sans"), "ui-sans-serif", "system-ui", "sans-serif"],
).set(
    body_background_fill="#f6f7fb",
    body_background_fill_dark="#0f1117",
    block_border_width="1px",
    block_shadow="0 1px 2px rgba(15, 23, 42, .04)",
    button_primary_background_fill="linear-gradient(90deg, *primary_600, #d946ef)",
    button_primary_background_fill_hover="linear-gradient(90deg, *primary_700, #c026d3)",
    button_primary_text_color="white",
    button_large_text_size="17px",
)

# the four stripes are the first identity colours: the product is about who is who
HEADER = """
<div class="xo-brand">
  <div class="xo-logo"><i style="background:#eb2d2d"></i><i style="background:#2869fa"></i><i style="background:#23c846"></i><i style="background:#fad714"></i></div>
  <div>
    <h1>Crossover Studio</h1>
    <p>Put characters from different shows in one clip — pick the cast, decide who performs what, generate.</p>
  </div>
</div>
"""

CSS = """
.gradio-container { max-width: 1480px !important; }
#xo-header { align-items: center; gap: 16px; padding: 6px 4px 2px; }
.xo-brand { display: flex; align-items: center; gap: 14px; }
.xo-brand h1 { margin: 0; font-size: 26px; font-weight: 800; letter-spacing: -.01em; }
.xo-brand p { margin: 2px 0 0; color: var(--body-text-color-subdued); font-size: 14px; }
.xo-logo { display: grid; grid-template-columns: repeat(2, 14px); gap: 4px; transform: rotate(-8deg); }
.xo-logo i { width: 14px; height: 14px; border-radius: 4px; display: block; }
.xo-engines { display: flex; flex-wrap: wrap; gap: 6px; justify-content: flex-end; }
.xo-pill { display: inline-flex; align-items: center; gap: 6px; padding: 4px 10px; border-radius: 999px; font-size: 12px;
  background: var(--block-background-fill); border: 1px solid var(--border-color-primary); cursor: help; }
.xo-pill i { width: 8px; height: 8px; border-radius: 50%; background: #94a3b8; display: inline-block; }
.xo-pill.xo-ok i { background: #22c55e; box-shadow: 0 0 0 3px rgba(34, 197, 94, .2); }
.xo-pill.xo-fallback i { background: #f59e0b; box-shadow: 0 0 0 3px rgba(245, 158, 11, .2); }
.xo-engine-details { font-size: 12px; color: var(--body-text-color-subdued); text-align: right; margin-top: 4px; }
.xo-engine-details ul { text-align: left; margin: 6px 0 0; padding-left: 18px; }
.xo-step { background: var(--block-background-fill); border: 1px solid var(--border-color-primary);
  border-radius: 18px; padding: 14px 16px !important; box-shadow: 0 1px 3px rgba(15, 23, 42, .05); }
.xo-h { display: flex; align-items: center; gap: 10px; margin: 0 0 4px; font-size: 18px; font-weight: 800; }
.xo-h span { width: 26px; height: 26px; border-radius: 8px; display: grid; place-items: center; font-size: 14px;
  color: white; background: linear-gradient(135deg, var(--primary-500), #d946ef); }
.xo-note, .xo-note p, .xo-note li { font-size: 12.5px !important; color: var(--body-text-color-subdued); }
#xo-scene-status { font-size: 13px; }
#xo-generate { min-height: 52px; }
#xo-canvas img { cursor: crosshair; }
#xo-preview video, #xo-video video, #xo-sheet video, #xo-overlay video { image-rendering: pixelated; }
#xo-result { margin-top: 14px; }
#xo-refill { align-self: flex-end; width: auto; }
#xo-style-filter { margin-top: -4px; }
footer { opacity: .7; }
"""


def launch_kwargs() -> dict:
    """What ``launch()`` needs beyond host and port (Gradio 6 takes theme and CSS at launch)."""
    from .session import MAX_UPLOAD_MB, sessions_root
    return dict(theme=THEME, css=CSS, max_file_size=f"{MAX_UPLOAD_MB}mb", allowed_paths=[str(sessions_root())],
                footer_links=["api"], show_error=True)
