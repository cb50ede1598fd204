"""Capture the UNet's cross-attention probabilities, one heat map per (layer, step) and prompt token.

diffusers' default processors (``AttnProcessor2_0``, xFormers, ...) never materialise the attention
probabilities, so :class:`CrossAttentionCapture` replaces the processor of every cross-attention module
(``attn2``) with the computation of ``AttnProcessor``: ``attn.get_attention_scores`` then ``bmm`` with the
values — the same output, plus the probabilities ``(batch * heads, P, N)`` over the ``N`` text positions
for the ``P = h * w`` image positions. Self-attention keeps its own processor (slicing, xFormers, SDPA).
Under attention slicing the probabilities are computed slice by slice, as ``SlicedAttnProcessor`` does.

Each call is reduced at once to the conditional image's head-mean map ``(N, R, R)`` (area-averaged down or
bilinear up to ``R``; both keep every position's distribution over tokens summing to 1), so memory grows
with ``layers x steps x N x R x R``, never with the image size.

    with capture_cross_attention(pipe, resolution=16) as rec:
        pipe(prompt, ...)
    rec.maps()  # {layer: (steps, N, R, R)}
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F


class Recorder:
    """Heat maps of one image: per cross-attention layer, one ``(N, R, R)`` map per UNet call (= step)."""

    def __init__(self, names: list[str], resolution: int):
        self.names, self.resolution = names, resolution
        self.latent_hw: tuple[int, int] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the maps of the previous image."""
        self._maps: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(self.names))}
        self.sizes: dict[int, list[int]] = {}

    def add(self, layer: int, probs: torch.Tensor, batch: int, hw: tuple[int, int]) -> None:
        """Record ``probs`` ``(batch * heads, P, N)`` of ``layer``: the last image of the batch (the
        conditional one under classifier-free guidance), mean over heads, as ``(N, R, R)``."""
        heads = probs.shape[0] // batch
        p = probs.reshape(batch, heads, *probs.shape[1:])[-1].float().mean(0)  # (P, N)
        h, w = hw
        maps = p.transpose(0, 1).reshape(1, p.shape[1], h, w)  # (1, N, h, w)
        r = self.resolution
        if h >= r and w >= r:
            maps = F.adaptive_avg_pool2d(maps, (r, r))
        else:
            maps = F.interpolate(maps, size=(r, r), mode="bilinear", align_corners=False)
        self._maps[layer].append(maps[0].cpu())
        self.sizes[layer] = [h, w]

    def maps(self) -> dict[int, torch.Tensor]:
        """``{layer: (steps, N, R, R)}`` float32 for every layer that was called."""
        return {i: torch.stack(m) for i, m in self._maps.items() if m}

    def image_hw(self, positions: int) -> tuple[int, int]:
        """``(h, w)`` of a layer with ``positions`` image positions, from the latent's aspect ratio."""
        if self.latent_hw is None:
            side = math.isqrt(positions)
            if side * side != positions:
                raise ValueError(f"cannot tell the shape of {positions} image positions; set the latent size")
            return side, side
        lh, lw = self.latent_hw
        factor = math.sqrt(lh * lw / positions)
        h = max(1, round(lh / factor))
        return h, positions // h


class CrossAttentionCapture:
    """Attention processor of one cross-attention module that records its probabilities in a :class:`Recorder`."""

    def __init__(self, layer: int, recorder: Recorder, slice_size: int | None = None):
        self.layer, self.recorder, self.slice_size = layer, recorder, slice_size

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args, **kwargs):
        """``AttnProcessor``'s computation; hidden states ``(B, P, C)`` or ``(B, C, h, w)``, text ``(B, N, D)``."""
        residual, hw = hidden_states, None
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        if hidden_states.ndim == 4:
            b, c, h, w = hidden_states.shape
            hw = (h, w)
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        batch, n_text = context.shape[0], context.shape[1]
        attention_mask = attn.prepare_attention_mask(attention_mask, n_text, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))  # (B*H, P, c)
        if encoder_hidden_states is not None and attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        key = attn.head_to_batch_dim(attn.to_k(context))  # (B*H, N, c)
        value = attn.head_to_batch_dim(attn.to_v(context))
        probs, out = self._attend(attn, query, key, value, attention_mask)
        self.recorder.add(self.layer, probs.detach(), batch, hw or self.recorder.image_hw(query.shape[1]))
        out = attn.to_out[1](attn.to_out[0](attn.batch_to_head_dim(out)))
        if hw is not None:
            out = out.transpose(-1, -2).reshape(residual.shape)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _attend(self, attn, query, key, value, mask):
        """``(probs (B*H, P, N), out (B*H, P, c))``, in slices of ``slice_size`` rows of B*H when set."""
        step = self.slice_size or query.shape[0]
        probs, outs = [], []
        for i in range(0, query.shape[0], step):
            m = None if mask is None else mask[i:i + step]
            p = attn.get_attention_scores(query[i:i + step], key[i:i + step], m)
            probs.append(p)
            outs.append(torch.bmm(p, value[i:i + step]))
        return torch.cat(probs), torch.cat(outs)


def cross_attention_names(unet) -> list[str]:
    """Processor names of the UNet's cross-attention modules, in the UNet's order (the layer numbers)."""
    names = []
    for name in unet.attn_processors:
        module = unet.get_submodule(name.removesuffix(".processor"))
        if getattr(module, "is_cross_attention", False):
            names.append(name)
    return names


@contextmanager
def capture_cross_attention(pipe, resolution: int = 16):
    """Install a :class:`CrossAttentionCapture` on every cross-attention module of ``pipe.unet``; yield the
    :class:`Recorder`; put the original processors back on exit, even after an error.

    Raises:
        ValueError: the UNet has no cross-attention module.
    """
    unet = pipe.unet
    original = dict(unet.attn_processors)
    names = cross_attention_names(unet)
    if not names:
        raise ValueError(f"{type(unet).__name__} has no cross-attention module: nothing to trace")
    recorder = Recorder([n.removesuffix(".processor") for n in names], resolution)
    layer_of = {name: i for i, name in enumerate(names)}
    processors = {name: CrossAttentionCapture(layer_of[name], recorder, getattr(proc, "slice_size", None))
                  if name in layer_of else proc for name, proc in original.items()}
    unet.set_attn_processor(processors)
    try:
        yield recorder
    finally:
        unet.set_attn_processor(original)
