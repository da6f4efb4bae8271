"""The policy: what the budget buys (plain RQMC, a per-axis grid, the flow, more training)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import flowint
import integrands
from flowint.result import IterationRecord
from flowint.run.estimator import Estimator, combine_pieces
from flowint.run.model import Model, final_sizes, model, t_widening
from flowint.run.policy import Policy
from flowint.run.settings import Settings
from flowint.run.state import Measurement, Piece

FAST = {"batch_size": 2000, "steps_per_batch": 4, "minibatch": 512, "progress": False}


class Counted:
    """An integrand that counts its calls."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, x):
        self.calls += x.shape[0]
        return self.f(x)


def test_smooth_integrand_is_not_trained():
    """The 18-D polynomial is additive: scrambled Sobol points integrate it almost exactly,
    and no trained flow comes near, so the whole budget goes to plain RQMC."""
    f = integrands.get("polynomial:dim=18")
    g = Counted(f)
    r = flowint.integrate(g, 18, budget=100_000, seed=0, progress=False)
    assert r.method == "identity"
    assert not any(h.phase == "train" for h in r.history)
    assert g.calls == r.n_evals == sum(h.n for h in r.history) <= 100_000
    assert r.rel_error < 1e-6
    assert abs(r.pull(f.exact)) < 5
    # chi2 of quasi-random sets alone tests nothing, and the result says so
    assert r.chi2_tests == "" and "no consistency test" in r.summary()


def test_peaked_integrand_trains_and_reuses_its_training():
    """On the 8-D camel plain RQMC and a per-axis grid are measured, lose, and the flow is
    trained; its late training iterations enter the estimate."""
    f = integrands.get("camel:dim=8")
    g = Counted(f)
    r = flowint.integrate(g, 8, budget=100_000, seed=0, **FAST)
    phases = [h.phase for h in r.history]
    assert phases[:6] == ["identity"] * 3 + ["grid"] * 3
    assert "train" in phases and phases[-1] == "final" and r.method == "flow"
    assert g.calls == r.n_evals == sum(h.n for h in r.history) <= 100_000
    assert r.n_evals_reused > 0
    assert r.chi2_tests == "training iterations against the final estimate"
    assert abs(r.pull(f.exact)) < 5
    assert set(r.seconds) == {"f", "train", "sample"} and r.seconds["train"] > 0
    # training's seconds include drawing its batches: the iterations' own times are covered
    train_time = sum(h.time for h in r.history if h.phase == "train")
    assert train_time <= r.seconds["train"] + r.seconds["f"] + 0.05 * train_time
    assert sum(r.seconds.values()) <= r.wall_time


def test_same_seed_same_result():
    f = integrands.get("camel:dim=4")
    a = flowint.integrate(f, 4, budget=40_000, seed=3, **FAST)
    b = flowint.integrate(f, 4, budget=40_000, seed=3, **FAST)
    assert (a.mean, a.sdev, a.method, a.n_evals) == (b.mean, b.sdev, b.method, b.n_evals)


def test_explore_off_always_trains():
    f = integrands.get("polynomial:dim=4")
    r = flowint.integrate(f, 4, budget=40_000, seed=0, explore=False, **FAST)
    assert r.method == "flow"
    assert {h.phase for h in r.history} <= {"train", "flow", "final"}


def test_time_limit_is_kept():
    f = integrands.get("camel:dim=8")
    r = flowint.integrate(f, 8, budget=10**8, time_limit=2.0, seed=0, **FAST)
    # checked between iterations: one may run over, and the final estimate's least points
    # (16 x 64) come after the limit; measured in the run's own iteration times, so that a
    # loaded machine (every step slower) does not fail it and an ignored limit still does
    over = max(h.time for h in r.history) + sum(h.time for h in r.history
                                                if h.phase == "final")
    assert r.wall_time < 2.0 + over + 1.0
    assert r.n_evals < 10**8 and math.isfinite(r.mean) and r.sdev > 0


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, True, "1"])
def test_bad_time_limit_is_refused(bad):
    with pytest.raises(ValueError, match="time_limit"):
        flowint.integrate(lambda x: x[:, 0], 2, budget=20_000, time_limit=bad)


