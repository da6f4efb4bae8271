"""The fused rational-quadratic spline (:mod:`flowint.flows.rq_fused`) against its reference.

The reference is ``RationalQuadratic.forward_reference`` / ``inverse_reference``: the same
formulas as element-by-element autograd operations. The fused Functions must give the same
values (float64: to 1e-12, in practice bit for bit), the same gradients with respect to the
input and to the unnormalised widths, heights and derivatives (to rounding), pass
``torch.autograd.gradcheck``, and keep the inverse consistent with the forward map, also at the
knots, at the ends of the interval, outside it, and for a batch of one point.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from flowint import make_flow
from flowint.flows import RationalQuadratic
from flowint.flows.rq_fused import (
    column_map,
    fused_enabled,
    fused_splines,
    rq_forward,
    rq_inverse,
)

pytestmark = pytest.mark.usefixtures("torch_single_thread")

F64 = torch.float64
# (bins, floor of widths and heights, floor of derivatives[, derivative parameterisation])
FAMILIES = [(16, 1e-3, 1e-3), (5, 0.0, 1e-6), (1, 1e-3, 1e-3), (8, 1e-4, 1e-2),
            (16, 1e-3, 1e-3, "exp"), (5, 0.0, 1e-6, "exp")]


def _spline(bins: int, floor: float, min_d: float, derivative: str = "softplus",
            height: float | None = None) -> RationalQuadratic:
    return RationalQuadratic(bins, min_width=floor,
                             min_height=floor if height is None else height, min_derivative=min_d,
                             derivative=derivative)


def _points(spline: RationalQuadratic, theta: torch.Tensor, gen: torch.Generator
            ) -> torch.Tensor:
    """Random points, one knot of each point's own spline in x and in y, 0, 1, and outside."""
    n, nb = theta.shape[:2]
    x = torch.rand(n, nb, generator=gen, dtype=F64)
    _, _, _, xk, yk = spline._params(theta)
    pick = torch.randint(0, spline.bins + 1, (n, nb, 1), generator=gen)
    x[: n // 4] = xk.gather(-1, pick).squeeze(-1)[: n // 4]
    x[n // 4: n // 2] = yk.gather(-1, pick).squeeze(-1)[n // 4: n // 2]
    x[-1, 0], x[-2, 0], x[-3, 0], x[-4, 0] = 0.0, 1.0, -0.25, 1.5
    return x


def _both(spline: RationalQuadratic, x: torch.Tensor, theta: torch.Tensor, inverse: bool):
    """Values and gradients (w.r.t. x and theta) of the fused map and of the reference."""
    gen = torch.Generator().manual_seed(7)
    out = []
    for fn in ((spline.inverse, spline.inverse_reference) if inverse
               else (spline.forward, spline.forward_reference)):
        xg, tg = x.clone().requires_grad_(), theta.clone().requires_grad_()
        y, ladj = fn(xg, tg)
        gen.manual_seed(7)
        wy = torch.randn(y.shape, generator=gen, dtype=F64)
        wl = torch.randn(y.shape, generator=gen, dtype=F64)
        ((y * wy).sum() + (ladj * wl).sum()).backward()
        out.append((y.detach(), ladj.detach(), xg.grad, tg.grad))
    return out


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float) -> bool:
    return bool(((a - b).abs() <= rtol * (1.0 + b.abs().max())).all())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("inverse", [False, True])
def test_values_and_gradients_match_the_reference(family, inverse):
    gen = torch.Generator().manual_seed(family[0] + inverse + 10 * (len(family) > 3))
    spline = _spline(*family)
    theta = 2.0 * torch.randn(64, 3, spline.n_params, generator=gen, dtype=F64)
    x = _points(spline, theta, gen)
    (y, ladj, gx, gt), (y0, ladj0, gx0, gt0) = _both(spline, x, theta, inverse)
    assert (y - y0).abs().max() <= 1e-12
    assert (ladj - ladj0).abs().max() <= 1e-12 * (1.0 + ladj0.abs().max())
    assert _close(gx, gx0, 1e-10)
    assert _close(gt, gt0, 1e-10)
    outside = (x < 0.0) | (x > 1.0)
    assert (gx[outside] == 0.0).all()  # clamped inputs get no gradient, as in the reference


def test_unequal_floors_of_widths_and_heights():
    gen = torch.Generator().manual_seed(3)
    spline = _spline(12, 1e-3, 1e-3, height=1e-2)
    theta = 3.0 * torch.randn(40, 2, spline.n_params, generator=gen, dtype=F64)
    x = _points(spline, theta, gen)
    for inverse in (False, True):
        (y, ladj, gx, gt), (y0, ladj0, gx0, gt0) = _both(spline, x, theta, inverse)
        assert (y - y0).abs().max() <= 1e-12 and (ladj - ladj0).abs().max() <= 1e-10
        assert _close(gx, gx0, 1e-10) and _close(gt, gt0, 1e-10)


@pytest.mark.parametrize("derivative", ["softplus", "exp"])
@pytest.mark.parametrize("inverse", [False, True])
def test_gradcheck(inverse, derivative):
    gen = torch.Generator().manual_seed(11)
    spline = _spline(6, 1e-3, 1e-3, derivative)
    c = spline._constants
    fn = rq_inverse if inverse else rq_forward
    x = (0.05 + 0.9 * torch.rand(5, 2, generator=gen, dtype=F64)).requires_grad_()
    theta = torch.randn(5, 2, spline.n_params, generator=gen, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, c), (x, theta))
    # Parameters as columns, with a leading axis, and points at the ends of the interval.
    cols = column_map(c, inverse)
    x = torch.tensor([[0.0, 0.3, 0.7], [0.2, 0.5, 1.0]], dtype=F64)
    theta = torch.randn(2, spline.n_params, 3, generator=gen, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: cols(x, b), (theta,))


