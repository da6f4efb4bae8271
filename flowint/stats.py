"""Statistics of importance weights: the final estimate and diagnostics of its error bar.

The final estimate of :class:`flowint.Integrator` is the mean of i.i.d. weights ``w = f/q``
drawn from a frozen flow, and its error bar is their standard error. That error bar is only as
good as the sample variance behind it. When the flow has missed part of the integrand, the
weights are heavy-tailed: most points carry ordinary weights and a rare few (those that land
where ``q`` is much smaller than ``|f|/I``) carry enormous ones. Such tails make the sample
variance an underestimate in most runs, so the error bar is too small exactly when it matters.
:func:`weight_diagnostics` looks for the signs of it:

* the effective sample size ``ESS = (Σ|w|)² / Σw²`` (few effective points: no central limit);
* the largest weight's share of ``Σ|w|`` (one point moves the estimate);
* the Pareto shape ``k̂`` of the upper tail of ``|w|``, fitted as in Pareto-smoothed importance
  sampling (:func:`pareto_k`): ``k̂ > 1/2`` means the weights have no finite variance in the
  limit, and above ``min(0.7, 1 - 1/log10 N)`` the estimate of the error bar is unreliable at
  any practical sample size;
* the relative uncertainty of the error bar itself, from the sample kurtosis of the weights.

None of these can see a region that the final sample never visited; see ``docs/reliability.md``.

All moments are computed after dividing the weights by their largest magnitude, so integrands
with huge finite values (whose squares overflow float64) still give finite results.

References:
    Pareto smoothed importance sampling (Vehtari, Simpson, Gelman, Yao, Gabry, 2024, JMLR 25),
    https://arxiv.org/abs/1507.02646 — the tail-shape diagnostic and its thresholds.

    A new and efficient estimation method for the generalized Pareto distribution (Zhang,
    Stephens, 2009, Technometrics 51), https://doi.org/10.1198/tech.2009.08017 — the
    estimator of ``k̂``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .result import IterationRecord, chi2_q

__all__ = [
    "THRESHOLDS",
    "combine_final",
    "pareto_k",
    "pareto_k_threshold",
    "scaled_mean_std",
    "weight_diagnostics",
]

#: Thresholds of the warnings of :func:`weight_diagnostics` (module-level so they are documented
#: in one place; ``docs/reliability.md`` explains each).
THRESHOLDS: dict[str, float] = {
    "min_points": 100,      # fewer final points: no diagnostic warnings (too little to judge)
    "ess": 100.0,           # warn when the effective sample size is below this ...
    "ess_fraction": 0.5,    # ... or below this fraction of the points, whichever is smaller
    "max_share": 0.05,      # warn when one point carries more than this share of Σ|w|
    "pareto_k": 0.7,        # warn when k̂ exceeds min(this, 1 - 1/log10 N)
    "sdev_rel_error": 0.3,  # warn when the error bar's own relative uncertainty exceeds this
}


def scaled_mean_std(weights: Tensor) -> tuple[float, float]:
    """Mean and sample standard deviation of 1-d weights, safe from overflow.

    ``torch.std`` of values around ``1e200`` is ``inf`` (their squares overflow); dividing by the
    largest magnitude first keeps every intermediate within range.

    Arguments:
        weights: shape ``(n,)``, finite.

    Returns:
        ``(mean, std)``; ``std`` is ``inf`` for fewer than two points, ``mean`` is ``0.0`` for
        none.
    """
    w = weights.to(torch.float64)
    n = int(w.shape[0])
    if n == 0:
        return 0.0, math.inf
    scale = float(w.abs().max())
    if scale == 0.0 or not math.isfinite(scale):
        return float(w.mean()), (float(w.std()) if n > 1 else math.inf)
    ws = w / scale
    mean = float(ws.mean()) * scale
    std = float(ws.std()) * scale if n > 1 else math.inf
    return mean, std


def combine_final(
    records: Sequence[IterationRecord], weights: Tensor
) -> tuple[float, float, float, int, float, tuple[float, ...], tuple[tuple[float, ...], ...]]:
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
        sdev are those of component 0 and ``components``/``covariance`` hold all of them
        (covariance entries may overflow to ``inf`` when the error itself exceeds ``1e154``;
        ``sdev`` does not).
    """
    n = int(weights.shape[0])
    w = weights.to(torch.float64)
    w = w if w.ndim == 2 else w.unsqueeze(-1)
    scale = float(w.abs().max()) if n else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        scale = 1.0
    ws = w / scale
    means_s = ws.mean(0)
    if n > 1:
        centred = ws - means_s
        cov_s = centred.T @ centred / (n - 1) / n
    else:
        cov_s = torch.full((w.shape[1], w.shape[1]), math.inf, dtype=torch.float64)
    means = means_s * scale
    mean = float(means[0])
    sdev = float(cov_s[0, 0].sqrt()) * scale
    var1_s = float(cov_s[0, 0]) * n  # pooled variance of one weight, in units of scale²
    k = len(records)
    chi2 = 0.0
    if k > 1 and var1_s > 0 and math.isfinite(var1_s):
        m_s = float(means_s[0])
        chi2 = sum(r.n * (r.mean / scale - m_s) ** 2 for r in records) / var1_s
    dof = max(k - 1, 0)
    comps: tuple[float, ...] = ()
    cov_t: tuple[tuple[float, ...], ...] = ()
    if weights.ndim == 2:
        comps = tuple(float(m) for m in means)
        with np.errstate(over="ignore"):
            cov_np = cov_s.cpu().numpy() * scale * scale
        cov_t = tuple(tuple(float(c) for c in row) for row in cov_np)
    return mean, sdev, float(chi2), dof, chi2_q(chi2, dof), comps, cov_t


