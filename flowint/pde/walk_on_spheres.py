"""Walk on spheres for the Laplace and Poisson equations, vectorised over walks in torch.

To solve ``Δu = -f`` in a domain ``Ω`` with ``u = g`` on ``∂Ω`` at a point ``x``: from the
current point ``x_k`` jump to a uniform point of the largest sphere inside ``Ω`` centred at
``x_k`` (radius ``R_k`` = distance to the boundary), until ``R_k < ε``; then read ``g`` at the
nearest boundary point. By the mean-value property and Green's representation in the ball,

    u(x) = E[ g(x_N) + Σ_k (R_k² / 2d) f(y_k) ],

where ``y_k`` is drawn in the ball ``B(x_k, R_k)`` from the normalised Green's function
``G(x_k, ·) / ∫G`` (``∫_B G = R²/(2d)``). Its radial law has the closed CDF
``F(ρ) = (d ρ² - 2 ρ^d) / (d - 2)`` (``d ≠ 2``) and ``F(ρ) = ρ²(1 - 2 log ρ)`` (``d = 2``),
inverted here by bisection. The bias is ``O(ε)``; the number of steps grows like ``log(1/ε)``.

References:
    Some continuous Monte Carlo methods for the Dirichlet problem (Muller, 1956), Ann. Math.
    Statist. 27, 569–589.

    Monte Carlo geometry processing: a grid-free approach to PDE-based methods on volumetric
    domains (Sawhney, Crane, 2020), ACM TOG 39(4), https://doi.org/10.1145/3386569.3392374.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._rng import SeedLike, make_generator
from ..integrator import integrate
from ..result import Result
from .feynman_kac import pde_settings

__all__ = ["Ball", "Box", "WalkResult", "walk_on_spheres", "sample_green_ball",
           "ball_source_integral"]

Field = Callable[[Tensor], Tensor]


class Ball:
    """The ball ``‖x - center‖ < radius``."""

    def __init__(self, center: Tensor | float = 0.0, radius: float = 1.0, dim: int | None = None):
        c = torch.as_tensor(center, dtype=torch.float64)
        if c.ndim == 0:
            if dim is None:
                raise ValueError("give dim when the centre is a number")
            c = c.expand(dim).clone()
        self.center, self.radius, self.dim = c, float(radius), int(c.shape[0])

    def distance(self, x: Tensor) -> Tensor:
        """Distance from interior points to the boundary, shape ``(n,)``."""
        return self.radius - (x - self.center).norm(dim=-1)

    def closest(self, x: Tensor) -> Tensor:
        """The nearest boundary point of each point."""
        v = x - self.center
        n = v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        return self.center + self.radius * v / n


class Box:
    """The open box ``lo < x < hi``."""

    def __init__(self, lo: Tensor | float, hi: Tensor | float, dim: int | None = None):
        lo_t = torch.as_tensor(lo, dtype=torch.float64)
        hi_t = torch.as_tensor(hi, dtype=torch.float64)
        if lo_t.ndim == 0 and hi_t.ndim == 0:
            if dim is None:
                raise ValueError("give dim when the bounds are numbers")
            lo_t, hi_t = lo_t.expand(dim), hi_t.expand(dim)
        self.lo, self.hi = torch.broadcast_tensors(lo_t.clone(), hi_t.clone())
        if not (self.lo < self.hi).all():
            raise ValueError("need lo < hi on every axis")
        self.dim = int(self.lo.shape[0])

    def _gaps(self, x: Tensor) -> Tensor:
        return torch.cat([x - self.lo, self.hi - x], dim=-1)

    def distance(self, x: Tensor) -> Tensor:
        """Distance from interior points to the boundary, shape ``(n,)``."""
        return self._gaps(x).amin(dim=-1)

    def closest(self, x: Tensor) -> Tensor:
        """The nearest boundary point of each point (on the nearest face)."""
        face = self._gaps(x).argmin(dim=-1)
        axis, upper = face % self.dim, face >= self.dim
        out = x.clone()
        rows = torch.arange(x.shape[0])
        out[rows, axis] = torch.where(upper, self.hi[axis], self.lo[axis])
        return out


@dataclass(frozen=True)
class WalkResult:
    """Walk-on-spheres estimates at ``m`` points.

    Attributes:
        mean: the estimates, shape ``(m,)``.
        sdev: their standard errors, shape ``(m,)``.
        n_walks: walks per point.
        mean_steps: average number of sphere jumps per walk.
        source_var: per-point variance per walk due to sampling the source term only (the
            part a better proposal inside the balls could remove), shape ``(m,)``; zero for
            Laplace or unless ``diagnose_source``.
        var: total variance per walk, shape ``(m,)``.
        n_source_evals: evaluations of the source ``f`` (walks and first-ball integrals).
    """

    mean: Tensor
    sdev: Tensor
    n_walks: int
    mean_steps: float
    source_var: Tensor
    var: Tensor
    n_source_evals: int = 0

    def pull(self, exact: Tensor | float) -> Tensor:
        """``(mean - exact) / sdev`` per point."""
        return (self.mean - torch.as_tensor(exact, dtype=torch.float64)) / self.sdev


def _green_cdf(rho: Tensor, d: int) -> Tensor:
    if d == 2:
        return rho * rho * (1.0 - 2.0 * torch.log(rho.clamp_min(1e-300)))
    return (d * rho * rho - 2.0 * rho**d) / (d - 2)


def _green_radius(u: Tensor, d: int) -> Tensor:
    """Invert the radial CDF of the Green's density by bisection (to 2^-48)."""
    lo = torch.zeros_like(u)
    hi = torch.ones_like(u)
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        below = _green_cdf(mid, d) < u
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)


