"""A reduced coverage study (slow; run with ``pytest -m slow tests/test_coverage.py``).

The full study is ``benchmarks/coverage.py`` (results in ``benchmarks/results/coverage.md``);
here two integrands × 40 seeds check that the pulls of flowint's error bars (and vegas's) are
close enough to their reference law: the fraction within 1σ/2σ/3σ, the mean and spread of the
pulls, and χ²/dof of the frozen-flow iterations, each at a 5σ binomial/sampling tolerance.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytestmark = pytest.mark.slow

N_SEEDS = 40
CASES = ["gaussian-4d", "annulus-2d"]


def _load_benchmark() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "coverage.py"
    spec = importlib.util.spec_from_file_location("flowint_coverage_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study() -> tuple[ModuleType, list]:
    cov = _load_benchmark()
    runs = cov.run_study(CASES, list(range(1000, 1000 + N_SEEDS)), cov.Budget(), workers=1,
                         verbose=False)
    return cov, cov.summarize(runs)


def test_coverage_fractions_match_their_reference(study: tuple[ModuleType, list]) -> None:
    _, summaries = study
    for s in summaries:
        for frac, expected in zip(s.within, s.expected, strict=True):
            tol = 5 * math.sqrt(expected * (1 - expected) / s.n) + 1.0 / s.n
            assert frac >= expected - tol, (s.case, s.method, s.within, s.expected)


def test_pulls_are_centred_with_unit_spread(study: tuple[ModuleType, list]) -> None:
    _, summaries = study
    for s in summaries:
        # Student-t pulls (flowint-qmc, ν = K − 1 ≥ 7) have sd ≤ sqrt(7/5) ≈ 1.18.
        assert abs(s.pull_mean) < 5 * 1.2 / math.sqrt(s.n), (s.case, s.method, s.pull_mean)
        assert abs(s.pull_sd - 1.0) < 0.2 + 5 / math.sqrt(2 * s.n), (s.case, s.method, s.pull_sd)


def test_chi2_per_dof_of_iid_final_iterations(study: tuple[ModuleType, list]) -> None:
    _, summaries = study
    for s in summaries:
        if s.method != "flowint-iid":
            continue
        dof = 7 * s.n  # 8 final iterations per run
        assert abs(s.chi2_dof - 1) < 5 * math.sqrt(2 / dof) + 0.05, (s.case, s.chi2_dof)


def test_report_is_written(study: tuple[ModuleType, list], tmp_path: Path) -> None:
    cov, _ = study
    runs = cov.run_study(["annulus-2d"], [7, 8, 9], cov.Budget(), workers=1, verbose=False)
    cov.write_report(runs, ["annulus-2d"], [7, 8, 9], cov.Budget(), tmp_path, 1.0, 1, "test")
    text = (tmp_path / "coverage.md").read_text()
    assert "within 2σ" in text and "flowint-iid" in text and "vegas-frozen" in text
    assert (tmp_path / "coverage_pulls.png").stat().st_size > 1000
    assert len((tmp_path / "coverage_runs.csv").read_text().splitlines()) == 1 + 3 * len(
        {r.method for r in runs})
    assert np.isfinite([r.pull for r in runs]).all()
