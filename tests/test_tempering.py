"""Tempered training: the flow learns |f|^beta with beta rising to 1 (the ``temper`` setting)."""

from __future__ import annotations

import math

import pytest
import torch

import integrands
from flowint import Integrator
from flowint.run.trainer import tempered as _tempered

FAST = {"batch_size": 2000, "steps_per_batch": 4, "minibatch": 512, "progress": False}


@pytest.mark.parametrize("bad", [1.0, 1.5, -0.1, True, "0.3", math.nan])
def test_bad_temper_is_refused(bad):
    with pytest.raises(ValueError, match="temper"):
        Integrator(2, temper=bad)


@pytest.mark.parametrize("off", [None, 0, 0.0])
def test_temper_off_trains_on_f_itself(off):
    f = integrands.get("camel:dim=16")
    integ = Integrator(16, seed=0, temper=off, **FAST)
    records = integ.train(f, 8_000)
    assert [r.beta for r in records] == [1.0] * len(records)


def test_narrow_peaks_start_tempered_and_end_at_beta_one():
    """On the 16-D camel the uniform start's weights have an ESS of ~3e-4 of the batch, so
    training starts on a flattened target; beta never falls and is 1 from TEMPER_END (0.9) of
    the iterations on at the latest."""
    f = integrands.get("camel:dim=16")
    integ = Integrator(16, seed=0, **FAST)
    records = integ.train(f, 40_000)
    betas = [r.beta for r in records]
    assert len(betas) == 20
    assert 0.0 < betas[0] < 0.2
    assert all(b1 <= b2 for b1, b2 in zip(betas, betas[1:], strict=False))
    assert betas[17] < 1.0 and betas[18:] == [1.0] * 2  # forced exactly at TEMPER_END
    summary_head = integ.estimate(f, 8_000).summary().splitlines()[0]
    assert "beta" in summary_head


def test_healthy_weights_are_not_tempered():
    """On the 2-D camel the uniform start already has an ESS of ~45 % of the batch."""
    f = integrands.get("camel:dim=2")
    integ = Integrator(2, seed=0, **FAST)
    records = integ.train(f, 8_000)
    assert [r.beta for r in records] == [1.0] * len(records)
    assert "beta" not in integ.estimate(f, 8_000).summary().splitlines()[0]


def test_tempered_ess_meets_the_threshold():
    """beta is the largest exponent whose tempered weights keep the asked-for ESS."""
    f = integrands.get("camel:dim=16")
    integ = Integrator(16, seed=3, temper=0.25, **FAST)
    u = torch.rand(4000, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.log(f(u))
    integ.trainer.raise_beta(integ.state, t, torch.zeros(4000, dtype=torch.float64), 0.0)
    beta = integ.state.beta

    def ess(b):
        w = _tempered(t, b)
        return float(w.sum() ** 2 / (w * w).sum()) / len(w)

    assert 0.0 < beta < 1.0
    assert ess(beta) >= 0.25 > ess(min(1.0, beta * 1.01))


def test_beta_is_kept_in_the_state():
    f = integrands.get("camel:dim=16")
    integ = Integrator(16, seed=0, **FAST)
    integ.train(f, 2_000)
    assert 0.0 < integ.state.beta < 1.0
    other = Integrator(16, seed=5, **FAST)
    other.load_state_dict(integ.state_dict())
    assert other.state.beta == integ.state.beta
    assert [r.beta for r in other.history] == [r.beta for r in integ.history]


def test_tempered_target():
    """``tempered`` takes ``log t`` and returns ``(t / max t) ** β`` without underflow."""
    t = torch.tensor([0.0, 1e-300, 1e-10, 2.0, 4.0], dtype=torch.float64)
    log_t = torch.log(t)
    torch.testing.assert_close(_tempered(log_t, 1.0), t / 4.0, rtol=1e-12, atol=0)
    assert torch.equal(_tempered(log_t, 0.0), torch.tensor([0.0, 1, 1, 1, 1], dtype=t.dtype))
    half = _tempered(log_t, 0.5)
    assert half[0] == 0 and half[-1] == 1.0
    torch.testing.assert_close(half[1:], torch.sqrt(t[1:] / 4.0), rtol=1e-12, atol=0)
    # Only the shape matters to the loss: a scaled f gives the same tempered target.
    torch.testing.assert_close(_tempered(log_t + 460.0, 0.3), _tempered(log_t, 0.3),
                               rtol=1e-12, atol=0)
    assert torch.equal(_tempered(torch.full((3,), -math.inf), 0.5), torch.zeros(3,
                                                                                dtype=t.dtype))
    # targets known only as logarithms, thousands apart, keep their ratios
    far = torch.tensor([-13000.0, -13001.0, -20000.0], dtype=torch.float64)
    torch.testing.assert_close(_tempered(far, 1.0)[:2], torch.tensor([1.0, math.exp(-1.0)],
                                                                      dtype=t.dtype))
    torch.testing.assert_close(_tempered(far, 0.001), torch.exp(0.001 * (far - far[0])))


@pytest.mark.slow
def test_tempering_finds_both_peaks_of_the_32d_camel():
    """Without tempering the flow settles on one of the two peaks (the estimate is half the
    integral, ~1600 sigma off, at 1e6 + 1e5 calls, seed 1: benchmarks/results/
    equal_budget.md before tempering); with it both are found (about four minutes)."""
    f = integrands.get("camel:dim=32")
    integ = Integrator(32, seed=1, progress=False)
    integ.train(f, 1_000_000)
    r = integ.estimate(f, 100_000)
    assert abs(r.mean - f.exact) < 5 * r.sdev
