"""The rational-quadratic spline as two fused autograd Functions with hand-written backwards.

:class:`~flowint.flows.splines.RationalQuadratic` evaluates the spline with per-point
parameters through :func:`rq_forward` and :func:`rq_inverse` (``theta`` of shape ``(...,
3K+1)`` for points of shape ``(...)``); coupling layers, whose conditioner can emit its output
transposed, call :func:`rq_forward_columns` and :func:`rq_inverse_columns` (``theta`` of shape
``(..., 3K+1, M)``, each parameter a contiguous row over the ``M`` points). The values are those
of the element-by-element autograd reference (``RationalQuadratic.forward_reference`` and
``inverse_reference``): bit for bit in float64, to an ulp or so in float32. What is fused:

* in the column layout every operation runs along long contiguous rows (torch's CPU kernels are
  slow over short inner axes of ``K`` bins): one softmax for widths and heights, knots by
  running sums of rows, the bin found by counting the knots below the point (no concatenated
  knot tensor, no ``searchsorted``), and the softplus (or capped exponential) of the
  derivatives at the bin's two knots only;
* the backward is written out: the gradients of the output and of ``log g'`` with respect to the
  bin's six quantities (two knots, width, height, two derivatives) are rational functions of
  the position in the bin (implicit differentiation for the inverse), and they reach ``theta``
  through one masked sum per softmax and one ``scatter_add_`` for the derivatives. Nothing of
  the size of ``theta`` is kept for the backward but the softmaxes.

Points at or beyond the ends of ``[0, 1]`` are handled as by the reference: inputs are clamped
(their gradient is zero outside), the ends map exactly onto themselves with the end knots' log
derivative as ``log g'``, and the output's gradient passes through the clamp. On the CPU one
check skips that handling when every point is inside ``(0, 1)``.

:func:`fused_splines` switches back to the reference (to compare the two).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ._rq_parts import (
    RQConstants,
    _end_grads,
    _in_bin,
    _param_grads,
    _pin,
    _prepare,
    _terms,
    _theta_grad,
    _unit_mask,
)
from ._spline_ops import _rq_root

__all__ = ["RQConstants", "fused_enabled", "fused_splines", "rq_forward", "rq_inverse",
           "rq_forward_columns", "rq_inverse_columns", "column_map"]

_FUSED = [True]


@contextlib.contextmanager
def fused_splines(enabled: bool = True) -> Iterator[None]:
    """Switch the fused rational-quadratic spline on or off inside a block.

    On by default; ``fused_splines(False)`` evaluates
    :class:`~flowint.flows.splines.RationalQuadratic` by its element-by-element autograd
    reference (``forward_reference``, ``inverse_reference``), the implementation before the
    fused one, e.g. to compare the two.
    """
    previous, _FUSED[0] = _FUSED[0], bool(enabled)
    try:
        yield
    finally:
        _FUSED[0] = previous


def fused_enabled() -> bool:
    """Whether :class:`~flowint.flows.splines.RationalQuadratic` uses the fused Functions."""
    return _FUSED[0]


def _save(ctx, c: RQConstants, theta: Tensor, p: dict[str, Tensor], ends: Tensor | None,
          b: dict[str, Tensor], xi: Tensor, m_xi: Tensor) -> None:
    """Keep what the backward needs (the point masks only where some point is at an end)."""
    ctx.c, ctx.theta_shape, ctx.inside = c, theta.shape, ends is None
    extra = () if ends is None else (ends, _unit_mask(p["x_in"]))
    ctx.save_for_backward(xi, m_xi, p["s"], p["idx"], p["pos"], p["wh"], p["d"], p["sig"],
                          b["t"], b["c2"], b["denom"], b["p"], *extra)


def _load(ctx) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor, Tensor, Tensor | None]:
    """The saved tensors: bin quantities ``p``, in-bin terms ``b``, ``xi``, its mask, input's."""
    xi, m_xi, s, idx, pos, wh, d, sig, t, c2, denom, pp, *extra = ctx.saved_tensors
    p = {"s": s, "idx": idx, "pos": pos, "wh": wh, "d": d, "sig": sig}
    if extra:
        p["ends"] = extra[0]
    b = {"t": t, "c2": c2, "denom": denom, "p": pp}
    return p, b, xi, m_xi, (extra[1] if extra else None)


