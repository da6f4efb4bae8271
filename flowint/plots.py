"""Diagnostic plots: training history, marginals (corner plot) and the weight distribution.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, so it
is safe with the Agg backend, in threads and in notebooks) and returns it; save it with
``fig.savefig("history.png")`` or display it in a notebook.

Example:
    >>> result = integ(f, 1_000_000)
    >>> plot_history(result).savefig("history.png")
    >>> plot_marginals(integ, n=50_000).savefig("corner.png")
    >>> plot_weights(result_weights).savefig("weights.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .flows import Flow
from .result import IterationRecord, Result

__all__ = ["plot_history", "plot_marginals", "plot_weights"]

_PHASE_STYLE = {"warmup": ("tab:gray", "s"), "train": ("tab:blue", "o"),
                "final": ("tab:green", "D")}


def plot_history(source: Any, *, title: str | None = None) -> Figure:
    """Relative standard deviation per sample and training loss against cumulative calls.

    Arguments:
        source: a :class:`~flowint.Result`, an :class:`~flowint.Integrator` or a sequence of
            :class:`~flowint.IterationRecord`.
        title: figure title.

    Returns:
        A figure with two panels sharing the x axis (integrand evaluations): ``σ(f/q)/|I|``
        per iteration on a log scale, coloured by phase (warm-up, training, final), and the
        training loss.
    """
    history = _history(source)
    if not history:
        raise ValueError("the history is empty: train or integrate first")
    calls = np.cumsum([r.n for r in history])
    fig = Figure(figsize=(7.0, 5.5), layout="constrained")
    ax_rel, ax_loss = fig.subplots(2, 1, sharex=True)
    for phase, (color, marker) in _PHASE_STYLE.items():
        idx = [i for i, r in enumerate(history) if r.phase == phase]
        if not idx:
            continue
        rel = np.array([history[i].rel_std for i in idx], dtype=float)
        ax_rel.plot(calls[idx], rel, marker=marker, ls="-", ms=3, color=color, label=phase)
        loss = np.array([history[i].loss for i in idx], dtype=float)
        if np.isfinite(loss).any():
            ax_loss.plot(calls[idx], loss, marker=marker, ls="-", ms=3, color=color,
                         label=phase)
    ax_rel.set_yscale("log")
    ax_rel.set_ylabel("rel. std per sample  σ(f/q)/|I|")
    ax_rel.legend(loc="upper right", fontsize="small")
    ax_rel.grid(True, which="both", alpha=0.3)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_xlabel("integrand evaluations")
    if any(np.isfinite(r.loss) and r.loss > 0 for r in history):
        ax_loss.set_yscale("symlog", linthresh=1e-3)
    ax_loss.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_marginals(source: Any, *, n: int = 20_000, weights: Any = None, bins: int = 40,
                   dims: Sequence[int] | None = None, labels: Sequence[str] | None = None,
                   seed: int | None = 0, title: str | None = None) -> Figure:
    """A corner plot: 1-D marginal histograms on the diagonal, 2-D histograms below it.

    Arguments:
        source: points of shape ``(n, dim)`` (tensor or array), a sample object of
            :mod:`flowint.sampling` (its points and weights are used), a
            :class:`~flowint.flows.Flow` (``n`` points are drawn from it: its density ``q``) or
            an :class:`~flowint.Integrator` (``n`` points from its frozen flow, in the box).
        n: points to draw when ``source`` is a flow or an integrator.
        weights: optional per-point weights for histograms of given points.
        bins: histogram bins per axis.
        dims: the coordinates to show (default: all, at most 6).
        labels: axis labels (default ``x0, x1, ...``).
        seed: randomness when points are drawn.
        title: figure title.

    Returns:
        The figure, with ``len(dims)²`` axes (the upper triangle hidden).
    """
    x, w = _points(source, n, weights, seed)
    dim = x.shape[1]
    dims = list(range(min(dim, 6))) if dims is None else [int(d) for d in dims]
    if not dims or any(not 0 <= d < dim for d in dims):
        raise ValueError(f"dims must be coordinates in [0, {dim}), got {dims}")
    labels = [f"x{d}" for d in dims] if labels is None else list(labels)
    if len(labels) != len(dims):
        raise ValueError("labels must have one entry per shown coordinate")
    k = len(dims)
    size = min(2.2 * k, 13.0)
    fig = Figure(figsize=(size, size), layout="constrained")
    axes = np.atleast_2d(fig.subplots(k, k, squeeze=False))
    ranges = [(float(x[:, d].min()), float(x[:, d].max())) for d in dims]
    for i, di in enumerate(dims):
        for j, dj in enumerate(dims):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                ax.hist(x[:, di], bins=bins, range=ranges[i], weights=w, density=True,
                        histtype="stepfilled", color="tab:blue", alpha=0.7)
                ax.set_yticks([])
            else:
                ax.hist2d(x[:, dj], x[:, di], bins=bins, range=[ranges[j], ranges[i]],
                          weights=w, cmap="Blues")
            if i == k - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
            elif j > 0:
                ax.set_yticklabels([])
    if title:
        fig.suptitle(title)
    return fig


def plot_weights(weights: Any, *, bins: int = 60, title: str | None = None) -> Figure:
    """Histogram of the importance weights ``|w| / ⟨|w|⟩`` on logarithmic axes.

    A good sampler gives a narrow peak at 1; a long right tail means rare large weights
    (an unreliable error bar, a low unweighting efficiency). The mean and the maximum are
    marked, and the title gives the unweighting efficiency ``⟨|w|⟩ / max |w|`` and the
    effective sample size.

    Arguments:
        weights: the weights (tensor or array), or an object with a ``weights`` attribute
            (e.g. :class:`~flowint.sampling.WeightedSamples`).
        bins: number of logarithmic bins.
        title: figure title (default: the diagnostics).

    Returns:
        The figure.
    """
    w = _array(getattr(weights, "weights", weights)).reshape(-1)
    a = np.abs(w[np.isfinite(w)])
    a = a[a > 0]
    if a.size == 0:
        raise ValueError("no non-zero finite weights to plot")
    mean = float(a.mean())
    r = a / mean
    lo, hi = float(r.min()), float(r.max())
    if hi <= lo:
        lo, hi = lo / 2, hi * 2
    edges = np.geomspace(lo, hi, bins + 1)
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.hist(r, bins=edges, color="tab:blue", alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axvline(1.0, color="k", ls="--", lw=1, label="mean")
    ax.axvline(hi, color="tab:red", ls=":", lw=1.2, label="max")
    ax.set_xlabel("|w| / ⟨|w|⟩")
    ax.set_ylabel("points")
    ax.legend(fontsize="small")
    ess = float(a.sum() ** 2 / (a * a).sum())
    ax.set_title(title if title is not None else
                 f"unweighting efficiency {1 / hi:.3g},  ESS {ess:.4g} of {a.size}")
    return fig


# ---------------------------------------------------------------------------- helpers
def _history(source: Any) -> list[IterationRecord]:
    if isinstance(source, Result):
        return list(source.history)
    if hasattr(source, "history") and not isinstance(source, Sequence):
        return list(source.history)
    return list(source)


def _points(source: Any, n: int, weights: Any, seed: int | None
            ) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(source, Flow):
        x, _ = source.sample(int(n), seed=seed)  # Flow.sample draws without gradients
        return _array(x), None
    if hasattr(source, "frozen_flow") and hasattr(source, "sample"):  # an Integrator
        x, _ = source.sample(int(n), seed=seed)
        return _array(x), None
    if hasattr(source, "x") and hasattr(source, "weights"):  # a sample object
        w = _array(source.weights) if weights is None else _array(weights)
        return _array(source.x), w
    x = _array(source)
    if x.ndim != 2:
        raise ValueError(f"points must have shape (n, dim), got {x.shape}")
    return x, None if weights is None else _array(weights).reshape(-1)


def _array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return np.asarray(value, dtype=np.float64)

