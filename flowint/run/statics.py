"""The Policy's decisions about the static samplers: which it measures before training, how
their measured errors compare, and when one is so good that training is not worth trying.

The static candidates are samplers that learn nothing from the calls: the identity (plain
randomized quasi-Monte Carlo), a per-axis grid adapted to the identity's points (what VEGAS
learns), and, in few dimensions on smooth integrands, the identity fed interlaced
(higher-order) quasi-random points (:mod:`flowint.run.interlaced`). Mixed into
:class:`~flowint.run.policy.Policy`.
"""

from __future__ import annotations

import math
from typing import Any

from .interlaced import MAX_DIM as INTERLACED_MAX_DIM
from .model import Model, goal_var, model

__all__ = ["EXPLORE_RANDOMIZATIONS", "EXPLORE_SIZES", "GRID_PRIOR", "SMOOTH_RATE",
           "StaticDecisions"]

EXPLORE_RANDOMIZATIONS = 8  # per size
EXPLORE_SIZES = 3           # sizes n, 4n, 16n per static candidate
GRID_PRIOR = 4.0            # the grid must be predicted this much better than the identity
#: The identity's measured variance exponent from which the interlaced candidate is measured:
#: over seeds 1–20 at 1.1·10⁶ calls the annulus (an indicator) measured 1.00–2.14, the signed
#: camel 2-D 1.95–2.5, the camel 2-D 2.04–2.5 and gaussian_genz 4-D 2.06–2.5 (2.5 is the cap).
SMOOTH_RATE = 2.2


class StaticDecisions:
    """Decisions about the static candidates (mixed into :class:`~flowint.run.policy.Policy`)."""

    dim: int
    settings: Any

    def static_candidates(self, measures: dict[str, Any]) -> tuple[str, ...]:
        """The samplers measured before training: the identity and the per-axis grid, and,
        up to :data:`~flowint.run.interlaced.MAX_DIM` dimensions where the identity's
        measured rate shows a smooth integrand (variance falling at least as ``n^-a`` with
        ``a`` = :data:`SMOOTH_RATE`), the identity fed higher-order (interlaced)
        quasi-random points (:mod:`flowint.run.interlaced`). On a discontinuous integrand
        the interlaced points gain nothing and their set means are heavy-tailed (annulus, 15
        sets of 2^16, 40 seeds: RMS error 6.1·10⁻⁵ against 4.0·10⁻⁵ for plain points). Where
        it is measured and not taken, its calls are missing from the final estimate, which
        then can fall below a power of two per set (camel 4-D and the annulus at 1.1·10⁶
        calls: 15 sets of 2^16 instead of 8 of 2^17)."""
        base = ("identity", "grid")
        done = measures.get("identity", [])
        if self.dim > INTERLACED_MAX_DIM or len(done) < EXPLORE_SIZES:
            return base
        ident = model(done)
        return (*base, "interlaced") if ident.reliable and ident.a >= SMOOTH_RATE else base

    def explores(self, budget: int, n_train: int | None) -> bool:
        """Whether a call measures the static candidates before training."""
        return bool(self.settings.explore) and bool(self.settings.qmc) and n_train is None \
            and budget >= 10_000

    def _static_score(self, candidate: str, m: Model, left: float, goal: float | None) -> float:
        """:meth:`_final_var`, with the grid handicapped by :data:`GRID_PRIOR`: a per-axis map
        bends a smooth integrand's quasi-random structure, and its rate measured on small sets
        tends to over-predict (camel 2-D: predicted better than the identity, measured 5×
        worse), so it is chosen only where it is predicted clearly better (separable peaks,
        where it wins by orders of magnitude)."""
        return self._final_var(m, left, goal) * (GRID_PRIOR if candidate == "grid" else 1.0)

    def _final_var(self, m: Model, left: float, goal: float | None) -> float:
        """A static candidate's predicted final variance (fixed budget) or, with a goal,
        the calls it needs (both: smaller is better)."""
        if goal is not None:
            return m.calls_for(goal_var(goal, m.mean))
        return m.var(left)

    @staticmethod
    def _static_suffices(m: Model, left: float, goal: float | None, budget: float,
                         cancel: float = 1.0) -> bool:
        """Whether a static candidate is so good that training is not worth trying (asked only
        when the flow was not trained before the call, e.g. by a split run's pilot): it meets
        the goal within a tenth of the calls left, or its predicted relative error is below
        that of i.i.d. points with a per-sample relative std of ``ρ_floor(B) = 0.2 (3·10⁴ /
        B)^½`` (clipped to [0.005, 0.3]): a rough envelope of what flows reach with ``B``
        calls in our benchmarks (about 0.17 at 3·10⁴ calls in 3-D, 0.01–0.2 at 10⁶).

        For a sign-changing ``f`` the envelope is ``cancel`` times larger (``∫|f| / |∫f|``,
        :meth:`~flowint.run.allocation.ChannelDecisions.cancellation`): two channels each at
        ``ρ`` give at best ``ρ ∫|f| / |∫f|`` per sample (one density cannot go below
        ``√(cancel² − 1)``). The signed camel 2-D at 10⁵ calls (``cancel = 3``) split on two
        of five seeds without it, with error bars 3–5× those of plain RQMC."""
        if goal is not None and m.calls_for(goal_var(goal, m.mean)) <= 0.1 * left:
            return True
        floor = min(max(0.2 * math.sqrt(3e4 / max(budget, 1.0)), 0.005), 0.3) * cancel
        return m.var(left) < floor ** 2 / max(left, 1.0)
