"""Integrands given as logarithms (``log=True``) and prior transforms (``prior=``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import flowint
from flowint import checkpoint as ckpt
from flowint.integrand import IntegrandError
from flowint.run.driver import LOG_HEADROOM
from flowint.run.state import Measurement, RunState

QUIET = {"progress": False}


def _narrow_peak(depth: float, dim: int = 4, width: float = 0.02, centre: float = 0.4):
    """``log f``: a normalized Gaussian of ``width`` at ``centre``, times ``exp(-depth)``,
    floored at ``exp(-depth - 200)``; its integral over the cube is ``exp(-depth)`` to far
    better than the tests' precision (the Gaussian is 20 widths inside the cube)."""
    norm = dim * math.log(math.sqrt(2 * math.pi) * width)

    def log_f(x: torch.Tensor) -> torch.Tensor:
        peak = -((x - centre) ** 2).sum(-1) / (2 * width**2) - norm - depth
        return torch.logaddexp(peak, torch.full_like(peak, -depth - 200.0))

    return log_f


def test_integrand_far_below_float64_integrates_in_log_space():
    assert math.exp(-800.0) == 0.0  # f itself underflows: only log f can be handed over
    r = flowint.integrate(_narrow_peak(800.0, dim=2), 2, log=True, budget=20_000, seed=1,
                          **QUIET)
    assert r.mean == 0.0 and r.log_scale is not None
    assert abs(r.log_pull(-800.0)) < 5, (r.log_mean, r.log_sdev)
    assert 0 < r.log_sdev < 0.01
    assert str(r).startswith("exp(-") and str(r).endswith(")")


def test_integrand_far_above_float64_integrates_in_log_space():
    assert math.isinf(float(np.exp(np.float64(900.0))))  # f overflows float64
    r = flowint.integrate(_narrow_peak(-900.0, dim=2), 2, log=True, budget=20_000, seed=2,
                          **QUIET)
    assert math.isinf(r.mean)
    assert abs(r.log_pull(900.0)) < 5, (r.log_mean, r.log_sdev)


def test_log_mode_agrees_with_the_plain_integrand():
    log_f = _narrow_peak(3.0, dim=2, width=0.1)
    plain = flowint.integrate(lambda x: torch.exp(log_f(x)), 2, budget=20_000, seed=4, **QUIET)
    # one flow for both (with log=True the default searches for modes first)
    logged = flowint.integrate(log_f, 2, log=True, budget=20_000, seed=4, channels=None,
                               **QUIET)
    assert abs(plain.log_pull(-3.0)) < 5 and abs(logged.log_pull(-3.0)) < 5
    # same draws, same decisions: the two runs differ only by rounding
    assert logged.log_mean == pytest.approx(plain.log_mean, abs=1e-9)
    assert logged.n_evals == plain.n_evals and logged.method == plain.method
    assert plain.log_scale is None and math.log(plain.mean) == pytest.approx(plain.log_mean)


def test_scale_rises_when_a_batch_exceeds_it_and_stored_values_follow():
    """Values in units of the scale move with it; the buffer's log targets stay."""
    state = RunState(log_scale=-800.0)
    rec = flowint.IterationRecord("train", 10, 2.0, 0.5, 0.3)
    state.history.append(rec)
    log_t = torch.tensor([-796.0, -799.0], dtype=torch.float64)  # log targets: no unit
    state.buffer.append((torch.zeros(2, 1), log_t.clone(), torch.zeros(2)))
    state.call = {"measures": {"identity": [list(Measurement(8, 4, 3.0, 0.1, 0.2, 1.5))]},
                  "seen": [[torch.zeros(1, 1), torch.tensor([6.0], dtype=torch.float64)]]}
    state.final = {"weights": [torch.tensor([5.0], dtype=torch.float64)]}
    state.rescale(-800.0 + math.log(2.0))
    assert state.history[0].mean == pytest.approx(1.0)
    assert state.history[0].sdev == pytest.approx(0.25)
    assert state.history[0].rel_std == rec.rel_std
    assert state.buffer[0][1].tolist() == log_t.tolist()
    assert state.call["measures"]["identity"][0] == pytest.approx([8, 4, 1.5, 0.1, 0.2, 1.5])
    assert float(state.call["seen"][0][1]) == pytest.approx(3.0)
    assert float(state.final["weights"][0]) == pytest.approx(2.5)


