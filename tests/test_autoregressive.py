"""Autoregressive flows (lecture notes §3.5): MADE masks, triangular Jacobians, and the number of
conditioner passes in each direction (MAF: density in one, sampling in d; IAF: the reverse)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from flowint.flows import IAF, MADE, MAF, iaf_flow, load_flow, maf_flow

pytestmark = pytest.mark.usefixtures("float64_default")

ORDERS = {"identity": [0, 1, 2, 3, 4], "reversed": [4, 3, 2, 1, 0], "mixed": [2, 0, 4, 1, 3]}


def _randomise(module: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Set every parameter to ``scale * N(0, 1)`` noise: seeded, whatever the initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return module


def _points(n: int, dim: int, domain: str, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if domain == "cube":
        return torch.rand(n, dim, generator=gen)
    return torch.randn(n, dim, generator=gen)


def _rank(order: list[int]) -> torch.Tensor:
    """Position of every coordinate in the order."""
    return torch.argsort(torch.tensor(order))


@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("order", list(ORDERS), ids=list(ORDERS))
def test_made_output_i_sees_exactly_the_earlier_inputs(order: str, depth: int):
    # tanh: no unit is inactive at the test point, so every allowed path shows in the Jacobian.
    made = MADE(5, n_params=2, hidden=12, depth=depth, activation="tanh", order=ORDERS[order])
    made = _randomise(made, 0.5, 0)
    x = torch.randn(5)
    jac = jacobian(lambda v: made(v.unsqueeze(0))[0], x)  # (dim, n_params, dim)
    depends = (jac != 0).any(1)  # depends[i, j]: some output of coordinate i sees input j
    rank = _rank(ORDERS[order])
    allowed = rank[:, None] > rank[None, :]
    assert torch.equal(depends, allowed)  # never a later input, and every earlier one


@pytest.mark.parametrize("cls", [MAF, IAF])
@pytest.mark.parametrize(("transformer", "domain"), [("affine", "real"), ("rqs", "real"),
                                                     ("rqs", "cube"), ("pwq", "cube")])
def test_jacobian_is_triangular_in_the_order(cls, transformer: str, domain: str):
    order = ORDERS["mixed"]
    kw = {"bins": 5} if transformer != "affine" else {}
    layer = _randomise(cls(5, transformer, domain, hidden=16, order=order, **kw), 0.1, 1)
    rank = _rank(order)
    later = rank[None, :] > rank[:, None]  # entry (i, j): x_i w.r.t. a later z_j
    for direction in (layer.forward, layer.inverse):
        pts = _points(3, 5, domain, seed=2)
        _, ladj = direction(pts)
        for p, ladj_p in zip(pts, ladj, strict=True):
            jac = jacobian(lambda v, f=direction: f(v.unsqueeze(0))[0][0], p)
            assert torch.equal(jac[later], torch.zeros_like(jac[later]))
            assert (jac[~later & (rank[None, :] < rank[:, None])] != 0).any()  # not diagonal
            torch.testing.assert_close(ladj_p, jac.diagonal().abs().log().sum(), rtol=0,
                                       atol=1e-9)


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_maf_density_in_one_pass_sampling_in_dim_passes(dim: int):
    maf = _randomise(MAF(dim, "rqs", hidden=8, bins=4), 0.1, 3)
    x = _points(16, dim, "real", seed=4)
    maf.made.n_calls = 0
    z, _ = maf.inverse(x)
    assert maf.made.n_calls == 1
    x_back, _ = maf.forward(z)
    assert maf.made.n_calls == 1 + dim
    assert (x_back - x).abs().max() < 1e-10


@pytest.mark.parametrize("dim", [1, 2, 5])
def test_iaf_sampling_in_one_pass_density_in_dim_passes(dim: int):
    iaf = _randomise(IAF(dim, "affine", hidden=8), 0.1, 5)
    z = _points(16, dim, "real", seed=6)
    iaf.made.n_calls = 0
    x, _ = iaf.forward(z)
    assert iaf.made.n_calls == 1
    z_back, _ = iaf.inverse(x)
    assert iaf.made.n_calls == 1 + dim
    assert (z_back - z).abs().max() < 1e-10


def test_flow_passes_add_up_over_layers():
    n_layers, dim = 3, 4
    for build, fast in ((maf_flow, "log_prob"), (iaf_flow, "sample")):
        flow = build(dim, "affine", n_layers=n_layers, hidden=8, seed=0)
        x, _ = flow.sample(10, seed=1)
        calls_sample = sum(t.made.n_calls for t in flow.transforms)
        flow.log_prob(x)
        calls_density = sum(t.made.n_calls for t in flow.transforms) - calls_sample
        one, many = (calls_density, calls_sample) if fast == "log_prob" else (calls_sample,
                                                                                calls_density)
        assert (one, many) == (n_layers, n_layers * dim), build.__name__


@pytest.mark.parametrize(("build", "transformer", "domain"), [
    (maf_flow, "affine", "real"), (maf_flow, "rqs", "cube"), (iaf_flow, "sinh_arcsinh", "real"),
    (iaf_flow, "rqs", "real"), (iaf_flow, "pwl", "cube"),
])
def test_round_trips_and_log_prob_of_samples(build, transformer: str, domain: str):
    flow = _randomise(build(3, transformer, n_layers=2, hidden=16, domain=domain, bins=5,
                            seed=7), 0.05, 8)
    x, log_q = flow.sample(200, seed=9)
    torch.testing.assert_close(flow.log_prob(x), log_q, rtol=0, atol=1e-9)
    z, _ = flow.inverse(x)
    x_back, _ = flow(z)
    assert (x_back - x).abs().max() < 1e-10
    if domain == "cube":
        assert flow.base.support == "cube" and ((x >= 0) & (x <= 1)).all()


def test_fresh_layers_are_identity():
    for layer, domain in ((MAF(3), "real"), (IAF(3, "rqs"), "real"),
                          (MAF(3, "pwq", "cube"), "cube")):
        layer = layer.double()
        pts = _points(20, 3, domain, seed=10)
        for fn in (layer.forward, layer.inverse):
            out, ladj = fn(pts)
            torch.testing.assert_close(out, pts, rtol=0, atol=1e-12)
            torch.testing.assert_close(ladj, torch.zeros(20), rtol=0, atol=1e-12)


def test_save_load_round_trip(tmp_path):
    flow = _randomise(maf_flow(3, "rqs", n_layers=2, hidden=8, domain="cube", seed=1), 0.1, 2)
    flow.save(tmp_path / "maf.pt")
    loaded = load_flow(tmp_path / "maf.pt")
    x = _points(12, 3, "cube", seed=3)
    torch.testing.assert_close(loaded.log_prob(x), flow.log_prob(x), rtol=0, atol=0)
    assert [t.made.order.tolist() for t in loaded.transforms] == [[0, 1, 2], [2, 1, 0]]


def test_errors():
    with pytest.raises(ValueError, match="permutation"):
        MADE(3, 2, order=[0, 1, 1])
    with pytest.raises(ValueError, match="maps R"):
        MAF(3, "affine", "cube")
    with pytest.raises(ValueError, match="spline"):
        maf_flow(3, "affine", domain="cube")
    with pytest.raises(ValueError, match="activation"):
        MADE(3, 2, activation="sine")
