"""Feynman–Kac: the solution of a linear parabolic PDE at one point as an integral over the cube.

For ``u_t = Σ_ij A_ij ∂_i ∂_j u + b · ∇u`` with ``u(0, ·) = φ`` (``A = D I`` gives
``u_t = D Δu + b · ∇u``), the solution is the expectation over the diffusion started at ``x``,

    u(t, x) = E[φ(x + b t + √(2t) L Z)],   Z ~ N(0, I),  L Lᵀ = A,

and with ``Z = Φ⁻¹(y)`` coordinate-wise (``Φ⁻¹`` the standard normal quantile) it is an integral
over the unit hypercube, ``u(t, x) = ∫_{[0,1]^d} φ(x + b t + √(2t) L Φ⁻¹(y)) dy``, which flowint
integrates with a flow trained toward ``|φ(...)|`` — the zero-variance proposal. Where ``φ``
lives far from ``x`` (a rare event for the diffusion) plain Monte Carlo collapses and the flow
does not.

:class:`FeynmanKac` solves at one point (:meth:`~FeynmanKac.solve`) or along a sequence of
points, warm-starting each point's flow from its neighbour's
(:meth:`~FeynmanKac.solve_path`); :func:`feynman_kac` is the one-call form.

References:
    On distributions of certain Wiener functionals (Kac, 1949), Trans. AMS 65, 1–13.

    i-flow: High-dimensional integration and sampling with normalizing flows (Gao, Isaacson,
    Krause, 2020), https://arxiv.org/abs/2001.05486.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..integrator import Integrator
from ..result import Result

__all__ = ["FeynmanKac", "feynman_kac", "PathSolution", "solve_to_precision",
           "geometric_basket_call", "PDE_SETTINGS", "pde_settings"]

#: ``y`` is clamped to ``[eps, 1 - eps]`` before the normal quantile (``Φ⁻¹(1e-12) ≈ -7.03``).
EPS = 1e-12

#: Integrator settings this module changes by default: the diffusion's integrands are close to
#: products over coordinates (exactly so for Gaussian data), which a VEGAS-adapted per-axis grid
#: captures in a few iterations (``benchmarks/pde_variance.py`` measures the rare-event Gaussian
#: with and without these settings).
PDE_SETTINGS: dict[str, Any] = {"warmup": 5, "flow_options": {"grid": True}}

Field = Callable[[Tensor], Tensor]


class FeynmanKac:
    """``u(t, x)`` for ``u_t = Σ A_ij ∂_i∂_j u + b·∇u``, ``u(0, ·) = φ``, integrated by flowint.

    Arguments:
        phi: batched initial data, ``(n, dim)`` float64 tensor to ``(n,)``.
        dim: number of space dimensions.
        diffusion: ``D`` (a number: ``A = D I``), per-coordinate ``D_i`` (shape ``(dim,)``) or
            the symmetric positive-definite matrix ``A`` (shape ``(dim, dim)``).
        drift: the constant drift ``b`` (a number or shape ``(dim,)``; default 0).
        eps: ``y`` is clamped to ``[eps, 1 - eps]`` before ``Φ⁻¹``.
        **settings: settings of :class:`flowint.Integrator` (``seed``, ``flow_options``, ...);
            :data:`PDE_SETTINGS` are applied first.

    Example:
        >>> fk = FeynmanKac(lambda x: (x**2).sum(-1), 100, seed=0)
        >>> fk.solve(0.5, torch.zeros(100), budget=100_000)   # exact: 2 t d = 100
    """

    def __init__(self, phi: Field, dim: int, *, diffusion: float | Tensor = 1.0,
                 drift: float | Tensor = 0.0, eps: float = EPS, **settings: Any):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        self.phi, self.dim, self.eps = phi, dim, float(eps)
        self.settings = pde_settings(settings)
        a = torch.as_tensor(diffusion, dtype=torch.float64)
        if a.ndim == 0 or a.ndim == 1:
            if (a <= 0).any():
                raise ValueError("the diffusion coefficient must be positive")
            self._scale = torch.sqrt(2 * a).expand(dim).clone()  # diagonal √(2 D_i)
            self._chol: Tensor | None = None
        elif a.shape == (dim, dim):
            self._chol = torch.linalg.cholesky(2 * a)  # fails unless A is positive definite
            self._scale = torch.ones(dim, dtype=torch.float64)
        else:
            raise ValueError(f"diffusion must be a number, shape ({dim},) or ({dim}, {dim})")
        self.drift = torch.as_tensor(drift, dtype=torch.float64).expand(dim).clone()

    def integrand(self, t: float, x: Tensor) -> Field:
        """The function on ``[0,1]^dim`` whose integral is ``u(t, x)``."""
        t = float(t)
        if t <= 0:
            raise ValueError(f"t must be > 0, got {t}")
        x = torch.as_tensor(x, dtype=torch.float64).reshape(self.dim)
        shift = x + self.drift * t
        scale = self._scale * math.sqrt(t)
        chol, eps, phi = self._chol, self.eps, self.phi

        def f(y: Tensor) -> Tensor:
            z = torch.special.ndtri(y.to(torch.float64).clamp(eps, 1.0 - eps))
            if chol is not None:
                z = z @ chol.T
            return phi(shift + scale * z)

        return f

    def integrator(self, **overrides: Any) -> Integrator:
        """A fresh :class:`flowint.Integrator` on the unit cube with this solver's settings."""
        return Integrator(self.dim, **{**self.settings, **overrides})

    def solve(self, t: float, x: Tensor, budget: int = 200_000, *, rtol: float | None = None,
              n_train: int | None = None, integrator: Integrator | None = None) -> Result:
        """``u(t, x)`` as a flowint :class:`~flowint.result.Result`.

        Arguments:
            t: time (> 0).
            x: the point, shape ``(dim,)``.
            budget: evaluations of ``φ``, training and final estimate together.
            rtol: stop the final estimate once the relative error is below ``rtol``.
            n_train: evaluations for training (default: automatic early stopping).
            integrator: continue from this integrator (a warm start) instead of a fresh one.
        """
        integ = integrator if integrator is not None else self.integrator()
        return integ(self.integrand(t, x), budget, rtol=rtol, n_train=n_train)

    def solve_path(self, t: float, points: Sequence[Tensor] | Tensor, rtol: float, *,
                   warm_start: bool = True, chunk: int | None = None,
                   max_evals: int = 2_000_000) -> PathSolution:
        """Solve at a sequence of points to relative precision ``rtol`` each.

        Each point is one call of the integrator with the error target ``rtol``
        (:func:`solve_to_precision`): its policy trains the flow while that is predicted to
        lower the total cost, then estimates to ``rtol``. With ``warm_start`` each point
        starts from a copy of the previous point's integrator (flow, optimizer, grid,
        tempering; fresh random numbers, and not the previous integrand's training batches)
        and skips the exploration of the static candidates (``explore=False``): the
        neighbour's flow is the sampler to beat. Without it every point starts from the
        uniform density, with the integrator's settings.

        Arguments:
            t: time.
            points: the points, shape ``(m, dim)``, in the order they are solved.
            rtol: relative precision to reach at every point.
            warm_start: start each point from its predecessor's flow.
            chunk: evaluations per training iteration (the integrator's ``batch_size``;
                default: its own choice).
            max_evals: most evaluations per point.
        """
        pts = torch.as_tensor(points, dtype=torch.float64).reshape(-1, self.dim)
        results: list[Result] = []
        previous: Integrator | None = None
        base_seed = self.settings.get("seed")
        sizes = {} if chunk is None else {"batch_size": int(chunk)}
        for i, x in enumerate(pts):
            seed = None if base_seed is None else int(base_seed) * 100_003 + i
            warm = warm_start and previous is not None
            integ = self.integrator(seed=seed, **sizes, **({"explore": False} if warm else {}))
            if warm:
                own_stream = integ.generator.get_state()
                integ.load_state_dict(previous.state_dict())
                integ.generator.set_state(own_stream)  # fresh randomness for this point
                integ.state.buffer.clear()  # the previous integrand's batches
            results.append(solve_to_precision(integ, self.integrand(t, x), rtol,
                                              max_evals=max_evals))
            previous = integ
        return PathSolution(pts, tuple(results))


