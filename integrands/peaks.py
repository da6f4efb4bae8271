"""Peaked integrands beyond i-flow: the ZüNIS camel and a sign-changing camel."""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from .base import Array, Integrand, Ops, positive, validate_dim
from .closed_forms import gauss_interval, log_gauss_interval
from .registry import register

__all__ = ["SignedCamel", "ZunisCamel", "zunis_log_moment_ratio", "zunis_width"]


def zunis_log_moment_ratio(width: float, dim: int) -> float:
    """``log(E[f^2] / E[f]^2)`` of the ZüNIS camel under uniform sampling of ``[0,1]^dim``.

    With ``h(s) = int_0^1 exp(-((x - 1/4)/s)^2) dx`` (the same for the bump at 3/4),
    ``E[f] = 2 h(s)^d`` and ``E[f^2] = 2 h(s/sqrt 2)^d + 2 c(s)^d`` where
    ``c(s) = exp(-1/(8 s^2)) int_0^1 exp(-2 (x - 1/2)^2 / s^2) dx`` is the overlap of the two
    bumps. The relative standard deviation of ``f`` is ``sqrt(expm1(ratio))``.

    Arguments:
        width: the bump width ``s``.
        dim: the dimension ``d``.

    Returns:
        The logarithm of the second moment over the squared mean.
    """
    log_h = log_gauss_interval(0.25, width)
    log_h2 = log_gauss_interval(0.25, width / math.sqrt(2.0))
    log_c = -1.0 / (8.0 * width**2) + log_gauss_interval(0.5, width / math.sqrt(2.0))
    return float(np.logaddexp(dim * log_h2, dim * log_c)) - math.log(2.0) - 2.0 * dim * log_h


def zunis_width(sigma1d: float, dim: int) -> float:
    """Width ``s`` of the ``dim``-dimensional ZüNIS camel matching a 1-d camel of width sigma1d.

    The rule (ZüNIS, Deutschmann & Götz, arXiv:2108.12921): choose ``s`` so that the relative
    standard deviation of ``f`` under uniform sampling in ``dim`` dimensions equals that of the
    one-dimensional camel of width ``sigma1d``. Both sides are closed forms
    (:func:`zunis_log_moment_ratio`, which decreases monotonically with ``s``); the root is
    found with ``scipy.optimize.brentq`` on ``log s``.

    Arguments:
        sigma1d: the width of the reference one-dimensional camel.
        dim: the dimension.

    Returns:
        The width ``s`` (``sigma1d`` itself when ``dim == 1``).

    Example:
        >>> zunis_width(0.1, 1)
        0.1
        >>> zunis_width(0.1, 4) > 0.1
        True
    """
    if dim == 1:
        return sigma1d
    target = zunis_log_moment_ratio(sigma1d, 1)

    def mismatch(log_s: float) -> float:
        return zunis_log_moment_ratio(math.exp(log_s), dim) - target

    lo = hi = math.log(sigma1d)
    for _ in range(400):  # the ratio grows without bound as s -> 0 and tends to 0 as s -> inf
        if mismatch(lo) >= 0.0:
            break
        lo -= 0.5
    for _ in range(400):
        if mismatch(hi) <= 0.0:
            break
        hi += 0.5
    if lo == hi:
        return sigma1d
    return math.exp(optimize.brentq(mismatch, lo, hi, xtol=1e-14, rtol=1e-14))


@register("zunis_camel")
class ZunisCamel(Integrand):
    """Two-bump camel of ZüNIS: ``exp(-sum ((x_i - 1/4)/s)^2) + exp(-sum ((x_i - 3/4)/s)^2)``.

    The width ``s`` follows from ``sigma1d`` and ``dim`` by :func:`zunis_width` (same relative
    spread under uniform sampling as a 1-d camel of width ``sigma1d``). Exact value
    ``2 [s sqrt(pi)/2 (erf(3/(4s)) + erf(1/(4s)))]^dim``.

    Arguments:
        dim: number of dimensions.
        sigma1d: width of the equivalent 1-d camel (0.001 is ZüNIS's hardest setting).

    Example:
        >>> f = ZunisCamel(dim=1, sigma1d=0.1)
        >>> f.width
        0.1
    """

    description = "ZüNIS camel: two unnormalised Gaussians at 1/4 and 3/4, width from sigma1d"
    source = "Deutschmann & Götz, arXiv:2108.12921 (ZüNIS), camel benchmark"

    def __init__(self, dim: int = 2, sigma1d: float = 0.1) -> None:
        self.sigma1d = positive("sigma1d", sigma1d)
        self.width = zunis_width(self.sigma1d, validate_dim(dim))
        super().__init__(dim, sigma1d=self.sigma1d)

    def _compute_exact(self) -> tuple[float, float]:
        return 2.0 * math.exp(self.dim * log_gauss_interval(0.25, self.width)), 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        scale = 1.0 / self.width**2
        first = ops.exp(-((x - 0.25) ** 2).sum(-1) * scale)
        second = ops.exp(-((x - 0.75) ** 2).sum(-1) * scale)
        return first + second


