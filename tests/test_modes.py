"""Multi-channel runs: channel maps, the mode search and ``channels=`` (modes or given maps)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _slow_integrands import CtrlC

import flowint
from flowint.channel_maps import IdentityMap, LogisticMap, map_from_plain
from flowint.run.channels import ChannelMixture
from flowint.run.mode_channels import channel_log_weights
from flowint.run.modes import find_modes, grow_modes, search_calls, unexplained
from integrands.peaks import ThreePeaks

FAST = dict(flow_options={"hidden": 8}, steps_per_batch=2, minibatch=256, batch_size=500,
            progress=False)
PEAKS2 = ThreePeaks(2, widths=(0.03, 0.06, 0.09))


def quiet(f, dim: int, budget: int, **settings) -> flowint.Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # small runs: weight diagnostics
        return flowint.integrate(f, dim, budget=budget, **{**FAST, **settings})


# ------------------------------------------------------------------ channel maps
def test_logistic_map_log_det_matches_autograd_and_inverts():
    m = LogisticMap([0.3, 0.05, 0.9], [0.02, 0.1, 0.3])
    u = torch.rand(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, log_det = m.forward(u)
    for i in range(u.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda v: m.forward(v[None])[0][0], u[i])
        assert float(log_det[i]) == pytest.approx(float(torch.linalg.slogdet(jac)[1]),
                                                  rel=1e-9, abs=1e-9)
    assert torch.allclose(m.inverse(x), u, atol=1e-9)
    assert torch.allclose(m.log_density(x), -log_det, atol=1e-9)
    assert bool(((x >= 0) & (x <= 1)).all())


def test_logistic_density_integrates_to_one_on_the_cube():
    m = LogisticMap([0.2], [0.05])
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)[:, None]
    rho = m.log_density(x).exp()
    assert float(torch.trapezoid(rho, x[:, 0])) == pytest.approx(1.0, abs=1e-8)


def test_maps_round_trip_as_plain_data_and_bad_maps_are_refused():
    m = LogisticMap([0.5, 0.25], [0.1, 0.2])
    again = map_from_plain(m.to_plain())
    u = torch.rand(5, 2, dtype=torch.float64)
    assert torch.equal(again.forward(u)[0], m.forward(u)[0])
    assert isinstance(map_from_plain(IdentityMap(3).to_plain()), IdentityMap)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        LogisticMap([1.5], [0.1])
    with pytest.raises(ValueError, match="positive"):
        LogisticMap([0.5], [0.0])
    with pytest.raises(ValueError, match="differ in length"):
        LogisticMap([0.5, 0.5], [0.1])
    with pytest.raises(ValueError, match="unknown channel map"):
        map_from_plain({"kind": "spiral"})


def test_channel_weights_partition_unity():
    maps = [IdentityMap(2), LogisticMap([0.3, 0.3], [0.05, 0.05]),
            LogisticMap([0.7, 0.6], [0.1, 0.02])]
    log_alpha = torch.log(torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64))
    x = torch.rand(1000, 2, dtype=torch.float64)
    w = channel_log_weights(maps, log_alpha, x).exp()
    assert torch.allclose(w.sum(0), torch.ones(1000, dtype=torch.float64), atol=1e-12)


# ------------------------------------------------------------------ the mode search
def test_search_finds_three_peaks_and_their_masses():
    """The three peaks of ``three_peaks`` in 4-D, each at its centre, with its Laplace mass
    (exact for a Gaussian: log of its weight, the peaks lying well inside the cube)."""
    f = ThreePeaks(4)
    calls = []

    def log_f(u):
        calls.append(u.shape[0])
        return torch.log(f(u))

    pilot, most = search_calls(50_000, 4)
    modes = find_modes(log_f, 4, pilot, torch.Generator().manual_seed(3), most)
    assert len(modes) == 3
    assert sum(calls) <= most
    for m, c, w in zip(modes, f.centers, f.weights, strict=True):  # largest mass first
        assert np.allclose(m.center, c, atol=1e-3)
        assert m.log_mass == pytest.approx(math.log(w), abs=1e-3)


def test_search_climbs_a_narrow_correlated_peak():
    """A correlated Gaussian likelihood (16-D, correlations up to 0.65, sd 0.01 on [-1, 1]):
    diagonal Newton steps stalled thousands of nats below its top; the quasi-Newton ascent
    and the polish reach it, with the peak's marginal widths and its mass."""
    from integrands.evidence import CorrelatedGaussian

    p = CorrelatedGaussian(16)
    calls = []

    def log_f(u):
        calls.append(u.shape[0])
        return p.log_likelihood(p.prior_transform(u))

    pilot, most = search_calls(200_000, 16)
    modes = find_modes(log_f, 16, pilot, torch.Generator().manual_seed(1), most)
    assert sum(calls) <= most
    top = (torch.as_tensor(p.mean) + 1.0) / 2.0  # the peak in the cube
    m = modes[0]
    assert m.log_peak == pytest.approx(float(log_f(top[None])), abs=0.05)
    marginal = np.sqrt(np.diag(p.cov)) / 2.0
    assert np.all(np.abs(np.array(m.center) - top.numpy()) < 0.2 * marginal)
    assert np.all((np.array(m.width) > 0.6 * marginal) & (np.array(m.width) < 1.2 * marginal))
    # the cube's integral is Z itself (uniform prior): the Laplace mass, within 1.5 nats
    assert m.log_mass == pytest.approx(p.log_z, abs=1.5)


