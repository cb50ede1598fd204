"""Sampling baselines: each score against a hand-worked example, then a planted run (feature store + samples
store joined by question id) where semantic entropy separates and the log-prob baselines do not."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from planted_store import planted_schema, planted_trace

from truthtrace.detectors import get_detector, load_detector
from truthtrace.detectors.eigenscore import clip_bounds, eigenscore
from truthtrace.detectors.sampled import selfcheck_unigram, semantic_entropy
from truthtrace.detectors.sep import best_split
from truthtrace.detectors.train import TrainConfig, train
from truthtrace.evaluation.evaluate import EvalConfig, evaluate
from truthtrace.features import PreprocessConfig, preprocess
from truthtrace.features.dataset import FeatureDataset, make_loader
from truthtrace.labels.io import write_labels
from truthtrace.store import TraceWriter
from truthtrace.features import samples as fmt
from truthtrace.traces.clusters import offline_clusters

K, D, N = 10, 16, 200
POOL = ["Paris", "Lyon", "Nice", "Lille", "Rome", "Oslo", "Bern", "Kyiv"]
CONFIDENTLY_WRONG = 0.25  # hallucinated answers whose samples agree: no sampling baseline sees them
SAMPLING = ("semantic_entropy", "eigenscore", "selfcheck_ngram", "p_true", "sep")


# --- hand-worked examples ---------------------------------------------------------------------------------

def test_semantic_entropy_of_known_clusters():
    assert semantic_entropy([0, 0, 0, 0]) == 0.0
    assert semantic_entropy([0, 0, 0, 1]) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert semantic_entropy([0, 1, 2, 3]) == pytest.approx(math.log(4))
    # probability weighting: samples weighted by exp(mean log-prob), 0.5 + 0.25 vs 0.25 -> p = (0.75, 0.25)
    lp = np.log([0.5, 0.25, 0.25])
    assert semantic_entropy([0, 0, 1], lp) == pytest.approx(semantic_entropy([0, 0, 0, 1]))
    det = get_detector("semantic_entropy", weighting="probability")
    batch = {fmt.SAMPLE_CLUSTER_IDS: torch.tensor([[0., 0, 1], [0, 0, 0]]), fmt.SAMPLE_LOGPROB_MEAN: torch.tensor(
        [lp.tolist(), lp.tolist()], dtype=torch.float32)}
    np.testing.assert_allclose(det.score([batch]), [semantic_entropy([0, 0, 0, 1]), 0.0], rtol=1e-6)


def test_eigenscore_of_known_embeddings():
    alpha = 1e-3
    z1, z2 = [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]  # each centred; |z1|^2 = 2, |z2|^2 = 6, orthogonal
    # Sigma = Z^T J Z / (d - 1) = diag(2, 6) / 2 = diag(1, 3)
    assert eigenscore(np.array([z1, z2]), alpha) == pytest.approx((math.log(1 + alpha) + math.log(3 + alpha)) / 2)
    # the same answer twice: Sigma = [[1, 1], [1, 1]], eigenvalues 0 and 2
    assert eigenscore(np.array([z1, z1]), alpha) == pytest.approx((math.log(alpha) + math.log(2 + alpha)) / 2)
    # J_d centres each embedding over its features: a constant added to one embedding changes nothing
    assert eigenscore(np.array([z1, np.add(z2, 5.0)]), alpha) == pytest.approx(eigenscore(np.array([z1, z2]), alpha))


def test_eigenscore_feature_clipping_bounds_outliers():
    rng = np.random.default_rng(0)
    bank = rng.normal(size=(1000, 4))
    lo, hi = clip_bounds(bank, 0.2)
    np.testing.assert_allclose(lo, np.percentile(bank, 0.2, axis=0))
    np.testing.assert_allclose(hi, np.percentile(bank, 99.8, axis=0))
    det = get_detector("eigenscore")
    det.fit([{fmt.SAMPLE_EMBEDDINGS: torch.tensor(bank.reshape(100, 10, 4))}], [])
    z = rng.normal(size=(1, 5, 4))
    z_out = z.copy()
    z_out[0, 0, 1] = 1e6  # one extreme activation
    clipped = np.clip(z_out[0], lo, hi)
    assert det.score([{fmt.SAMPLE_EMBEDDINGS: torch.tensor(z_out)}])[0] == pytest.approx(eigenscore(clipped))
    assert get_detector("eigenscore", clip_percentile=0).fit(
        [{fmt.SAMPLE_EMBEDDINGS: torch.tensor(bank.reshape(100, 10, 4))}], []) is not None


def test_selfcheck_unigram_by_hand():
    # counts over the answer and its samples: paris 1 + 2, lyon 1 -> N = 4
    assert selfcheck_unigram("Paris", ["Paris", "Lyon", "paris"]) == pytest.approx(-math.log(3 / 4))
    # "Paris Lyon" + samples: paris 3, lyon 2, N = 5
    assert selfcheck_unigram("Paris Lyon", ["Paris", "Lyon", "Paris"]) == pytest.approx(
        (-math.log(3 / 5) - math.log(2 / 5)) / 2)
    assert selfcheck_unigram("Paris Lyon", ["Paris", "Lyon", "Paris"], aggregate="max") == pytest.approx(
        -math.log(2 / 5))
    # add-1 smoothing: V = 2 types + the unknown token
    assert selfcheck_unigram("Paris Lyon", ["Paris", "Lyon", "Paris"], k=1) == pytest.approx(
        (-math.log(4 / 8) - math.log(3 / 8)) / 2)
    det = get_detector("selfcheck_ngram")
    batch = {fmt.SAMPLE_GREEDY: ["Paris", "Rome"], fmt.SAMPLE_TEXTS: [["Paris", "Lyon", "paris"], ["a", "b", "c"]]}
    np.testing.assert_allclose(det.score([batch]), [-math.log(3 / 4), -math.log(1 / 4)])


def test_p_true_detector_is_one_minus_p_true():
    det = get_detector("p_true")
    np.testing.assert_allclose(det.score([{fmt.SAMPLE_P_TRUE: torch.tensor([0.9, 0.2])}]), [0.1, 0.8], rtol=1e-6)


def test_best_split_of_two_groups():
    assert best_split(np.array([0.0, 0.1, 0.2, 1.5, 1.6])) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="nothing to learn"):
        best_split(np.zeros(5))


# --- a planted run ----------------------------------------------------------------------------------------

def _consistent(rng, word: str) -> list[str]:
    """K samples repeating ``word`` 9 times in 10, in other words ("paris.", "It is Paris")."""
    forms = [word, word.lower() + ".", f"It is {word}", f"{word}, I think"]
    return [forms[rng.integers(4)] if rng.random() < 0.9 else POOL[rng.integers(len(POOL))] for _ in range(K)]


def _samples(rng, label: int) -> tuple[str, list[str]]:
    """Greedy answer and K samples: a correct answer is sampled again (in other words); a hallucinated one is
    one guess among many, except a quarter that are confidently wrong (consistent samples: SE cannot tell)."""
    if not label:
        return "Paris", _consistent(rng, "Paris")
    greedy = POOL[rng.integers(1, len(POOL))]
    if rng.random() < CONFIDENTLY_WRONG:
        return greedy, _consistent(rng, greedy)
    return greedy, [POOL[j] for j in rng.integers(0, len(POOL), K)]


def _write_samples(path, labels: list[int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    vectors = {w: rng.normal(size=D) for w in POOL}  # each meaning has its embedding direction
    schema = {"kind": fmt.SAMPLES_KIND, "model": "planted", "n_samples": K, "embedding_layer": 2}
    with TraceWriter(path, schema, storage_dtype="float32") as w:
        for i, label in enumerate(labels):
            greedy, texts = _samples(rng, label)
            clusters = offline_clusters(texts)
            meaning = [next(p for p in POOL if p.lower() in t.lower()) for t in texts]
            emb = np.stack([vectors[m] + 0.1 * rng.normal(size=D) for m in meaning])
            n = rng.integers(1, 4, K)
            logprobs = -rng.random((K, 3)) * (np.arange(3)[None] < n[:, None])  # noise, zero-padded
            w.add(f"q{i:03d}", {fmt.LOGPROBS: torch.tensor(logprobs, dtype=torch.float32),
                                fmt.ENTROPY: torch.tensor(rng.random((K, 3)), dtype=torch.float32),
                                fmt.N_TOKENS: torch.tensor(n, dtype=torch.int32),
                                fmt.EMBEDDING: torch.tensor(emb, dtype=torch.float32),
                                fmt.CLUSTER_IDS: torch.tensor(clusters, dtype=torch.int32),
                                fmt.P_TRUE: torch.tensor([rng.random()], dtype=torch.float32)},
                  {"question_id": f"q{i:03d}", "greedy": greedy, "samples": texts,
                   "sample_ids": [fmt.sample_id(f"q{i:03d}", k) for k in range(K)]})


def _planted_run(root, n: int = N, seed: int = 0):
    """One trace per question (the label planted in hidden layer 2), its feature store and labels.csv."""
    labels = [int(x) for x in np.random.default_rng(seed + 1).permutation(n) < n // 2]
    rows = []
    with TraceWriter(root / "traces", planted_schema(3, 2, D), shard_max_traces=64) as w:
        for i, label in enumerate(labels):
            tensors, meta = planted_trace(i, label, layers=3, heads=2, d=D, n_tokens=10, planted_layer=2,
                                          planted_attn_layer=2, shift=3.0, seed=seed)
            meta["question_id"] = f"q{i:03d}"
            w.add(f"t{i:03d}", tensors, meta)
            rows.append({"trace_id": f"t{i:03d}", "question_id": meta["question_id"], "category": meta["category"],
                         "exact_match": 1 - label, "contains": 1 - label, "f1": float(1 - label),
                         "rougeL": float(1 - label), "correct": 1 - label, "hallucinated": label,
                         "generation": meta["generation"], "answers": "yes|right"})
    write_labels(rows, root / "labels.csv")
    preprocess(root / "traces", root / "features", PreprocessConfig(graphs=False), labels=root / "labels.csv",
               progress=False)
    return root / "features", root / "labels.csv", labels


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    feats, labels_csv, labels = _planted_run(root)
    _write_samples(root / "samples", labels)  # beside the feature store: found without being named
    detectors = SAMPLING + ("perplexity", "max_entropy", "probe")
    summary = train(feats, labels_csv, root / "det", TrainConfig(detectors=detectors), progress=False)
    report = evaluate(feats, labels_csv, root / "det", root / "report", EvalConfig(n_bootstrap=100, figures=False))
    return root, summary, {r["detector"]: r for r in report["results"]}


def test_join_yields_sample_keys_by_question_id(planted):
    root, _, _ = planted
    keys = (fmt.SAMPLE_CLUSTER_IDS, fmt.SAMPLE_EMBEDDINGS, fmt.SAMPLE_TEXTS, fmt.SAMPLE_GREEDY, fmt.SAMPLE_P_TRUE,
            fmt.SAMPLE_LOGPROB_MEAN, fmt.SAMPLE_N_TOKENS)
    ds = FeatureDataset(root / "features", split="val", labels=root / "labels.csv", keys=keys)
    batch = next(iter(make_loader(ds, batch_size=8, num_workers=0)))
    b = len(batch["trace_id"])
    assert batch[fmt.SAMPLE_CLUSTER_IDS].shape == (b, K) and batch[fmt.SAMPLE_EMBEDDINGS].shape == (b, K, D)
    assert batch[fmt.SAMPLE_P_TRUE].shape == (b,) and len(batch[fmt.SAMPLE_TEXTS][0]) == K
    store = fmt.open_samples(root / "samples")
    qid = batch["question_id"][0]
    assert batch[fmt.SAMPLE_TEXTS][0] == store.meta(qid)["samples"]
    n = store.read(qid, fmt.N_TOKENS).float()
    torch.testing.assert_close(batch[fmt.SAMPLE_LOGPROB_MEAN][0], store.read(qid, fmt.LOGPROBS).sum(1) / n)


def test_semantic_entropy_separates_where_log_probs_do_not(planted):
    _, summary, rows = planted
    assert set(SAMPLING) | {"perplexity", "max_entropy"} <= set(rows)  # (evaluate may add a stack row)
    # a quarter of the hallucinated answers are confidently wrong, so ~0.75 + 0.25 / 2 is the most one can get
    for name in ("semantic_entropy", "eigenscore", "selfcheck_ngram"):
        assert 0.78 < rows[name]["test_auroc"] < 0.96, (name, rows[name]["test_auroc"])
    for name in ("perplexity", "max_entropy", "p_true"):  # pure noise in this store
        assert 0.3 < rows[name]["test_auroc"] < 0.7, (name, rows[name]["test_auroc"])
    assert rows["semantic_entropy"]["family"] == "training-free" and rows["sep"]["family"] == "learned"


def test_sep_learns_the_entropy_from_the_planted_layer_and_scores_without_samples(planted):
    root, summary, rows = planted
    info = summary["detectors"]["sep"]["seed-0"]
    assert info["layer"] == 2 and info["val_se_auroc"] > 0.65  # the layer that carries the signal
    # the planted layer shifts every hallucinated trace, the confidently wrong too: SEP, fitted to SE, ranks
    # them with the others, and beats SE itself here
    assert rows["sep"]["test_auroc"] > rows["semantic_entropy"]["test_auroc"]
    det = load_detector(root / "det" / "sep" / "seed-0")
    assert det.inputs == (info["position"],)  # after fitting it reads one hidden state, no samples
    ds = FeatureDataset(root / "features", split="test", labels=root / "labels.csv", keys=det.inputs,
                        samples=root / "nowhere")
    assert len(det.score(make_loader(ds, batch_size=16, num_workers=0))) == ds.n_samples


def test_missing_samples_skip_the_detectors_with_a_message(tmp_path):
    feats, labels_csv, _ = _planted_run(tmp_path, n=40)
    with pytest.raises(ValueError, match="truthtrace sample"):
        FeatureDataset(feats, split="train", keys=(fmt.SAMPLE_CLUSTER_IDS,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = train(feats, labels_csv, tmp_path / "det", TrainConfig(detectors=("semantic_entropy", "perplexity")),
                        progress=False)
    assert summary["detectors"]["semantic_entropy"]["seed-0"]["skipped"].startswith("no samples")
    assert any("semantic_entropy skipped" in str(w.message) for w in caught)
    assert "val_auroc" in summary["detectors"]["perplexity"]["seed-0"]
    assert not (tmp_path / "det" / "semantic_entropy").exists()


def test_a_samples_store_missing_questions_is_named(tmp_path):
    feats, _, labels = _planted_run(tmp_path, n=40)
    _write_samples(tmp_path / "samples", labels[:10])
    with pytest.raises(ValueError, match="no samples of .* questions"):
        FeatureDataset(feats, split=None, keys=(fmt.SAMPLE_CLUSTER_IDS,))


def test_the_live_engine_leaves_out_detectors_that_need_samples(planted):
    from truthtrace.inference.detectors import load_detector_set

    root, _, _ = planted
    with pytest.warns(UserWarning, match="need several sampled answers"):
        live = load_detector_set(root / "det")
    names = {d.name for d in live.detectors}
    assert "sep" in names and "perplexity" in names and not names & {"semantic_entropy", "eigenscore", "p_true"}
    with pytest.raises(ValueError, match="cannot score one live answer"):
        load_detector_set(root / "det" / "semantic_entropy")


def test_a_view_of_links_to_the_feature_store_finds_its_samples(planted, tmp_path):
    root, _, _ = planted
    view = tmp_path / "report" / "view"  # as evaluate --split category links the store per category
    view.mkdir(parents=True)
    for f in (root / "features").iterdir():
        (view / f.name).symlink_to(f)
    ds = FeatureDataset(view, split="test", labels=root / "labels.csv", keys=(fmt.SAMPLE_CLUSTER_IDS,))
    assert ds.samples_dir == (root / "samples").resolve()


def test_p_true_without_stored_values_is_skipped(tmp_path):
    det = get_detector("p_true")
    val = [{fmt.SAMPLE_P_TRUE: torch.tensor([float("nan")] * 4), "label": torch.tensor([0, 1, 0, 1])}]
    with pytest.raises(ValueError, match="no-p-true"):
        det.fit([], val)


def test_evaluate_leaves_out_sampling_baselines_whose_samples_are_gone(planted, tmp_path):
    import shutil

    root, _, _ = planted
    run = tmp_path / "run"
    shutil.copytree(root / "features", run / "features")
    shutil.copytree(root / "det", run / "det")
    with pytest.warns(UserWarning, match="semantic_entropy not graded: .*truthtrace sample"):
        report = evaluate(run / "features", root / "labels.csv", run / "det", run / "report",
                          EvalConfig(n_bootstrap=50, figures=False))
    names = {r["detector"] for r in report["results"]}
    assert "perplexity" in names and "sep" in names and not names & {"semantic_entropy", "eigenscore", "p_true"}


def test_the_report_pairs_the_best_single_pass_detector_with_the_best_sampling_baseline(planted):
    root, _, rows = planted
    report = json.loads((root / "report" / "report.json").read_text())
    c = report["sampling_comparison"]
    sampling = {n: r["test_auroc"] for n, r in rows.items() if n in SAMPLING}
    assert c["best_learned"] == "probe"  # sep reads samples and the stack reads the baselines' scores
    assert c["best_sampling"] == max(sampling, key=sampling.get) and c["sampling_auroc"] == sampling[c["best_sampling"]]
    assert c["difference"] == pytest.approx(rows["probe"]["test_auroc"] - c["sampling_auroc"], abs=0.02)
    lo, hi = c["difference_ci"]
    assert lo <= c["difference"] <= hi and c["significant"] == (lo > 0)
    assert f"best sampling baseline `{c['best_sampling']}`" in (root / "report" / "report.md").read_text()
