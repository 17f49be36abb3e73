"""Where a training step's time goes: rendering the step's samples from the world vs the forward and backward
pass — what a faster data loader could win at most, before anyone builds one.

    python -m benchmarks.train_step generator --init runs/vae-export --batch_size 4 --mixed_precision bf16 \
        [--steps 4] [any other flag of `python -m pipelines.train generator`]

One process, the given threads (default 1), no DataLoader workers: the step's batch is built in the
foreground and timed, then one optimizer step on it is timed (after one warm-up step). Prints seconds per
step for each and the data share.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def measure(cfg, steps: int = 4) -> dict:
    """Seconds per step spent building the batch and in forward + backward + optimizer step (mean over
    ``steps`` batches, after one warm-up step)."""
    from pipelines.train import trainer as T
    torch.set_num_threads(cfg.threads)
    data = T._StepData(cfg, 0, 1, 0)
    t = time.perf_counter()
    batches = [data[i][0] for i in range(steps + 1)]
    data_s = (time.perf_counter() - t) / (steps + 1)
    _, objective, modules = T.training_setup(cfg)
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate)
    bf16 = cfg.mixed_precision == "bf16"

    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = objective(batch)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(batches[0])
    t = time.perf_counter()
    for b in batches[1:]:
        step(b)
    compute_s = (time.perf_counter() - t) / steps
    return {"stage": cfg.stage, "batch_size": cfg.batch_size, "mixed_precision": cfg.mixed_precision,
            "threads": cfg.threads, "data_s_per_step": round(data_s, 4), "compute_s_per_step": round(compute_s, 4),
            "data_share": round(data_s / (data_s + compute_s), 3)}


def main(argv=None) -> int:
    from pipelines.train.__main__ import _parser_for
    from pipelines.train.config import GENERATOR_STAGES, TrainConfig
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in GENERATOR_STAGES:
        print(f"usage: python -m benchmarks.train_step STAGE [--steps N] [trainer flags]; STAGE one of "
              f"{', '.join(GENERATOR_STAGES)}", file=sys.stderr)
        return 2
    stage, rest = argv[0], argv[1:]
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--steps", type=int, default=4)
    mine, rest = own.parse_known_args(rest)
    args = _parser_for(stage).parse_args(rest + ["--num_workers", "0"])
    fields = {k: v for k, v in vars(args).items() if k != "resume_from_checkpoint"}
    cfg = TrainConfig(stage=stage, **fields)
    cfg.check()
    print(json.dumps(measure(cfg, max(1, mine.steps))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