@register("signed_camel")
class SignedCamel(Integrand):
    """A positive normalised Gaussian minus a narrower, weighted negative one.

    ``f = N_a exp(-|x - 1/3|^2 / a^2) - w N_b exp(-|x - 2/3|^2 / b^2)`` with
    ``N_s = (s sqrt(pi))^-dim``. Exact value ``E(1/3, a)^dim - w E(2/3, b)^dim`` with
    ``E(m, s) = (erf((1 - m)/s) + erf(m/s)) / 2``. The zero-variance proposal is ``|f| / int |f|``.

    Arguments:
        dim: number of dimensions.
        alpha: width ``a`` of the positive bump.
        beta: width ``b`` of the negative bump.
        weight: weight ``w`` of the negative bump.
    """

    description = "sign-changing camel: Gaussian at 1/3 minus a narrower weighted one at 2/3"
    source = "this package; built on the i-flow camel (arXiv:2001.05486)"
    sign_changing = True

    def __init__(
        self, dim: int = 2, alpha: float = 0.2, beta: float = 0.1, weight: float = 0.5
    ) -> None:
        self.alpha, self.beta = positive("alpha", alpha), positive("beta", beta)
        self.weight = positive("weight", weight)
        super().__init__(dim, alpha=self.alpha, beta=self.beta, weight=self.weight)

    def _compute_exact(self) -> tuple[float, float]:
        def mass(center: float, width: float) -> float:
            return float(gauss_interval(center, width)) / (width * math.sqrt(math.pi))

        positive_part = mass(1.0 / 3.0, self.alpha) ** self.dim
        return positive_part - self.weight * mass(2.0 / 3.0, self.beta) ** self.dim, 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        log_na = -self.dim * math.log(self.alpha * math.sqrt(math.pi))
        log_nb = -self.dim * math.log(self.beta * math.sqrt(math.pi)) + math.log(self.weight)
        bump = ops.exp(log_na - ((x - 1.0 / 3.0) ** 2).sum(-1) / self.alpha**2)
        dip = ops.exp(log_nb - ((x - 2.0 / 3.0) ** 2).sum(-1) / self.beta**2)
        return bump - dip


@register("three_peaks")
class ThreePeaks(Integrand):
    """Three separated normalised Gaussian peaks of unequal width and weight.

    ``f = Σ_k w_k (s_k √π)^-dim exp(-|x - c_k|² / s_k²)`` with centres ``c_1 = (1/4, ...)``,
    ``c_2 = (3/4, ...)`` and ``c_3 = (1/4, 3/4, 1/4, 3/4, ...)``, widths ``s = (0.02, 0.04,
    0.06)`` (standard deviations ``s / √2``) and weights ``w = (1/2, 1/3, 1/6)``: the
    narrowest peak is the heaviest and the highest, but its tempered share ``∫ f^β`` at small
    ``β`` is the smallest (``(s_1/s_3)^dim`` of the widest's as ``β → 0``), which is how a single
    flow trained by tempering loses it. Exact value ``Σ_k w_k Π_i E(c_ki, s_k)`` with
    ``E(m, s) = (erf((1 - m)/s) + erf(m/s)) / 2`` (each peak's mass inside the cube).

    Arguments:
        dim: number of dimensions (at least 2).
        widths: the three widths ``s_k``.
        weights: the three weights ``w_k``.
    """

    description = "three separated Gaussian peaks (widths 0.02, 0.04, 0.06; weights 1/2, 1/3, 1/6)"
    source = "this package (a multi-channel test: separated peaks of unequal shape)"

    def __init__(self, dim: int = 8, widths: tuple[float, float, float] = (0.02, 0.04, 0.06),
                 weights: tuple[float, float, float] = (0.5, 1.0 / 3.0, 1.0 / 6.0)) -> None:
        if validate_dim(dim) < 2:
            raise ValueError(f"three_peaks needs dim >= 2, got {dim}")
        if len(widths) != 3 or len(weights) != 3:
            raise ValueError("three_peaks takes three widths and three weights")
        self.widths = tuple(positive("width", w) for w in widths)
        self.weights = tuple(positive("weight", w) for w in weights)
        alternate = [0.25 if i % 2 == 0 else 0.75 for i in range(dim)]
        self.centers = ([0.25] * dim, [0.75] * dim, alternate)
        for k, c in enumerate(self.centers):
            setattr(self, f"center{k}", np.asarray(c, dtype=np.float64))
        super().__init__(dim, widths=self.widths, weights=self.weights)

    def _compute_exact(self) -> tuple[float, float]:
        total = 0.0
        for c, s, w in zip(self.centers, self.widths, self.weights, strict=True):
            total += w * math.prod(float(gauss_interval(m, s)) / (s * math.sqrt(math.pi))
                                   for m in c)
        return total, 0.0

    def _evaluate(self, x: Array, ops: Ops) -> Array:
        out = 0.0
        for k, (s, w) in enumerate(zip(self.widths, self.weights, strict=True)):
            log_norm = math.log(w) - self.dim * math.log(s * math.sqrt(math.pi))
            center = self._const(f"center{k}", x)
            out = out + ops.exp(log_norm - ((x - center) ** 2).sum(-1) / s**2)
        return out
