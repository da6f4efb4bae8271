"""Finding the separated peaks of an integrand before training: the mode search.

A single flow trained by tempering (``|f|^β``, ``β`` rising to 1) keeps a peak only while its
batches keep drawing points there. A narrow peak whose tempered share is small at low ``β``
(in 8-D, a peak half as wide as another has ``2⁻⁸`` of its tempered mass at ``β → 0``) is
lost early and never seen again, and the estimate is confidently wrong. The mode search finds
the peaks first, so that each gets a channel of its own (:mod:`flowint.run.mode_channels`):

1. *pilot*: ``n`` scrambled Sobol points of the cube and their ``log |f|``;
2. *basins* (QuickShift): every point links to its nearest neighbour among its ``k`` nearest
   that has a higher ``log |f|``; the points without one are the roots of the point cloud's
   basins. Up to :data:`MAX_STARTS` roots with the largest basins are kept. A narrow peak
   is the higher one near its centre even far from it, so its basin holds a few per cent of
   the points although its tempered share is tiny;
3. *ascent* (:mod:`flowint.run.ascent`): from each root, quasi-Newton steps on ``log |f|``:
   gradient and diagonal curvature by central differences along the axes (the step ``h``
   follows half the local width), a BFGS estimate of the peak's covariance for the
   direction (a correlated peak is not climbed by diagonal steps), a few points along it at
   once (``2 dim + 4`` calls per start and step), all starts in one batch;
4. *later rounds*: ascents from the pilot points that the modes found so far explain worst
   (where ``log |f|`` exceeds every mode's Gaussian by :data:`UNEXPLAINED` nats or more): a
   narrow peak whose basin held too few points for a root of its own; repeated (at most
   :data:`EXTRA_ROUNDS` times) while a round finds new modes;
5. *modes*: the ends of the ascents, merged when they lie within :data:`MERGE_WIDTHS` widths of
   each other or when the straight line between them has no valley (``log |f|`` at a
   quarter, half and three quarters of the way within :data:`VALLEY` of the lower end, none
   of those points on a third mode: a row of equal peaks has no valley at those points);
   each with its widths (marginal standard deviations ``√C_ii`` of the covariance estimate
   ``C``) and its Laplace mass ``log |f| + ½ log det(2π C)``.
   Modes below :data:`MIN_SHARE` of the largest mass are dropped, and at most
   :data:`MAX_MODES` are kept;
6. *polish*: in steps 3–4 an ascent takes at most :data:`FIRST_STEPS` steps, and at least
   :data:`POLISH_SHARE` of the calls after the pilot are left; they carry on the ascents of
   the distinct modes only (a correlated peak in 16-D needs about 25 steps, more than 32
   starts can all afford), the ends are merged again, and each mode gets its shape from the
   Hessian at its top.

A multi-channel run may add modes later (:func:`grow_modes`): ascents from its rest
channel's pilot points that the modes found explain worst.

Every call of ``f`` is counted by the caller's evaluation function. The result is plain data
(:class:`Mode`), kept in the run state so that a resumed run does not search again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from scipy.stats import qmc
from torch import Tensor

from .ascent import (
    MAX_WIDTH,
    ascend,
    finite,
    hessian_calls,
    hessian_shape,
    step_calls,
)

__all__ = ["DISPARITY", "FACE_LINE", "MAX_MODES", "MAX_STARTS", "MERGE_WIDTHS", "MIN_SHARE", "Mode",
           "VALLEY", "disparity", "find_modes", "grow_modes", "modes_from_pilot",
           "pilot_points", "search_calls", "unexplained"]

#: Most steps of an ascent from a pilot point; the distinct modes' ascents then carry on
#: (:func:`_polish`, at most :data:`~flowint.run.ascent.ASCENT_STEPS` steps) with the calls left.
FIRST_STEPS = 8
#: Share of the search's calls after the pilot kept for the polish.
POLISH_SHARE = 0.25
#: Most ascents (the roots with the largest basins).
MAX_STARTS = 32
#: The search's share of the run's calls (pilot and ascents), at most.
SEARCH_SHARE = 0.08
#: Points of the line inward that measures a mode's width next to a face (:func:`_face_widths`).
FACE_LINE = 12
#: Most modes kept (by Laplace mass).
MAX_MODES = 24
#: Modes whose Laplace mass is below this share of the largest are dropped.
MIN_SHARE = 1e-3
#: Two ends of ascents within this many widths (on every axis) are one mode.
MERGE_WIDTHS = 3.0
#: Two ends are one mode unless ``log |f|`` dips this much between them.
VALLEY = 2.0
#: ``channels="auto"`` goes on as channels when :func:`disparity` exceeds this.
DISPARITY = 10.0
#: Most starts of each later round (:func:`unexplained`).
SECOND_STARTS = 8
#: Most rounds after the first (each only while the one before found new modes).
EXTRA_ROUNDS = 4
#: A pilot point is unexplained when ``log |f|`` exceeds the modes' Gaussians by this much.
UNEXPLAINED = 5.0
NEIGHBOURS = 16


@dataclasses.dataclass(frozen=True)
class Mode:
    """A peak of ``|f|`` on the unit cube.

    Attributes:
        center: its location (the end of an ascent).
        width: per axis, the peak's marginal standard deviation (at least the conditional
            one, ``(-∂² log|f| / ∂x_i²)^(-1/2)``; at most :data:`~flowint.run.ascent.MAX_WIDTH`).
        log_peak: ``log |f|`` at the centre.
        log_mass: the Laplace estimate of its mass, ``log_peak + ½ log det(2π C)`` with ``C``
            the ascent's estimate of ``(-∇² log|f|)⁻¹`` (see :func:`ascend`).
    """

    center: tuple[float, ...]
    width: tuple[float, ...]
    log_peak: float
    log_mass: float

    def to_plain(self) -> dict[str, Any]:
        return {"center": list(self.center), "width": list(self.width),
                "log_peak": self.log_peak, "log_mass": self.log_mass}

    @classmethod
    def from_plain(cls, data: dict[str, Any]) -> Mode:
        return cls(tuple(data["center"]), tuple(data["width"]), float(data["log_peak"]),
                   float(data["log_mass"]))


def search_calls(budget: float, dim: int) -> tuple[int, int]:
    """The pilot's points for a run of ``budget`` calls (4 % of it, between ``64 dim`` and
    4096, the nearest power of two for Sobol), and the most calls the whole search may take
    (:data:`SEARCH_SHARE` of the budget).

    A narrow peak is found from the pilot points in its basin: ``three_peaks`` in 8-D has
    0.13 % of the cube in its narrowest peak's, 2.6 points of 2048 on average (none in 7 % of
    pilots) and 5.2 of 4096 (none in 0.5 %)."""
    n = min(max(0.04 * float(budget), 64.0 * dim), 4096.0)
    pilot = 2 ** max(round(math.log2(n)), 6)
    return pilot, max(int(SEARCH_SHARE * float(budget)), pilot + 4 * (2 * dim + 2))


def find_modes(log_f: Callable[[Tensor], Tensor], dim: int, n_pilot: int,
               generator: torch.Generator, max_calls: int | None = None) -> list[Mode]:
    """The modes of ``exp(log_f)`` on ``[0, 1]^dim`` (see the module doc).

    Arguments:
        log_f: ``log |f|`` of a float64 batch ``(n, dim)`` of cube points (``-inf`` where
            ``f = 0``); every call is the caller's to count.
        dim: dimension.
        n_pilot: points of the pilot (a power of two is best).
        generator: the run's random source (the pilot's scrambling).
        max_calls: most calls of the whole search (``None``: no limit): fewer starts, or
            fewer steps, when the ascents would need more.

    Returns:
        The modes, largest Laplace mass first (empty if ``f = 0`` at every pilot point).
    """
    u = pilot_points(dim, n_pilot, generator)
    lf = finite(log_f(u))
    room = None if max_calls is None else max(int(max_calls) - int(n_pilot), 2 * dim + 1)
    return modes_from_pilot(log_f, u, lf, room)


def pilot_points(dim: int, n: int, generator: torch.Generator) -> Tensor:
    """``n`` scrambled Sobol points of ``[0, 1]^dim`` (float64), scrambled from ``generator``."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return torch.as_tensor(qmc.Sobol(dim, scramble=True, seed=seed).random(int(n)),
                           dtype=torch.float64)


