"""benchmarks/train_step.py: a step's time split into building the batch and training on it. Test-size
generator, 64-pixel samples, one timed step."""

import json

from generator_fixtures import one_thread  # noqa: F401


def test_train_step_splits_data_and_compute(tmp_path, capsys):
    from benchmarks.train_step import main
    from pipelines.mix.__main__ import init_model
    init_model(tmp_path / "gen", seed=0, size="test")
    argv = ["generator", "--init", str(tmp_path / "gen"), "--size", "64", "--batch_size", "2", "--steps", "1",
            "--output_dir", str(tmp_path / "out"), "--mixed_precision", "bf16"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["stage"] == "generator" and r["batch_size"] == 2 and r["mixed_precision"] == "bf16"
    assert r["data_s_per_step"] > 0 and r["compute_s_per_step"] > 0 and 0 < r["data_share"] < 1
    assert not (tmp_path / "out").exists()                    # measuring writes no run
    assert main(["motion"]) == 2 and "STAGE one of" in capsys.readouterr().err
