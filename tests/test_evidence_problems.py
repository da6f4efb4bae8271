"""Tests of the evidence problems (:mod:`integrands.evidence`): truths checked independently.

Every ``log_z`` is compared with an estimate that does not reuse the way it was computed and
that goes through the implemented ``log_likelihood``, so a wrong likelihood or a wrong truth
fails: grid quadrature on the original prior box (2-D), scrambled Sobol points (2-D shells),
importance sampling from a wider proposal with a 5-sigma tolerance and an error bar small
enough to matter (shells 10-D, the Gaussians), scipy quadrature of the radial integral, and
the published values where there are some.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats
from scipy.stats import qmc

from integrands.evidence import (
    EVIDENCE_PROBLEMS,
    CorrelatedGaussian,
    EvidenceProblem,
    GaussianMixture,
    GaussianShells,
    eggbox_log_z,
    random_correlation,
    shell_log_mass,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")

NAMES = sorted(EVIDENCE_PROBLEMS)


def _midpoint_log_z(problem: EvidenceProblem, n: int) -> float:
    """``log Z`` by the midpoint rule with ``n`` cells per axis on the prior box (2-D)."""
    assert problem.dim == 2
    h = problem.span / n
    axes = [problem.low[i] + (np.arange(n) + 0.5) * h[i] for i in range(2)]
    gx, gy = np.meshgrid(*axes, indexing="ij")
    log_l = problem.log_likelihood(np.stack([gx.ravel(), gy.ravel()], axis=1))
    return float(special.logsumexp(log_l) - 2 * math.log(n))  # mean of L over the cells


def _log_mean_and_error(log_w: np.ndarray) -> tuple[float, float]:
    """``log mean(w)`` and its standard error (first order) from log-weights."""
    log_mean = special.logsumexp(log_w) - math.log(log_w.size)
    rel = np.exp(log_w - log_mean)
    return float(log_mean), float(rel.std(ddof=1) / math.sqrt(log_w.size))


def _importance_log_z(problem: EvidenceProblem, theta: np.ndarray,
                      log_q: np.ndarray) -> tuple[float, float]:
    """``log Z`` from points ``theta ~ q``: weights ``L pi / q``, zero outside the box."""
    inside = np.all((theta >= problem.low) & (theta <= problem.high), axis=1)
    log_w = np.full(theta.shape[0], -np.inf)
    log_w[inside] = (problem.log_likelihood(theta[inside]) - problem.log_prior_volume
                     - log_q[inside])
    return _log_mean_and_error(log_w)


def _gaussian_proposal(means, covs, weights, n: int, seed: int):
    """Draw from a Gaussian mixture; return the points and their log-density."""
    rng = np.random.default_rng(seed)
    which = rng.choice(len(weights), size=n, p=weights)
    theta = np.empty((n, len(means[0])))
    for k, (m, c) in enumerate(zip(means, covs, strict=True)):
        sel = which == k
        theta[sel] = rng.multivariate_normal(m, c, size=int(sel.sum()))
    log_q = special.logsumexp(
        [math.log(w) + stats.multivariate_normal(m, c).logpdf(theta)
         for m, c, w in zip(means, covs, weights, strict=True)], axis=0)
    return theta, log_q


# -------------------------------------------------------------------------------------- API


def test_the_set() -> None:
    assert NAMES == ["eggbox", "gaussian_16d", "mixture_8d", "shells_10d", "shells_2d"]
    dims = {name: p.dim for name, p in EVIDENCE_PROBLEMS.items()}
    assert dims["shells_10d"] >= 10 and dims["gaussian_16d"] >= 16 and dims["mixture_8d"] >= 8
    for name, p in EVIDENCE_PROBLEMS.items():
        assert p.name == name
        assert math.isfinite(p.log_z) and 0 <= p.log_z_error < 1e-9
        assert p.log_z_source and name in repr(p)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name: str) -> None:
    p = EVIDENCE_PROBLEMS[name]
    u = torch.rand(7, p.dim, generator=torch.Generator().manual_seed(0))
    for dtype in (torch.float32, torch.float64):
        theta = p.prior_transform(u.to(dtype))
        assert theta.shape == (7, p.dim) and theta.dtype == torch.float64
        out = p.log_likelihood(theta)
        assert out.shape == (7,) and out.dtype == torch.float64
        assert torch.isfinite(out).all()
    out_np = p.log_likelihood(u.double().numpy() * p.span + p.low)
    assert isinstance(out_np, np.ndarray) and out_np.shape == (7,) and out_np.dtype == np.float64
    with pytest.raises(ValueError, match="shape"):
        p.log_likelihood(torch.zeros(3, p.dim + 1))
    with pytest.raises(ValueError, match="shape"):
        p.prior_transform(np.zeros(p.dim))


@pytest.mark.parametrize("name", NAMES)
def test_prior_transform_maps_the_cube_onto_the_box(name: str) -> None:
    p = EVIDENCE_PROBLEMS[name]
    corners = torch.stack([torch.zeros(p.dim), torch.ones(p.dim)]).double()
    ends = p.prior_transform(corners).numpy()
    np.testing.assert_allclose(ends[0], p.low, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ends[1], p.high, rtol=0, atol=1e-13)
    u = np.random.default_rng(1).random((1000, p.dim))
    theta = p.prior_transform(u)
    assert np.all(theta >= p.low) and np.all(theta <= p.high)
    # affine: the volume element is the prior volume, so Z = E_u[L(prior(u))]
    np.testing.assert_allclose(np.log(np.ptp(theta, axis=0) / np.ptp(u, axis=0)).sum(),
                               p.log_prior_volume, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_wrappers_agree_with_torch(name: str) -> None:
    p = EVIDENCE_PROBLEMS[name]
    u = np.random.default_rng(2).random((5, p.dim))
    theta_t = p.prior_transform(torch.as_tensor(u))
    log_l_t = p.log_likelihood(theta_t).numpy()
    np.testing.assert_allclose(p.prior_transform_numpy(u), theta_t.numpy(), rtol=1e-15)
    np.testing.assert_allclose(p.log_likelihood_numpy(theta_t.numpy()), log_l_t, rtol=1e-13)
    for i in range(5):  # one point at a time, as dynesty calls them
        theta_i = p.prior_transform_numpy(u[i])
        assert theta_i.shape == (p.dim,)
        value = p.log_likelihood_numpy(theta_i)
        assert isinstance(value, float)
        assert value == pytest.approx(log_l_t[i], rel=1e-13, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_log_space_is_finite_at_the_corners(name: str) -> None:
    p = EVIDENCE_PROBLEMS[name]
    far = np.stack([p.low, p.high, 0.5 * (p.low + p.high)])
    assert np.all(np.isfinite(p.log_likelihood(far)))


# -------------------------------------------------------------------------------- the truths


def test_shells_2d_by_grid_quadrature_and_sobol() -> None:
    p = EVIDENCE_PROBLEMS["shells_2d"]
    # cells of 0.01 against a shell width of 0.1: the midpoint rule is exact to ~e^-2000
    assert _midpoint_log_z(p, 1200) == pytest.approx(p.log_z, abs=1e-9)
    assert abs(p.log_z - (-1.75)) < 0.005  # MultiNest paper, Table 2
    # scrambled Sobol in log space, 8 randomisations of 2^15 points
    means = []
    for seed in range(8):
        u = qmc.Sobol(2, scramble=True, seed=seed).random(2**15)
        means.append(special.logsumexp(p.log_likelihood(p.prior_transform(u))) - 15 * math.log(2))
    z = np.exp(np.asarray(means) - p.log_z)  # Z_k / Z_true
    err = z.std(ddof=1) / math.sqrt(len(z))
    assert err < 0.01
    assert abs(z.mean() - 1) < 5 * err


def test_shells_radial_integral_by_quadrature() -> None:
    for dim in (2, 10):
        def radial(rho: float, dim: int = dim) -> float:
            return rho ** (dim - 1) * stats.norm.pdf(rho, 2.0, 0.1)

        value = integrate.quad(radial, 0.0, 6.0, points=[2.0], epsabs=0, epsrel=1e-13,
                               limit=200)[0]
        log_sphere = math.log(2 * math.pi ** (dim / 2) / math.gamma(dim / 2))
        assert shell_log_mass(dim, 2.0, 0.1) == pytest.approx(log_sphere + math.log(value),
                                                              abs=1e-12)


def test_shells_10d_by_importance_sampling() -> None:
    p = EVIDENCE_PROBLEMS["shells_10d"]
    assert abs(p.log_z - (-14.59)) < 0.005  # MultiNest paper, Table 2
    assert abs(GaussianShells(5).log_z - (-5.67)) < 0.005  # ibid.
    # proposal: a shell centre at random, a uniform direction, a radius ~ N(2.05, 0.15)
    d, n = p.dim, 20_000
    rng = np.random.default_rng(3)
    centre = p.centers[rng.integers(0, 2, n)]
    direction = rng.standard_normal((n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = 2.05 + 0.15 * rng.standard_normal(n)
    keep = radius > 0
    theta = (centre + radius[:, None] * direction)[keep]
    log_sphere = math.log(2 * math.pi ** (d / 2) / math.gamma(d / 2))
    log_q = []
    for c in p.centers:
        rho = np.linalg.norm(theta - c, axis=1)
        log_q.append(math.log(0.5) + stats.norm.logpdf(rho, 2.05, 0.15) - log_sphere
                     - (d - 1) * np.log(rho))
    log_z, err = _importance_log_z(p, theta, special.logsumexp(log_q, axis=0))
    assert err < 0.02
    assert abs(log_z - p.log_z) < 5 * err


def test_eggbox_by_two_quadratures() -> None:
    p = EVIDENCE_PROBLEMS["eggbox"]
    # midpoint rule on the original box [0, 10 pi]^2: another rule than the one in the package
    assert _midpoint_log_z(p, 1000) == pytest.approx(p.log_z, abs=1e-10)
    assert eggbox_log_z(100) == pytest.approx(eggbox_log_z(800), abs=1e-12)  # converged

    # nested adaptive quadrature on one cell of the symmetry, [0, 2 pi]^2 (a 25th of the box)
    def inner(y: float) -> float:
        return integrate.quad(
            lambda x: math.exp(p.log_likelihood_numpy(np.array([x, y])) - 243.0),
            0.0, 2 * math.pi, epsabs=0, epsrel=1e-9, limit=200)[0]

    cell = integrate.quad(inner, 0.0, 2 * math.pi, epsabs=0, epsrel=1e-9, limit=200)[0]
    assert 243.0 + math.log(cell / (2 * math.pi) ** 2) == pytest.approx(p.log_z, abs=1e-8)
    assert abs(p.log_z - 235.856) < 5e-4  # importance nested sampling paper, dynesty's tests
    assert abs(p.log_z - 235.88) > 0.02  # the MultiNest paper's figure is 0.024 high


def test_correlated_gaussian_normalisation_and_importance_sampling() -> None:
    p = EVIDENCE_PROBLEMS["gaussian_16d"]
    assert p.log_z == pytest.approx(-16 * math.log(2), abs=1e-14)
    np.testing.assert_allclose(np.sqrt(np.diag(p.cov)), 0.01, rtol=1e-12)  # narrow
    assert p.gap_sigmas >= 49 and p.truncation_bound < 1e-300
    # the peak value is the density's normalisation, by eigenvalues rather than Cholesky
    eig = np.linalg.eigvalsh(2 * math.pi * p.cov)
    assert p.log_likelihood(p.mean[None, :])[0] == pytest.approx(-0.5 * np.log(eig).sum(),
                                                                 abs=1e-10)
    # correlations that matter: the condition number of C is near 100
    assert 50 < np.linalg.cond(p.correlation) < 200
    theta, log_q = _gaussian_proposal([p.mean], [1.2**2 * p.cov], [1.0], 20_000, seed=4)
    log_z, err = _importance_log_z(p, theta, log_q)
    assert err < 0.03
    assert abs(log_z - p.log_z) < 5 * err


def test_mixture_weights_and_importance_sampling() -> None:
    p = EVIDENCE_PROBLEMS["mixture_8d"]
    assert p.log_z == pytest.approx(-8 * math.log(2), abs=1e-14)
    assert p.truncation_bound < 1e-40
    for k in range(2):  # at each mean the other mode is negligible
        expected = (math.log(p.weights[k])
                    + stats.multivariate_normal(p.means[k], p.covs[k]).logpdf(p.means[k]))
        assert p.log_likelihood(p.means[k][None, :])[0] == pytest.approx(expected, abs=1e-10)
    theta, log_q = _gaussian_proposal(p.means, [1.2**2 * c for c in p.covs], [0.5, 0.5],
                                      20_000, seed=5)
    log_z, err = _importance_log_z(p, theta, log_q)
    assert err < 0.03
    assert abs(log_z - p.log_z) < 5 * err
    # one mode alone is far off: the problem tells a sampler that keeps one mode
    theta1, log_q1 = _gaussian_proposal(p.means[:1], [1.2**2 * p.covs[0]], [1.0], 20_000, 6)
    assert abs(_importance_log_z(p, theta1, log_q1)[0] - p.log_z - math.log(2 / 3)) < 0.1


def test_parameters_and_helpers() -> None:
    c = random_correlation(6, 30.0, seed=0)
    np.testing.assert_allclose(np.diag(c), 1.0, rtol=1e-14)
    np.testing.assert_allclose(c, c.T)
    assert np.linalg.eigvalsh(c).min() > 0
    np.testing.assert_array_equal(c, random_correlation(6, 30.0, seed=0))  # fixed by the seed
    assert CorrelatedGaussian(4, sd=0.05).log_z == pytest.approx(-4 * math.log(2))
    assert GaussianMixture(3).dim == 3
    with pytest.raises(ValueError, match="dim >= 2"):
        GaussianShells(1)


# ------------------------------------------------------------------ the benchmark's bookkeeping


def test_benchmark_tables_flags_and_resume(tmp_path, monkeypatch) -> None:
    """benchmarks/evidence.py with stand-in runners: verdicts, summary, file, resume."""
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    pytest.importorskip("common")
    import evidence

    calls = []

    def fake(method: str, offset: float, error: float):
        def run(problem, seed, **kw):
            calls.append((problem.name, method, seed))
            row = evidence._row(problem, method, seed,
                                kw["budget"] if method == "flowint" else None, kw["timeout"])
            row.update(log_z=problem.log_z + offset, error=error, calls=100 * seed, seconds=0.5)
            return row
        return run

    monkeypatch.setattr(evidence, "RUNNERS", {"flowint": fake("flowint", 0.01, 0.01),
                                              "nautilus": fake("nautilus", 0.05, 0.01),
                                              "dynesty": fake("dynesty", -0.1, 0.2)})
    monkeypatch.setattr(evidence, "METHODS", ["flowint", "nautilus", "dynesty"])
    out = tmp_path / "ev.md"
    argv = ["--problems", "shells_2d", "--seeds", "1", "2", "--budget", "1e3", "--out", str(out)]
    rows = evidence.main(argv)
    assert len(rows) == 6 and len(calls) == 6
    text = out.read_text()
    assert "git commit" in text and "## shells_2d" in text and "## Summary" in text
    lines = [ln for ln in text.splitlines() if ln.startswith("| nautilus |")]
    assert len(lines) == 2 and all("**confidently wrong**" in ln for ln in lines)  # pull 5
    assert all(" ok |" in ln for ln in text.splitlines() if ln.startswith("| dynesty |"))
    assert "| shells_2d | nautilus | 2 | 2/2 |" in text
    assert "| shells_2d | flowint (B=1,000) | 2 | 0/2 |" in text
    evidence.main(argv)  # everything is in the file: nothing runs again
    assert len(calls) == 6
    evidence.main(argv[:-2] + ["--budget", "2e3", "--out", str(out)])  # a new flowint budget
    assert len(calls) == 8 and len(evidence.main(argv + ["--methods", "dynesty"])) == 8
    # without --budget: the problem's own budget
    monkeypatch.setitem(evidence.FLOWINT_BUDGETS, "shells_2d", 1_200)
    evidence.main(argv[:5] + ["--out", str(out)])
    assert len(calls) == 10 and "| shells_2d | flowint (B=1,200) | 2 |" in out.read_text()
    assert evidence.flowint_budget(EVIDENCE_PROBLEMS["gaussian_16d"], 5) == 5
    # rows another run wrote to the same file meanwhile are kept; --tables-only runs nothing
    plain = evidence.RUNNERS["dynesty"]

    def meanwhile(problem, seed, **kw):  # another process adds a row while this one runs
        evidence.write(out, evidence.common.load_rows(out) + [dict(rows[0], seed=9)], {}, "")
        return plain(problem, seed, **kw)

    monkeypatch.setitem(evidence.RUNNERS, "dynesty", meanwhile)
    evidence.main(argv[:3] + ["3", "--methods", "dynesty", "--out", str(out)])
    assert len(calls) == 11 and any(r["seed"] == 9 for r in evidence.common.load_rows(out))
    assert len(evidence.main(["--tables-only", "--out", str(out)])) == 12 and len(calls) == 11
    # a time limit is a recorded outcome, checked at each likelihood call
    limited = evidence._Likelihood(EVIDENCE_PROBLEMS["eggbox"].log_likelihood_numpy, 0.0)
    with pytest.raises(TimeoutError):
        limited(np.zeros(2))
    row = limited.finish(evidence._row(EVIDENCE_PROBLEMS["eggbox"], "x", 1, None, 0.0),
                         RuntimeError("wrapped"))
    assert row["status"] == "timeout (0 s)" and row["calls"] == 0
    counted = evidence._Likelihood(EVIDENCE_PROBLEMS["eggbox"].log_likelihood_numpy, None)
    counted(np.zeros(2))
    counted(np.zeros((5, 2)))
    assert counted.calls == 6
    del sys.modules["evidence"]