def test_a_peak_found_late_raises_the_scale_without_losing_the_estimate():
    # The flat floor is 300 e-folds below the peak: the first points see only the floor, so
    # the scale starts there and must rise past LOG_HEADROOM when the peak is found.
    log_f = _narrow_peak(0.0, dim=2, width=0.01, centre=0.7)
    integ = flowint.Integrator(2, log=True, seed=5, **QUIET)
    first = integ.wrap(log_f)(torch.full((4, 2), 0.1, dtype=torch.float64))
    assert float(first.max()) < -LOG_HEADROOM
    r = integ(log_f, 30_000)
    assert r.log_scale > float(first.max()) + LOG_HEADROOM
    assert abs(r.log_pull(0.0)) < 5, (r.log_mean, r.log_sdev)


def test_prior_transform_gives_the_evidence():
    # uniform prior on [-5, 5]^2, Gaussian likelihood of sd 0.1: Z = 1 / 100
    def prior(u):
        return -5.0 + 10.0 * u

    def log_like(theta):
        return -(theta**2).sum(-1) / (2 * 0.01) - math.log(2 * math.pi * 0.01)

    r = flowint.integrate(log_like, 2, log=True, prior=prior, budget=30_000, seed=2, **QUIET)
    assert abs(r.log_pull(math.log(0.01))) < 5
    assert r.mean == pytest.approx(0.01, rel=5 * r.log_sdev)


def test_numpy_prior_and_posterior_samples_in_parameter_space():
    integ = flowint.Integrator(2, log=True, prior=lambda u: np.asarray(-5.0 + 10.0 * u),
                               seed=3, **QUIET)

    def log_like(theta):
        return -(theta**2).sum(-1) / (2 * 0.01)

    integ(log_like, 15_000)
    samples = flowint.unweighted_samples(integ, log_like, 4000, seed=1)
    x = samples.x
    assert x.shape == (4000, 2)
    # posterior N(0, 0.1^2) per axis: 5-sigma bounds on the mean and the sd of 4000 points
    assert x.mean(0).abs().max() < 5 * 0.1 / math.sqrt(4000)
    assert (x.std(0) - 0.1).abs().max() < 5 * 0.1 / math.sqrt(2 * 4000)
    pts, w = integ.sample(1000, seed=2)
    assert pts.abs().max() <= 5.0 and (w > 0).all()
    ws = flowint.weighted_samples(integ, log_like, 20_000, seed=4)
    z = float(ws.weights.mean()) * math.exp(ws.log_scale)
    assert z == pytest.approx(2 * math.pi * 0.01 / 100, rel=0.05)


def test_log_checkpoint_resumes_with_its_scale(tmp_path):
    log_f = _narrow_peak(800.0, dim=2, width=0.05)
    run = dict(budget=8000, n_train=5000, batch_size=500, seed=3, flow_options={"hidden": 8})
    reference = flowint.integrate(log_f, 2, log=True, **run, **QUIET)
    path = tmp_path / "log.ckpt"
    integ = flowint.Integrator(2, log=True, **{k: run[k] for k in ("batch_size", "seed",
                                                                      "flow_options")}, **QUIET)
    integ.train(log_f, 3000)
    ckpt.save_checkpoint(integ, path)
    again = flowint.load_checkpoint(path)
    assert again.state.log_scale == integ.state.log_scale is not None
    assert again.settings.log
    assert reference.log_scale is not None and abs(reference.log_pull(-800.0)) < 5


def test_bad_log_and_prior_arguments():
    log_f = _narrow_peak(0.0, dim=2)
    with pytest.raises(ValueError, match="rtol"):
        flowint.integrate(log_f, 2, log=True, atol=1e-3, budget=5000, **QUIET)
    with pytest.raises(IntegrandError, match="log f"):
        flowint.integrate(lambda x: x, 2, log=True, budget=5000, **QUIET)
    with pytest.raises(ValueError, match="not both"):
        flowint.integrate(log_f, 2, bounds=(0, 2), prior=lambda u: u, budget=5000, **QUIET)
    with pytest.raises(TypeError, match="prior"):
        flowint.Integrator(2, prior="uniform")
    with pytest.raises(ValueError, match="log must be"):
        flowint.Integrator(2, log=1)
    with pytest.raises(IntegrandError, match="non-finite"):
        flowint.integrate(lambda x: torch.full((x.shape[0],), math.nan), 2, log=True,
                          budget=5000, **QUIET)
    with pytest.raises(IntegrandError, match="prior transform returned shape"):
        flowint.integrate(log_f, 2, log=True, prior=lambda u: u[:5], budget=5000, **QUIET)


