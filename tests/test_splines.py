"""Property-based tests of the spline maps of the unit interval, and of PerAxisGrid.adapt.

Hypothesis draws a spline family, a number of bins, a floor on the bin sizes (down to zero:
tiny bins) and parameters ``theta`` with entries up to ±20 (bins that differ in size by
``e^40``, clamped by the floor), and evaluates the maps at inputs that include 0, 1, every
knot, the neighbouring floats of every knot, and random points. Tensors are float64
throughout; hypothesis runs derandomised, so the examples are the same on every run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowint.flows import (
    PerAxisGrid,
    PiecewiseLinear,
    PiecewiseQuadratic,
    RationalQuadratic,
    SplineMap,
    make_spline,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")

F64 = torch.float64
EPS = torch.finfo(F64).eps
KINDS = ("pwl", "pwq", "rqs", "rqs_exp")  # rqs_exp: knot derivatives exp(theta)
FLOORS = (0.0, 1e-6, 1e-4, 1e-3)
#: Round-trip error allowed, in units of eps times the local condition number.
ROUND_TRIP_UNITS = 1e3

SETTINGS = settings(max_examples=160, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _build(kind: str, bins: int, floor: float) -> SplineMap:
    if kind == "pwl":
        return PiecewiseLinear(bins, min_height=floor)
    if kind == "pwq":
        return PiecewiseQuadratic(bins, min_width=floor, min_derivative=max(floor, 1e-6))
    return RationalQuadratic(bins, min_width=floor, min_height=floor,
                             min_derivative=max(floor, 1e-6),
                             derivative="exp" if kind == "rqs_exp" else "softplus")


def _knots(spline: SplineMap, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The knots of the map in ``x`` and in ``y``."""
    if isinstance(spline, PiecewiseLinear):
        xk = torch.arange(spline.bins + 1, dtype=F64) / spline.bins
        return xk, spline.forward(xk, theta.expand(xk.numel(), -1))[0]
    if isinstance(spline, PiecewiseQuadratic):
        _, _, xk, yk = spline._params(theta)
        return xk, yk
    _, _, _, xk, yk = spline._params(theta)
    return xk, yk


def _probe_points(knots: torch.Tensor, extra: list[float]) -> torch.Tensor:
    """0, 1, the knots, their neighbouring floats, and ``extra``; sorted, inside [0, 1]."""
    up = torch.nextafter(knots, torch.ones_like(knots))
    down = torch.nextafter(knots, torch.zeros_like(knots))
    pts = torch.cat([torch.tensor([0.0, 1.0], dtype=F64), knots, up, down,
                     torch.tensor(extra, dtype=F64)])
    return pts.clamp(0.0, 1.0).sort().values


@st.composite
def splines(draw, floors: tuple[float, ...] = FLOORS) -> tuple[SplineMap, torch.Tensor]:
    """A spline family with its parameters ``theta`` (shape ``(n_params,)``)."""
    kind = draw(st.sampled_from(KINDS))
    bins = draw(st.integers(1, 24))
    floor = draw(st.sampled_from([f for f in floors if f * bins < 1.0]))
    spline = _build(kind, bins, floor)
    entry = st.one_of(st.floats(-20.0, 20.0), st.sampled_from([-20.0, 0.0, 20.0]))
    theta = draw(st.lists(entry, min_size=spline.n_params, max_size=spline.n_params))
    return spline, torch.tensor(theta, dtype=F64)


extra_points = st.lists(st.floats(0.0, 1.0), max_size=40)


