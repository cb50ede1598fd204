"""Fuzz the readers of untrusted files: the unpickler, the question loaders and the trace store.

Each target gets random and mutated inputs (fixed seeds, a fixed number of inputs, and a time
bound as a safety net) and may end only in its documented errors: no other exception type, no
crash (a crash would kill the test process), and no file written outside the test's folder.
Every result is touched (arrays summed, strings built) so a forged pointer would be dereferenced.
Run with ``-s`` to see the number of inputs tried per target.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_traces import make_trace

from truthtrace.data.loaders import load_questions
from truthtrace.store import StoreError, TraceStore, TraceWriter
from truthtrace.traces.importing.isolated import PickleCrashed, load_isolated
from truthtrace.traces.importing.safe_pickle import PickleRefused, load_pickle

TIME_BOUND_S = 20.0
SCHEMA = {"kind": "truthtrace.traces", "model": "fuzz", "n_layers": 2, "n_heads": 2, "d_model": 16,
          "hidden_layers": [0, 1, 2], "attn_layers": [0, 1]}


def mutate(data: bytes, rng: random.Random, donors: list[bytes]) -> bytes:
    """One to four edits: flip, overwrite, insert, delete, truncate, duplicate or splice from a donor."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op, at = rng.randrange(7), rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(at, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(at, len(buf) - 1)] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif op == 2:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3:
            del buf[at:at + rng.randint(1, 16)]
        elif op == 4:
            del buf[at:]
        elif op == 5:
            buf[at:at] = buf[at:at + rng.randint(1, 32)]
        else:
            donor = rng.choice(donors)
            start = rng.randrange(len(donor) + 1)
            buf[at:at] = donor[start:start + rng.randint(1, 64)]
    return bytes(buf)


def touch(obj, depth: int = 0) -> None:
    """Read every value of ``obj`` (arrays summed), as the import stage would."""
    if depth > 50:
        return
    if isinstance(obj, np.ndarray):
        obj.sum() if obj.dtype.kind in "biufc" else obj.tolist()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            touch(k, depth + 1), touch(v, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            touch(v, depth + 1)
    else:
        repr(obj)


def fuzz(seeds: list[bytes], n: int, target, allowed: tuple, seed: int) -> int:
    """Feed ``n`` random and mutated inputs to ``target(bytes)``; return how many were tried."""
    rng, deadline, tried = random.Random(seed), time.monotonic() + TIME_BOUND_S, 0
    for i in range(n):
        if time.monotonic() > deadline:
            break
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64))) if i % 10 == 0 else \
            mutate(rng.choice(seeds), rng, seeds)
        try:
            target(data)
        except allowed:
            pass
        tried += 1
    return tried


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in ``tmp_path`` and check that nothing was written to the working folder or home."""
    watched = [Path.cwd(), Path.home()]
    before = {p: sorted(os.listdir(p)) for p in watched}
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert {p: sorted(os.listdir(p)) for p in watched} == before


def pickle_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rec = {"id": "r0", "hidden_states": [rng.standard_normal((3, 4)).astype(np.float16) for _ in range(2)],
           "input_ids": np.arange(3), "label": np.int64(1), "answers": ["a", "b"], "score": np.float32(0.5),
           "extra": {(1, 2): {"x", "y"}, "b": b"\x00", "c": 1j}}
    return [pickle.dumps([rec], protocol=p) for p in range(6)] + [gzip.compress(pickle.dumps(rec, protocol=4))]


def test_fuzz_unpickler(in_tmp):
    path = in_tmp / "fuzz.pkl"

    def target(data: bytes) -> None:
        path.write_bytes(data)
        touch(load_pickle(path))

    tried = fuzz(pickle_seeds(), 5000, target, (PickleRefused, pickle.UnpicklingError), seed=1)
    gz = in_tmp / "fuzz.pkl.gz"

    def target_gz(data: bytes) -> None:
        gz.write_bytes(data)
        touch(load_pickle(gz))

    tried += fuzz([gzip.compress(s) for s in pickle_seeds()], 500, target_gz, (pickle.UnpicklingError,), seed=2)
    print(f"\nunpickler: {tried} inputs")
    assert tried >= 500


def test_fuzz_isolated_reader(in_tmp):
    """Fewer inputs (a child process each): refusals and errors cross the process boundary, nothing crashes."""
    path = in_tmp / "fuzz.pkl"

    def target(data: bytes) -> None:
        path.write_bytes(data)
        try:
            touch(load_isolated(path))
        except PickleCrashed as err:
            raise AssertionError(f"the reader process crashed: {err}") from None

    tried = fuzz(pickle_seeds(), 40, target, (PickleRefused, pickle.UnpicklingError), seed=5)
    print(f"\nisolated reader: {tried} inputs")
    assert tried >= 20


QUESTION_SEEDS = {
    "jsonl": b'{"id": "q1", "question": "Who wrote Hamlet?", "answers": ["Shakespeare"]}\n'
             b'{"id": "q2", "question": "Capital of France?", "answer": "Paris", "category": "geo"}\n',
    "json": json.dumps([{"id": "q1", "question": "2+2?", "answers": ["4", "four"]}]).encode(),
    "csv": b"id,question,answer\nq1,Who painted the Mona Lisa?,Leonardo da Vinci\nq2,\"A, b?\",c\n",
}


@pytest.mark.parametrize("suffix", sorted(QUESTION_SEEDS))
def test_fuzz_question_loaders(in_tmp, suffix):
    path = in_tmp / f"questions.{suffix}"

    def target(data: bytes) -> None:
        path.write_bytes(data)
        for q in load_questions(path):
            repr(q)

    tried = fuzz(list(QUESTION_SEEDS.values()), 3000, target, (ValueError,), seed=3)
    print(f"\nquestion loader ({suffix}): {tried} inputs")
    assert tried >= 300


def small_store(root: Path) -> Path:
    with TraceWriter(root, SCHEMA, shard_max_traces=2) as w:
        for i in range(3):
            w.add(f"t{i}", make_trace(i, n_tokens=5), {"question": f"q{i}"})
    return root


def read_everything(root: Path) -> None:
    store = TraceStore(root)
    for trace_id in store.ids():
        for key in store.keys(trace_id):
            t = store.read(trace_id, key)
            assert isinstance(t, torch.Tensor)
            float(t.float().sum())
        repr(store.meta(trace_id))


def test_fuzz_store_reader(in_tmp):
    """Mutate index.json, one shard document and one shard's bytes; read every tensor of the store."""
    clean = small_store(in_tmp / "clean")
    files = sorted(p.relative_to(clean) for p in clean.iterdir() if p.is_file() and not p.name.endswith(".lock"))
    originals = {f: (clean / f).read_bytes() for f in files}
    work, tried, rng = in_tmp / "work", 0, random.Random(4)
    for f in files:
        def target(data: bytes, f=f) -> None:
            for g in files:
                (work / g).write_bytes(data if g == f else originals[g])
            read_everything(work)

        work.mkdir(exist_ok=True)
        tried += fuzz([originals[f]], 1200 if f.name == "index.json" else 600, target, (StoreError,),
                      seed=rng.randrange(10**6))
    print(f"\nstore reader: {tried} inputs over {len(files)} files")
    assert tried >= 300
