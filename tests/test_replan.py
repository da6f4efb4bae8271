"""Re-planning a final estimate whose sets turn out too small for its error target
(flowint.run.replan): the decision, the seconds model, and whole runs that re-plan."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from _slow_integrands import CountCalls, CtrlC

import flowint
import integrands
from flowint.result import IterationRecord
from flowint.run.policy import Action, Policy
from flowint.run.replan import REPLAN_GAIN, REPLAN_MARGIN, replan, set_costs

K = 8  # sets per measurement record


def _history(o: float, c: float, n: int, k: int = 16) -> list[IterationRecord]:
    """A measurement record of K sets of 16 points, then k final sets of n points, timed
    as o + c * points per set."""
    measured = IterationRecord("flow", 16 * K, 1.0, 0.1, 1.0, time=K * (o + 16 * c))
    return [measured] + [IterationRecord("final", n, 1.0, 0.1, 1.0, time=o + c * n)
                         for _ in range(k)]


def _weights(n: int, k: int = 16) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [1.0 + torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(k)]


def test_set_costs_recovers_the_fixed_and_per_point_seconds():
    hist = _history(o=5e-3, c=2e-6, n=1024)
    o, c = set_costs(hist[1:], hist[:1], 1024, K)
    assert o == pytest.approx(5e-3) and c == pytest.approx(2e-6)
    # one size only: all of a set's seconds count as fixed
    assert set_costs(hist[1:], [], 1024, K) == (pytest.approx(5e-3 + 2e-6 * 1024), 0.0)


def test_small_sets_with_a_large_fixed_cost_grow():
    n, k_max = 64, 300_000
    action = Action("final", "flow", n, k_max, 1e-9)
    hist = _history(o=5e-3, c=1e-5, n=n)
    sdev, goal = 10.0, 1.0  # 1.05 * 16 * 100 = 1680 sets of 64 in all
    out = replan({"history_start": 0}, action, _weights(n), sdev, goal, hist, 1, K)
    assert out is not None
    new, measurement, first_look = out
    calls = REPLAN_MARGIN * 1.05 * 16 * 100 * n  # the predicted need, with a margin
    assert new.n == 2 ** math.floor(math.log2(calls / 16)) and new.n > n
    assert new.k == (k_max - 16) * n // new.n
    assert new.candidate == "flow" and new.planned_var == action.planned_var
    assert measurement[:2] == [n, 16]
    # the new sets are counted before they are drawn: no look at the goal before them
    assert first_look == math.ceil(calls / new.n) >= 16
    # the decision it made: predicted seconds under REPLAN_GAIN of going on
    assert first_look * (5e-3 + 1e-5 * new.n) < REPLAN_GAIN * (1680 - 16) * (5e-3 + 1e-5 * n)


def test_small_sets_stay_where_points_cost_more_than_sets():
    n = 64
    action = Action("final", "flow", n, 300_000, 1e-9)
    hist = _history(o=5e-3, c=1e-3, n=n)  # an expensive integrand: calls dominate
    assert replan({"history_start": 0}, action, _weights(n), 10.0, 1.0, hist, 1, K) is None


@pytest.mark.parametrize("k, sdev, goal", [(15, 10.0, 1.0), (16, 0.9, 1.0), (16, math.inf, 1.0)])
def test_no_replan_before_the_first_look_or_once_the_goal_is_met(k, sdev, goal):
    n = 64
    action = Action("final", "flow", n, 300_000, 1e-9)
    hist = _history(o=5e-3, c=1e-5, n=n, k=k)
    assert replan({"history_start": 0}, action, _weights(n, k), sdev, goal, hist, 1, K) is None


def test_no_replan_when_the_calls_left_allow_no_larger_sets():
    n = 64
    action = Action("final", "flow", n, 40, 1e-9)  # 24 sets of 64 left: 96 per set at most
    hist = _history(o=5e-3, c=1e-5, n=n)
    assert replan({"history_start": 0}, action, _weights(n), 10.0, 1.0, hist, 1, K) is None


def _tiny_plan(monkeypatch, need: float = 64.0) -> None:
    """Make the policy plan the final estimate for ``need`` calls: sets of need / 16."""
    monkeypatch.setattr(Policy, "calls_needed", lambda self, *a, **k: need)


def _final_sizes(r: flowint.Result) -> set[int]:
    return {h.n for h in r.history if h.phase == "final"}


def test_a_run_whose_plan_was_far_too_small_grows_its_sets_and_stays_right(monkeypatch):
    """Sets of 4 points planned; the first look at 16 of them starts the final estimate again
    with sets sized from their spread, and those 16 sets (and only they) make the result.
    Over seeds the pulls stay centred and bounded."""
    _tiny_plan(monkeypatch)
    f = integrands.get("gaussian:dim=2")
    pulls = []
    for seed in range(20):
        r = flowint.integrate(f, 2, budget=400_000, rtol=1e-5, seed=seed, progress=False)
        assert r.method in ("identity", "interlaced", "grid")  # static: no training
        relabelled = [h for h in r.history if h.phase == r.method and h.n == 4]
        assert len(relabelled) == 16  # the abandoned sets, now a measurement
        (size,) = _final_sizes(r)
        assert size > 4
        finals = [h for h in r.history if h.phase == "final"]
        assert r.n_evals_final == sum(h.n for h in finals) >= 16 * size
        first_look = math.ceil(REPLAN_MARGIN * 1.05 * (16 * 4) / size)  # at least, see above
        assert len(finals) >= max(first_look, 16)
        assert abs(r.mean - f.exact) <= 1e-5 * abs(f.exact) * 6  # goal met within 6 bars
        pulls.append(r.pull(f.exact))
    t = torch.tensor(pulls)
    assert abs(float(t.mean())) < 5 / math.sqrt(len(pulls))
    assert float(t.abs().max()) < 5


def test_without_the_regrowth_the_tiny_sets_would_run_on(monkeypatch):
    """The same run with re-planning switched off keeps its sets of 4 points (the test above
    would pass vacuously if the plan were not tiny)."""
    _tiny_plan(monkeypatch)
    monkeypatch.setattr(Policy, "replan", lambda self, *a, **k: None)
    f = integrands.get("gaussian:dim=2")
    r = flowint.integrate(f, 2, budget=20_000, rtol=1e-5, seed=0, progress=False)
    assert _final_sizes(r) == {4}


def test_ctrl_c_after_a_replan_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    _tiny_plan(monkeypatch)
    run = dict(budget=400_000, rtol=1e-5, seed=3, progress=False, backend="numpy")
    counting = CtrlC(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = flowint.integrate(counting, 2, **run)
    sizes = [h.n for h in reference.history if h.phase == "final"]
    assert len(set(sizes)) == 1 and sizes[0] > 4 and len(sizes) > 3
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):  # one call per final set: in the third after it
        flowint.integrate(CtrlC(counting.calls - len(sizes) + 3), 2, checkpoint=path, **run)
    counter = CountCalls()
    resumed = flowint.integrate(counter, 2, checkpoint=path, **run)
    key = [(h.phase, h.n, h.mean, h.sdev) for h in reference.history]
    assert [(h.phase, h.n, h.mean, h.sdev) for h in resumed.history] == key
    assert (resumed.mean, resumed.sdev) == (reference.mean, reference.sdev)
    assert 0 < counter.points < reference.n_evals
