"""The shipped probes: their recorded held-out accuracy, what a metric says when a probe is weak, storage,
the training script end to end (tiny), and the losses."""

import numpy as np
import pytest
import torch

from pipelines.eval import train_probes as T
from pipelines.eval.descriptors import FeatureDescriptor, ProbeDescriptor, Unavailable, get_descriptor
from pipelines.eval.probes import TRUST_THRESHOLD, Probes, probes_dir


@pytest.fixture(scope="module")
def shipped():
    return Probes.load()


def test_shipped_probes_report_held_out_accuracy(shipped):
    path = probes_dir() / "probes.safetensors"
    assert path.stat().st_size < 4_000_000
    ident, style = shipped.report["identity"], shipped.report["style"]
    assert ident["accuracy"] >= TRUST_THRESHOLD and style["accuracy"] >= TRUST_THRESHOLD
    assert ident["track_frames"] >= 2000 and ident["skeleton_regions"] >= 0.95
    assert shipped.trust("identity")["trustworthy"] and shipped.trust("style")["trustworthy"]
    # the config that trained them travels with the weights
    assert shipped.train_config["steps"] > 0 and shipped.train_config["seed"] != shipped.train_config["eval_seed"]


def test_weak_probe_says_it_is_not_trustworthy(shipped):
    weak = Probes(shipped.identity, shipped.style, shipped.config, {"identity": {"accuracy": 0.91}})
    t = weak.trust("identity")
    assert not t["trustworthy"] and "NOT TRUSTWORTHY" in t["note"] and "0.910" in t["note"]
    assert not weak.trust("style")["trustworthy"] and "no recorded held-out accuracy" in weak.trust("style")["note"]
    assert ProbeDescriptor(weak).trust()["trustworthy"] is False


def test_save_load_round_trip(shipped, tmp_path):
    path = shipped.save(tmp_path)
    again = Probes.load(path)
    crops = np.random.default_rng(0).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    assert np.allclose(again.embed(crops), shipped.embed(crops), atol=1e-6)
    assert np.allclose(again.live_action_prob(crops), shipped.live_action_prob(crops), atol=1e-6)
    assert again.report == shipped.report
    with pytest.raises(FileNotFoundError, match="train-probes"):
        Probes.load(tmp_path / "nothing")
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"), metadata={"format": "something"})
    with pytest.raises(ValueError, match="not a probe file"):
        Probes.load(tmp_path / "other.safetensors")


def test_training_script_end_to_end_tiny(tmp_path):
    cfg = dict(groups=4, steps=3, warmup=1, chars_per_batch=6, views_per_char=3, style_batch=8, eval_clips=1,
               eval_named_clips=1)
    probes = T.train(cfg, tmp_path, log=lambda *_: None)
    loaded = Probes.load(tmp_path)
    assert loaded.train_config["steps"] == 3 and loaded.train_config["groups"] == 4
    assert set(loaded.report) >= {"identity", "style", "train"}
    assert 0.0 <= loaded.report["identity"]["accuracy"] <= 1.0
    assert probes.embed(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2, 64)


def test_losses_and_augmentation():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    good = torch.nn.functional.normalize(torch.eye(3)[labels] + 0.01, dim=1)
    bad = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    assert T.supcon_loss(good, labels, 0.1) < T.supcon_loss(bad, labels, 0.1)
    x = torch.zeros(4, 3, 64, 64)
    y = T.augment(x, torch.Generator().manual_seed(0), blur=1.0, noise=0.0)
    assert y.shape == x.shape and y.abs().max() < 0.11          # grey stays grey-ish: only gain/bias moved it
    assert T.get_lr(0, T.DEFAULTS) < T.get_lr(T.DEFAULTS["warmup"], T.DEFAULTS)


def test_feature_descriptors_are_offline_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(Unavailable, match="facebook/dinov2-small.*not on this machine"):
        get_descriptor("dinov2")
    with pytest.raises(ValueError, match="unknown"):
        get_descriptor("resnet")
    # a DINOv2 present locally (tiny random one built here) is used as is
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                             image_size=56, patch_size=14)).save_pretrained(tmp_path / "dino")
    BitImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56}).save_pretrained(tmp_path / "dino")
    d = get_descriptor(f"dinov2:{tmp_path / 'dino'}")
    assert isinstance(d, FeatureDescriptor)
    v = d.describe(np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8))
    assert v.shape == (3, 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert d.trust()["trustworthy"] is False and "probe-accuracy" in d.trust()["note"]


def test_probe_accuracy_command_measures_both_probes(capsys):
    """The shipped probes on fresh held-out clips of the *current* world (not only the number recorded at
    training time): identity and style, unseen and named characters."""
    import json
    from pipelines.eval.__main__ import main
    assert main(["probe-accuracy", "--clips", "3", "--named-clips", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    for part in ("unseen", "named"):
        assert res[part]["ic_masks"] >= 0.9 and res[part]["style"] >= 0.9 and res[part]["track_frames"] > 0
