"""The sample stage on a tiny random Llama: reproducible, resumable samples; stored values equal a live
pass; P(True) and NLI plumbing; offline clusters on a hand-made example."""

import math

import pytest
import torch

from truthtrace.data import Question
from truthtrace.store import StoreError, TraceStore
from truthtrace.features import samples as fmt
from truthtrace.traces.capture import build_prompt_ids
from truthtrace.traces.clusters import NliJudge, offline_clusters
from truthtrace.traces.sampling import P_TRUE_TEMPLATE, SampleConfig, p_true, sample_questions
from truthtrace.traces.seeded import SeededSampling, sample_seed, top_p_filter

QUESTIONS = [Question(id=f"q{i}", question=f"What is {i} plus {i}?", answers=(str(2 * i),), category="numbers")
             for i in range(5)]
K = 4


def _config(**kw):
    return SampleConfig(model="tiny", samples=K, max_new_tokens=5, batch_size=2, shard_max_traces=2, **kw)


def _records(path) -> dict:
    store = TraceStore(path)
    return {i: (store.get(i).tensors(), store.meta(i)) for i in store.ids()}


def _same(a: dict, b: dict, atol: float = 0.0) -> None:
    """The same answers and meta; tensors equal (``atol`` 0) or within ``atol`` (other batch shapes)."""
    assert a.keys() == b.keys()
    for qid in a:
        assert a[qid][1] == b[qid][1]  # texts, ids, greedy, seeds
        for key, value in a[qid][0].items():
            torch.testing.assert_close(value, b[qid][0][key], atol=atol, rtol=atol, equal_nan=True)


@pytest.fixture(scope="module")
def full(tmp_path_factory, tiny_model, tiny_tokenizer):
    out = tmp_path_factory.mktemp("samples") / "s"
    summary = sample_questions(QUESTIONS, out, _config(), tiny_model, tiny_tokenizer, progress=False)
    return out, summary


def test_store_holds_k_samples_per_question(full):
    out, summary = full
    assert summary["n_new"] == 5 and summary["n_samples"] == 5 * K and summary["samples_per_s"] > 0
    store = TraceStore(out)
    assert store.schema["kind"] == fmt.SAMPLES_KIND and store.schema["n_samples"] == K
    assert store.schema["embedding_layer"] == 1  # (2 layers + 1) // 2: the middle hidden state
    tensors, meta = store.get("q2").tensors(), store.meta("q2")
    n = tensors[fmt.N_TOKENS]
    assert tensors[fmt.LOGPROBS].shape == (K, int(n.max())) and tensors[fmt.EMBEDDING].shape == (K, 32)
    assert meta["sample_ids"] == [f"q2#s{k}" for k in range(K)] and len(meta["samples"]) == K
    assert meta["sample_seeds"] == [sample_seed(0, "q2", k) for k in range(K)]
    for k in range(K):  # zero padding past each answer; entropies >= 0
        assert (tensors[fmt.LOGPROBS][k, n[k]:] == 0).all() and (tensors[fmt.ENTROPY][k, :n[k]] >= 0).all()
    assert 0 <= float(tensors[fmt.P_TRUE][0]) <= 1
    assert sorted(set(tensors[fmt.CLUSTER_IDS].tolist())) == list(range(int(tensors[fmt.CLUSTER_IDS].max()) + 1))


def test_samples_are_reproducible_and_differ_between_questions(full, tmp_path, tiny_model, tiny_tokenizer):
    out, _ = full
    sample_questions(QUESTIONS, tmp_path / "again", _config(), tiny_model, tiny_tokenizer, progress=False)
    _same(_records(out), _records(tmp_path / "again"))
    seeds = {s for _, meta in _records(out).values() for s in meta["sample_seeds"]}
    assert len(seeds) == 5 * K


def test_resume_and_other_batches_give_the_same_samples(full, tmp_path, tiny_model, tiny_tokenizer):
    out, _ = full
    part = sample_questions(QUESTIONS[3:], tmp_path / "r", _config(), tiny_model, tiny_tokenizer, progress=False)
    rest = sample_questions(QUESTIONS, tmp_path / "r", _config(), tiny_model, tiny_tokenizer, progress=False)
    assert part["n_new"] == 2 and rest["n_skipped"] == 2 and rest["n_new"] == 3
    _same(_records(out), _records(tmp_path / "r"))
    for n, batch in ((5, 5), (1, 3)):  # all five questions in one generate call; one at a time
        cfg = SampleConfig(model="tiny", samples=K, max_new_tokens=5, batch_size=batch, sample_batch=n)
        sample_questions(QUESTIONS, tmp_path / f"b{n}", cfg, tiny_model, tiny_tokenizer, progress=False)
        _same(_records(out), _records(tmp_path / f"b{n}"), atol=1e-5)  # other batch shapes: round-off only


