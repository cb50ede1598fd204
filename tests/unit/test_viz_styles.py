"""Every curve of a figure can be told apart: no two share colour and marker (and line style cycles too)."""

import pytest

pytest.importorskip("matplotlib")

from truthtrace.viz.roc import curve_style, plot_roc  # noqa: E402


def test_no_two_of_many_curves_share_a_style():
    styles = [curve_style(i) for i in range(40)]
    assert len({(s["color"], s["marker"]) for s in styles}) == 40
    assert len({(s["color"], s["ls"], s["marker"]) for s in styles}) == 40
    # the report's 9+ detectors: the first and the ninth used to share colour and line style
    assert (styles[0]["color"], styles[0]["marker"]) != (styles[8]["color"], styles[8]["marker"])


def test_roc_lines_of_twelve_detectors_are_all_distinct(tmp_path):
    import matplotlib.pyplot as plt

    rows = [{"detector": f"d{i}", "test_auroc": 0.9 - i / 100, "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.7, 1]}}
            for i in range(12)]
    captured = []
    original = plt.Axes.plot

    def spy(self, *args, **kwargs):
        captured.append((kwargs.get("color"), kwargs.get("ls"), kwargs.get("marker")))
        return original(self, *args, **kwargs)

    plt.Axes.plot = spy
    try:
        plot_roc({"results": rows}, tmp_path / "roc")
    finally:
        plt.Axes.plot = original
    curves = captured[1:]  # the first line is the chance diagonal
    assert len(curves) == 12 and len(set(curves)) == 12