def pareto_k_threshold(n: int) -> float:
    """The largest trustworthy Pareto shape for ``n`` weights: ``min(0.7, 1 - 1/log10 n)``.

    Above it, the sample size needed for a reliable estimate grows faster than any practical
    budget (Vehtari et al. 2024, §3.2.4); for small ``n`` the bound is stricter.

    Arguments:
        n: number of weights (> 10).
    """
    return min(THRESHOLDS["pareto_k"], 1.0 - 1.0 / math.log10(max(n, 11)))


def pareto_k(weights: Tensor | np.ndarray, tail: int | None = None) -> float:
    """Shape ``k̂`` of a generalised Pareto fit to the upper tail of ``|weights|``.

    The tail is the ``M = ceil(min(0.2 N, 3 √N))`` largest values above the next one, ``u``
    (as in Pareto-smoothed importance sampling); the fit is the empirical-Bayes estimator of
    Zhang & Stephens (2009) with the weakly informative prior of Vehtari et al. that shrinks
    ``k̂`` towards ½ by ten pseudo-observations. ``k̂ < ½``: finite variance, the central limit
    theorem applies; ``½ < k̂ < 0.7``: infinite variance but a usable estimate; ``k̂ > 0.7``: the
    mean converges too slowly for its error bar to be trusted. Bounded weights give ``k̂ ≤ 0``.

    The result is the smaller of that fit and Hill's estimate ``mean(log(w / u))`` over the
    same tail. For a power-law tail the two agree (Hill's is a little higher: by 0.01–0.1 for
    the Lomax law at the sizes of a run); a tail in a few tight clusters, as the
    piecewise-constant weights of an indicator sampled through a per-axis grid give (weights
    bounded, most of the tail at the threshold and a cluster near 2.9 × it), breaks the
    generalised Pareto fit (``k̂ ≈ 2.9`` there) while Hill's estimate stays at what such a
    small spread allows (0.3): largest weights all within a few times the threshold cannot be
    the tail of an effectively infinite variance.

    Arguments:
        weights: the importance weights (any sign; their magnitudes are used).
        tail: number of tail points to fit (default as above).

    Returns:
        ``k̂``; ``nan`` with fewer than 5 tail points, ``-inf`` when the tail is flat (all the
        largest weights equal).
    """
    a = np.abs(np.asarray(weights.detach().cpu() if isinstance(weights, Tensor) else weights,
                          dtype=np.float64)).ravel()
    a = a[np.isfinite(a)]
    n = a.size
    m = int(math.ceil(min(0.2 * n, 3.0 * math.sqrt(n)))) if tail is None else int(tail)
    m = min(m, n - 1)
    if m < 5:
        return math.nan
    a = np.sort(a)
    top = a[-1]
    if top <= 0.0:
        return -math.inf
    u = a[n - m - 1]
    x = (a[n - m:] - u) / top  # exceedances over the threshold, scaled to <= 1
    if x[-1] <= 0.0:
        return -math.inf
    k_fit = _gpd_shape(x)
    if not u > 0.0:  # a threshold of zero: no log-spread to compare with
        return k_fit
    hill = float(np.log(a[n - m:] / u).mean())
    return min(k_fit, hill) if math.isfinite(k_fit) else k_fit


