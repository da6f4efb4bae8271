"""Statistics of importance weights: the final estimate and diagnostics of its error bar."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .result import IterationRecord, chi2_q

__all__ = ["combine_final", "weight_diagnostics"]


def combine_final(records: Sequence[IterationRecord], weights: Tensor):
    """Combine the final iterations of a frozen flow.

    All final iterations sample the same frozen density, so they share one true variance and
    their inverse-variance weights are proportional to their sizes: the combination is the
    pooled mean of all weights, with the pooled standard error. Using each iteration's own
    variance estimate instead would bias the result (low estimates come with low variances).
    χ² tests the iterations against each other with the pooled variance.

    Arguments:
        records: the final iterations (``phase == "final"``).
        weights: all their weights ``f/q``, shape ``(N,)`` or ``(N, k)``.

    Returns:
        ``(mean, sdev, chi2, dof, Q, components, covariance)``; for vector integrands mean and
        sdev are those of component 0 and ``components``/``covariance`` hold all of them.
    """
    n = weights.shape[0]
    w = weights if weights.ndim == 2 else weights.unsqueeze(-1)
    means = w.mean(0)
    if n > 1:
        centred = w - means
        cov = centred.T @ centred / (n - 1) / n
    else:
        cov = torch.full((w.shape[1], w.shape[1]), math.inf, dtype=w.dtype)
    mean = float(means[0])
    sdev = float(cov[0, 0].sqrt())
    var1 = float(cov[0, 0]) * n  # pooled variance of one weight
    k = len(records)
    chi2 = 0.0
    if k > 1 and var1 > 0 and math.isfinite(var1):
        chi2 = sum(r.n * (r.mean - mean) ** 2 for r in records) / var1
    dof = max(k - 1, 0)
    comps: tuple[float, ...] = ()
    cov_t: tuple[tuple[float, ...], ...] = ()
    if weights.ndim == 2:
        comps = tuple(float(m) for m in means)
        cov_t = tuple(tuple(float(c) for c in row) for row in cov)
    return mean, sdev, float(chi2), dof, chi2_q(chi2, dof), comps, cov_t


def weight_diagnostics(weights: Tensor) -> dict:
    """Effective sample size, unweighting efficiency and warnings about the weights.

    Arguments:
        weights: the final weights ``f/q``, shape ``(N,)``.

    Returns:
        A dict with ``rel_std`` (``σ(w)/|⟨w⟩|``), ``ess`` (``(Σ|w|)²/Σw²``),
        ``unweighting_efficiency`` (``⟨|w|⟩/max|w|``), ``max_weight_share``
        (``max|w|/Σ|w|``) and ``warnings`` (a tuple of messages).
    """
    w = weights.to(torch.float64)
    n = w.shape[0]
    a = w.abs()
    total = float(a.sum())
    mean = float(w.mean()) if n else 0.0
    std = float(w.std()) if n > 1 else math.inf
    if total == 0.0:
        return {"rel_std": 0.0, "ess": float(n), "unweighting_efficiency": 1.0,
                "max_weight_share": 0.0, "warnings": ()}
    wmax = float(a.max())
    ess = total**2 / float((a * a).sum())
    out = {
        "rel_std": std / abs(mean) if mean != 0 else math.inf,
        "ess": ess,
        "unweighting_efficiency": total / n / wmax,
        "max_weight_share": wmax / total,
    }
    msgs = []
    if n >= 100 and ess < max(10.0, 1e-3 * n):
        msgs.append(f"effective sample size {ess:.3g} of {n} points: the flow may have missed "
                    "part of the integrand; the error bar may be too small")
    if n >= 100 and wmax / total > 0.1:
        msgs.append(f"one point carries {100 * wmax / total:.0f}% of the total weight: the "
                    "weight distribution is heavy-tailed and the error bar may not be reliable")
    out["warnings"] = tuple(msgs)
    return out
