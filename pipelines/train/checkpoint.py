"""Training checkpoints: safetensors only, written atomically, with the full config inside.

A checkpoint is a folder ``<run>/checkpoints/step_00001200/`` holding

    model.safetensors      the trainable modules' weights (``<module>.<param>`` keys); metadata: config JSON
    optimizer.safetensors  the optimizer state flattened to tensors; metadata: param-group settings
    state.json             step, samples seen, config, RNG state — everything needed to continue exactly

It is written to ``step_….tmp`` and renamed into place, so a crash (even SIGKILL) mid-write never leaves a
half checkpoint that ``latest`` would pick. Older checkpoints beyond ``keep`` are removed after a
successful write.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

_STEP = re.compile(r"^step_(\d{8})$")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    d = Path(run_dir) / "checkpoints"
    if not d.is_dir():
        return []
    return sorted((p for p in d.iterdir() if p.is_dir() and _STEP.match(p.name)), key=lambda p: p.name)


def resolve(run_dir: str | Path, which: str | None) -> Path | None:
    """``which`` = "latest", a checkpoint folder, or None. Returns the folder or None (nothing to resume)."""
    if which is None:
        return None
    if which == "latest":
        cks = list_checkpoints(run_dir)
        return cks[-1] if cks else None
    p = Path(which)
    if not (p / "state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint: {which} is not a checkpoint folder (no state.json); "
                         "use 'latest' or a path like runs/NAME/checkpoints/step_00001000")
    return p


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save(run_dir: str | Path, step: int, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None,
         state: dict, keep: int = 3) -> Path:
    """Write checkpoint ``step`` atomically; return its folder."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f"step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in modules.items()
               for k, v in m.state_dict().items()}
    cfg = json.dumps(state.get("config", {}))
    save_file(weights, tmp / "model.safetensors", metadata={"config": cfg, "step": str(step)})
    if optimizer is not None:
        tensors, meta = _flatten_optimizer(optimizer)
        save_file(tensors, tmp / "optimizer.safetensors", metadata={"meta": json.dumps(meta)})
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, indent=1))
    for f in tmp.iterdir():                      # make the bytes durable before the rename publishes them
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load(folder: str | Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer | None = None,
         strict: bool = True) -> dict:
    """Load weights (and optimizer state) from a checkpoint folder into ``modules``; return its state.json."""
    folder = Path(folder)
    weights = load_file(folder / "model.safetensors")
    for name, m in modules.items():
        prefix = name + "."
        sd = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        if not sd and strict:
            raise ValueError(f"checkpoint {folder} has no weights for module {name!r}; it was saved by another stage "
                             f"(modules in it: {sorted({k.split('.', 1)[0] for k in weights})})")
        try:
            missing, unexpected = m.load_state_dict(sd, strict=False)
        except RuntimeError as e:              # shape mismatches: torch raises before reporting keys
            raise ValueError(f"checkpoint {folder}: module {name!r} does not match this model ({e}); "
                             "was the config changed?") from None
        if strict and (missing or unexpected):
            raise ValueError(f"checkpoint {folder}: module {name!r} does not match this model "
                             f"(missing {missing[:5]}…, unexpected {unexpected[:5]}…); was the config changed?")
    if optimizer is not None and (folder / "optimizer.safetensors").is_file():
        from safetensors import safe_open
        with safe_open(folder / "optimizer.safetensors", "pt") as f:
            meta = json.loads(f.metadata()["meta"])
        optimizer.load_state_dict(_unflatten_optimizer(load_file(folder / "optimizer.safetensors"), meta))
    return json.loads((folder / "state.json").read_text())


def read_config(folder: str | Path) -> dict:
    """The training config stored inside a checkpoint (from the safetensors metadata)."""
    from safetensors import safe_open
    with safe_open(Path(folder) / "model.safetensors", "pt") as f:
        return json.loads(f.metadata()["config"])
