"""The six test families of Genz (1984), with closed-form integrals over the unit cube.

Every family has a difficulty vector ``a`` and a shift vector ``u``. By default both are drawn
with ``numpy.random.default_rng(seed)`` (``a`` first, then ``u``, each uniform in ``[0, 1)``)
and ``a`` is rescaled so that ``sum(a) = difficulty``, Genz's normalisation, with his
per-family defaults 9.0, 7.25, 1.85, 7.03, 20.4 and 4.3. Explicit ``a`` and ``u`` vectors can
be passed instead (then ``a`` is used as given).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from scipy import integrate, optimize
from scipy.special import gammaln

from .base import Array, Integrand, Ops, positive, validate_dim
from .closed_forms import gauss_interval
from .registry import register

__all__ = [
    "C0",
    "CornerPeak",
    "Discontinuous",
    "GaussianGenz",
    "GenzIntegrand",
    "Oscillatory",
    "ProductPeak",
    "corner_peak_exact",
]

_GENZ = (
    "A. Genz, 'Testing multidimensional integration routines', in Tools, Methods and "
    "Languages for Scientific and Engineering Computation, North-Holland (1984) 81-94"
)


def _vector(name: str, value: Sequence[float] | np.ndarray, dim: int) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.shape != (dim,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be {dim} finite numbers, got {value!r}")
    return array


class GenzIntegrand(Integrand):
    """Common parameter handling of the Genz families.

    Arguments:
        dim: number of dimensions.
        seed: seed of ``numpy.random.default_rng`` drawing ``a`` and ``u``.
        difficulty: ``sum(a)`` after normalisation (default: Genz's value for the family).
        a: explicit difficulty vector (overrides ``seed``/``difficulty`` for ``a``).
        u: explicit shift vector in ``[0, 1]^dim`` (overrides ``seed`` for ``u``).
    """

    source = _GENZ
    default_difficulty: ClassVar[float] = 1.0

    def __init__(
        self,
        dim: int = 4,
        seed: int = 0,
        difficulty: float | None = None,
        a: Sequence[float] | np.ndarray | None = None,
        u: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        n = validate_dim(dim)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if difficulty is None:
            difficulty = self.default_difficulty
        difficulty = positive("difficulty", difficulty)
        rng = np.random.default_rng(int(seed))
        a_raw, u_raw = rng.random(n), rng.random(n)
        params: dict[str, Any] = {"seed": int(seed), "difficulty": difficulty}
        if a is None:
            self.a = a_raw * (difficulty / a_raw.sum())
        else:
            self.a = _vector("a", a, n)
            params = {"seed": int(seed), "a": tuple(float(v) for v in self.a)}
            if np.any(self.a <= 0):
                raise ValueError(f"a must be positive, got {a!r}")
        if u is None:
            self.u = u_raw
        else:
            self.u = _vector("u", u, n)
            if np.any((self.u < 0) | (self.u > 1)):
                raise ValueError(f"u must lie in [0, 1], got {u!r}")
            params["u"] = tuple(float(v) for v in self.u)
        super().__init__(n, **params)


@register("oscillatory")
class Oscillatory(GenzIntegrand):
    """Genz 1: ``cos(2 pi u_1 + sum a_i x_i)``.

    Exact: ``Re[exp(i 2 pi u_1) prod (exp(i a_j) - 1) / (i a_j)]``
    ``= cos(2 pi u_1 + sum a_j / 2) prod 2 sin(a_j / 2) / a_j``.
    """

    description = "Genz oscillatory: cos(2 pi u1 + a.x)"
    sign_changing = True
    default_difficulty = 9.0

    def _compute_exact(self) -> tuple[float, float]:
        phase = 2.0 * math.pi * self.u[0] + 0.5 * self.a.sum()
        return math.cos(phase) * float(np.prod(2.0 * np.sin(self.a / 2.0) / self.a)), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        return ops.cos(2.0 * math.pi * float(self.u[0]) + (x * self._const("a", x)).sum(-1))


@register("product_peak")
class ProductPeak(GenzIntegrand):
    """Genz 2: ``prod 1 / (a_i^-2 + (x_i - u_i)^2)``.

    Exact: ``prod a_i [arctan(a_i (1 - u_i)) + arctan(a_i u_i)]``.
    """

    description = "Genz product peak: prod 1/(a_i^-2 + (x_i - u_i)^2)"
    separable = True
    default_difficulty = 7.25

    def _compute_exact(self) -> tuple[float, float]:
        a, u = self.a, self.u
        return float(np.prod(a * (np.arctan(a * (1.0 - u)) + np.arctan(a * u)))), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        a, u = self._const("a", x), self._const("u", x)
        return (1.0 / (a ** (-2.0) + (x - u) ** 2)).prod(-1)


def corner_peak_exact(a: np.ndarray) -> tuple[float, float]:
    """Integral of ``(1 + a.x)^-(d+1)`` over ``[0, 1]^d``, with an error bound.

    Two formulas are used:

    * inclusion-exclusion over the ``2^d`` vertices,
      ``1 / (d! prod a) sum_v (-1)^|v| / (1 + a.v)`` (summed with ``math.fsum``), when
      ``d <= 12`` and its rounding-error bound ``(d + 2) eps sum_v 1/(1 + a.v) / (d! prod a)`` is
      below ``1e-14`` of the value;
    * otherwise (the sum cancels strongly already from ``d ~ 3`` at Genz's difficulty: at
      ``d = 20`` it keeps only ~4 digits) the one-dimensional Laplace representation
      ``1/d! int_0^inf exp(-t) prod_i (1 - exp(-a_i t)) / a_i dt``, from
      ``(1 + s)^-(d+1) = 1/d! int t^d exp(-t (1 + s)) dt``, evaluated in log space with
      ``scipy.integrate.quad``; the error is quad's estimate.

    Arguments:
        a: positive difficulty vector of length ``d``.

    Returns:
        ``(value, absolute error bound)``; the bound is 0.0 for ``d <= 2``.
    """
    a = np.asarray(a, dtype=np.float64)
    d = a.size
    log_scale = gammaln(d + 1.0) + float(np.log(a).sum())
    if d <= 12:
        vertices = (np.arange(2**d)[:, None] >> np.arange(d)) & 1
        terms = 1.0 / (1.0 + vertices @ a)
        signs = np.where(vertices.sum(1) % 2 == 1, -1.0, 1.0)
        value = math.fsum(signs * terms) / math.exp(log_scale)
        bound = (d + 2) * np.finfo(float).eps * float(terms.sum()) / math.exp(log_scale)
        if d <= 2:
            return value, 0.0
        if bound <= 1e-14 * abs(value):
            return value, bound

    def log_integrand(t: float) -> float:
        return -t + float(np.log(-np.expm1(-a * t) / a).sum()) - gammaln(d + 1.0)

    # The integrand is log-concave with its mode near t ~ d; split there.
    mode = optimize.minimize_scalar(
        lambda t: -log_integrand(t), bounds=(1e-12, 10.0 * d + 50.0), method="bounded"
    ).x
    peak = log_integrand(mode)
    total, error = 0.0, 0.0
    for lo, hi in ((0.0, mode), (mode, np.inf)):
        value, err = integrate.quad(
            lambda t: math.exp(log_integrand(t) - peak),
            lo,
            hi,
            epsabs=0.0,
            epsrel=1e-13,
            limit=500,
        )
        total += value
        error += err
    scale = math.exp(peak)
    return total * scale, error * scale + 1e-15 * total * scale


@register("corner_peak")
class CornerPeak(GenzIntegrand):
    """Genz 3: ``(1 + sum a_i x_i)^-(d+1)``; exact value from :func:`corner_peak_exact`."""

    description = "Genz corner peak: (1 + a.x)^-(d+1)"
    default_difficulty = 1.85

    def _compute_exact(self) -> tuple[float, float]:
        return corner_peak_exact(self.a)

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        return (1.0 + (x * self._const("a", x)).sum(-1)) ** (-(self.dim + 1.0))


@register("gaussian_genz")
class GaussianGenz(GenzIntegrand):
    """Genz 4: ``exp(-sum a_i^2 (x_i - u_i)^2)``.

    Exact: ``prod sqrt(pi) / (2 a_i) [erf(a_i (1 - u_i)) + erf(a_i u_i)]``.
    """

    description = "Genz Gaussian: exp(-sum a_i^2 (x_i - u_i)^2)"
    separable = True
    default_difficulty = 7.03

    def _compute_exact(self) -> tuple[float, float]:
        return float(np.prod(gauss_interval(self.u, 1.0 / self.a))), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        a, u = self._const("a", x), self._const("u", x)
        return ops.exp(-((a * (x - u)) ** 2).sum(-1))


@register("c0")
class C0(GenzIntegrand):
    """Genz 5, continuous: ``exp(-sum a_i |x_i - u_i|)``.

    Exact: ``prod (2 - exp(-a_i u_i) - exp(-a_i (1 - u_i))) / a_i``.
    """

    description = "Genz C0 (continuous, kinked): exp(-sum a_i |x_i - u_i|)"
    separable = True
    default_difficulty = 20.4

    def _compute_exact(self) -> tuple[float, float]:
        a, u = self.a, self.u
        return float(np.prod((2.0 - np.exp(-a * u) - np.exp(-a * (1.0 - u))) / a)), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        a, u = self._const("a", x), self._const("u", x)
        return ops.exp(-(a * ops.abs(x - u)).sum(-1))


@register("discontinuous")
class Discontinuous(GenzIntegrand):
    """Genz 6: ``exp(sum a_i x_i)`` if ``x_1 <= u_1`` and ``x_2 <= u_2``, else 0.

    Exact: ``prod (exp(a_i b_i) - 1) / a_i`` with ``b = (u_1, u_2, 1, ..., 1)``.
    """

    description = "Genz discontinuous: exp(a.x) cut off at x1 > u1 or x2 > u2"
    separable = True
    default_difficulty = 4.3

    def _compute_exact(self) -> tuple[float, float]:
        upper = np.ones(self.dim)
        upper[:2] = self.u[:2]
        return float(np.prod(np.expm1(self.a * upper) / self.a)), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        value = ops.exp((x * self._const("a", x)).sum(-1))
        outside = x[:, 0] > float(self.u[0])
        if self.dim > 1:
            outside = outside | (x[:, 1] > float(self.u[1]))
        return ops.where(outside, ops.zeros_like(value), value)
