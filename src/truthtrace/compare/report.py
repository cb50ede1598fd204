"""The compare-models report as a Markdown table, a rich table, a size-versus-quality plot and files."""

from __future__ import annotations

import sys
from pathlib import Path

from truthtrace.fileio import atomic_write, json_safe, write_json_atomic, write_text_atomic


def _mb(nbytes: int | None) -> str:
    return "?" if nbytes is None else f"{nbytes / 1e6:.1f}"


def _peak_cell(row: dict) -> str:
    if "peak_memory_bytes" not in row:
        return "off"
    return "failed" if row["peak_memory_bytes"] is None else _mb(row["peak_memory_bytes"])


def _num(x: float | None, fmt: str) -> str:
    return "N/A" if x is None else format(x, fmt)


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Column headers and one row of cells per model (the columns depend on the model kind)."""
    causal = report["kind"] == "causal"
    with_auc = any("detector_auroc" in r for r in report["models"])
    head = ["model", "disk MB", "params M", "sparsity", "peak MB", "latency ms (IQR) vs first"]
    head += ["perplexity", "top-1 agree", "KL"] if causal else ["cosine", "accuracy"]
    head += (["detector AUROC"] if with_auc else []) + ["degraded"]
    rows = []
    for r in report["models"]:
        cells = [r["model"], _mb(r["disk_bytes"]), f"{r['parameters'] / 1e6:.1f}", _num(r["sparsity"], ".3f"),
                 _peak_cell(r),
                 f"{r['latency_ms']:.1f} ({r['latency_iqr_ms']:.1f}) {r['latency_vs_first']:.2f}x"]
        if causal:
            cells += [_num(r["perplexity"], ".3f"), _num(r["top1_agreement"], ".3f"), _num(r["kl_mean"], ".4f")]
        else:
            cells += [_num(r["cosine"], ".4f"), _num(r["accuracy"], ".3f")]
        cells += [_num(r.get("detector_auroc"), ".3f")] if with_auc else []
        rows.append(cells + ["; ".join(r["degraded_reasons"]) or "no"])
    return head, rows


def format_table(report: dict) -> str:
    """The comparison as a Markdown table, followed by the notes (tokenizer mismatch, errors)."""
    head, rows = table_rows(report)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines + [f"- {n}" for n in notes(report)])


def _placement_note(row: dict) -> str:
    """Where ``--device-map`` put a model's weights, e.g. "weights placed by --device-map: cpu 1.2 MB, disk 0.8 MB"."""
    placed = ", ".join(f"{where} {_mb(n)} MB" for where, n in row["device_bytes"].items())
    gpus = ", ".join(f"{gpu} {_mb(n)} MB" for gpu, n in (row.get("gpu_peak_bytes") or {}).items())
    return (f"weights placed by --device-map: {placed}" + (" (disk layers are read from disk in every forward pass)"
            if "disk" in row["device_bytes"] else "") + "; peak MB is this machine's RAM"
            + (f"; GPU peak allocation {gpus}" if gpus else "")
            + (f"; sparsity leaves out the {row['linear_weights_offloaded']:,} offloaded linear weights"
               if row.get("linear_weights_offloaded") else ""))


def notes(report: dict) -> list[str]:
    """One line per model note or measurement error, plus the machine and load average."""
    out = [f"{r['model']}: {r['note']}" for r in report["models"] if r.get("note")]
    out += [f"{r['model']}: {_placement_note(r)}" for r in report["models"] if r.get("device_bytes")]
    out += [f"{r['model']}: peak memory not measured ({r['memory_error']})" for r in report["models"]
            if r.get("memory_error")]
    out += [f"{r['model']}: detector AUROC: {r['detector_note']}" for r in report["models"] if r.get("detector_note")]
    features = report["models"][0].get("detector_features")
    out += [f"detector features built with the {features}"] if features else []
    m = report["machine"]
    out.append(f"machine: {m['cpu']}, {m['cores']} cores, {m['torch_threads']} torch threads, "
               f"bf16 units: {m['bf16_supported']}; load average before {report['load_average_before']}, "
               f"after {report['load_average_after']}")
    return out


def print_table(report: dict) -> None:
    """Print the comparison with rich (degraded rows in red)."""
    from rich.console import Console
    from rich.table import Table

    head, rows = table_rows(report)
    table = Table(title=f"compare-models ({report['kind']}; quality against {report['models'][0]['model']})")
    for col in head:
        table.add_column(col, justify="left" if col in ("model", "degraded") else "right")
    for cells, r in zip(rows, report["models"]):
        table.add_row(*cells, style="red" if r["degraded"] else None)
    # wide when piped: rich would wrap the headers at 80 columns
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    for line in notes(report):
        console.print(f"  {line}", highlight=False)


def plot_size_quality(report: dict, out_dir: str | Path) -> list[str]:
    """Disk MB (log x) against perplexity (causal) or cosine (encoders), one labelled point per model.

    Returns:
        the paths written (PNG and SVG); empty when no model has both numbers.
    Raises:
        ImportError: matplotlib is missing (pip install 'truthtrace[viz]').
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the size-versus-quality plot needs matplotlib: pip install 'truthtrace[viz]'") from exc

    key, label = ("perplexity", "perplexity on the text sample") if report["kind"] == "causal" else \
        ("cosine", "cosine similarity to the first model")
    points = [(r["disk_bytes"] / 1e6, r[key], r["model"], r["degraded"]) for r in report["models"]
              if r.get("disk_bytes") and r.get(key) is not None]
    if not points:
        return []
    # constrained layout sizes the axes around the labels (tight_layout warned and could not fit them)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    for x, y, name, bad in points:
        ax.scatter([x], [y], color="tab:red" if bad else "tab:blue", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    # the degraded threshold keeps the y scale honest: tiny differences do not fill the whole axis
    first = report["models"][0].get(key)
    if first is not None:
        cfg = report["config"]
        limit = first * cfg["max_ppl_ratio"] if key == "perplexity" else cfg["min_cosine"]
        ax.axhline(limit, color="grey", linestyle="--", linewidth=1, label="degraded beyond this line")
        ax.legend(loc="center right", fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.25)
    ax.set(xlabel="size on disk (MB, log scale)", ylabel=label, title="size versus quality (red: degraded)")
    ax.grid(True, which="both", alpha=0.3)
    paths = []
    for ext in ("png", "svg"):
        path = Path(out_dir) / f"size_quality.{ext}"
        # the temp file has a .tmp suffix, so the format must be named
        atomic_write(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=120))
        paths.append(str(path))
    plt.close(fig)
    return paths


def write_outputs(report: dict, out_dir: str | Path, plot: bool = True) -> dict:
    """Write ``compare.json``, ``compare.md`` and (if ``plot``) ``size_quality.png``/``.svg`` under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "compare.json"), "markdown": str(out / "compare.md")}
    if plot:
        files["plots"] = plot_size_quality(report, out)
    write_text_atomic(out / "compare.md", format_table(report) + "\n")
    write_json_atomic(out / "compare.json", json_safe({**report, "files": files}))
    return files
