"""Adaptive stratification (:mod:`flowint.run.strata`) and the Policy's stratified candidate."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _interrupting import Interrupting

import flowint
import integrands
from flowint.run.estimator import Estimator, scrambled_sobol
from flowint.run.policy import Policy
from flowint.run.settings import Settings
from flowint.run.state import Measurement, RunState
from flowint.run.statics import JUMP_RATIO, STRATA_GATE, STRATA_ZONE
from flowint.run.strata import (
    MAX_DIM,
    NEIGHBOUR_FLOOR,
    OWN_POINTS,
    Stratified,
    add_to_sums,
    allocate,
    cell_index,
    cell_sigmas,
    cells_per_axis,
    predicted_var,
    set_var,
    strata_sums,
)

RING = integrands.get("annulus")


def test_cells_per_axis_is_the_largest_grid_that_fits():
    assert cells_per_axis(2, 4096) == 64 and cells_per_axis(2, 4095) == 63
    assert cells_per_axis(3, 4096) == 16 and cells_per_axis(3, 4095) == 15
    assert cells_per_axis(2, 3) == 0  # not even 2 × 2


def test_cells_are_numbered_row_major_and_the_last_cell_holds_points_near_one():
    u = torch.tensor([[0.0, 0.0], [0.0, 0.99], [0.26, 0.0], [1.0 - 1e-16, 1.0 - 1e-16]],
                     dtype=torch.float64)
    assert cell_index(u, 4).tolist() == [0, 3, 4, 15]
    sums = strata_sums(u, torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), 4, 2)
    assert sums[:, 3].tolist() == [1.0, 2.0, 4.0] and float(sums[0].sum()) == 4.0
    twice = add_to_sums(sums, u, torch.ones(4, dtype=torch.float64), 4)
    assert twice[:, 0].tolist() == [2.0, 2.0, 2.0] and float(sums[0].sum()) == 4.0  # a copy


def test_allocation_gives_every_cell_a_point_and_the_rest_in_proportion():
    sig = torch.tensor([0.0, 1.0, 3.0, 0.0], dtype=torch.float64)
    a = allocate(sig, 404)
    assert a.tolist() == [1, 101, 301, 1] and int(a.sum()) == 404
    odd = allocate(torch.tensor([1.0, 1.0, 1.0]), 10)  # the remainder goes somewhere whole
    assert int(odd.sum()) == 10 and sorted(odd.tolist()) == [3, 3, 4]
    assert allocate(torch.zeros(4), 8).tolist() == [2, 2, 2, 2]  # nothing known: even
    with pytest.raises(ValueError, match="at least one point per cell"):
        allocate(sig, 3)


def test_a_cell_the_jump_crosses_unseen_is_found_through_its_neighbours():
    """A jump along ``x₁ = 0.5`` on a 4 × 4 grid, two points per cell, none of them in the
    cells' jump (there is none inside a cell here): the cells beside the jump get the pooled
    spread, those two cells away none."""
    x = torch.tensor([[(i + 0.25) / 4, (j + 0.5) / 4] for i in range(4) for j in range(4)]
                     + [[(i + 0.75) / 4, (j + 0.5) / 4] for i in range(4) for j in range(4)],
                     dtype=torch.float64)
    fx = (x[:, 0] >= 0.5).to(torch.float64)
    sig = cell_sigmas(strata_sums(x, fx, 4, 2), 4, 2).reshape(4, 4)
    assert bool((sig[1:3] > 0.3).all())  # rows i = 1, 2 border the jump
    assert bool((sig[0] == 0).all()) and bool((sig[3] == 0).all())


def test_a_cells_own_spread_counts_once_it_has_enough_points():
    """With :data:`OWN_POINTS` points that all agree, a cell next to a jump keeps only
    :data:`NEIGHBOUR_FLOOR` of its neighbourhood's spread; with fewer, all of it."""
    rng = np.random.default_rng(0)
    for n, expect in ((OWN_POINTS, NEIGHBOUR_FLOOR), (OWN_POINTS - 1, 1.0)):
        u = torch.as_tensor(rng.random((4000, 2)))
        u = torch.cat([u[cell_index(u, 4) != 5], torch.full((n, 2), 0.3, dtype=torch.float64)])
        fx = (u[:, 0] >= 0.5).to(torch.float64)  # cell 5 (0.25–0.5 × 0.25–0.5) is pure
        sums = strata_sums(u, fx, 4, 2)
        sig = cell_sigmas(sums, 4, 2)
        assert float(sig[5]) > 0
        box = sums.reshape(3, 4, 4)[:, 0:3, 0:3].sum((1, 2))
        spread = math.sqrt(float(box[2] / box[0] - (box[1] / box[0]) ** 2)
                           * float(box[0]) / float(box[0] - 1))
        assert float(sig[5]) == pytest.approx(expect * spread, rel=1e-9)