def test_model_recovers_the_convergence_rate():
    """Randomization means whose variance falls as n^-2 (smooth integrand) give a = 2, and
    the predicted calls reproduce the predicted variance."""
    ms = [list(Measurement(64, 8, 1.0, 64.0**-2, 0.5)), list(Measurement(256, 8, 1.0,
                                                                          256.0**-2, 0.5))]
    m = model(ms)
    assert m.a == pytest.approx(2.0)
    assert m.var(32 * 1024, k=32) == pytest.approx(1024.0**-2 / 32)
    assert m.calls_for(m.var(32 * 1024, k=32), k=32) == pytest.approx(32 * 1024)
    assert m.gain(256) == pytest.approx(0.5 / (256 * 256.0**-2))
    # the exponent is clipped: a variance that rises with n is read as no gain (a = 1)
    flat = model([list(Measurement(64, 8, 1.0, 1e-3, 0.5)),
                  list(Measurement(256, 8, 1.0, 2e-3, 0.5))])
    assert flat.a == 1.0


def test_effective_sample_size_counts_magnitudes_not_cancellation():
    """A sign-changing integrand's points see it even where the signs cancel: the ESS behind
    ``Model.reliable`` is ``(Σ|w|)² / Σw²`` (here 4/5 of the points), not ``(Σw)² / Σw²``
    (1/5), which left plain RQMC out of the signed camel 2-D's candidates at 10⁵ calls."""
    w = torch.tensor([3.0, -1.0] * 128, dtype=torch.float64)  # mean 1, mean |w| 2, mean w² 5
    m = Estimator.measurement([w[:128], w[128:]])
    assert m.abs_ratio == pytest.approx(2.0)
    signed = model([list(m)[:5]])  # as saved before abs_ratio was measured
    counted = model([list(m)])
    assert counted.ess == pytest.approx(256 * 4 / 5, rel=1e-2)
    assert signed.ess == pytest.approx(256 / 5, rel=1e-2)
    assert counted.reliable and not signed.reliable
    # a positive integrand's ESS is unchanged
    pos = Estimator.measurement([w.abs()[:128], w.abs()[128:]])
    assert pos.abs_ratio == pytest.approx(1.0)
    assert model([list(pos)]).ess == pytest.approx(model([list(pos)[:5]]).ess)


def test_final_sets_double_where_the_measured_rate_pays():
    """Just below 16·2^16 calls, 16 sets of 2^15 lose a factor 2^(a-1) in variance against 14
    sets of 2^16: with a measured a = 2 the larger sets are taken (and the model predicts
    the cliff), with a = 1 (no quasi-random gain) the 16-set rule stays. Down to 8 sets the
    gain must pay for the wider t quantiles too: 1.25 × 1.41 from 16 to 8 sets."""
    calls = 944_000
    assert final_sizes(calls, 2.0) == (65536, 14)
    assert final_sizes(calls, 1.0) == (32768, 28)
    assert final_sizes(16 * 65536, 1.5) == (65536, 16)  # 2^1.5 / 2 = 1.41 < 1.76
    assert t_widening(8, 16) == pytest.approx(1.41, abs=0.005)
    assert final_sizes(16 * 65536 - 1, 1.9) == (65536, 15)
    assert final_sizes(8 * 131072, 3.0) == (131072, 8)  # 8 sets of 2^17: variance ÷ 4
    assert final_sizes(8 * 131072, 2.0) == (131072, 8)  # ÷ 2
    assert final_sizes(8 * 131072, 1.75) == (65536, 16)  # 2^1.75 / 2 = 1.68 < 1.25 × 1.41
    assert final_sizes(8 * 131072, 1.85) == (131072, 8)  # 1.80 > 1.76
    smooth = Model(1024, 1e-6, 2.0, 1.0, 1.0)
    assert smooth.var(calls) == pytest.approx(1e-6 * 64.0**-2 / 14)
    assert smooth.var(calls) < 0.6 * smooth.var(28 * 32768, k=28)  # the 16-set rule's plan
    # the policy's final estimate follows the candidate's measured rate
    policy = Policy(2, Settings())
    ms = [list(Measurement(n, 8, 1.0, n**-2.0, 1.0)) for n in (1024, 4096)]
    call = {"measures": {"identity": ms}, "history_start": 0}
    action = policy.final_action(call, "identity", calls, None, [])
    assert (action.n, action.k) == (65536, 14)
    assert policy.final_action(call, "identity", calls, 1e-3, []).k >= 16  # a goal: 16 at least


