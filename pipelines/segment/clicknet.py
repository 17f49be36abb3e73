"""ClickNet: the small click-conditioned segmentation network behind the offline engine.

Owns the network (an image encoder run once per image, a prompt decoder run once per click, the same
split as SAM's), how clicks and a previous mask are encoded as prompt maps, and loading its weights.
It is trained on the embedded world by ``python -m pipelines.segment.train`` and ships in
``assets/models/clicknet/``; ``pipelines.segment.offline`` turns its output into full-resolution masks.

Shapes (the network always sees a ``size`` × ``size`` view, 256 by default):

    encoder: image (B, 3, S, S) in [0, 1]            → features at S/2, S/4, S/8, S/16
    decoder: features + prompt (B, 3, S, S)          → logits (B, 1, S/2, S/2)
    prompt channels: positive clicks, negative clicks (disks), previous mask probability
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

WEIGHTS_NAME = "clicknet.safetensors"


@dataclass
class ClickNetConfig:
    size: int = 256                              # side of the square view the network sees
    widths: tuple = (16, 24, 32, 64, 96)         # channels at S/2 (stem), S/2, S/4, S/8, S/16
    click_radius: float = 5.0                    # click disk radius in view pixels (RITM uses 5 at ~320)
    # heads of a global self-attention block over the decoder's S/16 cells after the prompt has entered (0: none).
    # Convolutions group what is connected; a character an occluder cuts into pieces needs its far pieces
    # matched by appearance to the clicked one, which is what attention between all cells can do. Its output
    # projection starts at zero, so a network without it loads into one with it and answers the same
    global_attention: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "ClickNetConfig":
        """From ``asdict`` output read back from JSON (widths as a tuple; fields a file predates keep their
        defaults)."""
        return cls(**{**d, "widths": tuple(d.get("widths", cls.widths))})


def _cbr(cin: int, cout: int, stride: int = 1, k: int = 3, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Res(nn.Module):
    def __init__(self, c: int, dilation: int = 1):
        super().__init__()
        self.a = _cbr(c, c, dilation=dilation)
        self.b = nn.Sequential(nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return F.relu(x + self.b(self.a(x)))


class ClickEncoder(nn.Module):
    """Image → features at four scales. Runs once per image (``set_image``)."""

    def __init__(self, cfg: ClickNetConfig):
        super().__init__()
        c0, c1, c2, c3, c4 = cfg.widths
        self.f2 = nn.Sequential(_cbr(3, c0, 2), _cbr(c0, c1))
        self.f4 = nn.Sequential(_cbr(c1, c2, 2), _Res(c2), _Res(c2))
        self.f8 = nn.Sequential(_cbr(c2, c3, 2), _Res(c3), _Res(c3))
        self.f16 = nn.Sequential(_cbr(c3, c4, 2), _Res(c4), _Res(c4, 2))
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (image - self.mean) / self.std
        a = self.f2(x)
        b = self.f4(a)
        c = self.f8(b)
        return a, b, c, self.f16(c)


class GlobalAttention(nn.Module):
    """Pre-norm multi-head self-attention over all cells of a (B, C, h, w) map, added back as a residual
    whose output projection is zero-initialised (an identity at the start of training)."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"global_attention: {heads} heads do not divide {channels} channels")
        self.heads = heads
        self.norm = nn.GroupNorm(1, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)                 # (B, heads, h·w, C / heads)
        return x + self.proj(y.transpose(-1, -2).reshape(B, C, h, w))


