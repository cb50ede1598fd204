"""truthtrace.nn: sinusoidal and rotary position encodings, and multi-head attention on each SDPA backend
checked against a naive softmax(QK^T / sqrt(d)) V and against torch's own nn.MultiheadAttention."""

import math

import pytest
import torch

from truthtrace.nn import (
    BACKENDS,
    EncoderBlock,
    MultiHeadAttention,
    RotaryEmbedding,
    attention,
    available_backends,
    resolve_backend,
    sinusoidal,
)
from truthtrace.nn.attention import probe_backend

B, H, T, HD = 2, 3, 7, 8
CONCRETE = ("flash", "efficient", "math", "xformers")


def naive_attention(q, k, v, mask=None, causal=False):
    """softmax(q k^T / sqrt(hd)) v in float64, masked entries set to -inf."""
    q, k, v = q.double(), k.double(), v.double()
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    allowed = torch.ones(scores.shape[-2:], dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    if mask is not None:
        allowed = allowed & mask
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def qkv(seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, H, T, HD, generator=g) for _ in range(3))


def padding(lengths=(T, 4)):
    """Key padding ``(B, T)``: True for the first ``lengths[b]`` tokens."""
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


# ------------------------------------------------------------------------------------------ positional


def test_sinusoidal_shape_and_values():
    pe = sinusoidal(5, 8)
    assert pe.shape == (5, 8) and pe.dtype == torch.float32
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))  # sin 0, cos 0
    assert pe[1, 0] == pytest.approx(math.sin(1.0)) and pe[1, 1] == pytest.approx(math.cos(1.0))
    assert pe[3, 2] == pytest.approx(math.sin(3 * 10_000 ** (-2 / 8)))  # w_1 = 0.1
    assert pe[4, 7] == pytest.approx(math.cos(4 * 10_000 ** (-6 / 8)))
    torch.testing.assert_close(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, torch.ones(5, 4))
    for bad in (lambda: sinusoidal(5, 7), lambda: sinusoidal(0, 8), lambda: sinusoidal(5, 8, base=1.0)):
        with pytest.raises(ValueError):
            bad()


def rope_score(rope, q, k, m, n):
    """q . k after rotating q to position ``m`` and k to position ``n`` (one head, one token each)."""
    qm, _ = rope(q, q, torch.tensor([m]))
    _, kn = rope(k, k, torch.tensor([n]))
    return float((qm * kn).sum())


def test_rope_score_depends_only_on_relative_position():
    rope = RotaryEmbedding(HD)
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, HD, generator=g), torch.randn(1, 1, 1, HD, generator=g)
    for m, n in ((0, 0), (3, 1), (1, 5), (2, 9)):
        ref = rope_score(rope, q, k, m, n)
        for shift in (1, 7, 100):
            assert rope_score(rope, q, k, m + shift, n + shift) == pytest.approx(ref, abs=1e-4)
    scores = {rope_score(rope, q, k, 4, 4 + d) for d in range(-3, 4)}
    assert len({round(s, 4) for s in scores}) == 7  # the offset does change the score
    assert rope_score(rope, q, k, 0, 0) == pytest.approx(float((q * k).sum()), abs=1e-6)  # position 0: identity


