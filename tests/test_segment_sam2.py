"""The SAM2 path end to end, with a model built from sam2's own tiny config and random weights (written as
a checkpoint and loaded back the way real weights are): shapes, several objects, refinement, boxes, video
propagation, Hugging Face cache lookup, and clear errors for checkpoints that do not fit.

The model runs at a 256-pixel input (``sam2_image_size``) to keep the tests fast on CPU; the code path is
the one real weights take at 1024."""

import numpy as np
import pytest
import torch

from pipelines.segment import Segmenter

SIZE = 256


@pytest.fixture(scope="module")
def tiny_state():
    from sam2.build_sam import build_sam2
    torch.manual_seed(0)
    net = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", apply_postprocessing=False)
    return net.state_dict()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, tiny_state):
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": tiny_state}, path)
    return path


@pytest.fixture(scope="module")
def seg(ckpt):
    return Segmenter(backend="sam2", model=str(ckpt), device="cpu", sam2_image_size=SIZE)


@pytest.fixture(scope="module")
def clip(world):
    return world.clip(3, n_characters=2, motion="walk", size=96, frames=3)


def test_sam2_backend_predicts_several_objects_with_refinement(seg, clip):
    assert seg.backend == "sam2" and "sam2.1_hiera_tiny.pt" in seg.status
    img = clip.frames[0]
    H, W = img.shape[:2]
    seg.set_image(img)
    for m in clip.masks[0]:                               # each object: its own clicks, its own logits
        ys, xs = np.nonzero(m)
        pts = [(int(xs.mean()), int(ys.mean()))]
        masks, scores, low = seg.predict(points=pts, labels=[1], multimask=True)
        assert masks.shape == (3, H, W) and masks.dtype == bool
        assert scores.shape == (3,) and low.shape == (3, 256, 256) and low.dtype == np.float32
        best = int(np.argmax(scores))
        masks, scores, low2 = seg.predict(points=pts + [(2, 2)], labels=[1, 0], mask_input=low[best:best + 1])
        assert masks.shape == (1, H, W) and scores.shape == (1,) and low2.shape == (1, 256, 256)
        assert not np.allclose(low2[0], low[best])        # the refinement input changed the answer
    masks, _, _ = seg.predict(box=(10, 10, 60, 80))
    assert masks.shape == (1, H, W)
    seg.reset()
    with pytest.raises(RuntimeError, match="set_image"):
        seg.predict(points=[(5, 5)], labels=[1])


def test_sam2_propagates_masks_through_a_clip(seg, clip):
    masks = clip.masks[1]
    tracks = seg.propagate(clip.frames, 1, masks)
    assert tracks.shape == (3, 2) + masks.shape[1:] and tracks.dtype == bool
    assert (tracks[1] == masks).all()
    assert tracks.sum(1).max() <= 1                        # never two objects on one pixel
    empty = seg.propagate(clip.frames, 0, np.zeros_like(masks))
    assert not empty.any()


def test_sam2_by_hugging_face_id_from_the_cache(tmp_path, monkeypatch, ckpt):
    from huggingface_hub import constants
    snap = tmp_path / "models--facebook--sam2.1-hiera-tiny" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap / "sam2.1_hiera_tiny.pt").symlink_to(ckpt)
    (tmp_path / "models--facebook--sam2.1-hiera-tiny" / "refs").mkdir()
    (tmp_path / "models--facebook--sam2.1-hiera-tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    s = Segmenter(model="facebook/sam2.1-hiera-tiny", device="cpu", sam2_image_size=SIZE)
    assert s.backend == "sam2"
    assert s.status.startswith("SAM2 facebook/sam2.1-hiera-tiny (sam2.1_hiera_tiny.pt)")


def test_checkpoints_that_do_not_fit_get_clear_errors(tmp_path, tiny_state):
    bad = dict(tiny_state)
    key = next(k for k, v in bad.items() if v.ndim == 2)
    bad[key] = torch.zeros(3, 3)
    del bad[next(k for k in bad if k.startswith("sam_mask_decoder"))]
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": bad}, path)
    with pytest.raises(ValueError, match=r"does not match the SAM2 configuration .*sam2.1_hiera_t.yaml: 1 tensors of "
                                         r"another shape .*; 1 missing"):
        Segmenter(backend="sam2", model=str(path), sam2_image_size=SIZE)
    odd = tmp_path / "my_model.pt"
    torch.save({"model": tiny_state}, odd)
    with pytest.raises(ValueError, match="cannot tell which SAM2 configuration"):
        Segmenter(backend="sam2", model=str(odd))
    junk = tmp_path / "sam2.1_hiera_small.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        Segmenter(backend="sam2", model=str(junk))
