"""--compile: a compiled training run equals the eager one; a failing compile warns and runs eager
(at wrap time and at the first call), in the training loop and in the live engine."""

import warnings

import pytest
import torch
from test_profile import QUESTIONS, tiny_run
from torch import nn

from truthtrace.cli import build_parser
from truthtrace.cli.detect import with_compile
from truthtrace.detectors.torch_base import TensorBatches
from truthtrace.detectors.train import TrainConfig
from truthtrace.inference import Engine, EngineConfig
from truthtrace.store import TraceStore
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.training import LoopConfig, fit_module, predict
from truthtrace.training.compile import EagerFallback, compile_forward, restore_forward


def planted(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.4).long()
    x = torch.randn(n, 8, generator=g)
    x[:, 0] += 2.0 * y
    return TensorBatches({"x": x}, y, 16, shuffle=True, seed=seed)


def forward(module, batch, device):
    return module(batch["x"].to(device)).squeeze(-1)


def fit(compile_mode):
    """Two epochs of a small MLP (no dropout: inductor draws other random numbers); its val scores."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    cfg = LoopConfig(lr=5e-3, max_epochs=2, patience=5, tracking="none", quiet=True, compile=compile_mode)
    result = fit_module(net, forward, planted(96, 1), planted(64, 2), cfg)
    return net, result, predict(net, forward, planted(64, 2), "cpu")[0]


def test_compiled_training_equals_eager_and_leaves_the_module_eager():
    _, eager, eager_scores = fit(None)
    net, compiled, scores = fit("default")
    assert compiled.best_auroc == pytest.approx(eager.best_auroc, abs=1e-6)
    assert scores == pytest.approx(eager_scores, abs=1e-5)
    assert "forward" not in net.__dict__  # the eager forward is back after the fit


def fail_at_wrap(*args, **kwargs):
    raise RuntimeError("no compiler here")


def fail_at_call(fn, mode=None):
    def compiled(*args, **kwargs):
        raise RuntimeError("inductor: C++ compile failed")
    return compiled


@pytest.mark.parametrize("broken, match", [(fail_at_wrap, "no compiler here"), (fail_at_call, "C\\+\\+ compile")])
def test_a_failing_compile_warns_and_trains_eager(monkeypatch, broken, match):
    _, eager, eager_scores = fit(None)
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match=f"torch.compile of Sequential.forward failed .*{match}.*running eager"):
        _, result, scores = fit("max-autotune")
    assert result.best_auroc == eager.best_auroc and (scores == eager_scores).all()


def test_an_error_of_the_inputs_is_raised_and_compile_stays_on(monkeypatch):
    net = nn.Linear(3, 1)
    monkeypatch.setattr(torch, "compile", fail_at_call)
    wrapper = compile_forward(net, "default", "net")
    with pytest.raises(RuntimeError, match="mat1 and mat2"), warnings.catch_warnings():
        warnings.simplefilter("error")
        net(torch.ones(2, 5))  # eager fails too: not the compiler's fault
    assert wrapper.compiled is not None and wrapper.failed is None
    with pytest.warns(RuntimeWarning, match="running eager"):
        assert net(torch.ones(2, 3)).shape == (2, 1)
    assert wrapper.compiled is None and isinstance(net.forward, EagerFallback)
    restore_forward(net)
    assert "forward" not in net.__dict__ and compile_forward(net, None) is None


def test_compile_settings_are_checked_and_never_part_of_a_run_identity():
    with pytest.raises(ValueError, match="compile"):
        LoopConfig(compile="fast")
    assert "compile" not in LoopConfig(compile="default").to_dict()  # saved detectors and checkpoints ignore it
    with pytest.raises(ValueError, match="compile"):
        EngineConfig(detectors=("d",), compile="turbo")


def test_train_and_ask_flags_reach_the_configs():
    parser = build_parser()
    args = parser.parse_args(["train", "--features", "f", "--labels", "l", "--out", "o", "--compile"])
    assert args.compile == "default"
    cfg = with_compile(TrainConfig(detectors=("probe", "mlp", "lstm"), detector_args={"mlp": {"hidden": [8]}}),
                       "reduce-overhead")
    assert cfg.detector_args == {"mlp": {"hidden": [8], "compile": "reduce-overhead"},
                                 "lstm": {"compile": "reduce-overhead"}}
    args = parser.parse_args(["ask", "Who?", "--detector", "d", "--compile=max-autotune"])
    assert args.compile == "max-autotune"
    assert parser.parse_args(["score", "--answers", "a", "--detector", "d"]).compile is None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    return tiny_run(tmp_path_factory.mktemp("compile"), tiny_model, tiny_tokenizer)


def test_a_failing_compile_in_the_engine_answers_eager_and_close_restores(run_dir, tiny_model, tiny_tokenizer,
                                                                          monkeypatch):
    questions = [q.question for q in QUESTIONS[:4]]
    plain = Engine(EngineConfig(detectors=[run_dir / "det"], dtype="float32", cache=None), tiny_model, tiny_tokenizer)
    expected = [(r["answer"], r["scores"]["probe"]["score"]) for r in plain.answer(questions)]
    monkeypatch.setattr(torch, "compile", fail_at_call)
    engine = Engine(EngineConfig(detectors=[run_dir / "det"], dtype="float32", cache=None, compile="default"),
                    tiny_model, tiny_tokenizer)
    assert isinstance(tiny_model.forward, EagerFallback)
    with pytest.warns(RuntimeWarning, match="torch.compile of tiny-llama.forward failed"):
        results = engine.answer(questions)
    assert [(r["answer"], r["scores"]["probe"]["score"]) for r in results] == expected
    engine.close()
    assert "forward" not in tiny_model.__dict__


def through(calls):
    def compile_(fn, mode=None):
        calls.append(mode)
        return fn  # the compiled forward is the eager one: same numbers, the plumbing is what is tested
    return compile_


def test_extract_compiles_the_forward_and_gives_it_back(tmp_path, tiny_model, tiny_tokenizer, monkeypatch):
    questions = QUESTIONS[:3]
    extract(questions, tmp_path / "eager", ExtractConfig(max_new_tokens=4), tiny_model, tiny_tokenizer, progress=False)
    calls = []
    monkeypatch.setattr(torch, "compile", through(calls))
    extract(questions, tmp_path / "compiled", ExtractConfig(max_new_tokens=4, compile="reduce-overhead"), tiny_model,
            tiny_tokenizer, progress=False)
    assert calls == ["reduce-overhead"] and "forward" not in tiny_model.__dict__
    eager, compiled = TraceStore(tmp_path / "eager"), TraceStore(tmp_path / "compiled")
    assert eager.ids() == compiled.ids()
    for tid in eager.ids():
        a, b = eager.get(tid).tensors(), compiled.get(tid).tensors()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_extract_with_a_failing_compile_warns_and_extracts_eager(tmp_path, tiny_model, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(torch, "compile", fail_at_call)
    questions = QUESTIONS[:1]
    with pytest.warns(RuntimeWarning, match="torch.compile of .*forward failed .*running eager"):
        summary = extract(questions, tmp_path / "s", ExtractConfig(max_new_tokens=3, compile="default"), tiny_model,
                          tiny_tokenizer, progress=False)
    assert summary["n_new"] == 1 and "forward" not in tiny_model.__dict__
    with pytest.raises(ValueError, match="compile"):
        ExtractConfig(compile="fast")
    args = build_parser().parse_args(["extract", "--out", str(tmp_path / "o"), "--compile"])
    assert args.compile == "default"
