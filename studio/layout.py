"""The studio's page: three steps left to right — **Cast** (library, add your own, open a scene), **Scene**
(identity chips on motion tracks, motion, set, pose preview, prompt, advanced), **Result** (video, sheet,
IC overlay, downloads, history) — and the wiring of every event to ``studio.handlers``. Also the named
API endpoints for ``gradio_client`` (``/generate`` from Scene JSON, ``/segment`` with clicks).

``build_studio()`` returns the Blocks; ``app.py`` queues and launches it.
"""

from __future__ import annotations

import gradio as gr

from pipelines.scene import SCHEDULERS

from .components import CHIPS_CSS, CHIPS_JS, LIBRARY_CSS, LIBRARY_JS
from .handlers import RESULT_KEYS, SCENE_KEYS, SOURCES, STYLE_FILTERS, Handlers
from .services import Services
from .session import (MAX_FRAMES, MAX_IMAGE_PIXELS, MAX_UPLOAD_MB, MAX_VIDEO_SECONDS, SESSION_MAX_AGE_S,
                      end_session)
from .theme import HEADER

GENERATE_CONCURRENCY = 1     # one model, one lock: a second generation waits in the queue with its position shown


def build_studio(services: Services | None = None, warm_up: bool = False) -> gr.Blocks:
    """The studio's Blocks. ``warm_up`` loads the engines in a background thread (the app does; tests need not)."""
    h = Handlers(services)
    if warm_up:
        h.s.warm_up()
    c: dict[str, gr.components.Component] = {}

    with gr.Blocks(title="Crossover Studio", analytics_enabled=False, delete_cache=(3600, SESSION_MAX_AGE_S)) as demo:
        # the session is created by the page's load event (h.load), not by a State factory: one creator,
        # so two load events never race to make two sessions for one tab
        state = gr.State(None, time_to_live=SESSION_MAX_AGE_S, delete_callback=end_session)
        with gr.Row(elem_id="xo-header", equal_height=True):
            gr.HTML(HEADER)
            c["engines"] = gr.HTML('<div class="xo-engines"><span class="xo-pill xo-off"><i></i>checking engines…</span></div>',
                                   elem_id="xo-engines", js_on_load=None)

        with gr.Row(equal_height=False, elem_id="xo-main"):
            # ---------------------------------------------------------------- 1 · cast
            with gr.Column(scale=5, min_width=340, elem_classes="xo-step"):
                gr.HTML('<h2 class="xo-h"><span>1</span>Cast</h2>', js_on_load=None)
                with gr.Tabs():
                    with gr.Tab("Library", id="library"):
                        c["search"] = gr.Textbox(placeholder="Search characters or shows", show_label=False,
                                                 container=False, elem_id="xo-search")
                        c["style_filter"] = gr.Radio(list(STYLE_FILTERS), value="All", show_label=False,
                                                     container=False, elem_id="xo-style-filter")
                        c["library"] = gr.HTML("", js_on_load=LIBRARY_JS, css_template=LIBRARY_CSS, elem_id="xo-library",
                                               max_height=720)
                    with gr.Tab("Add your own", id="upload"):
                        c["seg_upload"] = gr.UploadButton("Upload an image", file_types=["image"], variant="secondary",
                                                          size="sm", elem_id="xo-seg-upload")
                        c["canvas"] = gr.Image(label="Click on a character", interactive=False, type="numpy",
                                               show_label=True, elem_id="xo-canvas", height=380, buttons=[],
                                               placeholder="Upload a picture, then click on a character to cut it out")
                        c["click_mode"] = gr.Radio(["Include (+)", "Exclude (−)"], value="Include (+)",
                                                   show_label=False, container=False, elem_id="xo-click-mode")
                        with gr.Row():
                            c["undo"] = gr.Button("Undo click", size="sm")
                            c["reset"] = gr.Button("Reset character", size="sm")
                        c["seg_status"] = gr.Markdown(elem_id="xo-seg-status")
                        with gr.Row(equal_height=True):
                            c["char_name"] = gr.Textbox(label="Name", placeholder="e.g. Ada", scale=3, max_length=40,
                                                        elem_id="xo-char-name")
                            c["char_style"] = gr.Radio(["cartoon", "live-action"], value="live-action", label="Style",
                                                       scale=3)
                        c["seg_add"] = gr.Button("Add to library", variant="primary", elem_id="xo-seg-add")
                        gr.Markdown(
                            f"Images up to {MAX_UPLOAD_MB} MB and {MAX_IMAGE_PIXELS / 1e6:g} megapixels. Several "
                            "characters can come from one image: after adding one, click on the next. Each new "
                            "character gets its CCE tokens from its image at once.", elem_classes="xo-note")
                        with gr.Accordion("Learn a character (optional)", open=False, elem_id="xo-learn"):
                            gr.Markdown("A short fit of the character's CCE tokens through the generator, so it "
                                        "keeps its look better (about a minute here).", elem_classes="xo-note")
                            c["learn_pick"] = gr.Dropdown([], label="Your character", elem_id="xo-learn-pick",
                                                          info="Characters you cut out in this session")
                            with gr.Row():
                                c["learn_btn"] = gr.Button("Learn", size="sm", variant="secondary", scale=3,
                                                           elem_id="xo-learn-btn")
                                c["learn_stop"] = gr.Button("Stop", size="sm", variant="stop", scale=1)
                            c["learn_status"] = gr.Markdown(elem_id="xo-learn-status")
                    with gr.Tab("Open a scene", id="open"):
                        c["scene_upload"] = gr.File(label="scene.json or scene.zip", file_types=[".json", ".zip"],
                                                    elem_id="xo-scene-upload")
                        with gr.Row(equal_height=True):
                            c["example"] = gr.Dropdown(h.example_choices(), label="Examples", scale=3)
                            c["open_example"] = gr.Button("Open example", scale=1)
                        gr.Markdown("Opening a scene restores the whole composition: cast (uploaded characters come "
                                    "along in the zip), motion, who performs which track, set, prompt and settings.",
                                    elem_classes="xo-note")

            # ---------------------------------------------------------------- 2 · scene
            with gr.Column(scale=7, min_width=420, elem_classes="xo-step"):
                gr.HTML('<h2 class="xo-h"><span>2</span>Scene</h2>', js_on_load=None)
                c["chips"] = gr.HTML("", js_on_load=CHIPS_JS, css_template=CHIPS_CSS, elem_id="xo-chips")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5, min_width=260):
                        c["motion_source"] = gr.Radio(list(SOURCES), value=SOURCES[0], label="Motion from")
                        c["template"] = gr.Dropdown(_template_choices(), label="Template", elem_id="xo-template")
                        c["json_upload"] = gr.File(label="OpenPose JSON (keypoints)", file_types=[".json"], visible=False)
                        c["video_upload"] = gr.File(label=f"Driving video (up to {MAX_VIDEO_SECONDS:g} s)",
                                                    file_types=["video"], visible=False)
                        c["text_motion"] = gr.Textbox(label="What they do", visible=False, max_length=300,
                                                      placeholder="e.g. [character: Zed] chases [character: Dora]. "
                                                                  "Empty: the prompt says it", elem_id="xo-text-motion")
                        c["text_go"] = gr.Button("Make the motion", size="sm", visible=False, elem_id="xo-text-go")
                        c["motion_note"] = gr.Markdown(elem_classes="xo-note")
                        c["background"] = gr.Dropdown(h.background_choices(), label="Set (background)")
                    with gr.Column(scale=4, min_width=220):
                        c["preview"] = gr.Video(label="Pose preview (identity colours)", autoplay=True, loop=True,
                                                interactive=False, height=270, elem_id="xo-preview", buttons=[])
                c["prompt"] = gr.Textbox(label="Prompt (CCE)", lines=2, elem_id="xo-prompt",
                                         info="Filled in from your choices; edit it freely. [character: Name] tags "
                                              "name the cast.")
                c["refill"] = gr.Button("↺ Refill the prompt from the choices", size="sm", elem_id="xo-refill")
                with gr.Accordion("Advanced", open=False):
                    with gr.Row():
                        c["frames"] = gr.Slider(1, MAX_FRAMES, step=1, value=16, label="Frames", elem_id="xo-frames")
                        c["steps"] = gr.Slider(1, 50, step=1, value=20, label="Denoising steps", elem_id="xo-steps")
                    with gr.Row(equal_height=False):
                        c["guidance"] = gr.Slider(1.0, 10.0, step=0.5, value=2.5, label="Guidance scale")
                        c["scheduler"] = gr.Dropdown(list(SCHEDULERS), value="ddim", label="Sampler")
                        with gr.Column(min_width=150, scale=1):
                            c["seed"] = gr.Number(value=0, label="Seed", precision=0, minimum=0)
                            c["dice"] = gr.Button("↻ New seed", size="sm")
                c["scene_status"] = gr.Markdown(elem_id="xo-scene-status")
                with gr.Row():
                    c["generate_btn"] = gr.Button("Generate", variant="primary", size="lg", scale=4, elem_id="xo-generate")
                    c["cancel"] = gr.Button("Cancel", variant="stop", size="lg", scale=1, elem_id="xo-cancel")
                c["save_scene"] = gr.DownloadButton("⬇ Save scene", size="sm", variant="secondary", interactive=False,
                                                    elem_id="xo-save-scene")

        # -------------------------------------------------------------------- 3 · result
        with gr.Column(elem_classes="xo-step", elem_id="xo-result"):
            gr.HTML('<h2 class="xo-h"><span>3</span>Result</h2>', js_on_load=None)
            with gr.Row(equal_height=False):
                with gr.Column(scale=7):
                    with gr.Tabs():
                        with gr.Tab("Video"):
                            c["video"] = gr.Video(label="Generated clip", autoplay=True, loop=True, interactive=False,
                                                  height=400, elem_id="xo-video")
                        with gr.Tab("Side by side"):
                            c["sheet"] = gr.Video(label="References · guidance · output", autoplay=True, loop=True,
                                                  interactive=False, height=400, elem_id="xo-sheet")
                        with gr.Tab("IC overlay"):
                            c["overlay"] = gr.Video(label="Which identity each track received", autoplay=True, loop=True,
                                                    interactive=False, height=400, elem_id="xo-overlay")
                    c["result_info"] = gr.Markdown("Your clips appear here.", elem_id="xo-result-info")
                    with gr.Row():
                        c["dl_mp4"] = gr.DownloadButton("⬇ MP4", interactive=False, size="sm", elem_id="xo-dl-mp4")
                        c["dl_gif"] = gr.DownloadButton("⬇ GIF", interactive=False, size="sm", elem_id="xo-dl-gif")
                        c["dl_scene"] = gr.DownloadButton("⬇ scene", interactive=False, size="sm", elem_id="xo-dl-scene")
                with gr.Column(scale=4):
                    c["history"] = gr.Gallery(label="This session's clips", columns=3, height=330, allow_preview=False,
                                              fit_columns=False, object_fit="cover", elem_id="xo-history")
                    c["restore"] = gr.Button("Open the selected clip's scene", size="sm")
                    with gr.Accordion("scene.json", open=False):
                        c["scene_json"] = gr.Code(language="json", interactive=False, elem_id="xo-scene-json")

        # -------------------------------------------------------------------- API-only endpoints
        with gr.Row(visible=False):
            api_scene = gr.Textbox()
            api_bundle = gr.File()
            api_video = gr.Video()
            api_scene_out = gr.JSON()
            api_generate = gr.Button()
            api_image = gr.Image(type="filepath")
            api_points = gr.Textbox()
            api_mask = gr.Image(type="filepath")
            api_cutout = gr.Image(type="filepath", image_mode="RGBA")
            api_score = gr.Number()
            api_segment = gr.Button()

        _wire(demo, h, state, c)
        api_generate.click(h.api_generate, [api_scene, api_bundle], [api_video, api_scene_out], api_name="generate",
                           concurrency_limit=GENERATE_CONCURRENCY, concurrency_id="generate")
        api_segment.click(h.api_segment, [api_image, api_points], [api_mask, api_cutout, api_score], api_name="segment",
                          concurrency_id="segment", concurrency_limit=2)
    return demo


