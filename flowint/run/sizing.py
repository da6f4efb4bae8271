"""Sizes and trends the :class:`~flowint.run.policy.Policy` reads: the exploration's set
size, the batch while the target is tempered, the recent training trend, and the dtype a
trained flow is sampled in. Plain functions of numbers and records (re-exported by
:mod:`flowint.run.policy`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..result import IterationRecord

__all__ = ["FLOAT32_FLOOR", "explore_size", "flow_dtype", "median", "tempered_batch",
           "training_trend"]

#: Relative error below which a call's final estimate samples a trained flow in float64 (with
#: ``estimate_dtype="auto"``; above it float32, whose rounding changes the weights by under 1 %
#: of their spread and their mean by under 1 % of its standard error: tests/test_policy.py).
FLOAT32_FLOOR = 1e-5

def flow_dtype(setting: Any, rel_error: float) -> torch.dtype:
    """The dtype a trained flow is sampled in: ``setting`` (``estimate_dtype``) when it is a
    dtype; for ``"auto"``, float32 — the dtype the flow was trained in, whose training
    iterations the estimate reuses — unless the relative error to be reached is below
    :data:`FLOAT32_FLOOR` (or unknown: NaN), then float64."""
    if not isinstance(setting, str):
        return setting
    return torch.float32 if rel_error >= FLOAT32_FLOOR else torch.float64


def tempered_batch(batch: int, beta: float, start: float | None = None) -> int:
    """Points per training iteration while the target is tempered (``β < 1``): a quarter
    batch (at least 256) when the call's tempering started below ``β = 0.1`` (``start``,
    the first training iteration's ``β``) or ``β`` is below it now, else ``batch``.

    Tempering advances ``β`` once per iteration, by what the weights allow (about ×1.4 in
    16-D), so a target far from the start needs many iterations rather than many points:
    the 16-D evidence problem starts at ``β ≈ 3·10⁻⁵`` and needs about 70 (with full
    batches from ``β = 0.1`` on it reached ``β = 1`` only at the end of training, and its
    error grew from 0.0026 to 0.06–0.14 at 2·10⁵ calls). A target that starts near 1
    (the 16-D camel at 0.14) finishes in a few full batches, without the time of extra
    iterations (60 s against 99 s at 10⁵ calls, the same result)."""
    if beta >= 1.0:
        return batch
    if beta < 0.1 or (start is not None and start < 0.1):
        return min(batch, max(256, batch // 4))
    return batch


def explore_size(budget: int, rtol: float | None = None, atol: float | None = None) -> int:
    """Points per randomization of the smallest exploration size: about ``budget / 6000``,
    a power of two (each static candidate then takes ``8 · 21 n``, 2.8 % of the budget);
    with an error target, the budget is only a cap: sized as for ``10⁵`` calls at most."""
    if rtol is not None or atol is not None:
        budget = min(budget, 100_000)
    target = min(max(budget / 6000, 16), 4096)
    return 2 ** int(math.floor(math.log2(target)))


def training_trend(train: list[IterationRecord]) -> tuple[float, float, float]:
    """``(ρ, |I|, r)`` of recent training: median relative std per sample, median
    integral, and the rate ``r`` at which ``log ρ`` falls per call (from the medians of
    the older and newer halves of the last iterations)."""
    recent = train[-16:]
    half = len(recent) // 2
    older, newer = recent[:half], recent[half:]
    rho = median([r.rel_std for r in newer])
    before = median([r.rel_std for r in older])
    mean = abs(median([r.mean for r in newer]))
    calls = 0.5 * (sum(r.n for r in older) + sum(r.n for r in newer))
    rate = 0.0
    if rho > 0 and before > 0 and math.isfinite(rho) and math.isfinite(before) and calls > 0:
        rate = max(0.0, math.log(before / rho) / calls)
    return rho, mean, rate


def median(values: list[float]) -> float:
    """The upper median of ``values`` (NaN for none)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan
