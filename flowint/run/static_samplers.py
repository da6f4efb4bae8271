"""The static candidates' samplers, built from what their measurements learnt.

The per-axis grid adapted to the identity's exploration points (:func:`adapted_grid`,
:func:`grid_flow`), and the stratified sets of :mod:`flowint.run.strata` (:func:`stratified`,
from the cell sums :func:`keep_points` gathers). :class:`~flowint.run.driver.CallDriver` builds
them; the Policy decides which are measured and which is taken.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..flows import Flow, PerAxisGrid
from ..integrand import Integrand
from .model import square
from .strata import Stratified, add_to_sums, cell_sigmas

__all__ = ["adapted_grid", "grid_flow", "keep_points", "stratified"]


def adapted_grid(seen: list[list[Tensor]], f: Integrand, passes: int = 5) -> Tensor:
    """Per-axis bin edges adapted to the uniform exploration points (VEGAS's rule).

    Each pass accumulates ``f² / q_grid`` of the fixed points per bin of the current grid,
    which estimates ``∫_bin (f J)² dy`` for uniform points (``J = 1/q_grid``), then moves the
    edges (``vegas.AdaptiveMap.adapt_to_samples`` works the same way).
    """
    u = torch.cat([s[0] for s in seen]).to(torch.float64)
    fx = torch.cat([s[1] for s in seen])
    fx = (fx if fx.ndim == 1 else fx.norm(dim=-1)).to(torch.float64)
    bins = int(min(64, max(8, u.shape[0] // 64)))
    grid = PerAxisGrid(u.shape[1], bins=bins).to(torch.float64)
    flow = Flow([grid])
    top = float(fx.abs().max())
    if not top > 0:
        return grid.edges().detach()
    f2 = square(fx / top)
    with torch.no_grad():
        for _ in range(passes):
            grid.adapt(u, f2 * torch.exp(-flow.log_prob(u)), alpha=0.5)
    return grid.edges().detach()


def keep_points(call: dict[str, Any], candidate: str, u: Tensor, fx: Tensor) -> None:
    """Keep what the static candidates learn from a measurement's points: the identity's
    points (the grid and the stratified plan adapt to them), and the stratified sets' cell
    sums (the final allocation sees them too)."""
    if candidate == "identity":
        call.setdefault("seen", []).append([u, fx])
    if candidate == "strata":
        plan = call["strata"]
        plan["sums"] = add_to_sums(plan["sums"], u, fx, int(plan["m"]))


def stratified(plan: dict[str, Any], dim: int, dtype: torch.dtype) -> Stratified:
    """The stratified sampler of the plan's grid, allotting by the cells' spreads so far."""
    m = int(plan["m"])
    return Stratified(dim, m, cell_sigmas(plan["sums"], m, dim), dtype)


def grid_flow(edges: Tensor, dtype: torch.dtype) -> Flow:
    """A frozen flow of one per-axis grid with the given edges."""
    grid = PerAxisGrid(edges.shape[0], bins=edges.shape[1] - 1)
    grid.set_widths(edges.diff(dim=-1).to(torch.float64))
    flow = Flow([grid]).to(dtype)
    flow.requires_grad_(False)
    return flow