def _gpd_shape(x: np.ndarray) -> float:
    """Zhang–Stephens estimate of the generalised Pareto shape of sorted exceedances ``x``."""
    n = x.size
    n_grid = 30 + int(math.sqrt(n))
    # Candidate values of θ = -k/σ, spread by the quantiles of a reference distribution.
    j = np.arange(1, n_grid + 1, dtype=np.float64)
    quartile = x[max(int(n / 4.0 + 0.5) - 1, 0)]
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(n_grid / (j - 0.5))) / (3.0 * max(quartile, 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        k_grid = np.log1p(-theta[:, None] * x[None, :]).mean(axis=1)
        profile = n * (np.log(-theta / k_grid) - k_grid - 1.0)
    ok = np.isfinite(profile)
    if not ok.any():
        return math.nan
    theta, profile = theta[ok], profile[ok]
    post = np.exp(profile - profile.max())
    post /= post.sum()
    theta_hat = float((theta * post).sum())
    k_hat = float(np.log1p(-theta_hat * x).mean())
    # Weakly informative prior: 10 pseudo-observations at k = 1/2.
    return (n * k_hat + 10 * 0.5) / (n + 10)


def weight_diagnostics(weights: Tensor) -> dict[str, Any]:
    """Effective sample size, unweighting efficiency, tail shape and warnings about the weights.

    Arguments:
        weights: the final weights ``f/q``, shape ``(N,)``.

    Returns:
        A dict with ``rel_std`` (``σ(w)/|⟨w⟩|``), ``ess`` (``(Σ|w|)²/Σw²``),
        ``unweighting_efficiency`` (``⟨|w|⟩/max|w|``), ``max_weight_share``
        (``max|w|/Σ|w|``), ``pareto_k`` (:func:`pareto_k` of the weights), ``sdev_rel_error``
        (the estimated relative standard deviation of the error bar ``sdev`` itself,
        ``½ √((m₄/m₂² − 1)/N)`` with ``m₂``, ``m₄`` the central moments) and ``warnings`` (a
        tuple of messages, see :data:`THRESHOLDS`).
    """
    w = weights.to(torch.float64)
    n = int(w.shape[0])
    a = w.abs()
    scale = float(a.max()) if n else 0.0
    if scale == 0.0 or not math.isfinite(scale):
        return {"rel_std": 0.0, "ess": float(n), "unweighting_efficiency": 1.0,
                "max_weight_share": 0.0, "pareto_k": math.nan, "sdev_rel_error": 0.0,
                "warnings": ()}
    a_s = a / scale
    total_s = float(a_s.sum())
    mean, std = scaled_mean_std(w)
    ess = total_s**2 / float((a_s * a_s).sum())
    share = 1.0 / total_s
    k_hat = pareto_k(a_s)
    sdev_err = math.nan
    if n > 1:
        c = w / scale - mean / scale
        m2 = float((c * c).mean())
        m4 = float((c**4).mean())
        sdev_err = 0.5 * math.sqrt(max(m4 / m2**2 - 1.0, 0.0) / n) if m2 > 0 else 0.0
    out: dict[str, Any] = {
        "rel_std": std / abs(mean) if mean != 0 else math.inf,
        "ess": ess,
        "unweighting_efficiency": total_s / n,
        "max_weight_share": share,
        "pareto_k": k_hat,
        "sdev_rel_error": sdev_err,
    }
    out["warnings"] = _warnings(n, ess, share, k_hat, sdev_err)
    return out


def _warnings(n: int, ess: float, share: float, k_hat: float, sdev_err: float) -> tuple[str, ...]:
    t = THRESHOLDS
    if n < t["min_points"]:
        return ()
    msgs = []
    ess_min = min(t["ess"], t["ess_fraction"] * n)
    if ess < ess_min:
        msgs.append(f"effective sample size {ess:.3g} of {n} points (< {ess_min:.3g}): the flow "
                    "may have missed part of the integrand; the error bar may be too small")
    if share > t["max_share"]:
        msgs.append(f"one point carries {100 * share:.3g}% of the total weight "
                    f"(> {100 * t['max_share']:.3g}%): the weight distribution is heavy-tailed "
                    "and the error bar may not be reliable")
    k_max = pareto_k_threshold(n)
    if math.isfinite(k_hat) and k_hat > k_max:
        msgs.append(f"Pareto tail index k̂ = {k_hat:.2f} of the largest weights (> {k_max:.2f}): "
                    "their variance is effectively infinite, the error bar cannot be trusted; "
                    "train longer or use more final points")
    if math.isfinite(sdev_err) and sdev_err > t["sdev_rel_error"]:
        msgs.append(f"the error bar itself is uncertain by ±{100 * sdev_err:.0f}% (> "
                    f"{100 * t['sdev_rel_error']:.0f}%, from the weights' kurtosis): a few "
                    "points dominate the variance")
    return tuple(msgs)