def pde_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` over :data:`PDE_SETTINGS` (``flow_options`` merged key by key)."""
    merged = {**PDE_SETTINGS, **settings}
    merged["flow_options"] = {**PDE_SETTINGS["flow_options"],
                              **(settings.get("flow_options") or {})}
    return merged


@dataclass(frozen=True)
class PathSolution:
    """Solutions along a sequence of points.

    Attributes:
        points: the points, shape ``(m, dim)``.
        results: one :class:`~flowint.result.Result` per point.
    """

    points: Tensor
    results: tuple[Result, ...]

    @property
    def values(self) -> Tensor:
        """The estimates, shape ``(m,)``."""
        return torch.tensor([r.mean for r in self.results], dtype=torch.float64)

    @property
    def errors(self) -> Tensor:
        """Their standard errors, shape ``(m,)``."""
        return torch.tensor([r.sdev for r in self.results], dtype=torch.float64)

    @property
    def n_evals(self) -> int:
        """Evaluations of ``φ`` at all points together (training and final)."""
        return sum(r.n_evals for r in self.results)


def solve_to_precision(integ: Integrator, f: Field, rtol: float, *,
                       max_evals: int = 2_000_000) -> Result:
    """Integrate ``f`` to relative precision ``rtol`` within ``max_evals`` evaluations.

    One call ``integ(f, max_evals, rtol=rtol)``: the integrator's policy
    (:mod:`flowint.run.policy`) trains while that is predicted to lower the total cost of
    reaching ``rtol`` (training plus final calls, at their measured costs per call), then
    estimates to ``rtol`` with the best sampler.

    Arguments:
        integ: the integrator (fresh or warm-started).
        f: the integrand on the unit cube.
        rtol: target relative standard error of the final estimate, in ``(0, 1)``.
        max_evals: most evaluations in total (training and final).

    Returns:
        The :class:`~flowint.result.Result`; its ``n_evals`` counts this call only.
    """
    if not 0 < rtol < 1:
        raise ValueError(f"rtol must be in (0, 1), got {rtol}")
    return integ(f, max_evals, rtol=rtol)


def feynman_kac(phi: Field, t: float, x: Tensor, *, diffusion: float | Tensor = 1.0,
                drift: float | Tensor = 0.0, budget: int = 200_000, rtol: float | None = None,
                n_train: int | None = None, eps: float = EPS, **settings: Any) -> Result:
    """``u(t, x)`` for ``u_t = D Δu + b·∇u`` (or ``Σ A_ij ∂_i∂_j u + b·∇u``), ``u(0,·) = φ``.

    Integrates ``φ(x + b t + √(2t) L Φ⁻¹(y))`` over ``y ∈ [0,1]^d`` with
    :func:`flowint.integrate`.

    Arguments:
        phi: batched initial data, ``(n, d)`` float64 tensor to ``(n,)``.
        t: time (> 0).
        x: the point, shape ``(d,)``.
        diffusion: ``D``, per-coordinate ``D_i``, or the matrix ``A``.
        drift: the constant drift ``b``.
        budget: evaluations of ``φ`` in total.
        rtol: stop the final estimate at this relative error.
        n_train: evaluations for training (default: automatic).
        eps: clamp of ``y`` away from 0 and 1.
        **settings: settings of :class:`flowint.Integrator`.

    Returns:
        A :class:`~flowint.result.Result`.

    Example:
        >>> r = feynman_kac(lambda x: torch.exp(-(x**2).sum(-1)), 0.25, torch.ones(10),
        ...                 budget=200_000, seed=0)
    """
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    fk = FeynmanKac(phi, int(x.shape[0]), diffusion=diffusion, drift=drift, eps=eps, **settings)
    return fk.solve(t, x, budget, rtol=rtol, n_train=n_train)


def geometric_basket_call(d: int, *, sigma: float | Tensor = 0.2, rho: float | Tensor = 0.0,
                          r: float = 0.05, T: float = 1.0, S0: float | Tensor = 100.0,
                          K: float = 100.0, budget: int = 200_000, rtol: float | None = None,
                          n_train: int | None = None, **settings: Any) -> Result:
    """Black–Scholes price of a call on the geometric average of ``d`` assets, by Feynman–Kac.

    In log-prices ``X_i = log S_i`` the pricing PDE is a heat equation with constant
    coefficients, ``u_τ = ½ Σ_ij Σ_ij ∂_i∂_j u + Σ_i (r - σ_i²/2) ∂_i u`` with
    ``Σ_ij = ρ_ij σ_i σ_j``, and the price is ``u(T, log S₀)`` for the discounted payoff
    ``φ(X) = e^{-rT} max(exp(mean X) - K, 0)``. The closed form is
    :func:`flowint.pde.exact.geometric_basket_call_price`.

    Arguments:
        d: number of assets.
        sigma: volatilities (a number or shape ``(d,)``).
        rho: correlation (a number for all pairs, or the ``(d, d)`` matrix).
        r: risk-free rate.
        T: maturity.
        S0: initial prices.
        K: strike.
        budget: payoff evaluations.
        rtol: stop the final estimate at this relative error.
        n_train: evaluations for training (default: automatic).
        **settings: settings of :class:`flowint.Integrator`.
    """
    sig = torch.as_tensor(sigma, dtype=torch.float64).expand(d).clone()
    rho_t = torch.as_tensor(rho, dtype=torch.float64)
    if rho_t.ndim == 0 and float(rho_t) == 0.0:
        diffusion: Tensor = 0.5 * sig**2
    else:
        corr = rho_t if rho_t.ndim == 2 else torch.full((d, d), float(rho_t),
                                                        dtype=torch.float64).fill_diagonal_(1.0)
        diffusion = 0.5 * corr * sig.outer(sig)
    x0 = torch.log(torch.as_tensor(S0, dtype=torch.float64).expand(d))
    discount = math.exp(-r * T)

    def payoff(x: Tensor) -> Tensor:
        return discount * (torch.exp(x.mean(-1)) - K).clamp_min(0.0)

    fk = FeynmanKac(payoff, d, diffusion=diffusion, drift=r - 0.5 * sig**2, **settings)
    return fk.solve(T, x0, budget, rtol=rtol, n_train=n_train)
