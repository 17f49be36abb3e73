"""Reference attention (AnimateAnyone), its End2End-M mask and the IMG capture hook.

The ReferenceNet (a ``UNet2DConditionModel`` with the denoiser's block layout) encodes the reference sheet
once per generation; ``ReferenceWriteProcessor`` stores the input of each of its spatial self-attention
layers (attn1) in a bank keyed by layer name. The denoising UNet's ``ReferenceReadProcessor`` of the layer
with the same name concatenates those tokens to its own keys and values, so every generated frame attends
to its own tokens plus the reference's. Processors hold a shared ``ReferenceState``; nothing is patched
outside the modules they are installed on.

* Reference dropout / classifier-free guidance: ``ReferenceState.ref_index`` says which reference each
  video reads, -1 for none (the unconditional branch); those samples run plain self-attention.
* End2End-M: with ``regions`` (where each identity slot should be in each generated frame) and
  ``ref_regions`` (each slot's mask on the reference), a generated token inside slot s's region may attend
  only to reference tokens of slot s, non-character reference tokens and its own frame.
* IMG: for the layers named in ``capture_layers`` the processor hands back the generated queries
  ``to_q(hidden)`` and the reference keys ``to_k(ref_hidden)`` per head (``AttentionCapture``); every layer
  keeps fused SDPA — attention probabilities are only formed by ``pipelines.models.img`` on the captures.
* At inference the projected reference keys/values are constant across steps and windows, so they are
  cached once per generation (``cache_kv``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .img import downsample_masks


@dataclass
class AttentionCapture:
    """What one attn1 layer hands back for the IMG loss."""
    query: torch.Tensor          # (B·F, heads, N, d) generated frames' queries, that layer's to_q
    key: torch.Tensor            # (R, heads, M, d) reference keys, that layer's to_k
    size: tuple[int, int]        # (h, w) token grid of the generated frames, N = h·w
    ref_size: tuple[int, int]    # (h_r, w_r) token grid of the reference, M = h_r·w_r
    num_frames: int              # F
    ref_index: torch.Tensor      # (B,) reference read by each video, -1 = none


@dataclass
class ReferenceFeatures:
    """The ReferenceNet's attn1 inputs for R references, computed once per generation."""
    hidden: dict[str, torch.Tensor]       # layer name → (R, M, C)
    latent_size: tuple[int, int]          # (h, w) of the reference latents

    @property
    def batch(self) -> int:
        return next(iter(self.hidden.values())).shape[0] if self.hidden else 0


