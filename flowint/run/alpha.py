"""Channel weights ``α`` of a multi-channel run, learned from the pilots' points.

Channel ``c`` of a multi-channel run (:mod:`flowint.run.mode_channels`) integrates
``g_c = f w_c / ρ_c`` with the partition of unity ``w_c(x) = α_c ρ_c(x) / Σ_j α_j ρ_j(x)``.
Its calls ``n_c`` drawn from its flow's density ``q_c`` give an estimate of variance
``σ_c² / n_c``, ``σ_c² = var_{q_c}(g_c / q_c)``, and with the calls divided ``∝ σ_c``
(Neyman's allocation, :mod:`flowint.run.allocation`) the variance of ``Σ_c I_c`` is
``(Σ_c σ_c)² / N``. Any ``α`` partitions ``f`` (the sum is unbiased for every fixed ``α``), but
``Σ_c σ_c`` depends on it: ``α`` is what hands the tails of a peak to the channel whose flow
covers them, the job MadNIS gives its learned channel weights.

``α`` enters only through ``w_c``. Each pilot's last points, drawn from ``q_c`` with weight
``r = |g_c| / q_c`` under the ``α`` of the pilot, give ``σ_c`` at any other ``α'`` by
reweighting, ``r' = r w_c(x; α') / w_c(x; α)``. :func:`learn_alpha` minimises
``Σ_c σ_c(α')`` on one random half of every channel's points, ``log α'`` within
``± log TRUST`` of ``log α`` (a reweighted variance is only as good as the points where the
weight grows, and a pilot's flow has seen few outside its part), and measures both ``α`` and
``α'`` on the other half: the :class:`~flowint.run.policy.Policy` takes ``α'`` only if that
held-out measure falls clearly (:data:`~flowint.run.allocation.ALPHA_GAIN`). The flows train
on (each channel's own call) under the ``α`` chosen, which is fixed before any point that
enters an estimate is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

__all__ = ["AlphaFit", "MAX_POINTS", "STEPS", "TRUST", "learn_alpha", "log_weight",
           "spread"]

#: ``α'`` stays within this factor of the pilots' ``α`` on every channel.
TRUST = 3.0
#: Most points per channel used (half to fit, half to check).
MAX_POINTS = 8192
#: Most iterations of the L-BFGS-B fit.
STEPS = 40


class AlphaFit(NamedTuple):
    """The result of :func:`learn_alpha`.

    Attributes:
        log_alpha: the learned ``log α'`` (normalised: ``Σ α' = 1``), float64.
        fit: ``Σ_c σ_c`` at ``α`` and at ``α'`` on the points fitted (relative units).
        check: the same on the held-out points: what the Policy decides on.
    """

    log_alpha: Tensor
    fit: tuple[float, float]
    check: tuple[float, float]


class _Half(NamedTuple):
    """One half of every channel's points: ``log ρ_j(x)`` (``(C, n_c)``) and ``log r``."""

    log_rho: list[Tensor]
    log_r: list[Tensor]


def log_weight(log_rho: Tensor, log_alpha: Tensor, index: int) -> Tensor:
    """``log w_index(x)`` from ``log ρ_j(x)`` of every channel ``j`` (shape ``(C, n)``)."""
    terms = log_rho + log_alpha[:, None]
    return terms[index] - torch.logsumexp(terms, 0)


def spread(log_rho: Sequence[Tensor], log_r: Sequence[Tensor], log_alpha: Tensor,
           new: Tensor, shift: float) -> Tensor:
    """``Σ_c σ_c`` at ``α' = exp(new)`` in units of ``exp(shift)``, from channel ``c``'s
    points with weights ``exp(log_r[c])`` drawn under ``α = exp(log_alpha)``
    (differentiable in ``new``)."""
    total = new.new_zeros(())
    for c, (rho, r) in enumerate(zip(log_rho, log_r, strict=True)):
        if r.numel() < 2:
            continue
        moved = r - log_weight(rho, log_alpha, c) + log_weight(rho, new, c)
        e = torch.exp(moved - shift)
        total = total + e.var(correction=0).clamp_min(1e-300).sqrt()
    return total


