"""The motion and cce stages of the trainer: they train, checkpoint with their config, validate and export what
ships (a motion model folder; cce.safetensors beside library entries + the character encoder). Test-size
models, a few steps."""

import shutil

import pytest
import torch

from pipelines.cce.embedding import CharacterEmbedding
from pipelines.train import checkpoint as ckpt
from pipelines.train.config import TrainConfig
from pipelines.train.trainer import train

from generator_fixtures import one_thread  # noqa: F401


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A test-size generator and motion model saved like the shipped ones."""
    from pipelines.mix.__main__ import init_model
    from pipelines.models.motion import MOTION_TEST, MotionModel
    root = tmp_path_factory.mktemp("models")
    torch.set_num_threads(1)
    init_model(root / "gen", seed=0, size="test")
    torch.manual_seed(0)
    MotionModel(**MOTION_TEST).save_pretrained(root / "motion")
    return root


def test_motion_stage_trains_validates_and_exports(tmp_path):
    from pipelines.models.motion import MotionModel
    from pipelines.train.export import export
    cfg = TrainConfig(stage="motion", model_config="test", batch_size=3, max_steps=3, checkpointing_steps=3,
                      validation_steps=3, log_steps=1, num_workers=0, clip_frames=16, lr_schedule="cosine",
                      output_dir=str(tmp_path / "run"))
    summary = train(cfg)
    assert summary["step"] == 3 and {"position", "pose", "latent", "frequency"} <= set(summary["last"])
    assert ckpt.read_config(summary["checkpoint"])["stage"] == "motion"
    assert (tmp_path / "run" / "validation" / "step_00000003.png").is_file()
    out = export(tmp_path / "run", "final", tmp_path / "motion")
    model = MotionModel.from_pretrained(out)
    kp = model.generate_keypoints("", prompt="[character: Pip] waves.", names=["Pip"], num_frames=8, width=64,
                                  height=64, generator=torch.Generator().manual_seed(0))
    assert kp.shape == (8, 1, 18, 3)
    again = export(tmp_path / "run", "latest", tmp_path / "motion2", fp16=False)
    assert MotionModel.from_pretrained(again).config.behaviour_dim == model.config.behaviour_dim


def test_cce_stage_learns_library_tokens_and_exports_them(tmp_path, models):
    from pipelines.train.export import export
    library = tmp_path / "library"
    shutil.copytree("assets/characters", library)
    cfg = TrainConfig(stage="cce", init=str(models / "gen"), motion_model=str(models / "motion"),
                      library=str(library), size=64, batch_size=2, max_steps=2, checkpointing_steps=2,
                      validation_steps=2, log_steps=1, num_workers=0, cce_views=1, named_fraction=1.0,
                      characters=(1, 2), output_dir=str(tmp_path / "run"))
    summary = train(cfg)
    assert summary["step"] == 2
    assert {"diffusion", "contrastive", "motion", "appearance"} <= set(summary["last"])
    assert (tmp_path / "run" / "validation" / "step_00000002.png").is_file()
    final = tmp_path / "run" / "final"
    written = sorted(p.parent.name for p in (final / "characters").glob("*/cce.safetensors"))
    assert len(written) == 10
    export(tmp_path / "run", "final", library, encoder_out=tmp_path / "encoder")
    from pipelines.library import Library
    from pipelines.mix import MixPipeline
    pipe = MixPipeline.from_pretrained(models / "gen", dtype=torch.float32)
    embs = [CharacterEmbedding.load(c.cce_path) for c in Library(library)]
    assert all(e.usable_with(pipe.context_encoder) for e in embs)
    assert sum(e.provenance["sources"]["clip_frames"] for e in embs) > 0
    assert sum(e.provenance["sources"]["motion_tracks"] for e in embs) > 0
    assert embs[0].config["stage"] == "cce" and embs[0].provenance["init"] == "images"
    from pipelines.models.cce import load_character_encoder
    enc = load_character_encoder(tmp_path / "encoder")
    assert enc(embs[0].identity[None]).shape == (1, embs[0].behaviour.numel())
    # the tokens moved from where they started (the image-derived start is written with step 0's config)
    from pipelines.train.cce_stage import initial_identity
    start = initial_identity(pipe.context_encoder, Library(library), 1, cfg.seed, portrait_size=128)
    assert not torch.allclose(torch.stack([e.identity for e in embs]), start)
    with pytest.raises(ValueError, match="no character"):
        export(tmp_path / "run", "final", tmp_path, encoder_out=tmp_path / "encoder")


def test_cce_stage_needs_a_motion_model(tmp_path, models):
    cfg = TrainConfig(stage="cce", init=str(models / "gen"), motion_model=str(tmp_path / "none"), size=64,
                      max_steps=1, num_workers=0, output_dir=str(tmp_path / "run"))
    with pytest.raises(FileNotFoundError, match="no saved MotionModel"):
        train(cfg)
    with pytest.raises(ValueError, match="--cce_init: unknown 'noise'"):
        TrainConfig(stage="cce", cce_init="noise").check()
