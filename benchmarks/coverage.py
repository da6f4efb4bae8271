"""Coverage study: do the error bars of flowint (and of vegas) mean what they say?

For each test integrand with a known value, many independent runs at a small budget are made
with different seeds; each run gives an estimate ``m ± s`` and its pull ``(m − exact)/s``. If
the error bars are honest, the pulls are standard normal: 68.3 % of them within 1σ, 95.4 %
within 2σ, 99.73 % within 3σ; and the χ² of the final iterations about their mean has a
uniformly distributed ``Q``. The same integrands and seeds are run through vegas in two ways:
``vegas-frozen`` (adapt, then estimate with ``adapt=False``, the analogue of flowint's frozen
flow) and ``vegas-std`` (the usual recipe: discard the first iterations, keep adapting, report
the weighted average of the rest).

Usage::

    python benchmarks/coverage.py              # the full study: 200 seeds, 2 workers
    python benchmarks/coverage.py --quick      # 40 seeds, no files written
    python benchmarks/coverage.py --seeds 300 --workers 2 --out benchmarks/results
    python benchmarks/coverage.py --replot benchmarks/results/coverage_runs.csv

The committed study took 35 min of wall time with other jobs sharing the two cores (load
average 6-10); expect less on idle cores. ``--quick`` takes a fifth of the full study.

Writes ``coverage.md`` (tables, settings, machine, versions, seeds), ``coverage_pulls.png``
(pull and Q histograms) and ``coverage_runs.csv`` (one row per run) into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

import flowint
import integrands
from flowint import integrator as _integrator_module

__all__ = [
    "CASES",
    "FLOWINT_SETTINGS",
    "Budget",
    "Run",
    "main",
    "run_one",
    "run_study",
    "summarize",
]

#: The integrands of the study: label -> registry specification.
CASES: dict[str, str] = {
    "gaussian-4d": "gaussian:dim=4",
    "camel-4d": "camel:dim=4",
    "annulus-2d": "annulus:dim=2",
    "signed_camel-4d": "signed_camel:dim=4",
}

#: flowint settings used by every run (explicit, so that changes of the library's defaults do
#: not silently change the study; the effective settings are written to the report). Training
#: is deliberately cheaper than the library's defaults: the study tests the error bars of
#: whatever flow training produced, and a less polished flow is the harder test. Settings that
#: the installed flowint does not know are dropped (and the report shows what was used).
FLOWINT_SETTINGS: dict[str, Any] = {
    "flow": "rqs",
    "flow_options": {"hidden": 32, "bins": 16, "grid": False},
    "loss": "variance",
    "lr": 3e-3,
    "steps_per_batch": 4,
    "minibatch": None,
    "warmup": 0,
    "progress": False,
}


def _settings() -> dict[str, Any]:
    return {k: v for k, v in FLOWINT_SETTINGS.items() if k in flowint.DEFAULTS}


METHODS = ("flowint-qmc", "flowint-iid", "vegas-frozen", "vegas-std")


@dataclass(frozen=True)
class Budget:
    """Evaluations of one run: ``train`` for adaptation, ``final`` for the estimate.

    Both are spent in iterations of ``batch`` points, so the final estimate has
    ``final // batch`` iterations (χ² has one degree of freedom fewer).
    """

    train: int = 20_000
    final: int = 16_000
    batch: int = 2_000


@dataclass
class Run:
    """One run of one method on one integrand."""

    case: str
    method: str
    seed: int
    mean: float
    sdev: float
    exact: float
    chi2: float
    dof: int
    Q: float
    n_evals: int
    time: float
    rel_std: float = math.nan
    ess: float = math.nan
    max_weight_share: float = math.nan
    pareto_k: float = math.nan
    sdev_rel_error: float = math.nan
    n_warnings: int = 0
    warning_kinds: str = ""

    @property
    def pull(self) -> float:
        """``(mean − exact) / sdev``."""
        diff = self.mean - self.exact
        if self.sdev == 0:
            return 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return diff / self.sdev


# --------------------------------------------------------------------------- single runs
@contextlib.contextmanager
def _capture_diagnostics() -> Iterator[dict[str, Any]]:
    """Record the dict of :func:`flowint.stats.weight_diagnostics` computed by the integrator."""
    store: dict[str, Any] = {}
    original = getattr(_integrator_module, "weight_diagnostics", None)
    if original is None:  # the integrator no longer calls it by that name: diagnostics as NaN
        yield store
        return

    def spy(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = original(*args, **kwargs)
        store.update(out)
        return out

    _integrator_module.weight_diagnostics = spy
    try:
        yield store
    finally:
        _integrator_module.weight_diagnostics = original


_WARNING_KINDS = {"effective sample size": "ess", "one point carries": "share",
                  "Pareto tail": "khat", "error bar itself": "kurt", "non-finite loss": "nan"}


def _kinds(messages: Sequence[str]) -> str:
    out = []
    for msg in messages:
        kind = next((v for k, v in _WARNING_KINDS.items() if k in msg), "other")
        out.append(kind)
    return "+".join(sorted(set(out)))


def _flowint_estimate(integ: flowint.Integrator, f: Any, case: str, seed: int, n: int,
                      method: str, t_train: float, n_train: int) -> Run:
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught, _capture_diagnostics() as diag:
        warnings.simplefilter("always")
        r = integ.estimate(f, n)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return Run(case, method, seed, r.mean, r.sdev, f.exact, r.chi2, r.dof, r.Q,
               n_train + r.n_evals_final, t_train + time.perf_counter() - t0, r.rel_std,
               r.ess, r.max_weight_share, float(diag.get("pareto_k", math.nan)),
               float(diag.get("sdev_rel_error", math.nan)), len(messages), _kinds(messages))


def run_flowint(case: str, seed: int, budget: Budget) -> list[Run]:
    """flowint runs: train on ``budget.train`` evaluations, then estimate on ``budget.final``.

    With a ``qmc`` setting, the trained flow gives two independent final estimates, each of
    ``budget.final`` fresh points: ``flowint-qmc`` (scrambled Sobol randomizations, error from
    their spread) and ``flowint-iid`` (i.i.d. points, pooled standard error).
    """
    f = integrands.get(CASES[case])
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        integ = flowint.Integrator(f.dim, seed=seed, batch_size=budget.batch, **_settings())
        integ.train(f, budget.train)
    t_train = time.perf_counter() - t0
    nan_warned = sum("non-finite loss" in str(w.message) for w in caught)
    n_train = integ.n_evals
    runs = []
    runs.append(_flowint_estimate(integ, f, case, seed, budget.final, "flowint-qmc", t_train,
                                   n_train))
    integ = integ.with_settings(qmc=False)
    runs.append(_flowint_estimate(integ, f, case, seed, budget.final, "flowint-iid", t_train,
                                  n_train))
    for r in runs:
        r.n_warnings += nan_warned
    return runs


def run_vegas(case: str, seed: int, budget: Budget, frozen: bool) -> Run:
    """One vegas run on the same budget, seeded through ``ran_array_generator``.

    ``frozen=True``: ``train // batch`` adaptive iterations (discarded), then ``final // batch``
    iterations with ``adapt=False``. ``frozen=False``: the same number of iterations in all, the
    first half discarded and the weighted average of the adaptive rest reported.
    """
    import vegas

    f = integrands.get(CASES[case])
    calls = [0]

    @vegas.lbatchintegrand
    def fv(x: np.ndarray) -> np.ndarray:
        calls[0] += x.shape[0]
        return f.numpy(np.asarray(x, dtype=np.float64))

    rng = np.random.default_rng([seed, 1 if frozen else 2])
    t0 = time.perf_counter()
    integ = vegas.Integrator([[0.0, 1.0]] * f.dim, ran_array_generator=rng.random)
    n_train, n_final = budget.train // budget.batch, budget.final // budget.batch
    if frozen:
        integ(fv, nitn=n_train, neval=budget.batch)
        r = integ(fv, nitn=n_final, neval=budget.batch, adapt=False)
    else:
        total = n_train + n_final
        integ(fv, nitn=total // 2, neval=budget.batch)
        r = integ(fv, nitn=total - total // 2, neval=budget.batch)
    method = "vegas-frozen" if frozen else "vegas-std"
    return Run(case, method, seed, float(r.mean), float(r.sdev), f.exact, float(r.chi2),
               int(r.dof), float(r.Q), calls[0], time.perf_counter() - t0)


def run_one(task: tuple[str, int, Budget]) -> list[Run]:
    """All methods on one (case, seed)."""
    case, seed, budget = task
    return [*run_flowint(case, seed, budget), run_vegas(case, seed, budget, True),
            run_vegas(case, seed, budget, False)]


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_study(cases: Sequence[str], seeds: Sequence[int], budget: Budget, workers: int = 1,
              verbose: bool = True) -> list[Run]:
    """Run every method on every (case, seed), in ``workers`` processes of one thread each."""
    tasks = [(c, s, budget) for c in cases for s in seeds]
    runs: list[Run] = []
    t0 = time.perf_counter()
    if workers <= 1:
        _init_worker()
        results: Iterator[list[Run]] = map(run_one, tasks)
        pool = None
    else:
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker)
        results = pool.imap_unordered(run_one, tasks, chunksize=2)
    try:
        for i, rs in enumerate(results, 1):
            runs.extend(rs)
            if verbose and (i % 25 == 0 or i == len(tasks)):
                print(f"  {i}/{len(tasks)} tasks, {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    runs.sort(key=lambda r: (cases.index(r.case), METHODS.index(r.method), r.seed))
    return runs


# --------------------------------------------------------------------------- statistics
@dataclass
class Summary:
    """Coverage statistics of one (case, method)."""

    case: str
    method: str
    n: int
    within: tuple[float, float, float]
    within_ci: tuple[tuple[float, float], ...]
    pull_mean: float
    pull_sd: float
    chi2_dof: float
    q_below_05: float
    q_ks_p: float
    rel_error: float
    warned: float
    warned_out3: str
    expected: tuple[float, float, float] = (0.6827, 0.9545, 0.9973)
    extra: dict[str, float] = field(default_factory=dict)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson 95 % interval of a binomial proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def _expected(method: str, dof: int) -> tuple[float, float, float]:
    """Coverage of honest error bars: normal, or Student-t when the error comes from the spread
    of ``dof + 1`` randomizations (flowint-qmc)."""
    if method == "flowint-qmc" and dof > 0:
        return tuple(float(2 * stats.t.cdf(z, dof) - 1) for z in (1, 2, 3))
    return tuple(float(2 * stats.norm.cdf(z) - 1) for z in (1, 2, 3))


def summarize(runs: Sequence[Run]) -> list[Summary]:
    """Coverage fractions, pull moments, χ²/dof and Q statistics per (case, method)."""
    out = []
    keys = list(dict.fromkeys((r.case, r.method) for r in runs))
    for case, method in keys:
        rs = [r for r in runs if r.case == case and r.method == method]
        pulls = np.array([r.pull for r in rs])
        finite = np.isfinite(pulls)
        ab = np.abs(pulls)
        n = len(rs)
        ks = [int((ab <= z).sum()) for z in (1, 2, 3)]
        dofs = np.array([r.dof for r in rs])
        chi2 = np.array([r.chi2 for r in rs])
        qs = np.array([r.Q for r in rs])
        ok = dofs > 0
        warned = np.array([r.n_warnings > 0 for r in rs])
        out3 = ab > 3
        warned_out3 = f"{int((warned & out3).sum())}/{int(out3.sum())}"
        expected = _expected(method, int(np.median(dofs)))
        out.append(Summary(
            case=case, method=method, n=n, expected=expected, within=tuple(k / n for k in ks),
            within_ci=tuple(_wilson(k, n) for k in ks),
            pull_mean=float(np.mean(pulls[finite])), pull_sd=float(np.std(pulls[finite], ddof=1)),
            chi2_dof=float(chi2[ok].sum() / dofs[ok].sum()) if ok.any() else math.nan,
            q_below_05=float((qs[ok] < 0.05).mean()) if ok.any() else math.nan,
            q_ks_p=float(stats.kstest(qs[ok], "uniform").pvalue) if ok.sum() > 5 else math.nan,
            rel_error=float(np.median([r.sdev / abs(r.exact) for r in rs])),
            warned=float(warned.mean()), warned_out3=warned_out3,
            extra={"pareto_k_median": float(np.nanmedian([r.pareto_k for r in rs]))
                   if method.startswith("flowint") else math.nan},
        ))
    return out


# --------------------------------------------------------------------------- output
def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def coverage_table(summaries: Sequence[Summary]) -> str:
    """The markdown table of coverage fractions and χ²/Q statistics."""
    head = ("| integrand | method | runs | within 1σ (%) | within 2σ (%) | within 3σ (%) | "
            "mean pull | sd pull | χ²/dof | Q<0.05 (%) | KS p(Q) | median rel. err. | "
            "warned (%) | warned / |pull|>3 | honest bars would give (%) |")
    lines = [head, "|" + "---|" * 15]
    for s in summaries:
        cells = [f"{_pct(w)} [{_pct(lo)}, {_pct(hi)}]" for w, (lo, hi) in zip(s.within,
                                                                             s.within_ci,
                                                                             strict=True)]
        warned = _pct(s.warned) if s.method.startswith("flowint") else "–"
        w3 = s.warned_out3 if s.method.startswith("flowint") else "–"
        lines.append(f"| {s.case} | {s.method} | {s.n} | {' | '.join(cells)} | "
                     f"{s.pull_mean:+.3f} | {s.pull_sd:.3f} | {s.chi2_dof:.3f} | "
                     f"{_pct(s.q_below_05)} | {s.q_ks_p:.2g} | {s.rel_error:.2e} | "
                     f"{warned} | {w3} | {' / '.join(_pct(e) for e in s.expected)} |")
    return "\n".join(lines)


def pooled_table(summaries: Sequence[Summary]) -> str:
    """Coverage pooled over integrands, per method, against the targets."""
    lines = ["| method | runs | within 1σ (%) | within 2σ (%) | within 3σ (%) | mean χ²/dof | "
             "honest bars would give (%) |",
             "|---|---|---|---|---|---|---|",
             "| target | | 68.3 ± 4 | 95.4 ± 2 | 99.7 ± 1 | 1 | |"]
    for method in METHODS:
        ss = [s for s in summaries if s.method == method]
        if not ss:
            continue
        n = sum(s.n for s in ss)
        within = [sum(s.within[i] * s.n for s in ss) / n for i in range(3)]
        chi = float(np.mean([s.chi2_dof for s in ss]))
        expected = [sum(s.expected[i] * s.n for s in ss) / n for i in range(3)]
        lines.append(f"| {method} | {n} | " + " | ".join(_pct(w) for w in within)
                     + f" | {chi:.3f} | {' / '.join(_pct(e) for e in expected)} |")
    return "\n".join(lines)


def plot(runs: Sequence[Run], cases: Sequence[str], path: Path) -> None:
    """Pull histograms (top row) and Q histograms (bottom row), one column per integrand."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(cases), figsize=(4.2 * len(cases), 7.0), squeeze=False)
    bins = np.linspace(-5, 5, 41)
    grid = np.linspace(-5, 5, 400)
    colors = {"flowint-qmc": "C0", "flowint-iid": "C1", "vegas-frozen": "C3",
              "vegas-std": "C2"}
    for j, case in enumerate(cases):
        ax, axq = axes[0, j], axes[1, j]
        for method in METHODS:
            rs = [r for r in runs if r.case == case and r.method == method]
            if not rs:
                continue
            pulls = np.clip([r.pull for r in rs], -4.99, 4.99)
            inside = np.mean(np.abs([r.pull for r in rs]) <= 2)
            ax.hist(pulls, bins=bins, density=True, histtype="step", lw=1.6,
                    color=colors[method], label=f"{method} ({100 * inside:.0f}% in 2σ)")
            qs = [r.Q for r in rs if r.dof > 0]
            axq.hist(qs, bins=np.linspace(0, 1, 11), density=True, histtype="step", lw=1.6,
                     color=colors[method], label=method)
        ax.plot(grid, stats.norm.pdf(grid), "k--", lw=1, label="N(0, 1)")
        ax.set_title(f"{case}: pulls (clipped to ±5)")
        ax.set_xlabel("(estimate − exact) / σ")
        ax.legend(fontsize=7, loc="upper left")
        axq.axhline(1.0, color="k", ls="--", lw=1)
        axq.set_ylim(0, 3)
        axq.text(0.55, 1.85, "flowint-qmc: its χ² uses the i.i.d.\nvariance, so Q ≈ 1 (off scale)",
                 fontsize=7, ha="center")
        axq.set_title(f"{case}: Q of the final χ²")
        axq.set_xlabel("Q")
        axq.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environment() -> dict[str, str]:
    """Machine, versions and the exact flowint sources: call it when the runs start.

    ``flowint`` names the git commit, whether ``flowint/`` differed from it, and a SHA-256 of
    the ``flowint/*.py`` sources as loaded, so that a run made on an uncommitted tree can
    still be matched to its code.
    """
    import hashlib

    import vegas

    digest = hashlib.sha256()
    for path in sorted(Path(flowint.__file__).resolve().parent.rglob("*.py")):
        digest.update(path.read_bytes())
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "flowint"], capture_output=True,
                               text=True, check=True).stdout.strip()
        commit += " (flowint/ has uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "machine": f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} "
                   f"{platform.release()}, load average at the start "
                   + "/".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "vegas": vegas.__version__,
        "flowint": f"{flowint.__version__}, git {commit}, sources sha256 "
                   f"{digest.hexdigest()[:16]}",
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_report(runs: Sequence[Run], cases: Sequence[str], seeds: Sequence[int], budget: Budget,
                 out: Path, wall: float, workers: int, command: str,
                 env: dict[str, str] | None = None) -> None:
    """Write ``coverage.md``, ``coverage_pulls.png`` and ``coverage_runs.csv`` into ``out``.

    ``env`` is :func:`environment` as taken when the runs started (default: now).
    """
    out.mkdir(parents=True, exist_ok=True)
    summaries = summarize(runs)
    plot(runs, cases, out / "coverage_pulls.png")
    write_runs(runs, out / "coverage_runs.csv")
    env = environment() if env is None else env
    load_end = "/".join(f"{x:.1f}" for x in os.getloadavg())
    settings = flowint.Integrator(2, seed=0, batch_size=budget.batch, **_settings()).settings
    shown = {k: (str(v).removeprefix("torch.") if isinstance(v, torch.dtype) else v)
             for k, v in settings.items() if k not in ("seed", "executor")}
    fl = [r for r in runs if r.method.startswith("flowint")]
    n_it = (budget.train + budget.final) // budget.batch
    sd1, sd2, sd3 = (100 * math.sqrt(p * (1 - p) / len(seeds)) for p in (0.683, 0.954, 0.9973))
    kinds: dict[str, int] = {}
    for r in fl:
        for k in filter(None, r.warning_kinds.split("+")):
            kinds[k] = kinds.get(k, 0) + 1
    text = f"""# Coverage of the error bars: flowint and vegas

Generated by `{command}` in {wall / 60:.1f} min ({workers} worker processes, one thread each).
Each integrand was run with seeds {seeds[0]}–{seeds[-1]} ({len(seeds)} independent runs per
method); per-run numbers are in `coverage_runs.csv`, the histograms in `coverage_pulls.png`.

## Setup

- Integrands (`integrands.get`): {", ".join(f"`{CASES[c]}`" for c in cases)}.
- Budget per run: {budget.train} evaluations to adapt, then {budget.final} for the estimate, in
  iterations of {budget.batch} points (so {budget.final // budget.batch} final iterations and
  {budget.final // budget.batch - 1} degrees of freedom of χ²).
- **flowint**: `Integrator(dim, seed=s, batch_size={budget.batch}, ...)`,
  `train(f, {budget.train})`, then `estimate(f, {budget.final})` from the frozen flow.
  Effective settings: `{shown}`. The trained flow gives two independent final estimates:
  **flowint-qmc** (`qmc=True`: equal-size, independently scrambled Sobol sets, the error from
  the spread of their K means, so its pulls follow Student's t with K − 1 degrees of freedom)
  and **flowint-iid** (`qmc=False`: i.i.d. points, the pooled standard error).
- **vegas-frozen**: `vegas.Integrator` with `ran_array_generator` seeded from s;
  {budget.train // budget.batch} adaptive iterations of `neval={budget.batch}` (discarded), then
  {budget.final // budget.batch} iterations with `adapt=False`, whose weighted average is reported.
- **vegas-std**: the usual vegas recipe on the same total: the first
  {n_it // 2} adaptive iterations discarded, the weighted average of the next {n_it - n_it // 2}
  (still adapting) reported.
- Machine: {env["machine"]}, at the end {load_end}; started {env["started"]}.
  Python {env["python"]}, torch {env["torch"]}, numpy {env["numpy"]},
  vegas {env["vegas"]}, flowint {env["flowint"]}.

## Coverage pooled over the integrands

{pooled_table(summaries)}

## Per integrand

Coverage in % with the Wilson 95 % interval of the binomial proportion; a run is "within kσ"
when |estimate − exact| ≤ k·sdev. With {len(seeds)} runs the binomial standard deviation
alone is {sd1:.1f} / {sd2:.1f} / {sd3:.2f} points at 1σ / 2σ / 3σ.
χ²/dof is pooled (Σχ² / Σdof); "Q<0.05" should be 5 % and the Kolmogorov–Smirnov p-value of
the Q values against the uniform law should not be tiny. "warned" is the share of flowint runs
that raised a reliability warning; "warned / |pull|>3" counts the runs off by more than 3σ and
how many of them were warned.

{coverage_table(summaries)}

Warnings raised in flowint runs, by kind (a run may raise several): {kinds or "none"}.

![pull and Q histograms](coverage_pulls.png)
"""
    (out / "coverage.md").write_text(text)


