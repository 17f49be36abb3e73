"""benchmarks/segment_bench.py: per-character IoUs written by `quality`, and the paired comparison of two
weights over frames."""

import argparse
import json

import numpy as np
import pytest

from benchmarks import segment_bench


def _file(path, ious_by_frame, size=128):
    rows = [{"engine": "clicknet", "size": size, "frame": f, "show": "s", "style": "cartoon", "iou": iou}
            for f, chars in enumerate(ious_by_frame) for iou in chars]
    path.write_text(json.dumps({"weights": None, "characters": rows}))
    return str(path)


def test_compare_is_paired_over_frames(tmp_path):
    base = [[[0.8, 0.9, 0.95]] * 2 for _ in range(6)]
    better = [[[0.9, 0.9, 0.96]] * 2 for _ in range(6)]
    a, b = _file(tmp_path / "a.json", better), _file(tmp_path / "b.json", base)
    rows = segment_bench.compare(a, b)
    assert [(r["size"], r["clicks"], r["characters"], r["frames"]) for r in rows] == [(128, k, 12, 6) for k in (1, 2, 3)]
    assert rows[0]["diff"] == pytest.approx(0.1) and rows[0]["lo"] == pytest.approx(0.1) and rows[0]["p_above"] == 1
    assert rows[1]["diff"] == pytest.approx(0.0) and rows[2]["diff"] == pytest.approx(0.01)
    with pytest.raises(SystemExit, match="different characters"):
        segment_bench.compare(a, _file(tmp_path / "c.json", base[:5]))


def test_quality_writes_every_character(tmp_path, capsys):
    out = tmp_path / "chars.json"
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--per-character", str(out)])
    table = capsys.readouterr().out
    rows = json.loads(out.read_text())["characters"]
    n = int([line for line in table.splitlines() if line.startswith("| 128 | both")][0].split("|")[3])
    assert len(rows) == n > 0 and all(len(r["iou"]) == 3 and 0 <= min(r["iou"]) <= 1 for r in rows)
    assert all(r["pieces"] >= 1 for r in rows) and "| | by visible pieces: one piece" in table
    mean1 = float([line for line in table.splitlines() if line.startswith("| 128 | both")][0].split("|")[5])
    assert np.mean([r["iou"][0] for r in rows]) == pytest.approx(mean1, abs=6e-4)
    same = segment_bench.compare(str(out), str(out))
    assert all(r["diff"] == 0 for r in same)


def test_quality_box_protocol_starts_from_the_box(tmp_path, capsys):
    """``--prompt box``: the file says so, the table's columns name the box, and the first answers are the box's
    (not the first click's): same characters, other IoUs."""
    clicks, boxed = tmp_path / "clicks.json", tmp_path / "box.json"
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--per-character", str(clicks)])
    capsys.readouterr()
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--prompt", "box",
                        "--per-character", str(boxed)])
    table = capsys.readouterr().out
    assert "| box | box + 1 click | box + 2 clicks |" in table and "(box / box + 2 clicks)" in table
    a, b = json.loads(clicks.read_text()), json.loads(boxed.read_text())
    assert a["prompt"] == "clicks" and b["prompt"] == "box"
    assert [(r["frame"], r["pieces"]) for r in a["characters"]] == [(r["frame"], r["pieces"]) for r in b["characters"]]
    assert [r["iou"][0] for r in a["characters"]] != [r["iou"][0] for r in b["characters"]]


def test_quality_world_seed_picks_other_frames_and_compare_refuses_mixed_worlds(tmp_path, capsys):
    """``--world-seed``: the held-out world is a flag, recorded in the file; two worlds are never paired."""
    bench, held = tmp_path / "bench.json", tmp_path / "held.json"
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--per-character", str(bench)])
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--world-seed", "777",
                        "--per-character", str(held)])
    capsys.readouterr()
    fb, fh = json.loads(bench.read_text()), json.loads(held.read_text())
    assert (fb["world_seed"], fh["world_seed"]) == (segment_bench.SEED, 777)
    assert [r["iou"] for r in fb["characters"]] != [r["iou"] for r in fh["characters"]]
    with pytest.raises(SystemExit, match="different worlds"):
        segment_bench.compare(str(bench), str(held))
    assert all(r["diff"] == 0 for r in segment_bench.compare(str(held), str(held)))


