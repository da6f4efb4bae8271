"""Interlaced (higher-order) quasi-random points (:mod:`flowint.run.interlaced`) and the
Policy's interlaced candidate."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import flowint
import integrands
from flowint.run.interlaced import MAX_DIM, InterlacedIdentity, interlace
from flowint.run.model import candidate_model, model
from flowint.run.policy import EXPLORE_SIZES, SMOOTH_RATE, Policy
from flowint.run.settings import Settings
from flowint.run.sobol import nested_scrambled_sobol_array
from flowint.run.state import Measurement


def test_interlacing_alternates_the_digits_of_the_two_coordinates():
    # 0.1000…, 0.0100… → 0.1001 = 0.5625;  0.011…, 0.101… → 0.011011 = 0.421875
    x = np.array([[0.5, 0.25], [0.375, 0.625], [0.0, 1.0 - 2.0**-30]])
    u = interlace(x)
    assert u[0, 0] == 0.5625 and u[1, 0] == 0.421875
    assert u[2, 0] == sum(2.0 ** -(2 * i) for i in range(1, 27))  # every b digit set
    assert u.shape == (3, 1) and bool(((u >= 0) & (u < 1)).all())
    with pytest.raises(ValueError, match="2·dim"):
        interlace(np.zeros((4, 3)))


def test_interlaced_points_are_uniform_and_their_set_means_unbiased():
    """Each interlaced scrambled point is uniform: set means of ``x₁ x₂²`` (exact 1/6) over
    200 randomizations of 256 points lie within 5σ of it, and ``E_u[u]`` of each coordinate
    within 5σ of 1/2."""
    rng = np.random.default_rng(0)
    means, firsts = [], []
    for _ in range(200):
        u = interlace(nested_scrambled_sobol_array(256, 4, rng))
        means.append(float((u[:, 0] * u[:, 1] ** 2).mean()))
        firsts.append(u[:, 0].mean())
    means, firsts = np.array(means), np.array(firsts)
    assert abs(means.mean() - 1 / 6) < 5 * means.std(ddof=1) / math.sqrt(len(means))
    assert abs(firsts.mean() - 0.5) < 5 * firsts.std(ddof=1) / math.sqrt(len(firsts))


def test_interlaced_points_converge_faster_on_a_smooth_integrand():
    """The point of the exercise: on a smooth 2-D peak, 8 randomizations of 2^14 interlaced
    points have an RMS error under a fifth of plain nested-scrambled Sobol points' (a wrong
    digit order or plain points fed through gives no such gain)."""
    f = integrands.get("gaussian:dim=2")
    exact = float(f.exact)

    def rms(order: int) -> float:
        rng = np.random.default_rng(1)
        errs = []
        for _ in range(8):
            pts = nested_scrambled_sobol_array(2**14, 2 * order, rng)
            u = interlace(pts) if order == 2 else pts
            errs.append(float(f(torch.from_numpy(u)).mean()) - exact)
        return math.sqrt(float(np.mean(np.square(errs))))

    assert rms(2) < 0.2 * rms(1)


def test_the_interlaced_sampler_draws_in_twice_the_dimensions():
    s = InterlacedIdentity(3)
    z = torch.rand(100, 6, dtype=torch.float64)
    u, log_q = s.transform_base(z)
    assert s.base_dim == 6 and u.shape == (100, 3) and torch.equal(log_q, torch.zeros(100))


def _measures(a: float, sizes=(128, 512, 2048), v_last: float = 1e-6) -> list[list]:
    return [list(Measurement(n, 8, 1.0, v_last * (n / sizes[-1]) ** -a, 1.0, 1.0))
            for n in sizes]


def test_the_interlaced_candidate_is_measured_only_on_smooth_integrands_in_few_dims():
    policy = Policy(2, Settings())
    assert policy.static_candidates({}) == ("identity", "grid")
    smooth = {"identity": _measures(SMOOTH_RATE + 0.2)}
    rough = {"identity": _measures(SMOOTH_RATE - 0.2)}
    assert policy.static_candidates(smooth) == ("identity", "grid", "interlaced")
    assert policy.static_candidates(rough) == ("identity", "grid")
    assert policy.static_candidates({"identity": smooth["identity"][:EXPLORE_SIZES - 1]}) == \
        ("identity", "grid")  # the identity's rate is not measured yet
    assert Policy(MAX_DIM + 1, Settings()).static_candidates(smooth) == ("identity", "grid")


def test_the_interlaced_candidates_rate_comes_from_its_two_largest_sizes():
    """Its order shows only at larger sets: flat, then steep (the signed camel 2-D's
    measurements), read as the steep part, up to 4."""
    ms = [list(Measurement(128, 8, 1.0, 6.3e-3, 30.0, 1.0)),
          list(Measurement(512, 8, 1.0, 3.0e-3, 30.0, 1.0)),
          list(Measurement(2048, 8, 1.0, 5.4e-6, 30.0, 1.0))]
    assert candidate_model("identity", ms) == model(ms)
    assert model(ms).a == pytest.approx(2.5)  # the least-squares slope, clipped
    assert candidate_model("interlaced", ms).a == 4.0  # 4.6 from the last two, clipped
    steady = [list(Measurement(n, 8, 1.0, 1e-3 * (n / 128) ** -3.0, 30.0, 1.0))
              for n in (128, 512, 2048)]
    assert candidate_model("interlaced", steady).a == pytest.approx(3.0)


def test_a_smooth_2d_integrand_ends_in_interlaced_points_and_a_rough_one_does_not():
    smooth = integrands.get("signed_camel:dim=2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(smooth, 2, budget=1_100_000, seed=1, progress=False)
        ring = integrands.get("annulus")
        a = flowint.integrate(ring, 2, budget=200_000, seed=1, progress=False)
    assert r.method == "interlaced" and abs(r.pull(float(smooth.exact))) < 5
    assert r.sdev < 1e-6  # plain RQMC's error here is about 1.8e-6 (equal_cost_2d_seeds.md)
    assert a.method != "interlaced" and abs(a.pull(float(ring.exact))) < 5


def test_float32_interlaced_points_stay_in_the_half_open_cube():
    """Base points near 1 (float32 would round them to 1.0) and float32 output: every point
    in [0, 1), through the sampler and through the estimator's draw."""
    from flowint.run.estimator import Estimator
    from flowint.run.state import RunState

    s = InterlacedIdentity(2, torch.float32)
    z = torch.full((4, 4), 1.0 - 2.0**-53, dtype=torch.float64)
    u, _ = s.transform_base(z)
    assert u.dtype == torch.float32 and float(u.max()) < 1.0
    assert float(interlace(np.full((1, 2), 1.0))[0, 0]) < 1.0  # a digit of 2^26 is clipped
    est = Estimator(2, torch.Generator().manual_seed(0), torch.float32)
    state = RunState()
    for _ in range(4):
        u, log_q = est.draw(state, s, 2**14, qmc=True)
        assert u.dtype == torch.float32 and float(u.min()) >= 0 and float(u.max()) < 1


def test_train_can_start_late_in_its_schedule():
    f = integrands.get("gaussian:dim=2")
    lrs = {}
    for start in (0.0, 2 / 3):
        integ = flowint.Integrator(2, seed=1, progress=False)
        rec = integ.train(f, 4000, start=start)
        lrs[start] = [r.lr for r in rec if r.phase == "train"]
    assert lrs[2 / 3][0] < 0.5 * lrs[0.0][0] and lrs[2 / 3][-1] <= lrs[2 / 3][0]
    with pytest.raises(ValueError, match="start"):
        flowint.Integrator(2).train(f, 100, start=1.0)