class _RQForward(torch.autograd.Function):
    """``(g(x), log g'(x))`` with parameters as columns; see the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
        p = _prepare(x, theta, c, axis=0)
        xc = p["x"]
        w_i, h_i = p["wh"].unbind(-2)
        x_k, y_k = p["kn"].unbind(-2)
        d_i, d_j = p["d"][..., 0, :], p["d"][..., 1, :]
        s = h_i / w_i
        xi_raw = (xc - x_k) / w_i
        xi = xi_raw.clamp(0.0, 1.0)
        b = _in_bin(xi, s, d_i, d_j, d_j + d_i - 2.0 * s)
        y = y_k + h_i * (s * xi * xi + d_i * b["t"]) / b["denom"]
        ladj = torch.log(s * s * b["p"]) - 2.0 * torch.log(b["denom"])
        out, ladj, ends = _pin(p, y, ladj, 1.0)
        _save(ctx, c, theta, p, ends, b, xi, xi == xi_raw)
        return out, ladj

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy: Tensor, gl: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        p, b, xi, m_xi, m_x = _load(ctx)
        w_i, h_i = p["wh"].unbind(-2)
        d = p["d"]
        s = h_i / w_i
        gl, g_end = _end_grads(p, gl, 1.0)
        b["d_j"] = d[..., 1, :]
        k = _terms(xi, s, d[..., 0, :], b)
        a = gy * h_i
        al, be, ga, (g_s, g_di, g_dj) = _param_grads(k, s, a, gl)
        n_xi = torch.addcmul(d[..., 0, :] * k["u"], s, xi, value=2.0)  # dN/dxi
        g_xi = (al * n_xi).addcmul_(be, k["p_xi"], value=2.0).sub_(ga * k["c2u"]).mul_(m_xi)
        inv_w = w_i.reciprocal()
        g_x = None
        if ctx.needs_input_grad[0]:
            g_x = g_xi * inv_w if m_x is None else g_xi * inv_w * m_x
        g_theta = None
        if ctx.needs_input_grad[1]:
            g_wh = torch.stack([-(g_s * s + g_xi * xi) * inv_w, gy * k["r"] + g_s * inv_w], -2)
            g_kn = torch.stack([-g_xi * inv_w, gy], -2)
            g_d = torch.stack([g_di, g_dj, *g_end], -2)
            g_theta = _theta_grad(ctx.theta_shape, p, g_wh, g_kn, g_d, ctx.c)
        return g_x, g_theta, None


class _RQInverse(torch.autograd.Function):
    """``(g^{-1}(y), -log g'(g^{-1}(y)))`` with parameters as columns; implicit derivatives."""

    @staticmethod
    def forward(ctx, y: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
        p = _prepare(y, theta, c, axis=1)
        w_i, h_i = p["wh"].unbind(-2)
        x_k, y_k = p["kn"].unbind(-2)
        d_i, d_j = p["d"][..., 0, :], p["d"][..., 1, :]
        s = h_i / w_i
        xi_raw, c2 = _rq_root(p["x"], s, h_i, d_i, d_j, y_k)
        xi = xi_raw.clamp(0.0, 1.0)
        b = _in_bin(xi, s, d_i, d_j, c2)
        ladj = 2.0 * torch.log(b["denom"]) - torch.log(s * s * b["p"])
        out, ladj, ends = _pin(p, x_k + xi * w_i, ladj, -1.0)
        _save(ctx, c, theta, p, ends, b, xi, xi == xi_raw)
        return out, ladj

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gx: Tensor, gl: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        p, b, xi, m_xi, m_y = _load(ctx)
        w_i, h_i = p["wh"].unbind(-2)
        d = p["d"]
        s = h_i / w_i
        gl, g_end = _end_grads(p, gl, -1.0)
        b["d_j"] = d[..., 1, :]
        k = _terms(xi, s, d[..., 0, :], b)
        # dy/dxi = h s P / D^2 > 0; the output's and ladj's gradients reach xi, then the
        # parameters through dxi/dv = -(dy/dv) / (dy/dxi) (y held fixed): with ladj = -L,
        # the upstream of R is -q h and that of L is -gl.
        l_xi = (k["p_xi"] * k["inv_p"]).sub_(k["c2u"] * k["inv_d"]).mul_(2.0)
        inv_fxi = k["inv_p"].div(h_i * s * k["inv_d"] * k["inv_d"])
        q = (gx * w_i).sub_(gl * l_xi).mul_(inv_fxi).mul_(m_xi)
        g_y = None
        if ctx.needs_input_grad[0]:
            g_y = q if m_y is None else q * m_y
        g_theta = None
        if ctx.needs_input_grad[1]:
            _, _, _, (g_s, g_di, g_dj) = _param_grads(k, s, -(q * h_i), -gl)
            inv_w = w_i.reciprocal()
            g_wh = torch.stack([gx * xi - g_s * s * inv_w, g_s * inv_w - q * k["r"]], -2)
            g_kn = torch.stack([gx, -q], -2)
            g_d = torch.stack([g_di, g_dj, *g_end], -2)
            g_theta = _theta_grad(ctx.theta_shape, p, g_wh, g_kn, g_d, ctx.c)
        return g_y, g_theta, None


def rq_forward_columns(x: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
    """The spline ``g`` at ``x`` (shape ``(..., M)``), parameters as columns (``(..., 3K+1, M)``).

    The layout of the computation: each parameter is a contiguous row over the points, so every
    operation runs along long rows. Returns ``(g(x), log g'(x))``, each of the shape of ``x``.
    """
    return _RQForward.apply(x, theta, c)


def rq_inverse_columns(y: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
    """The inverse ``g^{-1}`` at ``y`` (shape ``(..., M)``), parameters as columns.

    Returns ``(g^{-1}(y), -log g'(g^{-1}(y)))``, each of the shape of ``y``.
    """
    return _RQInverse.apply(y, theta, c)


def _as_columns(x: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
    """``x`` flattened to ``(N,)`` and ``theta`` (``(..., P)``) as contiguous columns ``(P, N)``."""
    return x.reshape(-1), theta.reshape(-1, theta.shape[-1]).t().contiguous()


def rq_forward(x: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
    """The spline ``g`` at ``x`` (shape ``(...)``) with parameters ``theta`` (``(..., 3K+1)``).

    Returns ``(g(x), log g'(x))``, each of the shape of ``x``. (The parameters are transposed
    into columns first; callers that can produce columns use :func:`rq_forward_columns`.)
    """
    out, ladj = _RQForward.apply(*_as_columns(x, theta), c)
    return out.view(x.shape), ladj.view(x.shape)


def rq_inverse(y: Tensor, theta: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
    """The inverse ``g^{-1}`` at ``y`` (shape ``(...)``) with parameters ``theta``.

    Returns ``(g^{-1}(y), -log g'(g^{-1}(y)))``, each of the shape of ``y``.
    """
    out, ladj = _RQInverse.apply(*_as_columns(y, theta), c)
    return out.view(y.shape), ladj.view(y.shape)


def column_map(c: RQConstants, inverse: bool = False) -> Callable[..., tuple[Tensor, Tensor]]:
    """:func:`rq_inverse_columns` or :func:`rq_forward_columns` with the constants ``c`` bound.

    The returned ``fn(x, theta)`` takes ``x`` of shape ``(..., M)`` and ``theta`` of shape
    ``(..., 3K+1, M)`` (each parameter a contiguous row over the points, the fast layout) and
    returns ``(output, ladj)`` of the shape of ``x``.
    """
    return functools.partial(rq_inverse_columns if inverse else rq_forward_columns, c=c)
