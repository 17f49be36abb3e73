"""CCE and CCA measurements on this CPU (one torch thread):

* ``retrieval`` — held-out world views of the ten named characters → nearest identity tokens: image-derived
  initialisation vs random initialisation vs the library's learned tokens (when learned for this generator);
* ``instant``   — seconds for ``embed_character`` from 1, 3 and 5 images (median of 5);
* ``fit``       — ``learn_character`` on an unseen (procedural) character from 3 portraits with the default
  budget: steps and seconds, and what the fit changes — the frozen generator's diffusion loss on held-out
  world frames of that character, and where its tokens rank among the library's for held-out views of it;
* ``cca``       — milliseconds per training sample without and with Cross-Character Augmentation.

    python -m benchmarks.cce_bench [--only retrieval,instant,fit,cca] [--fit-seconds 90] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import median_time


def bench_retrieval(pipe) -> dict:
    from pipelines.cce.embedding import load_embedding
    from pipelines.cce.evaluate import heldout_views, retrieval, view_vectors
    from pipelines.library import Library
    from pipelines.train.cce_stage import initial_identity
    lib = Library()
    enc = pipe.context_encoder
    views, labels = heldout_views([c.id for c in lib], clips=4)
    q = view_vectors(enc, views)
    out = {"views": len(views)}
    for name, how, n in (("images (reference only)", "images", 0), ("images (reference + 4 portraits)", "images", 4),
                         ("random", "random", 4)):
        out[name] = retrieval(q, initial_identity(enc, lib, n, seed=0, how=how), labels)["accuracy"]
    embs = [load_embedding(c.id, lib) for c in lib]
    if all(e is not None and e.usable_with(enc) for e in embs):
        out["learned (cce stage)"] = retrieval(q, torch.stack([e.identity for e in embs]), labels)["accuracy"]
    else:
        out["learned (cce stage)"] = "not measured: no cce.safetensors learned for this generator"
    return out


def _new_character():
    from pipelines.world import World
    from pipelines.world.characters import sample_character
    from pipelines.world.shows import VARIANTS
    spec = sample_character(np.random.default_rng(2024), "live-action", show="harbor-lane")
    world = World(17)
    pairs = [world.portrait(spec, 256, facing=f, variant=v % VARIANTS)
             for v, f in enumerate((0.0, 0.3, -0.3, 0.15, -0.15))]
    return spec, pairs


def bench_instant(pipe) -> dict:
    from pipelines.cce.learn import embed_character
    _, pairs = _new_character()
    out = {}
    for k in (1, 3, 5):
        imgs, masks = [p[0] for p in pairs[:k]], [p[1] for p in pairs[:k]]
        embed_character(imgs, masks, pipe=pipe)
        out[f"{k} image(s) s"] = median_time(lambda: embed_character(imgs, masks, pipe=pipe), 5)
    return out


def bench_fit(pipe, seconds: float) -> dict:
    from pipelines.cce.embedding import CharacterEmbedding, identity_vector
    from pipelines.cce.evaluate import heldout_diffusion_loss, heldout_views, view_vectors, world_samples
    from pipelines.cce.learn import embed_character, learn_character, library_vectors
    spec, pairs = _new_character()
    imgs, masks = [p[0] for p in pairs[:3]], [p[1] for p in pairs[:3]]
    instant = embed_character(imgs, masks, name=spec.name, style=spec.style, pipe=pipe)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = learn_character(imgs, masks, spec.name, spec.style, library_dir=tmp, pipe=pipe, seconds=seconds)
        total = time.perf_counter() - t0
        fitted = CharacterEmbedding.load(path)
    samples = world_samples(spec, 8, reference=pairs[0])
    loss = {name: heldout_diffusion_loss(pipe, tok, samples)
            for name, tok in (("image tokens of the reference", None), ("instant embedding", instant.identity),
                              ("after the fit", fitted.identity))}
    # rank of the character's tokens among the library's for held-out views of it
    world_views = [(s["target"][0], s["target_masks"][0, 0]) for s in samples]
    q = view_vectors(pipe.context_encoder, world_views)
    others = library_vectors(None, pipe.context_encoder)

    def rank(tokens):
        keys = torch.cat([others, identity_vector(tokens)[None]])
        sims = q @ keys.T
        return float((sims[:, -1:] < sims[:, :-1]).sum(1).float().mean() + 1)

    return {"seconds_total": total, "fit": fitted.provenance["fit"], "heldout_diffusion_loss": loss,
            "mean_rank_among_library (1 = best)": {"instant": rank(instant.identity), "fitted": rank(fitted.identity)},
            "views": len(world_views)}


def bench_cca() -> dict:
    from pipelines.train.data import SampleConfig, WorldSampler
    out = {}
    for window in (1, 8):
        for mix in (0.0, 1.0):
            s = WorldSampler(SampleConfig(window=window, mix=mix, sheet=0.5), seed=3)
            s[0]
            t0 = time.perf_counter()
            for i in range(1, 21):
                s[i]
            out[f"window {window}, {'CCA' if mix else 'plain'} ms/sample"] = (time.perf_counter() - t0) / 20 * 1000
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cce_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="retrieval,instant,fit,cca")
    ap.add_argument("--fit-seconds", type=float, default=90.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from pipelines.mix.loading import load_pipeline
    pipe = load_pipeline()
    todo = args.only.split(",")
    result = {}
    if "retrieval" in todo:
        result["retrieval"] = bench_retrieval(pipe)
    if "instant" in todo:
        result["instant"] = bench_instant(pipe)
    if "fit" in todo:
        result["fit"] = bench_fit(pipe, args.fit_seconds)
    if "cca" in todo:
        result["cca"] = bench_cca()
    print(json.dumps(result, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
