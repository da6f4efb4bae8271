"""Channel weights ``α`` learned from the pilots' points (:mod:`flowint.run.alpha`)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import flowint
from flowint.channel_maps import IdentityMap, LogisticMap
from flowint.run.alpha import learn_alpha, log_weight, spread
from flowint.run.mode_channels import channel_log_weights
from flowint.run.policy import Policy
from flowint.run.settings import Settings
from integrands.peaks import ThreePeaks

FAST = dict(flow_options={"hidden": 8}, steps_per_batch=2, minibatch=256, batch_size=500,
            progress=False)
PEAKS2 = ThreePeaks(2, widths=(0.03, 0.06, 0.09))


def _points(maps, f, log_alpha, n: int, seed: int):
    """Each channel's points ``x = T_c(u)``, ``u`` uniform (a flow at the identity), with
    ``log ρ_j(x)`` and ``log r = log |g_c(u)|`` under ``α = exp(log_alpha)``."""
    g = torch.Generator().manual_seed(seed)
    log_rho, log_r = [], []
    for c, m in enumerate(maps):
        u = torch.rand(n, m.dim, generator=g, dtype=torch.float64)
        x, log_det = m.forward(u)
        rho = torch.stack([mm.log_density(x) for mm in maps])
        log_rho.append(rho)
        log_r.append(torch.log(f(x)) + log_weight(rho, log_alpha, c) + log_det)
    return log_rho, log_r


def test_learned_alpha_makes_the_exact_partition():
    """``f = a ρ₁ + b ρ₂`` and flows at the identity: ``α ∝ (a, b)`` makes every channel's
    weight constant (``Σ σ_c = 0``); the fit from ``α = (½, ½)`` finds it."""
    maps = [LogisticMap([0.3, 0.4], [0.05, 0.1]), LogisticMap([0.7, 0.6], [0.08, 0.04])]
    a, b = 0.7, 0.3

    def f(x):
        return a * maps[0].log_density(x).exp() + b * maps[1].log_density(x).exp()

    start = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    log_rho, log_r = _points(maps, f, start, 4000, seed=0)
    fit = learn_alpha(log_rho, log_r, start, torch.Generator().manual_seed(1))
    assert fit.log_alpha.exp().tolist() == pytest.approx([a, b], abs=1e-6)
    assert fit.check[1] < 1e-8 * fit.check[0]
    assert Policy.alpha_accepted(fit.check)
    assert not Policy.alpha_accepted((fit.check[0], 0.96 * fit.check[0]))


def test_learned_alpha_stays_within_the_trust_factor():
    """The exact partition is ``α ∝ (19, 1)``; from ``(½, ½)`` with ``trust = 3`` the fit
    can reach a ratio of 9 at most, and does."""
    maps = [LogisticMap([0.3], [0.05]), LogisticMap([0.7], [0.08])]

    def f(x):
        return 0.95 * maps[0].log_density(x).exp() + 0.05 * maps[1].log_density(x).exp()

    start = torch.zeros(2, dtype=torch.float64)
    log_rho, log_r = _points(maps, f, start, 4000, seed=2)
    fit = learn_alpha(log_rho, log_r, start, torch.Generator().manual_seed(3), trust=3.0)
    ratio = float((fit.log_alpha[0] - fit.log_alpha[1]).exp())
    assert 8.9 < ratio <= 9.0 + 1e-9
    assert fit.check[1] < fit.check[0]


def test_spread_is_the_sum_of_the_channels_standard_deviations():
    maps = [IdentityMap(1), LogisticMap([0.5], [0.1])]
    alpha = torch.log(torch.tensor([0.2, 0.8], dtype=torch.float64))
    log_rho, log_r = _points(maps, lambda x: 1.0 + x[:, 0] ** 2, alpha, 500, seed=4)
    expected = sum(float(torch.exp(r).std(correction=0)) for r in log_r)
    assert float(spread(log_rho, log_r, alpha, alpha, 0.0)) == pytest.approx(expected, rel=1e-12)
    new = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    moved = [r - log_weight(rho, alpha, c) + log_weight(rho, new, c)
             for c, (rho, r) in enumerate(zip(log_rho, log_r, strict=True))]
    assert float(spread(log_rho, log_r, alpha, new, 0.0)) == pytest.approx(
        sum(float(torch.exp(r).std(correction=0)) for r in moved), rel=1e-12)


def test_nothing_to_learn_leaves_alpha():
    one = learn_alpha([torch.zeros(1, 10)], [torch.zeros(10)], torch.zeros(1),
                      torch.Generator().manual_seed(0))
    assert one.log_alpha.tolist() == [0.0] and math.isnan(one.check[0])
    assert not Policy.alpha_accepted(one.check)
    zeros = learn_alpha([torch.zeros(2, 10)] * 2, [torch.full((10,), -math.inf)] * 2,
                        torch.zeros(2), torch.Generator().manual_seed(0))
    assert zeros.log_alpha.exp().tolist() == pytest.approx([0.5, 0.5])


def test_learn_alpha_is_a_validated_setting():
    assert Settings().learn_alpha is True
    with pytest.raises(ValueError, match="learn_alpha must be True or False"):
        flowint.Integrator(2, learn_alpha="yes")


#: Given maps for ``PEAKS2``: the identity and a logistic bump on each peak, equal ``α``.
BUMPS = [IdentityMap(2)] + [LogisticMap([float(v) for v in c], [w, w])
                            for c, w in zip(PEAKS2.centers, PEAKS2.widths, strict=True)]
#: Flows that do not learn (a learning rate of 1e-9): each channel's density stays its map's
#: ``ρ_c``, the classic multi-channel setting where ``α`` is all there is to adapt.
FROZEN = {**FAST, "lr": 1e-9}


def _run(seed: int, learn: bool, maps=BUMPS, settings=FROZEN) -> tuple[flowint.Result, dict]:
    """A multi-channel run of ``PEAKS2`` with given ``maps``: its result and ``rec["tuned"]``."""
    import flowint.run.mode_channels as mc

    seen = {}
    tune = mc.ModeRun.tune

    def spy(self, rec):
        tune(self, rec)
        seen.update(rec["tuned"] or {})
        if rec["tuned"] and rec["tuned"]["accepted"]:  # the buffers moved to the new α
            for i, c in enumerate(self.names):
                u, log_t, _ = self.integ.channels[c].state.buffer[-1]
                x, log_det = self.maps[i].forward(u.to(torch.float64))
                want = torch.log(PEAKS2(x)) + log_det + \
                    channel_log_weights(self.maps, self.log_alpha, x)[i]
                seen.setdefault("moved", []).append(float((log_t - want).abs().max()))

    mc.ModeRun.tune = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            r = flowint.integrate(PEAKS2, 2, budget=8000, seed=seed, channels=maps,
                                  learn_alpha=learn, **settings)
    finally:
        mc.ModeRun.tune = tune
    return r, seen


def test_given_maps_learn_alpha_and_stay_unbiased():
    """Four given channels with equal ``α`` and flows that do not learn: the pilots' points
    show that the identity channel should take less; where the held-out points confirm the
    gain the learned ``α`` is taken (the buffers' targets move with it) and the result reports
    it; the estimates are right over seeds. With ``learn_alpha=False`` ``α`` stays equal."""
    pulls, taken = [], 0
    for seed in range(4):
        r, tuned = _run(seed, True)
        assert set(r.channel_alpha) == {"c0", "c1", "c2", "c3"}
        assert sum(r.channel_alpha.values()) == pytest.approx(1.0)
        assert tuned["fit"][1] < tuned["fit"][0]
        if tuned["accepted"]:
            taken += 1
            assert tuned["after"] <= 0.95 * tuned["before"]
            assert r.channel_alpha["c0"] < 0.1  # the identity hands the peaks to the bumps
            assert len(tuned["moved"]) == 4 and max(tuned["moved"]) < 1e-4  # u in float32
        else:
            assert r.channel_alpha == pytest.approx(dict.fromkeys(r.channel_alpha, 0.25))
        pulls.append(r.pull(PEAKS2.exact))
    assert taken >= 2
    assert np.abs(pulls).max() < 5
    off, tuned = _run(0, False)
    assert off.channel_alpha == pytest.approx(dict.fromkeys(off.channel_alpha, 0.25))
    assert not tuned


def test_a_search_run_reports_its_alpha():
    r, tuned = _run(1, True, maps="modes", settings=FAST)
    assert list(r.channel_alpha) == list(r.channels) == ["rest", "m0", "m1", "m2"]
    assert f"channel m0: {r.channels['m0']}  (α = " in r.summary()
    assert set(tuned) >= {"before", "after", "accepted", "fit"}


def test_interrupted_run_with_learned_alpha_resumes_to_the_uninterrupted_result(tmp_path):
    """Interrupted (Ctrl-C) every fifth of its calls and resumed from the checkpoint, a run
    whose learned α is taken ends where the uninterrupted one does."""
    from test_modes import _interrupted

    run = dict(budget=8000, seed=0, channels=BUMPS, **FROZEN)
    reference, result, interruptions = _interrupted(run, tmp_path / "alpha.ckpt", parts=5)
    assert interruptions >= 4
    assert reference.channel_alpha["c0"] < 0.1  # the learned α was taken
    assert result.channel_alpha == reference.channel_alpha
    assert (result.mean, result.sdev, result.n_evals) == \
        (reference.mean, reference.sdev, reference.n_evals)