def test_stratified_sets_put_their_allotted_points_in_each_cell_with_a_density():
    sig = torch.rand(64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = Stratified(2, 8, sig)
    z = torch.rand(1000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    u, log_q = s.transform_base(z)
    alloc = allocate(sig, 1000)
    assert torch.equal(torch.bincount(cell_index(u, 8), minlength=64), alloc)
    assert bool(((u >= 0) & (u < 1)).all())
    q = torch.exp(log_q)
    # q is n_c K / n on cell c: a density, ∫q = Σ_c q_c / K = 1
    per_cell = torch.zeros(64, dtype=torch.float64)
    per_cell[cell_index(u, 8)] = q
    assert float(per_cell.sum()) / 64 == pytest.approx(1.0, rel=1e-12)
    assert torch.allclose(per_cell, alloc.to(torch.float64) * 64 / 1000)
    with pytest.raises(ValueError, match="64 cell spreads"):
        Stratified(2, 8, torch.ones(63))


def test_stratified_set_means_are_unbiased_pulls_over_200_sets():
    """The set means of an indicator and of a smooth function, over 200 scrambled sets of
    2,048 points each allotted by an arbitrary spread, are within 5σ of the exact values."""
    gen = torch.Generator().manual_seed(3)
    sig = torch.rand(256, generator=gen, dtype=torch.float64) ** 4  # very uneven
    s = Stratified(2, 16, sig)
    ring, smooth = [], []
    for _ in range(200):
        z = scrambled_sobol(2048, 2, gen, torch.float64, torch.device("cpu"))
        u, log_q = s.transform_base(z)
        w = torch.exp(-log_q)
        ring.append(float((RING(u) * w).mean()))
        smooth.append(float((u[:, 0] * u[:, 1] ** 2 * w).mean()))
    for means, exact in ((ring, float(RING.exact)), (smooth, 1 / 6)):
        m = np.array(means)
        assert abs(m.mean() - exact) < 5 * m.std(ddof=1) / math.sqrt(len(m))


def test_a_stratified_3d_set_is_unbiased_too():
    """A ball in 3-D on 6³ cells, 100 scrambled sets of 1,024 points: within 5σ."""
    gen = torch.Generator().manual_seed(4)
    sig = torch.rand(216, generator=gen, dtype=torch.float64)
    s = Stratified(3, 6, sig)
    means = []
    for _ in range(100):
        u, log_q = s.transform_base(scrambled_sobol(1024, 3, gen, torch.float64,
                                                    torch.device("cpu")))
        inside = (((u - 0.5) ** 2).sum(-1) <= 0.35**2).to(torch.float64)
        means.append(float((inside * torch.exp(-log_q)).mean()))
    m = np.array(means)
    assert abs(m.mean() - 4 / 3 * math.pi * 0.35**3) < 5 * m.std(ddof=1) / math.sqrt(len(m))


def test_the_estimator_passes_a_stratified_set_whole():
    """Above the Estimator's 4,096-point chunks the set is still allotted as one (uneven
    spreads: chunks allotted one by one would round differently)."""
    sig = torch.arange(1, 17, dtype=torch.float64) ** 2
    est = Estimator(2, torch.Generator().manual_seed(0), torch.float32)
    u, log_q = est.draw(RunState(), Stratified(2, 4, sig, torch.float32), 10_000, qmc=True)
    assert u.dtype == torch.float32 and float(u.max()) < 1.0
    assert torch.bincount(cell_index(u.double(), 4), minlength=16).tolist() == \
        allocate(sig, 10_000).tolist()
    assert log_q.dtype == torch.float64


# ------------------------------------------------------------------ the Policy
def _plan_for(f, dim: int, seed: int = 1, n1: int = 128, left: float = 1e6):
    """The stratified plan after the identity's exploration of ``f`` as a call makes it:
    8 scrambled Sobol sets at ``n1``, ``4 n1`` and ``16 n1`` points, their measurements' model."""
    from flowint.run.model import model

    est = Estimator(dim, torch.Generator().manual_seed(seed), torch.float64)
    seen, ms = [], []
    for n in (n1, 4 * n1, 16 * n1):
        sets = [est.draw(RunState(), None, n, qmc=True)[0] for _ in range(8)]
        values = [f(u) for u in sets]
        ms.append(list(Estimator.measurement(values)))
        seen.append([torch.cat(sets), torch.cat(values)])
    ident = model(ms)
    call: dict = {"seen": seen}
    return Policy(dim, Settings()).strata_plan(call, ident, left), call, ident


def test_the_plan_measures_stratified_sets_on_a_jump_and_not_on_a_smooth_integrand():
    plan, call, ident = _plan_for(RING, 2)
    assert plan["measure"] and plan["m"] == 64 and plan["n"] == 8192
    assert plan["predicted"] < STRATA_GATE * ident.var(1e6)
    assert call["strata"] is plan  # decided once
    gauss = integrands.get("gaussian:dim=2")
    smooth, _, ident_s = _plan_for(gauss, 2)
    assert not smooth["measure"]
    assert smooth["predicted"] > STRATA_GATE * ident_s.var(1e6)
    assert _plan_for(lambda u: RING(u[:, :2]), MAX_DIM + 1)[0] is None  # too many dims
    # the jump's cells are few: a fifth of the cells have a spread near them; every cell of
    # the smooth gaussian has one
    assert 0.15 < plan["zone"] < 0.3 and smooth["zone"] == 1.0
    # on 16² cells (10⁵ calls) the ring's neighbourhoods cover most of the square: no plan
    coarse = _plan_for(RING, 2, n1=16, left=1e5)[0]
    assert coarse["m"] == 16 and coarse["zone"] > STRATA_ZONE and not coarse["measure"]
    # the same points with plain RQMC predicted 10⁴× better: not measured
    better = ident._replace(v1=ident.v1 * plan["predicted"] / ident.var(1e6) / 1e4)
    assert not Policy(2, Settings()).strata_plan({"seen": call["seen"]}, better, 1e6)["measure"]
    few = _plan_for(RING, 2, n1=2, left=1000)[0]  # a measurement of 8 × 8: 2 × 2 cells
    assert few == {"m": 2, "measure": False}


def test_the_plan_stays_within_its_share_of_the_calls_left():
    plan, _, _ = _plan_for(RING, 2, n1=16, left=1e5)
    assert plan["n"] * 8 <= 0.08 * 1e5 and plan["m"] == 16


def _measured(plan: dict, var_mean: float) -> tuple[dict, list]:
    mean = float(RING.exact)
    call = {"strata": plan, "measures": {
        "identity": [list(Measurement(n, 8, mean, 1e-2 * (n / 128) ** -2.5, 1.0, 1.0))
                     for n in (128, 512, 2048)],
        "strata": [list(Measurement(plan["n"], 8, mean, var_mean, 1.0, 1.0))]}}
    return call, call["measures"]["strata"]


def test_the_stratified_model_scales_the_spreads_prediction_by_the_measured_ratio():
    plan, _, _ = _plan_for(RING, 2)
    m, mean = plan["m"], float(RING.exact)
    sig = cell_sigmas(plan["sums"], m, 2)
    seen = set_var(sig, allocate(sig, plan["n"])) / mean**2  # no new points: same spreads
    policy = Policy(2, Settings())
    for ratio in (0.5, 2.0):
        call, ms = _measured(plan, ratio * seen)
        model = policy.static_model(call, "strata")
        for n in (2**13, 2**16):
            expect = set_var(sig, allocate(sig, n)) / mean**2 * ratio * (n / plan["n"]) ** -0.5
            assert model.set_var(n) == pytest.approx(expect, rel=1e-9)
            assert model.var(16 * n, 16) == pytest.approx(expect / 16, rel=1e-9)
        assert model.a == 1.5 and model.set_var(4095) == math.inf  # under a point per cell
        # an error target's calls: the smallest power-of-two set (of 16) that meets it
        goal = model.set_var(2**14) / 16
        assert model.calls_for(goal) == 16 * 2**14 and model.calls_for(goal * 1.01) == 16 * 2**14
        assert model.calls_for(goal * 0.99) == 16 * 2**15
    # with stratified sets measured, plain RQMC's fitted rate (2.5) is capped at 1 + 1/dim
    assert policy.static_model(call, "identity").a == 1.5 and policy.strata_jump(call)
    # … unless their variance is far below what i.i.d. points in the cells would give: the
    # cells are smooth inside, no jump; the sets are then not a candidate either
    smooth, _ = _measured(plan, 0.99 * JUMP_RATIO * seen)
    assert not policy.strata_jump(smooth) and not policy.static_model(smooth, "strata").reliable
    assert policy.static_model(smooth, "identity").a == pytest.approx(2.5)
    edge, _ = _measured(plan, 1.01 * JUMP_RATIO * seen)
    assert policy.strata_jump(edge) and policy.static_model(edge, "strata").reliable
    del call["measures"]["strata"]
    assert policy.static_model(call, "identity").a == pytest.approx(2.5)


def test_no_jump_is_read_from_a_zero_mean_or_a_constant_integrand():
    plan, _, _ = _plan_for(RING, 2)
    zero, _ = _measured(plan, 1e-3)
    zero["measures"]["strata"][0][2] = 0.0  # Measurement.mean: the ratio is not finite
    policy = Policy(2, Settings())
    assert not policy.strata_jump(zero) and not policy.static_model(zero, "strata").reliable
    flat, _, _ = _plan_for(lambda u: torch.ones(u.shape[0], dtype=u.dtype), 2)
    assert flat["zone"] == 0.0 and not flat["measure"]  # no spread anywhere: nothing to gain


def test_the_final_sets_keep_a_point_per_cell_when_few_calls_are_left():
    """A time limit can leave fewer calls than the plan expected: the final sets still have
    a point in every cell, and the model predicts no variance for smaller ones; a
    measurement too dear for what is left is skipped."""
    plan, _, _ = _plan_for(RING, 2)
    seen = set_var(*(lambda s: (s, allocate(s, plan["n"])))(
        cell_sigmas(plan["sums"], plan["m"], 2))) / float(RING.exact) ** 2
    call, _ = _measured(plan, 0.5 * seen)
    policy = Policy(2, Settings())
    action = policy.final_action(call, "strata", 20_000, None, [])
    assert action.n >= 4096 and action.n * action.k <= 20_000
    assert policy.static_model(call, "strata").var(20_000) == math.inf
    done = [list(Measurement(n, 8, float(RING.exact), 1e-2 * (n / 128) ** -1.5, 1.0, 1.0))
            for n in (128, 512, 2048)]  # the identity and the grid measured, a jump's rate
    fresh = {"strata": plan, "measures": {"identity": done, "grid": done},
             "explore_n": 128, "history_start": 0, "key": {"budget": 1e6}, "batch": 4000,
             "train_cap": 5e5}
    assert policy.static_candidates(fresh["measures"], fresh, 1e6)[-1] == "strata"
    from flowint.run.state import RunState as _State

    assert policy.next_action(dict(fresh, measures=dict(fresh["measures"])), _State(), 1e6,
                              None)[:2] == ("measure", "strata")
    step = policy.next_action(fresh, _State(), 1e5, None)  # 8 × 8,192 > 16 % of 10⁵
    assert step.candidate != "strata" and "strata" in fresh["explored"]


def test_a_rescaled_log_run_keeps_the_cells_sums_in_its_units():
    """``RunState.rescale`` (``log=True``) moves the plan's sums with the measurements, so
    the measured ratio is unchanged."""
    plan, _, _ = _plan_for(RING, 2)
    call, ms = _measured(plan, 1e-4)
    state = RunState()
    state.log_scale, state.call = 0.0, call
    before = Policy(2, Settings()).strata_ratio(call["strata"], ms)
    state.rescale(70.0)
    after = Policy(2, Settings()).strata_ratio(call["strata"], call["measures"]["strata"])
    assert after == pytest.approx(before, rel=1e-9)
    assert float(call["strata"]["pilot_sums"][0].sum()) == float(plan["sums"][0].sum())


def test_a_ring_ends_in_stratified_sets_at_a_quarter_of_plain_rqmcs_error():
    """The annulus at 1.1·10⁶ calls: stratified sets, an error bar under 2·10⁻⁵ (plain RQMC's
    RMS error is 4.2·10⁻⁵, and 5.0·10⁻⁵ for flowint before this candidate), and a pull
    within 5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(RING, 2, budget=1_100_000, seed=1, progress=False)
    assert r.method == "strata" and r.sdev < 2e-5 and abs(r.pull(float(RING.exact))) < 5
    assert r.n_evals <= 1_100_000


def test_predicted_var_is_infinite_without_a_point_per_cell_or_an_integral():
    sums = strata_sums(torch.rand(100, 2, dtype=torch.float64), torch.ones(100), 4, 2)
    assert math.isfinite(predicted_var(sums, 4, 2, 16)) and predicted_var(sums, 4, 2, 15) == \
        math.inf
    zero = strata_sums(torch.rand(100, 2, dtype=torch.float64), torch.zeros(100), 4, 2)
    assert predicted_var(zero, 4, 2, 64) == math.inf


def test_an_interrupted_stratified_run_resumes_to_the_uninterrupted_result(tmp_path):
    run = dict(budget=1_100_000, seed=1, progress=False)
    total = Interrupting(RING)
    reference = flowint.integrate(total, 2, **run)
    assert reference.method == "strata"
    path = tmp_path / "strata.ckpt"
    planned, result = [], None
    while result is None:  # a Ctrl-C after every measurement (8 calls of f) and in the final
        try:
            result = flowint.integrate(Interrupting(RING, 9), 2, checkpoint=path, **run)
        except KeyboardInterrupt:
            call = torch.load(path, weights_only=True)["state"]["call"] or {}
            planned.append("strata" in call.get("measures", {}))
    assert planned.count(True) >= 2 and len(planned) >= 8  # resumed after its measurement
    assert (result.mean, result.sdev, result.n_evals, result.method) == \
        (reference.mean, reference.sdev, reference.n_evals, reference.method)
