"""Predictions from measurements: how a sampler's quasi-random error falls with its set size.

``k`` scrambled-Sobol randomizations of ``n`` points through one sampler give the variance of
one randomization's mean; at two or three sizes they give its exponent ``a`` in
``v(n) = v1 (n / n1)^-a`` (``a = 1``: no gain over i.i.d. points; up to 3 for smooth
integrands), and so the error a final estimate of ``N`` calls would reach. Every variance here
is relative to the integral squared, so integrands near ``1e±300`` stay finite.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .estimator import FEWEST_RANDOMIZATIONS, MIN_RANDOMIZATIONS
from .state import Measurement

__all__ = ["MIN_ESS", "Model", "candidate_model", "final_sizes", "goal_var", "model",
           "pow2_floor", "square", "t_widening"]

_RATE_RANGE = (1.0, 2.5)    # convergence exponent of the variance of a randomization's mean
_MAX_EXTRAPOLATED_GAIN = 100.0
_LARGER_SETS_GAIN = 1.25    # fewer, larger final sets: this much better, beyond t_widening
MIN_ESS = 100.0             # a measurement with a smaller effective sample size is not trusted


class Model(NamedTuple):
    """``v(n) = v1 (n / n1)^-a``: the variance of one randomization's mean at size ``n``,
    relative to ``mean²`` (as are ``var_point`` and every variance the policy compares)."""

    n1: int
    v1: float
    a: float
    var_point: float
    mean: float
    ess: float = math.inf

    @property
    def reliable(self) -> bool:
        """Whether the measurement saw the integrand: a Kish effective sample size
        ``(Σ|w|)² / Σw²`` of the pooled weights of at least :data:`MIN_ESS`. Points that all
        but missed a narrow peak give means and spreads near 0 — a variance estimate that
        looks excellent and is wrong (the 32-D camel at 10⁵ calls: plain RQMC chosen, off by
        55σ). The magnitudes ``|w|`` count what the points saw, not how much the signs
        cancel: with ``(Σw)²`` the signed camel 2-D's 2,048 uniform points had an ESS of
        about 60 and plain RQMC was never a candidate there at 10⁵ calls."""
        return self.ess >= MIN_ESS

    def var(self, calls: float, k: int | None = None) -> float:
        """Variance of a final estimate of ``calls``: in ``k`` randomizations of
        ``calls / k`` points, or (``k=None``) as :func:`final_sizes` would draw it, which
        sees the loss when ``calls`` falls just below ``16·2^m``."""
        if k is None and calls >= 2 * MIN_RANDOMIZATIONS:  # as the policy's final action
            n, k = final_sizes(calls, self.a)
        else:
            k = k or MIN_RANDOMIZATIONS
            n = max(calls / k, 1.0)
        return self.v1 * (n / self.n1) ** (-self.a) / k

    def calls_for(self, goal_var: float, k: int = MIN_RANDOMIZATIONS) -> float:
        """Calls a final estimate needs to reach the variance ``goal_var``."""
        if self.v1 <= 0:
            return float(k)
        n = self.n1 * (self.v1 / (k * goal_var)) ** (1.0 / self.a)
        return max(n, 1.0) * k

    def gain(self, n: float) -> float:
        """Quasi-random variance gain over i.i.d. points at randomizations of ``n``."""
        if not (math.isfinite(self.v1) and math.isfinite(self.var_point)):
            return 1.0
        g1 = self.var_point / (self.n1 * self.v1) if self.v1 > 0 else _MAX_EXTRAPOLATED_GAIN
        g = g1 * (max(n, 1.0) / self.n1) ** (self.a - 1.0)
        return min(max(g, 1.0), _MAX_EXTRAPOLATED_GAIN * max(g1, 1.0))


def candidate_model(candidate: str, measures: list[Any], rate_cap: float | None = None) -> Model:
    """:func:`model` of a candidate's measurements; for ``"interlaced"`` (higher-order
    points, :mod:`flowint.run.interlaced`) the exponent from its two largest sizes only,
    clipped to ``[1, 4]``: its order shows only from a few thousand points per set (signed
    camel 2-D, 8 sets: the variance fell 2× from 128 to 512 points and 556× from 512 to
    2,048), where the plain points' least-squares fit over all sizes would read the early
    plateau as the rate (2.5 at most; variance ``∝ n^-5`` in theory for order 2, ``∝ n^-4.2``
    measured on that integrand from 2,048 to 131,072 points). ``rate_cap``: a lower cap on
    the exponent (:meth:`~flowint.run.statics.StaticDecisions.static_model`)."""
    cap = math.inf if rate_cap is None else rate_cap
    if candidate == "interlaced":
        return model(measures[-2:], rate_max=min(4.0, cap))
    return model(measures, rate_max=min(_RATE_RANGE[1], cap))


def model(measures: list[Any], rate_max: float = _RATE_RANGE[1]) -> Model:
    """Fit :class:`Model` to a candidate's measurements: the exponent ``a`` is the least-squares
    slope of ``log v`` against ``log n`` over the sizes measured (clipped to [1, 2.5], or to
    ``[1, rate_max]``; 1 with one size), and the line is anchored at the largest size."""
    ms = [Measurement(*m) for m in measures]
    last = ms[-1]
    if not all(math.isfinite(m.var_mean) and math.isfinite(m.var_point) for m in ms):
        return Model(last.n, math.inf, 1.0, math.inf, last.mean, 0.0)  # saw nothing: unreliable
    tiny = 1e-30
    xs = [math.log(m.n) for m in ms]
    ys = [math.log(max(m.var_mean, tiny)) for m in ms]
    a = 1.0
    if len(ms) > 1 and max(xs) > min(xs):
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        a = -sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) * (x - mx) for x in xs)
    a = min(max(a, _RATE_RANGE[0]), rate_max)
    v_last = math.exp(sum(y + a * x for x, y in zip(xs, ys, strict=True)) / len(xs)
                      - a * math.log(last.n))
    ess = max(m.n * m.k * _square_or_one(m.abs_ratio) / (1.0 + max(m.var_point, 0.0))
              for m in ms)
    return Model(last.n, v_last, a, max(last.var_point, 0.0), last.mean, ess)


def final_sizes(calls: float, a: float = 1.0) -> tuple[int, int]:
    """Power-of-two set size ``n`` and randomizations ``k = calls // n`` of a fixed-budget
    final estimate of at most ``calls`` calls.

    At least :data:`~flowint.run.estimator.MIN_RANDOMIZATIONS` sets of the largest size that
    allows them (16 to 31); or twice that size in half as many sets (8 to 15, at least
    :data:`~flowint.run.estimator.FEWEST_RANDOMIZATIONS`) where that predicts a variance
    ``n^-a / k`` smaller by :data:`_LARGER_SETS_GAIN` times the widening of the error bar's
    two-sided 99 % Student-t interval that the fewer degrees of freedom bring (``a`` is the
    convergence exponent measured on the sampler; 16 → 8 sets: a factor 1.41, so ``a ≥ 1.82``
    is needed). With ``a = 2`` and ``calls`` just below ``16·2^m`` this halves the variance
    (camel 4-D at 1.1·10⁶ calls: 29 sets of 2^15 after training, against 14 of 2^16); plain
    RQMC on the smooth camel 2-D at 1,048,576 calls (``a ≈ 3``): 8 sets of 2^17 give 0.52×
    the RMS error of 16 of 2^16 over 60 seeds (``benchmarks/results/rqmc_sets.md``, nested
    scrambling; 8 sets are taken only because that scrambling keeps the Student-t error bar
    of 8 sets honest, see :mod:`flowint.run.sobol`).
    """
    n = pow2_floor(max(calls / MIN_RANDOMIZATIONS, 2.0))
    k = max(int(calls // n), 1)
    wide, k_wide = 2 * n, int(calls // (2 * n))
    if k_wide >= FEWEST_RANDOMIZATIONS and \
            (wide / n) ** a * k_wide / k >= _LARGER_SETS_GAIN * t_widening(k_wide, k):
        return wide, k_wide
    return n, k


def t_widening(k_few: int, k_many: int) -> float:
    """``(t_{k_few−1} / t_{k_many−1})²`` at the 99.5 % quantile: how much wider, in variance,
    the two-sided 99 % interval of an error bar from ``k_few`` randomizations is than one
    from ``k_many``."""
    from scipy.special import stdtrit

    return float(stdtrit(k_few - 1, 0.995) / stdtrit(k_many - 1, 0.995)) ** 2


def _square_or_one(ratio: float) -> float:
    """``ratio²`` (``∫|w| / |∫w|``, at least 1), or 1 where it was not measured."""
    return square(max(ratio, 1.0)) if math.isfinite(ratio) else 1.0


def square(x: float) -> float:
    """``x * x`` (inf, not OverflowError, for huge values)."""
    return x * x


def goal_var(goal: float, mean: float) -> float:
    """``(goal / |mean|)²``: an absolute error target as a relative variance."""
    return square(goal / abs(mean)) if mean != 0 else math.inf


def pow2_floor(x: float) -> int:
    """The largest power of two not above ``x`` (1 for ``x < 2``)."""
    return 2 ** max(0, int(math.floor(math.log2(max(x, 1.0)))))