def modes_from_pilot(log_f: Callable[[Tensor], Tensor], u: Tensor, lf: Tensor,
                     room: int | None = None) -> list[Mode]:
    """Steps 2–5 of the search (module doc) from the pilot points ``u`` and their ``log |f|``
    ``lf``, with at most ``room`` more calls of ``log_f`` (``None``: no limit)."""
    dim = u.shape[1]
    lf = finite(lf)
    if not bool(torch.isfinite(lf).any()):
        return []
    counted = _Counted(log_f)
    climb = None if room is None else int((1.0 - POLISH_SHARE) * room)
    x, lx, width, vol = _ascents(counted, u, lf, basin_roots(u, lf), climb)
    modes = _merge(counted, x, lx, width, vol)
    # more rounds from the pilot points that the modes found so far explain worst, while
    # they find new modes (and the calls allow)
    for _ in range(EXTRA_ROUNDS):
        starts = unexplained(u, lf, modes)
        left = None if climb is None else climb - counted.calls
        if not len(starts) or (left is not None and left < 4 * step_calls(dim)):
            break
        x2, lx2, w2, v2 = _ascents(counted, u, lf, starts, left)
        x, lx = torch.cat([x, x2]), torch.cat([lx, lx2])
        width, vol = torch.cat([width, w2]), torch.cat([vol, v2])
        found = len(modes)
        modes = _merge(counted, x, lx, width, vol)
        if len(modes) <= found:
            break
    return _polish(counted, modes, None if room is None else room - counted.calls)


