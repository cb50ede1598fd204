"""The visualize stage on a tiny synthetic store: figures, page, ROC, edge selection, errors, CLI."""

import csv
import json
import re
import struct
import warnings

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("networkx")

from synthetic_traces import make_trace  # noqa: E402

from truthtrace.cli import main  # noqa: E402
from truthtrace.store import TraceStore, TraceWriter  # noqa: E402
from truthtrace.viz.stage import VisualizeConfig, load_tokenizer, visualize  # noqa: E402
from truthtrace.viz.figure import token_label, token_labels  # noqa: E402
from truthtrace.viz.attention import attention_edges, project, select_head, token_view  # noqa: E402
from truthtrace.viz.roc import plot_roc, roc_rows  # noqa: E402

T, P, LAYERS, HEADS = 20, 15, 3, 4


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """``run/traces`` (8 traces, 3 layers, 4 heads, 20 tokens) and ``run/labels.csv`` beside it."""
    run = tmp_path_factory.mktemp("run")
    with TraceWriter(run / "traces", {"kind": "truthtrace.traces", "model": "no-such-model"}) as w:
        for i in range(8):
            meta = {"question": f"What costs $5 in case {i}?", "generation": "A thing", "answers": ["thing"],
                    "n_prompt_tokens": P, "n_answer_tokens": T - P, "kept_start": 0}
            w.add(f"t{i}", make_trace(i, n_tokens=T, layers=LAYERS, heads=HEADS, d=8), meta)
    with open(run / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trace_id", "hallucinated"])
        writer.writerows([f"t{i}", i % 2] for i in range(8))
    return run


def _report(path=None) -> dict:
    rng = np.random.default_rng(0)
    fpr = np.sort(rng.random(10)).tolist()
    rows = [{"detector": "probe", "seed": s, "test_auroc": 0.8, "test_auroc_ci": [0.7, 0.9],
             "roc": {"fpr": [0.0, *fpr, 1.0], "tpr": [0.0, *np.sqrt(fpr).tolist(), 1.0]}} for s in range(3)]
    rows.append({"detector": "perplexity", "test_auroc": 0.5, "roc": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}})
    rows.append({"detector": "no_curve", "test_auroc": 0.6})
    rows.append({"detector": "one_class", "test_auroc": float("nan"), "roc": {"fpr": [], "tpr": []}})
    report = {"format": "truthtrace.evaluation.report", "version": 3, "results": rows}
    if path is not None:
        path.write_text(json.dumps(report))
    return report


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _svg_inches(path) -> tuple[float, float]:
    text = path.read_text()
    w, h = (float(re.search(rf'{k}="([\d.]+)pt"', text).group(1)) for k in ("width", "height"))
    return w / 72, h / 72


