"""The diagnostic plots run headless and put data on their axes (no image comparison)."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import flowint
from flowint.plots import plot_history, plot_marginals, plot_weights
from flowint.sampling import unweighted_samples, weighted_samples

matplotlib.use("Agg")
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def bump(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((x - 0.3) ** 2).sum(-1) / 0.05)


@pytest.fixture(scope="module")
def run() -> tuple[flowint.Integrator, flowint.Result]:
    integ = flowint.Integrator(3, seed=0, batch_size=1000, progress=False,
                               flow_options={"hidden": 8}, warmup=2)
    return integ, integ(bump, 8000, n_train=5000)


def has_data(ax) -> bool:
    return bool(ax.lines or ax.patches or ax.collections or ax.images)


def renders(fig: Figure) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue().startswith(b"\x89PNG")


@pytest.mark.parametrize("source", ["result", "integrator", "records"])
def test_history(run, source):
    integ, result = run
    obj = {"result": result, "integrator": integ, "records": list(result.history)}[source]
    fig = plot_history(obj, title="bump")
    assert isinstance(fig, Figure)
    rel, loss = fig.axes
    assert has_data(rel) and has_data(loss)
    assert rel.get_yscale() == "log" and "evaluations" in loss.get_xlabel()
    assert {t.get_text() for t in rel.get_legend().get_texts()} == {"warmup", "train", "final"}
    n_points = sum(len(line.get_xdata()) for line in rel.lines)
    assert n_points == len(result.history)
    if source == "result":
        renders(fig)


def test_history_needs_iterations():
    with pytest.raises(ValueError, match="empty"):
        plot_history([])


@pytest.mark.parametrize("kind", ["flow", "integrator", "array", "weighted", "unweighted"])
def test_marginals(run, kind):
    integ, _ = run
    source = {
        "flow": lambda: integ.flow,
        "integrator": lambda: integ,
        "array": lambda: np.random.default_rng(0).random((500, 3)),
        "weighted": lambda: weighted_samples(integ, bump, 500, seed=1),
        "unweighted": lambda: unweighted_samples(integ, bump, 200, seed=1),
    }[kind]()
    fig = plot_marginals(source, n=500, bins=10)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 9 and len(visible) == 6  # lower triangle and diagonal
    assert all(has_data(ax) for ax in visible)
    if kind == "unweighted":
        renders(fig)


def test_marginals_options():
    x = torch.rand(300, 5, dtype=torch.float64)
    fig = plot_marginals(x, weights=torch.rand(300), dims=[0, 4], labels=["a", "e"], bins=8)
    assert len(fig.axes) == 4 and fig.axes[2].get_xlabel() == "a"
    with pytest.raises(ValueError, match="dims"):
        plot_marginals(x, dims=[7])
    with pytest.raises(ValueError, match="labels"):
        plot_marginals(x, dims=[0, 1], labels=["a"])


def test_weights(run):
    integ, _ = run
    s = weighted_samples(integ, bump, 2000, seed=2)
    for source in (s, s.weights, s.weights.numpy()):
        fig = plot_weights(source, bins=20)
        (ax,) = fig.axes
        assert has_data(ax) and ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert "efficiency" in ax.get_title()
    renders(fig)
    with pytest.raises(ValueError, match="no non-zero"):
        plot_weights(np.zeros(10))