def learn_alpha(log_rho: Sequence[Tensor], log_r: Sequence[Tensor], log_alpha: Tensor,
                generator: torch.Generator, *, trust: float = TRUST,
                steps: int = STEPS) -> AlphaFit:
    """``α'`` minimising ``Σ_c σ_c`` (see the module doc).

    Arguments:
        log_rho: per channel ``c``, ``log ρ_j(x)`` of every channel ``j`` at ``c``'s points
            ``x`` (shape ``(C, n_c)``).
        log_r: per channel, ``log (|g_c| / q_c)`` at its points under ``α`` (``-inf`` for a
            zero; NaN is taken as zero).
        log_alpha: ``log α`` (shape ``(C,)``).
        generator: draws the halves (and the subsample of at most :data:`MAX_POINTS`).
        trust: ``|log α'_c - log α_c| <= log trust``.
        steps: most L-BFGS-B iterations.

    Returns:
        The :class:`AlphaFit`; ``α' = α`` (measures NaN) where nothing can be learned (fewer
        than two channels, or no non-zero weight).
    """
    log_alpha = log_alpha.to(torch.float64)
    fit, check = _split(log_rho, log_r, generator)
    finite = [r[torch.isfinite(r)] for r in fit.log_r + check.log_r]
    tops = [float(r.max()) for r in finite if r.numel()]
    if len(log_alpha) < 2 or not tops:
        return AlphaFit(log_alpha - torch.logsumexp(log_alpha, 0), (math.nan,) * 2,
                        (math.nan,) * 2)
    shift = max(tops)
    bound = math.log(trust)

    def objective(delta: np.ndarray) -> tuple[float, np.ndarray]:
        d = torch.tensor(delta, dtype=torch.float64, requires_grad=True)
        with torch.enable_grad():
            loss = spread(fit.log_rho, fit.log_r, log_alpha, log_alpha + d, shift)
            loss.backward()
        return float(loss.detach()), d.grad.numpy()

    # scipy's L-BFGS-B (bounds are the trust region); torch.optim's first optimizer would
    # import torch._dynamo, seconds of wall time (flowint.run.adam)
    res = minimize(objective, np.zeros(len(log_alpha)), jac=True, method="L-BFGS-B",
                   bounds=[(-bound, bound)] * len(log_alpha), options={"maxiter": steps})
    with torch.no_grad():
        learned = log_alpha + torch.as_tensor(res.x, dtype=torch.float64)
        learned = learned - torch.logsumexp(learned, 0)
        measure = [tuple(float(spread(h.log_rho, h.log_r, log_alpha, a, shift))
                         for a in (log_alpha, learned)) for h in (fit, check)]
    if not all(math.isfinite(v) for m in measure for v in m):
        learned = log_alpha - torch.logsumexp(log_alpha, 0)
    return AlphaFit(learned.detach(), measure[0], measure[1])


def _split(log_rho: Sequence[Tensor], log_r: Sequence[Tensor],
           generator: torch.Generator) -> tuple[_Half, _Half]:
    """Every channel's points (at most :data:`MAX_POINTS`, at random) in two random halves."""
    halves: tuple[_Half, _Half] = (_Half([], []), _Half([], []))
    for rho, r in zip(log_rho, log_r, strict=True):
        r = r.to(torch.float64).nan_to_num(nan=-math.inf)
        order = torch.randperm(r.numel(), generator=generator)[:MAX_POINTS]
        half = order.numel() // 2
        for h, idx in zip(halves, (order[:half], order[half:]), strict=True):
            h.log_rho.append(rho.to(torch.float64)[:, idx])
            h.log_r.append(r[idx])
    return halves
