"""Trace store vs pickle+gzip on real traces of the default model, side by side in one run.

    .venv/bin/python bench/bench_store.py [--n 32] [--repeat 3] [--store-threads 2] [--cache /tmp/traces.safetensors]

Traces: SmolLM2-135M-Instruct (30 layers, 9 heads, d=576) answers ``--n`` short factual
questions (chat template, greedy, up to 24 new tokens); one forward pass over prompt +
answer with ``output_hidden_states`` and ``output_attentions`` (eager attention) gives
per trace hidden states ``(31, T, 576)`` and attentions ``(30, 9, T, T)``.

Variants:
  pickle+gzip-6   list of dicts of fp16 numpy arrays (hidden_states / attentions lists),
                  ``pickle.dump`` into ``gzip.open(level=6)``: the common practice
  store v1        ``TraceWriter`` (fp16, causal maps as lower triangles, fsync'ed shards) and
                  ``TraceStore`` iteration, chunk codec ``zstd-planes`` (every byte plane one zstd
                  frame, level N): the store before ``zstd-planes-2``, one thread
  store v2        the same with ``zstd-planes-2`` (each plane zstd or raw, whichever pays; raw planes
                  under a CRC-32), on one thread and on ``--store-threads``
  store v3        ``zstd-planes-3``: v2's planes, the chunk under one xxh3-64 hash and frames without
                  their own checksum, one thread
  store v4        ``zstd-planes-4`` (the default codec): v3's chunks, but a chunk leaves out the leading
                  rows it shares bit for bit with the same key of its shard's first trace (the chat
                  template's prefix); on one thread and on ``--store-threads``

MB/s are of raw dense fp16 bytes (the same numerator for every variant). The store is
given the float32 tensors the model returns, so its write time includes the fp16 cast and
the overflow check; pickle+gzip is given arrays already cast (its cast is not timed).
Reads are from the page cache (files just written). Each time is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pickle  # the baseline being measured; truthtrace itself never pickles
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from truthtrace.machine import load_average, machine_info
from truthtrace.naming import layer_key
from truthtrace.store import CHUNK_CODEC, TraceStore, TraceWriter
from truthtrace.store.planes import V1, V2, V3, V4
from truthtrace.store.threads import default_threads

QUESTIONS = [
    "What is the capital of France?", "Who wrote Hamlet?", "What is the chemical symbol for gold?",
    "How many legs does a spider have?", "What is the largest planet in the solar system?",
    "Who painted the Mona Lisa?", "What is the boiling point of water in Celsius?",
    "What is the capital of Japan?", "Who developed the theory of relativity?",
    "What is the smallest prime number?", "Which ocean is the largest?", "What is the capital of Australia?",
    "Who was the first person to walk on the Moon?", "What gas do plants absorb from the air?",
    "How many continents are there?", "What is the hardest natural substance?",
    "Who wrote Pride and Prejudice?", "What is the square root of 64?", "What is the capital of Canada?",
    "Which planet is known as the Red Planet?", "What language is spoken in Brazil?",
    "Who invented the telephone?", "What is the longest river in Africa?", "How many days are in a leap year?",
    "What is the freezing point of water in Fahrenheit?", "Who discovered penicillin?",
    "What is the capital of Italy?", "What is the main ingredient of guacamole?",
    "In which year did World War II end?", "What is the currency of the United Kingdom?",
    "Who composed the Moonlight Sonata?", "What is the tallest mountain in the world?",
]


def machine() -> str:
    """One line naming CPU, cores and library versions."""
    import transformers
    import zstandard

    cpu = platform.processor() or "?"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"numpy {np.__version__}, zstandard {zstandard.__version__}, transformers {transformers.__version__}")


def load() -> tuple[object, object, str]:
    """The default model via truthtrace.models.load_model, else the converted copy in /tmp/smol_st."""
    try:
        from truthtrace.models import load_model

        model, tok = load_model("smollm2-135m-instruct")
        return model, tok, "truthtrace.models.load_model('smollm2-135m-instruct')"
    except Exception as err:  # the loader may be missing on this machine
        from transformers import AutoModelForCausalLM, AutoTokenizer

        print(f"load_model failed ({err}); using /tmp/smol_st")
        model = AutoModelForCausalLM.from_pretrained("/tmp/smol_st", attn_implementation="eager").eval()
        return model, AutoTokenizer.from_pretrained("/tmp/smol_st"), "/tmp/smol_st"


@torch.no_grad()
def capture(model, tok, question: str) -> dict[str, torch.Tensor]:
    """Float32 tensors of one trace: ``layers.{i}.hidden`` (T, d), ``layers.{i}.attn`` (H, T, T), token_ids."""
    ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  return_tensors="pt")
    ids = ids if torch.is_tensor(ids) else ids["input_ids"]
    seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                         temperature=None, top_p=None, top_k=None, pad_token_id=tok.eos_token_id)
    out = model(seq, output_hidden_states=True, output_attentions=True)
    tensors = {layer_key(i, "hidden"): h[0].float().contiguous() for i, h in enumerate(out.hidden_states)}
    tensors.update({layer_key(i, "attn"): a[0].float().contiguous() for i, a in enumerate(out.attentions)})
    tensors["token_ids"] = seq[0].clone()
    return tensors


def get_traces(n: int, cache: str | None) -> tuple[list[dict], str]:
    """``n`` real traces, from ``cache`` (a safetensors file) if it exists, else from the model."""
    from safetensors.torch import load_file, save_file

    if cache and Path(cache).exists():
        flat = load_file(cache)
        traces = [{k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith(f"{i}/")} for i in range(n)]
        return traces, f"cache {cache}"
    model, tok, source = load()
    start = time.perf_counter()
    traces = [capture(model, tok, QUESTIONS[i % len(QUESTIONS)]) for i in range(n)]
    print(f"captured {n} traces in {time.perf_counter() - start:.1f} s")
    if cache:
        save_file({f"{i}/{k}": v for i, t in enumerate(traces) for k, v in t.items()}, cache)
    return traces, source


def fp16_bytes(traces: list[dict]) -> int:
    """Dense fp16 size of all layer tensors (token ids at their own size)."""
    return sum(v.numel() * (2 if k.startswith("layers.") else v.element_size()) for t in traces for k, v in t.items())


def pickle_records(traces: list[dict]) -> list[dict]:
    """The common-practice layout: one dict per trace, lists of fp16 numpy arrays."""
    out = []
    for i, t in enumerate(traces):
        hidden = sorted((k for k in t if k.endswith(".hidden")), key=lambda k: int(k.split(".")[1]))
        attn = sorted((k for k in t if k.endswith(".attn")), key=lambda k: int(k.split(".")[1]))
        out.append({"id": f"q{i}", "hidden_states": [t[k].half().numpy() for k in hidden],
                    "attentions": [t[k].half().numpy() for k in attn], "token_ids": t["token_ids"].numpy()})
    return out


def timed(fn, repeat: int, setup=None) -> float:
    """Median wall time of ``repeat`` calls of ``fn``, each after an untimed ``setup()``."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_pickle(records: list[dict], work: Path, repeat: int) -> dict:
    path = work / "traces.pkl.gz"

    def write():
        with gzip.open(path, "wb", compresslevel=6) as f:
            pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
        with open(path, "rb+") as f:  # the store fsyncs; so does this, for fairness
            os.fsync(f.fileno())

    def read():
        with gzip.open(path, "rb") as f:
            pickle.load(f)

    def clear():
        path.unlink(missing_ok=True)

    return {"write_s": timed(write, repeat, clear), "read_s": timed(read, repeat), "bytes": path.stat().st_size}


