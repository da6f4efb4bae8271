"""The analytic test functions of the i-flow paper (Gao, Isaacson, Krause, arXiv:2001.05486).

``gaussian``, ``camel``, ``circles`` (entangled circles), ``annulus`` and ``polynomial``; the
scalar top-loop box lives in :mod:`integrands.physics`.
"""

from __future__ import annotations

import math

from scipy import integrate

from .base import Array, Integrand, Ops, positive
from .registry import register

__all__ = ["Annulus", "Camel", "Circles", "Gaussian", "Polynomial", "circles_reference"]

_IFLOW = "Gao, Isaacson, Krause, arXiv:2001.05486 (i-flow), Table III"


@register("gaussian")
class Gaussian(Integrand):
    """Normalised Gaussian ``(a sqrt(pi))^-n exp(-sum (x_i - 1/2)^2 / a^2)`` on ``[0,1]^n``.

    The exact value is ``erf(1 / (2 a))^n``.

    Arguments:
        dim: number of dimensions.
        alpha: width ``a`` of the Gaussian.

    Example:
        >>> round(Gaussian(dim=2).exact, 8)
        0.99918626
    """

    description = "normalised Gaussian peak at the centre of the cube, width alpha"
    source = _IFLOW
    separable = True

    def __init__(self, dim: int = 2, alpha: float = 0.2) -> None:
        self.alpha = positive("alpha", alpha)
        super().__init__(dim, alpha=self.alpha)

    def _compute_exact(self) -> tuple[float, float]:
        return math.erf(1.0 / (2.0 * self.alpha)) ** self.dim, 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        log_norm = -self.dim * math.log(self.alpha * math.sqrt(math.pi))
        return ops.exp(log_norm - ((x - 0.5) ** 2).sum(-1) / self.alpha**2)


@register("camel")
class Camel(Integrand):
    """Two normalised Gaussians on the diagonal, at ``1/3`` and ``2/3`` in every coordinate.

    ``f = 1/2 (a sqrt(pi))^-n [exp(-|x - 1/3|^2 / a^2) + exp(-|x - 2/3|^2 / a^2)]``, exact
    value ``(1/2 [erf(1/(3a)) + erf(2/(3a))])^n``.

    Arguments:
        dim: number of dimensions.
        alpha: width ``a`` of both Gaussians.

    Example:
        >>> round(Camel(dim=2).exact, 8)
        0.98166031
    """

    description = "two normalised Gaussians at (1/3,...) and (2/3,...), width alpha"
    source = _IFLOW

    def __init__(self, dim: int = 2, alpha: float = 0.2) -> None:
        self.alpha = positive("alpha", alpha)
        super().__init__(dim, alpha=self.alpha)

    def _compute_exact(self) -> tuple[float, float]:
        a = self.alpha
        return (0.5 * (math.erf(1.0 / (3.0 * a)) + math.erf(2.0 / (3.0 * a)))) ** self.dim, 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        log_norm = -self.dim * math.log(self.alpha * math.sqrt(math.pi)) - math.log(2.0)
        scale = 1.0 / self.alpha**2
        first = ops.exp(log_norm - ((x - 1.0 / 3.0) ** 2).sum(-1) * scale)
        second = ops.exp(log_norm - ((x - 2.0 / 3.0) ** 2).sum(-1) * scale)
        return first + second


# Reference value for the default entangled circles, computed once with
# ``circles_reference()`` (nested scipy quad, the x1 integral split at the two kinks of |.| on
# each circle, the x2 integral split at p2 - r, p2, p2 + r, epsrel 1e-12..1e-13). Integrating in
# the other order gives 0.013684776724937953; quad's error estimate is 5e-15.
_CIRCLES_DEFAULT = (0.4, 0.6, 0.25, 250.0, 3.0)
_CIRCLES_EXACT = 0.013684776724937954
_CIRCLES_ERROR = 1e-14


def circles_reference(p1: float, p2: float, r: float, w: float, a: float) -> tuple[float, float]:
    """Integrate the entangled-circles function with nested adaptive quadrature.

    The second term is the first one reflected through the centre of the cube
    (``x -> 1 - x``), so the integral is twice that of ``x2^a exp(-w |(x1-p1)^2+(x2-p2)^2-r^2|)``.
    The inner ``x1`` integral is split where ``|.|`` has its kinks (on the circle) and the
    outer one at ``p2 - r``, ``p2`` and ``p2 + r``.

    Arguments:
        p1: x1 coordinate of the first circle's centre.
        p2: x2 coordinate of the first circle's centre.
        r: circle radius.
        w: sharpness of the ridge.
        a: power of ``x2`` (and of ``1 - x2`` in the second term).

    Returns:
        ``(value, absolute error estimate)``.
    """

    def term(x1: float, x2: float) -> float:
        return x2**a * math.exp(-w * abs((x1 - p1) ** 2 + (x2 - p2) ** 2 - r**2))

    def inner(x2: float) -> float:
        disc = r**2 - (x2 - p2) ** 2
        kinks = []
        if disc > 0.0:
            kinks = [q for q in (p1 - math.sqrt(disc), p1 + math.sqrt(disc)) if 0.0 < q < 1.0]
        value, _ = integrate.quad(
            term,
            0.0,
            1.0,
            args=(x2,),
            points=kinks or None,
            epsabs=1e-16,
            epsrel=1e-13,
            limit=500,
        )
        return value

    edges = sorted({0.0, 1.0, *(q for q in (p2 - r, p2, p2 + r) if 0.0 < q < 1.0)})
    total, error = 0.0, 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        value, err = integrate.quad(inner, lo, hi, epsabs=1e-16, epsrel=1e-12, limit=500)
        total += value
        error += err
    return 2.0 * total, 2.0 * error + 1e-15