@dataclass
class ReferenceState:
    """Shared by the processors of one (ReferenceNet, denoiser) pair; set per forward by ``MixDenoiser``."""
    mode: str = "off"                                   # "off" | "write" | "read"
    written: dict[str, torch.Tensor] = field(default_factory=dict)
    reference: ReferenceFeatures | None = None
    ref_index: torch.Tensor | None = None               # (B,)
    num_frames: int = 1
    latent_size: tuple[int, int] = (0, 0)               # generated latents (h, w)
    regions: torch.Tensor | None = None                 # (B, F, S, H, W) bool — End2End-M
    ref_regions: torch.Tensor | None = None             # (R, S, H_r, W_r) bool
    capture_layers: frozenset[str] = frozenset()
    captures: dict[str, AttentionCapture] = field(default_factory=dict)
    cache_kv: bool = False
    kv_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    _allowed: dict[tuple, torch.Tensor] = field(default_factory=dict)
    _reading: torch.Tensor | None = None                # (B·F,) bool: samples that read a reference

    def grid(self, n_tokens: int, latent_size: tuple[int, int]) -> tuple[int, int]:
        """The (h, w) token grid of a layer with ``n_tokens`` tokens on ``latent_size`` latents."""
        h, w = latent_size
        scale = math.sqrt(h * w / n_tokens)
        k = round(scale)
        if k < 1 or (h // k) * (w // k) != n_tokens:
            raise RuntimeError(f"cannot place {n_tokens} tokens on a {h}×{w} latent grid; the latent size must be "
                               "divisible by the UNet's total down-sampling")
        return h // k, w // k

    def allowed(self, size: tuple[int, int], ref_size: tuple[int, int], sample_ref: torch.Tensor) -> torch.Tensor:
        """End2End-M: (S_read, 1, N, N + M) bool attention mask for the samples that read a reference."""
        key = (size, ref_size)
        if key not in self._allowed:
            n = size[0] * size[1]
            g = downsample_masks(self.regions.flatten(0, 1), size, threshold=0.0)        # (B·F, S, h, w)
            g = g.flatten(-2).transpose(1, 2).float()                                    # (B·F, N, S)
            r = downsample_masks(self.ref_regions, ref_size, threshold=0.5)              # (R, S, h_r, w_r)
            r = r.flatten(-2).transpose(1, 2).float()[sample_ref]                        # (S_read, M, S)
            g = g[self._reading]
            same_slot = (g @ r.transpose(1, 2)) > 0                                      # (S_read, N, M)
            background = (r.sum(-1) == 0)[:, None, :]                                    # non-character ref
            free = (g.sum(-1) == 0)[:, :, None]                                          # outside every region
            ref_ok = same_slot | background | free
            own = torch.ones(ref_ok.shape[0], n, n, dtype=torch.bool, device=ref_ok.device)
            self._allowed[key] = torch.cat([own, ref_ok], -1)[:, None]
        return self._allowed[key]

    def begin_read(self, reference: ReferenceFeatures | None, ref_index: torch.Tensor, num_frames: int,
                   latent_size: tuple[int, int], regions=None, ref_regions=None, capture_layers=()) -> None:
        self.mode = "read"
        self.reference, self.ref_index = reference, ref_index
        self.num_frames, self.latent_size = num_frames, latent_size
        self.regions, self.ref_regions = regions, ref_regions
        self.capture_layers = frozenset(capture_layers)
        self.captures = {}
        self._allowed = {}
        self._reading = (ref_index >= 0).repeat_interleave(num_frames)

    def end(self) -> None:
        """Back to plain attention; drops per-forward tensors (captures are returned before this)."""
        self.mode = "off"
        self.reference = self.ref_index = self.regions = self.ref_regions = None
        self.captures, self._allowed, self.written = {}, {}, {}
        self.capture_layers, self._reading = frozenset(), None

    def clear_cache(self) -> None:
        self.kv_cache = {}


def _attention(attn, query, key, value, mask=None):
    """(B, N, C)-shaped q/k/v → SDPA per head → (B, N, C)."""
    b, heads = query.shape[0], attn.heads
    q = query.view(b, -1, heads, query.shape[-1] // heads).transpose(1, 2)
    k = key.view(b, -1, heads, key.shape[-1] // heads).transpose(1, 2)
    v = value.view(b, -1, heads, value.shape[-1] // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(b, -1, heads * v.shape[-1])


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.view(x.shape[0], x.shape[1], heads, x.shape[-1] // heads).transpose(1, 2)


def _check_plain_self_attention(attn, hidden_states, encoder_hidden_states, attention_mask):
    if encoder_hidden_states is not None or attention_mask is not None or hidden_states.ndim != 3 \
            or attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None \
            or attn.residual_connection:
        raise NotImplementedError("reference attention is written for the plain self-attention (attn1) of "
                                  "diffusers' BasicTransformerBlock")


class ReferenceWriteProcessor:
    """ReferenceNet attn1: plain self-attention that also stores its input in the bank while writing."""

    def __init__(self, state: ReferenceState, name: str):
        self.state, self.name = state, name

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        _check_plain_self_attention(attn, hidden_states, encoder_hidden_states, attention_mask)
        if self.state.mode == "write":
            self.state.written[self.name] = hidden_states
        out = _attention(attn, attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states))
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor


class ReferenceReadProcessor:
    """Denoiser attn1: self-attention whose keys/values also hold the reference tokens of the same layer."""

    def __init__(self, state: ReferenceState, name: str):
        self.state, self.name = state, name

    def _reference_kv(self, attn, ref_hidden: torch.Tensor):
        st = self.state
        if st.cache_kv and self.name in st.kv_cache:
            return st.kv_cache[self.name]
        kv = attn.to_k(ref_hidden), attn.to_v(ref_hidden)
        if st.cache_kv:
            st.kv_cache[self.name] = kv
        return kv

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        _check_plain_self_attention(attn, hidden_states, encoder_hidden_states, attention_mask)
        st = self.state
        query, key, value = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        ref = st.reference.hidden.get(self.name) if st.mode == "read" and st.reference is not None else None
        if ref is None:
            out = _attention(attn, query, key, value)
        else:
            out = self._read(attn, query, key, value, ref)
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor

    def _read(self, attn, query, key, value, ref_hidden):
        st = self.state
        n_samples, n = query.shape[:2]
        frames = st.num_frames
        if st.ref_index.shape[0] * frames != n_samples:
            raise RuntimeError(f"{self.name}: {n_samples} samples do not split into {st.ref_index.shape[0]} videos × "
                               f"{frames} frames")
        size = st.grid(n, st.latent_size)
        ref_size = st.grid(ref_hidden.shape[1], st.reference.latent_size)
        k_ref, v_ref = self._reference_kv(attn, ref_hidden)                         # (R, M, C)
        reading = st._reading                                                       # (B·F,) bool
        sample_ref = st.ref_index.repeat_interleave(frames)[reading]                # reference of each reader
        if self.name in st.capture_layers:
            st.captures[self.name] = AttentionCapture(
                query=_heads(query, attn.heads), key=_heads(k_ref, attn.heads), size=size,
                ref_size=ref_size, num_frames=frames, ref_index=st.ref_index)
        mask = st.allowed(size, ref_size, sample_ref) if st.regions is not None else None
        if bool(reading.all()):
            return _attention(attn, query, torch.cat([key, k_ref[sample_ref]], 1),
                              torch.cat([value, v_ref[sample_ref]], 1), mask)
        out = torch.empty_like(query)
        idle = ~reading
        out[idle] = _attention(attn, query[idle], key[idle], value[idle])
        if reading.any():
            out[reading] = _attention(attn, query[reading], torch.cat([key[reading], k_ref[sample_ref]], 1),
                                      torch.cat([value[reading], v_ref[sample_ref]], 1), mask)
        return out


def self_attention_layers(unet: nn.Module) -> list[str]:
    """Names of the spatial self-attention layers (attn1 of the transformer blocks) of a diffusers UNet, in
    forward order — for the denoiser these are the IMG candidate layers."""
    names = [name for name, m in unet.named_modules()
             if name.endswith(".attn1") and ".attentions." in name and hasattr(m, "set_processor")]
    stage = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}        # modules register mid after up
    return sorted(names, key=lambda n: (stage[n.split(".")[0]], names.index(n)))


def install_reference_attention(reference_net: nn.Module, unet: nn.Module, state: ReferenceState) -> list[str]:
    """Put write processors on the ReferenceNet's attn1 layers and read processors on the denoiser's.
    The two UNets must share block layout and widths; returns the layer names that read a reference."""
    ref_layers = dict((n, m) for n, m in reference_net.named_modules() if n in set(self_attention_layers(reference_net)))
    names = self_attention_layers(unet)
    mods = dict(unet.named_modules())
    missing = [n for n in names if n not in ref_layers]
    if missing:
        raise ValueError(f"reference_net: has no self-attention layer(s) {missing[:3]}; it must have the "
                         "denoising UNet's block layout")
    for n in names:
        if ref_layers[n].inner_dim != mods[n].inner_dim or ref_layers[n].heads != mods[n].heads:
            raise ValueError(f"reference_net: layer {n} has width {ref_layers[n].inner_dim} "
                             f"(heads {ref_layers[n].heads}), the denoiser {mods[n].inner_dim} ({mods[n].heads})")
        ref_layers[n].set_processor(ReferenceWriteProcessor(state, n))
        mods[n].set_processor(ReferenceReadProcessor(state, n))
    return names


__all__ = ["AttentionCapture", "ReferenceFeatures", "ReferenceState", "ReferenceWriteProcessor",
           "ReferenceReadProcessor", "self_attention_layers", "install_reference_attention"]