def bench_store(traces: list[dict], work: Path, level: int, repeat: int, codec: str = CHUNK_CODEC,
                threads: int = 1) -> dict:
    path = work / f"store-{codec}-{level}-{threads}"

    def write():
        with TraceWriter(path, {"model": "smollm2-135m-instruct"}, compression_level=level, chunk_codec=codec,
                         threads=threads) as w:
            for i, t in enumerate(traces):
                w.add(f"q{i}", t, {"question": QUESTIONS[i % len(QUESTIONS)]})

    def read():
        for trace in TraceStore(path, threads=threads):
            trace.tensors()

    def clear():
        shutil.rmtree(path, ignore_errors=True)

    result = {"write_s": timed(write, repeat, clear), "read_s": timed(read, repeat)}
    store = TraceStore(path)
    result.update(bytes=store.info()["bytes_on_disk"], shards=store.info()["n_shards"])
    check = store.get("q0")
    assert all(torch.equal(check[k], v.half() if k.startswith("layers.") else v) for k, v in traces[0].items())
    result["store"] = store
    return result


def shared_fraction(store: TraceStore) -> float:
    """Fraction of the stored bodies' elements (layer tensors, triangles packed) that chunks take from their
    shard's first trace (``shared_rows``)."""
    from truthtrace.store.codec import body_size

    shared = total = 0
    for _, key, entry in store.entries():
        if key.startswith("layers."):
            whole = body_size({**entry, "shared_rows": 0})
            shared, total = shared + whole - body_size(entry), total + whole
    return shared / max(total, 1)