def _mean_slope(xk: torch.Tensor, yk: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean slope of the bin holding each ``x``: its height over its width."""
    idx = (torch.searchsorted(xk, x.detach(), right=True) - 1).clamp(0, xk.numel() - 2)
    return (yk[idx + 1] - yk[idx]) / (xk[idx + 1] - xk[idx]).clamp_min(1e-300)


def _term_size(spline: SplineMap, theta: torch.Tensor, xk: torch.Tensor, yk: torch.Tensor,
               x: torch.Tensor) -> torch.Tensor:
    """Size of the terms autograd sums into ``g'`` at ``x``: the bin's mean slope, and with
    ``derivative="exp"`` also its two knot derivatives (which reach ``e^EXP_CAP``, far beyond
    a softplus derivative's 20 or so)."""
    slope = _mean_slope(xk, yk, x)
    if not (isinstance(spline, RationalQuadratic) and spline.derivative == "exp"):
        return slope
    d = spline._params(theta)[2]
    idx = (torch.searchsorted(xk, x.detach(), right=True) - 1).clamp(0, xk.numel() - 2)
    return torch.maximum(slope, torch.maximum(d[idx], d[idx + 1]))


def _eval(fn, pts: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return fn(pts, theta.expand(pts.numel(), -1))


@SETTINGS
@given(splines(), extra_points)
def test_outputs_finite_in_range_and_monotone(spline_theta, extra):
    spline, theta = spline_theta
    xk, yk = _knots(spline, theta)
    for fn, knots in ((spline.forward, xk), (spline.inverse, yk)):
        pts = _probe_points(knots, extra)
        out, ladj = _eval(fn, pts, theta)
        assert torch.isfinite(out).all() and torch.isfinite(ladj).all()
        assert ((out >= 0.0) & (out <= 1.0)).all()
        # Monotone up to rounding: the end of bin i and the start of bin i+1 are computed by
        # different formulas (the bin's polynomial, the cumulative sum) and may differ by ulps.
        assert (torch.diff(out) >= -4 * EPS).all(), "not monotone"
        # The ends are fixed points, to rounding amplified by the slope there (an inverse
        # through a tiny last bin is ill-conditioned).
        ends, ladj_ends = _eval(fn, torch.tensor([0.0, 1.0], dtype=F64), theta)
        cond = 1.0 + ladj_ends.exp()
        assert ends[0].abs() <= ROUND_TRIP_UNITS * EPS * cond[0]
        assert (ends[1] - 1.0).abs() <= ROUND_TRIP_UNITS * EPS * cond[1]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("side", ["first", "last"])
def test_ends_fixed_when_an_end_bin_is_below_float_spacing(kind: str, side: str):
    """A bin of size ``e^-40`` next to 0 or 1 (floor zero) rounds its inner knot onto the end;
    0 and 1 must still map exactly to themselves, both ways (CI found this with rqs)."""
    spline = _build(kind, 10, 0.0)
    theta = torch.zeros(spline.n_params, dtype=F64)
    big, tiny = (9, 0) if side == "first" else (0, 9)
    for start in range(0, min(2, spline.n_params // 10) * 10, 10):  # widths, and heights (rqs)
        theta[start + big], theta[start + tiny] = 20.0, -20.0
    ends = torch.tensor([0.0, 1.0], dtype=F64)
    for fn in (spline.forward, spline.inverse):
        out, ladj = _eval(fn, ends, theta)
        assert torch.equal(out, ends), (fn.__name__, out)
        assert torch.isfinite(ladj).all()


@SETTINGS
@given(splines(floors=(1e-6, 1e-4, 1e-3)), extra_points)
def test_round_trip_relative_to_conditioning(spline_theta, extra):
    """``g^{-1}(g(x)) = x`` to ``eps * (1 + 1/g'(x))`` and ``g(g^{-1}(y)) = y`` to
    ``eps * (1 + g'(x))``: a rounding error ``eps`` in ``y`` moves ``x`` by ``eps / g'``.

    With ``derivative="exp"`` a knot derivative reaches ``e^10``, far beyond the other
    families' (softplus: about 20), and the rational-quadratic formula sums terms of that size:
    there the allowance is multiplied by the bin's largest knot derivative over 20
    (:func:`_steep_knots`); for every other family it is as stated.
    """
    spline, theta = spline_theta
    xk, yk = _knots(spline, theta)
    x = _probe_points(xk, extra)
    y, ladj = _eval(spline.forward, x, theta)
    x_back, _ = _eval(spline.inverse, y, theta)
    slope = ladj.exp()
    steep = _steep_knots(spline, theta, xk, x)
    assert ((x_back - x).abs() <= ROUND_TRIP_UNITS * EPS * (1.0 + 1.0 / slope) * steep).all()
    y = _probe_points(yk, extra)
    x, ladj_inv = _eval(spline.inverse, y, theta)
    y_back, _ = _eval(spline.forward, x, theta)
    slope = (-ladj_inv).exp()
    steep = _steep_knots(spline, theta, xk, x)
    assert ((y_back - y).abs() <= ROUND_TRIP_UNITS * EPS * (1.0 + slope) * steep).all()


def _steep_knots(spline: SplineMap, theta: torch.Tensor, xk: torch.Tensor,
                 x: torch.Tensor) -> torch.Tensor:
    """1, or for ``derivative="exp"`` the largest knot derivative of each point's bin (and of
    the neighbouring bins, for points on a knot) over 20, at least 1."""
    if not (isinstance(spline, RationalQuadratic) and spline.derivative == "exp"):
        return torch.ones_like(x)
    d = spline._params(theta)[2]
    idx = (torch.searchsorted(xk, x.detach(), right=True) - 1).clamp(0, xk.numel() - 2)
    near = torch.stack([d[(idx + k).clamp(0, d.numel() - 1)] for k in (-1, 0, 1, 2)])
    return (near.max(0).values / 20.0).clamp_min(1.0)


@SETTINGS
@given(splines(floors=(1e-6, 1e-4, 1e-3)), extra_points)
@example(  # a last bin of width 1e-6 next to a steep one: 1 - 1e-16 inverts to 1
    (RationalQuadratic(bins=2, min_width=1e-6, min_height=1e-6, min_derivative=1e-6),
     torch.tensor([0.0, -20.0, -20.0, 0.0, 0.0, 0.0, 0.0], dtype=F64)), [])
@example(
    (PiecewiseQuadratic(bins=2, min_width=1e-6, min_derivative=1e-6),
     torch.tensor([1.0, -20.0, 0.0, 0.0, -20.0], dtype=F64)), [])
@example(  # g' = 1e-6 at the end of a bin of mean slope 1e5: autograd rounds to 2e-7 of g'
    (RationalQuadratic(bins=9, min_width=1e-6, min_height=1e-6, min_derivative=1e-6),
     torch.tensor([0.0] * 5 + [20.0] + [0.0] * 21 + [-20.0], dtype=F64)), [])
@example(
    (PiecewiseQuadratic(bins=7, min_width=1e-6, min_derivative=1e-6),
     torch.tensor([0.0] * 4 + [20.0] + [0.0] * 8 + [5.0, 1.0], dtype=F64)), [])
@example(  # the inverse lands on a knot, at the end of a bin of mean slope 16 where g' = 1e-6
    (PiecewiseQuadratic(bins=8, min_width=1e-6, min_derivative=1e-6),
     torch.tensor([0.0] * 6 + [1.0, 2.0, 20.0, -20.0] + [0.0] * 7, dtype=F64)), [])
@example(  # g' falls from 2654 to 1e-4 over the last bin
    (PiecewiseQuadratic(bins=8, min_width=1e-4, min_derivative=1e-4),
     torch.tensor([0.0] * 5 + [20.0, 0.0, 0.0, 0.75] + [0.0] * 5 + [-20.0, 7.5, -20.0],
                  dtype=F64)), [])
@example(  # g' falls from 1e6 to 3e-4 over the last bin, of width 1e-6
    (PiecewiseQuadratic(bins=7, min_width=1e-6, min_derivative=1e-6),
     torch.tensor([0.0] * 5 + [-20.0, -20.0] + [0.0] * 6 + [20.0, -2.0], dtype=F64)), [])
@example(  # log g' has a sharp minimum at a knot: 2e11 of curvature in a bin of width 1e-6
    (RationalQuadratic(bins=9, min_width=1e-6, min_height=1e-6, min_derivative=1e-6),
     torch.tensor([0.0] * 6 + [20.0, 0.0, 0.0, 0.0, 0.0, -20.0] + [0.0] * 16, dtype=F64)), [])
def test_ladj_is_log_derivative(spline_theta, extra):
    """Forward ladj = log g' (autograd); inverse ladj at y = -forward ladj at g^{-1}(y).

    Bins are at least 1e-6 wide here (inside a bin of width 1e-10, log g' changes by O(1)
    over 1e-10, and autograd's derivative no longer resolves it), and the inverse's ladj is
    compared to the forward's within the rounding error of the inverse.
    """
    spline, theta = spline_theta
    xk, yk = _knots(spline, theta)
    x = _probe_points(xk, extra)
    x = x[(x > 0.0) & (x < 1.0)].requires_grad_()  # interior: the ends are pinned exactly
    y, ladj = _eval(spline.forward, x, theta)
    (grad,) = torch.autograd.grad(y.sum(), x)
    ok = grad > 0
    assert ok.float().mean() > 0.5
    # Logs: an absolute tolerance on them is a relative one on g'. Autograd's chain rule sums
    # terms of the size of the bin's mean slope S (and of its knot derivatives) to get g', so
    # it rounds to eps * S / g' (large where g' is 1e-6 at the end of a steep bin).
    atol = (1e-6 + ROUND_TRIP_UNITS * EPS * _term_size(spline, theta, xk, yk, x)
            / grad.clamp_min(1e-300))
    assert ((ladj.detach() - grad.log()).abs() <= atol)[ok].all()
    y = _probe_points(yk, extra)
    with torch.no_grad():
        x, ladj_inv = _eval(spline.inverse, y, theta)
    # x = g^{-1}(y) carries a rounding error dx (see the round-trip test): -ladj_inv must be
    # log g' at some point within dx of x, i.e. inside the range of log g' over [x-dx, x+dx]
    # (this also covers the jumps of g' at the knots of the piecewise-linear map).
    dx = ROUND_TRIP_UNITS * EPS * (1.0 + ladj_inv.exp())
    # log g' may have its extremum at a knot inside [x-dx, x+dx]: probe the nearest knot too.
    knot = xk[(x.unsqueeze(1) - xk.unsqueeze(0)).abs().argmin(1)]
    knot = torch.where((knot - x).abs() <= dx, knot, x)
    probes = [(x + k * dx).clamp(0.0, 1.0) for k in (-1.0, 0.0, 1.0)] + [knot]
    near = torch.stack([_eval(spline.forward, p, theta)[1] for p in probes])
    # g' in a bin is a combination of values up to its largest g' (at least the bin's mean
    # slope S), so it rounds to eps * max g' / g' (a wrong formula is off by O(1)).
    biggest = torch.stack([near.max(0).values.exp()]
                          + [_mean_slope(xk, yk, p) for p in probes[0:3:2]]).max(0).values
    slack = 1e-9 + ROUND_TRIP_UNITS * EPS * biggest * ladj_inv.exp()
    assert (-ladj_inv >= near.min(0).values - slack).all()
    assert (-ladj_inv <= near.max(0).values + slack).all()


@SETTINGS
@given(st.sampled_from(KINDS), st.integers(1, 40), st.sampled_from(FLOORS), extra_points)
def test_identity_at_zero_theta(kind, bins, floor, extra):
    if floor * bins >= 1.0:
        floor = 0.0
    spline = _build(kind, bins, floor)
    theta = torch.zeros(spline.n_params, dtype=F64)
    pts = _probe_points(torch.arange(bins + 1, dtype=F64) / bins, extra)
    for fn in (spline.forward, spline.inverse):
        out, ladj = _eval(fn, pts, theta)
        torch.testing.assert_close(out, pts, rtol=0.0, atol=1e-13)
        torch.testing.assert_close(ladj, torch.zeros_like(ladj), rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_derivative_integrates_to_one(kind: str):
    """``int_0^1 g'(x) dx = g(1) - g(0) = 1``: the ladj carries the right normalisation."""
    spline = _build(kind, 7, 1e-3)
    theta = 2.0 * torch.randn(spline.n_params, generator=torch.Generator().manual_seed(0),
                              dtype=F64)
    n = 7 * 30_000  # cells never straddle a knot of the 7 equal pwl bins
    x = (torch.arange(n, dtype=F64) + 0.5) / n
    _, ladj = _eval(spline.forward, x, theta)
    assert abs(ladj.exp().mean().item() - 1.0) < 1e-6
    # And cumulatively: g(x) equals the running integral of g'.
    y, _ = _eval(spline.forward, x, theta)
    running = torch.cumsum(ladj.exp(), 0) / n
    assert (running - y).abs().max() < 1e-3


def test_piecewise_linear_matches_interpolation():
    spline = PiecewiseLinear(5, min_height=0.01)
    theta = torch.tensor([0.3, -1.0, 2.0, 0.0, -0.5], dtype=F64)
    q = 0.01 + (1 - 0.05) * torch.softmax(theta, 0)
    knots_y = torch.cat([torch.zeros(1, dtype=F64), torch.cumsum(q, 0)])
    x = torch.linspace(0, 1, 101, dtype=F64)
    y, ladj = _eval(spline.forward, x, theta)
    xs = torch.arange(6, dtype=F64) / 5
    ref = torch.from_numpy(np.interp(x.numpy(), xs.numpy(), knots_y.numpy()))
    torch.testing.assert_close(y, ref, rtol=0.0, atol=1e-14)
    idx = (x * 5).floor().clamp(max=4).long()
    torch.testing.assert_close(ladj, torch.log(5 * q[idx]), rtol=0.0, atol=1e-14)


@pytest.mark.parametrize(
    "call",
    [
        lambda: PiecewiseLinear(0),
        lambda: PiecewiseLinear(10, min_height=0.1),
        lambda: PiecewiseQuadratic(4, min_width=0.3),
        lambda: PiecewiseQuadratic(4, min_derivative=1.0),
        lambda: RationalQuadratic(4, min_height=0.25),
        lambda: RationalQuadratic(4, min_derivative=-0.1),
        lambda: make_spline("cubic"),
    ],
)
def test_bad_spline_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


# PerAxisGrid.adapt: the VEGAS refinement.

def _grid_density(grid: PerAxisGrid, axis: int, at: float) -> float:
    """The grid's marginal density on ``axis`` at ``at`` (the density factorises by axis)."""
    x = torch.full((1, grid.dim), 0.5, dtype=F64)
    x[0, axis] = at
    with torch.no_grad():
        _, ladj = grid.spline.inverse(x, grid.theta)  # per-axis log-densities
    return ladj[0, axis].exp().item()


def _check_valid_grid(grid: PerAxisGrid) -> None:
    edges = grid.edges()
    assert edges.shape == (grid.dim, grid.bins + 1)
    assert (edges[:, 0] == 0).all() and (edges[:, -1] - 1).abs().max() < 1e-12
    assert (torch.diff(edges, dim=-1) >= grid.spline.min_height * (1 - 1e-9)).all()
    x = torch.rand(500, grid.dim, generator=torch.Generator().manual_seed(0), dtype=F64)
    with torch.no_grad():
        z, ladj_inv = grid.inverse(x)
        x_back, ladj_fwd = grid.forward(z)
    assert (x_back - x).abs().max() < 1e-12
    torch.testing.assert_close(ladj_inv, -ladj_fwd, rtol=0.0, atol=1e-12)
    # The density integrates to one (piecewise constant per axis: exact on the bin level).
    u = (torch.arange(20000, dtype=F64) + 0.5) / 20000
    for axis in range(grid.dim):
        pts = torch.full((u.numel(), grid.dim), 0.5, dtype=F64)
        pts[:, axis] = u
        with torch.no_grad():
            _, ladj = grid.spline.inverse(pts, grid.theta)
        assert abs(ladj[:, axis].exp().mean().item() - 1.0) < 1e-3


def test_adapt_moves_bins_towards_the_weights():
    grid = PerAxisGrid(2, bins=32).to(F64)
    gen = torch.Generator().manual_seed(1)
    history = [_grid_density(grid, 0, 0.3)]
    far = [_grid_density(grid, 0, 0.9)]
    for _ in range(4):
        with torch.no_grad():
            x, _ = grid.forward(torch.rand(20000, 2, generator=gen, dtype=F64))
            log_q = -grid.forward(grid.inverse(x)[0])[1]
        f = torch.exp(-(((x[:, 0] - 0.3) / 0.05) ** 2))  # depends on axis 0 only
        grid.adapt(x, (f / log_q.exp()) ** 2)
        _check_valid_grid(grid)
        history.append(_grid_density(grid, 0, 0.3))
        far.append(_grid_density(grid, 0, 0.9))
    assert history[0] == pytest.approx(1.0)
    assert all(b > a for a, b in zip(history, history[1:], strict=False)), history
    assert history[-1] > 3.0
    assert far[-1] < 0.5 * far[0]
    # Axis 1 saw no structure: its grid stays close to uniform.
    assert (grid.edges()[1] - torch.linspace(0, 1, 33, dtype=F64)).abs().max() < 0.05


def test_adapt_with_zero_damping_keeps_the_grid():
    grid = PerAxisGrid(3, bins=16).to(F64)
    with torch.no_grad():
        grid.theta.add_(0.5 * torch.randn(grid.theta.shape, generator=torch.Generator()
                                          .manual_seed(2), dtype=F64))
    before = grid.edges().clone()
    x = torch.rand(5000, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    grid.adapt(x, torch.exp(-((x - 0.7) ** 2).sum(-1) / 0.01), alpha=0.0)
    assert (grid.edges() - before).abs().max() < 1e-12


def test_adapt_ignores_unusable_weights_and_checks_shapes():
    grid = PerAxisGrid(2, bins=8).to(F64)
    before = grid.theta.detach().clone()
    x = torch.rand(100, 2, dtype=F64)
    grid.adapt(x, torch.zeros(100, dtype=F64))
    grid.adapt(x, torch.full((100,), float("nan"), dtype=F64))
    assert torch.equal(grid.theta.detach(), before)
    with pytest.raises(ValueError):
        grid.adapt(torch.rand(100, 3, dtype=F64), torch.ones(100, dtype=F64))