def grow_modes(log_f: Callable[[Tensor], Tensor], u: Tensor, lf: Tensor, modes: list[Mode],
               room: int) -> list[Mode]:
    """Modes that points drawn after the search show and ``modes`` do not: ascents from the
    points (``u``, their ``log |f|`` ``lf``) that the modes explain worst (as in the later
    rounds, :func:`unexplained`), their ends merged with the known modes (an end that climbs
    to a known peak, or has no valley between itself and one, is that peak), each new one
    with its Hessian's shape (next to a face, the widths across it from lines inward,
    :func:`_face_widths`). At most ``room`` calls of ``log_f`` for the ascents and their
    merge, and a few per new mode for its shape on top.

    Used on a multi-channel run's rest channel (:mod:`flowint.run.mode_channels`): its pilot
    draws where ``f`` is large and no mode's channel reaches, which is where a peak the
    search missed lies.

    Returns:
        The new modes only, largest Laplace mass first (empty when the points show none or
        the calls do not allow an ascent of four steps).
    """
    dim = u.shape[1]
    lf = finite(lf)
    starts = unexplained(u, lf, modes)
    shape = hessian_calls(dim)
    if not len(starts) or room < 4 * step_calls(dim) + shape:
        return []
    counted = _Counted(log_f)
    x, lx, width, vol = _ascents(counted, u, lf, starts, room - shape)
    known = [(m.center, m.width, m.log_peak, m.log_mass - m.log_peak) for m in modes]
    if known:
        cx, cw, cp, cv = (torch.tensor(list(v), dtype=torch.float64) for v in zip(*known,
                                                                                   strict=True))
        x, lx = torch.cat([cx, x]), torch.cat([cp, lx])
        width, vol = torch.cat([cw, width]), torch.cat([cv, vol])
    centers = {m.center for m in modes}
    new = [m for m in _merge(counted, x, lx, width, vol, len(known))
           if m.center not in centers]
    # each new mode's shape (its Hessian, or lines inward next to a face) on top of ``room``:
    # a few calls per mode, and a channel map and α from a wrong shape cost far more
    new = [_with_hessian_shape(counted, m) for m in new]
    return sorted(new, key=lambda m: -m.log_mass)