def test_polish_keeps_distinct_modes_and_the_cube():
    """Too few calls for a polished ascent leave the modes as they are (an ascent of no step
    has no widths: two peaks 0.3 apart were merged); a mode on a face of the cube gets no
    Hessian (its steps would leave the cube), and its width across the face is measured by a
    line inward (where the calls allow)."""
    from flowint.run import modes as M

    d = 8
    centers = [torch.full((d,), 0.3, dtype=torch.float64), torch.full((d,), 0.6,
                                                                      dtype=torch.float64)]

    def log_f(u):
        assert bool(((u >= 0) & (u <= 1)).all())
        return torch.stack([-0.5 * (((u - c) / 0.02) ** 2).sum(1) for c in centers]
                           ).logsumexp(0)

    found = [M.Mode(tuple(c.tolist()), (0.02,) * d, 0.0, d * math.log(0.02 * math.sqrt(
        2 * math.pi))) for c in centers]
    for room in (100, 130, 300, 1000):
        assert len(M._polish(M._Counted(log_f), found, room)) == 2
    face = M.Mode((0.0, 0.5), (0.05, 0.05), 0.0, 0.0)

    def on_face(u):  # a peak centred on the face x = 0, widths 0.03 and 0.05
        assert bool(((u >= 0) & (u <= 1)).all())
        return -0.5 * ((u[:, 0] / 0.03) ** 2 + ((u[:, 1] - 0.5) / 0.05) ** 2)

    shaped = M._with_hessian_shape(on_face, face)
    assert shaped.width[1] == 0.05  # no Hessian next to the face: the other axis as it was
    assert shaped.width[0] == pytest.approx(0.03, rel=0.1)  # the line inward measures it
    assert shaped.log_mass == pytest.approx(math.log(shaped.width[0] / 0.05))
    assert M._with_hessian_shape(on_face, face, spare=M.FACE_LINE - 1) == face

    def cut(u):  # the same peak, f = 0 beyond x = 0.01: the line ends in -inf, a bound only
        v = on_face(u)
        return torch.where(u[:, 0] < 0.01, v, torch.full_like(v, -math.inf))

    assert 0.003 < M._with_hessian_shape(cut, face).width[0] < 0.01


def test_search_on_a_zero_integrand_finds_nothing():
    modes = find_modes(lambda u: torch.full((u.shape[0],), -math.inf, dtype=torch.float64),
                       2, 64, torch.Generator().manual_seed(0))
    assert modes == []


