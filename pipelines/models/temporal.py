"""Temporal layers of the denoising UNet: diffusers' ``MotionAdapter`` (AnimateDiff motion modules), run
after the layers of a plain ``UNet2DConditionModel`` through forward hooks installed on that UNet only.

Why not ``UNetMotionModel.from_unet2d``: it puts a motion module after every layer of every block, and at
32×32 latents the three 32-channel modules cost as much as the rest of the temporal stack (measured in
docs/PERFORMANCE.md). A ``MotionAdapter`` may have fewer modules per block (``motion_layers_per_block``
(0, 1, 1) for the tiny model); a block with k modules runs them after its *last* k layers (after the
spatial transformer where the block has one, else after the resnet), and the mid block after its
attention — for a full adapter that is exactly ``UNetMotionModel``'s placement, so AnimateDiff motion
weights load unchanged (``MotionAdapter.from_pretrained``). The UNet stays a ``UNet2DConditionModel`` whose
state dict is SD-1.5's, and the ReferenceNet shares its class.

Frames travel folded into the batch, ``(b f) c h w``; ``TemporalHooks.num_frames`` tells the modules how to
unfold them (``MixDenoiser`` sets it around every call).
"""

from __future__ import annotations

from diffusers import MotionAdapter, UNet2DConditionModel
from torch import nn


def _layers(block: nn.Module) -> nn.ModuleList:
    attentions = getattr(block, "attentions", None)
    return attentions if attentions is not None and len(attentions) else block.resnets


def motion_placement(unet: UNet2DConditionModel, adapter: MotionAdapter) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name of the UNet layer, that layer, its motion module) for every module of ``adapter``."""
    ub, ab = list(unet.config.block_out_channels), list(adapter.config.block_out_channels)
    if ub != ab:
        raise ValueError(f"motion_adapter: block_out_channels {ab} do not match the UNet's {ub}")
    out = []
    groups = [("down_blocks", unet.down_blocks, adapter.down_blocks), ("up_blocks", unet.up_blocks, adapter.up_blocks)]
    for prefix, blocks, motion in groups:
        for i, (block, mm) in enumerate(zip(blocks, motion)):
            layers, modules = _layers(block), mm.motion_modules
            if len(modules) > len(layers):
                raise ValueError(f"motion_adapter: {prefix}.{i} has {len(modules)} motion modules for "
                                 f"{len(layers)} UNet layers")
            kind = "attentions" if layers is getattr(block, "attentions", None) else "resnets"
            offset = len(layers) - len(modules)
            for j, module in enumerate(modules):
                out.append((f"{prefix}.{i}.{kind}.{offset + j}", layers[offset + j], module))
    if adapter.mid_block is not None:
        attentions = unet.mid_block.attentions
        if len(adapter.mid_block.motion_modules) > len(attentions):
            raise ValueError("motion_adapter: more mid-block motion modules than mid-block attentions")
        for j, module in enumerate(adapter.mid_block.motion_modules):
            out.append((f"mid_block.attentions.{j}", attentions[j], module))
    return out


class TemporalHooks:
    """Runs ``adapter``'s motion modules after their UNet layers. ``remove()`` takes the hooks off again."""

    def __init__(self, unet: UNet2DConditionModel, adapter: MotionAdapter):
        self.num_frames: int | None = None
        self.placement = motion_placement(unet, adapter)
        self._handles = [layer.register_forward_hook(self._hook(module)) for _, layer, module in self.placement]

    def _hook(self, module: nn.Module):
        def run(layer, args, output):
            if self.num_frames is None:
                raise RuntimeError("temporal layers need the number of frames: call the UNet through MixDenoiser")
            if isinstance(output, tuple):                  # Transformer2DModel(..., return_dict=False)
                return (module(output[0], num_frames=self.num_frames),) + output[1:]
            if hasattr(output, "sample"):
                output.sample = module(output.sample, num_frames=self.num_frames)
                return output
            return module(output, num_frames=self.num_frames)
        return run

    @property
    def layer_names(self) -> list[str]:
        return [name for name, _, _ in self.placement]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def zero_init_motion_modules(adapter: MotionAdapter) -> MotionAdapter:
    """Zero every motion module's output projection (AnimateDiff's initialisation): a fresh adapter leaves the
    UNet's image behaviour untouched until it is trained."""
    for m in adapter.modules():
        if hasattr(m, "proj_out") and hasattr(m, "transformer_blocks"):
            nn.init.zeros_(m.proj_out.weight)
            nn.init.zeros_(m.proj_out.bias)
    return adapter


__all__ = ["TemporalHooks", "motion_placement", "zero_init_motion_modules"]
