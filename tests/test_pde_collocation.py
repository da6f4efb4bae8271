"""Adaptive collocation: points in the box, unbiased weights, concentration, defensive share."""

from __future__ import annotations

import math

import pytest
import torch

from flowint.pde import AdaptiveCollocation

pytestmark = pytest.mark.usefixtures("float64_default")

SMALL = {"hidden": 16, "bins": 8}


def peak(center: float, width: float):
    def r(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((x - center) ** 2).sum(-1) / (2 * width**2))

    return r


def trained(dim: int, bounds, *, k: float = 2.0, c: float = 0.0, mode: str = "replace",
            n_evals: int = 16_000, seed: int = 0) -> AdaptiveCollocation:
    col = AdaptiveCollocation(dim, bounds, k=k, c=c, mode=mode, seed=seed, dtype=torch.float64,
                              flow_options=SMALL, batch_size=2000)
    col.fit(peak(0.3, 0.15), n_evals)
    return col


@pytest.mark.parametrize("dim", [1, 3, 6])
@pytest.mark.parametrize("mode", ["replace", "add"])
def test_points_inside_box(dim: int, mode: str) -> None:
    lo, hi = -1.0, 2.0
    col = trained(dim, (lo, hi), c=0.1, mode=mode, n_evals=4000)
    x, w = col.sample(500, seed=1)
    x, w = col.sample(300, seed=2)
    n_expected = 300 if mode == "replace" else 800
    assert x.shape == (n_expected, dim) and w.shape == (n_expected,)
    assert x.dtype == torch.float64 and w.dtype == torch.float64
    assert (x >= lo).all() and (x <= hi).all()
    assert torch.isfinite(w).all() and (w > 0).all()


def _known_integral() -> tuple[callable, float, list[tuple[float, float]]]:
    """g = Σ x_i² + x_0 x_1 on [-1, 2] x [0, 1] x [-0.5, 0.5] and its exact integral."""
    bounds = [(-1.0, 2.0), (0.0, 1.0), (-0.5, 0.5)]

    def g(x: torch.Tensor) -> torch.Tensor:
        return (x**2).sum(-1) + x[:, 0] * x[:, 1]

    vol = 3.0 * 1.0 * 1.0
    mean_sq = [(b**3 - a**3) / (3 * (b - a)) for a, b in bounds]
    exact = vol * (sum(mean_sq) + 0.5 * 0.5)
    return g, exact, bounds


@pytest.mark.parametrize("c", [0.0, 0.3])
def test_replace_weights_unbiased(c: float) -> None:
    g, exact, bounds = _known_integral()
    col = AdaptiveCollocation(3, bounds, k=2, c=c, seed=3, dtype=torch.float64,
                              flow_options=SMALL, batch_size=2000)
    col.fit(peak(0.3, 0.3), 10_000)
    n = 40_000
    x, w = col.sample(n, seed=4)
    terms = n * w * g(x)  # i.i.d. g/q
    est, err = float(terms.mean()), float(terms.std()) / math.sqrt(n)
    assert abs(float((w * g(x)).sum()) - est) < 1e-9 * abs(est)
    assert abs(est - exact) < 5 * err


def test_add_mode_balance_heuristic_unbiased() -> None:
    g, exact, bounds = _known_integral()
    col = AdaptiveCollocation(3, bounds, k=2, c=0.2, mode="add", seed=5, dtype=torch.float64,
                              flow_options=SMALL, batch_size=2000)
    n1, n2 = 20_000, 30_000
    col.sample(n1, seed=6)  # stage 1: the untrained (uniform) flow
    col.fit(peak(0.5, 0.2), 10_000)
    x, w = col.sample(n2, seed=7)  # stage 2: trained flow, balance weights over both
    assert x.shape[0] == n1 + n2
    terms = w * g(x)
    est = float(terms.sum())
    # stages are independent, points i.i.d. within a stage
    var = sum(float(t.var()) * t.shape[0] for t in (terms[:n1], terms[n1:]))
    assert abs(est - exact) < 5 * math.sqrt(var)
    # the balance weights equal 1 / Σ_j n_j q_j(x)
    q2 = col.density(x)
    q1 = torch.full_like(q2, 1.0 / 3.0)  # stage 1 was uniform on a box of volume 3
    assert torch.allclose(w, 1.0 / (n1 * q1 + n2 * q2), rtol=1e-6)


