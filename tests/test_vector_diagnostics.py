"""Vector integrands get weight diagnostics and warnings per component."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import flowint


def _pair(x: torch.Tensor) -> torch.Tensor:
    """Component 0: a Gaussian bump (the flow trains on it); component 1: ``x0^-0.8``,
    integral 5, whose weights have infinite variance under any sampler that ignores its
    singularity at ``x0 = 0``."""
    bump = torch.exp(-((x - 0.5) ** 2).sum(-1) / 0.02)
    spike = x[:, 0].clamp_min(1e-300) ** -0.8
    return torch.stack([bump, spike], -1)


def test_each_component_is_diagnosed_and_only_the_bad_one_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # seed 3: component 1's final points missed the far tail (seed 1 until flowint drew its
        # own scrambled Sobol sets; a wrong bar needs a run that misses it)
        r = flowint.integrate(_pair, 2, budget=20_000, seed=3, train_on=0, progress=False)
    good, bad = r.component_diagnostics
    assert set(good) >= {"rel_std", "ess", "unweighting_efficiency", "max_weight_share",
                         "pareto_k"}
    # component 0 is the headline: its diagnostics are the scalar fields
    assert good["ess"] == pytest.approx(r.ess, rel=1e-12)
    assert good["rel_std"] == pytest.approx(r.rel_std, rel=1e-12)  # same formula, rounding
    # component 1's error bar is wrong (its weights have no variance) and it is the one named
    sdev1 = math.sqrt(r.covariance[1][1])
    assert abs(r.components[1] - 5.0) > 3 * sdev1
    assert bad["pareto_k"] > 0.7 and bad["ess"] < 100
    assert r.warnings and all(w.startswith("component 1:") for w in r.warnings), r.warnings
    assert good["pareto_k"] < 0.7


def test_scalar_results_have_no_component_diagnostics():
    r = flowint.integrate(lambda x: torch.exp(-((x - 0.5) ** 2).sum(-1)), 2, budget=5_000,
                          seed=1, progress=False)
    assert r.component_diagnostics == ()
    assert r.rel_std == r.sdev * math.sqrt(r.n_evals_final) / abs(r.mean)
