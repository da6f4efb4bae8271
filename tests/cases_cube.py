"""Registry cases for the bijections and flows of the unit cube (``flowint.flows``).

Collected by ``tests/registry.py``; see its docstring for the format. Every factory builds a
fresh float64 module, perturbed away from the identity with a seed derived from the case id.
Elementwise layers are perturbed more strongly (their parameters are the spline parameters
themselves) than the conditioner networks (whose outputs are sums over many weights).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from registry import Case, perturbed, seeded
from torch import nn

from flowint.flows import (
    Chain,
    ElementwiseSpline,
    InverseBijection,
    PerAxisGrid,
    Permutation,
    SplineCoupling,
    make_flow,
    random_masks,
)

DOMAIN = "cube"
KINDS = ("rqs", "pwq", "pwl")
FLOW_DIMS = (1, 2, 3, 8)
MASK_SCHEMES = ("binary", "alternating", "random")

#: Coupling masks by name (``True`` = transformed coordinate).
MASKS: dict[str, torch.Tensor] = {
    "d2-01": torch.tensor([False, True]),
    "d3-101": torch.tensor([True, False, True]),
    "d4-1000": torch.tensor([True, False, False, False]),
    "d5-random": random_masks(5, 1, seed=11)[0],
}

ELEMENTWISE_SCALE = 0.5
NETWORK_SCALE = 0.05


def _case(ident: str, build: Callable[[], nn.Module], scale: float, **kwargs) -> Case:
    """A case whose factory builds under a seed from ``ident`` and then perturbs."""

    def factory() -> nn.Module:
        with seeded(ident):
            module = build()
        return perturbed(module, ident, scale)

    return Case(ident, factory, **kwargs)


def _adapted_grid() -> PerAxisGrid:
    """A grid refined once by the VEGAS rule towards a bump near 0.3 on every axis."""
    grid = perturbed(PerAxisGrid(3, bins=16), "grid-adapted", ELEMENTWISE_SCALE)
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(4000, 3, generator=gen, dtype=torch.float64)
    weights = torch.exp(-(((x - 0.3) / 0.1) ** 2).sum(-1))
    grid.adapt(x, weights)
    return grid


def _coupling(mask: torch.Tensor, kind: str, **kwargs) -> SplineCoupling:
    return SplineCoupling(mask, kind, hidden=16, depth=2, **kwargs)


def _chain() -> Chain:
    return Chain([
        _coupling(MASKS["d3-101"], "rqs"),
        Permutation.random(3, seed=2),
        _coupling(MASKS["d3-101"], "pwq"),
        PerAxisGrid(3, bins=8),
    ])


BIJECTION_CASES: list[Case] = []
for _kind in KINDS:
    BIJECTION_CASES.append(_case(
        f"elementwise-{_kind}-d3", lambda k=_kind: ElementwiseSpline(3, k, bins=8),
        ELEMENTWISE_SCALE))
    for _name, _mask in MASKS.items():
        BIJECTION_CASES.append(_case(
            f"coupling-{_kind}-{_name}", lambda k=_kind, m=_mask: _coupling(m, k),
            NETWORK_SCALE))
BIJECTION_CASES += [
    _case("elementwise-rqs-d1", lambda: ElementwiseSpline(1, "rqs", bins=5), ELEMENTWISE_SCALE),
    _case("grid-d3", lambda: PerAxisGrid(3, bins=16), ELEMENTWISE_SCALE),
    Case("grid-adapted-d3", _adapted_grid),
    _case("coupling-rqs-d3-depth0-tanh",
          lambda: SplineCoupling(MASKS["d3-101"], "rqs", depth=0, activation="tanh"), 0.3),
    _case("coupling-rqs-d4-silu-bins3",
          lambda: SplineCoupling(MASKS["d4-1000"], "rqs", hidden=8, depth=3, activation="silu",
                                 bins=3), NETWORK_SCALE),
    _case("permutation-d5", lambda: Permutation.random(5, seed=3), 0.0, triangular=False),
    _case("permutation-reverse-d4", lambda: Permutation.reverse(4), 0.0, triangular=False),
    _case("chain-d3", _chain, NETWORK_SCALE, triangular=False),
    _case("inverse-coupling-rqs-d3", lambda: InverseBijection(_coupling(MASKS["d3-101"], "rqs")),
          NETWORK_SCALE),
    _case("inverse-elementwise-pwq-d2", lambda: ElementwiseSpline(2, "pwq", bins=6).inv,
          ELEMENTWISE_SCALE),
    # knot derivatives exp(theta) (the derivative="exp" option of the rqs family)
    _case("elementwise-rqs-exp-d2",
          lambda: ElementwiseSpline(2, "rqs", bins=5, derivative="exp"), ELEMENTWISE_SCALE),
    _case("coupling-rqs-exp-d3",
          lambda: SplineCoupling(MASKS["d3-101"], "rqs", derivative="exp", min_width=1e-5),
          NETWORK_SCALE),
    _case("inverse-chain-d3", lambda: _chain().inv, NETWORK_SCALE, triangular=False),
]


def _flow_case(dim: int, kind: str, grid: bool, masks: str) -> Case:
    ident = f"flow-{kind}-d{dim}-{'grid' if grid else 'nogrid'}"
    if dim > 1:
        ident += f"-{masks}"
    seed = 1000 * dim + 100 * KINDS.index(kind) + 10 * int(grid) + MASK_SCHEMES.index(masks)
    return _case(
        ident,
        lambda: make_flow(dim, kind, grid=grid, masks=masks, seed=seed, dtype=torch.float64),
        NETWORK_SCALE,
        triangular=dim == 1,
    )


# Every kind at every dimension with and without the grid; the mask scheme rotates with kind
# and dimension so that every kind and every dimension > 1 meets every scheme (a covering
# design: the full product would triple the cost and test nothing new).
FLOW_CASES: list[Case] = [
    _flow_case(dim, kind, grid, MASK_SCHEMES[(i + j) % len(MASK_SCHEMES)])
    for i, kind in enumerate(KINDS)
    for j, dim in enumerate(FLOW_DIMS)
    for grid in (True, False)
] + [_case("flow-rqs-exp-d2-nogrid", lambda: make_flow(2, "rqs", grid=False, seed=7,
                                                         derivative="exp", min_width=1e-5,
                                                         dtype=torch.float64), NETWORK_SCALE,
                   triangular=False)]