@pytest.mark.parametrize("family", FAMILIES)
def test_inverse_undoes_forward(family):
    gen = torch.Generator().manual_seed(5)
    spline = _spline(*family)
    theta = 2.0 * torch.randn(200, 2, spline.n_params, generator=gen, dtype=F64)
    x = _points(spline, theta, gen).clamp(0.0, 1.0)
    y, ladj = spline.forward(x, theta)
    back, ladj_inv = spline.inverse(y, theta)
    assert (back - x).abs().max() <= 1e-9
    assert (ladj + ladj_inv).abs().max() <= 1e-6
    assert y[x == 0.0].eq(0.0).all() and y[x == 1.0].eq(1.0).all()  # ends map exactly


def test_batch_of_one_and_any_leading_shape():
    gen = torch.Generator().manual_seed(2)
    spline = _spline(16, 1e-3, 1e-3)
    theta = torch.randn(3, 4, 5, spline.n_params, generator=gen, dtype=F64)
    x = torch.rand(3, 4, 5, generator=gen, dtype=F64)
    y, ladj = spline.forward(x, theta)
    y0, ladj0 = spline.forward_reference(x, theta)
    assert y.shape == x.shape and torch.allclose(y, y0, atol=1e-14, rtol=0)
    assert torch.allclose(ladj, ladj0, atol=1e-12, rtol=0)
    one = spline.inverse(x[:1, 0, 0], theta[:1, 0, 0])
    ref = spline.inverse_reference(x[:1, 0, 0], theta[:1, 0, 0])
    assert all(torch.allclose(a, b, atol=1e-14, rtol=0) for a, b in zip(one, ref, strict=True))


def test_interior_points_do_not_depend_on_points_at_the_ends():
    """The CPU skips the ends' handling when no point is at one; both paths must agree. Both
    batches have the same size: a batch of 7 against one of 8 may take other vector lanes
    for its last rows and differ in the last bit on some CPUs (seen on an AMD EPYC host)."""
    gen = torch.Generator().manual_seed(9)
    spline = _spline(10, 1e-3, 1e-3)
    theta = torch.randn(8, 1, spline.n_params, generator=gen, dtype=F64)
    x = torch.rand(8, 1, generator=gen, dtype=F64)
    with_end = x.clone()
    with_end[-1] = 1.0
    for fn in (spline.forward, spline.inverse):
        a, la = fn(x, theta)
        b, lb = fn(with_end, theta)
        assert torch.equal(a[:-1], b[:-1]) and torch.equal(la[:-1], lb[:-1])
        assert not torch.equal(a[-1], b[-1])  # the last point did move to the end


def test_switch_selects_the_reference_and_restores():
    spline = _spline(4, 1e-3, 1e-3)
    assert fused_enabled() and spline.column_map() is not None
    with fused_splines(False):
        assert not fused_enabled() and spline.column_map() is None
        with fused_splines(True):
            assert fused_enabled()
        assert not fused_enabled()
    assert fused_enabled()


