"""benchmarks/results.py: the statistics under Table 2 (scene bootstrap, paired differences) and when a stored
row may stand in for a new run (--reuse). Synthetic result documents; the benchmark itself is stubbed."""

import json

import numpy as np
import pytest

from benchmarks import results


def _doc(correct, judged=10, swap=None, seen=None, ids=None, scenes_total=40):
    n = len(correct)
    swap = [True] * n if swap is None else swap
    seen = ["unseen"] * n if seen is None else seen
    ids = ids or [f"ice-{i:03d}" for i in range(n)]
    rows = [{"id": i, "tags": {"n_characters": 2, "swap": s, "seen": u},
             "ic": {"correct": int(c), "judged": judged}} for i, c, s, u in zip(ids, correct, swap, seen)]
    ic = sum(correct) / (judged * n)
    return {"scenes": rows, "scenes_run": n, "scenes_total": scenes_total,
            "groups": {"all": {"scenes": n, "IC": ic, "SSIM": 0.5, "PSNR": 17.0, "L1": 0.07, "tL1": 0.06,
                               "Style-del": 0.2}},
            "trust": {}, "model": "fake"}


def test_paired_bootstrap_values():
    a, b = _doc([10] * 8), _doc([5] * 8)
    d = results.paired_bootstrap(a, b)
    assert d["scenes"] == 8 and d["diff"] == pytest.approx(0.5)
    assert d["lo"] == pytest.approx(0.5) and d["hi"] == pytest.approx(0.5) and d["p_above"] == 1.0
    same = results.paired_bootstrap(a, a)
    assert same["diff"] == 0 and same["lo"] == 0 and same["hi"] == 0 and same["p_above"] == 0
    # one scene of twenty differs: a real but small difference these scenes cannot show
    c = _doc([7] * 19 + [10])
    d = results.paired_bootstrap(c, _doc([7] * 20))
    assert d["diff"] == pytest.approx(3 / 200) and d["lo"] == 0.0 < d["hi"]
    # only the scenes both rows ran are compared, matched by id (not by position)
    e = _doc([10, 0, 10], ids=["ice-002", "ice-009", "ice-001"])
    d = results.paired_bootstrap(e, _doc([0, 5, 0]))     # ice-000..002
    assert d["scenes"] == 2 and d["diff"] == pytest.approx(1.0 - 5 / 20)
    # swap∩unseen keeps only those scenes
    f = _doc([10, 0, 10, 0], swap=[True, True, False, True], seen=["unseen", "seen", "unseen", "unseen"])
    assert results._scene_counts(f, swap_unseen=True)[0] == ["ice-000", "ice-003"]
    assert results.swap_unseen_ic(f) == pytest.approx(0.5)


def test_stats_helpers():
    from benchmarks.stats import paired_difference, ratio_interval
    assert ratio_interval([3, 3], [6, 6]) == (0.5, 0.5)
    assert all(np.isnan(ratio_interval([], [])))
    d = paired_difference([2, 4], [4, 4], [1, 2], [4, 4])
    assert d["scenes"] == 2 and d["diff"] == pytest.approx(0.375) and d["lo"] > 0 and d["p_above"] == 1.0
    assert paired_difference([], [], [], [])["scenes"] == 0


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_scenes():
    rng = np.random.default_rng(1)
    small = _doc(rng.integers(4, 11, 10).tolist())
    big = _doc(rng.integers(4, 11, 160).tolist())
    for doc in (small, big):
        lo, hi = results.bootstrap_interval(doc)
        assert lo <= doc["groups"]["all"]["IC"] <= hi
    (lo_s, hi_s), (lo_b, hi_b) = results.bootstrap_interval(small), results.bootstrap_interval(big)
    assert hi_b - lo_b < hi_s - lo_s
    assert not np.isnan(results.bootstrap_interval(_doc([5]), swap_unseen=True)[0])
    assert np.isnan(results.bootstrap_interval(_doc([5], swap=[False]), swap_unseen=True)[0])


