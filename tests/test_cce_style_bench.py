"""benchmarks/cca_style.py: the fair pair of fine-tunes (same init, steps, seed; CCA share vs 0) and the style
probe's verdicts on ICE-mini's mixed-style scenes. Test-size generator, two steps, two scenes."""

import json

import pytest
import torch

pytest.importorskip("pipelines.eval.benchmark")

from generator_fixtures import one_thread  # noqa: F401,E402


def test_cca_style_runs_the_fair_pair_and_writes_the_table(tmp_path):
    from benchmarks.cca_style import main
    from pipelines.mix.__main__ import init_model
    from pipelines.train import checkpoint as ckpt
    init_model(tmp_path / "gen", seed=0, size="test")
    table = tmp_path / "table.md"
    argv = ["--init", str(tmp_path / "gen"), "--steps", "2", "--share", "1", "--train_size", "64",
            "--batch_size", "2", "--limit", "2", "--sampler_steps", "1", "--frames", "3", "--size", "64",
            "--out", str(tmp_path / "runs"), "--table", str(table)]
    assert main(argv) == 0
    # the two fine-tunes differ only in the CCA share
    with_cca, without = (ckpt.read_config(ckpt.resolve(tmp_path / "runs" / f"cca-{s}", "latest")) for s in ("1", "0"))
    assert with_cca["mix"] == 1.0 and without["mix"] == 0.0
    assert {k for k in with_cca if with_cca[k] != without[k]} == {"mix", "output_dir"}
    from safetensors.torch import load_file
    unets = [load_file(tmp_path / "runs" / f"cca-{s}" / "final" / "unet" / "diffusion_pytorch_model.safetensors")
             for s in ("1", "0")]
    assert any(not torch.equal(unets[0][k], unets[1][k]) for k in unets[0])      # they trained on other samples
    result = json.loads(table.with_suffix(".json").read_text())
    assert result["scenes"] == 2 and result["samples"] == 4
    gt, cca, plain = result["rows"]
    assert (cca["cca_samples"], plain["cca_samples"]) == (4, 0)
    for row in (gt, cca, plain):
        r = row["result"]
        assert r["judged"]["all"] > 0 and r["judged"]["other-style set"] > 0
        assert all(v is None or 0 <= v <= 1 for v in r["style_delusion"].values())
    # the probe's floor: on the ground truth itself it sees every character's own style
    assert gt["result"]["style_delusion"]["all"] <= 0.05 and gt["result"]["ic_accuracy"] == 1.0
    text = table.read_text()
    assert "| fine-tuned with CCA | 1 (4 of 4) |" in text and "| fine-tuned without CCA | 0 (0 of 4) |" in text
    assert "Command: `python -m benchmarks.cca_style --init" in text
    # per-scene tallies add up to the totals, and the paired interval line is written from them
    for row in (gt, cca, plain):
        r = row["result"]
        assert [s["id"] for s in r["per_scene"]] == result["scene_ids"]
        assert sum(s["tally"]["all"][1] for s in r["per_scene"]) == r["judged"]["all"]
    assert "With − without CCA, style delusion, 95 % interval from a paired bootstrap over the 2 scenes" in text
    # a second call reuses the finished fine-tunes; other settings in the same --out are refused
    assert main(argv) == 0
    assert main(argv[:3] + ["3"] + argv[4:]) == 2


def test_cca_style_explains_bad_arguments(tmp_path, capsys):
    from benchmarks.cca_style import main
    assert main(["--init", str(tmp_path / "nope"), "--steps", "2", "--out", str(tmp_path)]) == 2
    assert "--init" in capsys.readouterr().out
    (tmp_path / "gen").mkdir()
    assert main(["--init", str(tmp_path / "gen"), "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--steps: 0 must be ≥ 1" in capsys.readouterr().out