def test_a_sign_changing_integrand_raises_the_bar_for_training():
    """Two channels at ``ρ`` each give ``ρ ∫|f|/|∫f|`` per sample: a static candidate that
    i.i.d. points at ``ρ_floor`` would beat is kept for a positive ``f`` only, one that they
    would beat only at ``3 ρ_floor`` is kept where the weights show ``∫|f| = 3 |∫f|``."""
    assert Policy.cancellation({}) == 1.0
    assert Policy.cancellation({"signs": [2.0, 0.0]}) == 1.0
    assert Policy.cancellation({"signs": [2.0, 1.0]}) == pytest.approx(3.0)
    assert Policy.cancellation({"signs": [1.0, 1.0]}) == 1e3
    budget = left = 100_000
    floor = 0.2 * math.sqrt(3e4 / budget)
    static = Model(4096, (2 * floor) ** 2 / 4096, 1.0, 1.0, 1.0)  # i.i.d., ρ = 2 ρ_floor
    assert static.var(left) == pytest.approx((2 * floor) ** 2 / left, rel=0.1)
    assert not Policy._static_suffices(static, left, None, budget)
    assert Policy._static_suffices(static, left, None, budget, cancel=3.0)


def _records(rhos: list[float], n: int = 1000) -> list[IterationRecord]:
    return [IterationRecord("train", n, 1.0, rho / math.sqrt(n), rho) for rho in rhos]


def test_training_goes_on_while_it_improves_and_stops_when_it_does_not():
    policy = Policy(4, Settings(reuse=False))
    call = {"measures": {}, "key": {"budget": 10**6}}
    improving = _records([0.4] * 8 + [0.2] * 8)
    flat = _records([0.2] * 16)
    for train, expected in ((improving, True), (flat, False)):
        rho, mean, rate = policy.training_trend(train)
        keep = policy._keep_training(call, {}, rho, mean, rate, 5e5, None, 1000)
        assert keep is expected


def test_training_stops_when_a_static_candidate_cannot_be_caught():
    """Even at its current rate for half of what is left, training would not beat a static
    candidate predicted a thousandfold better: stop."""
    policy = Policy(4, Settings())
    call = {"measures": {}, "key": {"budget": 10**6}}
    train = _records([0.4] * 8 + [0.3] * 8)
    rho, mean, rate = policy.training_trend(train)
    assert policy._keep_training(call, {}, rho, mean, rate, 5e5, None, 1000)
    static = Model(1024, 1e-14, 2.0, 1.0, 1.0)
    assert not policy._keep_training(call, {"identity": static}, rho, mean, rate, 5e5, None,
                                     1000)


def test_pieces_are_weighted_by_their_planned_variance():
    final = Piece(1000, 1.0, 1e-2, 1e-4)
    early = Piece(1000, 1.3, 1e-1, 1e-2)
    c = combine_pieces(final, [early])
    lam = (1 / 1e-2) / (1 / 1e-2 + 1 / 1e-4)
    assert c.mean == pytest.approx(lam * 1.3 + (1 - lam) * 1.0)
    assert c.sdev == pytest.approx(math.sqrt(lam**2 * 1e-2 + (1 - lam) ** 2 * 1e-4))
    assert c.used == 1 and c.dof == 1


def test_inconsistent_pieces_are_dropped_and_the_failed_test_kept():
    """A training iteration that missed a mode (mean half the truth, tiny variance) fails the
    χ² test against the final estimate and is left out; the failed χ² stays in the answer
    (the result reports it: tests/test_consistency.py)."""
    final = Piece(1000, 1.0, 1e-3, 1e-6)
    missed = Piece(1000, 0.5, 1e-3, 1e-6)
    c = combine_pieces(final, [missed])
    assert c.used == 0 and c.mean == 1.0 and c.Q < 1e-3 and c.dof == 1


def test_reused_training_is_unbiased_over_seeds():
    """Pulls of runs that reuse training iterations, over seeds, have mean 0 within 5σ."""
    f = integrands.get("gaussian:dim=4")
    pulls = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for seed in range(12):
            r = flowint.integrate(f, 4, budget=30_000, seed=seed, explore=False, **FAST)
            assert r.n_evals_reused > 0
            pulls.append(r.pull(f.exact))
    t = torch.tensor(pulls)
    assert abs(float(t.mean())) < 5 / math.sqrt(len(pulls))
    assert float(t.abs().max()) < 5


def test_training_trend_survives_a_zero_spread_before():
    """Older iterations whose weights were all equal (or all zero) give rel_std 0: the rate
    is then unknown (0), not a math domain error (seen on a 16-D evidence problem)."""
    from flowint.result import IterationRecord
    from flowint.run.policy import Policy

    older = [IterationRecord("train", 100, 0.0, 0.0, 0.0) for _ in range(4)]
    newer = [IterationRecord("train", 100, 1.0, 0.1, 2.0) for _ in range(4)]
    rho, mean, rate = Policy.training_trend(older + newer)
    assert rho == 2.0 and mean == 1.0 and rate == 0.0


