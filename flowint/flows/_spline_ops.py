"""Tensor helpers of the spline maps in :mod:`flowint.flows.splines` (private).

Bin sizes by a softmax with a floor, knots, bin search, gathers of a bin's quantities, and the
exact treatment of the ends of ``[0, 1]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []


# Performance note: in a coupling layer every tensor below has shape (n, n_b, bins), the
# largest in the flow, and the work is memory-bound, so the helpers avoid temporaries and
# copies of that size (in-place updates of fresh tensors, one concatenation for the knots, no
# per-point copies of shared knots) while computing exactly the same values.


def _widths(logits: Tensor, min_width: float) -> Tensor:
    """Softmax bin sizes with a floor: each is at least ``min_width``, and they sum to one."""
    k = logits.shape[-1]
    # min_width + c * softmax, with the addition in place on the fresh product.
    return _softmax(logits).mul(1.0 - min_width * k).add_(min_width)


def _softmax(logits: Tensor) -> Tensor:
    """Softmax over the last axis, written out.

    With a last axis of a few bins, ``torch.softmax``'s CPU kernel runs its scalar tail on
    every row: 4x slower forward and 2x slower backward than these element-wise operations
    (1024 x 4 x 8 floats). The maximum is detached: softmax does not depend on the shift, so
    the gradient is exact and skips the max's backward.
    """
    e = torch.exp(logits - logits.detach().amax(-1, keepdim=True))
    return e / e.sum(-1, keepdim=True)


def _knots(widths: Tensor) -> Tensor:
    """Cumulative knots ``0 = k_0 < ... < k_K = 1`` of bin widths (end knot exactly one)."""
    cum = torch.cumsum(widths, dim=-1)
    ends = cum.new_ones(cum.shape[:-1] + (2,))
    ends[..., 0] = 0.0
    return torch.cat([ends[..., :1], cum[..., :-1], ends[..., 1:]], dim=-1)


def _search(knots: Tensor, x: Tensor) -> Tensor:
    """Index ``i`` (shape ``(..., 1)``) of the bin ``[k_i, k_{i+1})`` holding ``x``, clamped.

    ``knots`` has shape ``(..., K+1)``, either one row per element of ``x`` or broadcast over
    its leading axes (shared by all points); shared knots are never copied per point.
    """
    last = knots.shape[-1] - 2
    if knots.ndim == 1:  # one shared set of knots: search without copying it per point
        idx = torch.searchsorted(knots.contiguous(), x.contiguous(), right=True) - 1
        return idx.clamp_(0, last).unsqueeze(-1)
    if knots.ndim == 2 and x.ndim == 2 and knots.shape[0] == x.shape[1]:
        # Per-axis knots (dim, K+1) shared by a batch (n, dim), as in the elementwise layers:
        # search each axis's column of points in that axis's knots.
        idx = torch.searchsorted(knots.contiguous(), x.T.contiguous(), right=True) - 1
        return idx.clamp_(0, last).T.unsqueeze(-1)
    knots = knots.expand(*x.shape, knots.shape[-1]).contiguous()  # no copy when per point
    idx = torch.searchsorted(knots, x.unsqueeze(-1).contiguous(), right=True) - 1
    return idx.clamp_(0, last)


def _clip01(t: Tensor) -> Tensor:
    """Clamp to ``[0, 1]`` (removes rounding excursions) while passing gradients through."""
    return t + (t.clamp(0.0, 1.0) - t).detach()


def _pin_ends(inp: Tensor, out: Tensor, ladj: Tensor, ladj_at_0: Tensor,
              ladj_at_1: Tensor) -> tuple[Tensor, Tensor]:
    """Clamp ``out`` to ``[0, 1]`` and map the ends of the interval exactly to themselves.

    A bin narrower than the spacing of floats near an end (possible when the floor on bin
    sizes is zero) has an inner knot that rounds onto the end, and the end then lands at the
    wrong side of that bin. The maps fix 0 and 1 by construction, so there the output is set
    exactly and ``ladj`` to its value at the end (``ladj_at_0``, ``ladj_at_1``: the log-slope at
    the first and last knot); elsewhere nothing changes, and gradients pass through ``out``.
    """
    out = _clip01(out)
    lo, hi = inp <= 0.0, inp >= 1.0
    out = out + torch.where(lo | hi, inp - out, 0.0).detach()
    return out, torch.where(lo, ladj_at_0, torch.where(hi, ladj_at_1, ladj))


def _take(t: Tensor, idx: Tensor) -> Tensor:
    """``t[..., idx]`` with ``idx`` of shape ``(..., 1)``; returns shape ``(...)``.

    ``t`` may be shared by leading axes of ``idx`` (knots of a per-axis layer, shape ``(dim,
    K)``, for points ``(n, dim, 1)``): then the entries are picked from ``t`` flattened, so the
    backward adds into ``t``'s gradient instead of filling one of the points' size.
    """
    lead = idx.shape[:-1]
    if t.shape[:-1] == lead:
        return torch.gather(t, -1, idx).squeeze(-1)
    rows = torch.arange(t[..., 0].numel(), device=t.device).view(t.shape[:-1])
    flat = (rows.expand(lead) * t.shape[-1] + idx.squeeze(-1)).reshape(-1)
    return t.reshape(-1).index_select(0, flat).view(lead)


def _rq_root(y: Tensor, s: Tensor, h_i: Tensor, d_i: Tensor, d_j: Tensor, y_k: Tensor
             ) -> tuple[Tensor, Tensor]:
    """The position ``xi`` in a rational-quadratic bin whose image is ``y`` (unclamped), and
    ``c2 = d_i + d_j - 2s``.

    The root in [0, 1] equals both ``2c / (-b - sq)`` and ``(-b + sq) / (2a)``. The first
    form cancels catastrophically when ``b < 0`` (steep knot derivatives around a flat bin);
    then ``a > h s > 0`` and the second form adds two positive terms. The denominators of the
    unused branches are replaced so that neither branch divides by zero (no NaN gradients
    under autograd).
    """
    dy = y - y_k
    c2 = d_j + d_i - 2.0 * s
    a = h_i * (s - d_i) + dy * c2
    b = h_i * d_i - dy * c2
    c = -s * dy
    sq = torch.sqrt((b * b - 4.0 * a * c).clamp_min(0.0))
    pos = b >= 0.0
    xi_pos = (2.0 * c) / torch.where(pos, -b - sq, -torch.ones_like(b))
    xi_neg = (-b + sq) / torch.where(pos, torch.ones_like(a), 2.0 * a)
    return torch.where(pos, xi_pos, xi_neg), c2

