"""Sign-changing integrands as two channels (``signed=``; :mod:`flowint.run.channels`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _interrupting import Interrupting
from _slow_integrands import gauss, gauss_exact

import flowint
from flowint.result import IterationRecord
from flowint.run.allocation import MIN_CHANNEL_SHARE, SIGN_SHARE
from flowint.run.channels import ChannelMixture
from flowint.run.policy import Policy
from flowint.run.settings import Settings
from flowint.run.state import Measurement, RunState
from integrands.peaks import SignedCamel

# small flows, few gradient steps, fixed batches: a split run of 6000 calls takes about 1 s
FAST = dict(flow_options={"hidden": 8}, steps_per_batch=2, minibatch=256, batch_size=500,
            progress=False)
CAMEL = SignedCamel(dim=2)


class Counted(Interrupting):
    """The signed camel, counting the points it is called with; raises KeyboardInterrupt (a
    Ctrl-C) at its ``at``-th call."""

    def __init__(self, at: int | None = None):
        super().__init__(CAMEL, at)


def quiet(f, budget: int, **settings) -> flowint.Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # small runs: weight diagnostics
        return flowint.integrate(f, 2, budget=budget, **{**FAST, **settings})


# ------------------------------------------------------------------ settings and decisions
def test_setting_is_validated():
    assert Settings().signed == "auto"
    with pytest.raises(ValueError, match="signed must be one of"):
        Settings(signed="yes")
    with pytest.raises(ValueError, match="log=False"):
        Settings(signed="split", log=True)


def test_policy_splits_on_both_signs_and_allocates_by_sigma():
    policy = Policy(2, Settings())
    assert not policy.split_due({"signs": [1.0, 0.0]}, 1e5)
    assert not policy.split_due({"signs": [1.0, 0.5 * SIGN_SHARE]}, 1e5)
    assert not policy.split_due({"signs": [1.0, 0.5]}, 100)  # too few calls left
    call = {"signs": [1.0, 0.5]}
    assert policy.split_due(call, 1e5) and call["split"] == {}
    assert not Policy(2, Settings(signed="off")).split_due({"signs": [1.0, 0.5]}, 1e5)
    assert not Policy(2, Settings(log=True)).split_due({"signs": [1.0, 0.5]}, 1e5)
    assert Policy(2, Settings(signed="split")).split_due({}, 1e5)

    pilot = [IterationRecord("train", 100, 2.0, 0.02, 0.1)] * 4  # ρ = 0.1, I = 2: σ = 0.2
    assert policy.channel_sigma(pilot) == pytest.approx((0.2, 2.0))
    assert all(math.isnan(v) for v in policy.channel_sigma([]))
    alloc = policy.channel_budgets(100_000, {"+": 3.0, "-": 1.0})
    assert alloc == {"+": 75_000, "-": 25_000}
    tiny = policy.channel_budgets(100_000, {"+": 1.0, "-": 0.0})
    assert tiny["-"] == int(MIN_CHANNEL_SHARE * 100_000) and sum(tiny.values()) == 100_000
    assert policy.channel_budgets(1000, {"+": math.nan, "-": 1.0}) == {"+": 500, "-": 500}
    goals = policy.channel_goals(None, 0.01, {"+": 1.0, "-": 0.5}, {"+": 3.0, "-": 1.0})
    assert goals["+"] ** 2 + goals["-"] ** 2 == pytest.approx(1e-4)
    assert goals["+"] / goals["-"] == pytest.approx(math.sqrt(3.0))
    assert policy.channel_goals(None, None, {"+": 1.0}, {"+": 1.0}) == {"+": None}


def test_a_flow_trained_before_the_call_is_not_passed_over_for_a_static_sampler():
    """A channel's call starts with a flow its pilot trained: a static sampler that would
    suffice against an untrained flow must first be compared with training on."""
    policy = Policy(2, Settings())
    smooth = [list(Measurement(64 * 4**i, 8, 1.0, (64.0 * 4**i) ** -3, 0.5)) for i in range(3)]

    def action(trained: bool) -> str:
        call = {"measures": {"identity": smooth}, "explore_n": 0, "history_start": 0,
                "key": {"budget": 10**6, "time_limit": None}, "batch": 1000,
                "train_cap": 8e5, "n_train": None, "trained": trained}
        return policy.next_action(call, RunState(), 1e6, None).kind

    assert action(False) == "final" and action(True) == "train"


# ------------------------------------------------------------------ what a split run does
def test_auto_splits_a_signed_integrand_and_counts_each_call_once():
    f = Counted()
    r = quiet(f, 8000, seed=1, qmc=False)  # no exploration: training sees both signs
    assert r.method == "channels" and set(r.channels) == {"+", "-"}
    assert r.mean == pytest.approx(r.channels["+"].mean - r.channels["-"].mean)
    assert r.sdev == pytest.approx(math.hypot(r.channels["+"].sdev, r.channels["-"].sdev))
    assert r.channels["+"].mean > 0 and r.channels["-"].mean > 0
    assert r.n_evals == f.points <= 8000  # f evaluated once per point, every call counted
    assert sum(p.n_evals for p in r.channels.values()) < r.n_evals  # points seen before
    assert all(p.seconds["train"] > 0 for p in r.channels.values())
    assert r.n_evals_final == sum(p.n_evals_final for p in r.channels.values())
    assert abs(r.pull(CAMEL.exact)) < 5
    assert "channel +:" in r.summary() and "channel -:" in r.summary()


def test_auto_leaves_positive_integrands_alone():
    integ = flowint.Integrator(2, seed=1, qmc=False, backend="numpy", **FAST)
    r = integ(gauss, 8000)
    assert r.method == "flow" and r.channels == {} and integ.channels == {}
    assert abs(r.pull(gauss_exact(2))) < 5


def test_forced_split_of_a_positive_integrand_has_an_empty_negative_channel():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # tested below
        r = flowint.integrate(gauss, 2, budget=8000, seed=1, signed="split", backend="numpy",
                              **FAST)
    assert r.method == "channels" and r.channels["-"].mean == 0.0 == r.channels["-"].sdev
    assert r.channels["-"].n_evals < r.channels["+"].n_evals / 4  # the policy gave it little
    assert r.mean == r.channels["+"].mean and abs(r.pull(gauss_exact(2))) < 5
    assert sum(p.n_evals for p in r.channels.values()) == r.n_evals  # split at once


def test_off_keeps_one_density_at_the_single_density_bound():
    """One density for both signs: the i.i.d. rel. std per sample cannot go below
    √((∫|f|/I)² − 1) = 2.9; the split goes far below it with the same calls."""
    one = quiet(CAMEL, 30_000, seed=2, qmc=False, signed="off")
    split = quiet(CAMEL, 30_000, seed=2, qmc=False)
    assert one.method == "flow" and one.channels == {}
    assert one.rel_std > 2.0
    assert split.method == "channels" and split.rel_std < 0.5 * one.rel_std
    assert abs(split.pull(CAMEL.exact)) < 5 and abs(one.pull(CAMEL.exact)) < 5


def test_split_with_n_train_trains_each_channel_on_half_and_estimates_the_rest():
    r = quiet(CAMEL, 9000, seed=5, signed="split", n_train=5000, qmc=False)
    assert r.method == "channels"
    assert [p.n_evals_train for p in r.channels.values()] == [2500, 2500]  # the pilots
    assert r.n_evals - r.n_evals_final == 5000  # 2500 training calls per channel
    assert 3000 <= r.n_evals_final <= 4000  # whole batches of the 4000 left
    assert abs(r.pull(CAMEL.exact)) < 5


def test_split_estimate_is_unbiased_over_seeds():
    """Pulls of 16 seeds (quasi-random final estimates, 16 randomizations per channel): mean
    within 5σ of 0, spread that of unit pulls."""
    pulls = np.array([quiet(CAMEL, 6000, seed=s, signed="split").pull(CAMEL.exact)
                      for s in range(16)])
    assert abs(pulls.mean()) < 5 / math.sqrt(len(pulls))
    assert 0.4 < pulls.std(ddof=1) < 1.8


def test_channel_warnings_are_prefixed():
    """A forced split of a positive integrand: the negative channel is zero everywhere and
    says so, prefixed, both as a raised warning and in ``result.warnings``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = flowint.integrate(gauss, 2, budget=8000, seed=1, signed="split", backend="numpy",
                              **FAST)
    raised = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(m.startswith("channel -: the integrand was zero") for m in raised)
    assert all(m.startswith(("channel +: ", "channel -: ")) for m in raised)
    assert r.warnings and all(w.startswith(("channel +: ", "channel -: ")) for w in r.warnings)


