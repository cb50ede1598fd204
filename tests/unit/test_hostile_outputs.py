"""Issue 10, items 3 and 11: `--overwrite` / `--force` delete only what truthtrace wrote, and `train`
resume refits a detector whose saved weights do not load.

Each test plants the user's files (or a damaged detector) in an output folder, runs the stage, and
checks that the stage refuses, naming the folder and the files, and that nothing of the user's went.
"""

from __future__ import annotations

import warnings

import pytest
from planted_store import make_planted_store
from synthetic_traces import make_trace

from truthtrace.compress import CompressConfig, compress
from truthtrace.detectors.base import load_detector
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.store import StoreError, TraceStore, TraceWriter

SCHEMA = {"model": "tiny", "n_layers": 2}
FAST = {"mlp": {"max_epochs": 2, "sweep_epochs": 1, "patience": 1, "log_dir": None}}


def _listing(folder):
    """Every file under ``folder`` with its bytes: what must not change when a stage refuses."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _store(path, n=2, **kw):
    with TraceWriter(path, SCHEMA, shard_max_traces=2, **kw) as w:
        for i in range(n):
            w.add(f"q{i}", make_trace(i), {"i": i})


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    store, labels = make_planted_store(root, n=60, layers=2, heads=2, d=8)
    feats = root / "feats"
    preprocess(store, feats, PreprocessConfig(graphs=False, shard_max_traces=16), labels=labels, progress=False)
    return store, labels, feats


# --- 3a: compress --force -------------------------------------------------------------------------

def test_compress_force_refuses_a_folder_with_user_files(tmp_path, tiny_model_dir):
    out = tmp_path / "thesis"
    compress(CompressConfig(model=str(tiny_model_dir), out=str(out)))
    (out / "thesis.tex").write_text("two years of work")
    before = _listing(out)
    with pytest.raises(ValueError, match=r"(?s)--out .*thesis holds files truthtrace compress did not write "
                                         r"\(thesis.tex\).*pick another --out"):
        compress(CompressConfig(model=str(tiny_model_dir), out=str(out), force=True))
    assert _listing(out) == before and not list(tmp_path.glob(".thesis.*"))
    (out / "thesis.tex").unlink()  # its own output alone is replaced
    compress(CompressConfig(model=str(tiny_model_dir), out=str(out), force=True, dtype="bf16"))
    assert (out / "compression.json").is_file() and not list(tmp_path.glob(".thesis.*"))


def test_compress_force_refuses_a_model_folder_it_did_not_write(tmp_path, tiny_model_dir, tiny_model):
    out = tmp_path / "my-model"  # the user's own model: the same file names compress writes, no compression.json
    tiny_model.save_pretrained(out)
    before = _listing(out)
    with pytest.raises(ValueError, match=r"my-model holds no compression.json.*pick another --out"):
        compress(CompressConfig(model=str(tiny_model_dir), out=str(out), force=True))
    assert _listing(out) == before


# --- 3b: the trace store writer (extract --out, import, preprocess) ----------------------------------

def test_a_new_store_is_refused_in_a_folder_of_user_files(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("mine")
    (home / "shard.notes.txt").write_text("mine too")
    (home / "photos").mkdir()
    with pytest.raises(StoreError, match=r"home holds files truthtrace's trace store writer did not write "
                                         r"\(notes.txt, photos/, shard.notes.txt\); nothing was deleted"):
        TraceWriter(home, SCHEMA)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "photos", "shard.notes.txt"]  # no lock left


def test_resume_never_deletes_a_user_file_named_like_a_shard(tmp_path):
    _store(tmp_path, n=2)  # one committed shard: shard.00000.*
    (tmp_path / "shard.00001.bin").write_bytes(b"the user's data")  # the next shard's name, not listed
    (tmp_path / "shard.00005.json").write_text("{}")
    with pytest.raises(StoreError, match=r"shard.00001.bin, shard.00005.json named like shard files but not "
                                         r"this store's.*nothing was deleted"):
        TraceWriter(tmp_path, SCHEMA, shard_max_traces=2)
    assert (tmp_path / "shard.00001.bin").read_bytes() == b"the user's data"
    assert (tmp_path / "shard.00005.json").read_text() == "{}" and TraceStore(tmp_path).ids() == ["q0", "q1"]


def test_overwrite_refuses_a_store_folder_holding_user_files(tmp_path):
    _store(tmp_path, n=4)
    (tmp_path / "labels.csv").write_text("trace_id,hallucinated\n")
    (tmp_path / "shard.00007.json").write_text("my notes")  # named like a shard, not one
    before = _listing(tmp_path)
    with pytest.raises(StoreError, match=r"did not write \(labels.csv, shard.00007.json\); nothing was deleted"):
        TraceWriter(tmp_path, SCHEMA, overwrite=True)
    assert _listing(tmp_path) == before and TraceStore(tmp_path).ids() == ["q0", "q1", "q2", "q3"]


def test_overwrite_after_a_lost_index_deletes_only_the_shards_it_can_prove(tmp_path):
    _store(tmp_path, n=4)
    (tmp_path / "index.json").unlink()
    (tmp_path / "shard.00009.bin").write_bytes(b"not ours: no manifest of ours names it")
    before = _listing(tmp_path)
    with pytest.raises(StoreError, match=r"did not write \(shard.00009.bin\)"):
        TraceWriter(tmp_path, SCHEMA, overwrite=True)
    assert _listing(tmp_path) == before
    (tmp_path / "shard.00009.bin").unlink()
    _store(tmp_path, n=1, overwrite=True)  # the proven shards (manifest + matching .bin) are deleted
    assert TraceStore(tmp_path).ids() == ["q0"] and sorted(p.name for p in tmp_path.glob("shard.*")) == [
        "shard.00000.bin", "shard.00000.json"]


# --- 3c: preprocess --overwrite and train --overwrite -------------------------------------------------

def test_preprocess_refuses_an_out_folder_with_user_files(planted, tmp_path):
    store, labels, _ = planted
    cfg = PreprocessConfig(graphs=False, shard_max_traces=16, overwrite=True)
    out = tmp_path / "feats"
    preprocess(store, out, cfg, labels=labels, progress=False)
    (out / "my-analysis.ipynb").write_text("{}")
    before = _listing(out)
    with pytest.raises(StoreError, match=r"feats holds files .* did not write \(my-analysis.ipynb\)"):
        preprocess(store, out, cfg, labels=labels, progress=False)
    assert _listing(out) == before
    (out / "my-analysis.ipynb").unlink()  # its own output (shards, split.json) is replaced
    assert preprocess(store, out, cfg, labels=labels, progress=False)["written"] == 60
    fresh = tmp_path / "documents"
    fresh.mkdir()
    (fresh / "cv.pdf").write_bytes(b"%PDF")
    with pytest.raises(StoreError, match=r"documents holds files .* did not write \(cv.pdf\)"):
        preprocess(store, fresh, PreprocessConfig(graphs=False), labels=labels, progress=False)
    assert sorted(p.name for p in fresh.iterdir()) == ["cv.pdf"]


def test_train_overwrite_refuses_a_detector_folder_with_user_files(planted, tmp_path):
    _, labels, feats = planted
    cfg = TrainConfig(detectors=("probe", "mlp"), detector_args=FAST, overwrite=True)
    out = tmp_path / "det"
    train(feats, labels, out, cfg, progress=False)
    (out / "mlp" / "seed-0" / "plots").mkdir()
    (out / "mlp" / "seed-0" / "plots" / "loss.png").write_bytes(b"png")
    before = _listing(out)
    with pytest.raises(ValueError, match=r"mlp holds files truthtrace train did not write \(seed-0/plots/\)"):
        train(feats, labels, out, cfg, progress=False)
    assert _listing(out) == before  # not even probe/, checked before anything was deleted
    (out / "mlp" / "seed-0" / "plots" / "loss.png").unlink()
    (out / "mlp" / "seed-0" / "plots").rmdir()
    summary = train(feats, labels, out, cfg, progress=False)  # what train wrote (checkpoints too) is replaced
    assert "skipped" not in summary["detectors"]["mlp"]["seed-0"]


# --- 11: train resume verifies a saved detector before skipping it -------------------------------------

@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_train_resume_refits_a_detector_whose_weights_do_not_load(planted, tmp_path, damage):
    _, labels, feats = planted
    cfg = TrainConfig(detectors=("probe",))
    out = tmp_path / "det"
    train(feats, labels, out, cfg, progress=False)
    weights = out / "probe" / "seed-0" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * len(data))
    with pytest.warns(UserWarning, match=r"probe/seed-0/model.safetensors: the saved probe detector does not "
                                         r"load.*training it again"):
        summary = train(feats, labels, out, cfg, progress=False)
    assert "skipped" not in summary["detectors"]["probe"]["seed-0"]
    load_detector(out / "probe" / "seed-0")  # loads again
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact detector is skipped without a word
        again = train(feats, labels, out, cfg, progress=False)
    assert again["detectors"]["probe"]["seed-0"] == {"skipped": "already trained"}