@pytest.fixture(scope="module")
def written(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("viz")
    _report(out / "report.json")
    config = VisualizeConfig(trace_id="t1", report=out / "report.json", tokenizer=None, sample=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report's row without a curve warns
        return visualize(run_dir / "traces", out / "figs", config)


def test_every_figure_is_png_at_150_dpi_and_svg(written):
    assert set(written) == {"attention_graph", "attention_heads", "attention_layers", "layer_profile", "roc", "page"}
    assert written["attention_graph"][0].name == "attention_graph_L1.png"  # middle of layers 0..2
    for name, paths in written.items():
        if name == "page":
            continue
        png, svg = paths
        assert svg.suffix == ".svg" and svg.stat().st_size > 1000 and "<svg" in svg.read_text()
        w_in, h_in = _svg_inches(svg)
        w_px, h_px = _png_size(png)
        assert abs(w_px - w_in * 150) <= 1 and abs(h_px - h_in * 150) <= 1, name  # matplotlib truncates
        assert w_px >= 900 and h_px >= 400, name
    assert _png_size(written["roc"][0]) == (900, 840)  # figsize (6.0, 5.6) at 150 dpi


def test_page_references_every_figure(written):
    page = written["page"][0]
    html = page.read_text()
    links = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    for name, paths in written.items():
        if name != "page":
            assert {p.name for p in paths} <= links, name
    assert all((page.parent / link).is_file() for link in links)
    assert "What costs $5 in case 1?" in html and "hallucinated" in html  # t1 is labelled 1


def test_roc_from_report(tmp_path):
    with pytest.warns(UserWarning, match="no_curve|one_class"):
        rows = roc_rows(_report())
    assert [r["detector"] for r in rows] == ["probe", "perplexity"] and rows[0]["n_rows"] == 3
    with pytest.warns(UserWarning):
        paths = plot_roc(_report(), tmp_path / "roc")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    svg = paths[1].read_text()
    assert "0.800 [0.700, 0.900]" in svg and "3 seeds" in svg
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"r\.json: no row of field 'results'"):
        plot_roc({"results": [{"detector": "x"}]}, tmp_path / "none", where="r.json")
    with pytest.raises(ValueError, match="'results'"):
        plot_roc({"rows": []}, tmp_path / "none")
    with pytest.raises(ValueError, match=r"'results\[\]\.roc' of 'x'"):
        roc_rows({"results": [{"detector": "x", "roc": {"fpr": [0.0, 1.0], "tpr": [1.0]}}]})


def test_edges_follow_top_k_threshold_and_head():
    attn = make_trace(3, n_tokens=T, layers=1, heads=HEADS)["layers.0.attn"].numpy()  # (H, T, T)
    mean = select_head(attn, "mean")
    for k in (1, 2, 5):
        assert len(attention_edges(mean, top_k=k)) == sum(min(k, q) for q in range(T))
        assert len(attention_edges(mean, top_k=k, min_key=1)) == sum(min(k, q - 1) for q in range(1, T))
    strict = np.tril(mean, -1)
    for x in (0.05, 0.2, 0.5):
        assert len(attention_edges(mean, threshold=x)) == int((strict >= x).sum())
    best = attention_edges(mean, top_k=1)
    assert all(w == mean[q, :q].max() for q, _, w in best)
    per_head = [attention_edges(select_head(attn, h), threshold=0.2) for h in range(HEADS)]
    assert len({len(e) for e in per_head}) > 1  # heads differ
    np.testing.assert_allclose(mean, attn.mean(0))
    with pytest.raises(ValueError, match="exactly one"):
        attention_edges(mean)
    with pytest.raises(ValueError, match="head"):
        select_head(attn, HEADS)


def test_token_view_caps_long_sequences():
    labels = [f"w{i}" for i in range(60)]
    view = token_view(labels, n_prompt=52, max_tokens=48, mode="blocks")
    assert len(view) == 48 and view.groups[0] == list(range(13)) and "merged into 1 block" in view.note
    assert view.labels[-8:] == labels[-8:] and view.is_answer[-8:] == [True] * 8 and not view.is_answer[0]
    last = token_view(labels, n_prompt=52, max_tokens=48, mode="last")
    assert last.labels == labels[12:] and "last 48 of 60" in last.note
    assert token_view(labels, n_prompt=5, max_tokens=48).note.startswith("last")  # answer longer than the budget
    attn = make_trace(0, n_tokens=60, layers=1, heads=2)["layers.0.attn"].numpy()
    proj = project(attn, view)  # (2, 48, 48): block rows still sum to 1, upper triangle stays 0
    np.testing.assert_allclose(proj.sum(-1), 1.0, atol=1e-5)
    assert np.allclose(np.triu(proj, 1), 0.0)


def test_token_labels_are_readable():
    assert token_label("\n") == "↵" and token_label(" the") == "the" and token_label("  ") == "␣"
    assert token_label("\x04") == "\\x04"  # control characters shown, not a missing glyph
    assert token_label("<|im_start|>") == "<im_start>" and len(token_label("x" * 40)) == 12


def test_store_keeping_only_the_last_positions(tmp_path):
    """keep=last:8 stores hidden (K, d) and attention (H, K, T): figures show the kept K tokens."""
    full, k = make_trace(5, n_tokens=T, layers=2, heads=2, d=8), 8
    kept = {key: (v[..., T - k:, :] if key.endswith(".attn") else v[T - k:] if key.endswith(".hidden") else v)
            for key, v in full.items()}
    meta = {"question": "q?", "generation": "a", "n_prompt_tokens": P, "n_answer_tokens": T - P, "kept_start": T - k}
    with TraceWriter(tmp_path / "traces", {"model": "none"}) as w:
        w.add("k", kept, meta)
    out = visualize(tmp_path / "traces", tmp_path / "figs", VisualizeConfig(trace_id="k", tokenizer=None))
    assert "only positions 12.. stored" in out["attention_graph"][1].read_text()


def test_tokens_are_decoded_with_the_tokenizer(tiny_tokenizer, tmp_path):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    tok = load_tokenizer(str(tmp_path / "tok"), "ignored")
    ids = tiny_tokenizer("<|im_start|>user\nWhat is the capital of France?")["input_ids"]
    labels = token_labels(ids, tok)
    assert labels[0] == "<im_start>" and "↵" in labels and " " not in "".join(labels)
    assert "".join(labels[1:]).replace("↵", "").replace("␣", "") == "userWhatisthecapitalofFrance?"
    with pytest.warns(UserWarning, match="token labels show ids"):
        assert load_tokenizer("auto", "no-such-model") is None
    assert token_labels([5, 7], None) == ["#5", "#7"]


def test_bad_trace_layer_and_head_name_themselves(run_dir, tmp_path):
    with pytest.raises(ValueError, match="trace id 'nope'"):
        visualize(run_dir / "traces", tmp_path, VisualizeConfig(trace_id="nope", tokenizer=None))
    with pytest.raises(ValueError, match="layer 7"):
        visualize(run_dir / "traces", tmp_path, VisualizeConfig(trace_id="t0", layer=7, tokenizer=None))
    with pytest.raises(ValueError, match="layers"):
        visualize(run_dir / "traces", tmp_path, VisualizeConfig(trace_id="t0", layers=[0, 9], tokenizer=None))
    with pytest.raises(ValueError, match="head 6"):
        visualize(run_dir / "traces", tmp_path, VisualizeConfig(trace_id="t0", head=6, tokenizer=None))
    for bad in ({"top_k": 2, "threshold": 0.1}, {"top_k": 0}, {"threshold": 2.0}, {"max_tokens": 1},
                {"token_mode": "middle"}, {"head": "max"}, {"sample": -1}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            VisualizeConfig(trace_id="t0", **bad)


def test_cli_end_to_end(run_dir, tmp_path, capsys):
    report = tmp_path / "report.json"
    _report(report)
    out = tmp_path / "figs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["visualize", str(run_dir / "traces"), "--trace", "t2", "--layer", "0", "--layers", "0,2",
                     "--head", "1", "--threshold", "0.1", "--no-decode", "--sample", "4", "--report", str(report),
                     "--out", str(out)])
    assert code == 0
    assert "wrote 11 files" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert "--head 1 --threshold 0.1" in html and (out / "attention_graph_L0.svg").is_file()
    assert len(TraceStore(run_dir / "traces")) == 8
    assert main(["visualize", str(run_dir / "traces"), "--trace", "zz", "--out", str(out), "--no-decode"]) == 2
    assert "truthtrace visualize: error: trace id 'zz'" in capsys.readouterr().err