def _polish(log_f: _Counted, modes: list[Mode], room: int | None) -> list[Mode]:
    """The modes' ascents carried on from their ends (one per mode now that the starts on
    one peak are merged) with the calls left, then merged again: a peak whose starts were
    still climbing when the first rounds' calls ran out gets its top and its shape."""
    if not modes:
        return modes
    dim = len(modes[0].center)
    per_step = len(modes) * step_calls(dim)
    shape = hessian_calls(dim) * len(modes)
    room = None if room is None else room - 3 * len(modes) ** 2  # the merge's segments
    if room is None or room - shape >= 2 * per_step:  # an ascent needs two steps at least
        x = torch.tensor([m.center for m in modes], dtype=torch.float64)
        lx = torch.tensor([m.log_peak for m in modes], dtype=torch.float64)
        used = log_f.calls
        modes = _merge(log_f, *ascend(log_f, x, lx,
                                      max_calls=None if room is None else room - shape))
        room = None if room is None else room - (log_f.calls - used)
    if room is not None and room < hessian_calls(dim) * len(modes):
        return modes
    start = log_f.calls  # the lines next to a face take what the Hessians leave of ``room``
    modes = sorted((_with_hessian_shape(log_f, m, None if room is None else
                                        room - (log_f.calls - start)) for m in modes),
                   key=lambda m: -m.log_mass)
    floor = modes[0].log_mass + math.log(MIN_SHARE)
    return [m for m in modes if m.log_mass >= floor]


def _with_hessian_shape(log_f: Callable[[Tensor], Tensor], mode: Mode,
                        spare: int | None = None) -> Mode:
    """``mode`` with its widths and mass from the Hessian at its top (:func:`hessian_shape`);
    next to a face, where that gives none, the widths across the face from lines inward
    (:func:`_face_widths`, with at most ``spare`` calls; ``None``: no limit)."""
    shape = hessian_shape(log_f, torch.tensor(mode.center, dtype=torch.float64),
                          torch.tensor(mode.width, dtype=torch.float64), mode.log_peak)
    if shape is None:
        return _face_widths(log_f, mode, spare)
    return Mode(mode.center, tuple(shape[0].tolist()), mode.log_peak, mode.log_peak + shape[1])


def _face_widths(log_f: Callable[[Tensor], Tensor], mode: Mode, spare: int | None) -> Mode:
    """``mode`` with its width on each axis next to a face of the cube measured by a line
    inward, and its mass scaled alike: at :data:`FACE_LINE` distances ``t`` from ``10⁻⁵`` to
    :data:`~flowint.run.ascent.MAX_WIDTH`, spaced evenly in ``log``, the first where
    ``log |f|`` has fallen by ``Δ ≥ ½`` below the top gives ``σ = t / √(2Δ)`` (exact for a
    Gaussian).

    An ascent that ends on a face has no curvature across it (a one-sided difference), and
    the Hessian is not taken there, so such a width is whatever the ascent's steps left: an
    egg-box peak on a corner of the cube, 0.004 wide, was given 0.25 on one axis (70 times
    its mass) or 0.055 on both, and its channel took 90 % of ``α`` and most of the error.
    Unchanged where no axis is next to a face or ``spare`` calls do not allow the lines."""
    c = torch.tensor(mode.center, dtype=torch.float64)
    w = torch.tensor(mode.width, dtype=torch.float64)
    # next to a face as hessian_shape has it: its step, half the width, cut below a tenth
    axes = (torch.minimum(c, 1.0 - c) < 0.05 * w).nonzero().flatten().tolist()
    if not axes or (spare is not None and spare < FACE_LINE * len(axes)):
        return mode
    t = torch.logspace(-5.0, math.log10(MAX_WIDTH), FACE_LINE, dtype=torch.float64)
    lines = []
    for i in axes:
        p = c.repeat(FACE_LINE, 1)
        p[:, i] = (c[i] + (t if float(c[i]) < 0.5 else -t)).clamp(0.0, 1.0)
        lines.append(p)
    drop = mode.log_peak - finite(log_f(torch.cat(lines))).view(len(axes), FACE_LINE)
    new = w.clone()
    for k, i in enumerate(axes):
        past = (drop[k] >= 0.5).nonzero().flatten()
        if not len(past):
            new[i] = MAX_WIDTH
            continue
        j = int(past[0])  # a Gaussian falls by t² / 2σ² at t: σ from the first point past ½
        if math.isfinite(float(drop[k, j])):
            new[i] = t[j] / torch.sqrt(2.0 * drop[k, j])
        else:  # f is 0 there (the peak's support ends): no shape, only a bound
            new[i] = t[max(j - 1, 0)]
    new = new.clamp(1e-9, MAX_WIDTH)
    return Mode(mode.center, tuple(new.tolist()), mode.log_peak,
                mode.log_mass + float(torch.log(new / w).sum()))


