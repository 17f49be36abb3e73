"""The studio as users reach it: a launched app driven through ``gradio_client`` (the named API endpoints)
and through Debian's Chromium with Playwright (pick, cut out, drag, generate, watch). The browser test
saves docs/studio.png. Both fail loudly when an engine they need is missing — they never skip."""

import importlib.util
import json
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    import os
    os.environ["CROSSOVER_SESSIONS"] = str(tmp_path_factory.mktemp("sessions"))
    from studio import build_studio, launch_kwargs
    demo = build_studio()
    demo.queue(default_concurrency_limit=4)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def unseen_character():
    """A procedural character nobody has seen, standing on a live-action set: image, mask, click point."""
    from scipy.ndimage import distance_transform_edt
    from pipelines.world import World, sample_character
    spec = sample_character(np.random.default_rng(123), "live-action")
    img, mask = World(0).portrait(spec, 256)
    d = distance_transform_edt(mask)
    y, x = np.unravel_index(np.argmax(d), d.shape)
    return img, mask, (int(x), int(y))


def _require_engines():
    from studio.services import Services
    engines = Services().engines()
    missing = {k: t for k, (state, t) in engines.items() if k in ("segmenter", "model") and state == "missing"}
    if missing:
        pytest.fail("the studio cannot run end to end: " + "; ".join(f"{k}: {t}" for k, t in missing.items()))


SCENE = {"version": 1, "characters": [{"id": "zed"}, {"id": "marcus"}], "motion": {"template": "swap-2"},
         "assignment": [1, 0], "prompt": "[character: Zed] and [character: Marcus] swap places.",
         "background": {"show": "harbor-lane", "variant": 1}, "frames": 8, "fps": 8,
         "sampler": {"scheduler": "ddim", "steps": 3, "guidance_scale": 2.5}, "seed": 3}


def test_gradio_client_generates_from_scene_json_and_segments_with_clicks(app_url, unseen_character, tmp_path):
    import imageio.v2 as imageio
    from gradio_client import Client, handle_file
    _require_engines()
    client = Client(app_url, verbose=False)
    names = {e for e in client.view_api(print_info=False, return_format="dict")["named_endpoints"]}
    assert {"/generate", "/segment"} <= names

    video, scene = client.predict(json.dumps(SCENE), None, api_name="/generate")
    path = video["video"] if isinstance(video, dict) else video
    frames = imageio.mimread(path)
    assert len(frames) == 8 and frames[0].shape == (128, 128, 3)
    assert scene["assignment"] == [1, 0] and scene["characters"] == SCENE["characters"]

    bad = dict(SCENE, characters=[{"id": "nobody"}])
    with pytest.raises(Exception, match="unknown character"):
        client.predict(json.dumps(bad), None, api_name="/generate")

    img, mask, (x, y) = unseen_character
    Image.fromarray(img).save(tmp_path / "unseen.png")
    mask_path, cutout_path, score = client.predict(handle_file(str(tmp_path / "unseen.png")), json.dumps([[x, y, 1]]),
                                                   api_name="/segment")
    got = np.asarray(Image.open(mask_path).convert("L")) > 127
    iou = (got & mask).sum() / (got | mask).sum()
    assert iou > 0.8, f"one click on an unseen character gave IoU {iou:.2f}"
    assert np.asarray(Image.open(cutout_path)).shape[2] == 4 and isinstance(score, float)
    with pytest.raises(Exception, match="points"):
        client.predict(handle_file(str(tmp_path / "unseen.png")), "not json", api_name="/segment")


