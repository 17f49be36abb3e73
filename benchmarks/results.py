"""EverybodyDance Table 2 on ICE-mini: the five IMG-stage variants side by side → docs/RESULTS.md.

    python benchmarks/results.py --runs runs [--limit 40] [--steps 20] [--out docs/RESULTS.md]
    python benchmarks/results.py --compare A.json B.json     # two stored rows, A − B with a paired interval
    python benchmarks/results.py --pool A.json B.json …      # one model's IC over several scene sets
    python benchmarks/results.py --runs runs --steps 10 --prior_strength 1.0 \
        --out docs/RESULTS-from-noise.md --store docs/results-from-noise     # the paper's setting: no SDEdit start

Each variant is the pipeline folder a `python -m pipelines.train img --variant V --output_dir RUNS/img-V` run
finished (RUNS/img-V/final). Every variant is scored by the same benchmark (`pipelines.eval.benchmark`),
the same scenes, the same seeds (each scene's own) and the same number of sampler steps; the per-variant
result documents are kept next to the table (docs/results/<variant>.json) so the table can be re-derived.
A variant whose folder is missing is listed as "not trained" — never silently left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.stats import RESAMPLES, paired_difference, ratio_interval  # noqa: E402

VARIANTS = ("full", "end2end-m", "end2end", "ieg", "plain")
MODELS = VARIANTS + ("temporal",)       # the trained models scored (the temporal stage, on Full, is optional)
FOLDERS = {**{v: f"img-{v}/final" for v in VARIANTS}, "temporal": "temporal/final"}
# baselines: the appearance prior pasted (no network), both through Full's VAE, and the oracle
ROWS = MODELS + ("prior", "prior+vae", "gt+vae", "gt")
LABELS = {
    "full": "Full (End2End + IMG)",
    "end2end-m": "End2End-M",
    "end2end": "End2End",
    "ieg": "IEG only",
    "plain": "plain skeleton",
    "temporal": "Full + temporal layers (the temporal stage on Full)",
    "prior": "appearance prior alone (no generator)",
    "prior+vae": "appearance prior through Full's VAE (its input, decoded)",
    "gt+vae": "ground truth through Full's VAE (the VAE's ceiling)",
    "gt": "ground truth (oracle)",
}
SPLITS = ("all", "swap", "no swap", "seen", "unseen")


def _cell(v, k: str) -> str:
    if v is None or isinstance(v, str):
        return v or "–"
    if isinstance(v, float) and np.isnan(v):
        return "–"
    return f"{v:.2f}" if k == "PSNR" else f"{v:.4f}" if k in ("L1", "tL1") else f"{v:.3f}"


def _scenes(doc: dict, swap_unseen: bool = False) -> list[dict]:
    """A result document's per-scene rows, or only those of the scenes both swap and unseen (the target cell)."""
    return [r for r in doc["scenes"] if not swap_unseen or (r["tags"]["swap"] and r["tags"]["seen"] != "seen")]


def swap_unseen_ic(doc: dict) -> float | None:
    """IC accuracy on the scenes that are both swap and unseen (the issue's target), from the per-scene rows."""
    _, correct, judged = _scene_counts(doc, swap_unseen=True)
    return float(correct.sum() / judged.sum()) if judged.sum() else None