def sample_green_ball(center: Tensor, radius: Tensor, gen: torch.Generator) -> Tensor:
    """Points in the balls ``B(center_i, radius_i)`` from the normalised Green's function.

    The density is ``G(c, y) / (R²/2d)`` with ``G`` the Dirichlet Green's function of ``-Δ``
    in the ball with its pole at the centre; radii by bisection on the closed-form CDF,
    directions uniform.

    Arguments:
        center: centres, shape ``(n, d)``.
        radius: radii, shape ``(n,)``.
        gen: random generator.
    """
    n, d = center.shape
    rho = _green_radius(torch.rand(n, generator=gen, dtype=torch.float64), d)
    return center + (radius * rho).unsqueeze(-1) * _directions(n, d, gen)


def _directions(n: int, d: int, gen: torch.Generator) -> Tensor:
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return z / z.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def ball_source_integral(center: Tensor, radius: float, source: Field, *,
                         budget: int = 50_000, **settings: Any) -> Result:
    """``∫_{B(c, R)} G(c, y) f(y) dy`` integrated by flowint over the Green's-density map.

    The integral is written over ``[0,1]^(d+1)``: ``u₀`` sets the radius through the inverse
    radial CDF of the Green's density, ``u₁..u_d`` the direction (normalised
    ``Φ⁻¹(u_i)``), and the integrand is ``(R²/2d) f(y(u))``; the flow then learns what ``f``
    adds to the Green's density.

    Arguments:
        center: the centre, shape ``(d,)``.
        radius: the radius.
        source: ``f``, batched ``(n, d) -> (n,)``.
        budget: evaluations of ``f``.
        **settings: settings of :class:`flowint.Integrator`.
    """
    c = torch.as_tensor(center, dtype=torch.float64).reshape(-1)
    d, radius = int(c.shape[0]), float(radius)

    def f(u: Tensor) -> Tensor:
        u = u.to(torch.float64)
        rho = _green_radius(u[:, 0], d)
        z = torch.special.ndtri(u[:, 1:].clamp(1e-12, 1.0 - 1e-12))
        omega = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        return radius**2 / (2 * d) * source(c + radius * rho.unsqueeze(-1) * omega)

    return integrate(f, d + 1, budget=budget, **pde_settings(settings))


