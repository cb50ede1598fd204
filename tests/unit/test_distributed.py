"""Beyond one process: id slices, merge-stores, DDP training with 2 CPU ranks under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from truthtrace.detectors.train import TrainConfig, train
from truthtrace.distributed import rank_dir, slice_for_rank
from truthtrace.features.dataset import FeatureDataset, collate
from truthtrace.store import StoreError, TraceStore, TraceWriter
from truthtrace.store.merge import merge_stores

HERE = Path(__file__).parent
SCHEMA = {"kind": "truthtrace.traces", "model": "m", "n_layers": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_ranks(cmd: list[str], timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Run a launcher command (one thread per rank); on a timeout kill its whole session, ranks included."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent.parent / "src"), **env}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM: torchrun stops its ranks (they run in sessions of their own), which SIGKILL would orphan
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert proc.returncode == 0, err[-4000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchrun(*args: str, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run --nproc-per-node N ARGS`` on a free port, one thread per rank."""
    return launch_ranks([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                         "--master-addr", "127.0.0.1", "--master-port", str(free_port()), *args], timeout)


def write_store(path: Path, ids: list[str], seed: int = 0, schema: dict = SCHEMA, shard_max_traces: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    with TraceWriter(path, schema, shard_max_traces=shard_max_traces) as w:
        for i in ids:
            w.add(i, {"layers.0.hidden": torch.randn(5, 4, generator=g), "tokens": torch.arange(5)}, {"q": i})


def test_slices_are_disjoint_and_cover():
    items = [f"q{i}" for i in range(11)]
    shares = [slice_for_rank(items, r, 3) for r in range(3)]
    assert sorted(sum(shares, [])) == sorted(items) and not set(shares[0]) & set(shares[1])
    assert [len(s) for s in shares] == [4, 4, 3] and shares == [slice_for_rank(items, r, 3) for r in range(3)]
    assert rank_dir("out", 1) == Path("out/rank-1")
    with pytest.raises(ValueError, match="rank must be in"):
        slice_for_rank(items, 3, 3)


def test_merge_equals_one_store_id_for_id(tmp_path):
    ids = [f"t{i:02d}" for i in range(7)]
    write_store(tmp_path / "all", ids)
    g = torch.Generator().manual_seed(0)  # the same tensors, split over two "ranks" round-robin
    tensors = {i: {"layers.0.hidden": torch.randn(5, 4, generator=g), "tokens": torch.arange(5)} for i in ids}
    for r in range(2):
        with TraceWriter(tmp_path / f"rank-{r}", SCHEMA, shard_max_traces=2) as w:
            for i in slice_for_rank(ids, r, 2):
                w.add(i, tensors[i], {"q": i})
    summary = merge_stores(tmp_path / "merged", [tmp_path / "rank-0", tmp_path / "rank-1"])
    assert summary["n_traces"] == 7 and summary["n_shards"] == 4
    merged, single = TraceStore(tmp_path / "merged"), TraceStore(tmp_path / "all")
    assert sorted(merged.ids()) == sorted(single.ids()) and merged.verify() == []
    for i in ids:
        assert merged.meta(i) == single.meta(i)
        for key in single.keys(i):
            assert torch.equal(merged.read(i, key), single.read(i, key))
    assert merged.schema == single.schema
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_merge_refusals(tmp_path):
    write_store(tmp_path / "a", ["x", "y"])
    write_store(tmp_path / "b", ["y", "z"])
    with pytest.raises(StoreError, match="trace id 'y' is also in"):
        merge_stores(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    write_store(tmp_path / "c", ["w"], schema={**SCHEMA, "n_layers": 3})
    with pytest.raises(StoreError, match="n_layers: stored 2, given 3"):
        merge_stores(tmp_path / "m", [tmp_path / "a", tmp_path / "c"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an empty folder"):
        merge_stores(tmp_path / "full", [tmp_path / "a"])
    with pytest.raises(StoreError, match="one of the inputs"):
        merge_stores(tmp_path / "a", [tmp_path / "a"])
    write_store(tmp_path / "d", ["v"])
    shard = next((tmp_path / "d").glob("shard.*.bin"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="sha256 does not match"):
        merge_stores(tmp_path / "m", [tmp_path / "a", tmp_path / "d"])
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))  # nothing half-merged is left


def test_merge_stores_cli(tmp_path):
    from truthtrace.cli import main

    write_store(tmp_path / "a", ["x"])
    write_store(tmp_path / "b", ["y"])
    main(["merge-stores", str(tmp_path / "m"), str(tmp_path / "a"), str(tmp_path / "b")])
    assert sorted(TraceStore(tmp_path / "m").ids()) == ["x", "y"]


def write_questions(path: Path, n: int) -> Path:
    questions = [{"id": f"q{i}", "question": f"What is {i} plus {i}?", "answers": [str(2 * i)]} for i in range(n)]
    path.write_text("".join(json.dumps(q) + "\n" for q in questions))
    return path


def extract_args(root: Path) -> list[str]:
    """The sharded-extract case: 5 questions, batch 1 on one thread (deterministic capture, so bit-exact)."""
    return ["--model", str(root / "model"), "--questions", str(root / "q5.jsonl"), "--max-new-tokens", "4",
            "--batch-size", "1", "--threads", "1", "--layers", "0-2", "--attn-layers", "0,1"]


def features_args(root: Path) -> list[str]:
    return ["--model", str(root / "model"), "--questions", str(root / "q6.jsonl"), "--max-new-tokens", "4",
            "--batch-size", "1", "--threads", "1", "--trace-sample", "3"]


def job_summary(root: Path, job: int, rank: int) -> dict:
    """The JSON summary ``truthtrace extract`` printed in job ``job`` on rank ``rank`` of :func:`launch`."""
    text = (root / f"jobs.json.{job}.rank{rank}.out").read_text()
    return json.loads(text[text.index("{"):])


@pytest.fixture(scope="module")
def launch(tmp_path_factory, tiny_model, tiny_tokenizer) -> Path:
    """ONE torchrun launch (2 CPU ranks) runs every distributed job of this file, in order: DDP gradients and fit,
    ``train`` and its resume, ``extract`` and its resume, ``extract --features``, ``preprocess`` and its resume.

    Each torchrun launch costs every rank its interpreter, torch and transformers imports (~7 s of CPU on
    2 shared cores); one launch pays them once. The jobs share one process group (see ``dist_worker.py jobs``);
    a failing job stops the launch, and every test here fails with its stderr.
    """
    sys.path.insert(0, str(HERE))
    from planted_store import make_planted_store

    from truthtrace.features.build import preprocess
    from truthtrace.features.config import PreprocessConfig

    root = tmp_path_factory.mktemp("dist")
    tiny_model.save_pretrained(root / "model")
    tiny_tokenizer.save_pretrained(root / "model")
    write_questions(root / "q5.jsonl", 5)
    write_questions(root / "q6.jsonl", 6)
    store, labels = make_planted_store(root, n=400, layers=2, heads=2, d=8, shift=0.7)
    preprocess(store, root / "feats", PreprocessConfig(graphs=False), labels=labels, progress=False)
    train_job = [str(root / "feats"), str(labels), str(root / "ddp")]
    (root / "pp").mkdir()
    pp_store, pp_labels = make_planted_store(root / "pp", n=12, layers=2, heads=2, d=8, shard_max_traces=4)
    preprocess_job = ["cli", "preprocess", str(pp_store), "--out", str(root / "pp" / "f2"), "--json",
                      "--labels", str(pp_labels), *PREPROCESS_ARGS]
    jobs = [["ddp", str(root / "ddp.json")],
            ["train", str(root / "t.json"), *train_job],
            ["train", str(root / "t2.json"), *train_job],  # resumes: nothing to fit
            ["cli", "extract", "--out", str(root / "ranks"), *extract_args(root)],
            ["cli", "extract", "--out", str(root / "ranks"), *extract_args(root)],  # resumes every rank, merges again
            ["cli", "extract", "--out", str(root / "franks"), "--features", str(root / "f2"), *features_args(root)],
            preprocess_job, preprocess_job]  # jobs 6 and 7: preprocess, then its resume
    (root / "jobs.json").write_text(json.dumps(jobs))
    torchrun(str(HERE / "dist_worker.py"), "jobs", str(root / "jobs.json"))
    return root


@pytest.fixture(scope="module")
def one_store(launch) -> Path:
    """The sharded-extract case in one process."""
    from truthtrace.cli import main

    main(["extract", "--out", str(launch / "one"), *extract_args(launch)])
    return launch / "one"


def assert_stores_equal(a: TraceStore, b: TraceStore) -> None:
    """Same ids, keys, metadata and tensors (bit for bit)."""
    assert sorted(a.ids()) == sorted(b.ids()) and a.verify() == []
    for i in b.ids():
        assert a.keys(i) == b.keys(i) and a.meta(i) == b.meta(i)
        for key in b.keys(i):
            assert torch.equal(a.read(i, key), b.read(i, key)), (i, key)


def test_ddp_two_ranks_gradients_agree_and_auroc_matches_one_rank(launch):
    sys.path.insert(0, str(HERE))
    import dist_worker

    docs = [json.loads((launch / f"ddp.json.rank{r}").read_text()) for r in range(2)]
    assert docs[0]["shares"] == ["q0", "q2", "q4", "q6", "q8", "q10"] and docs[1]["shares"] == ["q1", "q3", "q5",
                                                                                                "q7", "q9"]
    for doc in docs:
        assert doc["world"] == 2 and doc["ranks_equal"] and doc["max_diff_vs_mean"] < 1e-6
    assert docs[0]["param_sum"] == docs[1]["param_sum"]  # DDP kept the ranks' weights identical
    one = dist_worker.fit_and_test()
    assert abs(docs[0]["test_auroc"] - one["test_auroc"]) < 0.01


def test_sharded_extract_two_ranks_equals_one_process(launch, one_store):
    ranks = [TraceStore(launch / "ranks" / f"rank-{r}") for r in range(2)]
    assert sorted(ranks[0].ids()) == ["q0", "q2", "q4"] and sorted(ranks[1].ids()) == ["q1", "q3"]
    # batch size 1 on one thread: the capture is deterministic, so bit-exact
    assert_stores_equal(TraceStore(launch / "ranks" / "merged"), TraceStore(one_store))
    first, again = job_summary(launch, 3, 0), job_summary(launch, 4, 0)
    assert first["n_new"] == 3 and first["merged"]["n_traces"] == 5
    # the second run resumed every rank (nothing to extract) and merged again
    assert again["n_new"] == 0 and again["n_skipped"] == 3 and again["merged"]["n_traces"] == 5
    assert job_summary(launch, 4, 1)["n_new"] == 0 and "merged" not in job_summary(launch, 4, 1)


def test_accelerate_launch_extract_equals_torchrun(launch, one_store, tmp_path):
    """``accelerate launch --multi_gpu`` runs torchrun's launcher (RANK/WORLD_SIZE set), also on a CPU-only machine.

    Everything is passed on the command line; HF_HOME points at an empty folder so that no
    ``accelerate config`` default file of the machine running the tests is read.
    """
    pytest.importorskip("accelerate")
    launch_ranks([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                  "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                  "--num_cpu_threads_per_process", "1", "--main_process_ip", "127.0.0.1",
                  "--main_process_port", str(free_port()), "-m", "truthtrace", "extract",
                  "--out", str(tmp_path / "acc"), *extract_args(launch)], HF_HOME=str(tmp_path / "hf"))
    ranks = [TraceStore(tmp_path / "acc" / f"rank-{r}") for r in range(2)]
    assert sorted(ranks[0].ids()) == ["q0", "q2", "q4"] and sorted(ranks[1].ids()) == ["q1", "q3"]
    merged = TraceStore(tmp_path / "acc" / "merged")
    assert_stores_equal(merged, TraceStore(launch / "ranks" / "merged"))
    assert_stores_equal(merged, TraceStore(one_store))


def test_mpirun_extract_equals_torchrun(launch, one_store, tmp_path):
    """Open MPI's ``mpirun -np 2`` (the launcher of accelerate's ``--mpirun_hostfile`` route): the ranks read
    ``OMPI_COMM_WORLD_RANK``/``OMPI_COMM_WORLD_SIZE`` (no ``RANK`` is set), join gloo at ``MASTER_ADDR``, and the
    merged store equals torchrun's and one process's. ``.ci/run`` installs Debian's ``openmpi-bin``."""
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun not installed (Debian: apt-get install openmpi-bin; .ci/run installs it)")
    out = tmp_path / "mpi"
    done = launch_ranks([mpirun, "--allow-run-as-root", "--oversubscribe", "-np", "2", "-x", "MASTER_ADDR=127.0.0.1",
                         "-x", f"MASTER_PORT={free_port()}", "-x", "OMP_NUM_THREADS", "-x", "PYTHONPATH",
                         sys.executable, "-m", "truthtrace", "extract", "--out", str(out), *extract_args(launch)])
    assert "OMPI_COMM_WORLD_RANK" not in os.environ and '"merged"' in done.stdout
    ranks = [TraceStore(out / f"rank-{r}") for r in range(2)]
    assert sorted(ranks[0].ids()) == ["q0", "q2", "q4"] and sorted(ranks[1].ids()) == ["q1", "q3"]
    merged = TraceStore(out / "merged")
    assert_stores_equal(merged, TraceStore(launch / "ranks" / "merged"))
    assert_stores_equal(merged, TraceStore(one_store))


def test_rank_from_launcher_env(monkeypatch):
    from truthtrace import distributed

    for name in (*distributed.RANK_VARS, *distributed.WORLD_VARS, "ACCELERATE_USE_CPU", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.env_world() == (0, 1)
    monkeypatch.setenv("PMI_RANK", "1")  # accelerate's MPI route (--mpirun_hostfile): MPI's names
    monkeypatch.setenv("PMI_SIZE", "3")
    assert distributed.env_world() == (1, 3)
    monkeypatch.setenv("RANK", "0")  # torchrun's (and accelerate launch --multi_gpu's) names win
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.env_world() == (0, 2)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match=r"RANK=2 is not in \[0, WORLD_SIZE=2\)"):
        distributed.env_world()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(ValueError, match="RANK='one' is not an integer"):
        distributed.env_world()
    for name in ("RANK", "WORLD_SIZE", "PMI_RANK", "PMI_SIZE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")  # accelerate launch --cpu --num_processes 2: ONE process
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.warns(UserWarning, match="accelerate launch --cpu started ONE process"):
        assert distributed.env_world() == (0, 1)


def test_train_on_two_ranks_only_rank0_writes(launch, tmp_path):
    docs = [json.loads((launch / f"t.json.rank{r}").read_text()) for r in range(2)]
    assert docs[1]["summary"] is None and not list(launch.glob(".ddp.*"))  # rank 1's scratch copy is gone
    one = train(launch / "feats", launch / "labels.csv", tmp_path / "one",
                TrainConfig(detectors=("probe", "mlp"), seeds=(0,), batch_size=16, num_workers=0), progress=False)
    ddp_runs = docs[0]["summary"]["detectors"]
    # the probe is not a torch detector: every rank fits it on the whole split, as one process does
    assert ddp_runs["probe"]["seed-0"]["val_auroc"] == one["detectors"]["probe"]["seed-0"]["val_auroc"]
    assert abs(ddp_runs["mlp"]["seed-0"]["val_auroc"] - one["detectors"]["mlp"]["seed-0"]["val_auroc"]) < 0.01
    assert (launch / "ddp" / "mlp" / "seed-0" / "config.json").is_file()
    # resuming decides the same on both ranks (else one would wait in an all-reduce forever): nothing to fit
    again = json.loads((launch / "t2.json.rank0").read_text())["summary"]["detectors"]
    assert all(run == {"skipped": "already trained"} for runs in again.values() for run in runs.values())


def test_sharded_extract_features_two_ranks_equals_one_process(launch, tmp_path):
    from truthtrace.cli import main
    from truthtrace.features.splits import read_split

    main(["extract", "--out", str(tmp_path / "one"), "--features", str(tmp_path / "f1"), *features_args(launch)])
    assert sorted(TraceStore(launch / "f2.rank-1.raw").ids()) == ["q1", "q3", "q5"]
    # rank order vs question order; batch size 1 on one thread: deterministic capture, so bit-exact
    assert_stores_equal(TraceStore(launch / "f2"), TraceStore(tmp_path / "f1"))
    assert read_split(launch / "f2") == read_split(tmp_path / "f1")
    assert (launch / "f2" / "pca.safetensors").read_bytes() == (tmp_path / "f1" / "pca.safetensors").read_bytes()
    assert sorted(TraceStore(launch / "franks" / "merged").ids()) == sorted(TraceStore(tmp_path / "one").ids())
    main(["label", str(launch / "f2"), "--out", str(tmp_path / "labels.csv")])

    def n_read(store, split):
        data = FeatureDataset(store, split, tmp_path / "labels.csv")
        return sum(len(b["trace_id"]) for b in DataLoader(data, batch_size=4, collate_fn=collate))

    for split in (None, "train"):  # the training loader reads the merged store as it reads one process's
        assert n_read(launch / "f2", split) == n_read(tmp_path / "f1", split) > 0


PREPROCESS_ARGS = ["--node-dim", "4", "--threads", "1"]


def test_sharded_preprocess_two_ranks_equals_one_process(launch, tmp_path):
    from truthtrace.cli import main
    from truthtrace.features.splits import read_split

    store, labels, f2 = launch / "pp" / "traces", launch / "pp" / "labels.csv", launch / "pp" / "f2"
    threads = torch.get_num_threads()
    try:
        main(["preprocess", str(store), "--out", str(tmp_path / "f1"), "--quiet", "--labels", str(labels),
              *PREPROCESS_ARGS])
    finally:
        torch.set_num_threads(threads)
    ids = TraceStore(store).ids()
    assert TraceStore(launch / "pp" / "f2.rank-1").ids() == slice_for_rank(ids, 1, 2)
    merged, one = TraceStore(f2), TraceStore(tmp_path / "f1")
    assert merged.ids() == one.ids() == ids and merged.verify() == []  # merged in the source store's order
    for i in ids:  # the same code on the same traces with the same PCA: bit-exact
        assert merged.keys(i) == one.keys(i) and merged.meta(i) == one.meta(i)
        for key in one.keys(i):
            assert torch.equal(merged.read(i, key), one.read(i, key)), (i, key)
    assert read_split(f2) == read_split(tmp_path / "f1")
    files = sorted(p.name for p in (tmp_path / "f1").iterdir())  # index, shards, split.json, pca.safetensors
    assert files == sorted(p.name for p in f2.iterdir()) and "pca.safetensors" in files
    assert all((f2 / f).read_bytes() == (tmp_path / "f1" / f).read_bytes() for f in files)
    assert job_summary(launch, 6, 0)["written"] == 12 and not (launch / "pp" / "f2.merge").exists()
    for split in (None, "train"):  # the loader reads both alike
        batches = [list(DataLoader(FeatureDataset(f, split, labels), batch_size=4, collate_fn=collate))
                   for f in (f2, tmp_path / "f1")]
        assert [b["trace_id"] for b in batches[0]] == [b["trace_id"] for b in batches[1]]
        for a, b in zip(*batches):
            assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))
    # the second run (job 7) resumed every rank (nothing to compute) and merged again
    first, again = job_summary(launch, 7, 0), job_summary(launch, 7, 1)
    assert (first["written"], first["skipped"], again["skipped_rank"]) == (0, 12, 6)
    assert TraceStore(f2).ids() == ids
