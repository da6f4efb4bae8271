"""Channel maps: bijections of the unit cube onto itself that give a channel its shape.

A multi-channel run (``integrate(..., channels=...)``, :mod:`flowint.run.mode_channels`)
integrates ``f`` as a sum over channels. Channel ``c`` has a map ``T_c`` of the cube onto the
cube and a flow that samples ``u``; its points are ``x = T_c(u)``. With ``ρ_c(x)`` the density of
``T_c(U)`` for a uniform ``U`` (:meth:`ChannelMap.log_density`), the channel weights

    ``w_c(x) = α_c ρ_c(x) / Σ_j α_j ρ_j(x)``

split ``f = Σ_c w_c f`` into parts, and channel ``c`` integrates ``g_c(u) = (w_c f)(T_c(u)) /
ρ_c(T_c(u))`` over ``u`` (the multi-channel weights of event generators). A good map puts a
channel's points where its part of ``f`` is, before any training: a ring in polar coordinates,
a peak under a bump of its own width.

Maps here: :class:`IdentityMap` and :class:`LogisticMap` (a truncated logistic bump on every
axis, what the mode search builds for each mode it finds). Your own map subclasses
:class:`ChannelMap` and defines :meth:`~ChannelMap.forward` and :meth:`~ChannelMap.inverse`.

Example:
    >>> import torch
    >>> m = LogisticMap([0.3, 0.7], [0.05, 0.1])
    >>> x, log_det = m.forward(torch.rand(4, 2, dtype=torch.float64))
    >>> bool(torch.allclose(m.inverse(x), m.inverse(x).clamp(0, 1)))
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ChannelMap", "IdentityMap", "LogisticMap", "map_from_plain"]


class ChannelMap:
    """A bijection ``x = T(u)`` of the unit cube ``[0, 1]^dim`` onto itself (base class).

    Subclasses define :meth:`forward` (``x`` and ``log |det ∂x/∂u|``) and :meth:`inverse`;
    :meth:`log_density` follows. Points are float64 tensors of shape ``(n, dim)``.
    """

    dim: int

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """``(x, log |det ∂x/∂u|)`` for points ``u`` of the cube."""
        raise NotImplementedError

    def inverse(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``u = T⁻¹(x)``."""
        raise NotImplementedError

    def log_density(self, x: Tensor) -> Tensor:
        """``log ρ(x)``: the log density of ``T(U)`` for uniform ``U``, i.e.
        ``-log |det ∂x/∂u|`` at ``u = T⁻¹(x)``."""
        return -self.forward(self.inverse(x))[1]

    def to_plain(self) -> dict[str, Any] | None:
        """The map as plain data (:func:`map_from_plain`), or ``None`` for a map that cannot
        be written into a checkpoint (a user's own)."""
        return None


class IdentityMap(ChannelMap):
    """``T(u) = u``: the channel's flow alone shapes it.

    Arguments:
        dim: dimension.
    """

    def __init__(self, dim: int):
        self.dim = int(dim)

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        return u, torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)

    def inverse(self, x: Tensor) -> Tensor:
        return x

    def log_density(self, x: Tensor) -> Tensor:
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def to_plain(self) -> dict[str, Any]:
        return {"kind": "identity", "dim": self.dim}

    def __repr__(self) -> str:
        return f"IdentityMap({self.dim})"


class LogisticMap(ChannelMap):
    """A logistic bump on every axis, truncated to ``[0, 1]``: ``ρ(x) = Π_i ℓ_i(x_i)`` with
    ``ℓ_i`` the logistic density of location ``center[i]`` and scale ``scale[i]`` renormalised
    on ``[0, 1]``.

    Its tails fall as ``exp(-|x - c| / s)``, slower than a Gaussian's, so a Gaussian peak of
    standard deviation up to about ``1.8 s`` has bounded weights under it (the mode search uses
    ``s`` = the peak's standard deviation along the axis).

    Arguments:
        center: the bump's location per axis, in ``[0, 1]``.
        scale: the logistic scale per axis, ``> 0``.
    """

    def __init__(self, center: Sequence[float] | Tensor, scale: Sequence[float] | Tensor):
        c = torch.as_tensor(center, dtype=torch.float64).reshape(-1)
        s = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
        if c.shape != s.shape:
            raise ValueError(f"center and scale differ in length ({c.numel()}, {s.numel()})")
        if not bool(torch.isfinite(c).all()) or bool((c < 0).any() | (c > 1).any()):
            raise ValueError("center must lie in [0, 1] on every axis")
        if not bool(torch.isfinite(s).all()) or not bool((s > 0).all()):
            raise ValueError("scale must be positive and finite on every axis")
        self.center, self.scale, self.dim = c, s, int(c.numel())
        # the mass of the logistic below 0 (a) and above 1 (b), and in between (mass)
        self._log_a = F.logsigmoid(-c / s)
        self._log_b = F.logsigmoid(-(1.0 - c) / s)
        self._log_mass = torch.log1p(-(self._log_a.exp() + self._log_b.exp()))

    def _params(self, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.to(device=like.device, dtype=like.dtype) for t in
                     (self.center, self.scale, self._log_a, self._log_b, self._log_mass))

    def forward(self, u: Tensor) -> tuple[Tensor, Tensor]:
        c, s, log_a, log_b, log_mass = self._params(u)
        mass = log_mass.exp()
        p = log_a.exp() + u * mass          # the logistic CDF at x
        q = log_b.exp() + (1.0 - u) * mass  # 1 - the CDF, computed on its own for precision
        t = torch.log(p) - torch.log(q)
        x = (c + s * t).clamp(0.0, 1.0)
        return x, -self._log_rho(x, c, s, log_mass).sum(-1)

    def inverse(self, x: Tensor) -> Tensor:
        c, s, log_a, log_b, log_mass = self._params(x)
        t = (x - c) / s
        mass = log_mass.exp()
        low = (torch.sigmoid(t) - log_a.exp()) / mass
        high = 1.0 - (torch.sigmoid(-t) - log_b.exp()) / mass
        return torch.where(t < 0, low, high).clamp(0.0, 1.0)

    def log_density(self, x: Tensor) -> Tensor:
        c, s, _, _, log_mass = self._params(x)
        return self._log_rho(x, c, s, log_mass).sum(-1)

    @staticmethod
    def _log_rho(x: Tensor, c: Tensor, s: Tensor, log_mass: Tensor) -> Tensor:
        t = (x - c) / s
        return -F.softplus(t) - F.softplus(-t) - torch.log(s) - log_mass

    def to_plain(self) -> dict[str, Any]:
        return {"kind": "logistic", "center": self.center.tolist(), "scale": self.scale.tolist()}

    def __repr__(self) -> str:
        return f"LogisticMap(dim={self.dim})"


def map_from_plain(data: dict[str, Any]) -> ChannelMap:
    """The map that :meth:`ChannelMap.to_plain` wrote."""
    kind = data.get("kind")
    if kind == "identity":
        return IdentityMap(int(data["dim"]))
    if kind == "logistic":
        return LogisticMap(data["center"], data["scale"])
    raise ValueError(f"unknown channel map kind {kind!r}")
