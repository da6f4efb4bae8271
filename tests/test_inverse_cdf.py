"""Inverse-CDF sampling of 1-D densities (lecture notes §3.2): KS tests against scipy, the CDF
and its inverse, the density, and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import quad

from flowint.flows import InverseCDF

pytestmark = pytest.mark.usefixtures("float64_default")

#: Two-sided p-value of a 5 sigma deviation: a correct sampler fails about never.
P_5SIGMA = math.erfc(5.0 / math.sqrt(2.0))
N_SAMPLES = 20_000


class _Bimodal:
    """An equal-weight mixture of two normals, truncated to [-4, 5]."""

    a, b = -4.0, 5.0
    parts = (stats.norm(-1.5, 0.6), stats.norm(2.0, 1.0))

    def _raw_cdf(self, x):
        return 0.5 * (self.parts[0].cdf(x) + self.parts[1].cdf(x))

    def pdf(self, x):
        inside = (x >= self.a) & (x <= self.b)
        raw = 0.5 * (self.parts[0].pdf(x) + self.parts[1].pdf(x))
        return np.where(inside, raw / (self._raw_cdf(self.b) - self._raw_cdf(self.a)), 0.0)

    def cdf(self, x):
        lo, hi = self._raw_cdf(self.a), self._raw_cdf(self.b)
        return np.clip((self._raw_cdf(x) - lo) / (hi - lo), 0.0, 1.0)


def _targets() -> dict:
    bimodal = _Bimodal()
    truncnorm = stats.truncnorm(-1.0, 2.5, loc=0.5, scale=1.2)
    beta = stats.beta(2.0, 5.0)
    return {
        # name: (unnormalised density, a, b, reference cdf)
        "truncated-normal": (lambda x: np.exp(-0.5 * ((x - 0.5) / 1.2) ** 2),
                             *truncnorm.support(), truncnorm.cdf),
        "beta-2-5": (beta.pdf, 0.0, 1.0, beta.cdf),
        "bimodal-mixture": (lambda x: 3.0 * bimodal.pdf(x), bimodal.a, bimodal.b, bimodal.cdf),
    }


TARGETS = _targets()


@pytest.mark.parametrize("name", list(TARGETS))
def test_samples_pass_ks_test(name: str):
    density, a, b, cdf = TARGETS[name]
    sampler = InverseCDF(density, a, b)
    x, log_q = sampler.sample(N_SAMPLES, seed=1)
    assert x.shape == log_q.shape == (N_SAMPLES,)
    assert ((x >= a) & (x <= b)).all()
    assert stats.kstest(x.numpy(), cdf).pvalue > P_5SIGMA


@pytest.mark.parametrize("name", list(TARGETS))
def test_ks_test_rejects_a_wrong_sampler(name: str):
    """The same threshold catches a sampler of a density tilted by up to 60%."""
    density, a, b, cdf = TARGETS[name]
    width = b - a
    wrong = InverseCDF(lambda x: density(x) * (1.0 + 0.6 * (x - a) / width), a, b)
    x, _ = wrong.sample(N_SAMPLES, seed=1)
    assert stats.kstest(x.numpy(), cdf).pvalue < P_5SIGMA


@pytest.mark.parametrize("name", list(TARGETS))
def test_cdf_ppf_and_density_match_the_target(name: str):
    density, a, b, cdf = TARGETS[name]
    sampler = InverseCDF(density, a, b)
    grid = np.linspace(a, b, 2001)
    np.testing.assert_allclose(sampler.cdf(grid), cdf(grid), rtol=0, atol=1e-6)
    u = np.linspace(0.0, 1.0, 1001)
    np.testing.assert_allclose(sampler.cdf(sampler.ppf(u)), u, rtol=0, atol=1e-12)
    norm, _ = quad(density, a, b, limit=200)
    assert sampler.norm == pytest.approx(norm, rel=1e-5)
    inner = grid[1:-1]
    np.testing.assert_allclose(sampler.pdf(inner), density(inner) / norm, rtol=1e-3, atol=1e-6)


def test_log_prob_is_consistent_and_normalised():
    density, a, b, _ = TARGETS["bimodal-mixture"]
    sampler = InverseCDF(density, a, b, n_grid=512)
    x, log_q = sampler.sample(1000, seed=2)
    torch.testing.assert_close(sampler.log_prob(x), log_q, rtol=0, atol=1e-10)
    # The sampler's density is piecewise linear between nodes: the trapezoid rule on the
    # nodes integrates it exactly.
    nodes = np.linspace(a, b, 513)
    assert np.trapezoid(sampler.pdf(nodes), nodes) == pytest.approx(1.0, abs=1e-12)
    assert np.isneginf(sampler.log_prob(np.array([a - 1.0, b + 1.0]))).all()
    assert sampler.cdf(a - 1.0) == 0.0 and sampler.cdf(b + 1.0) == 1.0


def test_as_bijection_and_flow():
    density, a, b, _ = TARGETS["beta-2-5"]
    sampler = InverseCDF(density, a, b, n_grid=256)
    u = torch.rand(100, 1, generator=torch.Generator().manual_seed(3))
    x, ladj = sampler(u)
    u_back, ladj_inv = sampler.inverse(x)
    torch.testing.assert_close(u_back, u, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=0, atol=1e-9)
    flow = sampler.flow()
    y, log_q = flow.sample(100, seed=4)
    torch.testing.assert_close(flow.log_prob(y), log_q, rtol=0, atol=1e-9)
    torch.testing.assert_close(log_q, sampler.log_prob(y[:, 0]), rtol=0, atol=1e-9)


def test_zero_density_regions_get_no_samples_and_explicit_points_are_used():
    step = InverseCDF(lambda x: (x > 0.5) * 2.0, 0.0, 1.0, points=np.linspace(0, 1, 11))
    assert step.spline.bins == 10
    x, _ = step.sample(5000, seed=5)
    # The interpolant ramps up over the cell [0.4, 0.5] holding the jump; nothing below it.
    assert (x >= 0.4).all()
    assert step.log_prob(0.2) < math.log(1e-11)


def test_seeding_and_constant_density():
    sampler = InverseCDF(lambda x: 1.0, -1.0, 3.0)
    a, _ = sampler.sample(10, seed=7)
    b, _ = sampler.sample(10, seed=7)
    assert torch.equal(a, b)
    np.testing.assert_allclose(sampler.ppf(np.array([0.25, 0.5])), [0.0, 1.0], atol=1e-12)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="a < b"):
        InverseCDF(lambda x: x, 1.0, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        InverseCDF(lambda x: x, -1.0, 1.0)
    with pytest.raises(ValueError, match="finite"), np.errstate(divide="ignore"):
        InverseCDF(lambda x: 1.0 / x, 0.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        InverseCDF(lambda x: np.ones(3), 0.0, 1.0)
    with pytest.raises(ValueError, match="no mass"):
        InverseCDF(lambda x: 0.0 * x, 0.0, 1.0)
    with pytest.raises(ValueError, match="points"):
        InverseCDF(lambda x: x, 0.0, 1.0, points=[0.0, 0.7, 0.5, 1.0])
    with pytest.raises(ValueError, match="points must run"):
        InverseCDF(lambda x: x, 0.0, 1.0, points=[0.1, 0.5, 1.0])