def test_unexplained_points_are_those_far_above_the_modes_found():
    f = ThreePeaks(2, widths=(0.03, 0.06, 0.09))
    u = torch.tensor([[0.25, 0.25], [0.75, 0.75], [0.5, 0.5]], dtype=torch.float64)
    lf = torch.log(f(u))
    modes = find_modes(lambda v: torch.log(f(v)), 2, 256, torch.Generator().manual_seed(0))
    # the second peak alone is known: the first one's centre is the worst explained point
    # (the middle, under the other peaks' tails, is unexplained too), its own centre is not
    only = [m for m in modes if abs(m.center[0] - 0.75) < 0.01]
    worst = unexplained(u, lf, only).tolist()
    assert worst[0] == 0 and 1 not in worst


def test_growth_finds_the_peak_the_known_modes_miss_and_nothing_else():
    """Given two of the three peaks, :func:`grow_modes` finds the third from points of the
    cube (where the known modes' Gaussians explain ``log f`` worst); given all three, none."""
    f = PEAKS2
    modes = find_modes(lambda v: torch.log(f(v)), 2, 256, torch.Generator().manual_seed(0))
    assert len(modes) == 3
    u = torch.as_tensor(np.random.default_rng(1).random((400, 2)))
    lf = torch.log(f(u))
    calls = []

    def log_f(v):
        calls.append(v.shape[0])
        return torch.log(f(v))

    for missing in range(3):
        known = [m for i, m in enumerate(modes) if i != missing]
        new = grow_modes(log_f, u, lf, known, room=2000)
        assert len(new) == 1, missing
        assert np.allclose(new[0].center, modes[missing].center, atol=0.01)
        assert new[0].log_mass == pytest.approx(modes[missing].log_mass, abs=0.1)
    assert sum(calls) <= 3 * 2000
    assert grow_modes(log_f, u, lf, modes, room=2000) == []
    assert grow_modes(log_f, u, lf, modes[1:], room=10) == []  # no room for an ascent


def test_a_peak_the_search_missed_gets_a_channel_after_the_pilots(monkeypatch):
    """The search is made to miss the heaviest, narrowest peak (half of the integral): the
    rest channel's pilot draws there, the growth gives it a channel of its own, and the
    estimate is right; the same run with the growth off leaves it to the rest channel."""
    import flowint.run.driver as driver
    import flowint.run.mode_channels as mc

    found = driver.modes_from_pilot

    def miss_first(*args, **kwargs):
        return [m for m in found(*args, **kwargs) if abs(m.center[0] - 0.25) > 0.05
                or abs(m.center[1] - 0.25) > 0.05]

    monkeypatch.setattr(driver, "modes_from_pilot", miss_first)
    pulls, seeds = [], range(4)
    for seed in seeds:
        r = quiet(PEAKS2, 2, 12_000, seed=seed, channels="modes")
        assert list(r.channels) == ["rest", "m0", "m1", "m2"]
        pulls.append(r.pull(PEAKS2.exact))
    assert np.abs(pulls).max() < 5
    monkeypatch.setattr(mc, "GROW_SHARE", 0.0)
    r = quiet(PEAKS2, 2, 12_000, seed=0, channels="modes")
    assert list(r.channels) == ["rest", "m0", "m1"]


def test_interrupted_run_that_grows_resumes_to_the_uninterrupted_result(tmp_path,
                                                                         monkeypatch):
    import flowint.run.driver as driver

    found = driver.modes_from_pilot
    monkeypatch.setattr(driver, "modes_from_pilot",
                        lambda *a, **k: [m for m in found(*a, **k) if m.center[0] > 0.4])
    run = dict(budget=8000, seed=4, channels="modes", **FAST)
    reference, result, interruptions = _interrupted(run, tmp_path / "grown.ckpt", parts=5)
    assert len(reference.channels) == 4  # one found by the search, two grown
    assert interruptions >= 4
    _same(result, reference)