def test_rope_on_sequences_is_toeplitz_norm_preserving_and_takes_batched_positions():
    rope = RotaryEmbedding(HD, base=100.0)
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 1, 1, HD, generator=g).expand(B, H, T, HD)  # the same vector at every position
    k = torch.randn(1, 1, 1, HD, generator=g).expand(B, H, T, HD)
    qr, kr = rope(q, k)
    s = qr @ kr.transpose(-1, -2)  # (B, H, T, T): constant along each diagonal
    for i in range(1, T):
        torch.testing.assert_close(s[..., i, 1:], s[..., i - 1, :-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(qr.norm(dim=-1), q.norm(dim=-1))
    shifted = torch.arange(T)[None].repeat(B, 1) + torch.tensor([[0], [11]])  # (B, T), batch 1 shifted by 11
    qs, ks = rope(q, k, shifted)
    torch.testing.assert_close(qs @ ks.transpose(-1, -2), s, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="channels per head"):
        rope(torch.randn(1, 1, T, 6), torch.randn(1, 1, T, 6))
    with pytest.raises(ValueError, match="even"):
        RotaryEmbedding(7)


# ------------------------------------------------------------------------------------------ attention


def skip_unless_available(backend):
    reason = probe_backend(backend, "cpu", torch.float32)
    if reason:
        pytest.skip(f"attention backend {backend!r} does not run on CPU here: {reason}")


MASKS = {"none": (None, False), "causal": (None, True), "padding": ("pad", False), "padding+causal": ("pad", True)}


@pytest.mark.parametrize("mask_name", sorted(MASKS))
@pytest.mark.parametrize("backend", ("auto", *CONCRETE))
def test_backend_matches_naive_reference(backend, mask_name):
    if backend != "auto":
        skip_unless_available(backend)
    q, k, v = qkv()
    pad, causal = MASKS[mask_name]
    mask = padding()[:, None, None, :] if pad else None
    out = attention(q, k, v, mask=mask, causal=causal, backend=backend)
    assert out.shape == (B, H, T, HD) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), naive_attention(q, k, v, mask, causal), atol=2e-5, rtol=1e-4)


def test_available_backends_agree_with_each_other():
    q, k, v = qkv(3)
    backends = available_backends("cpu")
    assert "math" in backends and resolve_backend("auto", "cpu") == backends[0]
    outs = {b: attention(q, k, v, causal=True, backend=b) for b in backends}
    for b, out in outs.items():
        torch.testing.assert_close(out, outs["math"], atol=1e-5, rtol=1e-5, msg=f"{b} vs math")


def test_unknown_or_unavailable_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend must be one of"):
        attention(*qkv(), backend="cudnn")
    with pytest.raises(ValueError, match="backend must be one of"):
        MultiHeadAttention(16, 4, backend="fast")
    missing = [b for b in CONCRETE if probe_backend(b, "cpu", torch.float32)]
    if not missing:
        pytest.skip("every backend runs on this CPU")
    with pytest.raises(ValueError, match=f"attention backend '{missing[0]}' is not available on cpu"):
        attention(*qkv(), backend=missing[0])
    assert set(BACKENDS) == {"auto", *CONCRETE}


def test_padding_and_causal_masks_are_respected():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, rotary=RotaryEmbedding(4)).eval()
    x = torch.randn(B, T, 16)
    keep = padding((T, 4))
    changed = x.clone()
    changed[1, 4:] = 100.0  # padded tokens of sequence 1
    out, out_changed = mha(x, key_padding=keep), mha(changed, key_padding=keep)
    torch.testing.assert_close(out_changed[1, :4], out[1, :4])  # real tokens do not see the padding
    torch.testing.assert_close(out_changed[0], out[0])
    future = x.clone()
    future[:, 5:] = -50.0
    torch.testing.assert_close(mha(future, causal=True)[:, :5], mha(x, causal=True)[:, :5])
    assert not torch.allclose(mha(future)[:, :5], mha(x)[:, :5])  # without the mask they would move
    with pytest.raises(ValueError, match="key_padding"):
        mha(x, key_padding=keep.float())


def test_multihead_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4).eval()
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():  # the same q/k/v layout: rows [q; k; v], heads contiguous within each
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x, keep = torch.randn(B, T, 16), padding()
    expected, _ = ref(x, x, x, key_padding_mask=~keep, need_weights=False)
    torch.testing.assert_close(ours(x, key_padding=keep), expected, atol=1e-5, rtol=1e-5)


def test_shapes_errors_and_encoder_block():
    with pytest.raises(ValueError, match="multiple of n_heads"):
        MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="head_dim 8"):
        MultiHeadAttention(16, 4, rotary=RotaryEmbedding(8))
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(16, 4, dropout=1.0)
    block = EncoderBlock(16, 4, ff=32, dropout=0.1, rotary=RotaryEmbedding(4))
    x = torch.randn(B, T, 16, requires_grad=True)
    y = block(x, key_padding=padding(), causal=True)
    assert y.shape == (B, T, 16)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="ff"):
        EncoderBlock(16, 4, ff=0)
