"""The package's shape: no import loops, imports at the top, no private names across modules,
one dtype table behind the CLI, and the one reader of versioned manifests."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import truthtrace
from truthtrace.cli import build_parser
from truthtrace.dtypes import COMPUTE_DTYPES, STORAGE_DTYPES, canonical_dtype, torch_dtype
from truthtrace.fileio import read_versioned_json, write_json_atomic
from truthtrace.naming import graph_key, parse_feature_key, scalar_key, seq_key

PACKAGE = Path(truthtrace.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]):
    """``(target module, imported name, at top level)`` of every import of the package's own modules."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("truthtrace"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                yield (target if target in modules else node.module), alias.name, id(node) in top
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("truthtrace"):
                    yield alias.name, None, id(node) in top
        assert not (isinstance(node, ast.ImportFrom) and node.level), f"{path}: relative import"


def _graph():
    modules = _modules()
    edges = {m: set() for m in modules}
    inner, private = [], []
    for name, path in modules.items():
        for target, imported, at_top in _imports(name, path, modules):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target == name:
                continue
            edges[name].add(target)
            if not at_top:
                inner.append(f"{name} -> {target}")
            if imported and imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports {imported} from {target}")
    return edges, inner, private


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_no_import_loops_no_inner_imports_no_private_names():
    edges, inner, private = _graph()
    assert len(edges) > 80  # the whole package was read
    assert _cycles(edges) == []
    assert inner == [], "the package's own modules are imported at the top of each file"
    assert private == []


def test_lower_layers_never_import_the_stages():
    edges, _, _ = _graph()
    base = ("truthtrace.naming", "truthtrace.fileio", "truthtrace.dtypes", "truthtrace.metrics", "truthtrace.machine")
    for module in base + tuple(m for m in edges if m.startswith("truthtrace.store")):
        above = {t for t in edges[module] if not t.startswith(base + ("truthtrace.store",))}
        assert above == set(), f"{module} imports {above}"
    for module in (m for m in edges if m.startswith(("truthtrace.detectors", "truthtrace.training"))):
        assert not any(t.startswith(("truthtrace.models", "truthtrace.traces")) for t in edges[module]), \
            f"{module}: detectors never import the LLM"


def test_no_issue_numbers_in_docstrings():
    for path in PACKAGE.rglob("*.py"):
        assert "issue" not in path.read_text().lower().replace("issues", ""), path


def test_importing_the_cli_loads_no_quantization_backend_and_prints_nothing():
    """Heavy third-party libraries (quantization backends, transformers, sklearn) load when a command needs
    them, not when ``truthtrace`` starts."""
    code = "import sys, truthtrace.cli; print(sorted(m for m in ('torchao', 'optimum.quanto', 'bitsandbytes', " \
           "'transformers', 'sklearn', 'torch_geometric', 'matplotlib') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]" and proc.stderr == ""


def test_loading_a_model_prints_no_backend_noise(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    code = f"from truthtrace.models import load_model; load_model({str(tmp_path / 'm')!r}, device='cpu')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, proc.stderr
    noise = [ln for ln in proc.stderr.splitlines() if "Failed to load" in ln or "Enum subclass" in ln]
    assert noise == []


def test_cli_dtype_choices_come_from_the_one_table():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("extract", "run"):
        actions = {a.dest: a for a in sub[command]._actions}
        assert tuple(actions["model_dtype"].choices) == COMPUTE_DTYPES
        assert tuple(actions["storage_dtype"].choices) == STORAGE_DTYPES
    assert canonical_dtype("bf16") == "bfloat16" and str(torch_dtype(None)) == "torch.float32"
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16, float16, got 'int3'"):
        torch_dtype("int3")


def test_feature_keys_go_through_naming():
    assert seq_key("last_answer") == "seq.last_answer" and scalar_key("lookback") == "scalar.lookback"
    assert graph_key(12, "edge_index") == "graph.12.edge_index"
    assert parse_feature_key("graph.12.edge_index") == ("graph", 12, "edge_index")
    assert parse_feature_key("seq.mean_answer") == ("seq", None, "mean_answer")
    assert parse_feature_key("seq.nowhere") is None and parse_feature_key("layers.3.attn") is None
    for bad in (lambda: seq_key("first"), lambda: scalar_key("x"), lambda: graph_key(-1, "x")):
        with pytest.raises(ValueError):
            bad()


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"format": "other", "version": 1}', "field 'format' is 'other', expected 'tt.thing'"),
    ('{"format": "tt.thing", "version": 9}', "field 'version' is 9; this truthtrace reads versions 1, 2"),
    ('{"format": "tt.thing"}', "field 'version' is None"),
])
def test_read_versioned_json_names_the_file_and_field(tmp_path, content, match):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        read_versioned_json(path, "tt.thing", (1, 2))
    assert str(path) in str(err.value)


def test_read_versioned_json_reads_back_what_was_written(tmp_path):
    write_json_atomic(tmp_path / "m.json", {"format": "tt.thing", "format_version": 2, "x": [1, 2]})
    doc = read_versioned_json(tmp_path / "m.json", "tt.thing", (1, 2), version_field="format_version")
    assert doc["x"] == [1, 2]
    with pytest.raises(FileNotFoundError):
        read_versioned_json(tmp_path / "none.json", "tt.thing", (1,))


def test_every_manifest_reader_is_the_versioned_one():
    """No module but fileio parses a file with json.loads (user question and answer files are parsed by data.textio
    and data.loaders)."""
    allowed = {"fileio.py", "loaders.py", "textio.py", "questions.py", "args.py", "cost.py", "train.py", "writer.py"}
    for path in PACKAGE.rglob("*.py"):
        if path.name in allowed:
            continue
        assert "json.loads(" not in path.read_text(), path
    assert json.loads("{}") == {}