def _interrupted(run: dict, path, parts: int) -> tuple[flowint.Result, flowint.Result, int]:
    """An uninterrupted run of ``PEAKS2``, and the same run interrupted (Ctrl-C) every
    ``1/parts`` of its calls and resumed from the checkpoint ``path`` until it finishes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        total = CtrlC(None, PEAKS2)
        reference = flowint.integrate(total, 2, **run)
        result, interruptions = None, 0
        while result is None:
            try:
                result = flowint.integrate(CtrlC(max(total.calls // parts, 2), PEAKS2), 2,
                                           checkpoint=path, **run)
            except KeyboardInterrupt:
                interruptions += 1
    return reference, result, interruptions


def _same(result: flowint.Result, reference: flowint.Result) -> None:
    assert (result.mean, result.sdev, result.n_evals) == \
        (reference.mean, reference.sdev, reference.n_evals)
    assert {c: r.mean for c, r in result.channels.items()} == \
        {c: r.mean for c, r in reference.channels.items()}


# ------------------------------------------------------------------ channels="modes"
def test_modes_run_is_unbiased_over_seeds_and_counts_every_call():
    pulls = []
    for seed in range(8):
        calls = []

        def f(x, calls=calls):
            calls.append(x.shape[0])
            return PEAKS2(x)

        r = quiet(f, 2, 12_000, seed=seed, channels="modes")
        assert r.method == "channels" and len(r.channels) == 4  # rest + three peaks
        assert sum(calls) == r.n_evals <= 12_000
        pulls.append(r.pull(PEAKS2.exact))
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 5 / math.sqrt(len(pulls))
    assert np.abs(pulls).max() < 5


def test_given_maps_are_the_channels():
    maps = [IdentityMap(2), LogisticMap([0.25, 0.25], [0.03, 0.03])]
    r = quiet(PEAKS2, 2, 8000, seed=1, channels=maps)
    assert list(r.channels) == ["c0", "c1"]
    assert abs(r.pull(PEAKS2.exact)) < 5


def test_an_identity_among_given_maps_keeps_the_rest_channels_floor():
    """The identity channel of given maps holds what the bumps leave, as a search's rest
    channel does, and its pilot's σ is as unreliable: it gets the same least share."""
    bumps = [LogisticMap(c, [w, w]) for c, w in zip(PEAKS2.centers, PEAKS2.widths, strict=True)]
    r = quiet(PEAKS2, 2, 20_000, seed=3, channels=[IdentityMap(2)] + bumps)
    assert r.channels["c0"].n_evals >= 0.2 * 0.9 * r.n_evals


def test_modes_in_log_space_far_below_one():
    """``log f = log(three peaks) - 800``: f underflows, the channels' sum is in log space."""
    r = quiet(lambda x: torch.log(PEAKS2(x)) - 800.0, 2, 12_000, seed=2, log=True,
              channels="modes")
    truth = math.log(PEAKS2.exact) - 800.0
    assert r.mean == 0.0 and math.isfinite(r.log_mean)
    assert abs(r.log_mean - truth) < 5 * r.log_sdev


def test_channels_setting_is_validated():
    with pytest.raises(ValueError, match="channels must be"):
        flowint.Integrator(2, channels="peaks")
    with pytest.raises(ValueError, match="channels must be"):
        flowint.Integrator(2, channels=[object()])
    with pytest.raises(ValueError, match="scalar integrand"):
        quiet(lambda x: torch.stack([PEAKS2(x), PEAKS2(x)], -1), 2, 8000, seed=0,
              channels="modes")


