"""Re-planning a final estimate whose sets turn out too small for its error target.

With an error target, the final estimate's set size comes from the calls the target is
predicted to need, and that prediction extrapolates a quasi-random gain measured on a few small
sets. When the gain was far too optimistic, staged stopping would go on with the small sets:
a camel 8-D flow (``hidden=32``) measured at 16 and 64 points predicted a gain of 170 at 2,048
points, planned sets of 64, and needed 5,300 of them, 58 s of sampling for 334,000 points, most
of it the fixed cost of each set (scrambling, a pass through the flow, bookkeeping).

After a look that does not meet the target, :func:`replan` weighs going on against starting
the final estimate again with sets as large as the calls the goal needs allow (at least
:data:`~flowint.run.estimator.MIN_RANDOMIZATIONS` of them): the new plan is taken when its
predicted seconds are below half of what the current plan still needs, and the sets drawn so
far become a measurement of the sampler. Seconds per set are ``o + c n``: the fixed
cost ``o`` and the cost per point ``c`` (integrand and sampler) are fitted to the seconds of
the smallest measured sets of this sampler and of the current ones. The abandoned sets leave
the estimate (their record keeps them in the history, labelled as a measurement): the new sets
are drawn after the decision, so the estimate stays unbiased.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from ..result import IterationRecord
from .estimator import MIN_RANDOMIZATIONS, Estimator
from .model import pow2_floor

__all__ = ["REPLAN_GAIN", "REPLAN_MARGIN", "replan", "set_costs"]

#: A new plan must be predicted to take at most this fraction of the seconds the current one
#: still needs (predictions of both are rough).
REPLAN_GAIN = 0.5
#: The new sets are sized for this multiple of the calls the goal is predicted to need.
REPLAN_MARGIN = 1.25


def set_costs(stage: list[IterationRecord], measured: list[IterationRecord], n: int,
              explore_k: int) -> tuple[float, float]:
    """``(o, c)``: fixed seconds per set and seconds per point, from the final sets so far
    (``stage``, ``n`` points each) and the measurement records of the same sampler
    (``measured``, ``explore_k`` sets each); ``c = 0`` when only one size was timed."""
    s_n = sum(r.time for r in stage) / max(len(stage), 1)
    sizes = sorted((r.n // explore_k, r.time / explore_k) for r in measured
                   if r.n // explore_k < n)
    if not sizes:
        return s_n, 0.0
    n_lo, s_lo = sizes[0]
    c = max((s_n - s_lo) / (n - n_lo), 0.0)
    return max(s_n - c * n, 0.0), c


def replan(call: dict[str, Any], action: Any, weights: list[Tensor], sdev: float,
           goal: float, history: list[IterationRecord], first: int,
           explore_k: int) -> tuple[Any, list[Any], int] | None:
    """A new final action with larger sets, the measurement of the sets drawn and the number
    of new sets to draw before the first look at the goal; or ``None`` to go on.

    The new sets are drawn before any look at the goal: their number is fixed by this
    decision (the calls the goal is predicted to need, times :data:`REPLAN_MARGIN`), so that
    the estimate does not select sets whose spread happened to fall just below the goal (the
    optional stopping of staged looks); if they miss it, staged stopping goes on from there.

    The calls the goal needs come from the current sets' own spread (``k`` sets of ``n``
    points need ``1.05 k (sdev / goal)²`` sets in all, as
    :func:`~flowint.run.estimator.next_stage` predicts), and
    are assumed the same at any set size: no quasi-random gain beyond the measured one, since
    an extrapolated gain is what misled the plan.

    Arguments:
        call: the call's progress record (not changed here).
        action: the current final action (its ``planned_var``, fixed before any final set was
            drawn, stays the new action's).
        weights: the current sets' weights (``len(weights)`` sets of ``action.n``).
        sdev: the current estimate's standard error.
        goal: the error target (absolute).
        history: the run's history; the current sets' records start at ``first``.
        first: index of the first record of the current sets.
        explore_k: sets per measurement record.
    """
    k, n = len(weights), int(action.n)
    if not (math.isfinite(sdev) and sdev > goal > 0) or k < MIN_RANDOMIZATIONS:
        return None
    left = (int(action.k) - k) * n  # calls the current plan may still take
    total = min(1.05 * k * (sdev / goal) ** 2, float(action.k))  # sets of n the goal needs
    calls = min(REPLAN_MARGIN * total * n, float(left))
    size = pow2_floor(calls / MIN_RANDOMIZATIONS)
    if size <= n:
        return None
    sets = min(max(math.ceil(calls / size), MIN_RANDOMIZATIONS), left // size)
    measured = [r for r in history[call.get("history_start", 0):first]
                if r.phase == action.candidate]
    o, c = set_costs(history[first:], measured, n, explore_k)
    if sets * (o + c * size) >= REPLAN_GAIN * (total - k) * (o + c * n):
        return None
    new = action._replace(n=size, k=max(left // size, 1))
    return new, list(Estimator.measurement(weights)), sets