def _scene_counts(doc: dict, swap_unseen: bool = False) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-scene IC tallies (scene ids, correct, judged), optionally only the swap∩unseen scenes."""
    rows = _scenes(doc, swap_unseen)
    return ([r["id"] for r in rows], np.array([r["ic"]["correct"] for r in rows], float),
            np.array([r["ic"]["judged"] for r in rows], float))


def paired_bootstrap(a: dict, b: dict, *, swap_unseen: bool = False) -> dict:
    """IC accuracy of ``a`` minus that of ``b`` on the scenes both ran (matched by id), with its 95 % paired
    scene-bootstrap interval (``benchmarks.stats``). ``p_above``: the share of resamples where ``a`` scores
    higher."""
    ids_a, ca, ja = _scene_counts(a, swap_unseen)
    ids_b, cb, jb = _scene_counts(b, swap_unseen)
    common = [i for i in ids_a if i in set(ids_b)]
    ia, ib = [ids_a.index(i) for i in common], [ids_b.index(i) for i in common]
    return paired_difference(ca[ia], ja[ia], cb[ib], jb[ib])


def _ic_cell(correct: np.ndarray, judged: np.ndarray) -> str:
    """A table cell: IC accuracy of per-scene tallies with its 95 % scene-bootstrap interval."""
    lo, hi = ratio_interval(correct, judged)
    return f"{_cell(correct.sum() / judged.sum() if judged.sum() else None, 'IC')} [{lo:.3f}, {hi:.3f}]"


def _diff_cell(d: dict) -> str:
    """A table cell: a paired difference (``benchmarks.stats.paired_difference``) with its interval."""
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def compare(paths: list[Path]) -> str:
    """``A.json B.json``: two stored result documents (any two rows, e.g. the same variant trained for different
    steps, or sampled at different strengths) — each one's IC with its interval, and A − B paired over the
    scenes both ran, on all scenes and on swap∩unseen."""
    a, b = (json.loads(Path(p).read_text()) for p in paths)
    lines = [f"A = {paths[0]} ({a.get('model', '?')})", f"B = {paths[1]} ({b.get('model', '?')})",
             "", "| | IC A [95 %] | IC B [95 %] | A − B [95 %] | resamples with A above B |", "|---|---|---|---|---|"]
    for name, su in (("all scenes", False), ("swap∩unseen", True)):
        if not _scenes(a, su) or not _scenes(b, su):
            continue
        d = paired_bootstrap(a, b, swap_unseen=su)
        cells = [_ic_cell(*_scene_counts(doc, su)[1:]) for doc in (a, b)]
        lines.append(f"| {name} ({d['scenes']} scenes) | {cells[0]} | {cells[1]} | {_diff_cell(d)} | "
                     f"{d['p_above']:.0%} |")
    return "\n".join(lines)


def pool(paths: list[Path]) -> str:
    """One model's result documents on different scene sets (ICE-mini and a ``build-benchmark --seed S`` set):
    IC over all their scenes together, with the scene-bootstrap interval, on all scenes and on swap∩unseen."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    lines = [f"pooled: {', '.join(map(str, paths))}", "", "| | scenes | IC [95 %] |", "|---|---|---|"]
    for name, su in (("all scenes", False), ("swap∩unseen", True)):
        counts = [_scene_counts(d, su) for d in docs]
        c = np.concatenate([k[1] for k in counts])
        j = np.concatenate([k[2] for k in counts])
        if j.sum():
            lines.append(f"| {name} | {len(c)} | {_ic_cell(c, j)} |")
    return "\n".join(lines)


def bootstrap_interval(doc: dict, *, swap_unseen: bool = False) -> tuple[float, float]:
    """95 % scene-bootstrap interval of one row's IC accuracy."""
    _, c, j = _scene_counts(doc, swap_unseen)
    return ratio_interval(c, j)


