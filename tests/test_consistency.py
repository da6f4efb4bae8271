"""Do flowint's consistency statistics flag a wrong error bar, and leave a right one alone?

A result carries two kinds of checks on its own error bar:

* the χ² of the training iterations that entered the estimate against the final estimate
  (``Result.chi2``/``Q`` when ``Result.chi2_tests`` says so): when it fails (``Q < 10⁻³``)
  the training iterations are dropped with a ``RuntimeWarning`` ("the training iterations
  disagree with the final estimate") and the final estimate alone is returned;
* the weight diagnostics of the final points (``Result.warnings``): effective sample size,
  the largest weight's share, the Pareto shape ``k̂`` of the weights' tail, the kurtosis-based
  uncertainty of the error bar itself (:mod:`flowint.stats`).

Each "wrong" test below is a run with ``flowint.integrate``'s defaults whose error bar is
wrong by more than 5σ against the exact value, and asserts the flag that catches it; the
"right" test is a run on the same kind of integrand whose estimate is right and that no
statistic flags. Seeds are fixed; the numbers in the comments are those of the runs when the
test was written. None of these statistics can see a region that no final point visited (the
same narrow-peak integrand with seed 16 gives 0.698147(71) against 0.998, 4000σ off, with no
flag at all; ``docs/reliability.md``), so every wrong case here has a tail that was sampled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import flowint

DISAGREE = "the training iterations disagree with the final estimate"


def _run(f: Callable[[torch.Tensor], torch.Tensor], dim: int,
         **kwargs: Any) -> tuple[flowint.Result, list[str]]:
    """``flowint.integrate`` with the defaults (no progress bar), and the messages of the
    ``RuntimeWarning``s it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = flowint.integrate(f, dim, progress=False, **kwargs)
    return r, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


# --------------------------------------------------------------------------- integrands
#: ``(1 − a) x₀^(−a)`` on the unit square (the second axis is idle): integral exactly 1.
#: Under a sampler whose density stays bounded at ``x₀ = 0`` (the identity, a per-axis grid,
#: a spline flow) the weights have a Pareto tail of index ``1/a``: infinite variance for
#: ``a > ½``, and at ``a = 0.9`` the mean is carried by rare huge weights, so a typical run
#: falls short of the integral while its sample variance is small.
POWER_A = 0.9


def power_law(x: torch.Tensor) -> torch.Tensor:
    return (1 - POWER_A) * x[:, 0].clamp_min(1e-300) ** -POWER_A


#: A broad Gaussian bump (σ = 0.1 at (0.3, 0.3), 70 % of the integral) and a narrow, far one
#: (σ = 0.003 at (0.8, 0.8), 30 %), each normalised on R²; exact value over the unit square.
BROAD, NARROW, SHARE = (0.3, 0.1), (0.8, 0.003), 0.3


def _gauss(x: torch.Tensor, centre: float, sigma: float) -> torch.Tensor:
    d = x.shape[1]
    return torch.exp(-((x - centre) ** 2).sum(-1) / (2 * sigma**2)) / (
        2 * math.pi * sigma**2) ** (d / 2)


def two_bumps(x: torch.Tensor) -> torch.Tensor:
    return (1 - SHARE) * _gauss(x, *BROAD) + SHARE * _gauss(x, *NARROW)


def _mass_in_unit_interval(centre: float, sigma: float) -> float:
    return 0.5 * (math.erf((1 - centre) / (sigma * math.sqrt(2)))
                  + math.erf(centre / (sigma * math.sqrt(2))))


TWO_BUMPS_EXACT = ((1 - SHARE) * _mass_in_unit_interval(*BROAD) ** 2
                   + SHARE * _mass_in_unit_interval(*NARROW) ** 2)


# --------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def heavy_tail() -> tuple[flowint.Result, list[str]]:
    # A user's call: defaults, a modest budget. The policy explores, trains a flow and reuses
    # late training iterations; they caught far-tail weights that the final estimate did not.
    # Observed: 0.781(11) against 1 (pull −19.2); the χ² of the training iterations against
    # the final estimate has Q = 2.2e-5, so they were dropped (with the RuntimeWarning) and
    # the final estimate alone was returned. Its own weights raise no tail warning here. (Seed
    # 1 did this, with a Pareto k̂ of 0.96 as a second flag, until flowint drew its own
    # scrambled Sobol sets; of seeds 1–215 since, 79 and 34 give a failed χ² with |pull| > 5,
    # none of them a tail warning as well.)
    return _run(power_law, 2, budget=20_000, seed=79)


