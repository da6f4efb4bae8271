"""Adaptive stratification: equal cells of the cube, each given its share of every set.

The cube is cut into ``K = m^dim`` equal cells. A *stratified set* of ``n`` points puts
``n_c ≥ 1`` of them in cell ``c`` (``Σ n_c = n``), each uniform in its cell, and estimates
``∫f = Σ_c |c| · mean_c(f)``: the mean of ``f/q`` for the piecewise-constant density
``q = n_c K / n`` on cell ``c``. Every cell is sampled, so the estimate is unbiased whatever
the allocation; its variance is ``Σ_c |c|² σ_c² / n_c`` (``σ_c`` the spread of ``f`` in the
cell), smallest for ``n_c ∝ σ_c`` (Neyman's allocation), and the spread *between* cells is
gone. Independent sets give the error bar as independent randomizations do.

Where plain quasi-random points do poorly — an indicator or any jump across a curve, whose
error falls only as ``N^-3/4`` in 2-D whatever the points' order — the cells that the jump
crosses are few (``∝ m^(dim-1)``) and take almost all the points; the others get one point a
set. This is the adaptive stratification of VEGAS+ (Lepage 2021, arXiv:2009.05112) on a
uniform grid, without its per-axis map. The base points of a set are one scrambled Sobol set,
given to the cells in consecutive runs (the points of a cell are a stretch of the sequence,
well spread within the cell), so a cell with many points also gains from their order.

The allocation comes from earlier points: the identity's exploration points (uniform), then
the candidate's own measurement. A cell's spread is taken from its own points once it has
:data:`OWN_POINTS` of them, and never below :data:`NEIGHBOUR_FLOOR` times the spread pooled over
its ``3^dim`` neighbourhood, which is all a cell with fewer points has: a jump crossing a cell
whose few points all fell on one side shows in the neighbours on either side.

What it gains is the integrand's business, so it is a candidate the
:class:`~flowint.run.policy.Policy` measures (``"strata"``, up to :data:`MAX_DIM` dimensions,
where the identity's points look like a jump: :mod:`flowint.run.statics`), never a default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["MAX_DIM", "NEIGHBOUR_FLOOR", "OWN_POINTS", "Stratified", "add_to_sums",
           "allocate", "cell_index", "cell_sigmas", "cells_per_axis", "predicted_var",
           "set_var", "strata_sums"]

#: Most dimensions in which the Policy measures stratified sets: the cells a jump crosses
#: are a fraction ``∝ 1/m`` of ``K = m^dim``, and ``m`` shrinks as ``K^(1/dim)``.
MAX_DIM = 3
#: Points of its own from which a cell's spread is its own sample std.
OWN_POINTS = 12
#: A cell's spread is at least this fraction of the one pooled over its neighbourhood (a
#: cell whose own points all agree may still be crossed by a jump they missed).
NEIGHBOUR_FLOOR = 0.1


def cells_per_axis(dim: int, most_cells: float) -> int:
    """The largest ``m`` with ``m^dim ≤ most_cells`` (0 where even ``2^dim`` cells are too
    many)."""
    if most_cells < 2**dim:
        return 0
    m = int(math.floor(most_cells ** (1.0 / dim)))
    while (m + 1) ** dim <= most_cells:
        m += 1
    while m**dim > most_cells:
        m -= 1
    return m


def cell_index(u: Tensor, m: int) -> Tensor:
    """The flat cell index (row-major, first axis slowest) of points ``u`` of ``[0, 1)^dim``."""
    ij = (u.to(torch.float64) * m).floor().long().clamp(0, m - 1)
    idx = torch.zeros(u.shape[0], dtype=torch.long, device=u.device)
    for j in range(u.shape[1]):
        idx = idx * m + ij[:, j]
    return idx


def strata_sums(u: Tensor, fx: Tensor, m: int, dim: int) -> Tensor:
    """:func:`add_to_sums` from nothing: ``(3, m^dim)`` float64, on ``u``'s device."""
    return add_to_sums(torch.zeros(3, m**dim, dtype=torch.float64, device=u.device), u, fx, m)


def add_to_sums(sums: Tensor, u: Tensor, fx: Tensor, m: int) -> Tensor:
    """``sums`` (float64, ``(3, K)``: count, ``Σf``, ``Σf²`` per cell) with the points ``u``
    and their values ``fx`` (component 0 of a vector integrand) added."""
    f = (fx if fx.ndim == 1 else fx[:, 0]).to(device=sums.device, dtype=torch.float64)
    idx = cell_index(u.to(sums.device), m)
    k = sums.shape[1]
    out = sums.clone()
    out[0] += torch.bincount(idx, minlength=k).to(torch.float64)
    out[1] += torch.bincount(idx, weights=f, minlength=k)
    out[2] += torch.bincount(idx, weights=f * f, minlength=k)
    return out


def _box(a: Tensor, m: int, dim: int) -> Tensor:
    """Sums of ``a`` (flat, ``m^dim``) over each cell's ``3^dim`` neighbourhood (cut at the
    faces of the cube)."""
    x = a.reshape((m,) * dim)
    for axis in range(dim):
        pad = [0, 0] * dim
        pad[2 * (dim - 1 - axis)], pad[2 * (dim - 1 - axis) + 1] = 1, 1
        p = torch.nn.functional.pad(x.unsqueeze(0), pad).squeeze(0)
        x = p.narrow(axis, 0, m) + p.narrow(axis, 1, m) + p.narrow(axis, 2, m)
    return x.reshape(-1)


