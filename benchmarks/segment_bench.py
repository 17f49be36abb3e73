"""Click segmentation, measured: quality of the offline engine on world frames (per style, size and click
count), video propagation quality, and speed of the offline engine and of SAM2-tiny.

    python -m benchmarks.segment_bench quality [--clips-per-show 16] [--sizes 512 128] [--engines clicknet grabcut]
        [--weights FILE] [--per-character A.json] [--prompt clicks|box] [--world-seed 2026 [SEED ...]]
    python -m benchmarks.segment_bench compare A.json B.json     # paired: weights A − weights B, per size and click
    python -m benchmarks.segment_bench pool A1.json A2.json --per-character A.json  # one file from disjoint worlds
    python -m benchmarks.segment_bench census [--world-seed S ...] [--sizes 128]  # characters cut into pieces, per world
    python -m benchmarks.segment_bench video [--clips-per-show 4] [--sizes 128 256]
    python -m benchmarks.segment_bench speed [--repeats 30]

Protocol (the standard one of interactive segmentation): the first click is the pixel of the character's
visible mask farthest from its border; each further click goes to the pixel farthest from the border of the
largest error region — positive if it is a missed part, negative if it is spill — with the previous
low-resolution logits fed back as ``mask_input``. Ground truth is the clip's visible mask. Clips come from
world seed 2026 (ClickNet trains on seed 0 and validates on 90 128 / 90 512), 2–5 characters, every show
equally often, the middle frame of each clip; characters with fewer than ``--min-area`` visible pixels
(scaled to the frame size) are left out and counted. Prints Markdown tables; numbers go in
docs/SEGMENTATION.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

SEED = 2026


def shows():
    from pipelines.world import SHOWS
    return list(SHOWS)


def world_frames(size: int, clips_per_show: int, frames: int = 5, seed: int = SEED):
    """(image, masks, show, style) — the middle frame of ``clips_per_show`` clips of every show of world ``seed``."""
    from pipelines.world import SHOWS, World
    world = World(seed)
    for s_i, show in enumerate(SHOWS):
        for i in range(clips_per_show):
            clip = world.clip(10_000 * s_i + i, n_characters=(2, 5), show=show, size=size, frames=frames)
            f = frames // 2
            yield clip.frames[f], clip.masks[f], show, SHOWS[show].style


def make_segmenter(engine: str, weights: str | None = None, refine_passes: int | None = None,
                   flip_passes: list[str] | None = None, edge_scale: float | None = None):
    from pipelines.segment import Segmenter
    if engine == "clicknet":
        seg = Segmenter(backend="fallback")
        assert seg.engine == "clicknet", seg.status
        # a candidate ClickNet, or another inference setting; what is not given stays the engine's default
        kw = {k: v for k, v in (("refine_passes", refine_passes), ("flip_passes", flip_passes),
                                ("edge_scale", edge_scale)) if v is not None}
        if weights or kw:
            from pipelines.segment.offline import OfflineSegmenter
            seg._engine = OfflineSegmenter(weights=weights, **kw)
        return seg
    if engine == "grabcut":
        from pipelines.segment.grabcut import GrabCutEngine
        seg = Segmenter(backend="fallback")
        seg._engine = GrabCutEngine()                    # force the last-resort engine for comparison
        return seg
    raise SystemExit(f"--engines: unknown engine {engine!r} (clicknet, grabcut)")


def quality(args) -> None:
    from benchmarks.stats import ratio_interval
    from pipelines.segment.protocol import click_session, pieces
    rows: list[dict] = []
    for engine in args.engines:
        seg = make_segmenter(engine, args.weights, args.refine_passes, _flip_passes(args), args.edge_scale)
        boxed = args.prompt == "box"
        first = "the box, the box + 1 click, + 2 clicks" if boxed else "1, 2, 3 clicks"
        cols = ("box", "box + 1 click", "box + 2 clicks") if boxed else ("1 click", "2 clicks", "3 clicks")
        ends = "box / box + 2 clicks" if boxed else "1 / 3 clicks"
        print(f"\n### {engine}: mean IoU after {first}\n")
        print(f"| frame size | style | characters | left out (tiny) | {' | '.join(cols)} | ≥ 0.95 after 3 |")
        print("|---|---|---|---|---|---|---|---|")
        t0 = time.time()
        for size in args.sizes:
            min_area = args.min_area * (size / 128) ** 2
            res: dict[str, list] = {"cartoon": [], "live-action": []}
            left = {"cartoon": 0, "live-action": 0}
            per_show: dict[str, list] = {}
            per_world: dict[int, list] = {}
            by_pieces: dict[str, list] = {"one piece": [], "cut into pieces": []}
            frame_sums: list[list[float]] = []          # per frame: IoU sums after 1, 2, 3 prompts, characters
            frames = ((seed, *fr) for seed in args.world_seed
                      for fr in world_frames(size, args.clips_per_show, seed=seed))
            for f, (seed, img, masks, show, style) in enumerate(frames):
                seg.set_image(img)
                frame_sums.append([0.0, 0.0, 0.0, 0.0])
                for m in masks:
                    if m.sum() < min_area:
                        left[style] += int(m.any())
                        continue
                    r = click_session(seg, m, 3, box=boxed)
                    n_pieces = pieces(m)
                    res[style].append(r)
                    per_show.setdefault(show, []).append(r)
                    per_world.setdefault(seed, []).append(r)
                    by_pieces["one piece" if n_pieces < 2 else "cut into pieces"].append(r)
                    frame_sums[-1] = [a + b for a, b in zip(frame_sums[-1], [*r, 1.0])]
                    rows.append({"engine": engine, "size": size, "frame": f, "world": seed, "show": show,
                                 "style": style, "pieces": n_pieces, "iou": [round(float(x), 5) for x in r]})
            for style in ("cartoon", "live-action", "both"):
                v = np.array(res["cartoon"] + res["live-action"] if style == "both" else res[style])
                lo = left["cartoon"] + left["live-action"] if style == "both" else left[style]
                m = v.mean(0)
                print(f"| {size} | {style} | {len(v)} | {lo} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | "
                      f"{(v[:, 2] >= 0.95).mean():.0%} |")
            print("| | per show: " + ", ".join(f"{s} {np.mean(per_show[s], 0)[0]:.3f} / {np.mean(per_show[s], 0)[2]:.3f}"
                                              for s in per_show) + f" ({ends}) | | | | | | |")
            if len(per_world) > 1:
                print("| | per world: " + ", ".join(f"{w} ({len(v)}) {np.mean(v, 0)[0]:.3f} / {np.mean(v, 0)[2]:.3f}"
                                                  for w, v in per_world.items()) + f" ({ends}) | | | | | | |")
            # the frame is the independent unit (its characters crowd each other): a 95 % interval of each mean
            fs = np.array(frame_sums)
            print(f"| | 95 % interval over the {len(fs)} frames: " + ", ".join(
                "{} [{:.3f}, {:.3f}]".format(c, *ratio_interval(fs[:, k], fs[:, 3])) for k, c in enumerate(cols))
                + " | | | | | | |")
            loss = 1 - np.array(res["cartoon"] + res["live-action"])
            print("| | by visible pieces: " + ", ".join(
                f"{k} {len(v)}: {np.mean(v, 0)[0]:.3f} / {np.mean(v, 0)[2]:.3f}, "
                f"{(1 - np.array(v)).sum(0)[0] / max(loss.sum(0)[0], 1e-9):.0%} of the loss after {cols[0]}"
                for k, v in by_pieces.items() if v) + f" ({ends}) | | | | | | |")
        print(f"\n({time.time() - t0:.0f} s)")
    if args.per_character:
        Path(args.per_character).write_text(json.dumps({"weights": args.weights, "refine_passes": args.refine_passes,
                                                        "flip_passes": _flip_passes(args),
                                                        "edge_scale": args.edge_scale, "prompt": args.prompt,
                                                        "world_seed": args.world_seed[0] if len(args.world_seed) == 1
                                                        else args.world_seed,
                                                        "characters": rows}))


def census(args) -> list[dict]:
    """How hard each world is: characters the benchmark would score and how many of them an occluder cuts into
    pieces (the case that holds most of the loss), per world seed and frame size. Renders only: no network."""
    from pipelines.segment.protocol import pieces
    out = []
    print("\n### characters cut into pieces, per world\n")
    print("| frame size | world | characters | cut into pieces | share |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        min_area = args.min_area * (size / 128) ** 2
        for seed in args.world_seed:
            n = cut = 0
            for _, masks, _, _ in world_frames(size, args.clips_per_show, seed=seed):
                for m in masks:
                    if m.sum() >= min_area:
                        n, cut = n + 1, cut + (pieces(m) >= 2)
            out.append({"size": size, "world": seed, "characters": n, "cut": cut})
            print(f"| {size} | {seed} | {n} | {cut} | {cut / max(n, 1):.3f} |")
        rows = [r for r in out if r["size"] == size]
        if len(rows) > 1:
            share = np.array([r["cut"] / max(r["characters"], 1) for r in rows])
            n, cut = sum(r["characters"] for r in rows), sum(r["cut"] for r in rows)
            print(f"| {size} | all {len(rows)} | {n} | {cut} | {cut / max(n, 1):.3f} (per world {share.min():.3f}–"
                  f"{share.max():.3f}) |")
    return out


def video(args) -> None:
    from pipelines.segment import Segmenter
    from pipelines.segment.protocol import iou
    from pipelines.world import SHOWS, World
    seg = Segmenter(backend="fallback")
    world = World(SEED + 1)
    print("\n### video propagation (offline engine): annotated on frame 0, carried through 16 frames\n")
    print("| frame size | style | clips | object-frames | mean IoU | mean IoU, last frame | s / frame |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        rows: dict[str, list] = {"cartoon": [], "live-action": []}
        last: dict[str, list] = {"cartoon": [], "live-action": []}
        t_total, n_frames, n_clips = 0.0, 0, {"cartoon": 0, "live-action": 0}
        for s_i, show in enumerate(SHOWS):
            style = SHOWS[show].style
            for i in range(args.clips_per_show):
                clip = world.clip(20_000 * s_i + i, n_characters=(2, 4), show=show, size=size, frames=16,
                                  motion=("walk", "swap", "run", "dance")[i % 4])
                t = time.perf_counter()
                tracks = seg.propagate(clip.frames, 0, clip.masks[0])
                t_total += time.perf_counter() - t
                n_frames += clip.n_frames
                n_clips[style] += 1
                for f in range(1, clip.n_frames):
                    for k in range(clip.n_characters):
                        if clip.masks[f, k].any() or tracks[f, k].any():
                            rows[style].append(iou(tracks[f, k], clip.masks[f, k]))
                            if f == clip.n_frames - 1:
                                last[style].append(rows[style][-1])
        for style in ("cartoon", "live-action", "both"):
            v = rows["cartoon"] + rows["live-action"] if style == "both" else rows[style]
            lv = last["cartoon"] + last["live-action"] if style == "both" else last[style]
            nc = sum(n_clips.values()) if style == "both" else n_clips[style]
            print(f"| {size} | {style} | {nc} | {len(v)} | {np.mean(v):.3f} | {np.mean(lv):.3f} | "
                  f"{t_total / n_frames:.2f} |")


def speed(args) -> None:
    import torch
    from pipelines.segment import Segmenter
    from pipelines.world import World
    print(f"\n### speed ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads = {torch.get_num_threads()})\n")
    # wall clock is what a user waits; process CPU time is what the work costs on a core of its own (on this
    # shared machine the two differ by the time the process waited for a core)
    print("| engine | image | set_image median | predict median (1 click) | predict median (3 clicks + mask_input) "
          "| 1 click, CPU time median |")
    print("|---|---|---|---|---|---|")
    world = World(SEED + 2)
    imgs = [world.clip(i, n_characters=3, size=512, frames=1) for i in range(args.repeats)]
    seg = make_segmenter("clicknet", None, args.refine_passes, _flip_passes(args), args.edge_scale)
    eng = seg._engine
    _speed_rows(seg, f"offline (ClickNet, flipped passes: {', '.join(eng.flip_passes) or 'none'}, edge scale "
                     f"{eng.edge_scale:g})", imgs, args.repeats)
    sam = _random_sam2(args.sam2_size)
    _speed_rows(sam, f"SAM2-tiny, random weights, {args.sam2_size}-pixel input", imgs, args.sam2_repeats)


def _flip_passes(args) -> list[str] | None:
    """--flip-passes: None (the engine's default), [] for ``none``, else the named passes."""
    if args.flip_passes is None:
        return None
    return [] if args.flip_passes == ["none"] else list(args.flip_passes)


def _speed_rows(seg, name, clips, repeats) -> None:
    t_set, t_one, t_three, c_one = [], [], [], []
    for clip in clips[:repeats]:
        img, m = clip.frames[0], clip.masks[0, 0]
        ys, xs = np.nonzero(m) if m.any() else (np.array([256]), np.array([256]))
        p = (int(np.median(xs)), int(np.median(ys)))
        t = time.perf_counter()
        seg.set_image(img)
        t_set.append(time.perf_counter() - t)
        t, c = time.perf_counter(), time.process_time()
        _, _, low = seg.predict(points=[p], labels=[1])
        t_one.append(time.perf_counter() - t)
        c_one.append(time.process_time() - c)
        t = time.perf_counter()
        seg.predict(points=[p, (10, 10), (500, 300)], labels=[1, 0, 1], mask_input=low[:1])
        t_three.append(time.perf_counter() - t)
    ms = lambda v: f"{1000 * np.median(v):.0f} ms"    # noqa: E731
    print(f"| {name} | 512×512 | {ms(t_set)} | {ms(t_one)} | {ms(t_three)} | {ms(c_one)} |")


def _random_sam2(image_size: int):
    import tempfile

    import torch
    from sam2.build_sam import build_sam2

    from pipelines.segment import Segmenter
    net = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", apply_postprocessing=False)
    d = tempfile.mkdtemp(prefix="sam2-bench-")
    path = os.path.join(d, "sam2.1_hiera_tiny.pt")
    torch.save({"model": net.state_dict()}, path)
    return Segmenter(backend="sam2", model=path, device="cpu",
                     sam2_image_size=None if image_size == 1024 else image_size)


def compare(a_path: str, b_path: str) -> list[dict]:
    """Mean IoU of weights A minus weights B on the same characters (two ``--per-character`` files), per
    frame size and click count, with a 95 % paired bootstrap interval over frames (``benchmarks.stats``: the
    characters of one frame crowd each other, so the frame is the unit)."""
    from benchmarks.stats import paired_difference
    fa, fb = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    seeds = [tuple(_worlds(f)) for f in (fa, fb)]
    if seeds[0] != seeds[1]:
        raise SystemExit(f"compare: the two files come from different worlds (--world-seed "
                         f"{' '.join(map(str, seeds[0]))} and {' '.join(map(str, seeds[1]))}); measure both on the "
                         "same worlds")
    a, b = fa["characters"], fb["characters"]
    key = [(r["engine"], r["size"], r["frame"], r["show"]) for r in a]
    if key != [(r["engine"], r["size"], r["frame"], r["show"]) for r in b]:
        raise SystemExit("compare: the two files hold different characters; measure both with the same "
                         "--sizes and --clips-per-show")
    out = []
    for size in sorted({r["size"] for r in a}, reverse=True):
        sa, sb = (_frame_sums([r for r in src if r["size"] == size]) for src in (a, b))
        for k in range(3):
            d = paired_difference(sa[:, k], sa[:, 3], sb[:, k], sb[:, 3])
            out.append({"size": size, "clicks": k + 1, "characters": int(sa[:, 3].sum()), "frames": len(sa), **d})
    return out


def _frame_sums(rows: list[dict]) -> np.ndarray:
    """Per frame of ``rows`` (one frame size's characters of a ``--per-character`` file), in frame order: the IoU
    sums after 1, 2 and 3 clicks and the number of characters — the frame is the unit of the intervals."""
    frames = {f: i for i, f in enumerate(sorted({r["frame"] for r in rows}))}
    sums = np.zeros((len(frames), 4))
    for r in rows:
        sums[frames[r["frame"]]] += [*r["iou"], 1.0]
    return sums


def _worlds(f: dict) -> list[int]:
    """The worlds a ``--per-character`` file was measured on (files written before --world-seed existed hold the
    benchmark's world)."""
    return np.atleast_1d(f.get("world_seed", SEED)).tolist()


def pool(paths: list[str], out: str) -> dict:
    """Join ``--per-character`` files measured with the same weights and settings on disjoint worlds into one file,
    as if one ``quality`` run had measured all their worlds: the worlds are listed in order and each file's frames
    are numbered after the previous files' (per frame size), so ``compare`` pairs two pooled files frame by frame.
    Returns the pooled file's content (also written to ``out``)."""
    files = [json.loads(Path(p).read_text()) for p in paths]
    # every field but the worlds and the characters is a setting the measurement was made with (weights, passes …)
    settings = {k: v for k, v in files[0].items() if k not in ("world_seed", "characters")}
    for p, f in zip(paths[1:], files[1:]):
        differ = [k for k in sorted(settings.keys() | f.keys() - {"world_seed", "characters"})
                  if f.get(k) != settings.get(k)]
        if differ:
            raise SystemExit(f"pool: {p} was measured with other {', '.join(differ)} than {paths[0]}; pool only "
                             "files of the same weights and settings")
    flat = [w for f in files for w in _worlds(f)]
    if len(set(flat)) != len(flat):
        raise SystemExit(f"pool: the files share a world (worlds {' '.join(map(str, flat))}); pool files of "
                         "disjoint worlds, or a character would count twice")
    sizes = list(dict.fromkeys(r["size"] for f in files for r in f["characters"]))
    rows, offset = [], dict.fromkeys(sizes, 0)
    for size in sizes:
        for f in files:
            mine = [r for r in f["characters"] if r["size"] == size]
            rows += [{**r, "frame": r["frame"] + offset[size]} for r in mine]
            offset[size] += max((r["frame"] for r in mine), default=-1) + 1
    pooled = {**settings, "world_seed": flat, "characters": rows}
    Path(out).write_text(json.dumps(pooled))
    return pooled


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["quality", "census", "video", "speed", "compare", "pool"])
    ap.add_argument("files", nargs="*", help="compare: two --per-character files, A then B; pool: the files to "
                                              "join (same weights and settings, disjoint worlds)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None)
    ap.add_argument("--clips-per-show", type=int, default=None)
    ap.add_argument("--engines", nargs="+", default=["clicknet"])
    ap.add_argument("--weights", default=None,
                    help="ClickNet safetensors to measure instead of assets/models/clicknet (quality only)")
    ap.add_argument("--refine-passes", type=int, default=None,
                    help="ClickNet: zoom-decoder passes fed with their own answer (default: the engine's, "
                         "pipelines.segment.offline.REFINE_PASSES)")
    from pipelines.segment.offline import PASSES
    ap.add_argument("--flip-passes", nargs="+", choices=[*PASSES, "none"], default=None,
                    help="ClickNet: passes that also decode the mirrored view and average (default: the engine's, "
                         "pipelines.segment.offline.FLIP_PASSES; 'none' turns flipping off)")
    ap.add_argument("--prompt", choices=["clicks", "box"], default="clicks",
                    help="quality: the first prompt is a click (default) or the character's bounding box alone; "
                         "the later clicks are added to it")
    ap.add_argument("--edge-scale", type=float, default=None,
                    help="ClickNet: edge snapping's guided-filter radius in decoder pixels of the last pass (default: "
                         "the engine's, pipelines.segment.offline.EDGE_SCALE; 0 turns snapping off)")
    ap.add_argument("--world-seed", type=int, nargs="+", default=[SEED],
                    help=f"quality: the world(s) the frames come from (default {SEED}, the benchmark's); several "
                         "seeds pool their frames into one larger benchmark. docs/SEGMENTATION.md chooses weights on "
                         "2026 777 and judges the issue's targets on eight worlds, 3000-3003 and 4000-4003 (measured "
                         "as two four-world runs and joined with `pool`)")
    ap.add_argument("--min-area", type=float, default=20.0, help="visible pixels at 128×128 (scaled with size)")
    ap.add_argument("--per-character", default=None,
                    help="quality: also write every character's IoU after 1-3 clicks to this JSON file (with its "
                         "frame), for paired comparisons of two weights (benchmarks.stats); pool: the file to write")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--sam2-repeats", type=int, default=5)
    ap.add_argument("--sam2-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: on a shared 2-core machine more threads spin in OpenMP barriers)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.what == "compare":
        if len(args.files) != 2:
            ap.error("compare: give two --per-character files, A then B")
        print("| frame size | clicks | characters | frames | mean IoU A − B [95 %] | resamples with A above |")
        print("|---|---|---|---|---|---|")
        for r in compare(*args.files):
            print(f"| {r['size']} | {r['clicks']} | {r['characters']} | {r['frames']} | {r['diff']:+.4f} "
                  f"[{r['lo']:+.4f}, {r['hi']:+.4f}] | {r['p_above']:.0%} |")
        return
    if args.what == "pool":
        if len(args.files) < 2 or not args.per_character:
            ap.error("pool: give two or more --per-character files and --per-character OUT.json to write")
        from benchmarks.stats import ratio_interval
        rows = pool(args.files, args.per_character)["characters"]
        print("| frame size | characters | frames | 1 click [95 % over frames] | 2 clicks | 3 clicks |")
        print("|---|---|---|---|---|---|")
        for size in dict.fromkeys(r["size"] for r in rows):
            sums = _frame_sums([r for r in rows if r["size"] == size])
            print(f"| {size} | {int(sums[:, 3].sum())} | {len(sums)} | " + " | ".join(
                "{:.4f} [{:.4f}, {:.4f}]".format(sums[:, k].sum() / sums[:, 3].sum(), *ratio_interval(sums[:, k], sums[:, 3]))
                for k in range(3)) + " |")
        return
    if args.what == "quality":
        args.sizes = args.sizes or [512, 128]
        args.clips_per_show = args.clips_per_show or 16
        quality(args)
    elif args.what == "census":
        args.sizes = args.sizes or [128]
        args.clips_per_show = args.clips_per_show or 16
        census(args)
    elif args.what == "video":
        args.sizes = args.sizes or [128, 256]
        args.clips_per_show = args.clips_per_show or 4
        video(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
