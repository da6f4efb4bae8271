"""The quasi-random pilot: with an error target, an untrained flow is tried before training."""

from __future__ import annotations

import pytest
import torch

import flowint
import integrands
from flowint import Integrator
from flowint.integrator import _PILOT_SIZE, _QMC_MIN_RANDOMIZATIONS

FAST = {"batch_size": 2000, "steps_per_batch": 4, "minibatch": 512, "progress": False}
FIRST_LOOK = _QMC_MIN_RANDOMIZATIONS * _PILOT_SIZE


class Counted:
    """An integrand that counts its calls."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, x):
        self.calls += x.shape[0]
        return self.f(x)


def test_smooth_integrand_needs_no_training():
    """The 18-D polynomial (i-flow's Table III: 585k calls for 1e-5) is met by quasi-random
    points of the uniform flow; training would spend 2 * patience * batch = 320k calls before
    it could stop (the pilot may spend up to twice that)."""
    f = integrands.get("polynomial:dim=18")
    g = Counted(f)
    r = flowint.integrate(g, 18, budget=2_000_000, rtol=1e-5, seed=0, progress=False)
    assert r.rel_error <= 1e-5
    assert abs(r.mean - f.exact) < 5 * r.sdev
    assert g.calls == r.n_evals == r.n_evals_final <= 4 * FIRST_LOOK
    assert {h.phase for h in r.history} == {"final"}


def test_peaked_integrand_gives_up_and_trains():
    """On the 8-D camel the uniform flow's first look predicts far more calls than training
    costs: the pilot gives up, its records leave the history, and its evaluated points make
    the first training iteration (no call is wasted or lost from the count)."""
    f = integrands.get("camel:dim=8")
    g = Counted(f)
    r = flowint.integrate(g, 8, budget=400_000, rtol=2e-2, seed=0, **FAST)
    phases = [h.phase for h in r.history]
    assert phases[0] == "train" and phases[-1] == "final"
    assert r.history[0].n == FIRST_LOOK
    assert sum(h.n for h in r.history) == g.calls
    assert r.n_evals == g.calls
    assert abs(r.mean - f.exact) < 5 * r.sdev


@pytest.mark.parametrize("settings", [{"qmc": False}, {"n_train": 4000}, {"patience": 0}, {}])
def test_no_pilot_without_its_conditions(settings):
    """No pilot with i.i.d. final points, a given training length, no early stopping, or no
    error target (the last case: no rtol)."""
    f = integrands.get("polynomial:dim=4")
    rtol = None if not settings else 1e-5
    r = flowint.integrate(f, 4, budget=40_000, rtol=rtol, seed=0, **FAST, **settings)
    assert r.history[0].phase == "train"


def test_no_pilot_once_trained():
    f = integrands.get("polynomial:dim=4")
    integ = Integrator(4, seed=0, **FAST)
    integ.train(f, 4000)
    r = integ(f, 40_000, rtol=1e-5)
    assert any(h.phase == "train" for h in r.history[2:])


def test_pilot_result_is_reproducible():
    f = integrands.get("polynomial:dim=18")
    a = flowint.integrate(f, 18, budget=2_000_000, rtol=1e-5, seed=3, progress=False)
    b = flowint.integrate(f, 18, budget=2_000_000, rtol=1e-5, seed=3, progress=False)
    assert (a.mean, a.sdev, a.n_evals) == (b.mean, b.sdev, b.n_evals)
    assert torch.isfinite(torch.tensor(a.sdev)) and a.sdev > 0


def test_larger_randomizations_when_they_promise_enough():
    """On the 2-D camel, 256-point randomizations of the uniform flow predict ~5e5 calls for
    1e-4, but 16x fewer is within the limit, so the pilot tries 1024-point ones: they meet the
    target in their first look, and only the 256-point stage's calls are lost."""
    f = integrands.get("camel:dim=2")
    g = Counted(f)
    r = flowint.integrate(g, 2, budget=5_000_000, rtol=1e-4, seed=1, progress=False)
    assert {h.phase for h in r.history} == {"final"}
    assert {h.n for h in r.history} == {4 * _PILOT_SIZE}
    assert g.calls == r.n_evals == FIRST_LOOK + r.n_evals_final
    assert r.rel_error <= 1e-4
    assert abs(r.mean - f.exact) < 5 * r.sdev


def test_pilot_points_never_train_another_integrand():
    """The 2-D camel's pilot gives up its 256-point stage and ends in the 1024-point one; the
    first stage's points must not become a training batch of a later, different integrand."""
    camel = integrands.get("camel:dim=2")
    integ = Integrator(2, seed=1, progress=False)
    r = integ(camel, 5_000_000, rtol=1e-4)
    assert {h.phase for h in r.history} == {"final"}
    other = Counted(integrands.get("gaussian:dim=2"))
    records = integ.train(other, 8000)
    assert other.calls == 8000 == sum(h.n for h in records)