def test_memory_keeps_earlier_peak_and_stays_unbiased() -> None:
    """memory = m: the sample mixes the current flow (1 - m) with the previous sample's flows."""
    opts = {"k": 2, "c": 0.2, "seed": 13, "dtype": torch.float64, "flow_options": SMALL,
            "batch_size": 1000, "steps_per_batch": 16}
    col = AdaptiveCollocation(2, (-1.0, 1.0), memory=0.5, **opts)
    col.fit(peak(0.5, 0.1), 10_000)
    col.sample(100, seed=14)            # stage 1: the flow on the peak at (0.5, 0.5)
    col.fit(peak(-0.5, 0.1), 10_000)    # the residual moved to (-0.5, -0.5)
    assert len(col.components()) == 2
    n = 40_000
    x, w = col.sample(n, seed=15)
    near_old = float(((x - 0.5).norm(dim=-1) < 0.25).double().mean())
    near_new = float(((x + 0.5).norm(dim=-1) < 0.25).double().mean())
    assert near_old > 0.3 and near_new > 0.15  # both peaks hold a large share of the points
    # weights 1/(n q) with q the whole mixture: Σ w g unbiased for ∫ g
    g = (x**2).sum(-1) + x[:, 0] * x[:, 1]
    terms = n * w * g
    est, err = float(terms.mean()), float(terms.std()) / math.sqrt(n)
    assert abs(est - 8.0 / 3.0) < 5 * err  # ∫_[-1,1]^2 (x² + y² + xy) = 8/3
    assert torch.allclose(w, 1.0 / (n * col.density(x)), rtol=1e-6)
    floor = 0.2 / 4.0
    assert float(col.density(x).min()) >= floor * (1 - 1e-12)
    # without memory the old peak is dropped
    col0 = AdaptiveCollocation(2, (-1.0, 1.0), **opts)
    col0.fit(peak(0.5, 0.1), 10_000)
    col0.sample(100, seed=14)
    col0.fit(peak(-0.5, 0.1), 10_000)
    x0, _ = col0.sample(n, seed=15)
    assert float(((x0 - 0.5).norm(dim=-1) < 0.25).double().mean()) < 0.5 * near_old


def test_concentrates_where_residual_is_large() -> None:
    col = trained(2, (-1.0, 1.0), k=2, c=0.0, n_evals=20_000, seed=8)
    x, _ = col.sample(4000, seed=9)
    near = ((x - 0.3).norm(dim=-1) < 0.3).double().mean()
    uniform_share = math.pi * 0.3**2 / 4.0
    assert near > 0.8 > 5 * uniform_share
    assert col.density(torch.tensor([[0.3, 0.3]])) > 20 * col.density(torch.tensor([[-0.8, -0.8]]))
    # the estimate of ∫ r² converges: the per-sample spread dropped with training
    assert col.history[-1].rel_std < 0.3 * col.history[0].rel_std


@pytest.mark.parametrize("c", [0.05, 0.5])
def test_defensive_share_bounds_density(c: float) -> None:
    lo, hi = -2.0, 1.0
    col = trained(3, (lo, hi), k=2, c=c, n_evals=8000, seed=10)
    gen = torch.Generator().manual_seed(11)
    x = lo + (hi - lo) * torch.rand(20_000, 3, generator=gen, dtype=torch.float64)
    q = col.density(x)
    floor = c / (hi - lo) ** 3
    assert (q >= floor * (1 - 1e-12)).all()
    # and the share is real: far from the peak q sits at about the floor
    assert float(q.min()) < 3 * floor
    # a share c of the sampled points is uniform, so at least c·P_uniform(far) land far away
    xs, _ = col.sample(20_000, seed=12)
    far = float(((xs - 0.3).norm(dim=-1) > 1.0).double().mean())
    box_far = float(((x - 0.3).norm(dim=-1) > 1.0).double().mean())
    assert far > c * box_far - 5 * math.sqrt(c * box_far / 20_000)


def test_seeded_and_validated() -> None:
    a = trained(2, None, n_evals=2000, seed=1).sample(10, seed=2)[0]
    b = trained(2, None, n_evals=2000, seed=1).sample(10, seed=2)[0]
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="c must be"):
        AdaptiveCollocation(2, c=1.5)
    with pytest.raises(ValueError, match="mode"):
        AdaptiveCollocation(2, mode="keep")
    with pytest.raises(ValueError, match="k must"):
        AdaptiveCollocation(2, k=-1)
    with pytest.raises(ValueError, match="memory"):
        AdaptiveCollocation(2, memory=1.0)
    with pytest.raises(ValueError, match="memory"):
        AdaptiveCollocation(2, mode="add", memory=0.5)
    col = AdaptiveCollocation(2, seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        col.fit(lambda x: x[:, 0] / 0.0 * 0.0, 100)
    with pytest.raises(ValueError, match="values for"):
        col.fit(lambda x: x[:3, 0], 100)
    assert "AdaptiveCollocation(dim=2" in repr(col)