def test_browser_pick_cut_out_drag_generate(app_url, unseen_character, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    _require_engines()
    img, mask, (x, y) = unseen_character
    upload = tmp_path / "my-character.png"
    Image.fromarray(img).save(upload)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(app_url)
        chips = page.locator("#xo-chips")
        expect(chips.locator(".xo-chip")).to_have_count(2, timeout=30_000)      # the starter cast
        # start from an empty cast (each removal answered before the next), then pick two from the library
        for left in (1, 0):
            chips.locator(".xo-x").first.click()
            expect(chips.locator(".xo-chip")).to_have_count(left, timeout=10_000)
        page.locator('#xo-library [data-id="zed"]').click()
        expect(chips.locator(".xo-chip")).to_have_count(1, timeout=10_000)
        page.locator('#xo-library [data-id="marcus"]').click()
        expect(chips.locator(".xo-chip")).to_have_count(2, timeout=10_000)

        # cut a character out of an uploaded image with one click, name it, add it to the cast
        page.get_by_role("tab", name="Add your own").click()
        with page.expect_file_chooser() as chooser:
            page.locator("#xo-seg-upload").click()
        chooser.value.set_files(str(upload))
        canvas = page.locator("#xo-canvas img")
        expect(canvas).to_be_visible(timeout=15_000)
        page.wait_for_function("() => { const i = document.querySelector('#xo-canvas img'); "
                               "return i && i.complete && i.naturalWidth > 0 }")
        box = canvas.bounding_box()
        natural = page.evaluate("() => { const i = document.querySelector('#xo-canvas img'); "
                                "return [i.naturalWidth, i.naturalHeight] }")
        scale = min(box["width"] / natural[0], box["height"] / natural[1])    # object-fit: contain
        ox = box["x"] + (box["width"] - natural[0] * scale) / 2
        oy = box["y"] + (box["height"] - natural[1] * scale) / 2
        page.mouse.click(ox + x * scale, oy + y * scale)
        expect(page.locator("#xo-seg-status")).to_contain_text("mask covers", timeout=20_000)
        page.locator("#xo-char-name textarea, #xo-char-name input").first.fill("Ada")
        page.locator("#xo-seg-add").click()
        expect(chips.locator(".xo-chip")).to_have_count(3, timeout=15_000)
        expect(page.locator("#xo-library")).to_contain_text("Ada")

        # drag the first chip onto the second track: the identity order of the scene changes
        assignment = lambda: chips.locator(".xo-chips").get_attribute("data-assignment")   # noqa: E731
        before = assignment()
        src = chips.locator('.xo-chip[data-slot="0"]').bounding_box()
        dst = chips.locator('.xo-track[data-track="1"]').bounding_box()
        page.mouse.move(src["x"] + src["width"] / 2, src["y"] + src["height"] / 2)
        page.mouse.down()
        page.mouse.move(dst["x"] + dst["width"] / 2, dst["y"] + dst["height"] - 20, steps=12)
        page.mouse.up()
        expect(chips.locator(".xo-chips")).not_to_have_attribute("data-assignment", before, timeout=10_000)
        after = assignment()
        assert before == "0,1,2" and after == "1,0,2", (before, after)

        # a short clip keeps the test quick: 8 frames, 3 steps (each change confirmed by the status line)
        page.get_by_text("Advanced").click()
        status = page.locator("#xo-scene-status")
        for elem, value, words in (("#xo-frames", "8", "8 frames"), ("#xo-steps", "3", "3 steps")):
            box_input = page.locator(f"{elem} input[type=number]")
            # Gradio's slider sends its value on blur; give its store a moment to take the typed value, as a
            # person's hand would, and type again if the first value sent was the old one
            for attempt in range(3):
                box_input.fill(value)
                page.wait_for_timeout(300)
                box_input.blur()
                try:
                    expect(status).to_contain_text(words, timeout=8_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
        expect(status).to_contain_text("8 frames")
        page.locator("#xo-generate").click()
        page.wait_for_function("() => { const v = document.querySelector('#xo-video video'); "
                               "return v && v.duration > 0 && isFinite(v.duration) }", timeout=120_000)
        duration = page.evaluate("() => document.querySelector('#xo-video video').duration")
        assert duration > 0
        expect(page.locator("#xo-result-info")).to_contain_text("8 frames")
        # the clip's own scene (a zip: Ada's image and mask travel with it) has the new identity order
        with page.expect_download(timeout=15_000) as download:
            page.locator("#xo-dl-scene").click()
        saved = tmp_path / "clip-scene.zip"
        download.value.save_as(saved)
        assert download.value.suggested_filename == "scene.zip"
        with zipfile.ZipFile(saved) as z:
            doc = json.loads(z.read("scene.json"))
            assert doc["assignment"] == [1, 0, 2] and any(c.get("name") == "Ada" for c in doc["characters"])
            assert {c["image"] for c in doc["characters"] if "image" in c} <= set(z.namelist())
        # the IC overlay of the clip (pipelines.eval) plays in its own tab, or the engines say it is missing
        page.get_by_role("tab", name="IC overlay").click()
        if importlib.util.find_spec("pipelines.eval") is not None:
            page.wait_for_function("() => { const v = document.querySelector('#xo-overlay video'); "
                                   "return v && v.duration > 0 && isFinite(v.duration) }", timeout=30_000)
            expect(page.locator("#xo-result-info")).to_contain_text("IC accuracy")
        else:
            expect(page.locator("#xo-engines")).to_contain_text("IC overlay not available")

        # the screenshot: the library with the picked cast, the clip playing, no toasts in the way
        page.get_by_role("tab", name="Video").click()
        page.get_by_role("tab", name="Library").click()
        page.evaluate("() => document.querySelectorAll('.toast-wrap, .toast-body').forEach(t => t.remove())")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.wait_for_timeout(1500)                               # let the preview and the clip start playing
        page.screenshot(path=str(ROOT / "docs" / "studio.png"), full_page=True)
        assert not errors, errors
        browser.close()
