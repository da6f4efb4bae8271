"""Feynman–Kac solutions against the closed forms (heat equation, geometric basket call)."""

from __future__ import annotations

import math

import pytest
import torch

from flowint.pde import FeynmanKac, exact, feynman_kac, geometric_basket_call

pytestmark = pytest.mark.usefixtures("float64_default")

#: small flows and explicit batching: fast, and independent of the integrator's defaults
FAST = {"batch_size": 2000, "steps_per_batch": 2, "progress": False}
TINY_FLOW = {"hidden": 8, "bins": 8, "n_layers": 2}


def gaussian(s: float):
    return lambda y: torch.exp(-(y**2).sum(-1) / s**2)


def test_paraboloid_d100() -> None:
    d, t = 100, 0.5
    x = torch.linspace(-1.0, 1.0, d)
    res = feynman_kac(lambda y: (y**2).sum(-1), t, x, budget=12_000, n_train=2000, seed=0,
                      flow_options=TINY_FLOW, **FAST)
    assert abs(res.pull(exact.heat_paraboloid(t, x))) < 5
    assert res.rel_error < 0.01


def test_paraboloid_with_drift_and_diffusion() -> None:
    t, D = 0.3, 0.7
    b = torch.tensor([0.5, -1.0, 0.0, 2.0, 0.1])
    x = torch.tensor([0.2, 0.1, -0.3, 0.0, 1.0])
    res = feynman_kac(lambda y: (y**2).sum(-1), t, x, diffusion=D, drift=b, budget=20_000,
                      n_train=6000, seed=1, **FAST)
    want = exact.heat_paraboloid(t, x, diffusion=D, drift=b)
    assert abs(res.pull(want)) < 5
    # the drift and the diffusion matter: the exact value without them is far off
    assert abs(res.mean - exact.heat_paraboloid(t, x)) > 20 * res.sdev


@pytest.mark.parametrize("offset", [0.2, 0.8])
def test_gaussian_d10_near_and_rare(offset: float) -> None:
    """``x`` near the bump, and far from it (u ≈ 1.9e-6: plain Monte Carlo has a relative
    variance per sample of 1.6e4 there)."""
    d, t, s = 10, 0.25, 0.5
    x = torch.full((d,), offset)
    want = exact.heat_gaussian(t, x, s)
    res = feynman_kac(gaussian(s), t, x, budget=40_000, n_train=20_000, seed=2,
                      **{**FAST, "batch_size": 4000})
    assert abs(res.pull(want)) < 5
    assert res.rel_error < 0.05
    assert res.rel_std < 5  # plain Monte Carlo: 125 (rare) / 2.3 (near)


def test_gaussian_correlated_diffusion() -> None:
    d, t, s = 6, 0.2, 0.6
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(d, d, generator=gen)
    a = 0.5 * (m @ m.T / d + 0.5 * torch.eye(d))  # positive definite, correlated
    x = torch.full((d,), 0.4)
    fk = FeynmanKac(gaussian(s), d, diffusion=a, drift=0.3, seed=3, **FAST)
    res = fk.solve(t, x, 40_000, n_train=20_000)
    want = exact.heat_gaussian(t, x, s, diffusion=a, drift=0.3)
    assert abs(res.pull(want)) < 5
    assert res.rel_error < 0.05


def test_geometric_basket_call_d100() -> None:
    want = exact.geometric_basket_call_price(100, sigma=0.2, rho=0.0)
    assert abs(want - 2.97185) < 1e-5
    res = geometric_basket_call(100, sigma=0.2, rho=0.0, budget=12_000, n_train=2000, seed=4,
                                flow_options=TINY_FLOW, **FAST)
    assert abs(res.pull(want)) < 5
    assert res.rel_error < 0.03


def test_geometric_basket_call_correlated() -> None:
    d = 8
    sig = torch.linspace(0.1, 0.4, d)
    want = exact.geometric_basket_call_price(d, sigma=sig, rho=0.5, S0=100.0, K=105.0)
    res = geometric_basket_call(d, sigma=sig, rho=0.5, K=105.0, budget=30_000, n_train=10_000,
                                seed=5, **FAST)
    assert abs(res.pull(want)) < 5


def test_warm_started_path_is_correct() -> None:
    d, t, s = 4, 0.1, 0.5
    pts = torch.stack([torch.full((d,), v) for v in (0.6, 0.65, 0.7)])
    fk = FeynmanKac(gaussian(s), d, seed=6, **FAST)
    sol = fk.solve_path(t, pts, rtol=0.01, warm_start=True, max_evals=200_000)
    want = torch.tensor([exact.heat_gaussian(t, p, s) for p in pts])
    pulls = (sol.values - want) / sol.errors
    assert (pulls.abs() < 5).all()
    assert (sol.errors / sol.values < 0.0101).all()
    assert sol.n_evals == sum(r.n_evals for r in sol.results)


def test_validation() -> None:
    with pytest.raises(ValueError, match="t must be"):
        FeynmanKac(gaussian(1.0), 2).integrand(0.0, torch.zeros(2))
    with pytest.raises(ValueError, match="positive"):
        FeynmanKac(gaussian(1.0), 2, diffusion=-1.0)
    with pytest.raises(ValueError, match="diffusion must be"):
        FeynmanKac(gaussian(1.0), 2, diffusion=torch.ones(3, 3))
    f = FeynmanKac(gaussian(1.0), 2).integrand(1.0, torch.zeros(2))
    corners = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert torch.isfinite(f(corners)).all()  # y = 0 and 1 are clamped
    assert math.isclose(exact.heat_paraboloid(0.5, torch.zeros(3)), 3.0)