def disparity(modes: list[Mode]) -> float:
    """How much a single tempered flow risks losing a peak: the largest ratio of a mode's
    share of the mass to its share of the tempered mass at small ``β``.

    A Gaussian peak of height ``p`` and widths ``s_i`` has mass ``∝ p Π s_i`` and, tempered,
    ``∫ f^β ∝ p^β Π (s_i/√β)``, whose share tends to ``Π s_i / Σ_j Π s_j`` (its volume) as
    ``β → 0``: a peak much higher than the volume-weighted mean height holds much of the
    integral but little of what the first tempered batches see. 1 for equal peaks (a camel, an
    egg box, points of a shell); 1 with fewer than two modes.
    """
    if len(modes) < 2:
        return 1.0
    # each mode's volume as its mass has it (the shapes cancel: what counts is the heights)
    log_v = torch.tensor([m.log_mass - m.log_peak for m in modes], dtype=torch.float64)
    log_m = torch.tensor([m.log_mass for m in modes], dtype=torch.float64)
    share_m = log_m - log_m.logsumexp(0)
    share_v = log_v - log_v.logsumexp(0)
    return float(torch.exp(share_m - share_v).max())


def unexplained(u: Tensor, lf: Tensor, modes: list[Mode], top: int = SECOND_STARTS) -> Tensor:
    """Indices of the pilot points where ``log |f|`` exceeds what the modes found explain (each
    mode's Gaussian ``log_peak - Σ (x_i - c_i)² / (2 width_i²)``, their maximum) by more than
    :data:`UNEXPLAINED` nats, the worst explained first, at most ``top``: the seeds of a
    second round of ascents (a narrow peak whose basin held no root of the first)."""
    if not modes:
        return torch.empty(0, dtype=torch.long)
    c = torch.tensor([m.center for m in modes], dtype=torch.float64)
    w = torch.tensor([m.width for m in modes], dtype=torch.float64)
    peak = torch.tensor([m.log_peak for m in modes], dtype=torch.float64)
    model = (peak[:, None] - 0.5 * (((u[None] - c[:, None]) / w[:, None]) ** 2).sum(-1))
    excess = lf - model.amax(0)
    excess = torch.where(torch.isfinite(excess), excess, -math.inf)
    order = torch.argsort(excess, descending=True, stable=True)
    return order[excess[order] > UNEXPLAINED][:top]


class _Counted:
    """``log_f`` with its calls counted."""

    def __init__(self, log_f: Callable[[Tensor], Tensor]):
        self.log_f, self.calls = log_f, 0

    def __call__(self, u: Tensor) -> Tensor:
        self.calls += int(u.shape[0])
        return self.log_f(u)