def _template_choices():
    from .compose import template_choices
    return template_choices()


def _wire(demo: gr.Blocks, h: Handlers, state: gr.State, c: dict) -> None:
    scene_out = [state, *[c[k] for k in SCENE_KEYS]]
    result_out = [state, *[c[k] for k in RESULT_KEYS]]
    seg_out = [state, c["canvas"], c["seg_status"]]
    quiet = dict(api_visibility="private")           # UI events: not part of the public API
    fast = dict(queue=False, show_progress="hidden", **quiet)

    demo.load(h.load, [state], scene_out, **quiet)
    demo.load(h.engines_html, None, [c["engines"]], show_progress="hidden", **quiet)
    demo.load(h.seg_status, [state], [c["seg_status"]], **quiet)
    demo.load(h.learn_ready, None, [c["learn_btn"], c["learn_status"]], show_progress="hidden", **quiet)

    # library
    c["search"].input(h.search, [state, c["search"], c["style_filter"]], [c["library"]], **fast)
    c["style_filter"].input(h.search, [state, c["search"], c["style_filter"]], [c["library"]], **fast)
    c["library"].pick(h.pick, [state], scene_out, show_progress="hidden", **quiet)

    # scene
    c["chips"].reorder(h.reorder, [state], scene_out, show_progress="hidden", trigger_mode="always_last", **quiet)
    c["chips"].remove(h.remove, [state], scene_out, show_progress="hidden", **quiet)
    c["motion_source"].input(h.choose_source, [state, c["motion_source"]], scene_out, show_progress="hidden", **quiet)
    c["template"].input(h.choose_template, [state, c["template"]], scene_out, show_progress="hidden", **quiet)
    c["text_go"].click(h.make_text_motion, [state, c["text_motion"], c["prompt"]], scene_out,
                       show_progress_on=[c["preview"]], concurrency_id="generate", **quiet)
    c["json_upload"].upload(h.upload_json, [state, c["json_upload"]], scene_out, show_progress_on=[c["preview"]],
                            **quiet)
    c["video_upload"].upload(h.upload_video, [state, c["video_upload"]], scene_out, show_progress_on=[c["preview"]],
                             concurrency_id="pose", concurrency_limit=1, **quiet)
    c["background"].input(h.choose_background, [state, c["background"]], scene_out, show_progress="hidden", **quiet)
    c["prompt"].input(h.edit_prompt, [state, c["prompt"]], [state, c["scene_json"], c["scene_status"], c["generate_btn"]],
                      trigger_mode="always_last", **fast)
    c["refill"].click(h.refill_prompt, [state], scene_out, show_progress="hidden", **quiet)
    controls = [c["frames"], c["steps"], c["guidance"], c["seed"], c["scheduler"]]
    for comp in (c["frames"], c["steps"], c["guidance"]):
        comp.release(h.set_controls, [state, *controls], scene_out, show_progress="hidden", **quiet)
    c["scheduler"].input(h.set_controls, [state, *controls], scene_out, show_progress="hidden", **quiet)
    c["seed"].submit(h.set_controls, [state, *controls], scene_out, show_progress="hidden", **quiet)
    c["seed"].blur(h.set_controls, [state, *controls], scene_out, show_progress="hidden", **quiet)
    c["dice"].click(h.random_seed, [state], scene_out, show_progress="hidden", **quiet)

    # generate: validate without queueing, then queue the work; Cancel stops it at the next step
    gen = c["generate_btn"].click(h.validate_generate, [state, c["prompt"], *controls], [state], **fast).success(
        h.generate, [state], result_out, concurrency_limit=GENERATE_CONCURRENCY, concurrency_id="generate",
        show_progress_on=[c["video"]], api_name="ui_generate", **quiet)      # "/generate" is the Scene-JSON API
    c["cancel"].click(h.cancel, [state], None, cancels=[gen], **fast)
    c["history"].select(h.select_clip, [state], result_out, **quiet)
    c["restore"].click(h.restore_clip, [state], scene_out, show_progress_on=[c["preview"]], **quiet)

    # open a scene
    c["scene_upload"].upload(h.open_scene, [state, c["scene_upload"]], scene_out, show_progress_on=[c["preview"]],
                             **quiet)
    c["open_example"].click(h.open_example, [state, c["example"]], scene_out, show_progress_on=[c["preview"]], **quiet)

    # add your own
    # a refused click must not hide the picture behind an error badge: no progress overlay on these
    c["seg_upload"].upload(h.seg_upload, [state, c["seg_upload"]], seg_out, show_progress="minimal", **quiet)
    c["canvas"].select(h.seg_click, [state, c["click_mode"]], seg_out, trigger_mode="multiple", show_progress="hidden",
                       concurrency_id="seg-click", concurrency_limit=1, **quiet)   # clicks apply in order
    c["undo"].click(h.seg_undo, [state], seg_out, show_progress="hidden", **quiet)
    c["reset"].click(h.seg_reset, [state], seg_out, show_progress="hidden", **quiet)
    c["seg_add"].click(h.seg_add, [state, c["char_name"], c["char_style"]],
                       [*scene_out, c["canvas"], c["seg_status"], c["char_name"], c["learn_pick"]], **quiet)
    c["learn_pick"].focus(h.learn_picker, [state, c["learn_pick"]], [c["learn_pick"]], **fast)
    # the fit uses the generator: it queues with generations (one at a time) and Stop ends it between steps
    learn = c["learn_btn"].click(h.learn, [state, c["learn_pick"]], [c["learn_status"]], concurrency_id="generate",
                                 concurrency_limit=GENERATE_CONCURRENCY, show_progress_on=[c["learn_status"]], **quiet)
    c["learn_stop"].click(h.stop_learning, [state], None, cancels=[learn], **fast)
