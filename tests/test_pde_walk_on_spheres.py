"""Walk on spheres against harmonic data and closed-form Poisson solutions."""

from __future__ import annotations

import pytest
import torch

from flowint.pde import Ball, Box, exact, sample_green_ball, walk_on_spheres

pytestmark = pytest.mark.usefixtures("float64_default")


def saddle(y: torch.Tensor) -> torch.Tensor:
    """``x₁² - x₂²``: harmonic in any dimension >= 2."""
    return y[:, 0] ** 2 - y[:, 1] ** 2


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_laplace_ball_harmonic_data(dim: int) -> None:
    ball = Ball(0.0, 1.0, dim=dim)
    gen = torch.Generator().manual_seed(dim)
    x = 0.8 * (torch.rand(4, dim, generator=gen) - 0.5)
    x[0, :2] = torch.tensor([0.6, -0.3])
    res = walk_on_spheres(x, ball, saddle, n_walks=4000, eps=1e-4, seed=1)
    assert (res.pull(saddle(x)).abs() < 5).all()
    assert res.mean_steps < 100  # grows like d log(1/eps)


def test_laplace_box_harmonic_data() -> None:
    box = Box(torch.tensor([-1.0, 0.0]), torch.tensor([2.0, 1.0]))

    def g(y: torch.Tensor) -> torch.Tensor:
        return torch.exp(y[:, 0]) * torch.sin(y[:, 1])

    x = torch.tensor([[0.0, 0.5], [1.5, 0.2], [-0.9, 0.9]])
    res = walk_on_spheres(x, box, g, n_walks=4000, seed=2)
    assert (res.pull(g(x)).abs() < 5).all()
    corner = box.closest(torch.tensor([[1.99, 0.5]]))
    assert torch.allclose(corner, torch.tensor([[2.0, 0.5]]))


@pytest.mark.parametrize("dim", [2, 3])
def test_poisson_unit_source(dim: int) -> None:
    """``Δu = -1``, ``u = 0`` on the unit sphere: ``u = (1 - ‖x‖²) / (2d)``."""
    ball = Ball(0.0, 1.0, dim=dim)
    x = torch.zeros(3, dim)
    x[:, 0] = torch.tensor([0.1, 0.5, 0.9])
    res = walk_on_spheres(x, ball, lambda y: torch.zeros(len(y)),
                          source=lambda y: torch.ones(len(y)), n_walks=4000, seed=3)
    assert (res.pull(exact.ball_poisson_unit_source(x)).abs() < 5).all()


@pytest.mark.parametrize("dim", [2, 3])
def test_poisson_radial_source(dim: int) -> None:
    """``u = (1 - ‖x‖²)²`` solves ``Δu = -(4d - 4(d+2)‖x‖²)``: tests the Green's sampler."""
    ball = Ball(0.0, 1.0, dim=dim)
    x = torch.zeros(3, dim)
    x[:, 0] = torch.tensor([0.0, 0.4, 0.8])

    def source(y: torch.Tensor) -> torch.Tensor:
        return 4 * dim - 4 * (dim + 2) * (y**2).sum(-1)

    res = walk_on_spheres(x, ball, lambda y: torch.zeros(len(y)), source=source,
                          n_walks=4000, seed=4, diagnose_source=True)
    want = (1 - (x**2).sum(-1)) ** 2
    assert (res.pull(want).abs() < 5).all()
    # started at the centre, the first jump reaches the sphere: all variance is from the source
    assert float(res.source_var[0]) > 0.9 * float(res.var[0])


@pytest.mark.parametrize("dim", [2, 3, 6])
def test_green_sampler_moments(dim: int) -> None:
    """Radii of the Green's density: ``E[ρ²] = d / (2(d+2))`` for every ``d``."""
    gen = torch.Generator().manual_seed(5)
    n = 40_000
    y = sample_green_ball(torch.zeros(n, dim), torch.full((n,), 2.0), gen)
    rho2 = (y**2).sum(-1) / 4.0
    want = dim / (2 * (dim + 2))
    assert abs(float(rho2.mean()) - want) < 5 * float(rho2.std()) / n**0.5
    assert float(y.norm(dim=-1).max()) <= 2.0


def test_first_ball_by_flow_removes_the_source_variance_at_the_centre() -> None:
    dim = 3
    ball = Ball(0.0, 1.0, dim=dim)
    x = torch.zeros(1, dim)

    def source(y: torch.Tensor) -> torch.Tensor:
        return 4 * dim - 4 * (dim + 2) * (y**2).sum(-1)

    res = walk_on_spheres(x, ball, lambda y: torch.zeros(len(y)), source=source, n_walks=2000,
                          seed=6, first_ball="flow", flow_budget=20_000)
    plain = walk_on_spheres(x, ball, lambda y: torch.zeros(len(y)), source=source,
                            n_walks=2000, seed=6)
    assert abs(float(res.pull(1.0)[0])) < 5
    assert float(res.sdev[0]) < 0.5 * float(plain.sdev[0])


def test_validation() -> None:
    ball = Ball(torch.tensor([1.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match="inside"):
        walk_on_spheres(torch.zeros(1, 2), ball, saddle)
    with pytest.raises(ValueError, match="first_ball"):
        walk_on_spheres(torch.ones(1, 2), ball, saddle, first_ball="kde")
    with pytest.raises(ValueError, match="lo < hi"):
        Box(1.0, 0.0, dim=2)
    with pytest.raises(ValueError, match="dim"):
        Ball(0.0, 1.0)
