"""PDE tools built on flowint: adaptive collocation and Monte Carlo solvers.

* :class:`AdaptiveCollocation` — collocation points for physics-informed networks from a flow
  trained toward ``|r|^k`` (deep adaptive sampling, residual-based adaptive distribution).
* :func:`feynman_kac`, :class:`FeynmanKac` — parabolic PDEs at a point as integrals over the
  unit cube; :func:`geometric_basket_call` for the Black–Scholes basket.
* :func:`walk_on_spheres` — Laplace and Poisson problems in a :class:`Ball` or :class:`Box`.
* :mod:`flowint.pde.exact` — the closed forms they are tested against.
"""

from . import exact
from .collocation import AdaptiveCollocation
from .feynman_kac import (
    FeynmanKac,
    PathSolution,
    feynman_kac,
    geometric_basket_call,
    solve_to_precision,
)
from .walk_on_spheres import (
    Ball,
    Box,
    WalkResult,
    ball_source_integral,
    sample_green_ball,
    walk_on_spheres,
)

__all__ = [
    "AdaptiveCollocation",
    "Ball",
    "Box",
    "FeynmanKac",
    "PathSolution",
    "WalkResult",
    "ball_source_integral",
    "exact",
    "feynman_kac",
    "geometric_basket_call",
    "sample_green_ball",
    "solve_to_precision",
    "walk_on_spheres",
]
