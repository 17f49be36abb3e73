"""How long the studio makes a creator wait: the event handlers behind each interaction, timed through the
same code the browser calls (no browser, no network), medians over repeats.

    python -m benchmarks.studio_bench [--repeats 15] [--gen-repeats 3]

Rows: first page load (starter cast + pose preview), picking a character, dragging a chip (new assignment,
prompt and re-rendered pose preview), changing the frame count, opening a scene zip, one segmentation click
on a 1024-pixel image (the segmenter's cost plus the canvas overlay), adding your own character (with its
instant CCE tokens), fit steps of "Learn", a full generation through the handler (16 frames, 20 steps,
mp4 + gif + sheet + scene files + IC overlay) and the IC overlay alone. Prints a Markdown table; the numbers go in
docs/STUDIO.md.
"""

import argparse
import os
import platform
import tempfile
import time
import types

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

# the machine's cores are shared: more threads than OMP_NUM_THREADS only spin
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def median_ms(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * float(np.max(times))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--gen-repeats", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ["CROSSOVER_SESSIONS"] = tempfile.mkdtemp(prefix="studio-bench-")

    from studio import compose
    from studio.handlers import Handlers
    from studio.session import Session

    h = Handlers()
    rows = []

    def row(name, fn, repeats=args.repeats):
        try:
            med, worst = median_ms(fn, repeats)
            rows.append((name, f"{med:.0f}", f"{worst:.0f}", repeats))
        except Exception as e:          # an engine that is not installed is reported, not hidden
            rows.append((name, "unavailable", type(e).__name__ + ": " + str(e).splitlines()[0][:90], 0))

    row("first page load (starter cast, pose preview)", lambda: h.load(Session()))
    s = h.load(Session())[0]
    picks = iter(["zed", "zed"] * args.repeats)
    row("pick / unpick a character", lambda: h.pick(s, types.SimpleNamespace(id=next(picks))))
    flips = iter([(0, 1), (0, 0)] * args.repeats)

    def drag():
        slot, track = next(flips)
        h.reorder(s, types.SimpleNamespace(slot=slot, track=track))
    row("drag a chip to another track (+ pose preview)", drag)
    frames = iter([24, 16] * args.repeats)
    row("change the frame count (+ pose preview)", lambda: h.set_controls(s, next(frames), 20, 2.5, 0, "ddim"))
    h.open_example(s, "ada-meets-pip")
    zip_path = compose.export_scene(compose.scene_doc(s), s.folder, s.folder / "clips" / "bench")
    row("open a scene zip (user character inside)", lambda: h.open_scene(Session(), str(zip_path)))

    # segmentation: one click on a 1024×1024 world frame, new image each time so set_image is included
    from PIL import Image
    from pipelines.world import World
    world = World(5, size=1024)
    seg_session = Session()
    images = []
    for i in range(3):
        p = seg_session.folder / "uploads" / f"bench-{i}.png"
        clip = world.clip(i, n_characters=3, frames=1)
        Image.fromarray(clip.frames[0]).save(p)
        ys, xs = np.nonzero(clip.masks[0, 0])
        images.append((p, (int(np.median(xs)), int(np.median(ys)))))
    it = iter(images * args.repeats)

    def upload_and_click():
        p, (x, y) = next(it)
        h.seg_upload(seg_session, str(p))
        h.seg_click(seg_session, "Include (+)", types.SimpleNamespace(index=[x, y]))
    row("upload + first click, 1024×1024 (set_image + predict + overlay)", upload_and_click, max(3, args.repeats // 3))

    def refine_click():
        p, (x, y) = images[0]
        if seg_session.seg is None or seg_session.seg.image_path.name != p.name:
            h.seg_upload(seg_session, str(p))
        h.seg_click(seg_session, "Include (+)", types.SimpleNamespace(index=[x, y + 5]))
    try:
        refine_click()                                   # the image embedded once
    except Exception:
        pass
    row("another click on the same image (predict + overlay)", refine_click)

    # add your own: save the cut-out as a character + its instant CCE tokens; then fit steps of "Learn"
    from studio.session import SegWork
    own = Session()
    from pipelines.world import sample_character
    portrait, portrait_mask = World(0).portrait(sample_character(np.random.default_rng(5), "cartoon"), 256)
    own_path = own.folder / "uploads" / "own.png"
    Image.fromarray(portrait).save(own_path)
    names = iter(f"Own {i}" for i in range(10 * args.repeats))

    def add_own():
        own.seg, own.seg_image = SegWork(own_path, "own", 256, 256), portrait
        own.seg.current.mask = portrait_mask
        h.seg_add(own, next(names), "cartoon")
        if len(own.comp.picks) >= 4:
            own.comp.picks, own.comp.assignment = own.comp.picks[:1], own.comp.assignment[:1]
    try:
        add_own()                                        # loads the generator (its image encoder)
    except Exception:
        pass
    row("add your own: save the character + instant CCE tokens", add_own, max(3, args.repeats // 3))
    learn_steps = 10
    own_char = compose.session_library(own).get(own.comp.picks[-1]) if own.comp.picks else None
    row(f"learn: {learn_steps} fit steps (ms per step)",
        lambda: h.s.cce.learn(own_char, own.id, steps=learn_steps), 1)
    if rows[-1][1] != "unavailable":
        rows[-1] = (rows[-1][0], f"{float(rows[-1][1]) / learn_steps:.0f}", f"{float(rows[-1][2]) / learn_steps:.0f}", 1)

    g = h.load(Session())[0]
    h.set_controls(g, 16, 20, 2.5, 0, "ddim")

    def generate():
        h.validate_generate(g, g.comp.prompt, 16, 20, 2.5, 0, "ddim")
        out = h.generate(g, progress=lambda *a, **k: None)
        if out[1] is None or not isinstance(out[1], str):
            raise RuntimeError("generation returned no video")
    try:
        generate()                                       # loads the model
    except Exception:
        pass
    row("generate: 16 frames, 20 steps, CFG + mp4/gif/sheet/scene + IC overlay", generate, args.gen_repeats)
    clip = g.history[-1] if g.history else None
    if clip is not None:
        import imageio.v2 as imageio
        frames = np.stack(imageio.mimread(clip.video))
        scene = compose.build_scene(g)
        row("IC overlay of a 16-frame clip (probe + overlay video)",
            lambda: h.s.evaluate.overlay(frames, scene, 8, g.folder / "clips" / "bench-ic.mp4"), args.gen_repeats)

    print(f"studio handlers, {platform.processor() or platform.machine()}, {os.cpu_count()} cores\n")
    print("| interaction | median ms | slowest ms | repeats |\n|---|---|---|---|")
    for name, med, worst, n in rows:
        print(f"| {name} | {med} | {worst} | {n} |")


if __name__ == "__main__":
    main()
