"""Model housekeeping for the generator:

    python -m pipelines.mix init --out assets/models/tiny --seed 0 [--mode end2end] [--size tiny|test]
        a random-initialised model (VAE latent scale calibrated on world frames), saved in fp16 safetensors
    python -m pipelines.mix info [PATH]
        parameters per module and bytes on disk of a saved model (default: the one the CLI would use)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .loading import save_pipeline
from ..models.configs import MODES, TEST, TINY, build_components, calibrate_vae_scale, count_parameters


def world_frames(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """n frames of the embedded world (N, 3, size, size) in [-1, 1]: what the VAE scale is calibrated on."""
    from ..world import World
    world = World(seed, size=size, frames=1)
    frames = np.stack([world.clip(i).frames[0] for i in range(n)])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1


def init_model(out: str | Path, *, seed: int = 0, mode: str = "end2end", size: str = "tiny",
               dtype: torch.dtype = torch.float16):
    """Build, calibrate and save a fresh model; returns the pipeline (in fp32)."""
    from .pipeline_mix import MixPipeline
    cfg = {"tiny": TINY, "test": TEST}[size]
    comps = build_components(cfg, seed=seed, mode=mode)
    calibrate_vae_scale(comps["vae"], world_frames(8, cfg.sample_size, seed))
    pipe = MixPipeline(**comps, plain_skeleton=mode == "plain", masked_reference_attention=mode == "end2end-m")
    save_pipeline(pipe, out, fp16=dtype == torch.float16)
    return pipe


def model_info(path: str | Path | None = None) -> dict:
    from .loading import load_pipeline, resolve_model
    folder = resolve_model(path)
    pipe = load_pipeline(folder)
    params = count_parameters(pipe.components)
    files = sorted(folder.rglob("*.safetensors"))
    return {"path": str(folder), "mode": pipe.mode, "parameters": params,
            "bytes_on_disk": {str(f.relative_to(folder)): f.stat().st_size for f in files},
            "total_bytes": sum(f.stat().st_size for f in files),
            "vae_scaling_factor": pipe.vae.config.scaling_factor,
            "reference_layers": pipe.denoiser.reference_layers}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.mix", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="write a random-initialised model")
    p.add_argument("--out", required=True, help="folder to write (e.g. assets/models/tiny)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=MODES, default="end2end", help="guidance mode the model is built for")
    p.add_argument("--size", choices=("tiny", "test"), default="tiny")
    p = sub.add_parser("info", help="parameters and size of a saved model")
    p.add_argument("path", nargs="?", default=None)
    args = parser.parse_args(argv)
    if args.command == "init":
        pipe = init_model(args.out, seed=args.seed, mode=args.mode, size=args.size)
        print(json.dumps({"out": args.out, "mode": pipe.mode, "parameters": count_parameters(pipe.components)},
                         indent=1))
    else:
        print(json.dumps(model_info(args.path), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
