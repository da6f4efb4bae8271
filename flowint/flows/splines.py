"""Monotone spline maps of the unit interval onto itself.

Each spline family is a small object with no trainable parameters of its own: it turns an
unconstrained parameter vector ``theta`` (last axis of length :attr:`n_params`, produced by a
conditioner network or stored in a layer) into a monotone bijection ``g: [0,1] -> [0,1]`` with
``g(0) = 0`` and ``g(1) = 1``, and evaluates it elementwise:

* :meth:`forward(x, theta) -> (g(x), log g'(x))`
* :meth:`inverse(y, theta) -> (g^{-1}(y), -log g'(g^{-1}(y)))`

``x`` has shape ``(...)`` and ``theta`` shape ``(..., n_params)``. All zeros in ``theta`` give
the identity map, so a network whose last layer starts at zero starts as the identity flow.
Inputs are clamped to ``[0, 1]``; bins are located with ``torch.searchsorted`` (no Python loop).

References:
    Neural Importance Sampling (Müller, McWilliams, Rousselle, Gross, Novák, 2019),
    https://arxiv.org/abs/1808.03856 — piecewise-linear and piecewise-quadratic couplings.

    Neural Spline Flows (Durkan, Bekasov, Murray, Papamakarios, 2019),
    https://arxiv.org/abs/1906.04015 — rational-quadratic splines.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._rq_parts import EXP_CAP
from ._spline_ops import _knots, _pin_ends, _rq_root, _search, _take, _widths
from .rq_fused import RQConstants, column_map, fused_enabled, fused_splines, rq_forward, rq_inverse

__all__ = [
    "fused_splines",
    "SplineMap",
    "PiecewiseLinear",
    "PiecewiseQuadratic",
    "RationalQuadratic",
    "make_spline",
    "SPLINES",
]


class SplineMap:
    """Base class of the spline families (see the module docstring)."""

    name: str = ""

    def __init__(self, bins: int):
        if int(bins) < 1:
            raise ValueError(f"bins must be a positive integer, got {bins}")
        self.bins = int(bins)

    @property
    def n_params(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def inverse(self, y: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        return {"kind": self.name, "bins": self.bins}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "kind")
        return f"{self.__class__.__name__}({args})"


class PiecewiseLinear(SplineMap):
    """Piecewise-linear CDF on ``bins`` equal-width input bins (Müller et al. 2019).

    ``g`` has a piecewise-constant derivative: bin ``i`` of width ``1/K`` is mapped onto an
    output interval of learned length ``Q_i`` (softmax of ``theta``, at least ``min_height``).

    Arguments:
        bins: number of bins ``K``.
        min_height: smallest output length of a bin (bounds ``log g'`` from below).
    """

    name = "pwl"

    def __init__(self, bins: int = 32, min_height: float = 1e-3):
        super().__init__(bins)
        if not 0.0 <= min_height * self.bins < 1.0:
            raise ValueError("min_height * bins must be in [0, 1)")
        self.min_height = float(min_height)

    @property
    def n_params(self) -> int:
        return self.bins

    def config(self) -> dict:
        return {**super().config(), "min_height": self.min_height}

    def heights(self, theta: Tensor) -> Tensor:
        """Output lengths ``Q`` of the bins, shape ``(..., K)``, summing to one."""
        return _widths(theta, self.min_height)

    def forward(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        k = self.bins
        q = self.heights(theta)
        x = x.clamp(0.0, 1.0)
        idx = (x * k).floor().clamp_(0, k - 1).long().unsqueeze(-1)
        cdf = _knots(q)
        q_i = _take(q, idx)
        alpha = x * k - idx.squeeze(-1)
        y = _take(cdf, idx) + alpha * q_i
        ends = torch.log(q[..., [0, -1]] * k).expand(*x.shape, 2)
        return _pin_ends(x, y, torch.log(q_i * k), ends[..., 0], ends[..., 1])

    def inverse(self, y: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        k = self.bins
        q = self.heights(theta)
        y = y.clamp(0.0, 1.0)
        cdf = _knots(q)
        idx = _search(cdf, y)
        q_i = _take(q, idx)
        alpha = ((y - _take(cdf, idx)) / q_i).clamp(0.0, 1.0)
        x = (idx.squeeze(-1) + alpha) / k
        ends = torch.log(q[..., [0, -1]] * k).neg_().expand(*y.shape, 2)
        return _pin_ends(y, x, -torch.log(q_i * k), ends[..., 0], ends[..., 1])


class PiecewiseQuadratic(SplineMap):
    """Piecewise-quadratic CDF with learned bin widths (Müller et al. 2019).

    The derivative ``g'`` is piecewise linear, interpolating learned positive vertex values
    ``V_0..V_K`` over bins of learned widths ``W_1..W_K``, normalised so that ``g(1) = 1``.

    Arguments:
        bins: number of bins ``K``.
        min_width: smallest bin width.
        min_derivative: floor of ``g'`` (a fraction of the uniform density mixed in).
    """

    name = "pwq"

    def __init__(self, bins: int = 32, min_width: float = 1e-3, min_derivative: float = 1e-3):
        super().__init__(bins)
        if not 0.0 <= min_width * self.bins < 1.0:
            raise ValueError("min_width * bins must be in [0, 1)")
        if not 0.0 <= min_derivative < 1.0:
            raise ValueError("min_derivative must be in [0, 1)")
        self.min_width = float(min_width)
        self.min_derivative = float(min_derivative)

    @property
    def n_params(self) -> int:
        return 2 * self.bins + 1

    def config(self) -> dict:
        return {**super().config(), "min_width": self.min_width,
                "min_derivative": self.min_derivative}

    def _params(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        k = self.bins
        w_logits, u = theta.split([k, k + 1], dim=-1)  # (cheaper backward than slicing)
        w = _widths(w_logits, self.min_width)
        v = (u - u.max(dim=-1, keepdim=True).values).exp_()
        area = ((v[..., :-1] + v[..., 1:]).mul_(0.5) * w).sum(-1, keepdim=True)
        eps = self.min_derivative
        v = ((1.0 - eps) * v / area).add_(eps)
        knots = _knots(w)
        cdf = _knots((v[..., :-1] + v[..., 1:]).mul_(0.5) * w)
        return w, v, knots, cdf

    def forward(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        w, v, knots, cdf = self._params(theta)
        x = x.clamp(0.0, 1.0)
        idx = _search(knots, x)
        w_i, v_i, v_j = _take(w, idx), _take(v, idx), _take(v, idx + 1)
        alpha = ((x - _take(knots, idx)) / w_i).clamp(0.0, 1.0)
        y = _take(cdf, idx) + w_i * alpha * (v_i + 0.5 * alpha * (v_j - v_i))
        deriv = v_i + alpha * (v_j - v_i)
        ends = torch.log(v[..., [0, -1]]).expand(*x.shape, 2)
        return _pin_ends(x, y, torch.log(deriv), ends[..., 0], ends[..., 1])

    def inverse(self, y: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        w, v, knots, cdf = self._params(theta)
        y = y.clamp(0.0, 1.0)
        idx = _search(cdf, y)
        w_i, v_i, v_j = _take(w, idx), _take(v, idx), _take(v, idx + 1)
        r = (y - _take(cdf, idx)).clamp_min(0.0)
        # Solve w (v_j - v_i)/2 a^2 + w v_i a - r = 0 in the cancellation-free form.
        a = w_i * (v_j - v_i)
        b = w_i * v_i
        disc = (b * b + 2.0 * a * r).clamp_min(0.0)
        alpha = (2.0 * r / (b + torch.sqrt(disc))).clamp(0.0, 1.0)
        x = _take(knots, idx) + alpha * w_i
        deriv = v_i + alpha * (v_j - v_i)
        ends = torch.log(v[..., [0, -1]]).neg_().expand(*y.shape, 2)
        return _pin_ends(y, x, -torch.log(deriv), ends[..., 0], ends[..., 1])


class RationalQuadratic(SplineMap):
    """Monotone rational-quadratic spline on ``[0,1]`` (Durkan et al. 2019).

    ``K`` bins of learned widths and heights and ``K+1`` learned positive knot derivatives
    (boundary derivatives included, so the map need not be the identity near 0 and 1).

    Arguments:
        bins: number of bins ``K``.
        min_width: smallest bin width.
        min_height: smallest bin height.
        min_derivative: smallest knot derivative.
        derivative: how a knot derivative follows its parameter: ``"softplus"``
            (``min_derivative + softplus``) or ``"exp"`` (``min_derivative + (1 -
            min_derivative) exp``, capped at ``exp(EXP_CAP)``). A density that must fall by
            orders of magnitude towards the ends of ``[0, 1]`` (the tails of a narrow peak)
            needs knot derivatives ``dx/dz`` as large as its inverse: ``"softplus"`` reaches
            them only by parameters that large, ``"exp"`` by their logarithm. The
            parameter ``0`` gives derivative 1 (the identity) in both.
    """

    name = "rqs"

    def __init__(self, bins: int = 16, min_width: float = 1e-3, min_height: float = 1e-3,
                 min_derivative: float = 1e-3, derivative: str = "softplus"):
        super().__init__(bins)
        if derivative not in ("softplus", "exp"):
            raise ValueError(f"derivative must be 'softplus' or 'exp', got {derivative!r}")
        for label, value in (("min_width", min_width), ("min_height", min_height)):
            if not 0.0 <= value * self.bins < 1.0:
                raise ValueError(f"{label} * bins must be in [0, 1)")
        if not 0.0 <= min_derivative < 1.0:
            raise ValueError("min_derivative must be in [0, 1)")
        self.min_width = float(min_width)
        self.min_height = float(min_height)
        self.min_derivative = float(min_derivative)
        self.derivative = derivative
        # softplus(shift) = 1 - min_derivative, so theta = 0 gives unit derivatives (identity);
        # the exponential needs no shift.
        self._shift = (math.log(math.expm1(1.0 - self.min_derivative))
                       if derivative == "softplus" else 0.0)
        self._constants = RQConstants(self.bins, self.min_width, self.min_height,
                                      self.min_derivative, self._shift, derivative)

    @property
    def n_params(self) -> int:
        return 3 * self.bins + 1

    def config(self) -> dict:
        extra = {} if self.derivative == "softplus" else {"derivative": self.derivative}
        return {**super().config(), "min_width": self.min_width, "min_height": self.min_height,
                "min_derivative": self.min_derivative, **extra}

    def _params(self, theta: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Widths, heights, knot derivatives, x knots and y knots."""
        k = self.bins
        # split, not slicing: the backward of a slice fills a zero tensor of theta's full size
        # per slice, that of split concatenates the three gradients once.
        w_logits, h_logits, d_raw = theta.split([k, k, k + 1], dim=-1)
        w = _widths(w_logits, self.min_width)
        h = _widths(h_logits, self.min_height)
        # min_derivative + softplus(.) (or the capped exponential), with the addition in place
        # on the fresh result. (Applying softplus to the two gathered parameters of the bin
        # only would be cheaper but rounds differently by an ulp: SIMD and scalar tails of the
        # kernel differ.)
        if self.derivative == "exp":
            d = torch.exp(d_raw.clamp(max=EXP_CAP)).mul(1.0 - self.min_derivative)
            d = d.add_(self.min_derivative)
        else:
            d = F.softplus(d_raw + self._shift).add_(self.min_derivative)
        return w, h, d, _knots(w), _knots(h)

    @staticmethod
    def _gather(idx: Tensor, w: Tensor, h: Tensor, d: Tensor, xk: Tensor, yk: Tensor):
        return (_take(w, idx), _take(h, idx), _take(d, idx), _take(d, idx + 1),
                _take(xk, idx), _take(yk, idx))

    # Per-point parameters (coupling, autoregressive layers) go through the fused Functions;
    # parameters shared by a batch (elementwise layers) through the reference.
    def forward(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        if fused_enabled() and theta.shape[:-1] == x.shape:
            return rq_forward(x, theta, self._constants)
        return self.forward_reference(x, theta)

    def inverse(self, y: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        if fused_enabled() and theta.shape[:-1] == y.shape:
            return rq_inverse(y, theta, self._constants)
        return self.inverse_reference(y, theta)

    def column_map(self, inverse: bool = False) -> Callable[..., tuple[Tensor, Tensor]] | None:
        """The map with parameters as columns, or ``None`` while the fused spline is off.

        See :func:`~flowint.flows.rq_fused.column_map`: ``fn(x, theta)`` with ``x`` of shape
        ``(..., M)`` and ``theta`` of shape ``(..., n_params, M)``.
        """
        return column_map(self._constants, inverse) if fused_enabled() else None

    def forward_reference(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` by element-by-element autograd operations (any broadcasting)."""
        w, h, d, xk, yk = self._params(theta)
        x = x.clamp(0.0, 1.0)
        idx = _search(xk, x)
        w_i, h_i, d_i, d_j, x_i, y_i = self._gather(idx, w, h, d, xk, yk)
        s = h_i / w_i
        xi = ((x - x_i) / w_i).clamp(0.0, 1.0)
        t = xi * (1.0 - xi)
        denom = s + (d_j + d_i - 2.0 * s) * t
        y = y_i + h_i * (s * xi * xi + d_i * t) / denom
        num = s * s * (d_j * xi * xi + 2.0 * s * t + d_i * (1.0 - xi) ** 2)
        ladj = torch.log(num) - 2.0 * torch.log(denom)
        ends = torch.log(d[..., [0, -1]]).expand(*x.shape, 2)
        return _pin_ends(x, y, ladj, ends[..., 0], ends[..., 1])

    def inverse_reference(self, y: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`inverse` by element-by-element autograd operations (any broadcasting)."""
        w, h, d, xk, yk = self._params(theta)
        y = y.clamp(0.0, 1.0)
        idx = _search(yk, y)
        w_i, h_i, d_i, d_j, x_i, y_i = self._gather(idx, w, h, d, xk, yk)
        s = h_i / w_i
        xi_raw, c2 = _rq_root(y, s, h_i, d_i, d_j, y_i)
        xi = xi_raw.clamp(0.0, 1.0)
        t = xi * (1.0 - xi)
        denom = s + c2 * t
        num = s * s * (d_j * xi * xi + 2.0 * s * t + d_i * (1.0 - xi) ** 2)
        ladj = 2.0 * torch.log(denom) - torch.log(num)
        ends = torch.log(d[..., [0, -1]]).neg_().expand(*y.shape, 2)
        return _pin_ends(y, x_i + xi * w_i, ladj, ends[..., 0], ends[..., 1])


SPLINES: dict[str, type[SplineMap]] = {
    "pwl": PiecewiseLinear,
    "pwq": PiecewiseQuadratic,
    "rqs": RationalQuadratic,
}


def make_spline(kind: str, **kwargs) -> SplineMap:
    """Build a spline family by name: ``"pwl"``, ``"pwq"`` or ``"rqs"``.

    Arguments:
        kind: the family name.
        **kwargs: the family's constructor arguments (``bins``, ``min_width``, ...).

    Raises:
        ValueError: for an unknown ``kind``.
    """
    try:
        cls = SPLINES[kind]
    except KeyError:
        raise ValueError(f"unknown spline kind {kind!r}; choose one of {sorted(SPLINES)}") from None
    return cls(**kwargs)