def test_resume_with_other_settings_is_refused(full, tiny_model, tiny_tokenizer):
    out, _ = full
    with pytest.raises(StoreError, match="n_samples|schema"):
        sample_questions(QUESTIONS, out, SampleConfig(model="tiny", samples=3, max_new_tokens=5), tiny_model,
                         tiny_tokenizer, progress=False)


def test_stored_embedding_and_logprobs_equal_a_live_pass(full, tiny_model, tiny_tokenizer):
    out, _ = full
    store = TraceStore(out)
    tensors, meta = store.get("q1").tensors(), store.meta("q1")
    prompt = build_prompt_ids(tiny_tokenizer, QUESTIONS[1].question, _config().prompt_template)
    from truthtrace.traces.capture import generate_answers

    # the samples' own seeds: regenerate each one alone
    answers = [generate_answers(tiny_model, tiny_tokenizer, [prompt], 5, logits_processor=[SeededSampling([seed])])[0]
               for seed in meta["sample_seeds"]]
    for k, answer in enumerate(answers):
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            live = tiny_model(ids, output_hidden_states=True)
        logp = torch.log_softmax(live.logits[0, len(prompt) - 1:-1], -1).gather(1, ids[0, len(prompt):, None])[:, 0]
        torch.testing.assert_close(tensors[fmt.EMBEDDING][k], live.hidden_states[1][0, -1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tensors[fmt.LOGPROBS][k, :len(answer)], logp, atol=1e-5, rtol=1e-5)
        assert int(tensors[fmt.N_TOKENS][k]) == len(answer)


def test_p_true_is_the_normalized_probability_of_true(tiny_model, tiny_tokenizer):
    cfg = _config()
    value = p_true(tiny_model, tiny_tokenizer, "What is 2 plus 2?", "4", cfg)
    content = P_TRUE_TEMPLATE.format(question="What is 2 plus 2?", answer="4")
    ids = build_prompt_ids(tiny_tokenizer, content, "{question}")
    with torch.no_grad():
        probs = torch.softmax(tiny_model(torch.tensor([ids])).logits[0, -1], -1)
    first = lambda words: {tiny_tokenizer.encode(w, add_special_tokens=False)[0] for w in words}  # noqa: E731
    yes, no = first(["True", " True", "true", " true"]), first(["False", " False", "false", " false"])
    yes, no = yes - no, no - yes
    p_yes, p_no = float(probs[list(yes)].sum()), float(probs[list(no)].sum())
    assert value == pytest.approx(p_yes / (p_yes + p_no), rel=1e-5)


def test_given_greedy_answers_are_judged_and_p_true_can_be_off(tmp_path, tiny_model, tiny_tokenizer):
    greedy = {q.id: f"answer {i}" for i, q in enumerate(QUESTIONS)}
    sample_questions(QUESTIONS[:2], tmp_path / "g", _config(), tiny_model, tiny_tokenizer, greedy=greedy,
                     progress=False)
    store = TraceStore(tmp_path / "g")
    assert store.meta("q1")["greedy"] == "answer 1"
    want = p_true(tiny_model, tiny_tokenizer, QUESTIONS[1].question, "answer 1", _config())
    assert float(store.read("q1", fmt.P_TRUE)[0]) == pytest.approx(want, rel=1e-5)
    sample_questions(QUESTIONS[:2], tmp_path / "off", _config(p_true=False), tiny_model, tiny_tokenizer,
                     progress=False)
    assert math.isnan(float(TraceStore(tmp_path / "off").read("q0", fmt.P_TRUE)[0]))


def test_offline_clusters_of_a_hand_made_example():
    answers = ["Paris", "paris.", "Paris, France", "Lyon", "The city of Lyon", "", "eight", "8 legs", " "]
    assert offline_clusters(answers) == [0, 0, 0, 1, 1, 2, 3, 3, 2]
    # a sentence answer agrees with a bare one: the question's words and function words are no content
    answers = ["Paris", "The capital of France is Paris.", "It is located in Paris", "Lyon", "France", "France!"]
    assert offline_clusters(answers, "What is the capital of France?") == [0, 0, 0, 1, 2, 2]


def _nli_dir(path, tokenizer, labels):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, num_labels=len(labels),
                      id2label=dict(enumerate(labels)), label2id={v: i for i, v in enumerate(labels)})
    LlamaForSequenceClassification(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_nli_clusters_plumbing(tmp_path, tiny_model, tiny_tokenizer):
    nli = _nli_dir(tmp_path / "nli", tiny_tokenizer, ["contradiction", "neutral", "entailment"])
    judge = NliJudge(nli)
    ids = judge.clusters("q?", ["a", "b", "a", "c"])
    assert len(ids) == 4 and all(ids[i] <= max(ids[:i], default=-1) + 1 for i in range(4))  # first-seen order
    out = tmp_path / "s"
    sample_questions(QUESTIONS[:2], out, _config(nli_model=str(nli)), tiny_model, tiny_tokenizer, progress=False)
    store = TraceStore(out)
    assert store.schema["clustering"] == "nli:nli"
    meta, ids = store.meta("q0"), store.read("q0", fmt.CLUSTER_IDS).tolist()
    assert ids == judge.clusters(QUESTIONS[0].question, meta["samples"])
    bad = _nli_dir(tmp_path / "bad", tiny_tokenizer, ["yes", "no"])
    with pytest.raises(ValueError, match="no entailment label"):
        NliJudge(bad)
    with pytest.raises(ValueError, match="not a directory"):
        NliJudge(tmp_path / "missing")


def test_config_checks_name_the_field():
    cases = (({"samples": 1}, "samples"), ({"temperature": 0}, "temperature"), ({"top_p": 1.5}, "top_p"),
             ({"prompt_template": "no slot"}, "prompt_template"), ({"embedding_layer": -1}, "embedding_layer"))
    for kw, field in cases:
        with pytest.raises(ValueError, match=field):
            SampleConfig(**kw)


def test_sample_command_resumes_and_judges_a_trace_stores_answers(tmp_path, tiny_model, tiny_tokenizer, capsys):
    from truthtrace.cli import main
    from truthtrace.data import load_bundled
    from truthtrace.store import TraceWriter

    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    tiny_tokenizer.save_pretrained(model_dir)
    args = ["sample", "--n", "6", "--model", str(model_dir), "--device", "cpu", "--samples", "3",
            "--max-new-tokens", "4", "--out", str(tmp_path / "s")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert '"n_new": 6' in out and '"samples_per_s"' in out and '"peak_memory_mb"' in out
    assert main(args) == 0
    assert '"n_skipped": 6' in capsys.readouterr().out
    with TraceWriter(tmp_path / "traces", {"kind": "truthtrace.traces"}) as w:  # the answers labels judge
        for q in load_bundled(n=6, seed=0):
            w.add(q.id, {"token_ids": torch.zeros(3, dtype=torch.int32)}, {"question_id": q.id, "generation": "Paris"})
    assert main([*args[:-1], str(tmp_path / "judged"), "--traces", str(tmp_path / "traces"), "--no-p-true"]) == 0
    store = TraceStore(tmp_path / "judged")
    assert {store.meta(i)["greedy"] for i in store.ids()} == {"Paris"} and len(store) == 6
    assert main([*args[:-1], str(tmp_path / "x"), "--samples", "1"]) == 2
    assert "samples must be >= 2" in capsys.readouterr().err


def test_config_from_extract_options_keeps_the_model_and_prompt():
    from types import SimpleNamespace

    extract_like = SimpleNamespace(model="m", model_dtype="bfloat16", prompt_template="Q: {question}", seed=3,
                                   max_new_tokens=7, batch_size=4, keep="all", capture="forward")
    cfg = SampleConfig.from_options(extract_like, samples=5, temperature=0.7)
    assert (cfg.model, cfg.model_dtype, cfg.prompt_template, cfg.seed, cfg.max_new_tokens) == (
        "m", "bfloat16", "Q: {question}", 3, 7)
    assert (cfg.samples, cfg.temperature, cfg.top_p) == (5, 0.7, 1.0)


def test_capture_from_the_generation_steps_gives_the_same_samples(full, tmp_path, tiny_model, tiny_tokenizer):
    out, _ = full
    sample_questions(QUESTIONS, tmp_path / "g", _config(capture="generate"), tiny_model, tiny_tokenizer,
                     progress=False)
    a, b = _records(out), _records(tmp_path / "g")
    for qid in a:
        assert a[qid][1] == b[qid][1]  # the same answers, ids, greedy answer and seed
        for key in (fmt.LOGPROBS, fmt.ENTROPY, fmt.EMBEDDING):
            torch.testing.assert_close(a[qid][0][key], b[qid][0][key], atol=1e-4, rtol=1e-4)
        assert torch.equal(a[qid][0][fmt.N_TOKENS], b[qid][0][fmt.N_TOKENS])


def test_seeded_sampling_draws_from_the_tempered_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    n = 4000

    def freq(temperature, top_p):
        proc = SeededSampling(list(range(n)), temperature, top_p)
        picks = proc(None, logits.expand(n, 4).clone()).argmax(-1)
        return torch.bincount(picks, minlength=4).float() / n

    torch.testing.assert_close(freq(1.0, 1.0), torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.025, rtol=0)
    torch.testing.assert_close(freq(1.0, 0.8), torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.025, rtol=0)
    tempered = torch.softmax(logits / 0.5, -1)
    torch.testing.assert_close(freq(0.5, 1.0), tempered, atol=0.025, rtol=0)
    assert torch.isinf(top_p_filter(logits[None], 0.8)[0, 2:]).all()


def test_a_rows_draw_depends_on_its_seed_only():
    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    alone = SeededSampling([7])(None, scores[1:2].clone())
    together = SeededSampling([3, 7, 11])(None, scores.clone())
    assert torch.equal(alone[0], together[1])
    with pytest.raises(ValueError, match="3 seeds for 2 rows"):
        SeededSampling([1, 2, 3])(None, scores[:2])