def test_digest_and_stale(tmp_path):
    m = tmp_path / "model"
    (m / "vae").mkdir(parents=True)
    (m / "vae" / "w.safetensors").write_bytes(b"abc")
    first = results.digest(m)
    (m / "training.json").write_text("{}")              # the training log is not the model
    assert results.digest(m) == first
    (m / "vae" / "w.safetensors").write_bytes(b"abd")
    assert results.digest(m) != first and results.digest(tmp_path / "absent") is None
    doc = {"provenance": {"scenes": 20, "steps": 10, "weights": "x"}}
    assert results.stale(doc, {"scenes": 20, "steps": 10, "weights": "x"}) is None
    assert results.stale(doc, {"scenes": 20, "steps": 10, "weights": None}) is None     # cannot check: not here
    assert "scenes is 20, this table wants 'all'" in results.stale(doc, {"scenes": "all"})
    assert "weights" in results.stale(doc, {"weights": "y"})
    assert "steps is None" in results.stale({}, {"steps": 10})                          # made before provenance


def test_reuse_reruns_exactly_the_stale_rows(tmp_path, monkeypatch):
    import pipelines.eval as ev
    runs = tmp_path / "runs"
    for v in results.VARIANTS + ("temporal",):
        f = runs / results.FOLDERS[v]
        (f / "vae").mkdir(parents=True)
        (f / "model_index.json").write_text("{}")
        (f / "vae" / "w.safetensors").write_bytes(v.encode())
        (f / "training.json").write_text(json.dumps({"config": {"max_steps": 100}}))
    calls = []

    def fake_benchmark(model, limit=None, steps=None, prior_strength=None):
        calls.append(model)
        strengths.append(prior_strength)
        return _doc([8] * (limit or 40), scenes_total=40)

    strengths = []

    monkeypatch.setattr(ev, "benchmark_model", fake_benchmark)
    monkeypatch.setattr(results, "held_out_ic", lambda folder, variant: 0.5)
    out = tmp_path / "docs" / "RESULTS.md"
    argv = ["--runs", str(runs), "--limit", "4", "--steps", "2", "--out", str(out)]
    assert results.main(argv) == 0
    assert len(calls) == 10                                  # six models, four baselines
    text = out.read_text()
    assert "## How sure: intervals over scenes" in text and "+0.000 [+0.000, +0.000]" in text
    calls.clear()
    assert results.main(argv + ["--reuse"]) == 0 and calls == []      # everything stored fits
    # Full's VAE changes: its row and the two rows decoded through that VAE are rerun, nothing else
    (runs / "img-full/final/vae/w.safetensors").write_bytes(b"new")
    assert results.main(argv + ["--reuse"]) == 0
    assert sorted(calls) == sorted([str(runs / "img-full/final"), f"prior+vae:{runs / 'img-full/final'}",
                                    f"gt+vae:{runs / 'img-full/final'}"])
    # a different number of scenes: nothing stored stands for it
    calls.clear()
    assert results.main(["--runs", str(runs), "--limit", "5", "--steps", "2", "--out", str(out), "--reuse"]) == 0
    assert len(calls) == 10
    doc = json.loads((out.parent / "results" / "full.json").read_text())
    assert doc["provenance"]["scenes"] == 5 and doc["provenance"]["steps"] == 2
    # all of ICE-mini's 40 scenes, asked for with or without --limit, is one request
    calls.clear()
    assert results.main(["--runs", str(runs), "--steps", "2", "--out", str(out)]) == 0 and len(calls) == 10
    calls.clear()
    assert results.main(["--runs", str(runs), "--limit", "40", "--steps", "2", "--out", str(out), "--reuse"]) == 0
    assert calls == [] and "40 of 40 ICE-mini scenes" in out.read_text()


