"""A reduced coverage study (slow; run with ``pytest -m slow tests/test_coverage.py``).

The full study is ``benchmarks/coverage.py`` (results in ``benchmarks/results/coverage.md``):
an explicit ``Integrator.train`` then ``Integrator.estimate`` of the frozen flow, once with
quasi-random randomizations (``flowint-qmc``) and once with i.i.d. points (``flowint-iid``,
``qmc=False``), beside vegas. ``tests/test_policy_coverage.py`` covers ``flowint.integrate``
with its defaults; this one covers those two other paths.

Two integrands × 100 seeds: per method, pooled over the integrands (200 runs), the share of
runs within 1σ / 2σ / 3σ must lie within three binomial standard deviations of what honest
error bars give (the normal law, or Student's t with K − 1 degrees of freedom for K
quasi-random randomizations), two-sided; the mean and spread of the pulls and the χ²/dof of
the i.i.d. final iterations within three of their standard deviations. At 200 runs the check
fails error bars 30 % too small in 98 % of samples and 30 % too large in 99 % (40 runs, the
old size of this test, caught them in 48 % and 12 %). About 15 min on an idle core.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _bench import load_benchmark
from scipy import stats

pytestmark = pytest.mark.slow

N_SEEDS = 100
CASES = ["gaussian-4d", "annulus-2d"]
#: The methods whose error bars are held to the reference. ``vegas-std`` (vegas's usual
#: recipe: the weighted average of still-adapting iterations, weights from each iteration's own
#: samples) is reported by the study but not asserted: its bars are known to be off on the
#: annulus (55.5 / 89.0 / 97.5 % within 1σ / 2σ / 3σ over 200 runs in coverage.md), which is
#: vegas's business, not flowint's.
CHECKED = ("flowint-qmc", "flowint-iid", "vegas-frozen")
N_SD = 3.0


@pytest.fixture(scope="module")
def study() -> tuple[ModuleType, list]:
    cov = load_benchmark("coverage")
    runs = cov.run_study(CASES, list(range(1000, 1000 + N_SEEDS)), cov.Budget(), workers=1,
                         verbose=False)
    return cov, runs


def _dof(method: str, run) -> float:
    """Degrees of freedom of an honest run's pull: K − 1 for quasi-random randomizations,
    infinite (the normal law) otherwise."""
    return float(run.dof) if method == "flowint-qmc" and run.dof > 0 else math.inf


def _t_cdf(k: float, dof: float) -> float:
    """``P(T < k)`` for Student's t with ``dof`` degrees of freedom (normal for ``inf``)."""
    return float(stats.norm.cdf(k) if math.isinf(dof) else stats.t.cdf(k, dof))


@pytest.mark.parametrize("method", CHECKED)
def test_coverage_fractions_match_their_reference(study, method: str) -> None:
    cov, runs = study
    rs = [r for r in runs if r.method == method]
    assert len(rs) == N_SEEDS * len(CASES)
    pulls = np.array([r.pull for r in rs])
    misses = []
    for k in (1, 2, 3):
        # per run, P(|t_dof| < k) (the normal law for dof = inf); the binomial sd of the share
        ps = [float(2 * _t_cdf(k, _dof(method, r)) - 1) for r in rs]
        expected = float(np.mean(ps))
        sd = math.sqrt(sum(p * (1 - p) for p in ps)) / len(ps)
        share = float(np.mean(np.abs(pulls) < k))  # NaN pulls count as outside
        if abs(share - expected) > N_SD * sd:
            misses.append(f"{k}σ: {100 * share:.1f} % vs {100 * expected:.1f} ± "
                          f"{100 * N_SD * sd:.1f} %")
    assert not misses, (method, misses, [(s.case, s.within) for s in cov.summarize(rs)])


@pytest.mark.parametrize("method", CHECKED)
def test_pulls_are_centred_with_the_reference_spread(study, method: str) -> None:
    _, runs = study
    rs = [r for r in runs if r.method == method]
    pulls = np.array([r.pull for r in rs])
    assert np.isfinite(pulls).all(), method
    n = len(pulls)
    dof = float(np.median([_dof(method, r) for r in rs]))
    # the reference law's standard deviation and kurtosis (Student's t, or the normal law)
    sd_ref = math.sqrt(dof / (dof - 2)) if math.isfinite(dof) else 1.0
    kurt = 3.0 + 6.0 / (dof - 4) if math.isfinite(dof) else 3.0
    assert abs(pulls.mean()) < N_SD * sd_ref / math.sqrt(n), (method, pulls.mean())
    # the sample standard deviation has a standard error of sd √((κ − 1) / 4n)
    tol = N_SD * sd_ref * math.sqrt((kurt - 1) / (4 * n))
    assert abs(pulls.std(ddof=1) - sd_ref) < tol, (method, pulls.std(ddof=1), sd_ref, tol)


def test_chi2_per_dof_of_iid_final_iterations(study) -> None:
    _, runs = study
    rs = [r for r in runs if r.method == "flowint-iid"]
    dof = sum(r.dof for r in rs)  # 7 per run: 8 final iterations
    chi2_dof = sum(r.chi2 for r in rs) / dof
    assert abs(chi2_dof - 1) < N_SD * math.sqrt(2 / dof), (chi2_dof, dof)


def test_report_is_written(study, tmp_path: Path) -> None:
    cov, _ = study
    runs = cov.run_study(["annulus-2d"], [7, 8, 9], cov.Budget(), workers=1, verbose=False)
    cov.write_report(runs, ["annulus-2d"], [7, 8, 9], cov.Budget(), tmp_path, 1.0, 1, "test")
    text = (tmp_path / "coverage.md").read_text()
    assert "within 2σ" in text and "flowint-iid" in text and "vegas-frozen" in text
    assert (tmp_path / "coverage_pulls.png").stat().st_size > 1000
    assert len((tmp_path / "coverage_runs.csv").read_text().splitlines()) == 1 + 3 * len(
        {r.method for r in runs})
    assert np.isfinite([r.pull for r in runs]).all()
