"""Registry cases for the general flow families: affine, coupling on ``R^d`` (NICE, RealNVP),
autoregressive (MAF, IAF), elementwise, inverse-CDF and continuous-time flows.

Collected by ``tests/registry.py``; see its docstring for the format. Every factory builds a
fresh float64 module under a seed derived from the case id and perturbs its parameters away
from the identity: strongly where the parameters act directly (affine matrices, elementwise
maps), weakly where they are network weights.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from registry import Case, perturbed, seeded
from torch import nn

from flowint.flows import (
    IAF,
    MAF,
    AdditiveCoupling,
    Affine,
    AffineCoupling,
    Chain,
    ContinuousFlow,
    ElementwiseReal,
    InverseCDF,
    MaskedCoupling,
    TimeMLP,
    affine_flow,
    cnf_flow,
    elementwise_flow,
    iaf_flow,
    maf_flow,
    random_masks,
    realnvp_flow,
)

DOMAIN = "real"
DIRECT_SCALE = 0.4
NETWORK_SCALE = 0.05
#: Tolerances that make the continuous flow's solution and log-determinant accurate to well
#: below the battery's thresholds.
CNF_TOL = {"rtol": 1e-12, "atol": 1e-12}

MASKS: dict[str, torch.Tensor] = {
    "d2-01": torch.tensor([False, True]),
    "d3-101": torch.tensor([True, False, True]),
    "d4-1000": torch.tensor([True, False, False, False]),
    "d5-random": random_masks(5, 1, seed=7)[0],
}


def _case(ident: str, build: Callable[[], nn.Module], scale: float, *, domain: str = DOMAIN,
          triangular: bool = True) -> Case:
    """A case whose factory builds under a seed from ``ident`` and then perturbs."""

    def factory() -> nn.Module:
        with seeded(ident):
            module = build()
        return perturbed(module, ident, scale)

    return Case(ident, factory, domain=domain, triangular=triangular)


def _bimodal(x: np.ndarray) -> np.ndarray:
    """An unnormalised two-bump density on [0, 1], positive at both ends."""
    return np.exp(-0.5 * ((x - 0.25) / 0.1) ** 2) + 0.5 * np.exp(-0.5 * ((x - 0.7) / 0.15) ** 2)


BIJECTION_CASES: list[Case] = [
    # Affine (§3.3).
    _case("affine-lu-d4-perm", lambda: Affine(4, "lu", perm=[2, 0, 3, 1]), DIRECT_SCALE,
          triangular=False),
    _case("affine-lu-d1", lambda: Affine(1, "lu"), DIRECT_SCALE),
    _case("affine-triangular-d3", lambda: Affine(3, "triangular"), DIRECT_SCALE),
    _case("affine-diagonal-d3", lambda: Affine(3, "diagonal"), DIRECT_SCALE),
    # Couplings on R^d (§3.4).
    # NICE's pair: an additive coupling (ladj = 0) and a diagonal scaling. The scaling also
    # keeps the battery's gradient test meaningful: for a lone shift the gradients of
    # sum(forward) and sum(inverse) with respect to the shift cancel exactly.
    _case("nice-scaled-d4-1000",
          lambda: Chain([AdditiveCoupling(MASKS["d4-1000"], hidden=16), Affine(4, "diagonal")]),
          NETWORK_SCALE),
    _case("realnvp-tanh-d3-101", lambda: AffineCoupling(MASKS["d3-101"], hidden=16),
          NETWORK_SCALE),
    _case("realnvp-softplus-d5-random",
          lambda: AffineCoupling(MASKS["d5-random"], hidden=16, scale="softplus"), NETWORK_SCALE),
    _case("realnvp-exp-d2-depth0",
          lambda: AffineCoupling(MASKS["d2-01"], depth=0, activation="tanh", scale="exp"), 0.3),
    _case("coupling-sinh-arcsinh-d3",
          lambda: MaskedCoupling(MASKS["d3-101"], "sinh_arcsinh", hidden=16), NETWORK_SCALE),
    _case("coupling-rqs-real-d3",
          lambda: MaskedCoupling(MASKS["d3-101"], "rqs", hidden=16, bins=6), NETWORK_SCALE),
    # Autoregressive (§3.5).
    _case("maf-affine-d3", lambda: MAF(3, "affine", hidden=16), NETWORK_SCALE),
    _case("maf-affine-d1", lambda: MAF(1, "affine", hidden=4), DIRECT_SCALE),
    _case("maf-rqs-real-d3-reversed",
          lambda: MAF(3, "rqs", hidden=16, order=[2, 1, 0], bins=6), NETWORK_SCALE),
    _case("maf-rqs-cube-d3", lambda: MAF(3, "rqs", "cube", hidden=16, bins=6), NETWORK_SCALE,
          domain="cube"),
    _case("maf-pwq-cube-d4-depth0",
          lambda: MAF(4, "pwq", "cube", depth=0, order=[1, 3, 0, 2], bins=5), 0.3,
          domain="cube"),
    _case("iaf-affine-d4", lambda: IAF(4, "affine", hidden=16, activation="tanh"),
          NETWORK_SCALE),
    _case("iaf-sinh-arcsinh-d3", lambda: IAF(3, "sinh_arcsinh", hidden=16), NETWORK_SCALE),
    _case("iaf-rqs-cube-d3", lambda: IAF(3, "rqs", "cube", hidden=16, bins=6), NETWORK_SCALE,
          domain="cube"),
    _case("iaf-pwl-cube-d2", lambda: IAF(2, "pwl", "cube", hidden=8, bins=6), NETWORK_SCALE,
          domain="cube"),
    # Elementwise maps of R^d (§3.5.1).
    _case("elementwise-real-affine-d3", lambda: ElementwiseReal(3, "affine"), DIRECT_SCALE),
    _case("elementwise-real-sinh-arcsinh-d3", lambda: ElementwiseReal(3, "sinh_arcsinh"),
          DIRECT_SCALE),
    _case("elementwise-real-rqs-d3", lambda: ElementwiseReal(3, "rqs", bins=6), DIRECT_SCALE),
    _case("elementwise-real-pwq-d2", lambda: ElementwiseReal(2, "pwq", bins=6), DIRECT_SCALE),
    # Inverse CDF of a 1-D density on [0, 1] (§3.2): a bijection of the unit interval.
    _case("inverse-cdf-bimodal", lambda: InverseCDF(_bimodal, 0.0, 1.0, n_grid=256), 0.0,
          domain="cube"),
    # Continuous time (§3.6): a dense Jacobian.
    _case("cnf-exact-d2",
          lambda: ContinuousFlow(2, TimeMLP(2, hidden=8), trace="exact", **CNF_TOL), 0.1,
          triangular=False),
    _case("inverse-iaf-affine-d3", lambda: IAF(3, "affine", hidden=16).inv, NETWORK_SCALE),
]


def _flow(ident: str, build: Callable[[], nn.Module], *, domain: str = DOMAIN,
          triangular: bool = False) -> Case:
    return _case(ident, build, NETWORK_SCALE, domain=domain, triangular=triangular)


FLOW_CASES: list[Case] = [
    _case("flow-affine-lu-d3", lambda: affine_flow(3, "lu", permute=True, seed=1), DIRECT_SCALE,
          triangular=False),
    _case("flow-affine-diagonal-d2", lambda: affine_flow(2, "diagonal"), DIRECT_SCALE),
    _flow("flow-realnvp-affine-d4", lambda: realnvp_flow(4, n_layers=3, hidden=16, seed=2)),
    _flow("flow-nice-d2", lambda: realnvp_flow(2, "additive", n_layers=2, hidden=8, seed=3)),
    _flow("flow-maf-affine-d3", lambda: maf_flow(3, n_layers=2, hidden=16, seed=4)),
    _flow("flow-maf-rqs-cube-d3",
          lambda: maf_flow(3, "rqs", n_layers=2, hidden=16, domain="cube", seed=5),
          domain="cube"),
    _flow("flow-maf-affine-d1", lambda: maf_flow(1, n_layers=2, hidden=4, seed=6),
          triangular=True),
    _flow("flow-iaf-rqs-real-d2", lambda: iaf_flow(2, "rqs", n_layers=2, hidden=8, seed=7)),
    _flow("flow-iaf-pwq-cube-d2",
          lambda: iaf_flow(2, "pwq", n_layers=2, hidden=8, domain="cube", seed=8),
          domain="cube"),
    _case("flow-elementwise-sinh-arcsinh-d2", lambda: elementwise_flow(2), DIRECT_SCALE),
    _case("flow-elementwise-rqs-cube-d3",
          lambda: elementwise_flow(3, "rqs", domain="cube", bins=6), DIRECT_SCALE,
          domain="cube"),
    _case("flow-cnf-d2", lambda: cnf_flow(2, hidden=8, trace="exact", seed=9, **CNF_TOL), 0.1,
          triangular=False),
]