def bench_blosc2(traces: list[dict], work: Path, repeat: int) -> dict | None:
    """Optional: the same chunks (fp16, causal maps packed) through blosc2 shuffle + zstd 1, one thread.

    A codec-level comparison (chunks back to back in one file, offsets kept in memory, no
    manifest or fsync'ed shards); skipped when blosc2 is not installed.
    """
    try:
        import blosc2
    except ImportError:
        print("blosc2 not installed: its row is skipped")
        return None
    from truthtrace.store.codec import try_pack_tril, unpack_tril

    blosc2.set_nthreads(1)
    path, sizes = work / "traces.blosc2", []

    def write():
        sizes.clear()
        with open(path, "wb") as f:
            for t in traces:
                for key, v in t.items():
                    v = v.half() if key.startswith("layers.") else v
                    body = try_pack_tril(key, v)
                    body = v if body is None else body
                    frame = blosc2.compress2(body.numpy().tobytes(), typesize=body.element_size(), clevel=1,
                                             codec=blosc2.Codec.ZSTD, filters=[blosc2.Filter.SHUFFLE])
                    sizes.append((key, v.dtype, v.shape, body is not v, len(frame)))
                    f.write(frame)
            os.fsync(f.fileno())

    def read():
        with open(path, "rb") as f:
            for key, dtype, shape, packed, size in sizes:
                body = torch.frombuffer(bytearray(blosc2.decompress2(f.read(size))), dtype=dtype)
                _ = unpack_tril(body.reshape(*shape[:-2], -1), shape[-1]) if packed else body.reshape(shape)

    return {"write_s": timed(write, repeat), "read_s": timed(read, repeat), "bytes": path.stat().st_size}


def latency(store: TraceStore, n: int, repeat: int) -> dict[str, float]:
    """Median milliseconds to read one hidden layer, one attention layer, and a whole trace."""
    ids = store.ids()[:n]
    cases = {"store (default): one hidden layer `read(id, 'layers.15.hidden')`":
             lambda i: store.read(i, layer_key(15, "hidden")),
             "store (default): one attention layer `read(id, 'layers.15.attn')`":
             lambda i: store.read(i, layer_key(15, "attn")),
             "store (default): whole trace `get(id).tensors()`": lambda i: store.get(i).tensors()}
    out = {}
    for name, fn in cases.items():
        out[name] = 1000 * statistics.median(timed(lambda: fn(i), repeat) for i in ids)
    return out