def test_prior_strength_table_keeps_its_own_rows(tmp_path, monkeypatch):
    """--prior_strength 1.0 (sampling from noise) with its own --store: the models are rerun at that strength,
    the 0.3 rows are neither reused nor overwritten, and the table says how it sampled."""
    import pipelines.eval as ev
    from pipelines.mix.pipeline_mix import DEFAULT_PRIOR_STRENGTH
    runs = tmp_path / "runs"
    for v in results.MODELS:
        f = runs / results.FOLDERS[v]
        f.mkdir(parents=True)
        (f / "model_index.json").write_text("{}")
    got = []

    def fake_benchmark(model, limit=None, steps=None, prior_strength=None):
        got.append((model, prior_strength))
        return _doc([8] * (limit or 40), scenes_total=40)

    monkeypatch.setattr(ev, "benchmark_model", fake_benchmark)
    monkeypatch.setattr(results, "held_out_ic", lambda folder, variant: 0.5)
    out = tmp_path / "docs" / "RESULTS.md"
    base = ["--runs", str(runs), "--limit", "3", "--steps", "2"]
    assert results.main(base + ["--out", str(out)]) == 0
    assert {s for m, s in got if "img-" in m or "temporal" in m} == {DEFAULT_PRIOR_STRENGTH}
    got.clear()
    noise = tmp_path / "docs" / "RESULTS-noise.md"
    store = tmp_path / "docs" / "results-noise"
    assert results.main(base + ["--reuse", "--prior_strength", "1.0", "--out", str(noise), "--store", str(store)]) == 0
    models = [(m, s) for m, s in got if "img-" in m and ":" not in m or m.endswith("temporal/final")]
    assert len(models) == 6 and {s for _, s in models} == {1.0}
    assert json.loads((store / "full.json").read_text())["provenance"]["strength"] == 1.0
    assert json.loads((out.parent / "results" / "full.json").read_text())["provenance"]["strength"] == DEFAULT_PRIOR_STRENGTH
    assert "sampled from pure noise" in noise.read_text() and "results-noise/" in noise.read_text()
    assert "IMG-stage steps per variant: –." in noise.read_text()          # no training.json in these folders
    assert f"default strength {DEFAULT_PRIOR_STRENGTH}" in out.read_text()
    # without --store, another strength gets its own folder: the default strength's rows are never overwritten
    assert results.main(base + ["--prior_strength", "0.5", "--out", str(tmp_path / "docs" / "half.md")]) == 0
    assert json.loads((tmp_path / "docs" / "results-strength0.5" / "full.json").read_text())["provenance"]["strength"] == 0.5
    assert json.loads((out.parent / "results" / "full.json").read_text())["provenance"]["strength"] == DEFAULT_PRIOR_STRENGTH
    with pytest.raises(SystemExit):
        results.main(base + ["--prior_strength", "1.5", "--out", str(noise)])


def _write(folder, *docs):
    """Each result document as folder/<n>.json; their paths."""
    paths = [folder / f"{i}.json" for i in range(len(docs))]
    for path, doc in zip(paths, docs):
        path.write_text(json.dumps(doc))
    return paths


def test_compare_two_stored_rows(tmp_path, capsys):
    a = _doc([9, 9, 8, 10], swap=[True, True, False, True], seen=["unseen", "seen", "unseen", "unseen"])
    b = _doc([7, 9, 8, 6], swap=[True, True, False, True], seen=["unseen", "seen", "unseen", "unseen"])
    pa, pb = _write(tmp_path, a, b)
    assert results.main(["--compare", str(pa), str(pb)]) == 0
    text = capsys.readouterr().out
    # all: (36 − 30) / 40; swap∩unseen: scenes 0 and 3, (19 − 13) / 20; A is never below B, so 100 %
    assert "| all scenes (4 scenes) | 0.900" in text and "+0.150 [" in text
    assert "| swap∩unseen (2 scenes) |" in text and "+0.300 [" in text and "| 100% |" in text
    with pytest.raises(SystemExit):
        results.main(["--compare", str(pa), str(tmp_path / "missing.json")])


def test_pool_over_scene_sets(tmp_path, capsys):
    a = _doc([9, 8], swap=[True, False])
    b = _doc([5, 10, 7], swap=[True, True, False])
    pa, pb = _write(tmp_path, a, b)
    assert results.main(["--pool", str(pa), str(pb)]) == 0
    text = capsys.readouterr().out
    # all: 39 of 50; swap∩unseen: scenes 9, 5, 10 → 24 of 30
    assert "| all scenes | 5 | 0.780 [" in text and "| swap∩unseen | 3 | 0.800 [" in text
    with pytest.raises(SystemExit):
        results.main(["--pool", str(pa), str(tmp_path / "nope.json")])