@pytest.fixture(scope="module")
def narrow_peak_undersampled() -> tuple[flowint.Result, list[str]]:
    # Defaults at 5·10⁴ calls: the exploration's uniform points hardly touch the narrow peak,
    # the policy picks the per-axis grid adapted to them (no training), and the final points
    # hit the peak only a few times. Observed: 0.7014(33) against 0.998 (pull −90), with the
    # warning that the error bar itself is uncertain (the weights' kurtosis). (Seeds 31 and 15
    # did this until the quasi-random sets changed — flowint's own scrambling, then nested
    # uniform scrambling; the seeds are the run's only randomness, so a new stream needs a new
    # seed. Of seeds 1–39 with nested scrambling, 11 was the only one that missed the peak
    # *and* was flagged: 8 others missed it with an error bar too small and no warning at all —
    # what no diagnostic can catch when no final point lands on the peak. Since the policy
    # also measures interlaced points (which take some of the exploration's calls), seed 11
    # ends right; of seeds 1–120, 69 is the only one that misses the peak and is flagged
    # (pull −90), 15 others miss it unflagged, every one through the grid.)
    return _run(two_bumps, 2, budget=50_000, seed=69)


@pytest.fixture(scope="module")
def peak_found() -> tuple[flowint.Result, list[str]]:
    # The same integrand and call with another seed: training found the narrow peak early, the
    # final estimate uses the flow, and nine training iterations enter the estimate, so Q is a
    # real test. Observed: 0.9980(13) against 0.9981 (pull −0.06), Q = 0.56, no warning.
    # (Seed 21 did this before nested uniform scrambling changed the random streams.)
    return _run(two_bumps, 2, budget=50_000, seed=3)


# --------------------------------------------------------------------------- wrong, flagged
def test_infinite_variance_weights_give_a_wrong_error_bar_that_is_flagged(heavy_tail):
    r, messages = heavy_tail
    assert abs(r.pull(1.0)) > 5, (str(r), r.pull(1.0))  # the error bar is wrong
    # flagged by the χ² of training against final (Q < 1e-3, the only way the core emits this
    # warning), raised and kept in the result
    assert any(DISAGREE in m for m in messages), messages
    assert any(DISAGREE in w for w in r.warnings), r.warnings


def test_the_failed_chi2_is_recorded_in_the_result(heavy_tail):
    r, _ = heavy_tail
    assert r.chi2_tests.startswith("training iterations against the final estimate")
    assert "disagree" in r.chi2_tests and r.Q < 1e-3 and r.n_evals_reused == 0
    assert any(DISAGREE in w for w in r.warnings), (r.Q, r.chi2_tests, r.warnings)


def test_undersampled_narrow_peak_gives_a_wrong_error_bar_that_is_flagged(
        narrow_peak_undersampled):
    r, messages = narrow_peak_undersampled
    assert abs(r.pull(TWO_BUMPS_EXACT)) > 5, (str(r), r.pull(TWO_BUMPS_EXACT))
    assert any("the error bar itself is uncertain" in w for w in r.warnings), r.warnings
    assert set(r.warnings) <= set(messages)  # and every warning was raised, too


# --------------------------------------------------------------------------- right, unflagged
def test_a_right_error_bar_is_not_flagged(peak_found):
    r, messages = peak_found
    assert abs(r.pull(TWO_BUMPS_EXACT)) < 3, (str(r), r.pull(TWO_BUMPS_EXACT))
    # Q tests something here, and passes at the threshold the core drops training pieces at
    assert r.chi2_tests == "training iterations against the final estimate"
    assert r.n_evals_reused > 0 and r.dof >= 1
    assert r.Q > 1e-3, (r.Q, r.chi2_dof)
    assert r.warnings == ()
    assert not any(DISAGREE in m for m in messages), messages