def test_after_a_modes_run_the_mixture_is_a_density_and_reloads(tmp_path):
    path = tmp_path / "modes.ckpt"
    integ = flowint.Integrator(2, seed=1, channels="modes", checkpoint=path, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(PEAKS2, 12_000)
    mix = integ.frozen_flow()
    assert isinstance(mix, ChannelMixture) and any(m is not None for m in mix.maps)
    gen = torch.Generator().manual_seed(0)
    x, log_q = mix.sample(40_000, seed=gen)
    inv = torch.exp(-log_q.to(torch.float64))  # E_q[1/q] is the volume of the cube, 1
    assert abs(float(inv.mean()) - 1.0) < 5 * float(inv.std()) / math.sqrt(len(inv))
    value = PEAKS2(x) * inv  # and f/q estimates the integral
    assert abs(float(value.mean()) - PEAKS2.exact) < 5 * float(value.std()) / math.sqrt(len(x))
    again = flowint.load_checkpoint(path)
    x0, w0 = integ.sample(500, seed=3)
    x1, w1 = again.sample(500, seed=3)
    assert torch.equal(x0, x1) and torch.equal(w0, w1)


def test_interrupted_modes_run_resumes_to_the_uninterrupted_result(tmp_path):
    run = dict(budget=8000, seed=4, channels="modes", **FAST)
    reference, result, interruptions = _interrupted(run, tmp_path / "modes.ckpt", parts=3)
    assert interruptions >= 2
    _same(result, reference)


def test_given_maps_must_be_passed_again_to_a_loaded_checkpoint(tmp_path):
    path = tmp_path / "maps.ckpt"
    maps = [IdentityMap(2), LogisticMap([0.25, 0.25], [0.03, 0.03])]
    integ = flowint.Integrator(2, seed=1, channels=maps, checkpoint=path, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ(PEAKS2, 8000)
    bare = flowint.load_checkpoint(path)
    with pytest.raises(ValueError, match="pass them again"):
        bare.sample(10)
    again = flowint.load_checkpoint(path, channels=maps)
    x0, w0 = integ.sample(200, seed=5)
    x1, w1 = again.sample(200, seed=5)
    assert torch.equal(x0, x1) and torch.equal(w0, w1)


def test_disparity_is_one_for_equal_peaks_and_large_for_a_narrow_heavy_one():
    from flowint.run.modes import Mode, disparity

    def mode(width, log_mass, dim=8):  # a Gaussian peak: its height from mass and widths
        log_peak = log_mass - dim * math.log(width * math.sqrt(2 * math.pi))
        return Mode((0.5,) * dim, (width,) * dim, log_peak, log_mass)

    assert disparity([mode(0.1, 0.0)]) == 1.0
    assert disparity([mode(0.1, 0.0), mode(0.1, 0.0)]) == pytest.approx(1.0)
    # half the mass in a peak of half the width in 8-D: 2^8 / 2 = 128 times its volume share
    ratio = disparity([mode(0.05, math.log(0.5)), mode(0.1, math.log(0.5))])
    assert ratio == pytest.approx(0.5 / (0.5**8 / (1 + 0.5**8)))
    # equal heights (points of a ridge: a shell) are not disparate, whatever the shapes the
    # Hessians give them
    ridge = [Mode((0.5,) * 8, (0.1,) * 8, 3.0, 3.0 + v) for v in (-20.0, -17.0, -22.0)]
    assert disparity(ridge) == pytest.approx(1.0)


def test_auto_splits_only_disparate_peaks():
    """Unequal peaks (a narrow heavy one: disparity ~60 in 2-D) go on as channels; milder
    ones (``PEAKS2``, disparity 7) and equal ones keep one flow, with the search's pilot in
    the history."""
    needle = ThreePeaks(2, widths=(0.01, 0.06, 0.09))
    unequal = quiet(needle, 2, 12_000, seed=1, channels="auto")
    assert unequal.method == "channels"
    assert abs(unequal.pull(needle.exact)) < 5
    assert quiet(PEAKS2, 2, 12_000, seed=1, channels="auto").method != "channels"
    equal = ThreePeaks(2, widths=(0.05, 0.05, 0.05), weights=(1.0, 1.0, 1.0))
    r = quiet(equal, 2, 12_000, seed=1, channels="auto")
    assert r.method != "channels" and not r.channels
    assert [h.phase for h in r.history][0] == "search"
    assert abs(r.pull(equal.exact)) < 5
