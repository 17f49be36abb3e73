"""Feature-network metrics of EverybodyDance Table 1 — LPIPS, FID, FID-VID, FVD — with their standard
networks, used only when those weights are already on this machine.

| metric  | network (as DisCo / EverybodyDance compute it)          | weights file(s)                                   |
|---------|---------------------------------------------------------|---------------------------------------------------|
| LPIPS   | AlexNet features + LPIPS v0.1 linear heads              | alexnet-owt-7be5be79.pth, lpips v0.1 ``alex.pth`` |
| FID     | Inception-v3 pool features (2048), frames at 299×299    | pt_inception-2015-12-05-6726825d.pth (pytorch-fid |
|         |                                                         | port of TF-FID), else torchvision's ImageNet one  |
| FID-VID | 3D ResNet-50 (Kinetics) pool features, 16 × 112 × 112   | resnet-50-kinetics.pth                            |
| FVD     | I3D (Kinetics-400) logits, 16 × 224 × 224               | i3d_pretrained_400.pt                             |

Weights are looked for, in order, in ``$CROSSOVER_METRIC_WEIGHTS`` (folders separated by ``os.pathsep``),
``assets/models/metrics/`` and the torch hub cache (``torch.hub.get_dir()/checkpoints``); LPIPS heads also
in an installed ``lpips`` package. Nothing is downloaded. A metric whose weights are missing raises
``Unavailable`` naming the missing file and where to put it — the benchmark table then prints
"unavailable", never a number from a substitute network. Checkpoints load with
``torch.load(weights_only=True)``.

The networks are written out here (torchvision for AlexNet / Inception-v3; the 3D ResNet-50 and I3D
following the published layouts so their checkpoints load key for key); final poolings are adaptive, which
equals the published fixed-size pooling at the standard input sizes and lets tests run small inputs.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..paths import models_dir
from .metrics import frechet_from_features


class Unavailable(RuntimeError):
    """A metric's weights are not on this machine; the message names what is missing and how to get it."""


def weight_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("CROSSOVER_METRIC_WEIGHTS", "").split(os.pathsep) if p]
    dirs.append(models_dir() / "metrics")
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_weight(*names: str) -> Path | None:
    for d in weight_dirs():
        for n in names:
            if (d / n).is_file():
                return d / n
    return None


def _missing(metric: str, what: str, files: list[str]) -> Unavailable:
    where = ", ".join(str(d) for d in weight_dirs())
    return Unavailable(f"{metric} unavailable: {what} not found (looked for {' or '.join(files)} in {where}); "
                       f"copy the file into one of those folders (or set CROSSOVER_METRIC_WEIGHTS)")


def _build_and_load(cls, path: Path, state: dict | None = None, *args):
    """``cls(*args)`` with the checkpoint's tensors: built on the meta device and the weights assigned, so
    the (large) random initialisation that would be overwritten anyway is never computed."""
    with torch.device("meta"):
        m = cls(*args)
    target = m.net if isinstance(m, InceptionFeatures) else m
    target.load_state_dict(_load(path) if state is None else state, assign=True)
    return m.eval()


def _load(path: Path) -> dict:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    return {k.removeprefix("module."): v.float() if v.is_floating_point() else v
            for k, v in obj.items() if torch.is_tensor(v)}


# ---------------------------------------------------------------------------------------------------
# LPIPS (Zhang et al. 2018), AlexNet variant v0.1
# ---------------------------------------------------------------------------------------------------
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_FILES = ("lpips_alex_v0.1.pth", "alex.pth")


