"""Diagnostics of the error bar (``flowint.stats``): tail index, ESS, weight share, kurtosis.

Unit tests of the estimators on weights with known tails, then end-to-end: a deliberately
under-trained flow on the 16-d camel must raise a warning, a well-trained flow on an easy
integrand must not. Fixed seeds; tolerances are about 5 standard deviations of the estimators.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import integrands
from flowint import DEFAULTS, Integrator
from flowint.result import IterationRecord
from flowint.stats import (
    THRESHOLDS,
    _gpd_shape,
    combine_final,
    pareto_k,
    pareto_k_threshold,
    scaled_mean_std,
    weight_diagnostics,
)

SMALL_FLOW = {"hidden": 8, "bins": 8, "n_layers": 2}
#: Explicit training settings (independent of the library's defaults).
TRAIN: dict[str, Any] = {k: v for k, v in {"progress": False, "steps_per_batch": 4,
                                           "minibatch": None}.items() if k in DEFAULTS}


def _lomax(xi: float, n: int, seed: int) -> np.ndarray:
    """Generalised Pareto samples with shape ``xi`` (numpy's ``pareto`` is the Lomax law)."""
    return np.random.default_rng(seed).pareto(1.0 / xi, n)


# --------------------------------------------------------------------------- tail index
@pytest.mark.parametrize("xi", [0.3, 0.6, 0.9])
def test_pareto_k_recovers_known_shape(xi: float) -> None:
    # sd of k̂ with M = 3√16000 = 380 tail points is about 0.06-0.1; 0.3 is ~4-5 sd.
    k = pareto_k(_lomax(xi, 16_000, seed=1))
    assert abs(k - xi) < 0.3


def test_pareto_k_bounded_and_light_tails() -> None:
    rng = np.random.default_rng(2)
    assert pareto_k(rng.random(16_000)) < -0.5  # bounded: k = -1
    assert abs(pareto_k(rng.exponential(size=16_000))) < 0.3  # exponential tail: k = 0


def _clustered_tail(far: float) -> np.ndarray:
    """Bounded weights whose largest 1342 (= 3√200000) sit in two tight clusters: 600 at the
    threshold 1.25 and 200 near ``far`` (the piecewise-constant weights of an indicator sampled
    through a per-axis grid look like this with ``far`` ≈ 3.4)."""
    rng = np.random.default_rng(4)
    w = 1.2 * rng.random(200_000)
    w[:600] = 1.25 + 1e-3 * rng.random(600)
    w[600:800] = far * (1.0 + 0.1 * rng.random(200))
    return w


def test_pareto_k_is_not_fooled_by_a_clustered_bounded_tail() -> None:
    w = _clustered_tail(3.3)
    a = np.sort(w)
    m = math.ceil(3 * math.sqrt(w.size))
    # the generalised Pareto fit alone reads the gap as a very heavy tail ...
    assert _gpd_shape((a[-m:] - a[-m - 1]) / a[-1]) > 2.0
    # ... Hill's log-spread (largest weight < 3 × the threshold) bounds it
    assert pareto_k(w) < 0.3
    assert not any("Pareto" in m for m in weight_diagnostics(torch.as_tensor(w))["warnings"])
    # the same clusters 1000× out are a heavy tail, and still read as one
    assert pareto_k(_clustered_tail(1000.0)) > 0.9


def test_annulus_grid_weights_do_not_warn_of_a_heavy_tail() -> None:
    """The case behind the Hill bound: the annulus's indicator through the per-axis grid the
    policy adapts from 16,384 uniform points, 983,040 final weights (as at 1.1e6 calls)."""
    from flowint.run.static_samplers import adapted_grid, grid_flow

    f = integrands.get("annulus")
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(16_384, 2, generator=gen, dtype=torch.float64)
    x, log_q = grid_flow(adapted_grid([[u, f(u)]], f), torch.float64).sample(983_040, seed=gen)
    w = np.sort((f(x) * torch.exp(-log_q)).numpy())
    m = math.ceil(3 * math.sqrt(w.size))
    assert w[-1] < 3.0 * w[-m - 1]  # bounded: the largest weight within 3× the tail threshold
    assert _gpd_shape((w[-m:] - w[-m - 1]) / w[-1]) > 1.5  # the fit alone: "infinite variance"
    assert pareto_k(w) < 0.5
    assert not weight_diagnostics(torch.as_tensor(w))["warnings"]


def test_pareto_k_edge_cases() -> None:
    assert math.isnan(pareto_k(np.ones(10)))  # too few tail points
    assert pareto_k(np.ones(1000)) == -math.inf  # flat tail
    assert pareto_k(np.zeros(1000)) == -math.inf
    w = _lomax(0.5, 4000, seed=3)
    assert pareto_k(w) == pareto_k(-w) == pareto_k(torch.as_tensor(w))  # magnitudes
    assert pareto_k(1e250 * w) == pytest.approx(pareto_k(w), abs=1e-9)  # scale-free


def test_pareto_k_threshold_tightens_for_small_samples() -> None:
    assert pareto_k_threshold(16_000) == THRESHOLDS["pareto_k"] == 0.7
    assert pareto_k_threshold(100) == pytest.approx(0.5)
    assert pareto_k_threshold(1000) < 0.7


# --------------------------------------------------------------------------- moments
def test_scaled_mean_std_matches_plain_and_survives_overflow() -> None:
    w = torch.randn(1000, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + 3
    mean, std = scaled_mean_std(w)
    assert mean == pytest.approx(float(w.mean()), rel=1e-12)
    assert std == pytest.approx(float(w.std()), rel=1e-12)
    big_mean, big_std = scaled_mean_std(w * 1e300)
    assert big_mean == pytest.approx(mean * 1e300, rel=1e-12)
    assert big_std == pytest.approx(std * 1e300, rel=1e-12)
    assert scaled_mean_std(torch.zeros(5, dtype=torch.float64)) == (0.0, 0.0)
    assert scaled_mean_std(torch.ones(1, dtype=torch.float64))[1] == math.inf


def _records(w: torch.Tensor, k: int) -> list[IterationRecord]:
    chunks = w.chunk(k)
    return [IterationRecord("final", c.shape[0], float(c.mean()), 0.0, 0.0) for c in chunks]


def test_combine_final_is_the_pooled_mean() -> None:
    gen = torch.Generator().manual_seed(5)
    w = torch.rand(4000, generator=gen, dtype=torch.float64)
    mean, sdev, chi2, dof, q, comps, cov = combine_final(_records(w, 8), w)
    assert mean == pytest.approx(float(w.mean()), rel=1e-12)
    assert sdev == pytest.approx(float(w.std()) / math.sqrt(4000), rel=1e-12)
    assert dof == 7 and 0 <= q <= 1 and chi2 >= 0
    assert comps == () and cov == ()
    scaled = combine_final(_records(w * 1e290, 8), w * 1e290)
    assert scaled[1] == pytest.approx(sdev * 1e290, rel=1e-9)
    assert scaled[2] == pytest.approx(chi2, rel=1e-9)  # χ² is scale free


def test_combine_final_vector_weights() -> None:
    gen = torch.Generator().manual_seed(6)
    w = torch.rand(2000, 2, generator=gen, dtype=torch.float64)
    mean, sdev, _, _, _, comps, cov = combine_final(_records(w[:, 0], 4), w)
    assert comps[1] == pytest.approx(float(w[:, 1].mean()))
    assert cov[0][0] == pytest.approx(sdev**2)
    assert cov[0][1] == pytest.approx(cov[1][0])


# --------------------------------------------------------------------------- warnings
def test_no_warning_on_benign_weights() -> None:
    gen = torch.Generator().manual_seed(7)
    d = weight_diagnostics(1.0 + torch.rand(16_000, generator=gen, dtype=torch.float64))
    assert d["warnings"] == ()
    assert d["ess"] > 0.9 * 16_000
    assert d["pareto_k"] < 0
    assert d["sdev_rel_error"] < 0.05
    assert weight_diagnostics(torch.zeros(500, dtype=torch.float64))["warnings"] == ()


def test_one_dominant_weight_warns() -> None:
    w = torch.ones(1000, dtype=torch.float64)
    w[17] = 1e4
    d = weight_diagnostics(w)
    text = " ".join(d["warnings"])
    assert "effective sample size" in text and "one point carries" in text
    assert d["max_weight_share"] == pytest.approx(1e4 / (1e4 + 999))


def test_heavy_tail_warns_through_pareto_k() -> None:
    d = weight_diagnostics(torch.as_tensor(_lomax(1.3, 16_000, seed=8)))
    assert d["pareto_k"] > 0.9
    assert any("Pareto tail index" in m for m in d["warnings"])


def test_few_points_are_not_judged() -> None:
    w = torch.ones(50, dtype=torch.float64)
    w[0] = 1e6
    assert weight_diagnostics(w)["warnings"] == ()


def test_diagnostics_of_huge_weights_are_finite() -> None:
    w = torch.as_tensor(_lomax(0.2, 5000, seed=9)) * 1e300
    d = weight_diagnostics(w)
    assert all(math.isfinite(d[k]) for k in ("rel_std", "ess", "max_weight_share", "pareto_k",
                                             "sdev_rel_error", "unweighting_efficiency"))


# --------------------------------------------------------------------------- end to end
def _camel16() -> integrands.Integrand:
    return integrands.get("camel:dim=16")


def test_untrained_flow_on_16d_camel_warns() -> None:
    """No training at all: q is uniform, a handful of points carry the whole integral."""
    f = _camel16()
    integ = Integrator(16, seed=0, batch_size=1000, flow_options=SMALL_FLOW, **TRAIN)
    with pytest.warns(RuntimeWarning) as record:
        r = integ.estimate(f, 4000)
    emitted = {str(w.message) for w in record}
    assert r.warnings and set(r.warnings) <= emitted  # carried by the Result and emitted
    text = " ".join(r.warnings)
    assert "effective sample size" in text and "Pareto tail index" in text


def test_flow_trained_on_one_peak_of_16d_camel_warns() -> None:
    """Only the per-axis grid is adapted, and only to the peak at 1/3: the peak at 2/3 is
    under-sampled, its rare points carry huge weights."""
    f = _camel16()
    alpha, dim = 0.2, 16

    def one_peak(x: torch.Tensor) -> torch.Tensor:
        norm = 0.5 * (alpha * math.sqrt(math.pi)) ** (-dim)
        return norm * torch.exp(-((x - 1.0 / 3.0) ** 2).sum(-1) / alpha**2)

    integ = Integrator(16, seed=0, batch_size=1000, warmup=4, qmc=False,
                       flow_options={**SMALL_FLOW, "grid": True}, **TRAIN)
    integ.train(one_peak, 4000)  # four grid refinements, no coupling-layer training
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        r = integ.estimate(f, 8000)
    assert any("Pareto tail index" in m for m in r.warnings), r.warnings


def test_well_trained_easy_integrand_does_not_warn() -> None:
    f = integrands.get("gaussian:dim=2")
    integ = Integrator(2, seed=1, batch_size=1000, flow_options={"hidden": 16, "bins": 16},
                       **TRAIN)
    integ.train(f, 12_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = integ.estimate(f, 16_000)
    assert r.warnings == ()
    assert abs(r.mean - f.exact) < 5 * r.sdev
