"""The pieces of the fused rational-quadratic spline of :mod:`flowint.flows.rq_fused`.

Everything here works on the column layout: ``theta`` of shape ``(..., 3K+1, M)`` (one row per
parameter, the points along the last axis) and per-point tensors of shape ``(..., M)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["EXP_CAP", "RQConstants"]


@dataclass(frozen=True)
class RQConstants:
    """The fixed numbers of a rational-quadratic spline family.

    Attributes:
        bins: number of bins ``K``.
        min_width: floor of the bin widths.
        min_height: floor of the bin heights.
        min_derivative: floor of the knot derivatives.
        shift: added to the raw derivative parameters before the softplus (``"softplus"``);
            0 with ``"exp"``.
        derivative: ``"softplus"``: knot derivative ``min_derivative + softplus(raw)``;
            ``"exp"``: ``min_derivative + (1 - min_derivative) exp(min(raw, EXP_CAP))``.
    """

    bins: int
    min_width: float
    min_height: float
    min_derivative: float
    shift: float
    derivative: str = "softplus"


EXP_CAP = 10.0
"""Largest raw parameter an ``"exp"`` knot derivative follows: ``e^10 ≈ 2.2·10⁴``, a density
down to about 5·10⁻⁵ of the bin's mean at a knot. Above it the derivative is constant and passes
no gradient."""


def _floors(c: RQConstants, like: Tensor) -> tuple[float | Tensor, float | Tensor]:
    """Floors and softmax scales of widths and heights, broadcastable over ``(..., 2, K, M)``."""
    k = c.bins
    if c.min_width == c.min_height:
        return c.min_width, 1.0 - c.min_width * k
    floor = like.new_tensor([c.min_width, c.min_height]).view(2, 1, 1)
    return floor, 1.0 - floor * k


def _left_knots(sizes: Tensor) -> Tensor:
    """Exclusive cumulative sums over the bins (axis -2), by additions of contiguous rows.

    ``torch.cumsum`` over a leading axis is slower. The order of the additions is cumsum's, and
    so are the float64 values, bit for bit (cumsum accumulates in float64); in float32 each
    partial sum is rounded, where cumsum rounds a float64 sum: within an ulp or two.
    """
    k = sizes.shape[-2]
    knots = torch.zeros_like(sizes)
    for j in range(1, k):
        torch.add(knots[..., j - 1, :], sizes[..., j - 1, :], out=knots[..., j, :])
    return knots


def _rows(idx: Tensor, n: int) -> Tensor:
    """``idx`` (shape ``(..., M)``) as a gather index of shape ``(..., n, 1, M)``."""
    return idx.unsqueeze(-2).unsqueeze(-2).expand(*idx.shape[:-1], n, 1, idx.shape[-1])


def _prepare(x: Tensor, theta: Tensor, c: RQConstants, axis: int) -> dict[str, Tensor]:
    """The bin of every point and the bin's quantities, from ``theta`` of shape ``(..., P, M)``.

    ``axis`` 0 locates ``x`` (shape ``(..., M)``) among the knots in ``x`` (forward map), 1
    among those in ``y``. Returns the softmaxes ``s`` (shape ``(..., 2, K, M)``), the bin index
    ``idx``, the bin's width and height ``wh`` and left knots ``kn`` (``(..., 2, M)``), the
    derivatives at the bin's two knots and at the ends of the interval ``d`` (``(..., 4, M)``;
    ``(..., 2, M)`` without the ends when ``inside``: all points inside ``(0, 1)``), their
    positions ``pos`` among the derivative parameters and the sigmoid of their raw parameters
    ``sig`` (the derivatives' derivative in their raw parameters).
    """
    k = c.bins
    floor, scale = _floors(c, theta)
    logits = theta[..., : 2 * k, :].unflatten(-2, (2, k))
    e = torch.exp(logits - logits.amax(-2, keepdim=True))
    if theta.dtype == torch.float64:
        # Sums over the bins rounded as the reference rounds them, along contiguous rows of K
        # values: in float64 the knots, hence every value, are the reference's bit for bit.
        s = e.div_(e.transpose(-1, -2).contiguous().sum(-1).unsqueeze(-2))
    else:  # a reduction over a leading axis, several times faster; rounding differs by ulps
        s = e.div_(e.sum(-2, keepdim=True))
    wh_all = s.mul(scale).add_(floor)
    knots = _left_knots(wh_all)
    x_in, x = x, x.clamp(0.0, 1.0)
    idx = (knots[..., axis, 1:, :] <= x.unsqueeze(-2)).sum(-2)  # = searchsorted, clamped
    rows = _rows(idx, 2)
    wh = torch.gather(wh_all, -2, rows).squeeze(-2)
    kn = torch.gather(knots, -2, rows).squeeze(-2)
    # On the CPU, one check spares the handling of the ends when no point is at one.
    inside = x.device.type == "cpu" and bool(((x_in > 0.0) & (x_in < 1.0)).all())
    rows = [idx.unsqueeze(-2), idx.unsqueeze(-2) + 1]
    if not inside:
        rows.append(torch.tensor([0, k], device=idx.device).view(2, 1).expand(
            *idx.shape[:-1], 2, idx.shape[-1]))
    pos = torch.cat(rows, dim=-2)
    raw = torch.gather(theta[..., 2 * k:, :], -2, pos).add_(c.shift)
    d, sig = _derivatives(raw, c)
    return {"x_in": x_in, "x": x, "inside": inside, "s": s, "idx": idx, "pos": pos, "wh": wh,
            "kn": kn, "d": d, "sig": sig}


def _derivatives(raw: Tensor, c: RQConstants) -> tuple[Tensor, Tensor]:
    """The knot derivatives from their shifted raw parameters, and their derivative in
    ``raw`` (the softplus's sigmoid, or the exponential's own value below the cap)."""
    if c.derivative == "exp":
        grows = raw <= EXP_CAP  # clamp passes the gradient at the cap itself
        e = torch.exp(raw.clamp(max=EXP_CAP)).mul_(1.0 - c.min_derivative)
        return e + c.min_derivative, torch.where(grows, e, torch.zeros_like(e))
    return F.softplus(raw).add_(c.min_derivative), torch.sigmoid(raw)


def _unit_mask(v: Tensor) -> Tensor:
    """Where ``clamp(v, 0, 1)`` passes gradients (both ends included, as torch's clamp)."""
    return (v >= 0.0) & (v <= 1.0)


def _terms(xi: Tensor, s: Tensor, d_i: Tensor, b: dict[str, Tensor]) -> dict[str, Tensor]:
    """The pieces of the partial derivatives in one bin that do not depend on the upstream.

    With ``t = xi (1 - xi)``, ``c2 = d_i + d_j - 2 s``, ``D = s + c2 t``, ``R = (s xi^2 + d_i t)
    / D = (y - y_k) / h`` and ``L = log g' = log(s^2 P) - 2 log D``, ``P = d_j xi^2 + 2 s t +
    d_i (1 - xi)^2``: ``R``, ``1/D``, ``1/P``, ``p_xi = dP/dxi / 2`` and ``c2u = dD/dxi``.
    ``b`` holds ``t``, ``c2``, ``D`` and ``P`` from the forward pass.
    """
    t = b["t"]
    om = 1.0 - xi
    u = om - xi
    inv_d = b["denom"].reciprocal()
    xi2 = xi * xi
    return {"t": t, "om": om, "u": u, "xi2": xi2, "inv_d": inv_d, "inv_p": b["p"].reciprocal(),
            "r": (s * xi2).addcmul_(d_i, t).mul_(inv_d), "c2u": b["c2"] * u,
            "p_xi": (b["d_j"] * xi).addcmul_(s, u).sub_(d_i * om)}


def _param_grads(k: dict[str, Tensor], s: Tensor, a: Tensor, gl: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
    """``a dR/dv + gl dL/dv`` for ``v = s, d_i, d_j`` (the others held fixed), and ``v = xi``.

    ``a R_v + gl L_v = al N_v + be P_v - ga D_v`` (+ ``2 gl / s`` for ``s``), with ``N = s xi^2 +
    d_i t``, ``al = a / D``, ``be = gl / P`` and ``ga = (a R + 2 gl) / D``. Returns ``al``,
    ``be``, ``ga`` and the three gradients; the one of ``xi`` is left to the caller.
    """
    t = k["t"]
    al, be = a * k["inv_d"], gl * k["inv_p"]
    ga = torch.addcmul(2.0 * gl, a, k["r"]).mul_(k["inv_d"])
    g_s = (al * k["xi2"]).addcmul_(be, t, value=2.0).sub_(ga * (1.0 - 2.0 * t))
    g_s.add_(gl / s, alpha=2.0)
    g_di = (al - ga).mul_(t).addcmul_(be, k["om"] * k["om"])
    g_dj = (be * k["xi2"]).sub_(ga * t)
    return al, be, ga, [g_s, g_di, g_dj]


def _in_bin(xi: Tensor, s: Tensor, d_i: Tensor, d_j: Tensor, c2: Tensor) -> dict[str, Tensor]:
    """``t``, ``D`` and ``P`` (see :func:`_terms`), rounded as the reference computes them."""
    t = xi * (1.0 - xi)
    return {"t": t, "c2": c2, "denom": s + c2 * t,
            "p": d_j * xi * xi + 2.0 * s * t + d_i * (1.0 - xi) ** 2}


def _pin(p: dict[str, Tensor], out: Tensor, ladj: Tensor, sign: float
         ) -> tuple[Tensor, Tensor, Tensor | None]:
    """Clamp ``out`` to ``[0, 1]``, map the ends exactly onto themselves, swap in their ``ladj``.

    At the ends ``ladj`` is ``sign * log d`` of the end knot. Returns the output, ``ladj`` and
    the masks of the points at 0 and at 1 stacked (``None`` when ``p["inside"]``: no point is
    at an end, checked on the CPU only, where the check costs no synchronisation).
    """
    if p["inside"]:
        return out.clamp(0.0, 1.0), ladj, None
    inp = p["x"]
    ends = torch.stack([inp <= 0.0, inp >= 1.0], -2)
    lo, hi = ends.unbind(-2)
    end_ladj = torch.log(p["d"][..., 2:, :]).mul_(sign)
    out = torch.where(lo | hi, inp, out.clamp(0.0, 1.0))
    ladj = torch.where(lo, end_ladj[..., 0, :], torch.where(hi, end_ladj[..., 1, :], ladj))
    return out, ladj, ends


def _theta_grad(shape: torch.Size, p: dict[str, Tensor], g_wh: Tensor, g_kn: Tensor,
                g_d: Tensor, c: RQConstants) -> Tensor:
    """Map the gradients of a bin's quantities onto ``theta`` (shape ``shape``, ``(..., P, M)``).

    ``g_wh`` and ``g_kn`` (shape ``(..., 2, M)``) are the gradients of the bin's width and
    height and of its left knots in ``x`` and ``y``; ``g_d`` (``(..., 4, M)`` or ``(..., 2,
    M)``) those of the derivatives at the positions ``p["pos"]``. A knot is the sum of the sizes
    of the bins left of it, so bin ``j`` receives ``g_kn`` for ``j < idx`` and ``g_wh`` for
    ``j = idx``; then the softmax's backward ``scale * s * (g - <g, s>)`` and the derivatives'
    own (``p["sig"]``: the softplus's sigmoid, or the capped exponential's value).
    """
    k = c.bins
    s, idx = p["s"], p["idx"]
    _, scale = _floors(c, s)
    grad = s.new_empty(shape)
    g = grad[..., : 2 * k, :].unflatten(-2, (2, k))
    left = torch.arange(k, device=idx.device).view(k, 1) < idx.unsqueeze(-2)  # (..., K, M)
    torch.mul(left.unsqueeze(-3), g_kn.unsqueeze(-2), out=g)
    g.scatter_add_(-2, _rows(idx, 2), g_wh.unsqueeze(-2))
    g.mul_(s)
    g.sub_(s * g.sum(-2, keepdim=True)).mul_(scale)
    gd = grad[..., 2 * k:, :]
    gd.zero_()
    n = g_d.shape[-2]
    gd.scatter_add_(-2, p["pos"][..., :n, :], g_d * p["sig"][..., :n, :])
    return grad


def _end_grads(p: dict[str, Tensor], gl: Tensor, sign: float) -> tuple[Tensor, list[Tensor]]:
    """``gl`` off the ends, and the gradients of the end knots' derivatives (``[]``: none)."""
    ends = p.get("ends")
    if ends is None:
        return gl, []
    lo, hi = ends.unbind(-2)
    d = p["d"]
    g_lo = torch.where(lo, gl, 0.0).div_(d[..., 2, :]).mul_(sign)
    g_hi = torch.where(hi, gl, 0.0).div_(d[..., 3, :]).mul_(sign)
    return torch.where(lo | hi, 0.0, gl), [g_lo, g_hi]