def _spread(n: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
    mean = s1 / n.clamp_min(1.0)
    var = (s2 / n.clamp_min(1.0) - mean * mean).clamp_min(0.0)
    return torch.where(n > 1, torch.sqrt(var * n / (n - 1).clamp_min(1.0)), torch.zeros_like(var))


def cell_sigmas(sums: Tensor, m: int, dim: int) -> Tensor:
    """Each cell's estimated spread of ``f``: its own sample std once it has
    :data:`OWN_POINTS` points, at least :data:`NEIGHBOUR_FLOOR` times the std pooled over its
    neighbourhood; the pooled std where it has fewer."""
    pooled = _spread(*(_box(s, m, dim) for s in sums))
    own = _spread(*sums)
    return torch.where(sums[0] >= OWN_POINTS, torch.maximum(own, NEIGHBOUR_FLOOR * pooled), pooled)


def allocate(sigmas: Tensor, n: int) -> Tensor:
    """Points per cell of a set of ``n``: one each, the rest in proportion to ``sigmas``
    (largest remainders rounded up), ``Σ = n``. Raises :class:`ValueError` for ``n`` below
    the number of cells."""
    k = sigmas.numel()
    if n < k:
        raise ValueError(f"a stratified set needs at least one point per cell: n={n} < {k}")
    s = sigmas.to(torch.float64).clamp_min(0.0)
    if not float(s.sum()) > 0 or not math.isfinite(float(s.sum())):
        s = torch.ones_like(s)
    share = (n - k) * s / s.sum()
    whole = share.floor()
    left = int(n - k - int(whole.sum()))
    extra = torch.zeros_like(whole)
    if left > 0:
        extra[torch.argsort(share - whole, descending=True)[:left]] = 1.0
    return (1 + whole + extra).long()


def set_var(sigmas: Tensor, alloc: Tensor) -> float:
    """The variance of one stratified set with ``alloc`` points per cell, i.i.d. within
    cells of spreads ``sigmas``: ``Σ σ_c² / (K² n_c)``."""
    k = sigmas.numel()
    return float((sigmas * sigmas / alloc.to(torch.float64)).sum()) / (k * k)


def predicted_var(sums: Tensor, m: int, dim: int, n: float) -> float:
    """:func:`set_var` of a set of ``n`` points allotted by :func:`cell_sigmas` of ``sums``,
    relative to the integral squared as estimated from them (``inf`` where that is 0 or
    ``n`` is below the number of cells)."""
    k = m**dim
    counts = sums[0].clamp_min(1.0)
    integral = float((sums[1] / counts).sum()) / k
    if n < k or integral == 0:
        return math.inf
    sig = cell_sigmas(sums, m, dim)
    return set_var(sig, allocate(sig, int(n))) / (integral * integral)


class Stratified:
    """The stratified sampler: a set of ``n`` base points becomes ``n_c`` points in each cell
    (:func:`allocate` of ``sigmas``), the set's ``i``-th stretch of ``n_c`` in cell ``c``;
    ``log q = log(n_c K / n)``. Sets must come whole (:attr:`whole_sets`).

    Arguments:
        dim: dimensions of the cube.
        m: cells per axis.
        sigmas: the cells' spreads (``m^dim``), in any units.
        dtype: dtype of the points returned.
    """

    whole_sets = True  #: the Estimator passes a set's base points in one piece

    def __init__(self, dim: int, m: int, sigmas: Tensor, dtype: torch.dtype = torch.float64):
        self.dim, self.m, self.dtype = int(dim), int(m), dtype
        self.base_dim = self.dim
        self.sigmas = sigmas.to(torch.float64).cpu()
        if self.sigmas.numel() != self.m**self.dim:
            raise ValueError(f"need {self.m**self.dim} cell spreads, got {self.sigmas.numel()}")
        strides = self.m ** torch.arange(self.dim - 1, -1, -1)
        cells = torch.arange(self.m**self.dim)
        self.corners = ((cells.unsqueeze(1) // strides) % self.m).to(torch.float64)
        self._sets: dict[int, tuple[Tensor, Tensor]] = {}  # n -> (cell of each point, log q)

    def transform_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(u, log q)`` for one whole set of base points ``z`` (shape ``(n, dim)``)."""
        n = z.shape[0]
        if n not in self._sets:  # every set of a final estimate has the same size
            alloc = allocate(self.sigmas, n)
            idx = torch.repeat_interleave(torch.arange(alloc.numel()), alloc)
            self._sets[n] = (idx, torch.log(alloc.to(torch.float64) * (alloc.numel() / n))[idx])
        idx, log_q = self._sets[n]
        u = (self.corners[idx] + z.detach().cpu().to(torch.float64)) / self.m
        below_one = torch.nextafter(torch.ones((), dtype=self.dtype),
                                    torch.zeros((), dtype=self.dtype))
        out = torch.minimum(u.to(self.dtype), below_one).to(z.device)
        return out, log_q.clone().to(z.device)

