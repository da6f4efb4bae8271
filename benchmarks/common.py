"""Shared pieces of the benchmark scripts: runners, records, tables and the results header.

Every method is run through a runner with the same signature,
``run_<method>(f, n_train, n_final, seed) -> Record``, where ``f`` is a registry integrand
(:mod:`integrands`: batched torch callable with ``.dim``, ``.exact`` and a float64
``.numpy`` twin). A :class:`Record` holds the same fields for every method, so the scripts
can put them side by side in one markdown table.

Conventions:

- ``rel_std`` is the relative standard deviation per sample, ``σ(f/q)/|I|``. For methods
  whose estimate is not a plain average (vegas's stratified sampling, scipy's randomised QMC)
  it is the *effective* value ``sdev · √n_final / |I|``: what a plain importance sampler with
  the same error would have.
- ``pull`` is ``(mean − exact) / sdev``.
- ``n_evals`` counts every integrand call the method made (training included), counted by
  wrapping the integrand, not taken from the method's own bookkeeping.
- ``wall_time`` covers training and the estimate, not the diagnostics passes (the extra
  draws used for vegas's unweighting efficiency and the weight histograms).
- ``f_time`` is the seconds spent inside the integrand, summed ``perf_counter`` around each
  call by the counting wrapper (NaN where a runner does not measure it).

The equal-*cost* runners (:data:`COST_RUNNERS`, used by ``equal_cost.py`` and
``cost_figures.py``) take one total budget instead, ``run(f, budget, seed) -> Record``, and run
each method with its own usual recipe: flowint's ``integrate(budget=...)``, vegas's 5 + 5
iterations, 16 scrambled Sobol sets, MadNIS's 10/11 training split.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "RESULTS_DIR",
    "COST_RUNNERS",
    "Counter",
    "Record",
    "TorchCounter",
    "environment",
    "header",
    "markdown_table",
    "fmt",
    "load_rows",
    "save_rows_comment",
    "write_atomic",
    "run_flowint",
    "run_flowint_budget",
    "run_madnis",
    "run_madnis_budget",
    "run_rqmc",
    "run_vegas_recipe",
    "run_vegas_to",
    "run_plain_mc",
    "run_qmc_quad",
    "run_vegas",
    "vegas_weights",
    "flowint_weights",
    "RUNNERS",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_CHUNK = 100_000  # points per call of f in the runners that draw their own points


@dataclass
class Record:
    """The outcome of one method on one integrand (the same fields for every method).

    Attributes:
        method: ``flowint``, ``vegas``, ``madnis``, ``plain-mc`` or ``qmc_quad``.
        case: the registry specification of the integrand.
        status: ``ok``, ``not installed`` or ``error: ...``.
        mean, sdev: the estimate and its standard error.
        exact: the exact value.
        rel_std: relative standard deviation per sample (see the module docstring).
        pull: ``(mean − exact) / sdev``.
        unweighting_efficiency: ``⟨w⟩ / max w`` of the final sample's weights (NaN if not
            available).
        wall_time: seconds for training and estimate.
        n_evals: integrand calls, training included.
        n_final: calls in the final estimate.
        seed: the seed of the run.
        note: free text.
        f_time: seconds spent inside the integrand (NaN if not measured).
        seconds: the method's own breakdown of its time, when it reports one (flowint's
            ``Result.seconds``, e.g. ``{"f": .., "train": .., "sample": ..}``), else ``None``.
    """

    method: str
    case: str
    status: str = "ok"
    mean: float = math.nan
    sdev: float = math.nan
    exact: float = math.nan
    rel_std: float = math.nan
    pull: float = math.nan
    unweighting_efficiency: float = math.nan
    wall_time: float = math.nan
    n_evals: int = 0
    n_final: int = 0
    seed: int | None = None
    note: str = ""
    f_time: float = math.nan
    seconds: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Counter:
    """Wraps a numpy batch integrand ``(n, d) -> (n,)``; counts its calls (``n``) and the
    seconds spent inside it (``seconds``)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn
        self.n = 0
        self.seconds = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        self.n += x.shape[0]
        t0 = time.perf_counter()
        y = self.fn(x)
        self.seconds += time.perf_counter() - t0
        return np.asarray(y, dtype=np.float64)


