"""truthtrace inspect: overview numbers equal known values on a synthetic store; one trace in detail."""

import csv
import json
import math

import pytest
import torch

from truthtrace.cli import main
from truthtrace.labels.io import labels_beside as find_labels
from truthtrace.traces.inspect import inspect_store, inspect_trace
from truthtrace.naming import layer_key
from truthtrace.store import TraceStore, TraceWriter

D, HEADS, LAYERS = 16, 2, 2
LENGTHS = {"a": 8, "b": 10, "c": 12}  # tokens per trace; 3 answer tokens each


def known_trace(n_tokens: int, seed: int) -> dict:
    """Hidden layer i has per-token L2 norm exactly i+1; attention rows are uniform over the past."""
    tensors = {layer_key(i, "hidden"): torch.full((n_tokens, D), (i + 1) / math.sqrt(D)) for i in range(LAYERS + 1)}
    rows = torch.ones(n_tokens, n_tokens).tril()
    for i in range(LAYERS):
        tensors[layer_key(i, "attn")] = (rows / rows.sum(-1, keepdim=True)).expand(HEADS, -1, -1).contiguous()
    g = torch.Generator().manual_seed(seed)
    tensors["token_ids"] = torch.randint(3, 200, (n_tokens,), generator=g)
    tensors["answer_logprobs"] = -torch.rand(3, generator=g)
    tensors["answer_entropy"] = torch.rand(3, generator=g)
    return tensors


@pytest.fixture
def store(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")  # a "model" dir whose tokenizer loads offline
    schema = {"kind": "truthtrace.traces", "model": str(tmp_path / "tok"), "n_layers": LAYERS, "n_heads": HEADS,
              "d_model": D, "model_dtype": "float32"}
    path = tmp_path / "run" / "traces"
    with TraceWriter(path, schema, shard_max_traces=2) as w:
        for seed, (tid, n) in enumerate(LENGTHS.items()):
            w.add(tid, known_trace(n, seed), {"question_id": tid, "question": f"Q {tid}?", "answers": ["x", "y"],
                                              "generation": f"gen {tid}", "category": "test",
                                              "n_prompt_tokens": n - 3, "n_answer_tokens": 3, "kept_start": 0})
    with open(tmp_path / "run" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trace_id", "hallucinated"])
        w.writerows([["a", 1], ["b", 0], ["c", 1]])
    return path


def test_overview_numbers(store):
    info = inspect_store(store, sample=64)
    assert (info["n_traces"], info["n_shards"], info["n_layers"], info["n_heads"], info["d_model"]) == (3, 2, 2, 2, 16)
    assert info["storage_dtype"] == "float16"
    assert info["tokens"] == {"min": 8, "median": 10, "max": 12}
    assert info["answer_tokens"] == {"min": 3, "median": 3, "max": 3}
    stats = TraceStore(store).info()
    assert info["bytes_per_trace_disk"] == pytest.approx(stats["bytes_on_disk"] / 3)
    assert info["bytes_per_trace_raw"] == pytest.approx(stats["raw_bytes"] / 3)
    labels = info["labels"]
    assert labels["path"].endswith("labels.csv") and (labels["hallucinated"], labels["correct"]) == (2, 1)
    assert labels["unlabelled"] == 0 and labels["orphans"] == 0
    hidden = info["layers"]["hidden"]
    assert [h["layer"] for h in hidden] == [0, 1, 2] and [h["n_tokens"] for h in hidden] == [30] * 3
    for h in hidden:
        assert h["norm_mean"] == pytest.approx(h["layer"] + 1, rel=1e-3) and h["norm_std"] < 1e-3
    expected = sum(math.log(r) for n in LENGTHS.values() for r in range(1, n + 1)) / 30  # uniform rows: log(r+1)
    for a in info["layers"]["attn"]:
        assert a["entropy_mean"] == pytest.approx(expected, abs=2e-3) and a["n_rows"] == 30 * HEADS


def test_sample_is_fixed_by_seed(store):
    one = inspect_store(store, sample=2, seed=3)
    assert one["sample"]["n"] == 2 and one == inspect_store(store, sample=2, seed=3)
    assert inspect_store(store, sample=0)["layers"] == {"hidden": [], "attn": []}


def test_labels_given_or_auto_detected(store, tmp_path):
    assert find_labels(store) == store.parent / "labels.csv"
    (store.parent / "labels.csv").unlink()
    assert inspect_store(store, sample=0)["labels"] is None
    with open(tmp_path / "other.csv", "w") as f:
        f.write("trace_id,hallucinated\na,0\nzz,1\n")
    labels = inspect_store(store, labels=tmp_path / "other.csv", sample=0)["labels"]
    assert (labels["labelled"], labels["unlabelled"], labels["orphans"]) == (1, 2, 1)


def test_one_trace_shows_answer_tokens_and_logprobs(store, tiny_tokenizer):
    t = known_trace(10, 1)
    info = inspect_trace(store, "b")
    assert info["question"] == "Q b?" and info["answers"] == ["x", "y"] and info["generation"] == "gen b"
    assert info["label"] == 0 and info["tokenizer"] is True
    tokens = info["answer_tokens"]
    assert [x["position"] for x in tokens] == [7, 8, 9]
    assert [x["id"] for x in tokens] == t["token_ids"][7:].tolist()
    assert [x["logprob"] for x in tokens] == pytest.approx(t["answer_logprobs"].tolist())
    assert [x["entropy"] for x in tokens] == pytest.approx(t["answer_entropy"].tolist())
    assert [x["text"] for x in tokens] == [tiny_tokenizer.decode([i]) for i in t["token_ids"][7:].tolist()]
    plain = inspect_trace(store, "b", decode_tokens=False)
    assert plain["tokenizer"] is False and all(x["text"] is None for x in plain["answer_tokens"])
    with pytest.raises(ValueError, match="'nope' is not in"):
        inspect_trace(store, "nope")


def test_cli(store, capsys):
    assert main(["inspect", str(store)]) == 0
    out = capsys.readouterr().out
    assert "trace store" in out and "per layer" in out and "2 hallucinated / 1 correct" in out
    assert main(["inspect", str(store), "--trace", "a", "--no-decode"]) == 0
    out = capsys.readouterr().out
    assert "gen a" in out and f"{known_trace(8, 0)['answer_logprobs'][0].item():.4f}" in out
    assert main(["inspect", str(store), "--json", "--sample", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["sample"]["n"] == 1
    assert main(["inspect", str(store), "--trace", "zz"]) == 2