def walk_on_spheres(x: Tensor, domain: Ball | Box, g: Field, *, source: Field | None = None,
                    n_walks: int = 10_000, eps: float = 1e-4, max_steps: int = 10_000,
                    diagnose_source: bool = False, first_ball: str = "green",
                    flow_budget: int = 50_000, seed: SeedLike = None) -> WalkResult:
    """Solve ``Δu = -f`` in ``domain`` with ``u = g`` on its boundary, at the points ``x``.

    Arguments:
        x: points inside the domain, shape ``(m, d)`` (or ``(d,)``).
        domain: a :class:`Ball` or :class:`Box` (anything with ``distance`` and ``closest``).
        g: boundary data, batched ``(n, d) -> (n,)``.
        source: ``f`` of ``Δu = -f`` (``None``: Laplace), batched ``(n, d) -> (n,)``.
        n_walks: walks per point.
        eps: stop a walk within ``eps`` of the boundary.
        max_steps: most jumps per walk (a walk still running is stopped at the boundary).
        diagnose_source: also estimate the variance due to sampling the source term (one
            extra source evaluation per jump), reported as ``WalkResult.source_var``.
        first_ball: how the source integral over the first ball (the same ball for every
            walk from a point) is computed: ``"green"`` (one Green's-density sample per walk)
            or ``"flow"`` (once per point with :func:`ball_source_integral`, ``flow_budget``
            evaluations; its error is added in quadrature).
        flow_budget: evaluations of ``f`` per point for ``first_ball="flow"``.
        seed: the only source of randomness.

    Returns:
        A :class:`WalkResult`.

    Example:
        >>> ball = Ball(0.0, 1.0, dim=3)
        >>> res = walk_on_spheres(torch.zeros(1, 3), ball, lambda y: 0 * y[:, 0],
        ...                       source=lambda y: torch.ones(len(y)), seed=0)
        >>> # res.mean ≈ 1/6
    """
    gen = make_generator(seed)
    pts = torch.as_tensor(x, dtype=torch.float64)
    pts = pts.reshape(1, -1) if pts.ndim == 1 else pts
    m, d = pts.shape
    if (domain.distance(pts) <= 0).any():
        raise ValueError("every point must lie inside the domain")
    if first_ball not in ("green", "flow"):
        raise ValueError(f"first_ball must be 'green' or 'flow', got {first_ball!r}")
    n_src = 0
    first_mean = torch.zeros(m, dtype=torch.float64)
    first_var = torch.zeros(m, dtype=torch.float64)
    use_flow = source is not None and first_ball == "flow"
    if use_flow:
        for i, (xi, ri) in enumerate(zip(pts, domain.distance(pts), strict=True)):
            seed_i = int(torch.randint(0, 2**62, (1,), generator=gen))
            res = ball_source_integral(xi, float(ri), source, budget=flow_budget, seed=seed_i,
                                       progress=False)
            first_mean[i], first_var[i] = res.mean, res.sdev**2
            n_src += res.n_evals
    pos = pts.repeat_interleave(n_walks, dim=0)
    total = torch.zeros(pos.shape[0], dtype=torch.float64)
    src_var = torch.zeros_like(total)  # per walk: Σ_k Var(R_k²/2d f(y_k) | x_k), estimated
    active = torch.arange(pos.shape[0])
    steps = 0
    for step in range(int(max_steps)):
        if active.numel() == 0:
            break
        p = pos[active]
        r = domain.distance(p)
        done = r < eps
        if done.any():
            idx = active[done]
            total[idx] += g(domain.closest(p[done])).to(torch.float64)
            active, p, r = active[~done], p[~done], r[~done]
            if active.numel() == 0:
                break
        steps += active.numel()
        if source is not None and not (use_flow and step == 0):
            n_src += active.numel() * (2 if diagnose_source else 1)
            scale = r * r / (2 * d)
            fy = source(sample_green_ball(p, r, gen)).to(torch.float64)
            total[active] += scale * fy
            if diagnose_source:  # an independent second draw: Var = E(a - b)² / 2
                fy2 = source(sample_green_ball(p, r, gen)).to(torch.float64)
                src_var[active] += 0.5 * (scale * (fy - fy2)) ** 2
        pos[active] = p + r.unsqueeze(-1) * _directions(active.numel(), d, gen)
    if active.numel():
        p = pos[active]
        total[active] += g(domain.closest(p)).to(torch.float64)
    per_point = total.reshape(m, n_walks)
    var = per_point.var(dim=1)
    return WalkResult(mean=per_point.mean(dim=1) + first_mean,
                      sdev=torch.sqrt(var / n_walks + first_var),
                      n_walks=int(n_walks), mean_steps=steps / pos.shape[0],
                      source_var=src_var.reshape(m, n_walks).mean(dim=1), var=var,
                      n_source_evals=n_src)
