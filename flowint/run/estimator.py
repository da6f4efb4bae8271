"""The Estimator: fresh points from a frozen sampler, and the numbers they give.

A *sampler* here is a frozen :class:`~flowint.flows.Flow` on the unit cube, or ``None`` for
the identity (plain quasi-Monte Carlo). Quasi-random base points are used only in independent
randomizations (each a freshly scrambled Sobol set); each randomization's mean of ``f/q`` is
an unbiased estimate, and the error bar comes from their spread.

The final number may also use training iterations (:class:`~flowint.run.state.Piece`): each
is unbiased given the flow it was drawn from, which was fixed before the draw, and each enters
with the weight ``1 / planned_var`` fixed before its draw, so that the combination stays an
unbiased martingale average (DESIGN.md, the statistical protocol).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..flows import Flow
from ..result import chi2_q
from .sobol import MAX_DIM, scrambled_sobol_array
from .state import Measurement, Piece, RunState

__all__ = ["FEWEST_RANDOMIZATIONS", "Combined", "Estimator", "MIN_RANDOMIZATIONS",
           "combine_pieces", "next_stage", "scrambled_sobol"]

#: Fewest randomizations of a final quasi-random estimate: the error bar then has 15 degrees
#: of freedom (Student's t: 66.7 / 93.6 / 99.1 % within 1σ / 2σ / 3σ). Fewer, larger sets gain
#: more from quasi-random points (variance ~ n^-a per set, a > 1), and 16 is what the plain
#: RQMC peer uses.
MIN_RANDOMIZATIONS = 16
#: Fewest randomizations a fixed-budget final estimate takes when its sets can then be twice
#: as large (:func:`flowint.run.model.final_sizes`): with ``16·2^m`` calls out of reach, 16 to
#: 31 sets of ``2^(m-1)`` lose a factor ``2^(a-1)`` in variance against 8 to 15 sets of
#: ``2^m``, which is taken where the measured rate ``a`` pays for the wider Student-t
#: quantiles of the fewer degrees of freedom (8 sets, 7 degrees of freedom: 64.9 / 91.4 / 98.0 %
#: within 1σ / 2σ / 3σ).
FEWEST_RANDOMIZATIONS = 8
_CHUNK = 4096  # points pushed through the flow at a time (no gradients)


class Estimator:
    """Draws points from frozen samplers and turns their weights into estimates.

    Arguments:
        dim: dimension of the cube.
        generator: the run's random generator.
        dtype: dtype of the frozen flows (``estimate_dtype``).
    """

    def __init__(self, dim: int, generator: torch.Generator, dtype: torch.dtype):
        self.dim = dim
        self.generator = generator
        self.dtype = dtype

    def freeze(self, flow: Flow, dtype: torch.dtype | None = None) -> Flow:
        """A copy of ``flow`` in ``dtype`` (default: the estimator's), without gradients."""
        frozen = copy.deepcopy(flow).to(dtype or self.dtype)
        frozen.requires_grad_(False)
        return frozen

    def draw(self, state: RunState, sampler: Flow | None, n: int,
             qmc: bool) -> tuple[Tensor, Tensor]:
        """``n`` points of ``sampler`` and their ``log q`` (float64).

        Arguments:
            state: the run state (the seconds spent sampling are added to it).
            sampler: a frozen flow, ``None`` for the identity (uniform points), or an
                :class:`~flowint.run.interlaced.InterlacedIdentity` (base points in twice
                the dimensions, their digits interlaced), or a
                :class:`~flowint.run.strata.Stratified` sampler (a whole set at a time).
            n: number of points.
            qmc: one freshly scrambled Sobol set as base points instead of i.i.d. ones.
        """
        t0 = time.perf_counter()
        device = self.generator.device
        dtype = self.dtype if sampler is None else sampler.dtype
        base = int(getattr(sampler, "base_dim", self.dim))  # interlaced points: 2·dim
        zdtype = getattr(sampler, "base_dtype", dtype)  # their digits: float64 base points
        if qmc:
            z = scrambled_sobol(n, base, self.generator, zdtype, device)
        else:
            z = torch.rand(n, base, generator=self.generator, dtype=zdtype, device=device)
        if sampler is None:
            u, log_q = z, torch.zeros(n, dtype=torch.float64, device=device)
        else:
            whole = getattr(sampler, "whole_sets", False)  # stratified: cells share a set
            with torch.no_grad():
                parts = [sampler.transform_base(c) for c in ([z] if whole else z.split(_CHUNK))]
            u = torch.cat([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
            log_q = torch.cat([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
        state.add_seconds("sample", time.perf_counter() - t0)
        return u, log_q.to(torch.float64)

    @staticmethod
    def weights(fx: Tensor, log_q: Tensor) -> Tensor:
        """``f / q`` per point (and per component for vector integrands)."""
        scale = torch.exp(-log_q)
        return fx * (scale.unsqueeze(-1) if fx.ndim == 2 else scale)

    @staticmethod
    def measurement(weights: Sequence[Tensor]) -> Measurement:
        """The :class:`Measurement` of equal-size randomizations (component 0).

        Variances are relative to the mean squared; with a mean of exactly 0 (no point where
        ``f != 0``, or ``log=True`` values all far below the run's scale) they are infinite,
        so that the policy never takes such a measurement for a perfect sampler.
        """
        w = [x if x.ndim == 1 else x[:, 0] for x in weights]
        pooled = torch.cat(w)
        top = float(pooled.abs().max()) or 1.0  # scaled first: huge finite f must not overflow
        means = torch.stack([x.mean() for x in w]) / top
        ref = abs(float(means.mean()))  # variances relative to mean²
        if ref == 0:  # every weight 0 (or they cancel): the points saw nothing to measure
            return Measurement(int(w[0].shape[0]), len(w), 0.0, math.inf, math.inf)
        var_mean = float((means / ref).var()) if len(w) > 1 else math.inf
        var_point = float((pooled / (top * ref)).var())
        abs_ratio = float((pooled / top).abs().mean()) / ref
        return Measurement(int(w[0].shape[0]), len(w), float(means.mean()) * top, var_mean,
                           var_point, abs_ratio)


def qmc_errors(weights: Sequence[Tensor]) -> tuple[Tensor, Tensor, float]:
    """Means, covariance and standard error of the mean from equal-size randomizations.

    Returns:
        ``(means, cov, sdev)``: the component means ``(k,)`` (``k = 1`` for scalars), their
        covariance ``(k, k)`` (entries may overflow to ``inf`` past ``1e154``) and the
        standard error of component 0 (computed scaled, so it stays finite).
    """
    means = torch.stack([w.mean(0) for w in weights])
    m = means if means.ndim == 2 else means.unsqueeze(-1)
    scale = float(m.abs().max()) or 1.0  # huge finite f must not overflow
    centred = (m - m.mean(0)) / scale
    k = m.shape[0]
    cov_s = centred.T @ centred / max(k - 1, 1) / k
    return m.mean(0), cov_s * scale * scale, float(cov_s[0, 0].sqrt()) * scale


class Combined:
    """The combination of independent unbiased estimates with weights fixed in advance.

    Attributes:
        mean: ``Σ λ_j m_j`` with ``λ_j ∝ 1 / planned_var_j``.
        sdev: ``sqrt(Σ λ_j² var_j)``.
        chi2: ``Σ (m_j − mean)² / var_j``: large when the estimates disagree beyond their
            errors (for example a mode that early training iterations missed).
        dof: number of estimates minus one.
        Q: the χ² survival probability.
        used: how many pieces (besides the final estimate) entered.
    """

    def __init__(self, mean: float, sdev: float, chi2: float, dof: int, used: int):
        self.mean, self.sdev, self.chi2, self.dof, self.used = mean, sdev, chi2, dof, used
        self.Q = chi2_q(chi2, dof)


def combine_pieces(final: Piece, pieces: Sequence[Piece], q_min: float = 1e-3) -> Combined:
    """Combine the final estimate with earlier unbiased pieces (training iterations).

    The weights ``1 / planned_var`` were fixed before each draw, so the combination is
    unbiased. When the pieces and the final estimate are inconsistent (``Q < q_min``), the
    pieces are dropped: the final estimate alone is returned, with the failed ``chi2`` and
    ``dof`` and ``used = 0`` (the caller reports it; see :func:`flowint.run.report`).
    """
    parts = [p for p in (*pieces, final) if p.planned_var > 0 and math.isfinite(p.planned_var)
             and p.sdev >= 0 and math.isfinite(p.sdev)]
    if final not in parts:
        parts = [final]
    scale = max(abs(p.mean) for p in parts) or max(p.sdev for p in parts) or 1.0
    inv = [1.0 / p.planned_var for p in parts] if len(parts) > 1 else [1.0]
    total = sum(inv)
    lam = [x / total for x in inv]
    mean = sum(w * p.mean / scale for w, p in zip(lam, parts, strict=True))
    var = sum(w * w * (p.sdev / scale) ** 2 for w, p in zip(lam, parts, strict=True))
    # the test statistic is taken about the inverse-variance mean of the estimates' own
    # variances (the estimate itself keeps the weights fixed in advance)
    tested = [p for p in parts if p.sdev > 0]
    chi2 = 0.0
    if len(tested) > 1:  # weights relative to the smallest error: no overflow (log=True
        s_min = min(p.sdev for p in tested)  # pieces may be e^-700 of the final estimate)
        iv = [1.0 / ((p.sdev / s_min) * (p.sdev / s_min)) for p in tested]
        centre = sum(w * p.mean / scale for w, p in zip(iv, tested, strict=True)) / sum(iv)
        z = [(p.mean / scale - centre) / (p.sdev / scale) for p in tested]
        chi2 = sum(x * x for x in z)
    dof = max(len(tested) - 1, 0)
    if dof > 0 and chi2_q(chi2, dof) < q_min:
        return Combined(final.mean, final.sdev, chi2, dof, 0)
    return Combined(mean * scale, math.sqrt(var) * scale, chi2, dof, len(parts) - 1)


def scrambled_sobol(n: int, dim: int, gen: torch.Generator, dtype: torch.dtype,
                    device: torch.device) -> Tensor:
    """``n`` points of a freshly scrambled Sobol sequence (one independent randomization).

    Nested uniform scrambling (:func:`flowint.run.sobol.nested_scrambled_sobol_array`; its
    random bits come from ``gen``), whose set means are close enough to normal for a Student-t
    error bar over a few sets (a linear matrix scrambling's are heavy-tailed on smooth
    integrands: too few runs within 1σ), with every point's digits random down to float64's
    resolution (scipy's default of 30 bits quantized every coordinate to multiples of 2^-30,
    which left one randomization of a smooth 18-D integrand off by 2^-24). Points lie in
    ``[0, 1)``. Beyond
    :data:`~flowint.run.sobol.MAX_DIM` dimensions the points are i.i.d. uniform.
    """
    if dim > MAX_DIM:
        return torch.rand(n, dim, generator=gen, dtype=dtype, device=device)
    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
    pts = scrambled_sobol_array(n, dim, np.random.default_rng(seed))
    return torch.as_tensor(pts, dtype=dtype, device=device)


def next_stage(k: int, mean: float, sdev: float, goal: float | None,
               next_check: int) -> tuple[bool, int]:
    """Whether the error target is met after ``k`` randomizations, else when to look again.

    The next look is where the target is predicted to be met (sdev falls as 1/√k), plus 5 %;
    looking only at a few stages keeps the selection of low error bars small.
    """
    if goal is None:
        return False, 10**12
    if not math.isfinite(sdev):
        return False, k + 1
    if sdev <= goal:
        return True, next_check
    if goal <= 0:
        return False, 10**12
    ratio = sdev / goal
    return False, max(k + 1, math.ceil(min(1.05 * k * ratio * ratio, 1e12)))