def _ascents(log_f: _Counted, u: Tensor, lf: Tensor, starts: Tensor,
             room: int | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Ascents from the pilot points ``starts``, as many as ``room`` calls allow 4 steps."""
    per_step = step_calls(u.shape[1])
    if room is not None:
        starts = starts[:max(1, room // (4 * per_step))]
    return ascend(log_f, u[starts], lf[starts], steps=FIRST_STEPS, max_calls=room)


def basin_roots(u: Tensor, lf: Tensor, k: int = NEIGHBOURS) -> Tensor:
    """Indices of the QuickShift roots of the cloud ``u`` with values ``lf``, largest basin
    first, at most :data:`MAX_STARTS` (the roots with a finite value only)."""
    n = u.shape[0]
    k = min(k, n - 1)
    parent = torch.arange(n)
    for lo in range(0, n, 1024):
        d = torch.cdist(u[lo:lo + 1024], u)
        d[torch.arange(d.shape[0]), torch.arange(lo, lo + d.shape[0])] = math.inf
        dist, idx = d.topk(k, largest=False)
        higher = lf[idx] > lf[lo:lo + 1024, None]
        first = torch.where(higher.any(1), higher.float().argmax(1), -1)
        has = first >= 0
        rows = torch.arange(d.shape[0])[has]
        parent[lo + rows] = idx[rows, first[has]]
    root = parent.clone()
    for _ in range(max(1, int(math.log2(n)) + 2)):
        root = root[root]
    while bool((root[root] != root).any()):
        root = root[root]
    roots, size = torch.unique(root, return_counts=True)
    keep = torch.isfinite(lf[roots])
    roots, size = roots[keep], size[keep]
    order = torch.argsort(size, descending=True, stable=True)
    return roots[order][:MAX_STARTS]


def _merge(log_f: Callable[[Tensor], Tensor], x: Tensor, lx: Tensor,
           width: Tensor, vol: Tensor, known: int = 0) -> list[Mode]:
    """The distinct modes among the ends of the ascents (see the module doc); the first
    ``known`` ends are modes already (kept as they are, the others merged into them)."""
    order = torch.argsort(lx[known:], descending=True, stable=True) + known
    kept: list[int] = list(range(known))
    for i in order.tolist():
        if not math.isfinite(float(lx[i])):
            continue
        near = [j for j in kept if float(((x[i] - x[j]).abs()
                                          / torch.minimum(width[i], width[j])).amax())
                < MERGE_WIDTHS]
        if near:
            continue
        if kept:  # one mode with a kept one if no point of the segment between them dips
            t = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)[:, None, None]
            seg = x[i] + t * (x[kept] - x[i])  # (3, kept, dim)
            lm = finite(log_f(seg.reshape(-1, x.shape[1]))).reshape(3, len(kept))
            flat = (lm >= torch.minimum(lx[i], lx[kept]) - VALLEY).all(0)
            # a segment through another kept mode proves nothing (a row of equal peaks)
            if bool((flat & ~_through(seg, x[kept], width[kept])).any()):
                continue
        kept.append(i)
    modes = [Mode(tuple(x[i].tolist()), tuple(width[i].tolist()), float(lx[i]),
                  float(lx[i] + vol[i])) for i in kept]
    modes.sort(key=lambda m: -m.log_mass)
    if modes:
        floor = modes[0].log_mass + math.log(MIN_SHARE)
        modes = [m for m in modes if m.log_mass >= floor]
    return modes[:MAX_MODES]


def _through(seg: Tensor, centers: Tensor, widths: Tensor) -> Tensor:
    """For each segment ``seg[:, j]`` (to the kept mode ``j``): whether one of its test points
    lies within :data:`MERGE_WIDTHS` widths of a kept mode other than ``j``."""
    k = centers.shape[0]
    # distance of every test point of every segment to every kept mode, in its widths
    d = ((seg[:, :, None, :] - centers[None, None]).abs() / widths[None, None]).amax(-1)
    hit = d < MERGE_WIDTHS  # (3, segments, modes)
    hit = hit & ~torch.eye(k, dtype=torch.bool)[None]  # its own end does not count
    return hit.any(-1).any(0)
