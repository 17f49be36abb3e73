"""LPIPS / FID / FID-VID / FVD: "unavailable" with the missing file named when weights are absent; the real
networks load checkpoints in their published formats (built here with random weights) when present."""

import numpy as np
import pytest
import torch

from pipelines.eval import features as Fe
from pipelines.world import World

SMALL = {"FID": 75, "FID-VID": 16, "FVD": 32}      # small inputs keep the full-size networks quick on CPU


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CROSSOVER_METRIC_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("CROSSOVER_ASSETS", str(tmp_path / "assets"))
    return tmp_path


def test_missing_weights_say_which_file(no_weights):
    status = Fe.FeatureMetrics().status()
    assert set(status) == {"LPIPS", "FID", "FID-VID", "FVD"}
    assert "alexnet-owt-7be5be79.pth" in status["LPIPS"]
    assert "pt_inception-2015-12-05-6726825d.pth" in status["FID"]
    assert "resnet-50-kinetics.pth" in status["FID-VID"]
    assert "i3d_pretrained_400.pt" in status["FVD"]
    assert all("unavailable" in v and str(no_weights) in v for v in status.values())
    with pytest.raises(Fe.Unavailable, match="FVD unavailable"):
        Fe.FeatureMetrics().fvd([np.zeros((16, 32, 32, 3), np.uint8)] * 2, [np.zeros((16, 32, 32, 3), np.uint8)] * 2)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Every network in its published checkpoint format, random weights, saved under the standard names."""
    d = tmp_path_factory.mktemp("metric-weights")
    torch.manual_seed(0)
    half = lambda sd: {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    alex = {k: v for k, v in half(Fe.LPIPS().state_dict()).items() if k.startswith("features.")}
    alex["classifier.1.weight"] = torch.zeros(8, 8)            # torchvision's file also holds the classifier
    torch.save(alex, d / Fe.ALEXNET_FILE)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(Fe.LPIPS.CHANNELS)},
               d / "lpips_alex_v0.1.pth")
    torch.save(half(Fe.InceptionFeatures(fid=True).net.state_dict()), d / Fe.FID_FILE)
    # Hara et al.'s checkpoints wrap a DataParallel state dict with training bookkeeping
    r3d = {"module." + k: v for k, v in half(Fe.ResNet3D50().state_dict()).items()}
    r3d["module.fc.weight"], r3d["module.fc.bias"] = torch.zeros(400, 2048).half(), torch.zeros(400).half()
    torch.save({"epoch": 200, "arch": "resnet-50", "state_dict": r3d}, d / Fe.RESNET3D_FILE)
    torch.save(half(Fe.InceptionI3d().state_dict()), d / Fe.I3D_FILE)
    return d


@pytest.fixture(scope="module")
def videos():
    w = World(0, size=64, frames=16)
    return [w.clip(i, n_characters=2).frames for i in range(3)]


def _short(videos):
    return [v[::6] for v in videos]                # 3 frames each: enough for the frame-level FID plumbing


def test_networks_load_published_formats_and_measure(weights, videos, monkeypatch):
    monkeypatch.setenv("CROSSOVER_METRIC_WEIGHTS", str(weights))
    fm = Fe.FeatureMetrics(sizes=SMALL)
    assert fm.status() == {"LPIPS": None, "FID": None, "FID-VID": None, "FVD": None}
    a, b = videos[0], videos[1]
    assert fm.lpips(a, a) == pytest.approx(0.0, abs=1e-6)
    assert fm.lpips(a, b) > 0.01
    assert fm.describe("FID") == "FID"            # the TF-FID graph, not the torchvision substitute
    for name, fn, vids in (("FID", fm.fid, _short(videos)), ("FID-VID", fm.fid_vid, videos), ("FVD", fm.fvd, videos)):
        same = fn(vids[:2], vids[:2])
        assert same == pytest.approx(0.0, abs=1e-3), name
        assert np.isfinite(fn(vids[:2], vids[1:])), name
    feats = fm.clip_features("FVD", [np.concatenate([a, a[:5]])])
    assert feats.shape == (2, 400)                 # 21 frames: two 16-frame clips, the last padded


def test_checkpoint_of_the_wrong_network_is_refused(weights, tmp_path, monkeypatch):
    import shutil
    shutil.copy(weights / Fe.I3D_FILE, tmp_path / Fe.RESNET3D_FILE)
    monkeypatch.setenv("CROSSOVER_METRIC_WEIGHTS", str(tmp_path))
    with pytest.raises(RuntimeError, match="state_dict"):
        Fe.ResNet3D50.from_local()