def uncertainty(docs: dict[str, dict | None]) -> str:
    """The comparisons the issue asks about, with how sure the scenes let us be: each trained row's IC (all
    scenes, swap∩unseen) with its 95 % interval, and its paired difference from End2End."""
    ref = docs.get("end2end")
    head = ("| variant | IC all [95 % interval] | IC swap∩unseen [95 % interval] | − End2End, all [95 %] | "
            "− End2End, swap∩unseen [95 %] | resamples above End2End (all) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for v in MODELS:
        doc = docs.get(v)
        if doc is None:
            continue
        cells = [_ic_cell(*_scene_counts(doc, su)[1:]) for su in (False, True)]
        if ref is not None and v != "end2end":
            cells += [_diff_cell(paired_bootstrap(doc, ref, swap_unseen=su)) for su in (False, True)]
            cells.append(f"{paired_bootstrap(doc, ref)['p_above']:.0%}")
        else:
            cells += ["–", "–", "–"]
        lines.append(f"| {LABELS[v]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def digest(folder: Path) -> str | None:
    """Identity of a model folder's weights and configs (sha256 over every file but the training log), or
    None where the folder is not on this machine."""
    import hashlib
    folder = Path(folder)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "training.json"):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def stale(doc: dict, want: dict) -> str | None:
    """Why a stored row cannot stand for this request (scenes, sampler steps, SDEdit strength or weights
    differ), or None when it can. An entry of ``want`` that is None is not checked (e.g. the weights of a
    folder that is not on this machine)."""
    got = doc.get("provenance") or {}
    for k, v in want.items():
        if v is not None and got.get(k) != v:
            return f"its {k} is {got.get(k)!r}, this table wants {v!r}"
    return None


def held_out_ic(folder: Path, variant: str, batches: int = 12, batch_size: int = 8, seed: int = 777) -> float:
    """The IMG score itself on held-out world samples: mean IC of the MQA identity-matching graph over the first
    two MSM layers (DESIGN.md §3), every sample a Pre-Classified swap pair (reference frame and target frame in
    a different left-to-right order), no classifier-free dropout, fixed noise and timesteps — identical inputs
    for every variant. It says whether the attention matches identities, independent of how good the pixels
    are; IC accuracy on the benchmark says whether the video does."""
    import torch
    from pipelines.train.config import TrainConfig
    from pipelines.train.trainer import build_pipeline, make_objective, sampler_for
    cfg = TrainConfig(stage="img", variant=variant, init=str(folder), msm_layers=2, cfg_dropout=0.0, pcs=1.0,
                      seed=seed, batch_size=batch_size).check()
    pipe = build_pipeline(cfg)
    objective = make_objective(cfg, pipe).eval()
    sampler, collate = sampler_for(cfg, seed)
    scores = []
    with torch.no_grad():
        for b in range(batches):
            batch = collate([sampler[b * batch_size + k] for k in range(batch_size)])
            batch["seed"] = seed * 1_000_003 + b
            out = objective(batch)
            if "ic" in out:
                scores.append(float(out["ic"]))
    return float(np.mean(scores)) if scores else float("nan")


def chance(doc: dict, swap_unseen: bool = False) -> float:
    """IC accuracy of a random matching: each track is right with probability 1/n, so over all judged
    track-frames the expectation is (number of scenes) / (sum of characters) when every frame is judged."""
    rows = _scenes(doc, swap_unseen)
    return len(rows) / sum(r["tags"]["n_characters"] for r in rows) if rows else float("nan")


def table(docs: dict[str, dict | None]) -> str:
    lines = []
    head = "| variant | " + " | ".join(f"IC {s}" for s in SPLITS) + " | IC swap∩unseen | style-del | SSIM | PSNR | L1 | tL1 | MQA IC (held-out swaps) |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for v in ROWS:
        doc = docs.get(v)
        if doc is None:
            lines.append(f"| {LABELS[v]} | " + " | ".join(["not trained" if v in MODELS else "not run"] + [""] * (head.count("|") - 3)) + " |")
            continue
        g = doc["groups"]
        ic = [_cell(g[s].get("IC") if g.get(s, {}).get("scenes") else None, "IC") for s in SPLITS]
        a = g["all"]
        lines.append(f"| {LABELS[v]} | " + " | ".join(ic) + f" | {_cell(swap_unseen_ic(doc), 'IC')} | "
                     f"{_cell(a.get('Style-del'), 'x')} | {_cell(a['SSIM'], 'SSIM')} | {_cell(a['PSNR'], 'PSNR')} | "
                     f"{_cell(a['L1'], 'L1')} | {_cell(a.get('tL1'), 'tL1')} | {_cell(doc.get('mqa_ic'), 'IC')} |")
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (what a reader of the table can open)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _store(doc: dict, path: Path) -> dict:
    """Write one row's result document next to the table (without the bulky per-track IC lists)."""
    for r in doc["scenes"]:
        r.pop("per_track_ic", None)
    path.write_text(json.dumps(doc, indent=1, default=float))
    return doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"), help="folder holding img-<variant>/final")
    ap.add_argument("--variants", default=",".join(MODELS),
                    help="which trained models to score (the others come from docs/results/ when there)")
    ap.add_argument("--limit", type=int, default=None, help="first N benchmark scenes (default: all)")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: each scene's own)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    ap.add_argument("--reuse", action="store_true", help="reuse docs/results/<row>.json (models and baselines) when present")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prior_strength", type=float, default=None,
                    help="SDEdit start from the appearance prior, in (0, 1] (default: the pipeline's); 1.0 samples "
                         "from pure noise, EverybodyDance's setting, where identity must come through attention")
    ap.add_argument("--store", type=Path, default=None,
                    help="folder of the per-row documents (default: results/ next to --out, or "
                         "results-strengthS/ for another --prior_strength S)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("A.json", "B.json"), default=None,
                    help="print A − B (IC, paired scene bootstrap) for two stored result documents and exit")
    ap.add_argument("--pool", type=Path, nargs="+", metavar="F.json", default=None,
                    help="print one model's IC pooled over several scene sets' result documents and exit")
    args = ap.parse_args(argv)
    for flag, paths in (("--compare", args.compare), ("--pool", args.pool)):
        missing = [str(p) for p in paths or [] if not p.is_file()]
        if missing:
            ap.error(f"{flag}: {', '.join(missing)} not found; give result documents "
                     "(docs/results/<row>.json or `pipelines.eval benchmark --out`)")
    if args.compare:
        print(compare(args.compare))
        return 0
    if args.pool:
        print(pool(args.pool))
        return 0
    if args.prior_strength is not None and not 0 < args.prior_strength <= 1:
        ap.error(f"--prior_strength {args.prior_strength}: give a share of the schedule in (0, 1]")
    import torch
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from pipelines.eval import benchmark_model
    from pipelines.mix.pipeline_mix import DEFAULT_PRIOR_STRENGTH

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in variants if v not in MODELS]
    if bad:
        ap.error(f"--variants: unknown {bad}; use some of {', '.join(MODELS)}")
    strength = args.prior_strength if args.prior_strength is not None else DEFAULT_PRIOR_STRENGTH
    # rows sampled at another strength never land on (and overwrite) the default strength's rows
    default_store = "results" if strength == DEFAULT_PRIOR_STRENGTH else f"results-strength{strength:g}"
    store = args.store if args.store is not None else args.out.parent / default_store
    store.mkdir(parents=True, exist_ok=True)
    docs: dict[str, dict | None] = {}
    from pipelines.eval.benchmark import Benchmark
    total = len(Benchmark.load().scenes)
    scenes = args.limit if args.limit is not None and args.limit < total else "all"   # --limit 40 of 40 = all

    def stored(row: str, want: dict) -> dict | None:
        """The stored document of ``row`` when it was made for this request, else None (and why)."""
        saved = store / f"{row}.json"
        if not saved.is_file():
            return None
        doc = json.loads(saved.read_text())
        why = stale(doc, want)
        if why:
            print(f"{row}: the stored {saved} is not reused: {why}")
            return None
        return doc

    for v in MODELS:
        saved = store / f"{v}.json"
        folder = args.runs / FOLDERS[v]
        want = {"scenes": scenes, "steps": args.steps, "strength": strength, "weights": digest(folder)}
        if v not in variants or args.reuse:
            docs[v] = stored(v, want)
            if docs[v] is not None or v not in variants:
                continue
        if not (folder / "model_index.json").is_file():
            print(f"{v}: {folder} not found — listed as not trained")
            docs[v] = None
            continue
        doc = benchmark_model(str(folder), limit=args.limit, steps=args.steps, prior_strength=strength)
        doc["model"] = f"{v}: {doc['model']}"
        training = folder / "training.json"
        doc["training"] = json.loads(training.read_text()) if training.is_file() else None
        doc["sampler_steps"] = args.steps
        doc["mqa_ic"] = held_out_ic(folder, "full" if v == "temporal" else v)
        doc["provenance"] = want
        docs[v] = _store(doc, saved)
    full = args.runs / FOLDERS["full"]
    for k in ("gt", "prior", "prior+vae", "gt+vae"):   # the +vae rows: what any generator decoding through Full's VAE can reach
        saved = store / f"{k}.json"
        want = {"scenes": scenes, "weights": digest(full / "vae") if "+vae" in k else None}
        docs[k] = stored(k, want) if args.reuse else None
        if docs[k] is not None:
            continue
        if "+vae" in k and not (full / "vae").is_dir():
            continue
        doc = benchmark_model(f"{k}:{full}" if "+vae" in k else k, limit=args.limit)
        doc["provenance"] = want
        docs[k] = _store(doc, saved)
    ran = [d for k, d in docs.items() if d and k in MODELS]
    n = ran[0]["scenes_run"] if ran else 0
    steps = {d["training"]["config"]["max_steps"] for k, d in docs.items()
             if d and k in VARIANTS and d.get("training")}
    n = n or docs["gt"]["scenes_run"]
    if strength >= 1:
        sampling = ("sampled from pure noise (strength 1.0: no SDEdit start; the appearance prior reaches the model "
                    "only through the pose guider)")
    else:
        default = "the pipeline's default " if strength == DEFAULT_PRIOR_STRENGTH else ""
        sampling = f"SDEdit start from the appearance prior at {default}strength {strength}"
    text = [
        "# Results — identity correspondence, EverybodyDance Table 2 on ICE-mini",
        "",
        f"Written by `python benchmarks/results.py {' '.join(argv if argv is not None else sys.argv[1:])}` on "
        f"{time.strftime('%Y-%m-%d')}; per-variant documents in `{_shown(store)}/`. "
        f"{n} of {ran[0]['scenes_total'] if ran else '?'} ICE-mini scenes, sampler steps "
        f"{args.steps or 'per scene'}, {sampling}, IMG-stage steps per variant: {sorted(steps) or '–'}.",
        "",
        table(docs),
        "",
        "IC: share of judged track-frames whose Hungarian match (identity-probe descriptors inside the ground-truth "
        "visible masks) is the reference the scene assigned. IC swap∩unseen is the issue's target cell "
        "(Full ≥ 0.95). Style-del: share of character-frames on mixed-style scenes whose predicted style is not the "
        "character's own. SSIM/PSNR/L1 against the world's ground-truth video; tL1: L1 of the frame-to-frame changes (flicker). MQA IC: the IMG score of the "
        "attention graph itself on 96 held-out swap-pair samples (`held_out_ic` in this script). The appearance "
        "prior row scores the generator's input itself (`pipelines/pose/prior.py`: each reference cut-out pasted "
        "on its track, no network): what a model reading it starts from. The two \"through Full's VAE\" rows encode and "
        "decode those frames with the Full model's VAE (`--model gt+vae:FOLDER`, `prior+vae:FOLDER`): the ground "
        "truth's row is what that VAE keeps of a perfect video (a generator decoding through it beats it only with "
        "latents the encoder never produces); the prior's row is the SDEdit start as the model sees it.",
        "",
        f"Chance: a random track→reference matching scores 1 / mean characters per scene = {chance(docs['gt']):.3f} "
        f"on these scenes ({chance(docs['gt'], swap_unseen=True):.3f} on swap∩unseen).",
        "",
        "## How sure: intervals over scenes",
        "",
        uncertainty(docs),
        "",
        f"Intervals: 95 % percentile bootstrap over the scenes ({RESAMPLES:,} resamples, seed 0), the scene being the "
        "independent unit because a scene's frames share its references and tracks. The differences are paired: "
        "each resample draws the same scenes for both rows, so how hard a scene is cancels out. A difference whose "
        "interval holds 0 is not one these scenes can show; swap∩unseen rests on "
        f"{len(_scene_counts(docs['gt'], True)[0])} scenes here.",
    ]
    for d in ran[:1]:
        text += ["", "Probe trust: " + "; ".join(
            f"{k} held-out accuracy {t['accuracy']}" + (f" ({t['note']})" if t.get("note") else "")
            for k, t in d["trust"].items())]
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
