"""Weighted and unweighted samples from the frozen flow, and their export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import flowint
from flowint.sampling import (
    load_npz,
    save_npz,
    unweight,
    unweighted_samples,
    weighted_samples,
)

MU, SIGMA = (0.3, 0.6), 0.15
MARGINAL = stats.truncnorm((0 - MU[0]) / SIGMA, (1 - MU[0]) / SIGMA, loc=MU[0], scale=SIGMA)
EXACT = math.prod(SIGMA * math.sqrt(2 * math.pi) * (stats.norm.cdf((1 - m) / SIGMA)
                                                    - stats.norm.cdf(-m / SIGMA)) for m in MU)
SMALL = dict(batch_size=2000, progress=False, flow_options={"hidden": 16})


def target(x: torch.Tensor) -> torch.Tensor:
    """An off-centre Gaussian bump on the unit square (maximum 1 at (0.3, 0.6))."""
    mu = torch.tensor(MU, dtype=x.dtype, device=x.device)
    return torch.exp(-((x - mu) ** 2).sum(-1) / (2 * SIGMA**2))


@pytest.fixture(scope="module")
def trained() -> flowint.Integrator:
    integ = flowint.Integrator(2, seed=0, **SMALL)
    integ.train(target, 20_000)
    return integ


def follows_target(x: torch.Tensor) -> None:
    """The x_0 marginal of unit-weight samples against the exact truncated normal, at 5σ."""
    x0 = x[:, 0].cpu().numpy()
    n = len(x0)
    assert abs(x0.mean() - MARGINAL.mean()) < 5 * MARGINAL.std() / math.sqrt(n)
    edges = np.linspace(0, 1, 11)
    expected = n * np.diff(MARGINAL.cdf(edges))
    counts, _ = np.histogram(x0, edges)
    keep = expected > 5
    chi2 = float((((counts - expected) ** 2 / expected)[keep]).sum())
    dof = int(keep.sum()) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof)


@pytest.mark.parametrize("which", ["untrained", "trained"])
def test_unweighted_samples_follow_the_target(which, trained):
    integ = trained if which == "trained" else flowint.Integrator(2, seed=0, **SMALL)
    s = unweighted_samples(integ, target, 4000, seed=1)
    assert len(s) == 4000 and s.x.shape == (4000, 2)
    follows_target(s.x)
    # Efficiency: kept per try, binomially distributed about ∫f / w_max.
    p = EXACT / s.max_weight
    assert abs(s.efficiency - p) < 5 * math.sqrt(p * (1 - p) / s.n_tried)
    # The calibrated maximum leaves (almost) no overweights.
    assert s.overweight_fraction < 0.01 and s.overweight_share < 0.01
    sigma = math.sqrt(max(s.max_weight * EXACT - EXACT**2, 0) / s.n_tried)
    assert abs(s.integral - EXACT) < 5 * sigma + 1e-12


def test_training_raises_the_efficiency(trained):
    untrained = unweighted_samples(flowint.Integrator(2, seed=0, **SMALL), target, 1000, seed=1)
    good = unweighted_samples(trained, target, 1000, seed=1)
    assert good.efficiency > 2 * untrained.efficiency


def test_reduced_maximum_reports_overweights(trained):
    s = unweighted_samples(trained, target, 4000, seed=2, quantile=0.9)
    full = unweighted_samples(trained, target, 4000, seed=2)
    assert s.max_weight < full.max_weight and s.efficiency > full.efficiency
    assert 0 < s.overweight_fraction < 1 and 0 < s.overweight_share < 0.2
    assert (s.weights >= 1).all() and (s.weights > 1).any()
    # With their weights the points still follow the target: weighted mean of x_0 at 5σ.
    w = s.weights.cpu().numpy()
    x0 = s.x[:, 0].cpu().numpy()
    mean = (w * x0).sum() / w.sum()
    n_eff = w.sum() ** 2 / (w * w).sum()
    assert abs(mean - MARGINAL.mean()) < 5 * MARGINAL.std() / math.sqrt(n_eff)


def test_signed_integrand_keeps_signs():
    """f = x - 0.3 on [0, 1]: 15.5 % of |f| is negative; kept points carry sign(f)."""
    integ = flowint.Integrator(1, seed=0, **SMALL)
    s = unweighted_samples(integ, lambda x: x[:, 0] - 0.3, 3000, seed=3)
    signs = torch.sign(s.x[:, 0] - 0.3)
    assert torch.equal(torch.sign(s.weights), signs)
    share = 0.045 / 0.29
    frac = float((s.weights < 0).double().mean())
    assert abs(frac - share) < 5 * math.sqrt(share * (1 - share) / len(s))


def test_weighted_samples_in_a_box():
    """On [0, 2] x [-1, 1] the weights estimate the integral over the box."""
    integ = flowint.Integrator(2, [(0, 2), (-1, 1)], seed=0, **SMALL)
    s = weighted_samples(integ, lambda x: x[:, 0] ** 2, 20_000, seed=4)
    assert (s.x[:, 0] >= 0).all() and (s.x[:, 0] <= 2).all() and (s.x[:, 1] >= -1).all()
    exact = 8 / 3 * 2
    sdev = float(s.weights.std()) / math.sqrt(len(s.weights))
    assert abs(s.integral - exact) < 5 * sdev
    assert 0 < s.efficiency <= 1


def test_vector_integrand_component():
    integ = flowint.Integrator(2, seed=0, **SMALL)
    both = lambda x: torch.stack([target(x), 1 - x[:, 0]], -1)  # noqa: E731
    s = unweighted_samples(integ, both, 500, seed=5, component=0)
    follows_target(s.x)
    with pytest.raises(ValueError, match="components"):
        weighted_samples(integ, both, 10, component=2)


def test_unweight_given_weights():
    x = torch.linspace(0, 1, 10_001, dtype=torch.float64).unsqueeze(-1)
    s = unweight(x, 2 * x[:, 0], seed=6)  # density ∝ x on [0, 1]: mean 2/3
    assert s.max_weight == 2.0 and s.n_tried == 10_001
    assert abs(float(s.x.mean()) - 2 / 3) < 5 * math.sqrt(1 / 18 / len(s))
    assert abs(s.efficiency - 0.5) < 5 * math.sqrt(0.25 / 10_001)


def test_errors():
    integ = flowint.Integrator(2, seed=0, **SMALL)
    with pytest.raises(RuntimeError, match="max_tries"):
        unweighted_samples(integ, target, 100, max_weight=1e6, max_tries=5000)
    with pytest.raises(ValueError, match="not both"):
        unweighted_samples(integ, target, 10, max_weight=1.0, quantile=0.9)
    with pytest.raises(ValueError, match="zero everywhere"):
        unweighted_samples(integ, lambda x: 0 * x[:, 0], 10, calibration=100)
    with pytest.raises(ValueError, match="quantile"):
        unweight(torch.rand(5, 1), torch.rand(5), quantile=1.5)


def test_npz_round_trip(tmp_path):
    integ = flowint.Integrator(2, seed=0, **SMALL)
    s = unweighted_samples(integ, target, 200, seed=7)
    path = s.save(tmp_path / "events.dat", integrand="bump", seed=7)
    assert path.name == "events.dat" and [p.name for p in tmp_path.iterdir()] == ["events.dat"]
    data = load_npz(path)
    np.testing.assert_array_equal(data["x"], s.x.numpy())
    np.testing.assert_array_equal(data["weights"], s.weights.numpy())
    assert data["integrand"] == "bump" and data["seed"] == 7
    assert float(data["efficiency"]) == s.efficiency
    with pytest.raises(ValueError, match="clashes"):
        save_npz(tmp_path / "b.npz", s.x, s.weights, x=1)
    with pytest.raises(TypeError, match="pickle"):
        save_npz(tmp_path / "b.npz", s.x, meta={"a": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampling_stays_on_cuda():
    integ = flowint.Integrator(2, seed=0, device="cuda", **SMALL)
    integ.train(target, 4000)
    s = unweighted_samples(integ, target, 500, seed=8)
    assert s.x.device.type == "cuda" and s.weights.device.type == "cuda"
    follows_target(s.x)