class ClickDecoder(nn.Module):
    """Features + prompt maps → mask logits at S/2. The prompt enters at S/4, S/8 and S/16 so a click on
    the torso reaches the feet: at S/16 with dilations 2 and 4 the receptive field spans the whole view."""

    def __init__(self, cfg: ClickNetConfig):
        super().__init__()
        c0, c1, c2, c3, c4 = cfg.widths
        self.p4, self.p8, self.p16 = nn.Conv2d(3, c2, 1), nn.Conv2d(3, c3, 1), nn.Conv2d(3, c4, 1)
        self.x4 = _Res(c2)
        self.d8, self.x8 = _cbr(c2, c3, 2), nn.Sequential(_Res(c3), _Res(c3))
        self.d16, self.x16 = _cbr(c3, c4, 2), nn.Sequential(_Res(c4), _Res(c4, 2), _Res(c4, 4))
        self.attn = GlobalAttention(c4, cfg.global_attention) if cfg.global_attention else nn.Identity()
        self.u8, self.y8 = _cbr(c4, c3, k=1), _Res(c3)
        self.u4, self.y4 = _cbr(c3, c2, k=1), _Res(c2)
        self.y2 = _cbr(c2 + c1, 16)
        self.out = nn.Conv2d(16, 1, 1)

    def forward(self, feats: tuple[torch.Tensor, ...], prompt: torch.Tensor) -> torch.Tensor:
        a, b, c, d = feats
        p4 = F.avg_pool2d(prompt, 4)
        p8 = F.avg_pool2d(p4, 2)
        p16 = F.avg_pool2d(p8, 2)
        x4 = self.x4(b + self.p4(p4))
        x8 = self.x8(c + self.d8(x4) + self.p8(p8))
        x16 = self.attn(self.x16(d + self.d16(x8) + self.p16(p16)))
        y8 = self.y8(self.u8(F.interpolate(x16, size=x8.shape[-2:], mode="nearest")) + x8)
        y4 = self.y4(self.u4(F.interpolate(y8, size=x4.shape[-2:], mode="nearest")) + x4)
        y2 = self.y2(torch.cat([F.interpolate(y4, size=a.shape[-2:], mode="nearest"), a], 1))
        return self.out(y2)


class ClickNet(nn.Module):
    def __init__(self, cfg: ClickNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or ClickNetConfig()
        self.encoder = ClickEncoder(self.cfg)
        self.decoder = ClickDecoder(self.cfg)

    def forward(self, image: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image), prompt)


def prompt_maps(points: np.ndarray, labels: np.ndarray, prev: np.ndarray | None, size: int,
                radius: float) -> np.ndarray:
    """(3, size, size) float32: disks at positive clicks, disks at negative clicks, previous mask
    probability (zeros when there is none). ``points`` (K, 2) are x, y in view pixels."""
    out = np.zeros((3, size, size), np.float32)
    r = max(1, int(round(radius)))
    for (x, y), lab in zip(np.asarray(points, np.float64).reshape(-1, 2), np.asarray(labels).reshape(-1)):
        cv2.circle(out[0 if lab == 1 else 1], (int(round(x)), int(round(y))), r, 1.0, -1)
    if prev is not None:
        out[2] = prev
    return out


def save_clicknet(net: ClickNet, path: str | Path, extra: dict | None = None) -> None:
    """Write the weights as float16 safetensors (half the bytes in the repository; inference upcasts)."""
    from safetensors.torch import save_file
    sd = {k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in net.state_dict().items()}
    meta = {"config": json.dumps(asdict(net.cfg)), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata=meta)


def read_clicknet_metadata(path: str | Path) -> dict:
    """The metadata ``save_clicknet`` wrote (config, step, validation, training configs), JSON-decoded."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as f:
        return {k: json.loads(v) for k, v in (f.metadata() or {}).items()}


def load_clicknet(path: str | Path, device: torch.device | str = "cpu") -> ClickNet:
    """Build a ClickNet from a safetensors file written by ``save_clicknet`` (its config travels in the
    metadata). A file that does not match raises a ValueError naming the file."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ClickNet weights not found: {path}")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        net = ClickNet(ClickNetConfig.from_dict(json.loads(meta["config"])))
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path)).items()}
        net.load_state_dict(sd, strict=True)
    except Exception as e:                            # safetensors, JSON, config or state-dict mismatch
        raise ValueError(f"{path} is not a ClickNet checkpoint this code can read ({type(e).__name__}: {e}); "
                         "retrain it with `python -m pipelines.segment.train`") from None
    return net.to(device).eval()
