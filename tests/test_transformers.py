"""Scalar monotone maps of R (transformers) and the elementwise flows of R^d (§3.5.1)."""

from __future__ import annotations

import pytest
import torch

from flowint.flows import ElementwiseReal, elementwise_flow, make_transformer

pytestmark = pytest.mark.usefixtures("float64_default")

REAL_KINDS = ["shift", "affine", "sinh_arcsinh", "rqs", "pwq", "pwl"]


def _theta(n_params: int, shape: tuple[int, ...], scale: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, n_params, generator=gen)


@pytest.mark.parametrize("kind", REAL_KINDS)
def test_identity_at_zero_parameters(kind: str):
    t = make_transformer(kind, bins=6) if kind in ("rqs", "pwq", "pwl") else make_transformer(kind)
    z = torch.linspace(-8.0, 8.0, 101)
    theta = torch.zeros(101, t.n_params)
    for fn in (t.forward, t.inverse):
        out, ladj = fn(z, theta)
        torch.testing.assert_close(out, z, rtol=0, atol=1e-12)
        torch.testing.assert_close(ladj, torch.zeros(101), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", REAL_KINDS)
def test_round_trip_monotone_and_log_derivative(kind: str):
    t = make_transformer(kind, bins=6) if kind in ("rqs", "pwq", "pwl") else make_transformer(kind)
    z = torch.linspace(-6.0, 6.0, 401).requires_grad_(True)
    theta = _theta(t.n_params, (), 0.7, seed=1).expand(401, -1)
    x, ladj = t.forward(z, theta)
    (dx,) = torch.autograd.grad(x.sum(), z)
    assert (torch.diff(x) > 0).all()
    torch.testing.assert_close(ladj, dx.log(), rtol=0, atol=1e-9)
    z_back, ladj_inv = t.inverse(x.detach(), theta)
    torch.testing.assert_close(z_back, z.detach(), rtol=0, atol=1e-9)
    torch.testing.assert_close(ladj_inv, -ladj.detach(), rtol=0, atol=1e-9)


def test_sinh_arcsinh_controls_skew_and_tails():
    t = make_transformer("sinh_arcsinh")
    z = torch.tensor([-10.0, 10.0])
    heavy, _ = t.forward(z, torch.tensor([0.0, -2.0]).expand(2, 2))  # delta < 1
    light, _ = t.forward(z, torch.tensor([0.0, 2.0]).expand(2, 2))  # delta > 1
    assert (heavy.abs() > 100.0).all() and (light.abs() < 2.0).all()
    torch.testing.assert_close(heavy, -heavy.flip(0), rtol=0, atol=0)  # symmetric without skew
    # eps shifts asinh(z): at z = 0 with delta = 1 the output is sinh(eps).
    x, _ = t.forward(torch.tensor([0.0]), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(x, torch.sinh(torch.tensor([1.0])), rtol=0, atol=1e-12)


def test_logit_spline_is_finite_far_out():
    t = make_transformer("rqs", bins=4)
    theta = _theta(t.n_params, (), 0.5, seed=2).expand(5, -1)
    x, ladj = t.forward(torch.tensor([-30.0, -5.0, 0.0, 5.0, 30.0]), theta)
    assert torch.isfinite(x).all() and torch.isfinite(ladj).all()
    assert (torch.diff(x) > 0).all()


@pytest.mark.parametrize("kind", ["affine", "sinh_arcsinh", "rqs"])
def test_elementwise_real_has_diagonal_jacobian(kind: str):
    layer = ElementwiseReal(3, kind, **({"bins": 5} if kind == "rqs" else {}))
    with torch.no_grad():
        layer.theta.normal_(generator=torch.Generator().manual_seed(3))
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(4))
    x, ladj = layer(z)
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0][0], z[i])
        assert torch.equal(jac, torch.diag(jac.diagonal()))
        torch.testing.assert_close(ladj[i], jac.diagonal().log().sum(), rtol=0, atol=1e-10)


def test_elementwise_flow_layers():
    assert [type(t).__name__ for t in elementwise_flow(2).transforms] == [
        "ElementwiseReal", "Affine"]
    assert [type(t).__name__ for t in elementwise_flow(2, "affine").transforms] == ["Affine"]
    cube = elementwise_flow(2, "rqs", domain="cube")
    assert cube.base.support == "cube"
    assert [type(t).__name__ for t in cube.transforms] == ["ElementwiseSpline"]


def test_errors():
    with pytest.raises(ValueError, match="maps R"):
        make_transformer("affine", "cube")
    with pytest.raises(ValueError, match="unknown transformer"):
        make_transformer("cubic")
    with pytest.raises(ValueError, match="domain"):
        make_transformer("rqs", "sphere")
    with pytest.raises(ValueError, match="spline"):
        elementwise_flow(2, "affine", domain="cube")