def test_vector_and_log_integrands_keep_one_density():
    def both(x):  # a signed and a positive component
        return torch.stack([CAMEL(x), torch.exp(-((x - 0.4) ** 2).sum(-1) / 0.04)], -1)

    r = quiet(both, 8000, seed=1, qmc=False)
    assert r.method == "flow" and r.channels == {}
    assert abs(r.components[0] - CAMEL.exact) < 5 * math.sqrt(r.covariance[0][0])
    assert abs(r.components[1] - gauss_exact(2)) < 5 * math.sqrt(r.covariance[1][1])
    with pytest.raises(ValueError, match="scalar integrand"):
        quiet(both, 8000, seed=1, signed="split")

    def log_gauss(x):
        return -((x - 0.4) ** 2).sum(-1) / 0.04

    r = quiet(log_gauss, 8000, seed=1, qmc=False, log=True)
    assert r.method == "flow" and abs(r.log_pull(math.log(gauss_exact(2)))) < 5


def test_error_target_is_shared_between_the_channels():
    r = quiet(CAMEL, 200_000, seed=3, signed="split", rtol=0.02)
    assert r.n_evals < 200_000  # stopped on the target
    assert r.rel_error < 0.03 and abs(r.pull(CAMEL.exact)) < 5


def test_after_a_split_the_integrator_samples_the_mixture_of_its_channels():
    integ = flowint.Integrator(2, seed=1, signed="split", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = integ(CAMEL, 8000)
    mix = integ.frozen_flow()
    assert isinstance(mix, ChannelMixture)
    total = r.channels["+"].mean + r.channels["-"].mean
    assert mix.alpha.tolist() == pytest.approx([r.channels[c].mean / total for c in "+-"])
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(100_000, 2, generator=gen, dtype=torch.float64)
    q = mix.log_prob(u).exp()  # a density: it integrates to one
    assert abs(float(q.mean()) - 1.0) < 5 * float(q.std()) / math.sqrt(len(q))
    x, log_q = mix.sample(20_000, seed=gen)  # the points follow the density they carry:
    inv = torch.exp(-log_q.to(torch.float64))  # E_q[1/q] is the volume of the cube, 1
    assert abs(float(inv.mean()) - 1.0) < 5 * float(inv.std()) / math.sqrt(len(inv))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est = integ.estimate(CAMEL, 16_384)  # one density (the mixture) for f: unbiased
    assert abs(est.pull(CAMEL.exact)) < 5
    x, w = integ.sample(20_000, seed=1)
    value = CAMEL(x) * w
    assert abs(float(value.mean()) - CAMEL.exact) < 5 * float(value.std()) / math.sqrt(20_000)
    # a later call that does not split samples the integrator's own flow again
    auto = integ.with_settings(signed="auto")
    auto(lambda y: torch.exp(-((y - 0.4) ** 2).sum(-1) / 0.04), 4000)
    assert auto.channels and not isinstance(auto.frozen_flow(), ChannelMixture)


# ------------------------------------------------------------------ checkpoints
def exact(r: flowint.Result) -> tuple:
    return (r.mean, r.sdev, r.chi2, r.n_evals,
            {c: (p.mean, p.sdev, p.n_evals) for c, p in r.channels.items()})


def _stage(path) -> str:
    """Where the interrupted split call stood at its last checkpoint."""
    if not path.exists():
        return "none"
    split = (torch.load(path, weights_only=True)["state"]["call"] or {}).get("split")
    if not split:
        return "before"
    if len(split["piloted"]) < len(split["names"]):
        return f"pilot {len(split['piloted'])}"
    return f"channel {len(split['results'])}"


def test_interrupted_split_run_resumes_to_the_uninterrupted_result(tmp_path):
    run = dict(budget=8000, seed=4, signed="split", **{**FAST, "batch_size": 200})
    total = Counted()
    reference = flowint.integrate(total, 2, **run)
    path = tmp_path / "split.ckpt"
    stages, result = [], None
    while result is None:  # Ctrl-C every few calls of f, each time resumed from the checkpoint
        at = 2 if len(stages) < 3 else max(total.calls // 3, 2)
        try:
            result = flowint.integrate(Counted(at), 2, checkpoint=path, **run)
        except KeyboardInterrupt:
            stages.append(_stage(path))
    assert {"pilot 0", "pilot 1", "channel 0", "channel 1"} <= set(stages)
    assert exact(result) == exact(reference)
    blob = torch.load(path, weights_only=True)
    assert set(blob["channels"]) == {"+", "-"}  # each channel's own flow, optimizer, state
    path.unlink()
    with pytest.raises(KeyboardInterrupt):  # once more, now counting the calls after it
        flowint.integrate(Counted(2 * total.calls // 3), 2, checkpoint=path, **run)
    done = torch.load(path, weights_only=True)["state"]["n_evals"]
    again = Counted()
    resumed = flowint.integrate(again, 2, checkpoint=path, **run)
    assert exact(resumed) == exact(reference)
    assert again.points == reference.n_evals - done  # nothing evaluated twice
    # the finished run, once more: the stored result, nothing evaluated
    idle = Counted()
    assert exact(flowint.integrate(idle, 2, checkpoint=path, **run)) == exact(reference)
    assert idle.calls == 0


def test_a_finished_split_run_checkpoints_its_mixture(tmp_path):
    """The mixture weights are written after the split, so an integrator loaded from the
    checkpoint of a finished run samples the mixture of its channels, not its own flow."""
    path = tmp_path / "split.ckpt"
    integ = flowint.Integrator(2, seed=1, signed="split", checkpoint=path, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(CAMEL, 8000)
    again = flowint.load_checkpoint(path)
    assert again.state.split_weights == integ.state.split_weights
    assert isinstance(again.frozen_flow(), ChannelMixture)
    x0, w0 = integ.sample(500, seed=3)
    x1, w1 = again.sample(500, seed=3)
    assert torch.equal(x0, x1) and torch.equal(w0, w1)


def test_a_split_checkpoint_from_another_device_rederives_every_random_state(tmp_path):
    """A checkpoint written on another device (here: marked so, with generator states this
    device cannot take): the parent's and each channel's random streams are re-derived."""
    path = tmp_path / "split.ckpt"
    integ = flowint.Integrator(2, seed=1, signed="split", checkpoint=path, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(CAMEL, 8000)
    blob = torch.load(path, weights_only=True)
    alien = torch.arange(16, dtype=torch.uint8)  # not a CPU generator state

    def mark(state):
        return dict(state, rng_device="cuda", rng=alien.clone())

    blob = mark(blob)
    blob["channels"] = {c: dict(ch, state=mark(ch["state"]))
                        for c, ch in blob["channels"].items()}
    torch.save(blob, path)
    with pytest.warns(RuntimeWarning, match="random stream"):
        again = flowint.load_checkpoint(path)
    assert set(again.channels) == {"+", "-"}
    again.sample(100, seed=2)


def _split(**settings) -> flowint.Integrator:
    """An integrator that split the signed camel 2-D in a short call with ``settings``."""
    integ = flowint.Integrator(2, seed=1, signed="split", **{**FAST, **settings})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(CAMEL, 6000)
    return integ


def _part_kwargs(integ: flowint.Integrator) -> list[dict]:
    return [integ.channels[c].flow.config["kwargs"] for c in ("+", "-")]


def test_the_parts_flows_take_the_part_options_under_the_users(monkeypatch):
    """A split's parts get exp knot derivatives, floors of 1e-5 and the integrator's bins
    with the default "rqs", twice the bins with long training (the user's flow_options win);
    a pwq flow and a user's Flow object are left alone."""
    from flowint.run import allocation
    from flowint.run.channels import PART_FLOW_OPTIONS, part_flow_options
    from flowint.run.settings import default_flow_options

    for kw in _part_kwargs(_split()):
        assert kw["derivative"] == PART_FLOW_OPTIONS["derivative"] == "exp"
        assert kw["min_width"] == PART_FLOW_OPTIONS["min_width"] and kw["hidden"] == 8
        assert kw["bins"] == default_flow_options("rqs", 2)["bins"] == 8
    for kw in _part_kwargs(_split(flow_options={"hidden": 8, "min_width": 1e-4, "bins": 5})):
        assert kw["derivative"] == "exp" and kw["min_width"] == 1e-4 and kw["bins"] == 5
    assert part_flow_options(3, 2)["bins"] == 2 * default_flow_options("rqs", 3)["bins"] == 8
    rich = allocation.PART_RICH_CALLS
    assert allocation.ChannelDecisions.part_bins_factor(None) == 1
    assert allocation.ChannelDecisions.part_bins_factor(2 * rich - 2) == 1
    assert allocation.ChannelDecisions.part_bins_factor(2 * rich) == 2
    monkeypatch.setattr(allocation, "PART_RICH_CALLS", 1000)
    integ = flowint.Integrator(2, seed=1, signed="split", **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(CAMEL, 6000, n_train=4000)  # a third each: 1,333 ≥ the patched 1,000
    assert [kw["bins"] for kw in _part_kwargs(integ)] == [16, 16]
    for kw in _part_kwargs(_split(flow="pwq")):
        assert "derivative" not in kw and kw["kind"] == "pwq" and kw["min_width"] == 1e-3
    own = flowint.make_flow(2, hidden=8, grid=False, seed=0)
    for kw in _part_kwargs(_split(flow=own)):
        assert "derivative" not in kw  # a Flow given by the user is copied as it is


def test_a_split_after_loading_a_checkpoint_builds_the_same_part_flows(tmp_path):
    """An integrator loaded from a checkpoint holds a Flow rebuilt from the recipe; a split it
    makes afterwards builds its parts as the original integrator would, from "rqs"."""
    path = tmp_path / "one.ckpt"
    integ = flowint.Integrator(2, seed=1, signed="off", checkpoint=path, **FAST)
    integ(CAMEL, 4000)
    again = flowint.load_checkpoint(path)
    assert again.flow_kind == "rqs" and integ.flow_kind == "rqs"
    runs = [one.with_settings(signed="split") for one in (integ, again)]
    for one in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            one(CAMEL, 6000)
    assert _part_kwargs(runs[1]) == _part_kwargs(runs[0])
    assert all(kw["derivative"] == "exp" for kw in _part_kwargs(runs[1]))


def test_the_parts_decay_their_learning_rate_further_unless_the_user_sets_it():
    """lr_final=None (the default): the integrator's own trainer decays to LR_FINAL, a
    split's parts to PART_LR_FINAL; a user's lr_final holds for both."""
    from flowint.run.channels import PART_LR_FINAL
    from flowint.run.settings import LR_FINAL

    integ = _split()
    assert integ.settings.lr_final is None and integ.trainer.lr_final == LR_FINAL
    assert PART_LR_FINAL < LR_FINAL
    assert [integ.channels[c].trainer.lr_final for c in ("+", "-")] == [PART_LR_FINAL] * 2
    integ = _split(lr_final=0.05)
    assert [one.trainer.lr_final for one in (integ, *integ.channels.values())] == [0.05] * 3
    with pytest.raises(ValueError, match="lr_final"):
        flowint.Integrator(2, lr_final=1.5)


def test_resuming_a_split_warns_where_its_parts_rate_would_change(tmp_path):
    """A split checkpointed with ``lr_final=0.1`` has parts that decayed to 0.1; resumed under
    the default (parts to PART_LR_FINAL) it warns, resumed alike it does not."""
    for rate, warns in ((0.1, True), (None, False)):
        path = tmp_path / f"split_{rate}.ckpt"
        _split(lr_final=rate, checkpoint=path)
        if warns:
            with pytest.warns(RuntimeWarning, match="lr_final"):
                flowint.Integrator(2, seed=1, signed="split", checkpoint=path, **FAST)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                flowint.Integrator(2, seed=1, signed="split", checkpoint=path, **FAST)


# ------------------------------------------------------------------ the residual channel
def _interrupted(run: dict, total: Counted, path) -> tuple[flowint.Result, list[str]]:
    """``run`` interrupted (a Ctrl-C at the 2nd call of ``f`` four times, then at a third of
    the uninterrupted run's calls, ``total``) and resumed from ``path`` until it finishes;
    its result and the stages it was interrupted at."""
    stages, result = [], None
    while result is None:
        at = 2 if len(stages) < 4 else max(total.calls // 3, 2)
        try:
            result = flowint.integrate(Counted(at), 2, checkpoint=path, **run)
        except KeyboardInterrupt:
            stages.append(_stage(path))
    return result, stages


@pytest.fixture
def residual(monkeypatch):
    """The Policy plans and takes the residual channel whenever it can (small flows never fit
    well enough for it on their own, and a call without ``n_train`` does not plan it)."""
    from flowint.run.allocation import ChannelDecisions

    monkeypatch.setattr(ChannelDecisions, "residual_planned", staticmethod(lambda call: True))
    monkeypatch.setattr(ChannelDecisions, "residual_fits", staticmethod(lambda s, m: True))
    monkeypatch.setattr(ChannelDecisions, "residual_wins", staticmethod(lambda s, m: True))


def test_the_residual_integrates_to_its_coefficients_less_the_integral():
    """``∫A = c⁺ − c⁻ − I`` for any flows, since ``q±`` are densities on the cube: here the
    trained parts' flows of a short split, on uniform points (5σ)."""
    from flowint.run.split import ResidualPart

    integ = _split()
    flows = {c: integ.channels[c].frozen_flow() for c in "+-"}

    class Plain:
        evaluate = staticmethod(CAMEL)

    part = ResidualPart(Plain(), flows, {"+": 1.3, "-": 0.4})
    u = torch.rand(400_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = part(u)
    assert abs(float(a.mean()) - (1.3 - 0.4 - CAMEL.exact)) < 5 * float(a.std()) / math.sqrt(
        len(a))
    dens = flows["+"].log_prob(u).exp()  # the test has power: q⁺ is far from uniform
    assert float(dens.max()) > 2.0


def test_residual_decisions():
    from flowint.run.allocation import RESIDUAL_MARGIN
    from flowint.run.allocation import ChannelDecisions as D

    means = {"+": 1.0, "-": 0.5}
    fit = {"+": 0.9 * RESIDUAL_MARGIN, "-": 0.9 * RESIDUAL_MARGIN * 0.5}
    assert D.residual_fits(fit, means)
    assert not D.residual_fits({**fit, "-": 1.1 * RESIDUAL_MARGIN * 0.5}, means)
    assert not D.residual_fits({**fit, "+": math.nan}, means)
    assert not D.residual_fits(fit, {**means, "-": 0.0})
    means = {**means, "r": 0.2}
    assert D.residual_wins({"+": 0.1, "-": 0.05, "r": 0.149}, means)
    assert not D.residual_wins({"+": 0.1, "-": 0.05, "r": 0.151}, means)
    assert not D.residual_wins({"+": 0.1, "-": 0.05, "r": math.nan}, means)
    assert not D.residual_wins({"+": 0.1, "-": 0.05}, means)
    assert not D.residual_wins({"+": 0.1, "-": 0.05, "r": 0.0}, {**means, "r": -0.1})


def test_a_split_ending_in_its_residual_combines_it_with_the_coefficients(residual):
    """The rest of the calls after the pilots goes to the residual channel alone: the result
    is ``c⁺ − c⁻ − ∫A`` with ``c± = (1 ± m) Î±`` from the pilots' means (which the mixture
    the integrator samples afterwards takes), every point evaluated once, ``n_train`` calls
    of training in all."""
    from flowint.run.allocation import RESIDUAL_MARGIN as M

    f = Counted()
    integ = flowint.Integrator(2, seed=1, signed="split", qmc=False, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = integ(f, 9000, n_train=6000)
    assert r.method == "channels" and set(r.channels) == {"r"}
    w = integ.state.split_weights
    assert set(w) == {"+", "-"}
    offset = (1 + M) * w["+"] - (1 - M) * w["-"]
    assert r.mean == pytest.approx(offset - r.channels["r"].mean, rel=1e-12)
    assert r.sdev == r.channels["r"].sdev
    assert f.points == r.n_evals and 8000 < r.n_evals <= 9000
    assert r.n_evals - r.n_evals_final == 6000
    assert [integ.channels[c].state.n_evals for c in "+-"] == [2000, 2000]
    assert abs(r.pull(CAMEL.exact)) < 5
    mix = integ.frozen_flow()  # the parts' mixture: the residual's flow follows A, not |f|
    assert len(mix.flows) == 2 and float(mix.alpha.sum()) == pytest.approx(1.0)


def test_a_residual_split_is_unbiased_over_seeds(residual):
    """Pulls of 16 seeds of splits that end in the residual channel (i.i.d. finals)."""
    pulls = np.array([quiet(CAMEL, 6000, seed=s, signed="split", qmc=False).pull(CAMEL.exact)
                      for s in range(16)])
    assert abs(pulls.mean()) < 5 / math.sqrt(len(pulls))
    assert 0.4 < pulls.std(ddof=1) < 1.8


@pytest.mark.parametrize("n_train", [None, 6000])
def test_an_interrupted_residual_split_resumes_to_the_uninterrupted_result(tmp_path, residual,
                                                                           n_train):
    """Without ``n_train`` (the pilots, then the residual's own call) and with it (the
    residual's estimate alone): interrupted at every stage, resumed to the same result."""
    run = dict(budget=8000 if n_train is None else 9000, n_train=n_train, seed=4,
               signed="split", qmc=False, **{**FAST, "batch_size": 100})
    total = Counted()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = flowint.integrate(total, 2, **run)
        assert set(reference.channels) == {"r"}
        result, stages = _interrupted(run, total, tmp_path / "residual.ckpt")
    assert ("pilot 2" if n_train is None else "pilot 1") in stages and "channel 0" in stages
    assert exact(result) == exact(reference)


def test_with_n_train_the_parts_are_topped_up_where_the_residual_does_not_fit(tmp_path):
    """Small flows do not fit within the residual's margin: no residual pilot, each part
    trains on half of ``n_train`` (its third, then half of the residual's, going on from
    ``TOP_UP_START`` of the schedule), and an interrupted run resumes to the same result."""
    from flowint.run.split import TOP_UP_START

    run = dict(budget=9000, n_train=6000, seed=2, signed="split", qmc=False,
               **{**FAST, "batch_size": 250})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ = flowint.Integrator(2, **{k: v for k, v in run.items()
                                         if k not in ("budget", "n_train")})
        reference = integ(Counted(), run["budget"], n_train=run["n_train"])
        assert set(reference.channels) == {"+", "-"}
        trained = [sum(h.n for h in integ.channels[c].history if h.phase == "train")
                   for c in "+-"]
        assert trained == [3000, 3000]
        assert integ.channels["r"].state.n_evals == 0  # planned, never piloted
        lrs = [h.lr for h in integ.channels["+"].history if h.phase == "train"]
        top_up = lrs[len(lrs) * 2 // 3:]  # the last third: the top-up, at a decayed rate
        assert max(top_up) < 0.5 * max(lrs) and TOP_UP_START == pytest.approx(2 / 3)
        total = Counted()
        flowint.integrate(total, 2, **run)
        result, stages = _interrupted(run, total, tmp_path / "topped.ckpt")
    assert "pilot 2" in stages or "pilot 1" in stages
    assert exact(result) == exact(reference)


def test_a_later_call_with_n_train_adds_the_residual_channel_to_an_earlier_split():
    """An integrator that split without ``n_train`` (two channels) splits again with it:
    the residual channel is built then, the parts go on with their flows."""
    integ = flowint.Integrator(2, seed=1, signed="split", qmc=False, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(CAMEL, 8000)
        assert set(integ.channels) == {"+", "-"}
        r = integ(CAMEL, 9000, n_train=6000)
    assert set(integ.channels) == {"+", "-", "r"} and abs(r.pull(CAMEL.exact)) < 5


def test_a_budget_with_nothing_left_after_n_train_still_gives_a_result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = flowint.integrate(CAMEL, 2, budget=6001, n_train=6000, seed=1, signed="split",
                              qmc=False, **FAST)
    assert set(r.channels) == {"+", "-"} and math.isfinite(r.mean)
