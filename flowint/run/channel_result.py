"""The :class:`~flowint.result.Result` of a split run, and channel results as plain data.

The channels' estimates are independent (each draws its own points), so the combined result is
``mean = m⁺ − m⁻`` and ``sdev = √(s⁺² + s⁻²)``; every per-channel diagnostic stays available
in :attr:`Result.channels <flowint.result.Result.channels>`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..result import IterationRecord, Result, chi2_q
from .report import log_values

if TYPE_CHECKING:  # pragma: no cover
    from .driver import CallDriver

__all__ = ["combine_channels", "result_from_plain", "result_to_plain"]


def combine_channels(driver: CallDriver, call: dict[str, Any], results: Mapping[str, Result],
                     signs: Mapping[str, int] | None = None, offset: float = 0.0,
                     seconds: Mapping[str, float] | None = None) -> Result:
    """The result of a channel call from its channels' results.

    Arguments:
        driver: the parent call's driver (its state counts every call of ``f``).
        call: the parent call's progress record.
        results: each channel's result (a split: ``{"+": f⁺, "-": f⁻}``), each with the
            calls and seconds of its whole channel (pilot included); their integrand
            seconds are also the parent's.
        signs: each channel's sign in the sum (default: ``-1`` for ``"-"``, else ``1``).
            An integrand given as a logarithm is summed in log space (all signs ``1``).
        offset: a known constant added to the sum (the control variates' integrals of a
            sign split that ends in its residual channel).
        seconds: training and sampling seconds of channels without a result of their own
            (pilots whose channel made no call), added to the result's.

    Returns:
        The combined :class:`~flowint.result.Result` (see its ``channels`` attribute for what
        each scalar diagnostic means here).
    """
    state = driver.state
    signs = signs or {c: -1 if c == "-" else 1 for c in results}
    if driver.f.log:
        logs = _log_sum(results)
    else:
        mean = offset + sum(signs[c] * r.mean for c, r in results.items())
        logs = log_values(mean, math.sqrt(sum(r.sdev**2 for r in results.values())), None)
    mean, sdev = logs["mean"], logs["sdev"]
    tested = [(c, r) for c, r in results.items() if r.chi2_tests]
    # only tests that can fail are summed: with quasi-random finals alone there is none
    chi2, dof = sum(r.chi2 for _, r in tested), sum(r.dof for _, r in tested)
    n_final = sum(r.n_evals_final for r in results.values())
    spent = {k: state.spent(k) - driver.seconds0.get(k, 0.0) for k in ("f", "train", "sample")}
    for part in [*(r.seconds for r in results.values()), seconds or {}]:
        for kind in ("train", "sample"):  # the parent's own are exploration before the split
            spent[kind] += float(part.get(kind, 0.0))
    rel = logs["log_sdev"] if driver.f.log else (sdev / abs(mean) if mean != 0 else math.inf)
    return Result(
        mean=mean, sdev=sdev, chi2=chi2, dof=dof, Q=chi2_q(chi2, dof),
        n_evals=state.n_evals - call["start_evals"], n_evals_final=n_final,
        rel_std=rel * math.sqrt(n_final),
        ess=sum(r.ess for r in results.values()),
        unweighting_efficiency=min(r.unweighting_efficiency for r in results.values()),
        max_weight_share=max(r.max_weight_share for r in results.values()),
        history=tuple(state.history), wall_time=driver.elapsed(), n_dropped=state.n_dropped,
        warnings=tuple(f"channel {c}: {w}" for c, r in results.items() for w in r.warnings),
        method="channels", seconds=spent,
        n_evals_reused=sum(r.n_evals_reused for r in results.values()),
        chi2_tests="; ".join(f"channel {c}: {r.chi2_tests}" for c, r in tested),
        log_mean=logs["log_mean"], log_sdev=logs["log_sdev"], log_scale=logs["log_scale"],
        channels=dict(results),
    )


def _log_sum(results: Mapping[str, Result]) -> dict[str, Any]:
    """:func:`~flowint.run.report.log_values` of ``Σ_c I_c`` from each channel's ``log_mean``
    and ``log_sdev`` (the relative error): ``log I = logsumexp(log I_c)`` and
    ``var I = Σ_c (I_c log_sdev_c)²``, computed relative to ``I``."""
    logs = [(r.log_mean, r.log_sdev) for r in results.values() if r.log_mean > -math.inf]
    if not logs:
        return log_values(0.0, 0.0, 0.0)
    top = max(lm for lm, _ in logs)
    total = math.fsum(math.exp(lm - top) for lm, _ in logs)
    rel2 = math.fsum((math.exp(lm - top) / total * (ls if math.isfinite(ls) else math.inf)) ** 2
                     for lm, ls in logs)
    return log_values(1.0, math.sqrt(rel2), top + math.log(total))


def result_to_plain(result: Result) -> dict[str, Any]:
    """A channel's result as plain containers (kept in the call record, so a resumed split
    call returns it without evaluating anything again)."""
    out = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
           if f.name not in ("channels", "channel_alpha")}
    out["history"] = [list(dataclasses.astuple(r)) for r in result.history]
    out["seconds"] = dict(result.seconds)
    out["component_diagnostics"] = [dict(d) for d in result.component_diagnostics]
    return out


def result_from_plain(data: Mapping[str, Any]) -> Result:
    """The :class:`~flowint.result.Result` that :func:`result_to_plain` stored."""
    return Result(**{
        **data,
        "history": tuple(IterationRecord(*r) for r in data["history"]),
        "warnings": tuple(data["warnings"]),
        "components": tuple(data["components"]),
        "covariance": tuple(tuple(row) for row in data["covariance"]),
        "component_diagnostics": tuple(dict(d) for d in data["component_diagnostics"]),
        "seconds": dict(data["seconds"]),
    })
