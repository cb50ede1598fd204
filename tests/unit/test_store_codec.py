"""Chunk codec: bit-exact round trips, dtype policy, fp16 overflow fallback, triangle packing."""

import pytest
import torch
import zstandard

from truthtrace.store.codec import decode, encode, pack_tril, unpack_tril
from truthtrace.store.planes import ChecksumError

BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def bits(t: torch.Tensor) -> torch.Tensor:
    """Bit patterns of ``t``, so NaN == NaN and -0.0 != 0.0."""
    return t.contiguous().view(BITS[t.element_size()])


def roundtrip(key, t, storage_dtype="float16", overflow_dtype="float32", unpack=True):
    chunk, entry = encode(key, t, storage_dtype=storage_dtype, overflow_dtype=overflow_dtype)
    return decode(chunk, entry, unpack=unpack), entry, chunk


def causal(heads=2, n=12, seed=0) -> torch.Tensor:
    """A softmax attention map ``(heads, n, n)`` with exact zeros above the diagonal."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(heads, n, n, generator=g)
    scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1)


@pytest.mark.parametrize("storage_dtype", ["float16", "bfloat16", "float32"])
def test_layer_tensor_roundtrip_is_bit_exact(storage_dtype):
    t = torch.randn(12, 16, generator=torch.Generator().manual_seed(1)) * 3
    out, entry, _ = roundtrip("layers.3.hidden", t, storage_dtype)
    expected = t.to(getattr(torch, storage_dtype))
    assert out.dtype == expected.dtype and entry["dtype"] == storage_dtype
    assert torch.equal(bits(out), bits(expected))
    assert entry["source_dtype"] == "float32" and entry["shape"] == [12, 16]


def test_special_values_survive_bit_exact():
    t = torch.tensor([[0.0, -0.0, float("nan"), float("inf")], [-float("inf"), 1e-7, 6e-8, -65504.0]])
    out, entry, _ = roundtrip("layers.0.hidden", t)
    assert "fallback" not in entry  # inf is not an overflow
    assert torch.equal(bits(out), bits(t.half()))


@pytest.mark.parametrize("t", [
    torch.arange(12, dtype=torch.int64), torch.arange(12, dtype=torch.int32) - 6,
    torch.randn(5, dtype=torch.float32), torch.randn(5, dtype=torch.float64),
    torch.tensor([True, False, True]), torch.arange(7, dtype=torch.uint8),
])
def test_other_keys_are_stored_as_given(t):
    out, entry, _ = roundtrip("answer_logprobs", t)
    assert out.dtype == t.dtype and torch.equal(bits(out), bits(t))
    assert entry["dtype"] == entry["source_dtype"]


def test_integer_layer_tensor_is_not_cast():
    t = torch.arange(10, dtype=torch.int64).reshape(2, 5)
    out, entry, _ = roundtrip("layers.0.ids", t)
    assert out.dtype == torch.int64 and torch.equal(out, t)


def test_overflow_falls_back_to_float32_and_says_why():
    t = torch.randn(12, 16)
    t[3, 4] = 1e5
    out, entry, _ = roundtrip("layers.1.hidden", t)
    assert out.dtype == torch.float32 and torch.equal(out, t)
    assert entry["dtype"] == "float32"
    assert entry["fallback"]["requested"] == "float16"
    assert "100000" in entry["fallback"]["reason"] and "65504" in entry["fallback"]["reason"]


def test_overflow_can_fall_back_to_bfloat16():
    t = torch.full((4, 4), -7e4)
    out, entry, _ = roundtrip("layers.1.hidden", t, overflow_dtype="bfloat16")
    assert out.dtype == torch.bfloat16 and entry["fallback"]["requested"] == "float16"
    assert torch.equal(bits(out), bits(t.bfloat16()))


def test_overflow_is_found_next_to_nan():
    t = torch.tensor([float("nan"), 1e6, 1.0])
    out, entry, _ = roundtrip("layers.0.hidden", t)
    assert entry["dtype"] == "float32" and torch.equal(bits(out), bits(t))


def test_value_in_range_stays_float16():
    t = torch.tensor([65504.0, -65504.0, 1.0])
    _, entry, _ = roundtrip("layers.0.hidden", t)
    assert entry["dtype"] == "float16" and "fallback" not in entry


def test_causal_map_is_packed_smaller_and_rebuilt_exactly():
    attn = causal(heads=2, n=12)
    out, entry, chunk = roundtrip("layers.0.attn", attn)
    _, dense_entry, dense_chunk = roundtrip("layers.0.attn_copy", attn)  # not *.attn: never packed
    assert entry["layout"] == "tril" and dense_entry["layout"] == "dense"
    assert len(chunk) < len(dense_chunk)
    assert out.shape == (2, 12, 12) and torch.equal(bits(out), bits(attn.half()))
    packed, _, _ = roundtrip("layers.0.attn", attn, unpack=False)
    assert packed.shape == (2, 12 * 13 // 2)


@pytest.mark.parametrize("make", [
    lambda: torch.rand(2, 12, 12),  # bidirectional map
    lambda: causal().index_put((torch.tensor([0]), torch.tensor([0]), torch.tensor([5])), torch.tensor(-0.0)),
    lambda: torch.rand(2, 3, 12),  # (H, K, T) with K != T
])
def test_non_causal_maps_stay_dense_and_exact(make):
    attn = make()
    out, entry, _ = roundtrip("layers.1.attn", attn)
    assert entry["layout"] == "dense"
    assert torch.equal(bits(out), bits(attn.half()))


def test_pack_unpack_inverse_for_many_sizes():
    for n in (1, 2, 7, 64):
        t = torch.randn(3, n, n).tril()
        assert torch.equal(unpack_tril(pack_tril(t), n), t)


@pytest.mark.parametrize("shape", [(0, 16), (2, 0, 0), (0,)])
def test_empty_tensors_roundtrip(shape):
    key = "layers.0.attn" if len(shape) == 3 else "layers.0.hidden"
    out, _, _ = roundtrip(key, torch.zeros(shape))
    assert out.shape == shape and out.dtype == torch.float16


def test_unsupported_dtype_raises_value_error():
    with pytest.raises(ValueError, match="complex64"):
        roundtrip("x", torch.zeros(3, dtype=torch.complex64))


def test_flipped_byte_never_decodes_silently():
    t = torch.randn(12, 16, generator=torch.Generator().manual_seed(2))
    chunk, entry = encode("layers.0.hidden", t, storage_dtype="float16", overflow_dtype="float32")
    for pos in range(0, len(chunk), 7):
        bad = bytearray(chunk)
        bad[pos] ^= 0x04
        with pytest.raises((zstandard.ZstdError, ChecksumError, ValueError)):
            decode(bytes(bad), entry)
