"""How tests/unit/data/store_v3 was made: run once at commit 94cfb83 plus the zstd-planes-4 writer, with the
zstd-planes-3 (v3) codec, the default before zstd-planes-4.

Kept as a record (the writer still writes v3 on request: chunk_codec="zstd-planes-3").
store_v3_expected.safetensors holds what that reader returned for every (trace, key) as "id/key".
"""
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from truthtrace.store import TraceStore, TraceWriter

out = Path("/work/main/tests/unit/data/store_v3")
shutil.rmtree(out, ignore_errors=True)
g = torch.Generator().manual_seed(12)


def causal(heads, n):
    s = torch.randn(heads, n, n, generator=g).masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    return s.softmax(-1)


traces = {}
for i, n in enumerate((5, 7, 3)):
    t = {"layers.0.hidden": torch.randn(n, 8, generator=g) * 3, "layers.1.hidden": torch.randn(n, 8, generator=g),
         "layers.0.attn": causal(2, n), "layers.1.attn": torch.rand(2, n, n, generator=g),  # dense (bidirectional)
         "token_ids": torch.randint(0, 50000, (n,), generator=g), "answer_logprobs": -torch.rand(3, generator=g),
         "answer_mask": torch.rand(n, generator=g) > 0.5, "counts_i32": torch.arange(n, dtype=torch.int32) - 2,
         "small_u8": torch.arange(n, dtype=torch.uint8), "wide_f64": torch.randn(2, generator=g, dtype=torch.float64),
         "layers.2.empty": torch.zeros(0, 8),
         "layers.3.hidden": torch.randn(32, 64, generator=g)}  # big enough for a zstd-coded exponent plane
    t["layers.0.hidden"][0, :4] = torch.tensor([0.0, -0.0, float("nan"), float("inf")])
    if i == 1:
        t["layers.1.hidden"][1, 2] = 1e5  # overflow: stored as float32 with a fallback
    traces[f"q{i}"] = t
with TraceWriter(out, {"kind": "truthtrace.traces", "model": "fixture", "n_layers": 2, "n_heads": 2, "d_model": 8},
                 shard_max_traces=2, chunk_codec="zstd-planes-3") as w:
    for tid, t in traces.items():
        w.add(tid, t, {"question": f"question {tid}"})
(out / ".writer.lock").unlink()
store = TraceStore(out)
assert {e["codec"] for _, _, e in store.entries()} == {"zstd-planes-3"}  # v3 chunks only
expected = {f"{tid}/{k}": store.read(tid, k).contiguous() for tid in store.ids() for k in store.keys(tid)}
for tid, t in traces.items():  # what the reader returns is the dtype policy applied to the input
    for k, v in t.items():
        want = v.half() if k.startswith("layers.") and not (tid == "q1" and k == "layers.1.hidden") else v
        got = expected[f"{tid}/{k}"]
        assert got.dtype == want.dtype and torch.equal(got.view(torch.uint8), want.contiguous().view(torch.uint8)), k
save_file(expected, str(out.parent / "store_v3_expected.safetensors"))
print(sorted(p.name for p in out.iterdir()), sum(p.stat().st_size for p in out.iterdir()))