def _perturbed_flow(dtype: torch.dtype):
    flow = make_flow(5, seed=1, dtype=dtype)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=F64).to(dtype))
    return flow, torch.rand(300, 5, generator=gen, dtype=F64).to(dtype)


def test_flow_log_prob_and_gradients_match_the_reference():
    """A coupling flow (conditioner output as columns) against the reference, float64."""
    flow, u = _perturbed_flow(F64)
    ref = copy.deepcopy(flow)
    log_q = flow.log_prob(u)
    with fused_splines(False):
        log_q0 = ref.log_prob(u)
    assert torch.allclose(log_q, log_q0, atol=1e-10, rtol=0)
    log_q.mean().backward()
    with fused_splines(False):
        log_q0.mean().backward()
    for p, p0 in zip(flow.parameters(), ref.parameters(), strict=True):
        assert (p.grad - p0.grad).abs().max() <= 1e-8 * (1.0 + p0.grad.abs().max())
    x, _ = flow.sample(200, seed=3)
    with fused_splines(False):
        x0, _ = ref.sample(200, seed=3)
    assert torch.allclose(x, x0, atol=1e-13, rtol=0)


def test_float32_is_as_accurate_as_the_reference():
    """In float32 the fused flow rounds differently; its error against float64 is as small."""
    flow, u = _perturbed_flow(torch.float32)
    exact = copy.deepcopy(flow).to(F64)
    with torch.no_grad():
        with fused_splines(False):
            truth = exact.log_prob(u.to(F64))
            err_ref = (flow.log_prob(u).to(F64) - truth).abs()
        err = (flow.log_prob(u).to(F64) - truth).abs()
    assert err.median() <= 2.0 * err_ref.median() + 1e-6
    assert err.max() <= 4.0 * err_ref.max() + 1e-5


def test_exp_derivatives_capped_alike_in_both_paths():
    """Raw derivative parameters above ``EXP_CAP`` give ``e^EXP_CAP`` and no gradient, in the
    fused Functions as in the reference."""
    from flowint.flows._rq_parts import EXP_CAP

    spline = _spline(4, 1e-3, 1e-3, "exp")
    gen = torch.Generator().manual_seed(5)
    theta = torch.randn(16, 1, spline.n_params, generator=gen, dtype=F64)
    theta[..., 2 * 4 + 1] = EXP_CAP + 2.0  # an inner knot beyond the cap
    theta[..., 2 * 4 + 2] = EXP_CAP  # one at it (clamp passes the gradient there)
    d = spline._params(theta)[2]
    top = 1e-3 + (1.0 - 1e-3) * math.exp(EXP_CAP)
    assert torch.allclose(d[..., 1], torch.full_like(d[..., 1], top))
    x = torch.rand(16, 1, generator=gen, dtype=F64)
    for inverse in (False, True):
        (y, ladj, gx, gt), (y0, ladj0, gx0, gt0) = _both(spline, x, theta, inverse)
        assert (y - y0).abs().max() <= 1e-12 and (ladj - ladj0).abs().max() <= 1e-10
        assert _close(gt, gt0, 1e-10)
        assert (gt[..., 2 * 4 + 1] == 0.0).all()
        assert _close(gt[..., 2 * 4 + 2], gt0[..., 2 * 4 + 2], 1e-10)


def test_exp_derivative_flow_rebuilds_from_its_config():
    from flowint.flows.base import build_flow

    flow = make_flow(2, "rqs", grid=False, derivative="exp", min_width=1e-5, seed=3,
                     dtype=F64)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=F64))
    again = build_flow(flow.config).to(F64)
    again.load_state_dict(flow.state_dict())
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert torch.equal(flow.log_prob(x), again.log_prob(x))
    softplus = make_flow(2, "rqs", grid=False, min_width=1e-5, seed=3, dtype=F64)
    softplus.load_state_dict(flow.state_dict())
    assert not torch.allclose(softplus.log_prob(x), flow.log_prob(x))
    with pytest.raises(ValueError, match="derivative"):
        make_flow(2, "pwq", derivative="exp")
    with pytest.raises(ValueError, match="derivative"):
        RationalQuadratic(4, derivative="cubic")