@register("circles")
class Circles(Integrand):
    """Entangled circles: two thin ridges along circles, weighted by ``x2^a`` and ``(1-x2)^a``.

    ``f = x2^a exp(-w |(x1-p1)^2 + (x2-p2)^2 - r^2|)
    + (1-x2)^a exp(-w |(x1-1+p1)^2 + (x2-1+p2)^2 - r^2|)``. The exact value for the default
    parameters, 0.013684776724937954 (i-flow quotes 0.0136848(1)), was computed once by nested
    quadrature (:func:`circles_reference`); other parameters are integrated on construction.

    Arguments:
        dim: must be 2.
        p1, p2: centre of the first circle (the second one is at ``(1-p1, 1-p2)``).
        r: radius of both circles.
        w: sharpness of the ridges.
        a: power of the weights ``x2^a`` and ``(1-x2)^a``.
    """

    description = "entangled circles: two sharp circular ridges crossing each other"
    source = _IFLOW
    fixed_dim = 2

    def __init__(
        self,
        dim: int = 2,
        p1: float = 0.4,
        p2: float = 0.6,
        r: float = 0.25,
        w: float = 250.0,
        a: float = 3.0,
    ) -> None:
        self.p1, self.p2 = float(p1), float(p2)
        self.r, self.w, self.a = positive("r", r), positive("w", w), float(a)
        if self.a < 0:
            raise ValueError(f"a must be >= 0, got {a!r}")
        super().__init__(dim, p1=self.p1, p2=self.p2, r=self.r, w=self.w, a=self.a)

    def _compute_exact(self) -> tuple[float, float]:
        args = (self.p1, self.p2, self.r, self.w, self.a)
        if args == _CIRCLES_DEFAULT:
            return _CIRCLES_EXACT, _CIRCLES_ERROR
        return circles_reference(*args)

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        x1, x2 = x[:, 0], x[:, 1]
        r2 = self.r**2
        ring1 = ops.abs((x1 - self.p1) ** 2 + (x2 - self.p2) ** 2 - r2)
        ring2 = ops.abs((x1 - 1.0 + self.p1) ** 2 + (x2 - 1.0 + self.p2) ** 2 - r2)
        return x2**self.a * ops.exp(-self.w * ring1) + (1.0 - x2) ** self.a * ops.exp(
            -self.w * ring2
        )


@register("annulus")
class Annulus(Integrand):
    """Indicator of the annulus ``rmin <= |x - (1/2, 1/2)| <= rmax``; exact ``pi (rmax^2-rmin^2)``.

    Arguments:
        dim: must be 2.
        rmin: inner radius.
        rmax: outer radius, at most 1/2 so the annulus lies inside the square.
    """

    description = "indicator function of an annulus centred in the unit square"
    source = _IFLOW
    fixed_dim = 2

    def __init__(self, dim: int = 2, rmin: float = 0.2, rmax: float = 0.45) -> None:
        self.rmin, self.rmax = float(rmin), positive("rmax", rmax)
        if not 0.0 <= self.rmin < self.rmax <= 0.5:
            raise ValueError(f"need 0 <= rmin < rmax <= 0.5, got rmin={rmin!r}, rmax={rmax!r}")
        super().__init__(dim, rmin=self.rmin, rmax=self.rmax)

    def _compute_exact(self) -> tuple[float, float]:
        return math.pi * (self.rmax**2 - self.rmin**2), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        dist2 = ((x - 0.5) ** 2).sum(-1)
        inside = (dist2 >= self.rmin**2) & (dist2 <= self.rmax**2)
        return ops.cast(inside, x)


@register("polynomial")
class Polynomial(Integrand):
    """The polynomial ``sum_i (x_i - x_i^2)``; exact value ``dim / 6``.

    Arguments:
        dim: number of dimensions.
    """

    description = "sum of x_i - x_i^2 over all coordinates (flat, many dimensions)"
    source = _IFLOW

    def __init__(self, dim: int = 18) -> None:
        super().__init__(dim)

    def _compute_exact(self) -> tuple[float, float]:
        return self.dim / 6.0, 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        return (x - x * x).sum(-1)
