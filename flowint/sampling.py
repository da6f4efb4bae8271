"""Samples from a trained integrator: weighted points, unweighted points, and their export.

A trained flow ``q`` is close to the target ``p = |f| / I``. Drawing ``x ~ q`` and attaching the
weight ``w = f(x) / q(x)`` gives *weighted* samples: ``mean(w g(x))`` estimates ``∫ f g`` for any
``g``, and ``mean(w)`` is the integral itself. *Unweighted* samples (points distributed as
``p`` itself, as an event generator hands to a detector simulation) follow by accept–reject:
keep each point with probability ``|w| / w_max``. The fraction kept, the *unweighting
efficiency*, is ``⟨|w|⟩ / w_max``: the better ``q`` matches ``p``, the closer it is to one.

``w_max`` is estimated on a calibration batch, either as its largest weight (then later points
with a larger weight, *overweights*, are rare) or as a quantile of the weights, a *reduced
maximum* that trades a higher efficiency for more overweights. Either way the result stays
exact: a kept point carries the weight ``sign(f) · max(1, |w| / w_max)``, which is ``±1``
except for overweights, so sample averages remain unbiased; :class:`UnweightedSamples` reports
how many points are overweight and what share of the integral they carry.

Example:
    >>> integ = flowint.Integrator(2, seed=1)
    >>> result = integ(f, 200_000)
    >>> s = unweighted_samples(integ, f, 10_000, seed=2)
    >>> s.efficiency, s.overweight_fraction
    >>> s.save("events.npz")
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ._rng import SeedLike, make_generator
from .integrand import map_points

if TYPE_CHECKING:  # pragma: no cover
    from .integrator import Integrator

__all__ = ["UnweightedSamples", "WeightedSamples", "load_npz", "save_npz", "unweight",
           "unweighted_samples", "weighted_samples"]


@dataclass(frozen=True)
class WeightedSamples:
    """Points drawn from the frozen flow with their integrand weights.

    Attributes:
        x: points in the box, shape ``(n, dim)``.
        weights: ``f(x) / q(x)`` with the box volume included, shape ``(n,)``; their mean
            estimates ``∫ f``.
        log_q: ``log q`` of the points on the unit cube (before the box map).
        log_scale: for an integrand given as a logarithm, the weights are in units of
            ``exp(log_scale)`` (the integrator's running scale); 0 otherwise.
    """

    x: Tensor
    weights: Tensor
    log_q: Tensor
    log_scale: float = 0.0

    @property
    def integral(self) -> float:
        """The mean weight: an estimate of ``∫ f``."""
        return float(self.weights.mean())

    @property
    def efficiency(self) -> float:
        """The unweighting efficiency these weights allow, ``⟨|w|⟩ / max |w|``."""
        a = self.weights.abs()
        return float(a.mean() / a.max()) if float(a.max()) > 0 else 1.0

    def save(self, path: str | os.PathLike, **metadata: Any) -> Path:
        """Write the points and weights with :func:`save_npz`."""
        return save_npz(path, self.x, self.weights, log_q=self.log_q, **metadata)


@dataclass(frozen=True)
class UnweightedSamples:
    """Points distributed as ``|f| / ∫|f|``, from accept–reject on weighted samples.

    Attributes:
        x: the kept points, shape ``(n, dim)``.
        weights: per point ``sign(f) · max(1, |w| / w_max)``: ``±1`` except for overweights.
        max_weight: the ``w_max`` used.
        n_tried: weighted points drawn (each one an integrand evaluation), calibration not
            included.
        n_calibration: points of the calibration batch that set ``w_max``.
        overweight_share: share of ``Σ|w|`` of the tried points above ``w_max``, i.e. the
            part of the integral a plain unit-weight sample would miss.

    The unweighting efficiency is :attr:`efficiency`, ``len(x) / n_tried``.
    """

    x: Tensor
    weights: Tensor
    max_weight: float
    n_tried: int
    n_calibration: int
    overweight_share: float

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def efficiency(self) -> float:
        """Kept points per tried point (per integrand evaluation after calibration)."""
        return len(self) / self.n_tried if self.n_tried else math.nan

    @property
    def overweight_fraction(self) -> float:
        """Fraction of the kept points whose weight exceeded ``w_max`` (weight above 1)."""
        return float((self.weights.abs() > 1).double().mean()) if len(self) else 0.0

    @property
    def integral(self) -> float:
        """``w_max · Σ weights / n_tried``: a (consistent) estimate of ``∫ f``."""
        return self.max_weight * float(self.weights.sum()) / self.n_tried

    def save(self, path: str | os.PathLike, **metadata: Any) -> Path:
        """Write the points and weights with :func:`save_npz`, with the diagnostics."""
        return save_npz(path, self.x, self.weights, max_weight=self.max_weight,
                        n_tried=self.n_tried, efficiency=self.efficiency,
                        overweight_fraction=self.overweight_fraction,
                        overweight_share=self.overweight_share, **metadata)


def weighted_samples(integ: Integrator, f: Callable, n: int, *, seed: SeedLike = None,
                     component: int | None = None) -> WeightedSamples:
    """Draw ``n`` points from the frozen flow and weight them by ``f / q``.

    Arguments:
        integ: a (trained) integrator.
        f: the integrand (any form the integrator accepts; evaluated through its
            :class:`~flowint.Integrand`, so ``max_batch`` and ``executor`` apply).
        n: number of points.
        seed: randomness (default: the integrator's own generator, advanced).
        component: for a vector integrand, the component that defines the weights
            (default 0).

    Returns:
        The points (in the box), their weights and ``log q``.
    """
    n = _count(n, "n")
    gen = integ.generator if seed is None else make_generator(seed, integ.device)
    return _draw(integ, integ.frozen_flow(), f, n, gen, component)


def _draw(integ: Integrator, flow: Any, f: Callable, n: int, gen: torch.Generator,
          component: int | None) -> WeightedSamples:
    """:func:`weighted_samples` with a given frozen flow and generator."""
    u, log_q = flow.sample(n, seed=gen)  # Flow.sample draws without gradients
    wrapped = integ.wrap(f)
    fx = wrapped(u)
    if fx.ndim == 2:
        k = 0 if component is None else int(component)
        if not 0 <= k < fx.shape[1]:
            raise ValueError(f"component={k}, but the integrand has {fx.shape[1]} components")
        fx = fx[:, k]
    elif component not in (None, 0):
        raise ValueError("component is only for vector integrands")
    log_q = log_q.to(torch.float64)
    log_scale = 0.0
    if wrapped.log:  # weights exp(log f - log q - scale), on the run's scale when it has one
        finite = fx[torch.isfinite(fx)]
        top = float(finite.max()) if finite.numel() else 0.0
        if integ.state.log_scale is None:  # no run yet: this batch sets the scale
            integ.state.rescale(top)
        log_scale = integ.state.log_scale
        weights = torch.exp(fx - log_q - log_scale)
    else:
        weights = fx * torch.exp(-log_q)
    x = map_points(u.to(torch.float64), wrapped.box, wrapped.prior)
    return WeightedSamples(x, weights, log_q, log_scale)


def unweight(x: Tensor, weights: Tensor, *, max_weight: float | None = None,
             quantile: float | None = None, seed: SeedLike = None) -> UnweightedSamples:
    """Accept–reject on given weighted points: keep each with probability ``|w| / w_max``.

    Arguments:
        x: points, shape ``(n, dim)``.
        weights: their weights ``f/q`` (may be signed), shape ``(n,)``.
        max_weight: ``w_max``; default: the largest ``|w|`` (no overweights), or the
            ``quantile`` of ``|w|`` when that is given.
        quantile: use this quantile of ``|w|`` (e.g. ``0.999``) as a reduced maximum.
        seed: randomness of the accept–reject draws.

    Returns:
        The kept points with weights ``sign · max(1, |w| / w_max)``.
    """
    weights = torch.as_tensor(weights, dtype=torch.float64, device=x.device)
    if weights.ndim != 1 or weights.shape[0] != x.shape[0]:
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {tuple(weights.shape)}")
    w_max = _max_weight(weights, max_weight, quantile)
    gen = make_generator(seed, x.device)
    keep, out_w = _accept(weights, w_max, gen)
    a = weights.abs()
    share = float((a - w_max).clamp_min(0).sum() / a.sum()) if float(a.sum()) > 0 else 0.0
    return UnweightedSamples(x[keep], out_w[keep], w_max, int(x.shape[0]), 0, share)


def unweighted_samples(integ: Integrator, f: Callable, n: int, *, seed: SeedLike = None,
                       calibration: int = 10_000, quantile: float | None = None,
                       max_weight: float | None = None, batch: int | None = None,
                       max_tries: int | None = None,
                       component: int | None = None) -> UnweightedSamples:
    """``n`` points distributed as ``|f| / ∫|f|``, by accept–reject on the trained flow.

    First ``w_max`` is set from a calibration batch (its largest weight, or its ``quantile``);
    then fresh batches are drawn and each point kept with probability ``min(1, |w| / w_max)``
    until ``n`` points are kept. Kept points carry ``sign(f) · max(1, |w| / w_max)``, so the
    sample stays exact when later points exceed the calibrated maximum (overweights).

    Arguments:
        integ: a trained integrator (an untrained one works too, only less efficiently).
        f: the integrand.
        n: number of points wanted.
        seed: randomness (default: the integrator's generator).
        calibration: size of the calibration batch.
        quantile: set ``w_max`` to this quantile of the calibration weights (e.g. ``0.999``)
            instead of their maximum: higher efficiency, more overweights.
        max_weight: set ``w_max`` directly (no calibration batch).
        batch: points drawn per round (default: the integrator's batch size).
        max_tries: most points to draw (default ``1000 n``); a :class:`RuntimeError` past it.
        component: for a vector integrand, the component to sample (default 0).

    Returns:
        The samples, with the efficiency (kept per tried point) and overweight diagnostics.
    """
    n = _count(n, "n")
    gen = integ.generator if seed is None else make_generator(seed, integ.device)
    flow = integ.frozen_flow()
    n_cal = 0
    if max_weight is None:
        n_cal = _count(calibration, "calibration")
        cal = _draw(integ, flow, f, n_cal, gen, component)
        max_weight = _max_weight(cal.weights, None, quantile)
    elif quantile is not None:
        raise ValueError("give max_weight or quantile, not both")
    w_max = _max_weight(torch.ones(1, dtype=torch.float64), max_weight, None)
    size = int(batch) if batch is not None else integ.batch_size()
    limit = 1000 * n if max_tries is None else _count(max_tries, "max_tries")
    xs: list[Tensor] = []
    ws: list[Tensor] = []
    kept = tried = 0
    abs_sum = over_sum = 0.0
    while kept < n:
        if tried >= limit:
            raise RuntimeError(f"only {kept} of {n} points kept after {tried} tries "
                               f"(efficiency {kept / tried:.2g}); train the flow better, use a "
                               "quantile as reduced maximum, or raise max_tries")
        s = _draw(integ, flow, f, min(size, limit - tried), gen, component)
        keep, out_w = _accept(s.weights, w_max, gen)
        idx = torch.nonzero(keep).squeeze(-1)[: n - kept]
        # Stop at the n-th kept point: the tries after it do not count.
        used = int(idx[-1]) + 1 if idx.numel() < int(keep.sum()) else int(s.weights.shape[0])
        a = s.weights[:used].abs()
        abs_sum += float(a.sum())
        over_sum += float((a - w_max).clamp_min(0).sum())
        tried += used
        xs.append(s.x[idx])
        ws.append(out_w[idx])
        kept += int(idx.numel())
    share = over_sum / abs_sum if abs_sum > 0 else 0.0
    return UnweightedSamples(torch.cat(xs), torch.cat(ws), w_max, tried, n_cal, share)


def save_npz(path: str | os.PathLike, x: Tensor | np.ndarray, weights: Any = None, /,
             **metadata: Any) -> Path:
    """Write samples to a compressed ``.npz`` file, atomically.

    Arguments:
        path: the file (written exactly there; no ``.npz`` is appended).
        x: points, shape ``(n, dim)``.
        weights: optional weights, shape ``(n,)``.
        **metadata: more arrays or numbers/strings stored beside them (e.g. ``seed=1``,
            ``integrand="camel"``, ``log_q=...``).

    Returns:
        The path written. Read it back with :func:`load_npz` or ``numpy.load``.
    """
    arrays: dict[str, np.ndarray] = {"x": _numpy(x)}
    if weights is not None:
        arrays["weights"] = _numpy(weights)
    for key, value in metadata.items():
        if key in arrays:
            raise ValueError(f"metadata key {key!r} clashes with the samples")
        arrays[key] = _numpy(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a file written by :func:`save_npz` (no pickles): ``{"x", "weights", ...}``."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# ---------------------------------------------------------------------------- helpers
def _accept(weights: Tensor, w_max: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    a = weights.abs()
    r = torch.rand(a.shape[0], generator=gen, dtype=torch.float64, device=a.device)
    keep = r * w_max < a
    out = torch.sign(weights) * torch.clamp(a / w_max, min=1.0)
    return keep, out


def _max_weight(weights: Tensor, max_weight: float | None, quantile: float | None) -> float:
    if max_weight is not None:
        if quantile is not None:
            raise ValueError("give max_weight or quantile, not both")
        value = float(max_weight)
    elif quantile is not None:
        if not 0.0 < float(quantile) <= 1.0:
            raise ValueError(f"quantile must be in (0, 1], got {quantile}")
        a = weights.abs().cpu().numpy()
        value = float(np.quantile(a, float(quantile)))
    else:
        value = float(weights.abs().max())
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"the maximum weight must be finite and positive, got {value} (is the "
                         "integrand zero everywhere it was sampled?)")
    return value


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object:
        raise TypeError(f"cannot store {type(value).__name__} in an npz file without pickle")
    return arr


def _count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer)) or not n >= 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)