class LPIPS(nn.Module):
    CHANNELS = (64, 192, 384, 256, 256)
    SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))      # AlexNet features up to relu1 … relu5

    def __init__(self):
        super().__init__()
        # torchvision's AlexNet ``features`` layer for layer (its checkpoint's "features.N" keys load as they
        # are); the classifier is never used, so it is not built
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] → (B,) distances."""
        fa, fb = (a - self.shift) / self.scale, (b - self.shift) / self.scale
        total = 0
        for (lo, hi), lin in zip(self.SLICES, self.lins):
            fa, fb = self.features[lo:hi](fa), self.features[lo:hi](fb)
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((na - nb) ** 2).mean((2, 3))[:, 0]
        return total

    @classmethod
    def from_local(cls) -> "LPIPS":
        alex = find_weight(ALEXNET_FILE)
        if alex is None:
            raise _missing("LPIPS", "torchvision AlexNet weights", [ALEXNET_FILE])
        lin = find_weight(*LPIPS_FILES)
        if lin is None:
            spec = importlib.util.find_spec("lpips")
            cand = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth" if spec and spec.origin else None
            lin = cand if cand is not None and cand.is_file() else None
        if lin is None:
            raise _missing("LPIPS", "LPIPS v0.1 linear heads (the lpips package's weights/v0.1/alex.pth)",
                           list(LPIPS_FILES))
        m = cls()
        feats = {k.removeprefix("features."): v for k, v in _load(alex).items() if k.startswith("features.")}
        m.features.load_state_dict(feats)
        heads = _load(lin)
        for i, l in enumerate(m.lins):
            l.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
        return m.eval()


# ---------------------------------------------------------------------------------------------------
# FID: Inception-v3 pool features
# ---------------------------------------------------------------------------------------------------
FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
TV_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"


def _fid_blocks():
    from torchvision.models import inception as tv

    class FIDInceptionA(tv.InceptionA):
        def _forward(self, x):              # TF's average pool ignores padding
            out = super()._forward(x)
            out[-1] = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return out

    class FIDInceptionC(tv.InceptionC):
        def _forward(self, x):
            out = super()._forward(x)
            out[-1] = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return out

    class FIDInceptionE1(tv.InceptionE):
        def _forward(self, x):
            out = super()._forward(x)
            out[-1] = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
            return out

    class FIDInceptionE2(tv.InceptionE):
        def _forward(self, x):              # the last block of TF's graph max-pools
            out = super()._forward(x)
            out[-1] = self.branch_pool(F.max_pool2d(x, 3, 1, 1))
            return out

    return tv, FIDInceptionA, FIDInceptionC, FIDInceptionE1, FIDInceptionE2


class InceptionFeatures(nn.Module):
    """Inception-v3 → 2048-d pool features of RGB frames. ``fid=True``: the TF-FID graph (pytorch-fid's
    port, 1008 classes, inputs in [-1, 1]); else torchvision's ImageNet network (ImageNet normalisation)."""

    def __init__(self, fid: bool = True):
        super().__init__()
        tv, A, C, E1, E2 = _fid_blocks()
        self.fid = fid
        if fid:
            blocks = [tv.BasicConv2d, A, tv.InceptionB, C, tv.InceptionD, E1, tv.InceptionAux]
            self.net = tv.Inception3(num_classes=1008, aux_logits=False, transform_input=False,
                                     init_weights=False, inception_blocks=blocks)
            self.net.Mixed_7c = E2(2048)
        else:
            self.net = tv.Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)

    def forward(self, x: torch.Tensor, size: int = 299) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → (B, 2048)."""
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        if self.fid:
            x = 2 * x - 1
        else:                                                   # ImageNet normalisation
            x = (x - x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
                x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        n = self.net
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                     "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        return x.mean((2, 3))

    @classmethod
    def from_local(cls) -> "InceptionFeatures":
        path = find_weight(FID_FILE)
        fid = path is not None
        path = path or find_weight(TV_INCEPTION_FILE)
        if path is None:
            raise _missing("FID", "Inception-v3 weights", [FID_FILE, TV_INCEPTION_FILE])
        m = _build_and_load(cls, path, None, fid)
        m.source = path.name
        return m


# ---------------------------------------------------------------------------------------------------
# FID-VID: 3D ResNet-50 (Hara et al., Kinetics), shortcut B — DisCo's "FVD-3DRN50"
# ---------------------------------------------------------------------------------------------------
RESNET3D_FILE = "resnet-50-kinetics.pth"


class Bottleneck3D(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv3d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet3D50(nn.Module):
    """Clips (B, 3, T, H, W), pixel values minus the Kinetics mean → (B, 2048) pool features."""
    PIXEL_MEAN = (114.7748, 107.7354, 99.4750)

    def __init__(self, layers=(3, 4, 6, 3)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv3d(3, 64, 7, (1, 2, 2), 3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        self.layer1 = self._layer(64, layers[0], 1)
        self.layer2 = self._layer(128, layers[1], 2)
        self.layer3 = self._layer(256, layers[2], 2)
        self.layer4 = self._layer(512, layers[3], 2)

    def _layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv3d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm3d(planes * 4))
        mods = [Bottleneck3D(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        mods += [Bottleneck3D(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean((2, 3, 4))

    @classmethod
    def from_local(cls) -> "ResNet3D50":
        path = find_weight(RESNET3D_FILE)
        if path is None:
            raise _missing("FID-VID", "3D ResNet-50 Kinetics weights", [RESNET3D_FILE])
        return _build_and_load(cls, path, {k: v for k, v in _load(path).items() if not k.startswith("fc.")})


# ---------------------------------------------------------------------------------------------------
# FVD: I3D (Carreira & Zisserman), Kinetics-400, TF "SAME" padding — DisCo's "FVD-3DInception"
# ---------------------------------------------------------------------------------------------------
I3D_FILE = "i3d_pretrained_400.pt"


def _same_pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), bn=True, relu=True, bias=False):
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, 0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x):
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPool3dSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionModule3D(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a, self.b1b = Unit3D(cin, c[1]), Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a, self.b2b = Unit3D(cin, c[3]), Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(cin, c[5])

    def forward(self, x):
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    """Clips (B, 3, T, H, W) in [-1, 1] → (B, 400) Kinetics logits averaged over time."""
    MIXED = (("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)), ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
             ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
             ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)), ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
             ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)), ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
             ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)), ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
             ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)), ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)))

    def __init__(self, num_classes: int = 400):
        super().__init__()
        self.order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3"]
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, a, b in self.MIXED:
            setattr(self, name, InceptionModule3D(a, b) if name.startswith("Mixed") else MaxPool3dSame(a, b))
            self.order.append(name)
        self.logits = Unit3D(1024, num_classes, bn=False, relu=False, bias=True)

    def forward(self, x):
        for name in self.order:
            x = getattr(self, name)(x)
        # the published 2×7×7 average pool then 1×1×1 logits, averaged over time == logits of the mean
        return self.logits(x.mean((2, 3, 4), keepdim=True)).flatten(1)

    @classmethod
    def from_local(cls) -> "InceptionI3d":
        path = find_weight(I3D_FILE)
        if path is None:
            raise _missing("FVD", "I3D Kinetics-400 weights", [I3D_FILE])
        return _build_and_load(cls, path)


# ---------------------------------------------------------------------------------------------------
# the metrics over sets of videos
# ---------------------------------------------------------------------------------------------------
def _frames_tensor(video: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float() / 255.0


def _clips(video: np.ndarray, length: int = 16) -> np.ndarray:
    """(F, H, W, 3) → (K, length, H, W, 3): consecutive segments, the last padded by repeating the final
    frame (as DisCo does)."""
    v = np.asarray(video)
    pad = (-len(v)) % length
    if pad:
        v = np.concatenate([v, np.repeat(v[-1:], pad, 0)])
    return v.reshape(-1, length, *v.shape[1:])


class FeatureMetrics:
    """LPIPS / FID / FID-VID / FVD between generated and ground-truth videos; networks load lazily, once.

        fm = FeatureMetrics(device)
        fm.status()                    # {"LPIPS": None or "why unavailable", ...}
        fm.lpips(gen, gt)              # one pair of (F, H, W, 3) videos
        fm.fid(gens, gts) / fm.fid_vid(gens, gts) / fm.fvd(gens, gts)   # lists of videos
    """
    NAMES = ("LPIPS", "FID", "FID-VID", "FVD")
    SIZES = {"FID": 299, "FID-VID": 112, "FVD": 224}

    def __init__(self, device: str | torch.device = "cpu", sizes: dict | None = None):
        self.device = torch.device(device)
        self.sizes = {**self.SIZES, **(sizes or {})}
        self._nets: dict[str, nn.Module | Unavailable] = {}

    def net(self, name: str) -> nn.Module:
        if name not in self._nets:
            loader = {"LPIPS": LPIPS, "FID": InceptionFeatures, "FID-VID": ResNet3D50, "FVD": InceptionI3d}[name]
            try:
                self._nets[name] = loader.from_local().to(self.device)
            except Unavailable as e:
                self._nets[name] = e
        got = self._nets[name]
        if isinstance(got, Unavailable):
            raise got
        return got

    def status(self) -> dict[str, str | None]:
        """None for a metric that can be computed, else the sentence saying which file is missing."""
        out = {}
        for n in self.NAMES:
            try:
                self.net(n)
                out[n] = None
            except Unavailable as e:
                out[n] = str(e)
        return out

    def describe(self, name: str) -> str:
        net = self.net(name)
        if name == "FID" and not net.fid:
            return f"FID with torchvision's ImageNet Inception-v3 ({net.source}); not comparable to TF-FID numbers"
        return name

    @torch.no_grad()
    def lpips(self, gen: np.ndarray, gt: np.ndarray, batch: int = 16) -> float:
        net = self.net("LPIPS")
        a, b = _frames_tensor(gen) * 2 - 1, _frames_tensor(gt) * 2 - 1
        d = [net(a[i:i + batch].to(self.device), b[i:i + batch].to(self.device)) for i in range(0, len(a), batch)]
        return float(torch.cat(d).mean())

    @torch.no_grad()
    def frame_features(self, videos: list[np.ndarray], batch: int = 16) -> np.ndarray:
        net = self.net("FID")
        frames = np.concatenate([np.asarray(v) for v in videos])
        out = [net(_frames_tensor(frames[i:i + batch]).to(self.device), self.sizes["FID"]).cpu()
               for i in range(0, len(frames), batch)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def clip_features(self, name: str, videos: list[np.ndarray]) -> np.ndarray:
        net, size = self.net(name), self.sizes[name]
        feats = []
        for v in videos:
            for clip in _clips(v):
                x = torch.as_tensor(clip).float().permute(3, 0, 1, 2)          # (3, T, H, W), 0..255
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                if name == "FID-VID":
                    x = x - torch.tensor(ResNet3D50.PIXEL_MEAN).view(3, 1, 1, 1)
                else:
                    x = x / 127.5 - 1
                feats.append(net(x[None].to(self.device)).cpu())
        return torch.cat(feats).numpy()

    def fid(self, gens: list[np.ndarray], gts: list[np.ndarray]) -> float:
        return frechet_from_features(self.frame_features(gens), self.frame_features(gts))

    def fid_vid(self, gens: list[np.ndarray], gts: list[np.ndarray]) -> float:
        return frechet_from_features(self.clip_features("FID-VID", gens), self.clip_features("FID-VID", gts))

    def fvd(self, gens: list[np.ndarray], gts: list[np.ndarray]) -> float:
        return frechet_from_features(self.clip_features("FVD", gens), self.clip_features("FVD", gts))


__all__ = ["FeatureMetrics", "Unavailable", "LPIPS", "InceptionFeatures", "ResNet3D50", "InceptionI3d",
           "find_weight", "weight_dirs"]
