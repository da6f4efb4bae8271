"""Closed-form solutions that the PDE solvers are tested and benchmarked against.

Heat equation ``u_t = D Δu + b·∇u`` in ``d`` dimensions (the diffusion started at ``x`` is
``x + b t + √(2Dt) Z``):

* ``φ = ‖x‖²``: ``u = ‖x + b t‖² + 2 D t d``;
* ``φ = exp(-‖x‖²/s²)``: ``u = (1 + 4Dt/s²)^(-d/2) exp(-‖x + b t‖² / (s² + 4Dt))``.

Black–Scholes geometric-average basket call (``d`` assets, correlation ``ρ``): the geometric
mean ``G`` of lognormal prices is lognormal, ``log G ~ N(μ, v)`` with
``μ = mean(log S₀ᵢ) + (r - mean(σᵢ²)/2) T`` and ``v = T σ_G²``, ``σ_G² = Σᵢⱼ ρᵢⱼ σᵢ σⱼ / d²``,
so the price is ``e^{-rT} (e^{μ + v/2} N(d₁) - K N(d₂))``, ``d₂ = (μ - log K)/√v``,
``d₁ = d₂ + √v``.

Poisson in the ball: ``Δu = -1`` in the unit ball of ``R^d``, ``u = 0`` on the sphere:
``u = (1 - ‖x‖²) / (2d)``.
"""

from __future__ import annotations

import math

import torch
from scipy.stats import norm
from torch import Tensor

__all__ = ["heat_paraboloid", "heat_gaussian", "geometric_basket_call_price",
           "ball_poisson_unit_source"]


def _shifted(t: float, x: Tensor, drift: float | Tensor) -> Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    return x + torch.as_tensor(drift, dtype=torch.float64) * t


def heat_paraboloid(t: float, x: Tensor, *, diffusion: float = 1.0,
                    drift: float | Tensor = 0.0) -> float:
    """``u(t, x)`` for ``φ = ‖x‖²``: ``‖x + b t‖² + 2 D t d``."""
    y = _shifted(t, x, drift)
    return float((y**2).sum()) + 2.0 * diffusion * t * y.shape[-1]


def heat_gaussian(t: float, x: Tensor, s: float, *, diffusion: float | Tensor = 1.0,
                  drift: float | Tensor = 0.0) -> float:
    """``u(t, x)`` for ``φ = exp(-‖x‖²/s²)``.

    With a diffusion matrix ``A`` the diffusion at time ``t`` is ``N(x + bt, Σ)``,
    ``Σ = 2tA``, and ``u = det(I + 2Σ/s²)^(-1/2) exp(-½ yᵀ(Σ + s²/2 I)⁻¹ y)``, ``y = x + bt``.
    """
    y = _shifted(t, x, drift)
    d = y.shape[-1]
    a = torch.as_tensor(diffusion, dtype=torch.float64)
    if a.ndim == 2:
        cov = 2.0 * t * a
        eye = torch.eye(d, dtype=torch.float64)
        logdet = float(torch.logdet(eye + 2.0 * cov / (s * s)))
        quad = float(y @ torch.linalg.solve(cov + 0.5 * s * s * eye, y))
        return math.exp(-0.5 * logdet - 0.5 * quad)
    diffusion = float(a)
    w = s * s + 4.0 * diffusion * t
    return math.exp(-0.5 * d * math.log1p(4.0 * diffusion * t / (s * s))
                    - float((y**2).sum()) / w)


def geometric_basket_call_price(d: int, *, sigma: float | Tensor = 0.2,
                                rho: float | Tensor = 0.0, r: float = 0.05, T: float = 1.0,
                                S0: float | Tensor = 100.0, K: float = 100.0) -> float:
    """Black–Scholes price of a call on the geometric average of ``d`` assets.

    Arguments:
        d: number of assets.
        sigma: volatilities (a number or shape ``(d,)``).
        rho: correlation (a number for all pairs, or the ``(d, d)`` matrix).
        r: risk-free rate.
        T: maturity.
        S0: initial prices (a number or shape ``(d,)``).
        K: strike.
    """
    sig = torch.as_tensor(sigma, dtype=torch.float64).expand(d)
    corr = _correlation(d, rho)
    s0 = torch.as_tensor(S0, dtype=torch.float64).expand(d)
    var_g = float(sig @ corr @ sig) / d**2
    mu = float(torch.log(s0).mean()) + (r - 0.5 * float((sig**2).mean())) * T
    v = var_g * T
    d2 = (mu - math.log(K)) / math.sqrt(v)
    d1 = d2 + math.sqrt(v)
    return math.exp(-r * T) * (math.exp(mu + 0.5 * v) * norm.cdf(d1) - K * norm.cdf(d2))


def _correlation(d: int, rho: float | Tensor) -> Tensor:
    rho_t = torch.as_tensor(rho, dtype=torch.float64)
    if rho_t.ndim == 2:
        return rho_t
    return torch.full((d, d), float(rho_t), dtype=torch.float64).fill_diagonal_(1.0)


def ball_poisson_unit_source(x: Tensor) -> Tensor:
    """``u = (1 - ‖x‖²) / (2d)``: ``Δu = -1`` in the unit ball, ``u = 0`` on the sphere."""
    x = torch.as_tensor(x, dtype=torch.float64)
    return (1.0 - (x**2).sum(-1)) / (2 * x.shape[-1])
