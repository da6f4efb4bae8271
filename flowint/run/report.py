"""The :class:`~flowint.result.Result` of a final estimate, with its diagnostics."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..result import IterationRecord, Result
from ..stats import combine_final, weight_diagnostics
from .estimator import combine_pieces, qmc_errors
from .state import Piece

if TYPE_CHECKING:  # pragma: no cover
    from .driver import CallDriver
    from .policy import Action

__all__ = ["build_result"]


def build_result(driver: CallDriver, call: dict[str, Any], action: Action,
                 weights: Sequence[Tensor], records: Sequence[IterationRecord], qmc: bool,
                 pieces: Sequence[Piece]) -> Result:
    """The result of the final randomizations ``weights``, combined with ``pieces``.

    The final estimate's error comes from the spread of its randomizations (quasi-random) or
    from the pooled per-point variance (i.i.d.). Training pieces enter only for scalar
    integrands; χ²/dof and Q then test the pieces and the final estimate against each other.
    """
    state = driver.state
    w_all = torch.cat(list(weights))
    mean, sdev, chi2, dof, q_value, comps, cov = combine_final(list(records), w_all)
    if qmc and len(weights) > 1:
        _, cov_m, sdev = qmc_errors(weights)
        if w_all.ndim == 2:
            cov = tuple(tuple(float(c) for c in row) for row in cov_m)
    n_final = int(w_all.shape[0])
    reused = 0
    tests = "" if qmc and len(weights) > 1 else "final iterations against each other"
    dropped = ""
    if pieces and w_all.ndim == 1:
        final = Piece(n_final, mean, sdev, float(action.planned_var))
        combined = combine_pieces(final, pieces)
        if combined.dof > 0:  # the training iterations were tested against the final
            chi2, dof, q_value = combined.chi2, combined.dof, combined.Q
            tests = "training iterations against the final estimate"
        if combined.used:
            mean, sdev = combined.mean, combined.sdev
            reused = sum(p.n for p in pieces)
        elif combined.dof > 0:
            tests += " (they disagree: left out of the estimate)"
            dropped = (f"the training iterations disagree with the final estimate (chi2/dof "
                       f"{combined.chi2 / combined.dof:.3g}, Q {combined.Q:.2g}): they are left "
                       "out, and the sampler may have found part of the integrand late; the "
                       "error bar may be too small")
    w0 = w_all if w_all.ndim == 1 else w_all[:, 0]
    diag = weight_diagnostics(w0)
    per_component = component_diagnostics(w_all, comps, cov)
    if per_component:  # vector integrands: every component's warnings, each named
        diag["warnings"] = tuple(f"component {k}: {msg}" for k, d in enumerate(per_component)
                                 for msg in d.pop("warnings"))
    if dropped:
        diag["warnings"] = (dropped, *diag["warnings"])
    if mean == 0.0 and sdev == 0.0:
        diag["warnings"] = diag["warnings"] + (
            "the integrand was zero at every sampled point; the result is 0 ± 0",)
    for msg in diag["warnings"]:
        warnings.warn(msg, RuntimeWarning, stacklevel=4)
    logs = log_values(mean, sdev, state.log_scale if driver.f.log else None)
    start = call.get("start_evals", state.n_evals - n_final)
    seconds = {k: state.spent(k) - driver.seconds0.get(k, 0.0) for k in ("f", "train", "sample")}
    return Result(
        mean=logs["mean"], sdev=logs["sdev"], chi2=chi2, dof=dof, Q=q_value,
        n_evals=state.n_evals - start, n_evals_final=n_final,
        rel_std=(sdev * math.sqrt(n_final) / abs(mean) if mean != 0 else diag["rel_std"]),
        ess=diag["ess"], unweighting_efficiency=diag["unweighting_efficiency"],
        max_weight_share=diag["max_weight_share"], history=tuple(state.history),
        wall_time=driver.elapsed(), n_dropped=state.n_dropped, warnings=diag["warnings"],
        components=comps, covariance=cov, method=action.candidate, seconds=seconds,
        n_evals_reused=reused, chi2_tests=tests, log_mean=logs["log_mean"],
        log_sdev=logs["log_sdev"], log_scale=logs["log_scale"],
        component_diagnostics=tuple(per_component),
    )


def component_diagnostics(w_all: Tensor, comps: Sequence[float],
                          cov: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """Per component of a vector integrand: :func:`~flowint.stats.weight_diagnostics` of its
    weights, with ``rel_std`` replaced by the effective ``sdev_k √N / |mean_k|`` (the meaning
    of :attr:`Result.rel_std`); empty for a scalar integrand."""
    if w_all.ndim != 2:
        return []
    n = int(w_all.shape[0])
    out = []
    for k in range(int(w_all.shape[1])):
        d = weight_diagnostics(w_all[:, k])
        mean, sdev = float(comps[k]), math.sqrt(max(float(cov[k][k]), 0.0))
        d["rel_std"] = sdev * math.sqrt(n) / abs(mean) if mean != 0 else d["rel_std"]
        out.append(d)
    return out


def log_values(mean: float, sdev: float, log_scale: float | None) -> dict[str, Any]:
    """``mean``, ``sdev``, ``log_mean``, ``log_sdev`` and ``log_scale`` of a result whose
    estimate is ``mean ± sdev`` in units of ``exp(log_scale)`` (``None``: plain units).

    ``mean`` is ``exp(log_mean)`` where float64 can hold it, else 0 or inf.
    """
    positive = mean > 0 and math.isfinite(mean)
    log_mean = math.log(mean) if positive else math.nan
    log_sdev = sdev / mean if positive else math.nan
    if log_scale is None:
        return {"mean": mean, "sdev": sdev, "log_mean": log_mean, "log_sdev": log_sdev,
                "log_scale": None}
    if not positive:  # log f = -inf at every point: f = 0
        return {"mean": 0.0, "sdev": 0.0, "log_mean": -math.inf, "log_sdev": math.nan,
                "log_scale": log_scale}
    log_mean += log_scale
    try:
        value = math.exp(log_mean)
    except OverflowError:
        value = math.inf
    return {"mean": value, "sdev": value * log_sdev if math.isfinite(value) else math.inf,
            "log_mean": log_mean, "log_sdev": log_sdev, "log_scale": log_scale}