def test_minus_infinity_is_zero_and_nan_can_be_dropped():
    def log_f(x):  # f = 2 on x0 < 1/2, 0 elsewhere (log f = -inf), NaN on a sliver
        out = torch.where(x[:, 0] < 0.5, math.log(2.0), -math.inf)
        return torch.where(x[:, 1] > 0.999, math.nan, out)

    r = flowint.integrate(log_f, 2, log=True, budget=20_000, seed=1, nan_policy="drop",
                          **QUIET)
    assert r.n_dropped > 0
    exact = math.log(2.0 * 0.5 * 0.999)
    assert abs(r.log_pull(exact)) < 5, (r.log_mean, r.log_sdev)


def test_training_ranks_points_thousands_of_units_apart_in_log_f():
    """Uniform points of a narrow 4-D Gaussian differ by up to ~5000 in ``log f``: as linear
    values every point but the best underflows beside it, so the buffer keeps ``log f``
    (before, only one point per batch carried weight and the 16-D evidence problem came out
    890 units low with one point holding all the weight)."""
    dim, width, centre = 4, 0.01, 0.45
    norm = dim * math.log(math.sqrt(2 * math.pi) * width)

    def log_f(x: torch.Tensor) -> torch.Tensor:  # a normalized Gaussian: log I = 0
        return -((x - centre) ** 2).sum(-1) / (2 * width**2) - norm

    u = torch.rand(4096, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    spread = float(log_f(u).max() - log_f(u).min())
    assert spread > 2000  # the premise: far beyond float64's range of exp
    r = flowint.integrate(log_f, dim, log=True, budget=30_000, seed=1, **QUIET)
    assert abs(r.log_pull(0.0)) < 5, (r.log_mean, r.log_sdev)
    assert 0 < r.log_sdev < 0.05 and r.ess > 1000


def test_a_measurement_that_saw_nothing_is_not_a_perfect_sampler():
    """All-zero weights (values far below the scale) give infinite variances, an unreliable
    model, and a gain of 1: the policy does not pick such a candidate for its zero error."""
    from flowint.run.estimator import Estimator
    from flowint.run.model import model

    m = Estimator.measurement([torch.zeros(64, dtype=torch.float64) for _ in range(8)])
    assert m.mean == 0.0 and math.isinf(m.var_mean) and math.isinf(m.var_point)
    fitted = model([list(m)])
    assert not fitted.reliable and fitted.gain(1000.0) == 1.0
    seen = Estimator.measurement([torch.rand(64, dtype=torch.float64,
                                             generator=torch.Generator().manual_seed(i))
                                  for i in range(8)])
    assert model([list(seen)]).reliable


def test_pieces_far_below_the_final_estimate_do_not_overflow_the_consistency_test():
    """Training pieces rescaled to ``e^-700`` of the final estimate: the χ² is computed
    without overflow, finds them inconsistent, and leaves them out."""
    from flowint.run.estimator import combine_pieces
    from flowint.run.state import Piece

    final = Piece(1000, 1.0, 0.01, 1e-4)
    tiny = [Piece(1000, 1e-300, 1e-302, 1e-4), Piece(1000, 2e-305, 1e-306, 1e-4)]
    out = combine_pieces(final, tiny)
    assert out.used == 0 and out.mean == 1.0 and out.sdev == 0.01
    assert math.isfinite(out.chi2) and out.chi2 > 1e3 and out.Q < 1e-3


def test_a_logarithm_searches_for_modes_by_default():
    """``log=True`` (a likelihood) defaults to ``channels="auto"``, a plain integrand to one
    flow; an explicit ``channels`` wins either way."""
    from flowint.run.settings import Settings

    assert Settings(log=True).channels == "auto" and Settings().channels is None
    assert Settings(log=True, channels=None).channels is None
    assert Settings(channels="modes").channels == "modes"
    # a change of log takes the other default along, unless channels was chosen
    assert Settings(log=True).replace(log=False).channels is None
    assert Settings().replace(log=True).channels == "auto"
    assert Settings(log=True, channels="modes").replace(log=False).channels == "modes"
    r = flowint.integrate(_narrow_peak(-800.0, dim=2), 2, log=True, budget=8000, seed=1,
                          **QUIET)
    assert r.history[0].phase == "search"
