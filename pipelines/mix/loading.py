"""Finding the generator's weights (DESIGN §6): an explicit path → ``assets/models/tiny`` → the Hugging Face
cache → a download (skipped when ``HF_HUB_OFFLINE=1``). Each fallback says what it looked for and what it
uses instead; when nothing is found the error says how to build the embedded model."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from ..paths import models_dir

logger = logging.getLogger(__name__)

DEFAULT_NAME = "tiny"                               # assets/models/<name>
DEFAULT_REPO = "crossover-studio/mix-tiny"         # where the trained embedded model is published
INIT_COMMAND = "python -m pipelines.mix init --out assets/models/tiny --seed 0"


class ModelNotFoundError(FileNotFoundError):
    """No generator weights anywhere we are allowed to look."""


def _is_model(path: Path) -> bool:
    return (path / "model_index.json").is_file()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_model(path: str | Path | None = None, *, repo: str = DEFAULT_REPO) -> Path:
    """The folder of a saved ``MixPipeline``. See the module docstring for the order."""
    if path is not None:
        p = Path(path)
        if not _is_model(p):
            raise ModelNotFoundError(f"model: {p} is not a saved MixPipeline (no model_index.json there); pass the "
                                     f"folder written by save_pretrained or `{INIT_COMMAND}`")
        return p
    local = models_dir() / DEFAULT_NAME
    if _is_model(local):
        return local
    tried = [f"{local} has no model_index.json"]
    from huggingface_hub import snapshot_download
    try:
        cached = Path(snapshot_download(repo, local_files_only=True))
        if _is_model(cached):
            logger.warning("no model in %s; using the Hugging Face cache copy of %s (%s)", local, repo, cached)
            return cached
    except Exception as e:                      # not cached (LocalEntryNotFoundError and friends)
        tried.append(f"{repo} is not in the Hugging Face cache ({type(e).__name__})")
    if _offline():
        tried.append(f"downloading {repo} is off (HF_HUB_OFFLINE=1)")
    else:
        try:
            downloaded = Path(snapshot_download(repo))
            if _is_model(downloaded):
                logger.warning("no model in %s; downloaded %s to %s", local, repo, downloaded)
                return downloaded
            tried.append(f"{repo} has no model_index.json")
        except Exception as e:
            tried.append(f"downloading {repo} failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    raise ModelNotFoundError("no generator model found: " + "; ".join(tried) +
                             f". Build the embedded model with `{INIT_COMMAND}` or pass a model folder.")


def load_pipeline(path: str | Path | None = None, *, device: str | torch.device | None = None,
                  dtype: torch.dtype = torch.float32):
    """``MixPipeline.from_pretrained(resolve_model(path))`` — weights stored in fp16 load as ``dtype``."""
    from .pipeline_mix import MixPipeline
    pipe = MixPipeline.from_pretrained(resolve_model(path), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device) if device is not None else pipe


def save_pipeline(pipe, out: str | Path, *, fp16: bool = True) -> Path:
    """Save a pipeline as safetensors — fp16 by default (half the bytes; ``load_pipeline`` reads it back as
    fp32) — and leave ``pipe`` in fp32."""
    from diffusers.utils import logging as dlogging
    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()          # casting a whole pipeline with .to() warns once per module
    try:
        pipe.to(dtype=torch.float16 if fp16 else torch.float32)
        pipe.save_pretrained(out, safe_serialization=True)
    finally:
        pipe.to(dtype=torch.float32)
        dlogging.set_verbosity(level)
    return Path(out)


__all__ = ["save_pipeline", "resolve_model", "load_pipeline", "ModelNotFoundError", "DEFAULT_REPO", "DEFAULT_NAME", "INIT_COMMAND"]
