"""Monotone scalar maps ("transformers") and the elementwise flows of ``R^d`` built from them.

A transformer is a small object with no trainable parameters of its own, with the interface of
the splines in :mod:`flowint.flows.splines`: an unconstrained parameter vector ``theta`` (last
axis of length :attr:`n_params`, produced by a conditioner network or stored in a layer) selects
a strictly increasing map ``tau`` that is applied elementwise,

* ``forward(z, theta) -> (tau(z), log tau'(z))``
* ``inverse(x, theta) -> (tau^{-1}(x), -log tau'(tau^{-1}(x)))``

with ``z`` of shape ``(...)`` and ``theta`` of shape ``(..., n_params)``. All zeros in ``theta``
give the identity, so a conditioner whose last layer starts at zero starts as the identity flow.
Coupling layers (:mod:`flowint.flows.realnvp`), autoregressive layers
(:mod:`flowint.flows.autoregressive`) and :class:`ElementwiseReal` share these maps
(lecture notes §3.4–3.5.1).

References:
    Sinh-arcsinh distributions (M. C. Jones, A. Pewsey, 2009), Biometrika 96(4), 761–780.

    Normalizing Flows for Probabilistic Modeling and Inference (Papamakarios, Nalisnick,
    Rezende, Mohamed, Lakshminarayanan, 2021), https://arxiv.org/abs/1912.02762 — §3.1 on
    transformers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Bijection
from .splines import SPLINES, SplineMap, make_spline

__all__ = [
    "Shift",
    "AffineMap",
    "SinhArcsinh",
    "LogitSpline",
    "ElementwiseReal",
    "make_transformer",
    "TRANSFORMERS",
]

_MIN_DELTA = 1e-3
_DELTA_SHIFT = math.log(math.expm1(1.0 - _MIN_DELTA))  # delta == 1 at raw == 0


class _Transformer:
    """Base class: ``n_params``, ``forward(z, theta)``, ``inverse(x, theta)``, ``config()``."""

    name: str = ""
    n_params: int = 0

    def forward(self, z: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def inverse(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        return {"kind": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "kind")
        return f"{self.__class__.__name__}({args})"


class Shift(_Transformer):
    """``tau(z) = z + t``: the volume-preserving (additive) transformer of NICE (``ladj = 0``)."""

    name = "shift"
    n_params = 1

    def forward(self, z: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        return z + theta[..., 0], torch.zeros_like(z)

    def inverse(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        return x - theta[..., 0], torch.zeros_like(x)


class AffineMap(_Transformer):
    """``tau(z) = exp(s) z + t`` with ``theta = (t, raw)`` and ``s`` a bounded function of raw.

    Arguments:
        scale: how the log-scale ``s`` follows from ``raw``: ``"tanh"`` (``s = bound *
            tanh(raw / bound)``, RealNVP's bounded log-scale), ``"softplus"`` (the scale is
            ``min_scale + softplus(raw + c)``, one at ``raw = 0``) or ``"exp"`` (``s = raw``,
            unbounded).
        bound: the bound of ``|s|`` for ``"tanh"``.
        min_scale: the floor of the scale for ``"softplus"``.
    """

    name = "affine"
    n_params = 2

    def __init__(self, scale: str = "tanh", bound: float = 3.0, min_scale: float = 1e-3):
        if scale not in ("tanh", "softplus", "exp"):
            raise ValueError(f"unknown scale {scale!r}; choose 'tanh', 'softplus' or 'exp'")
        if bound <= 0 or not 0 <= min_scale < 1:
            raise ValueError("bound must be positive and min_scale in [0, 1)")
        self.scale, self.bound, self.min_scale = scale, float(bound), float(min_scale)
        self._shift = math.log(math.expm1(1.0 - self.min_scale))

    def config(self) -> dict:
        return {"kind": self.name, "scale": self.scale, "bound": self.bound,
                "min_scale": self.min_scale}

    def log_scale(self, raw: Tensor) -> Tensor:
        """``s`` as a function of the raw parameter (zero at ``raw = 0``)."""
        if self.scale == "tanh":
            return self.bound * torch.tanh(raw / self.bound)
        if self.scale == "softplus":
            return torch.log(self.min_scale + F.softplus(raw + self._shift))
        return raw

    def forward(self, z: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(theta[..., 1])
        x = z * torch.exp(s) + theta[..., 0]
        return x, s.expand_as(x)

    def inverse(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        s = self.log_scale(theta[..., 1])
        z = (x - theta[..., 0]) * torch.exp(-s)
        return z, (-s).expand_as(z)


def _log_cosh(w: Tensor) -> Tensor:
    a = w.abs()
    return a + torch.log1p(torch.exp(-2.0 * a)) - math.log(2.0)


class SinhArcsinh(_Transformer):
    """``tau(z) = sinh((asinh(z) + eps) / delta)`` (Jones and Pewsey 2009).

    ``theta = (eps, raw)`` with ``delta = 0.001 + softplus(raw + c)`` (one at ``raw = 0``):
    ``eps`` skews the distribution and ``delta`` sets the weight of the tails (``delta < 1``
    gives heavier tails than the base). Maps ``R`` onto ``R`` for every parameter value.
    """

    name = "sinh_arcsinh"
    n_params = 2

    @staticmethod
    def _params(theta: Tensor) -> tuple[Tensor, Tensor]:
        return theta[..., 0], _MIN_DELTA + F.softplus(theta[..., 1] + _DELTA_SHIFT)

    def forward(self, z: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        eps, delta = self._params(theta)
        w = (torch.asinh(z) + eps) / delta
        ladj = _log_cosh(w) - torch.log(delta) - 0.5 * torch.log1p(z * z)
        return torch.sinh(w), ladj

    def inverse(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        eps, delta = self._params(theta)
        w = delta * torch.asinh(x) - eps
        ladj = _log_cosh(w) + torch.log(delta) - 0.5 * torch.log1p(x * x)
        return torch.sinh(w), ladj


class LogitSpline(_Transformer):
    """A spline of ``[0,1]`` carried to ``R``: ``tau = logit ∘ g ∘ sigmoid``.

    With ``g`` the identity (``theta = 0``) ``tau`` is the identity. The map is exact for
    ``|z|`` up to about 36 in float64 (16 in float32); beyond that the sigmoid rounds to 0 or 1
    and the output is clamped.

    Arguments:
        spline: a spline family from :func:`flowint.flows.make_spline`.
    """

    def __init__(self, spline: SplineMap):
        self.spline = spline
        self.name = spline.name
        self.n_params = spline.n_params

    def config(self) -> dict:
        return self.spline.config()

    @staticmethod
    def _logit(v: Tensor) -> tuple[Tensor, Tensor]:
        eps = torch.finfo(v.dtype).eps
        v = v.clamp(eps, 1.0 - eps)
        log_v, log_1mv = torch.log(v), torch.log1p(-v)
        return log_v - log_1mv, -(log_v + log_1mv)  # logit(v), log d logit / dv

    @staticmethod
    def _sigmoid(z: Tensor) -> tuple[Tensor, Tensor]:
        return torch.sigmoid(z), F.logsigmoid(z) + F.logsigmoid(-z)

    def forward(self, z: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        u, l1 = self._sigmoid(z)
        v, l2 = self.spline.forward(u, theta)
        x, l3 = self._logit(v)
        return x, l1 + l2 + l3

    def inverse(self, x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        v, l1 = self._sigmoid(x)
        u, l2 = self.spline.inverse(v, theta)
        z, l3 = self._logit(u)
        return z, l1 + l2 + l3


TRANSFORMERS = ("shift", "affine", "sinh_arcsinh", *SPLINES)


def make_transformer(kind: str, domain: str = "real", **kwargs) -> _Transformer | SplineMap:
    """Build a transformer by name.

    Arguments:
        kind: ``"shift"``, ``"affine"``, ``"sinh_arcsinh"`` (maps of ``R``) or a spline family
            ``"rqs"``, ``"pwq"``, ``"pwl"``.
        domain: ``"real"`` (maps of ``R``; splines are wrapped in :class:`LogitSpline`) or
            ``"cube"`` (maps of ``[0,1]``; splines only).
        **kwargs: the transformer's arguments (``scale``, ``bins``, ``min_width``, ...).

    Raises:
        ValueError: for an unknown ``kind`` or ``domain``, or a map of ``R`` on the cube.
    """
    if domain not in ("real", "cube"):
        raise ValueError(f"domain must be 'real' or 'cube', got {domain!r}")
    if kind in SPLINES:
        spline = make_spline(kind, **kwargs)
        return spline if domain == "cube" else LogitSpline(spline)
    if domain == "cube":
        raise ValueError(f"transformer {kind!r} maps R, not [0,1]; on the cube use a spline "
                         f"({sorted(SPLINES)})")
    if kind == "shift":
        return Shift(**kwargs)
    if kind == "affine":
        return AffineMap(**kwargs)
    if kind == "sinh_arcsinh":
        return SinhArcsinh(**kwargs)
    raise ValueError(f"unknown transformer {kind!r}; choose one of {list(TRANSFORMERS)}")


class ElementwiseReal(Bijection):
    """``x_i = tau_i(z_i)`` on ``R^dim``, one learned transformer per coordinate (§3.5.1).

    Arguments:
        dim: number of coordinates.
        kind: ``"affine"``, ``"sinh_arcsinh"``, ``"shift"`` or a spline family (used through a
            sigmoid, :class:`LogitSpline`).
        **kwargs: arguments of the transformer.

    The parameters start at zero, so the map starts as the identity.

    Example:
        >>> layer = ElementwiseReal(3, kind="sinh_arcsinh")
        >>> x, ladj = layer(torch.randn(5, 3))
    """

    def __init__(self, dim: int, kind: str = "sinh_arcsinh", **kwargs):
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.transformer = make_transformer(kind, "real", **kwargs)
        self.theta = nn.Parameter(torch.zeros(self.dim, self.transformer.n_params))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, ladj = self.transformer.forward(z, self.theta)
        return x, ladj.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, ladj = self.transformer.inverse(x, self.theta)
        return z, ladj.sum(-1)

    def config(self) -> dict:
        return {"dim": self.dim, **self.transformer.config()}
