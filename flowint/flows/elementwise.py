"""Separable maps of the unit cube: one learned spline per coordinate.

:class:`ElementwiseSpline` applies ``x_i = g_i(z_i)`` with an unconditioned spline per axis.
:class:`PerAxisGrid` is the piecewise-linear member of that family written as VEGAS writes its
adaptive map — equal-probability bins in ``z`` mapped onto bins of learned widths in ``x`` — and
it can be refined without gradients by the VEGAS rule (:meth:`PerAxisGrid.adapt`), which makes
it a cheap warm start in front of the coupling layers.

Reference:
    A new algorithm for adaptive multidimensional integration (G. P. Lepage, 1978),
    J. Comput. Phys. 27, 192 — the grid refinement rule.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Bijection
from .splines import PiecewiseLinear, SplineMap, make_spline

__all__ = ["ElementwiseSpline", "PerAxisGrid"]


class ElementwiseSpline(Bijection):
    """``x_i = g_i(z_i)`` for every coordinate, each ``g_i`` a learned monotone spline.

    Arguments:
        dim: number of coordinates.
        kind: spline family, ``"rqs"``, ``"pwq"`` or ``"pwl"``.
        **spline_kwargs: arguments of the spline family (``bins``, ``min_width``, ...).

    The parameters start at zero, so the map starts as the identity.
    """

    def __init__(self, dim: int, kind: str = "rqs", **spline_kwargs):
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.spline: SplineMap = make_spline(kind, **spline_kwargs)
        self.theta = nn.Parameter(torch.zeros(self.dim, self.spline.n_params))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x, ladj = self.spline.forward(z, self.theta)
        return x, ladj.sum(-1)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z, ladj = self.spline.inverse(x, self.theta)
        return z, ladj.sum(-1)

    def config(self) -> dict:
        return {"dim": self.dim, **self.spline.config()}


class PerAxisGrid(ElementwiseSpline):
    """A learnable per-axis grid: VEGAS's separable adaptive map as a bijection.

    The generative map sends bin ``i`` of ``bins`` equal bins in ``z`` onto ``[e_i, e_{i+1}]``
    in ``x`` with learned edges ``e``; the density of ``x`` is ``1 / (bins * (e_{i+1} - e_i))``
    in that bin. The edges follow from ``theta`` by a softmax with a floor, so the grid can be
    trained by gradient like any layer, or refined by :meth:`adapt`.

    Arguments:
        dim: number of coordinates.
        bins: number of grid bins per axis.
        min_width: smallest bin width (keeps the density bounded).
    """

    def __init__(self, dim: int, bins: int = 64, min_width: float = 1e-4):
        super().__init__(dim, kind="pwl", bins=bins, min_height=min_width)
        self.spline: PiecewiseLinear

    @property
    def bins(self) -> int:
        return self.spline.bins

    def edges(self) -> Tensor:
        """The bin edges in ``x``, shape ``(dim, bins + 1)``, from 0 to 1."""
        q = self.spline.heights(self.theta)
        return torch.nn.functional.pad(torch.cumsum(q, -1), (1, 0)).clamp(0.0, 1.0)

    def set_widths(self, widths: Tensor) -> None:
        """Set the bin widths (shape ``(dim, bins)``, positive); they are normalised per axis."""
        widths = torch.as_tensor(widths, dtype=self.theta.dtype, device=self.theta.device)
        if widths.shape != self.theta.shape:
            raise ValueError(f"widths must have shape {tuple(self.theta.shape)}")
        widths = widths / widths.sum(-1, keepdim=True)
        m = self.spline.min_height
        share = ((widths - m) / (1.0 - m * self.bins)).clamp_min(1e-12)
        with torch.no_grad():
            self.theta.copy_(torch.log(share) - torch.log(share).mean(-1, keepdim=True))

    @torch.no_grad()
    def adapt(self, x: Tensor, weights: Tensor, alpha: float = 0.5) -> None:
        """Refine the grid from weighted points by the VEGAS rule.

        Each axis's bins accumulate ``weights`` (use ``(f/q)^2`` for a variance-minimising grid,
        as VEGAS does) of the points that fall into them; the accumulated profile is smoothed,
        compressed with the damping exponent ``alpha``, and new edges are placed so that every
        new bin holds an equal share of it.

        Arguments:
            x: points of shape ``(n, dim)`` in the cube.
            weights: non-negative weights of shape ``(n,)``.
            alpha: damping exponent (0 freezes the grid; VEGAS uses 0.5 by default).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim})")
        edges = self.edges().to(torch.float64)
        k = self.bins
        x = x.detach().to(torch.float64).clamp(0.0, 1.0)
        w = weights.detach().to(torch.float64).clamp_min(0.0)
        if not torch.isfinite(w).all() or w.sum() <= 0:
            return
        idx = torch.searchsorted(edges, x.T.contiguous(), right=True) - 1
        idx = idx.clamp_(0, k - 1)
        acc = torch.zeros(self.dim, k, dtype=torch.float64, device=x.device)
        acc.scatter_add_(1, idx, w.expand(self.dim, -1))
        # VEGAS smoothing: average with neighbours, then the logarithmic damping.
        sm = acc.clone()
        sm[:, 1:-1] = (acc[:, :-2] + acc[:, 1:-1] + acc[:, 2:]) / 3.0
        if k > 1:
            sm[:, 0] = (acc[:, 0] + acc[:, 1]) / 2.0
            sm[:, -1] = (acc[:, -2] + acc[:, -1]) / 2.0
        total = sm.sum(-1, keepdim=True)
        ok = (total > 0).squeeze(-1)
        r = sm / total.clamp_min(1e-300)
        rc = r.clamp(1e-300, 1.0 - 1e-12)
        damped = torch.where(r > 0, ((1.0 - rc) / -torch.log(rc)) ** alpha, torch.zeros_like(r))
        # New edges: equal shares of the damped profile, assumed uniform within each old bin.
        cum = torch.nn.functional.pad(torch.cumsum(damped, -1), (1, 0))
        cum = cum / cum[:, -1:].clamp_min(1e-300)
        targets = torch.linspace(0.0, 1.0, k + 1, dtype=torch.float64, device=x.device)
        targets = targets.expand(self.dim, -1).contiguous()
        j = (torch.searchsorted(cum, targets, right=True) - 1).clamp_(0, k - 1)
        c0, c1 = cum.gather(1, j), cum.gather(1, j + 1)
        e0, e1 = edges.gather(1, j), edges.gather(1, j + 1)
        frac = torch.where(c1 > c0, (targets - c0) / (c1 - c0).clamp_min(1e-300),
                           torch.zeros_like(c0))
        new_edges = e0 + frac * (e1 - e0)
        new_edges[:, 0], new_edges[:, -1] = 0.0, 1.0
        widths = torch.diff(new_edges, dim=-1).clamp_min(0.0)
        widths = torch.where(ok.unsqueeze(-1), widths, torch.diff(edges, dim=-1))
        self.set_widths(widths.to(self.theta.dtype) + 1e-300)

    def config(self) -> dict:
        return {"dim": self.dim, "bins": self.bins, "min_width": self.spline.min_height}
