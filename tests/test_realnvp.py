"""Coupling layers of R^d (lecture notes §3.4): NICE is volume preserving, RealNVP starts at the
identity and bounds its log-scale, the conditioning coordinates pass through unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from flowint.flows import AdditiveCoupling, AffineCoupling, MaskedCoupling, realnvp_flow

pytestmark = pytest.mark.usefixtures("float64_default")

MASK = torch.tensor([True, False, True, False, False])


def _randomise(module: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Set every parameter to ``scale * N(0, 1)`` noise: seeded, whatever the initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return module


def _points(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def test_additive_coupling_is_volume_preserving():
    layer = _randomise(AdditiveCoupling(MASK, hidden=16), 0.5, seed=0)
    z = _points(32, 5, seed=1)
    x, ladj = layer(z)
    assert torch.equal(ladj, torch.zeros(32))
    assert (x - z).abs().max() > 0.1
    for p in z[:3]:
        jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), p)
        assert abs(torch.linalg.det(jac).item() - 1.0) < 1e-12
    z_back, ladj_inv = layer.inverse(x)
    assert (z_back - z).abs().max() < 1e-12 and torch.equal(ladj_inv, torch.zeros(32))


@pytest.mark.parametrize("layer", [
    AdditiveCoupling(MASK), AffineCoupling(MASK), AffineCoupling(MASK, scale="softplus"),
    AffineCoupling(MASK, scale="exp"), MaskedCoupling(MASK, "sinh_arcsinh"),
    MaskedCoupling(MASK, "rqs", bins=5),
], ids=["additive", "affine-tanh", "affine-softplus", "affine-exp", "sinh-arcsinh", "rqs"])
def test_fresh_coupling_is_identity(layer):
    layer = layer.double()
    z = _points(64, 5, seed=2) * 3.0
    for fn in (layer.forward, layer.inverse):
        out, ladj = fn(z)
        torch.testing.assert_close(out, z, rtol=0, atol=1e-12)
        torch.testing.assert_close(ladj, torch.zeros(64), rtol=0, atol=1e-12)


def test_affine_coupling_keeps_conditioners_and_bounds_log_scale():
    bound = 0.7
    mask = torch.tensor([False, False, True, False, False])  # one coordinate: ladj = s
    layer = _randomise(AffineCoupling(mask, hidden=16, bound=bound), 1.0, seed=3)
    z = _points(256, 5, seed=4) * 3.0
    x, ladj = layer(z)
    assert torch.equal(x[:, ~mask], z[:, ~mask])
    assert ladj.abs().max() <= bound
    assert ladj.abs().max() > 0.5 * bound  # the network is far from zero: the bound is active
    assert (x[:, mask] - z[:, mask]).abs().max() > 0.1


def test_fresh_realnvp_flow_is_standard_normal():
    for coupling in ("affine", "additive"):
        flow = realnvp_flow(3, coupling, n_layers=4, seed=0)
        x = _points(10, 3, seed=5)
        expected = -0.5 * (x * x).sum(-1) - 1.5 * math.log(2 * math.pi)
        torch.testing.assert_close(flow.log_prob(x).detach(), expected, rtol=0, atol=1e-12)


def test_realnvp_flow_layers_and_seeding():
    flow = realnvp_flow(4, "additive", n_layers=3, hidden=8, seed=1)
    kinds = [type(t).__name__ for t in flow.transforms]
    assert kinds == ["AdditiveCoupling"] * 3 + ["Affine"]
    again = realnvp_flow(4, "additive", n_layers=3, hidden=8, seed=1)
    sa, sb = flow.state_dict(), again.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert len(realnvp_flow(4, scaling=False, n_layers=2).transforms) == 2


def test_errors():
    with pytest.raises(ValueError, match="mask"):
        AffineCoupling(torch.tensor([True, True]))
    with pytest.raises(ValueError, match="coupling"):
        realnvp_flow(2, "spline")
    with pytest.raises(ValueError, match="dim"):
        realnvp_flow(1)
    with pytest.raises(ValueError, match="scale"):
        AffineCoupling(MASK, scale="sigmoid")
