"""Evaluation: does a crossover video keep every character's identity through swaps, its style and its way
of moving — and how close is it to the ground truth?

    metrics.py      SSIM, PSNR, L1 (ours) and the Fréchet distance
    features.py     LPIPS, FID, FID-VID, FVD with their standard networks, only when the weights are here
    regions.py      where each track's character should be (ground-truth masks or skeleton regions), crops
    probes.py       the identity and style probes (small CNNs trained on world crops) and their storage
    train_probes.py how the probes are trained and measured on held-out ground truth
    descriptors.py  identity descriptors: the probe, or DINOv2 / CLIP when their weights are present
    ic.py           IC accuracy (Hungarian matching of tracks to references), style delusion, pictures
    behaviour.py    behaviour signatures (gait, bounce, arm swing) recovered from keypoints
    benchmark.py    the ICE-mini benchmark: stored scenes, ground-truth hashes, the runner and its table
    video.py        reading / writing videos
    __main__.py     python -m pipelines.eval benchmark | ic | behaviour | train-probes | …

Names are imported lazily so ``import pipelines.eval`` does not load torch.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "ssim": "metrics", "psnr": "metrics", "l1": "metrics", "frechet_distance": "metrics",
    "FeatureMetrics": "features", "Unavailable": "features",
    "Probes": "probes", "get_descriptor": "descriptors",
    "ic_accuracy": "ic", "ICReport": "ic", "Reference": "ic", "evaluate_video": "ic",
    "estimate_behaviour": "behaviour", "nearest_signature": "behaviour", "behaviour_fidelity": "behaviour",
    "Benchmark": "benchmark", "load_model": "benchmark", "run_benchmark": "benchmark", "format_table": "benchmark",
    "benchmark_model": "benchmark", "load_pipeline_folder": "benchmark",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