def write_runs(runs: Sequence[Run], path: Path) -> None:
    """Write one row per run (floats to 8 significant digits) to a CSV file."""

    def cell(value: Any) -> Any:
        return f"{value:.8g}" if isinstance(value, float) else value

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*asdict(runs[0]).keys(), "pull"])
        writer.writeheader()
        for r in runs:
            writer.writerow({k: cell(v) for k, v in {**asdict(r), "pull": r.pull}.items()})


def read_runs(path: Path) -> list[Run]:
    """Read the runs written to ``coverage_runs.csv``."""
    kinds = {f.name: f.type for f in fields(Run)}
    runs = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            row.pop("pull", None)
            values: dict[str, Any] = {}
            for name, text in row.items():
                kind = kinds[name]
                values[name] = (int(text) if kind == "int" else
                                float(text) if kind == "float" else text)
            runs.append(Run(**values))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200, help="runs per integrand and method")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--quick", action="store_true",
                        help="40 seeds and no files (unless --out is given): a few minutes")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results; none with --quick)")
    parser.add_argument("--replot", type=Path, default=None, metavar="CSV",
                        help="only redraw coverage_pulls.png from a coverage_runs.csv")
    args = parser.parse_args(argv)
    if args.replot is not None:
        runs = read_runs(args.replot)
        cases = list(dict.fromkeys(r.case for r in runs))
        plot(runs, cases, args.replot.parent / "coverage_pulls.png")
        return 0
    n_seeds = 40 if args.quick and args.seeds == 200 else args.seeds
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    budget = Budget()
    out = args.out
    if out is None and not args.quick:
        out = Path(__file__).resolve().parent / "results"
    print(f"coverage: {len(args.cases)} integrands x {n_seeds} seeds x {len(METHODS)} methods, "
          f"{args.workers} workers", flush=True)
    env = environment()
    t0 = time.perf_counter()
    runs = run_study(args.cases, seeds, budget, args.workers)
    wall = time.perf_counter() - t0
    summaries = summarize(runs)
    print(pooled_table(summaries))
    print(coverage_table(summaries))
    if out is not None:
        command = "python benchmarks/coverage.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv)
        write_report(runs, args.cases, seeds, budget, out, wall, args.workers, command.strip(),
                     env)
        print(f"wrote {out / 'coverage.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