def pickle_latency(records: list[dict], work: Path, repeat: int) -> dict[str, float]:
    """Median milliseconds to load one trace saved alone as pickle+gzip (any layer needs all of it)."""
    paths = []
    for record in records:
        paths.append(work / f"{record['id']}.pkl.gz")
        with gzip.open(paths[-1], "wb", compresslevel=6) as f:
            pickle.dump(record, f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(path):
        with gzip.open(path, "rb") as f:
            return pickle.load(f)

    return {"pickle+gzip-6, one file per trace: any layer = whole trace":
            1000 * statistics.median(timed(lambda: load(p), repeat) for p in paths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32, help="number of traces")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the model run")
    parser.add_argument("--cache", help="safetensors file to keep captured traces between runs")
    parser.add_argument("--store-threads", type=int, default=2, help="encode/decode threads of the multi-threaded rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine())
    print(f"machine_info: {machine_info()}")
    print(f"load average before: {load_average()}")
    traces, source = get_traces(args.n, args.cache)
    torch.set_num_threads(1)  # storage runs on one core in every variant but the threaded default row
    lengths = [t["token_ids"].numel() for t in traces]
    raw = fp16_bytes(traces)
    print(f"model: {source}; {args.n} traces, T = {min(lengths)}..{max(lengths)} (mean {np.mean(lengths):.1f}); "
          f"raw fp16 {raw / args.n / 1e6:.2f} MB/trace; storage threads: torch 1, numpy/zstd 1 except the default row")
    work = Path(tempfile.mkdtemp(prefix="bench_store_"))
    try:
        rows = {"pickle+gzip-6": bench_pickle(pickle_records(traces), work, args.repeat)}
        k = args.store_threads
        rows["store v1 zstd-planes, 1 thread"] = bench_store(traces, work, 1, args.repeat, V1)
        rows["store v2 zstd-planes-2, 1 thread"] = bench_store(traces, work, 1, args.repeat, V2)
        rows["store v3 zstd-planes-3, 1 thread"] = bench_store(traces, work, 1, args.repeat, V3)
        mine = {n: " (default here)" if n == default_threads() else "" for n in (1, k)}
        rows[f"store v4 zstd-planes-4, 1 thread{mine[1]}"] = one = bench_store(traces, work, 1, args.repeat, V4)
        rows[f"store v4 zstd-planes-4, {k} threads{mine[k]}"] = many = bench_store(
            traces, work, 1, args.repeat, V4, k)
        default = one if default_threads() == 1 else many
        print(f"v4: {100 * shared_fraction(one['store']):.1f}% of the layer tensors' packed elements are rows shared "
              "with the shard's first trace")
        blosc = bench_blosc2(traces, work, args.repeat)
        if blosc is not None:
            rows["blosc2 shuffle+zstd-1 (codec only)"] = blosc
        report(rows, raw, args.n)
        print("\n| read one trace (ms, median over traces) | latency |\n|---|---:|")
        times = latency(default["store"], args.n, args.repeat)
        times.update(pickle_latency(pickle_records(traces), work, args.repeat))
        for name, ms in times.items():
            print(f"| {name} | {ms:.2f} |")
        print(f"\nload average after: {load_average()}")
    finally:
        shutil.rmtree(work)


def report(rows: dict, raw: int, n: int) -> None:
    """Print the comparison as a markdown table, ratios against pickle+gzip."""
    base = rows["pickle+gzip-6"]
    print("\n| variant | MB/trace | size vs pickle+gzip | write MB/s | write speedup | read MB/s | read speedup |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['bytes'] / n / 1e6:.2f} | {r['bytes'] / base['bytes']:.3f} | "
              f"{raw / r['write_s'] / 1e6:.0f} | {base['write_s'] / r['write_s']:.1f}x | "
              f"{raw / r['read_s'] / 1e6:.0f} | {base['read_s'] / r['read_s']:.1f}x |")


if __name__ == "__main__":
    main()
