"""Text mode end to end: a scene whose motion is text renders through the motion model and the pose-driven
generator (in Python and through ``python -m pipelines.generate``); library characters with learned CCE tokens
read them in the context when they were learned for this generator."""

import json
import shutil

import numpy as np
import pytest
import torch

from pipelines.cce.embedding import CharacterEmbedding, provenance
from pipelines.library import Library
from pipelines.mix import MixPipeline
from pipelines.pose.palette import PALETTE
from pipelines.scene import Scene

from cce_fixtures import shipped_motion  # noqa: F401
from generator_fixtures import make_components, one_thread  # noqa: F401

SIZE, FRAMES = 64, 8


def text_scene(**kw):
    doc = {"version": 1, "characters": [{"id": "pip"}, {"id": "dora"}], "motion": {"text": ""},
           "assignment": [1, 0], "prompt": "[scene-style: cartoon] [character: Pip] chases [character: Dora].",
           "background": {"show": "meadow-mischief"}, "width": SIZE, "height": SIZE, "frames": FRAMES,
           "sampler": {"scheduler": "ddim", "steps": 1, "guidance_scale": 2.0}, "seed": 1}
    doc.update(kw)
    return doc


class Spy:
    """Wraps a motion model and records what the pipeline asked of it."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def generate_keypoints(self, text, **kw):
        self.calls.append(dict(kw, text=text))
        out = self.model.generate_keypoints(text, **kw)
        self.last_warnings = self.model.last_warnings
        return out


def test_a_text_scene_renders(shipped_motion):
    spy = Spy(shipped_motion)
    pipe = MixPipeline(**make_components(), motion_model=spy)
    out = pipe(Scene.from_dict(text_scene()))
    assert out.frames.shape == (FRAMES, SIZE, SIZE, 3) and out.frames.dtype == np.uint8
    (call,) = spy.calls
    assert call["names"] == ["Dora", "Pip"]                 # track order: slot 1 (Dora) performs track 0
    assert call["prompt"].endswith("chases [character: Dora].") and call["num_frames"] == FRAMES
    # each slot's skeleton is drawn in its colour
    g = out.guidance_frames.reshape(-1, 3).astype(int)
    for slot in (0, 1):
        assert (np.abs(g - PALETTE[slot]).sum(1) < 60).sum() > 20
    plain = pipe(Scene.from_dict(text_scene(motion={"text": "[character: Pip] strolls happily."})))
    assert any("'happily'" in w for w in plain.warnings) and any("Dora is not in the text" in w for w in plain.warnings)


def test_generate_cli_renders_a_text_scene(tmp_path, shipped_motion):
    from pipelines.generate import main
    from pipelines.mix.loading import save_pipeline
    save_pipeline(MixPipeline(**make_components()), tmp_path / "model", fp16=False)
    shipped_motion.save_pretrained(tmp_path / "motion")
    (tmp_path / "scene.json").write_text(json.dumps(text_scene()))
    rc = main([str(tmp_path / "scene.json"), "--out", str(tmp_path / "clip.mp4"), "--model", str(tmp_path / "model"),
               "--motion-model", str(tmp_path / "motion"), "--quiet"])
    assert rc == 0 and (tmp_path / "clip.mp4").stat().st_size > 1000
    rc = main([str(tmp_path / "scene.json"), "--out", str(tmp_path / "clip2.mp4"), "--model", str(tmp_path / "model"),
               "--motion-model", str(tmp_path / "nowhere")])
    assert rc == 1


def test_library_characters_read_their_cce_tokens(tmp_path):
    lib_dir = tmp_path / "characters"
    shutil.copytree("assets/characters", lib_dir)
    for p in lib_dir.glob("*/cce.safetensors"):
        p.unlink()
    pipe = MixPipeline(**make_components())
    enc = pipe.context_encoder
    T, D = enc.config.tokens_per_slot, enc.config.context_dim
    scene = Scene.from_dict(text_scene(motion={"template": "swap-2"}, frames=4))
    seen = {}

    def grab(p, i, t, tensors):
        seen["context"] = tensors["context"]
        return {}

    base = pipe(scene, library=Library(lib_dir), callback_on_step_end=grab, callback_on_step_end_tensor_inputs=["context"])
    ctx_images = seen["context"].clone()
    tokens = torch.randn(T, D, generator=torch.Generator().manual_seed(0))
    emb = CharacterEmbedding(tokens, torch.zeros(8), "Pip", "cartoon", "pip", provenance=provenance({}, generator=enc))
    emb.save(lib_dir / "pip" / "cce.safetensors")
    with_cce = pipe(scene, library=Library(lib_dir), callback_on_step_end=grab,
                    callback_on_step_end_tensor_inputs=["context"])
    ctx = seen["context"]
    colour = enc.slot_colour_tokens(torch.tensor([[0]]))[0, 0]
    torch.testing.assert_close(ctx[0, :T], tokens + colour)                       # Pip's slot reads its tokens
    torch.testing.assert_close(ctx[0, T:2 * T], ctx_images[0, T:2 * T])           # Dora's still from her image
    assert not np.array_equal(with_cce.frames, base.frames) and with_cce.warnings == base.warnings
    off = pipe(scene, library=Library(lib_dir), use_cce=False)
    assert np.array_equal(off.frames, base.frames)
    # tokens learned for another generator are not used, and the output says so
    CharacterEmbedding(tokens, torch.zeros(8), "Pip", "cartoon", "pip",
                       provenance={"generator": "0123456789abcdef"}).save(lib_dir / "pip" / "cce.safetensors")
    other = pipe(scene, library=Library(lib_dir))
    assert np.array_equal(other.frames, base.frames)
    assert any("learned for another generator" in w for w in other.warnings)
