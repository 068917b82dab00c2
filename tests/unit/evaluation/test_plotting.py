"""The one matplotlib set-up: a headless backend, and a clear hint without matplotlib.

Authors
 * fastast developers 2026
"""

import sys

import pytest

from fastast_plugin.evaluation.plotting import pyplot, save_figure


def test_figures_are_written_headless(tmp_path):
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "line.png")
    assert (tmp_path / "line.png").stat().st_size > 0
    assert not plt.get_fignums()  # closed


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    with pytest.raises(ImportError, match="pip install matplotlib"):
        pyplot()
