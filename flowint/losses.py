"""Divergences between the target ``p = |f| / I`` and the flow density ``q``, from samples.

Training never differentiates ``f``. Points ``x`` are drawn once from the flow as it was
(density ``q0``, detached) and the integrand is evaluated once; every gradient step then
recomputes ``log q_θ(x)`` with gradients and uses importance weights ``q_θ / q0`` so that the
same expensive batch serves several steps. Each divergence ``D(p, q_θ)`` has a gradient of the
form ``∇D = -E_{q0}[c(x) ∇ log q_θ(x)]`` with a per-sample coefficient ``c`` (a function of
``p``, ``q_θ`` and ``q0``, not differentiated), so every loss here is the surrogate
``-mean(c · log q_θ)``, whose gradient is the unbiased estimate of ``∇D``. ``I`` is estimated
from the batch itself.

Which one to choose:

* ``"variance"`` (Pearson χ², i.e. the variance of the estimator ``f/q``) — minimises exactly
  what the error bar measures; the best default for integration. Its weights ``(f/q)^2`` make it
  noisier early on, when ``q`` is far from ``p``.
* ``"kl"`` (forward Kullback–Leibler ``KL(p‖q)``, maximum likelihood on weighted samples) —
  smoother, robust from a poor start; good for sampling/unweighting and for very peaked targets.
* ``"hellinger"`` — bounded, the gentlest of all with heavy-tailed weights; a safe choice when
  ``f`` has rare large values.
* ``"jeffreys"`` (``KL(p‖q) + KL(q‖p)``) — adds the mode-seeking reverse term; it sharpens ``q``
  on the peaks but is undefined where ``f = 0`` (there ``p`` is floored at a tiny value).

References:
    i-flow: High-dimensional integration and sampling with normalizing flows (Gao, Isaacson,
    Krause, 2020), https://arxiv.org/abs/2001.05486 — the divergences used for integration.

    Neural Importance Sampling (Müller et al., 2019), https://arxiv.org/abs/1808.03856.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["LOSSES", "surrogate_loss", "divergence"]

_TINY = 1e-300


def _variance(p: Tensor, q: Tensor, q0: Tensor) -> tuple[Tensor, Tensor]:
    # D = ∫ p²/q - 1;  ∇D = -∫ (p²/q) ∇log q = -E_q0[(p² / (q q0)) ∇log q]
    c = p * p / (q * q0)
    value = (p * p / (q * q0)).mean() - 1.0
    return c, value


def _kl(p: Tensor, q: Tensor, q0: Tensor) -> tuple[Tensor, Tensor]:
    # D = ∫ p log(p/q);  ∇D = -E_q0[(p / q0) ∇log q]
    c = p / q0
    value = (p / q0 * (torch.log(p.clamp_min(_TINY)) - torch.log(q))).mean()
    return c, value


def _hellinger(p: Tensor, q: Tensor, q0: Tensor) -> tuple[Tensor, Tensor]:
    # D = ∫ (√p - √q)²  = 2 - 2 ∫ √(p q);  ∇D = -E_q0[(√(p q) / q0) ∇log q]
    c = torch.sqrt(p * q) / q0
    value = 2.0 - 2.0 * (torch.sqrt(p * q) / q0).mean()
    return c, value


def _jeffreys(p: Tensor, q: Tensor, q0: Tensor) -> tuple[Tensor, Tensor]:
    # D = KL(p‖q) + KL(q‖p);  ∇KL(q‖p) = E_q0[(q/q0) log(q/p) ∇log q]
    log_ratio = torch.log(q) - torch.log(p.clamp_min(1e-30 * p.mean().clamp_min(_TINY)))
    c = p / q0 - q / q0 * log_ratio
    value = ((p - q) / q0 * -log_ratio).mean()
    return c, value


LOSSES: dict[str, Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]] = {
    "variance": _variance,
    "kl": _kl,
    "hellinger": _hellinger,
    "jeffreys": _jeffreys,
}


def _check(name: str) -> Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None


def divergence(name: str, abs_f: Tensor, log_q: Tensor, log_q0: Tensor) -> Tensor:
    """Monte Carlo estimate of the divergence ``D(|f|/I, q)`` from points drawn from ``q0``.

    Arguments:
        name: ``"variance"``, ``"kl"``, ``"hellinger"`` or ``"jeffreys"``.
        abs_f: ``|f(x)|`` (float64), shape ``(n,)``.
        log_q: ``log q(x)`` of the density being assessed.
        log_q0: ``log q0(x)`` of the density the points were drawn from.
    """
    p, q, q0 = _densities(abs_f, log_q.detach(), log_q0)
    return _check(name)(p, q, q0)[1]


def _densities(abs_f: Tensor, log_q: Tensor, log_q0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``p = |f|/Î``, ``q`` and ``q0`` in float64, with ``Î = mean(|f|/q0)``."""
    log_q0 = log_q0.detach().to(torch.float64)
    q0 = torch.exp(log_q0)
    integral = (abs_f / q0).mean().clamp_min(_TINY)
    q = torch.exp(log_q.to(torch.float64))
    return abs_f / integral, q, q0


def surrogate_loss(
    name: str, abs_f: Tensor, log_q: Tensor, log_q0: Tensor
) -> tuple[Tensor, Tensor]:
    """The surrogate whose gradient estimates ``∇_θ D(|f|/I, q_θ)``.

    Arguments:
        name: ``"variance"``, ``"kl"``, ``"hellinger"`` or ``"jeffreys"``.
        abs_f: ``|f(x)|`` (float64, no gradient), shape ``(n,)``.
        log_q: ``log q_θ(x)`` with gradients (any float dtype).
        log_q0: ``log q0(x)`` of the density the points were drawn from (no gradient).

    Returns:
        ``(loss, value)``: the scalar to backpropagate, and the detached divergence estimate.
    """
    p, q, q0 = _densities(abs_f, log_q.detach(), log_q0)
    c, value = _check(name)(p, q, q0)
    # Normalise the coefficients so the step size does not depend on the scale of the weights.
    c = c / c.abs().mean().clamp_min(_TINY)
    loss = -(c.to(log_q.dtype) * log_q).mean()
    return loss, value.detach()