def test_flow_dtype_follows_the_error_the_estimate_reaches():
    """``estimate_dtype="auto"``: float32 for a trained flow unless the final estimate is
    predicted, or asked, to reach a relative error below FLOAT32_FLOOR; a fixed dtype wins."""
    from flowint.run.policy import FLOAT32_FLOOR, Action

    policy = Policy(4, Settings())
    call = {"history_start": 0}
    train = _records([0.3] * 8)  # integral 1, rho 0.3

    def final(var: float, n: int = 4096, k: int = 16) -> Action:
        return Action("final", "flow", n, k, var)

    assert policy.measure_dtype() == torch.float32
    assert policy.final_dtype(call, final((10 * FLOAT32_FLOOR) ** 2), None, train) \
        == torch.float32
    assert policy.final_dtype(call, final((0.1 * FLOAT32_FLOOR) ** 2), None, train) \
        == torch.float64
    # asked for: the goal (absolute) over the integral decides, not the prediction
    assert policy.final_dtype(call, final(1e-2), 0.1 * FLOAT32_FLOOR, train) == torch.float64
    assert policy.final_dtype(call, final(1e-16), 1e-3, train) == torch.float32
    # no prediction: training's rho / sqrt(100 N); 0.3 / sqrt(100 * 2^20) = 2.9e-5 >= 1e-5
    assert policy.final_dtype(call, final(math.inf, 2**16, 16), None, train) == torch.float32
    assert policy.final_dtype(call, final(math.inf, 2**20, 16), None, train) == torch.float64
    fixed = Policy(4, Settings(estimate_dtype=torch.float64))
    assert fixed.measure_dtype() == torch.float64
    assert fixed.final_dtype(call, final(1.0), None, train) == torch.float64


@pytest.mark.parametrize("bad", [torch.float16, "float32", None, 64])
def test_bad_estimate_dtype_is_refused(bad):
    with pytest.raises(ValueError, match="estimate_dtype"):
        Settings(estimate_dtype=bad)


def test_trained_flow_is_sampled_in_float32_and_the_identity_in_float64(monkeypatch):
    """On the 8-D camel the final estimate pushes its points through the flow in float32
    (its relative error, ~1e-2, is far above FLOAT32_FLOOR); the measurements of plain RQMC
    and the grid stay in float64; the result is right."""
    seen: list[tuple[str, torch.dtype]] = []
    draw = Estimator.draw

    def spy(self, state, sampler, n, qmc):
        u, log_q = draw(self, state, sampler, n, qmc)
        seen.append(("identity" if sampler is None else "flow", u.dtype))
        return u, log_q

    monkeypatch.setattr(Estimator, "draw", spy)
    f = integrands.get("camel:dim=8")
    r = flowint.integrate(f, 8, budget=100_000, seed=0, **FAST)
    assert r.method == "flow" and abs(r.pull(f.exact)) < 5
    assert ("identity", torch.float64) in seen and ("flow", torch.float32) in seen
    assert ("flow", torch.float64) in seen  # the per-axis grid candidate
    r64 = flowint.integrate(f, 8, budget=100_000, seed=0, estimate_dtype=torch.float64, **FAST)
    assert abs(r64.pull(f.exact)) < 5 and r64.method == "flow"


def test_float32_rounding_is_far_below_the_weights_spread():
    """What ``estimate_dtype="auto"`` relies on: the same base points through a flow in
    float32 and in float64 give weights whose difference is below 1 % of the weights' own
    spread, point by point and in the mean — even for a badly fitted flow (random
    parameters; weights with a relative spread of hundreds, log q far in the tails)."""
    from flowint import make_flow

    f = integrands.get("camel:dim=8")
    gen = torch.Generator().manual_seed(1)
    flow = make_flow(8, dtype=torch.float32, hidden=64, grid=False)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    est = Estimator(8, gen, torch.float64)
    z = torch.rand(65_536, 8, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        x64, log_q64 = est.freeze(flow, torch.float64).transform_base(z)
        x32, log_q32 = est.freeze(flow, torch.float32).transform_base(z.float())
    assert x32.dtype == log_q32.dtype == torch.float32 and log_q64.dtype == torch.float64
    w64 = f(x64) * torch.exp(-log_q64)
    w32 = f(x32.double()) * torch.exp(-log_q32.double())
    spread = float(w64.std())
    assert spread > 10 * float(w64.mean())  # a bad sampler: extreme weights
    diff = w32 - w64
    assert float(diff.std()) < 0.01 * spread
    assert abs(float(diff.mean())) < 0.01 * spread / math.sqrt(w64.numel())
