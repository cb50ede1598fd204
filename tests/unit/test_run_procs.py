"""``run --procs N``: the extract stage on N local processes equals one process, record for record.

Batch size 1 on one thread per rank makes the capture deterministic, so the feature store written by two
local ranks (each taking every other question; rank 0 merges and fits the one PCA) must equal the one a
single process writes, bit for bit; a second run resumes both ranks and writes nothing.
"""

import json

import pytest
import torch

from truthtrace.cli.detect import procs_arg
from truthtrace.data import load_bundled, save_questions
from truthtrace.local_ranks import auto_procs, run_local_ranks
from truthtrace.pipeline import RunConfig, _extract, ranks_for, run_config_from_dict
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig


def config(out, tiny_model_dir, procs: int) -> RunConfig:
    extract = ExtractConfig(model=str(tiny_model_dir), device="cpu", batch_size=1, threads=1, max_new_tokens=4)
    return RunConfig(out_dir=str(out), n_questions=12, extract=extract, procs=procs, trace_sample=3)


def stage(cfg: RunConfig) -> dict:
    questions = load_bundled(n=cfg.n_questions, seed=cfg.seed)
    save_questions(questions, cfg.paths["questions"])
    threads = torch.get_num_threads()
    try:
        return _extract(cfg, questions, None, None, progress=False, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)


def test_two_local_ranks_equal_one_process_and_resume(tmp_path, tiny_model_dir):
    one, two = config(tmp_path / "one", tiny_model_dir, 1), config(tmp_path / "two", tiny_model_dir, 2)
    stage(one)
    summary = stage(two)
    assert summary["procs"] == 2 and summary["n_new"] == 12 and summary["n_traces"] == 3
    a, b = TraceStore(one.paths["features"]), TraceStore(two.paths["features"])
    assert sorted(a.ids()) == sorted(b.ids()) and len(a) == 12  # merged in rank order, not question order
    for i in a.ids():
        assert a.meta(i) == b.meta(i) and a.keys(i) == b.keys(i)
        for key in a.keys(i):
            assert torch.equal(a.read(i, key), b.read(i, key)), (i, key)
    for name in ("split.json", "pca.safetensors"):
        assert (one.paths["features"] / name).read_bytes() == (two.paths["features"] / name).read_bytes()
    assert sorted(TraceStore(two.paths["traces"] / "merged").ids()) == sorted(TraceStore(one.paths["traces"]).ids())
    assert not list(tmp_path.glob("two/features.rank-*")) and not list(two.paths["traces"].glob("rank-*"))
    again = stage(two)  # the rank stores are gone once merged: one process resumes the merged stores
    assert (again["n_new"], again["n_skipped"]) == (0, 12) and "procs" not in again
    assert TraceStore(two.paths["features"]).ids() == b.ids()


def test_one_process_where_ranks_cannot_apply(tmp_path, tiny_model_dir):
    cfg = config(tmp_path, tiny_model_dir, 2)
    assert ranks_for(cfg) == 2 and ranks_for(cfg, model=object()) == 1
    assert ranks_for(config(tmp_path, tiny_model_dir, 1)) == 1
    cfg.paths["features"].mkdir(parents=True)
    (cfg.paths["features"] / "index.json").write_text("{}")  # a store one process wrote: resumed in one
    assert ranks_for(cfg) == 1
    assert run_config_from_dict(json.loads(json.dumps(__import__("dataclasses").asdict(cfg)))) == cfg


def test_procs_arguments():
    assert procs_arg("3", "cpu") == 3 and procs_arg("auto", "cuda") == 1
    assert procs_arg("auto", "cpu") == auto_procs("cpu") >= 1
    for bad in ("0", "-1", "two"):
        with pytest.raises(ValueError, match="--procs"):
            procs_arg(bad, "cpu")
    with pytest.raises(ValueError, match="procs"):
        RunConfig(procs=0)


def test_a_failing_rank_is_named_and_the_others_stopped():
    with pytest.raises(RuntimeError, match=r"rank \d of 2 failed \(exit code 2\)"):
        run_local_ranks(2, ["no-such-command"])
