"""The randomized Sobol points of flowint.run.sobol: net property, uniformity, the
quasi-random variance of scipy's scrambling, honest Student-t error bars over a few sets
(nested uniform scrambling, not linear), and the estimator's use of them."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.stats import qmc

from flowint.run.estimator import scrambled_sobol
from flowint.run.sobol import MAX_DIM, SCRAMBLES, direction_numbers, scrambled_sobol_array


def _smooth(x: np.ndarray) -> np.ndarray:
    """A smooth product integrand on the cube with integral 1."""
    return np.prod(1.0 + 0.9 * np.sin(2 * math.pi * x) + (x - 0.5), axis=1)


@pytest.mark.parametrize("scramble", SCRAMBLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_elementary_interval_holds_one_point(seed, scramble):
    # a (0, m, 2)-net: every box of 2^p by 2^(m-p) equal parts holds exactly one of 2^m points
    m = 10
    x = scrambled_sobol_array(2**m, 3, np.random.default_rng(seed), scramble)
    for dims in ((0, 1),):
        for p in range(m + 1):
            a = np.floor(x[:, dims[0]] * 2**p).astype(np.int64)
            b = np.floor(x[:, dims[1]] * 2 ** (m - p)).astype(np.int64)
            counts = np.bincount(a * 2 ** (m - p) + b, minlength=2**m)
            assert counts.min() == 1 and counts.max() == 1, p


@pytest.mark.parametrize("scramble", SCRAMBLES)
@pytest.mark.parametrize("n", [1, 2, 1000])
def test_points_lie_in_the_half_open_cube_with_the_right_shape(n, scramble):
    rng = np.random.default_rng(3)
    x = scrambled_sobol_array(n, 5, rng, scramble)  # 1000: the first 1000 of 1024
    assert x.shape == (n, 5) and x.dtype == np.float64
    assert (x >= 0).all() and (x < 1).all()
    assert len(np.unique(x[:, 0])) == n


@pytest.mark.parametrize("scramble", SCRAMBLES)
def test_one_point_is_uniform_over_randomizations(scramble):
    rng = np.random.default_rng(4)
    firsts = np.array([scrambled_sobol_array(16, 4, rng, scramble)[5] for _ in range(2000)])
    for j in range(4):
        assert stats.kstest(firsts[:, j], "uniform").pvalue > 1e-6
    # the digits below the 4th are random too: no two randomizations share a value
    assert len(np.unique(firsts[:, 0])) == 2000


@pytest.mark.parametrize("scramble", SCRAMBLES)
def test_set_means_are_unbiased_with_scipys_quasi_random_variance(scramble):
    rng = np.random.default_rng(5)
    n, reps, dim = 1024, 300, 3
    ours = np.array([_smooth(scrambled_sobol_array(n, dim, rng, scramble)).mean()
                     for _ in range(reps)])
    ref = np.array([_smooth(qmc.Sobol(dim, scramble=True, seed=s, bits=64).random(n)).mean()
                    for s in range(reps)])
    assert abs(ours.mean() - 1.0) < 5 * ours.std(ddof=1) / math.sqrt(reps)
    iid = _smooth(rng.random((100_000, dim))).var() / n
    assert ours.var(ddof=1) < iid / 100  # randomized points alone would give ~iid
    ratio = ours.var(ddof=1) / ref.var(ddof=1)
    assert 0.6 < ratio < 1.7, ratio


def _prefix_flips(x: np.ndarray, top: np.ndarray, m: int, c: int, k: int) -> dict[int, set]:
    """For coordinate ``c`` and digit ``k``: the flips seen per unscrambled ``k``-digit prefix."""
    flip = ((top[:, c] ^ np.floor(x[:, c] * 2**m).astype(np.int64)) >> (m - 1 - k)) & 1
    prefix = top[:, c] >> (m - k)
    return {int(p): set(flip[prefix == p].tolist()) for p in np.unique(prefix)}


def _not_affine(flips: dict[int, int], k: int) -> float:
    """Share of the ``2^k`` prefixes whose flip differs from the affine (over GF(2)) function
    that agrees with it at 0 and at the unit prefixes: 0 for linear scrambling plus a shift."""
    base = flips[0]
    units = [flips[1 << j] ^ base for j in range(k)]
    wrong = 0
    for p in range(1 << k):
        pred = base
        for j in range(k):
            if p >> j & 1:
                pred ^= units[j]
        wrong += pred != flips[p]
    return wrong / (1 << k)


@pytest.mark.parametrize("n", [5, 1000, 1024])
def test_nested_scrambling_flips_each_digit_by_its_own_random_function_of_the_prefix(n):
    """Owen's scrambling: digit k of a point is flipped by a random bit of its first k
    unscrambled digits — the same bit for every point sharing them (nested), an independent
    bit per prefix: not an affine function of the prefix, as the linear matrix scrambling
    and digital shift makes it (half the prefixes disagree with the affine guess)."""
    from flowint.run.sobol import _unscrambled_top

    m, dim = math.ceil(math.log2(n)), 3
    top = _unscrambled_top(n, dim, m).astype(np.int64)
    shares = {"nested": [], "linear": []}
    for scramble, out in shares.items():
        for seed in range(10):
            x = scrambled_sobol_array(n, dim, np.random.default_rng(seed), scramble)
            for c in range(dim):
                for k in range(m):
                    seen = _prefix_flips(x, top, m, c, k)
                    assert all(len(v) == 1 for v in seen.values()), (scramble, seed, c, k)
                    if k >= 3 and len(seen) == 1 << k:  # every prefix present
                        out.append(_not_affine({p: v.pop() for p, v in seen.items()}, k))
    if n >= 16:
        assert 0.4 < np.mean(shares["nested"]) < 0.6, np.mean(shares["nested"])
        assert max(shares["linear"]) == 0.0


def _within(pulls: np.ndarray, k: float) -> float:
    return float((np.abs(pulls) < k).mean())


def test_nested_scrambling_gives_student_t_pulls_where_linear_bunches_them_near_one():
    """The error bar of 16 sets is Student's t with 15 degrees of freedom only if the set
    means are close to normal. On the smooth 1-D x − x² (the additive polynomial of the
    registry, one coordinate) the linearly scrambled set means are heavy-tailed: the
    studentized mean piles up near ±1, too few runs fall within 1σ and too many within 2σ.
    600 repetitions: a binomial standard deviation of ≤ 2 %, every share judged at 5 of them."""
    n, sets, reps = 1024, 16, 600
    ref = {k: 2 * stats.t(sets - 1).cdf(k) - 1 for k in (1, 2)}   # 66.7 %, 93.6 %

    def pulls(scramble: str) -> np.ndarray:
        rng = np.random.default_rng(11)
        out = []
        for _ in range(reps):
            x = [scrambled_sobol_array(n, 1, rng, scramble)[:, 0] for _ in range(sets)]
            means = np.array([(xi - xi * xi).mean() for xi in x])
            out.append((means.mean() - 1 / 6) / (means.std(ddof=1) / math.sqrt(sets)))
        return np.array(out)

    nested, linear = pulls("nested"), pulls("linear")
    for k, p in ref.items():
        sd = math.sqrt(p * (1 - p) / reps)
        assert abs(_within(nested, k) - p) < 5 * sd, (k, _within(nested, k), p)
    sd1 = math.sqrt(ref[1] * (1 - ref[1]) / reps)
    assert _within(linear, 1) < ref[1] - 5 * sd1  # 50 % against 66.7 %


def test_same_generator_state_same_points_and_fresh_state_new_points():
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    cpu = torch.device("cpu")
    a = scrambled_sobol(256, 6, g1, torch.float64, cpu)
    b = scrambled_sobol(256, 6, g2, torch.float64, cpu)
    assert torch.equal(a, b)
    c = scrambled_sobol(256, 6, g1, torch.float32, cpu)
    assert c.dtype == torch.float32 and not torch.allclose(a.float(), c)


def test_direction_numbers_are_cached_read_only_and_checked():
    sv = direction_numbers(4)
    assert sv.shape == (4, 64) and sv.dtype == np.uint64 and not sv.flags.writeable
    assert direction_numbers(4) is sv
    with pytest.raises(ValueError, match="dim"):
        direction_numbers(MAX_DIM + 1)
    with pytest.raises(ValueError, match="n must be"):
        scrambled_sobol_array(0, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="2\\^32 points"):
        scrambled_sobol_array(2**32 + 1, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="scramble must be"):
        scrambled_sobol_array(4, 2, np.random.default_rng(0), "owen")


def test_direction_numbers_through_scipys_public_api_match_its_private_ones(monkeypatch):
    """Where a scipy keeps no ``_sv``, the direction numbers come from its public Sobol engine:
    the same ones, so the same points (for sets of up to 2^32 points; a clear error beyond)."""
    from flowint.run import sobol

    for dim in (1, 3, 40):
        public = sobol._public_direction_numbers(dim, 18)
        assert public.shape == (dim, 18) and not public.flags.writeable
        np.testing.assert_array_equal(public, direction_numbers(dim)[:, :18])
    expected = {s: scrambled_sobol_array(1024, 5, np.random.default_rng(3), s) for s in SCRAMBLES}
    monkeypatch.setattr(sobol, "_scipy_direction_numbers", lambda dim: None)
    monkeypatch.setattr(sobol, "_PUBLIC", {})
    assert direction_numbers(5, 10).shape == (5, 10)
    for s in SCRAMBLES:
        np.testing.assert_array_equal(
            scrambled_sobol_array(1024, 5, np.random.default_rng(3), s), expected[s])
    assert sobol._PUBLIC[5].shape == (5, 10)  # computed for the sets drawn, no further
    with pytest.raises(ValueError, match="2\\^32 points"):
        scrambled_sobol_array(2**32 + 1, 5, np.random.default_rng(0), "linear")