def test_quality_pools_several_worlds_with_an_interval(tmp_path, capsys):
    """``--world-seed A B``: one benchmark over both worlds' frames (each frame once, tagged with its world), a
    per-world line and a 95 % interval over frames under the table; paired only with a file of the same worlds."""
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--world-seed", "777",
                        "--per-character", str(one)])
    capsys.readouterr()
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--world-seed", "2026", "777",
                        "--per-character", str(two)])
    table = capsys.readouterr().out
    fo, ft = json.loads(one.read_text()), json.loads(two.read_text())
    assert ft["world_seed"] == [2026, 777]
    held = [r for r in ft["characters"] if r["world"] == 777]
    assert [r["iou"] for r in held] == [r["iou"] for r in fo["characters"]]
    assert len({r["frame"] for r in ft["characters"]}) == 8                 # 4 shows × 1 clip × 2 worlds
    assert {r["frame"] for r in held}.isdisjoint({r["frame"] for r in ft["characters"] if r["world"] == 2026})
    assert "| | per world: 2026 (" in table and ", 777 (" in table
    line = [x for x in table.splitlines() if x.startswith("| | 95 % interval over the 8 frames: 1 click [")][0]
    lo, hi = (float(v) for v in line.split("1 click [")[1].split("]")[0].split(", "))
    assert lo <= np.mean([r["iou"][0] for r in ft["characters"]]) <= hi
    with pytest.raises(SystemExit, match="different worlds"):
        segment_bench.compare(str(two), str(one))
    assert all(r["diff"] == 0 for r in segment_bench.compare(str(two), str(two)))


def test_census_counts_the_characters_quality_scores_and_those_cut_into_pieces(tmp_path, capsys):
    """``census``: per world, the characters ``quality`` would score and how many are cut into pieces — the same
    counts as the ``pieces`` field of a quality run's rows."""
    chars = tmp_path / "chars.json"
    segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--world-seed", "777",
                        "--per-character", str(chars)])
    capsys.readouterr()
    rows = json.loads(chars.read_text())["characters"]
    args = argparse.Namespace(sizes=[128], clips_per_show=1, world_seed=[777, 2026], min_area=20.0)
    out = segment_bench.census(args)
    assert [(r["size"], r["world"]) for r in out] == [(128, 777), (128, 2026)]
    assert out[0]["characters"] == len(rows) and out[0]["cut"] == sum(r["pieces"] >= 2 for r in rows)
    assert "| 128 | all 2 |" in capsys.readouterr().out


def test_pool_joins_disjoint_worlds_like_one_run_and_refuses_mixed_files(tmp_path, capsys):
    """``pool``: two one-world files become the file a two-world run writes (same characters, IoUs, worlds and
    frame numbers), so pooled files pair with ``compare``; mixed settings or a shared world are refused."""
    one, two, both, pooled = (tmp_path / f"{n}.json" for n in ("one", "two", "both", "pooled"))
    for path, seeds in ((one, ["2026"]), (two, ["777"]), (both, ["2026", "777"])):
        segment_bench.main(["quality", "--clips-per-show", "1", "--sizes", "128", "--world-seed", *seeds,
                            "--per-character", str(path)])
    capsys.readouterr()
    segment_bench.main(["pool", str(one), str(two), "--per-character", str(pooled)])
    table = capsys.readouterr().out
    fp, fb = json.loads(pooled.read_text()), json.loads(both.read_text())
    assert fp["world_seed"] == fb["world_seed"] == [2026, 777]
    assert fp["characters"] == fb["characters"]
    assert all(r["diff"] == 0 for r in segment_bench.compare(str(pooled), str(both)))
    row = [x for x in table.splitlines() if x.startswith("| 128 |")][0].split("|")
    assert int(row[2]) == len(fb["characters"]) and int(row[3]) == 8
    mean1, lo, hi = (float(v) for v in row[4].replace("[", "").replace("]", "").replace(",", "").split())
    assert mean1 == pytest.approx(np.mean([r["iou"][0] for r in fb["characters"]]), abs=6e-5) and lo <= mean1 <= hi
    with pytest.raises(SystemExit, match="share a world"):
        segment_bench.pool([str(one), str(both)], str(tmp_path / "x.json"))
    other = json.loads(two.read_text())
    (tmp_path / "other.json").write_text(json.dumps({**other, "weights": "elsewhere.safetensors"}))
    with pytest.raises(SystemExit, match="other weights"):
        segment_bench.pool([str(one), str(tmp_path / "other.json")], str(tmp_path / "x.json"))