class TorchCounter:
    """Wraps a torch batch integrand (torch in, torch out, so flowint keeps its torch path);
    counts its calls (``n``) and the seconds spent inside it (``seconds``)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.n = 0
        self.seconds = 0.0

    def __call__(self, x: Any) -> Any:
        self.n += int(x.shape[0])
        t0 = time.perf_counter()
        y = self.fn(x)
        self.seconds += time.perf_counter() - t0
        return y


def _case(f: Any) -> str:
    return repr(f)


def _pull(mean: float, sdev: float, exact: float) -> float:
    if not (math.isfinite(mean) and math.isfinite(sdev)):
        return math.nan
    if sdev == 0:
        return 0.0 if mean == exact else math.copysign(math.inf, mean - exact)
    return (mean - exact) / sdev


def _unweighting(w: np.ndarray) -> float:
    """``⟨|w|⟩ / max |w|`` (the plain ``⟨w⟩/max w`` for positive weights)."""
    w = np.abs(np.asarray(w, dtype=np.float64))
    m = float(w.max()) if w.size else 0.0
    return float(w.mean() / m) if m > 0 else math.nan


# ---------------------------------------------------------------------------- runners


def run_flowint(f: Any, n_train: int, n_final: int, seed: int, **settings: Any) -> Record:
    """Train a :class:`flowint.Integrator` with ``n_train`` calls, then estimate with ``n_final``.

    ``settings`` are passed to the integrator (defaults otherwise; no progress bar).
    """
    import flowint

    rec = Record("flowint", _case(f), exact=float(f.exact), seed=seed)
    count = [0]

    def g(x):  # torch in, torch out: counts calls, keeps flowint's torch path
        count[0] += int(x.shape[0])
        return f(x)

    settings.setdefault("progress", False)
    t0 = time.perf_counter()
    try:
        integ = flowint.Integrator(f.dim, seed=seed, **settings)
        integ.train(g, n_train)
        res = integ.estimate(g, n_final)
    except Exception as exc:  # a failure is a result too: record it, go on
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = float(res.mean), float(res.sdev)
    rec.rel_std = float(res.rel_std)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    rec.unweighting_efficiency = float(res.unweighting_efficiency)
    rec.n_evals, rec.n_final = count[0], int(res.n_evals_final)
    return rec


def _vegas_integrator(dim: int, seed: int):
    import vegas

    rng = np.random.default_rng(seed)
    return vegas.Integrator(dim * [[0.0, 1.0]], ran_array_generator=rng.random)


def run_vegas(f: Any, n_train: int, n_final: int, seed: int, *, nitn: int = 10,
              weights: bool = True) -> Record:
    """vegas 6: ``nitn`` adaptive iterations of ``n_train/nitn`` calls, then one ``adapt=False``
    estimate of ``n_final`` calls (the analogue of flowint's frozen flow).

    ``rel_std`` is the effective ``sdev·√n_final/|I|``. With ``weights``, a separate pass of
    about ``n_final`` draws (not counted in ``n_evals`` nor ``wall_time``) gives the
    unweighting efficiency of vegas's per-sample weights.
    """
    import vegas

    rec = Record("vegas", _case(f), exact=float(f.exact), seed=seed)
    count = Counter(f.numpy)
    F = vegas.lbatchintegrand(count)
    t0 = time.perf_counter()
    try:
        integ = _vegas_integrator(f.dim, seed)
        if n_train > 0:
            integ(F, nitn=nitn, neval=max(1, n_train // nitn))
        n_before = count.n
        res = integ(F, nitn=1, neval=n_final, adapt=False)
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = float(res.mean), float(res.sdev)
    rec.n_evals, rec.n_final = count.n, count.n - n_before
    rec.rel_std = rec.sdev * math.sqrt(rec.n_final) / abs(rec.exact)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    if weights:
        rec.unweighting_efficiency = _unweighting(vegas_weights(integ, f))
    return rec


def vegas_weights(integ: Any, f: Any) -> np.ndarray:
    """Per-sample weights ``N · wgt · f(x)`` of one pass of a vegas integrator's sampler
    (``wgt`` from ``random_batch``, which includes the stratification), normalised so that
    their mean estimates the integral."""
    parts = []
    for x, wgt in integ.random_batch():
        parts.append(np.asarray(wgt) * f.numpy(np.asarray(x)))
    w = np.concatenate(parts)
    return w * w.size


def flowint_weights(integ: Any, f: Any, n: int, seed: int) -> np.ndarray:
    """Weights ``f(x)/q(x)`` of ``n`` fresh draws from a trained flowint integrator."""
    import torch

    x, w = integ.sample(n, seed=seed)
    with torch.no_grad():
        fx = f(x)
    return (fx * w).double().cpu().numpy()


def run_plain_mc(f: Any, n_train: int, n_final: int, seed: int) -> Record:
    """Plain Monte Carlo with uniform points; it needs no training, so it gets all
    ``n_train + n_final`` calls."""
    rec = Record("plain-mc", _case(f), exact=float(f.exact), seed=seed)
    rng = np.random.default_rng(seed)
    n = n_train + n_final
    t0 = time.perf_counter()
    s1 = s2 = sabs = 0.0
    wmax = 0.0
    left = n
    while left > 0:
        m = min(_CHUNK, left)
        v = np.asarray(f.numpy(rng.random((m, f.dim))), dtype=np.float64)
        s1 += float(v.sum())
        s2 += float((v * v).sum())
        sabs += float(np.abs(v).sum())
        wmax = max(wmax, float(np.abs(v).max()))
        left -= m
    mean = s1 / n
    var = max(s2 / n - mean * mean, 0.0) * n / max(n - 1, 1)
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = mean, math.sqrt(var / n)
    rec.rel_std = math.sqrt(var) / abs(rec.exact)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    rec.unweighting_efficiency = (sabs / n) / wmax if wmax > 0 else math.nan  # ⟨|w|⟩/max|w|
    rec.n_evals = rec.n_final = n
    return rec


def run_qmc_quad(f: Any, n_train: int, n_final: int, seed: int, *,
                 n_estimates: int = 8) -> Record:
    """scipy.integrate.qmc_quad: ``n_estimates`` scrambled Halton sets of
    ``(n_train + n_final) // n_estimates`` points (no training: all calls go to the estimate).
    ``rel_std`` is the effective ``sdev·√N/|I|``."""
    from scipy.integrate import qmc_quad
    from scipy.stats import qmc

    rec = Record("qmc_quad", _case(f), exact=float(f.exact), seed=seed)
    n_points = max(1, (n_train + n_final) // n_estimates)
    count = Counter(f.numpy)

    def g(x: np.ndarray) -> np.ndarray:  # scipy passes shape (d, n), or (d,) for one point
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return count(x[None, :])[0]
        return np.concatenate([count(x[:, i:i + _CHUNK].T)
                               for i in range(0, x.shape[1], _CHUNK)])

    t0 = time.perf_counter()
    try:
        res = qmc_quad(g, np.zeros(f.dim), np.ones(f.dim), n_estimates=n_estimates,
                       n_points=n_points, qrng=qmc.Halton(f.dim, seed=seed))
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = float(res.integral), float(res.standard_error)
    rec.n_evals = rec.n_final = count.n
    rec.rel_std = rec.sdev * math.sqrt(count.n) / abs(rec.exact)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    return rec


def run_madnis(f: Any, n_train: int, n_final: int, seed: int, *,
               batch_size: int = 1024) -> Record:
    """MadNIS, when importable: ``n_train // batch_size`` training steps, then ``n_final``
    calls. Returns a record with status ``not installed`` otherwise (nothing is installed)."""
    rec = Record("madnis", _case(f), exact=float(f.exact), seed=seed)
    try:
        import madnis  # noqa: F401
        from madnis.integrator import Integrator as MadnisIntegrator
    except Exception:
        rec.status = "not installed"
        return rec
    import torch

    count = [0]
    f_time = [0.0]

    def g(x):
        count[0] += int(x.shape[0])
        x64 = x.to(torch.float64)
        t = time.perf_counter()
        y = f(x64)
        f_time[0] += time.perf_counter() - t
        return y.to(x.dtype)

    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)  # MadNIS draws from torch's global generator
        integ = MadnisIntegrator(g, dims=f.dim, batch_size=batch_size)
        integ.train(max(1, n_train // batch_size))
        n_before = count[0]
        out = integ.integrate(n_final)
        mean, sdev = (float(out[0]), float(out[1])) if isinstance(out, tuple) else (
            float(out.integral), float(out.error))
    except Exception as exc:  # unknown API version: say so rather than guess on
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = mean, sdev
    rec.n_evals, rec.n_final = count[0], count[0] - n_before
    rec.f_time = f_time[0]
    rec.rel_std = sdev * math.sqrt(max(rec.n_final, 1)) / abs(rec.exact)
    rec.pull = _pull(mean, sdev, rec.exact)
    return rec


RUNNERS: dict[str, Callable[..., Record]] = {
    "flowint": run_flowint,
    "vegas": run_vegas,
    "madnis": run_madnis,
    "plain-mc": run_plain_mc,
    "qmc_quad": run_qmc_quad,
}


# ---------------------------------------------------------------------------- equal-cost runners
# One total budget per run; every method follows its own usual recipe. Each counts every call
# and the seconds spent inside the integrand with a wrapper.


def _seconds_dict(obj: Any) -> dict[str, float] | None:
    """A method's timing breakdown as ``{name: seconds}`` (``None`` if absent or unreadable)."""
    if obj is None:
        return None
    try:
        items = dict(obj).items() if not hasattr(obj, "__dataclass_fields__") else (
            asdict(obj).items())
        return {str(k): float(v) for k, v in items}
    except Exception:
        try:
            return {str(k): float(v) for k, v in vars(obj).items()}
        except Exception:
            return None


def run_flowint_budget(f: Any, budget: int, seed: int, *, rtol: float | None = None,
                       **settings: Any) -> Record:
    """``flowint.integrate(f, d, budget=budget, rtol=rtol, seed=seed)`` with the defaults: all
    the calls of the run (training included) are counted, and timed, by a torch-in/torch-out
    wrapper; the wall time is the call's (flowint's import, once per process, is not in it).
    ``Result.seconds`` is kept in ``Record.seconds`` when the result has it. A failure
    (flowint's import included) gives a record whose status says so."""
    rec = Record("flowint", _case(f), exact=float(f.exact), seed=seed)
    g = TorchCounter(f)
    settings.setdefault("progress", False)
    try:  # the import is the process's, once, not the run's (as vegas's is)
        import flowint
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    t0 = time.perf_counter()
    try:
        res = flowint.integrate(g, f.dim, budget=int(budget), rtol=rtol, seed=seed, **settings)
    except Exception as exc:  # a failure is a result too: record it, go on
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        rec.n_evals, rec.f_time = g.n, g.seconds
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = float(res.mean), float(res.sdev)
    rec.rel_std = float(getattr(res, "rel_std", math.nan))
    rec.unweighting_efficiency = float(getattr(res, "unweighting_efficiency", math.nan))
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    rec.n_evals, rec.f_time = g.n, g.seconds
    rec.n_final = int(getattr(res, "n_evals_final", 0))
    rec.seconds = _seconds_dict(getattr(res, "seconds", None))
    notes = []
    if getattr(res, "method", None):
        notes.append(f"sampler {res.method}")
    if int(getattr(res, "n_evals", g.n)) != g.n:
        notes.append(f"Result.n_evals {int(res.n_evals):,} vs {g.n:,} counted")
    warns = tuple(getattr(res, "warnings", ()) or ())
    if warns:
        notes.append(f"{len(warns)} warning(s): {warns[0]}")
    rec.note = "; ".join(notes)[:120]
    return rec


def run_vegas_recipe(f: Any, budget: int, seed: int, *, nitn: int = 5) -> Record:
    """vegas's usual recipe: ``nitn`` iterations of ``budget/(2·nitn)`` calls to adapt the grid
    (discarded), then ``nitn`` more of the same size, averaged by vegas (which keeps adapting).
    Integrand ``f.numpy`` through ``vegas.lbatchintegrand``; the calls vegas actually made are
    counted. ``rel_std`` is the effective ``sdev·√n_final/|I|``; the note gives vegas's Q."""
    import vegas

    rec = Record("vegas", _case(f), exact=float(f.exact), seed=seed)
    count = Counter(f.numpy)
    F = vegas.lbatchintegrand(count)
    neval = max(1, int(budget) // (2 * nitn))
    t0 = time.perf_counter()
    try:
        integ = _vegas_integrator(f.dim, seed)
        integ(F, nitn=nitn, neval=neval)  # adaptation, discarded
        n_before = count.n
        res = integ(F, nitn=nitn, neval=neval)
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = float(res.mean), float(res.sdev)
    rec.n_evals, rec.n_final, rec.f_time = count.n, count.n - n_before, count.seconds
    rec.rel_std = rec.sdev * math.sqrt(rec.n_final) / abs(rec.exact)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    rec.note = f"Q = {float(res.Q):.3g}"
    return rec


def run_vegas_to(f: Any, rtol: float, cap: int, seed: int, *, neval: int = 100_000,
                 n_adapt: int = 5) -> Record:
    """vegas until ``sdev/|mean| < rtol``: ``n_adapt`` iterations of ``neval`` calls to adapt
    (discarded), then iterations of ``neval`` (still adapting), combined by inverse-variance
    weights, until the target or ``cap`` calls in all. The note says which ended the run."""
    import vegas

    rec = Record("vegas", _case(f), exact=float(f.exact), seed=seed)
    count = Counter(f.numpy)
    F = vegas.lbatchintegrand(count)
    t0 = time.perf_counter()
    sw = swm = 0.0
    mean = sdev = math.nan
    reached = False
    try:
        integ = _vegas_integrator(f.dim, seed)
        integ(F, nitn=n_adapt, neval=neval)
        n_before = count.n
        while count.n < cap:
            r = integ(F, nitn=1, neval=neval)
            s = float(r.sdev)
            if s > 0 and math.isfinite(s):
                sw += 1.0 / s**2
                swm += float(r.mean) / s**2
                mean, sdev = swm / sw, 1.0 / math.sqrt(sw)
            elif s == 0 and math.isnan(mean):
                mean, sdev = float(r.mean), 0.0
            if mean != 0 and math.isfinite(mean) and sdev / abs(mean) < rtol:
                reached = True
                break
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    rec.mean, rec.sdev = mean, sdev
    rec.n_evals, rec.n_final, rec.f_time = count.n, count.n - n_before, count.seconds
    rec.rel_std = sdev * math.sqrt(max(rec.n_final, 1)) / abs(rec.exact)
    rec.pull = _pull(mean, sdev, rec.exact)
    rec.note = f"rtol {rtol:g} reached" if reached else f"cap of {cap:,} calls reached"
    return rec


def run_rqmc(f: Any, budget: int, seed: int, *, n_rand: int = 16) -> Record:
    """Plain randomised QMC, no adaptation: ``n_rand`` independently scrambled Sobol sets
    (``scipy.stats.qmc.Sobol(d, scramble=True, bits=64)``: the default 30-bit digits
    quantize smooth integrands at ~2^-30) of ``2^m`` points, the largest ``m`` with
    ``n_rand·2^m ≤ budget``; the estimate is the mean of the ``n_rand`` means and its error
    their standard deviation over ``√n_rand``. ``rel_std`` is the effective
    ``sdev·√N/|I|``."""
    from scipy.stats import qmc

    rec = Record("rqmc", _case(f), exact=float(f.exact), seed=seed)
    if budget < n_rand:
        rec.status = f"error: budget {budget} < {n_rand} randomizations"
        return rec
    m = int(math.floor(math.log2(budget / n_rand)))
    while n_rand * 2 ** (m + 1) <= budget:  # guard against rounding in log2
        m += 1
    while m > 0 and n_rand * 2**m > budget:
        m -= 1
    n = 2**m
    chunk = min(n, 2**16)  # powers of two keep Sobol's balance properties
    count = Counter(f.numpy)
    rng = np.random.default_rng(seed)
    means = []
    t0 = time.perf_counter()
    try:
        for _ in range(n_rand):
            engine = qmc.Sobol(f.dim, scramble=True, seed=rng, bits=64)
            total = 0.0
            for _ in range(n // chunk):
                total += float(count(engine.random(chunk)).sum())
            means.append(total / n)
    except Exception as exc:
        rec.status = f"error: {type(exc).__name__}: {exc}"[:200]
        return rec
    rec.wall_time = time.perf_counter() - t0
    arr = np.asarray(means)
    rec.mean = float(arr.mean())
    rec.sdev = float(arr.std(ddof=1) / math.sqrt(n_rand))
    rec.n_evals = rec.n_final = count.n
    rec.f_time = count.seconds
    rec.rel_std = rec.sdev * math.sqrt(count.n) / abs(rec.exact)
    rec.pull = _pull(rec.mean, rec.sdev, rec.exact)
    rec.note = f"{n_rand} × 2^{m} Sobol points"
    return rec


def run_madnis_budget(f: Any, budget: int, seed: int) -> Record:
    """MadNIS with its defaults (batches of 1024), ``10/11·budget`` training calls and
    ``budget/11`` fresh calls for the estimate (its 1000 steps × 1024 at 1.1·10⁶)."""
    return run_madnis(f, 10 * int(budget) // 11, max(1, int(budget) // 11), seed)


COST_RUNNERS: dict[str, Callable[..., Record]] = {
    "flowint": run_flowint_budget,
    "vegas": run_vegas_recipe,
    "rqmc": run_rqmc,
    "madnis": run_madnis_budget,
}


# ---------------------------------------------------------------------------- header


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "flowint", "integrands"],
                               cwd=root, capture_output=True, text=True, timeout=10)
        commit = out.stdout.strip() or "unknown"
        return commit + (" (+ uncommitted changes in flowint/ or integrands/)"
                         if dirty.stdout.strip() else "")
    except Exception:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    """The module's ``__version__``, else its installed distribution's version."""
    try:
        mod = __import__(module)
    except Exception:
        return "not installed"
    version = getattr(mod, "__version__", None)
    if version is None:
        from importlib import metadata

        try:
            version = metadata.version(module)
        except metadata.PackageNotFoundError:
            version = "?"
    return str(version)


def environment() -> dict[str, str]:
    """Machine, versions, threads, date and git commit, as strings."""
    import torch

    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git commit": _git_commit(),
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "vegas": _version("vegas"),
        "flowint": _version("flowint"),
        "madnis": _version("madnis"),
    }


def header(title: str, command: str, settings: dict[str, Any]) -> str:
    """The top of a results file: title, command line, settings and environment."""
    lines = [f"# {title}", "", f"Generated by `{command}`.", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in settings.items()]
    lines += ["", "| machine / version | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in environment().items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- tables


def fmt(value: Any, digits: int = 3) -> str:
    """Compact formatting for table cells: ints with thousands separators, floats with
    ``digits`` significant digits, NaN as ``—``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    return str(value).replace("|", "\\|")


_PIPE = re.compile(r"(?<!\\)\|")  # a "|" not already escaped


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; cells go through :func:`fmt` unless they are strings (whose
    ``|`` are escaped)."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (_PIPE.sub(r"\\|", c) if isinstance(c, str) else fmt(c) for c in row)
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


# Rows are also kept inside the markdown file, one JSON object per HTML comment, so that an
# interrupted run can resume from the file it was writing.
_ROW_TAG = "<!-- row "


def write_atomic(path: Path, text: str) -> None:
    """Write a results file whole: to a temporary file beside it, then renamed over it, so a
    run killed while writing leaves the previous version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def add_row(out: Path, title: str, command: str, settings: dict[str, Any],
            columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
    """Print the last of ``rows`` and write the whole table to ``out`` again (header and
    table), so that a long run leaves a readable file after every row."""
    print(" | ".join(fmt(c) if not isinstance(c, str) else c for c in rows[-1]), flush=True)
    write_atomic(Path(out), header(title, command, settings) + "\n" + markdown_table(columns,
                                                                                    rows))


def save_rows_comment(rows: Iterable[dict[str, Any]]) -> str:
    """The machine-readable copy of ``rows`` to append to a markdown file."""
    return "".join(f"{_ROW_TAG}{json.dumps(_finite(r))} -->\n" for r in rows)


def load_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows saved by :func:`save_rows_comment` in a markdown file (empty if none)."""
    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        if line.startswith(_ROW_TAG) and line.endswith(" -->"):
            rows.append(json.loads(line[len(_ROW_TAG):-4]))
    return rows


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def as_float(v: Any) -> float:
    """Undo :func:`_finite`: ``"nan"``/``"inf"`` strings back to floats."""
    return float(v) if v is not None else math.nan


def record_dict(rec: Record) -> dict[str, Any]:
    return asdict(rec)

