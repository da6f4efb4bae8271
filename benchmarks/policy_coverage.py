"""Coverage of the error bars of ``flowint.integrate`` with its default settings.

The integrator's Policy measures plain randomized QMC and a per-axis grid, may train a flow,
and ends with independent scrambled-Sobol randomizations through the best sampler; the error
bar comes from their spread. This script checks that the error bars mean what they say: for
each integrand (registry cases with exact values) and many seeds it records the pull
``(mean − exact) / sdev`` of every run and counts the runs within 1σ, 2σ and 3σ, in three
groups that exercise different paths of the core:

- ``budget``: ``integrate(f, d, budget=B, seed=s)``: a fixed budget, whatever the policy
  picks (plain RQMC, the grid or a trained flow);
- ``rtol``: ``integrate(f, d, budget=cap, rtol=r, seed=s)``: an error target, where the run
  stops once the *estimated* error is below the target (optional stopping);
- ``reuse``: ``integrate(f, d, budget=B, seed=s, explore=False)``: always trains, and late
  training iterations enter the estimate (``n_evals_reused > 0``; the share of runs where
  they did is reported).

Reference: the error bar of a final estimate of ``K`` randomizations has ``K − 1`` degrees of
freedom, so the pull of an honest run follows Student's t with ``K − 1`` degrees of freedom.
``K`` is recorded per run (the final iterations of ``Result.history``); it is usually at
least ``flowint.run.estimator.MIN_RANDOMIZATIONS`` (16 at the time of writing: t15, 66.7 /
93.6 / 99.1 % within 1σ / 2σ / 3σ; with 32 it was t31, 67.5 / 94.6 / 99.47 %; normal: 68.3 /
95.4 / 99.73 %), and at least ``FEWEST_RANDOMIZATIONS`` (8: t7, 64.9 / 91.4 / 98.0 %; it was 12,
t11, 66.1 / 92.9 / 98.8 %, before 2026-11-30) where a fixed budget's final sets are doubled.
A row's reference is the mean of its runs' t probabilities, computed with scipy, and the row
passes when each observed share lies within two binomial standard deviations of it
(``sqrt(Σ p_i (1 − p_i)) / n``, the Poisson-binomial spread). In the ``reuse`` group the
estimate also combines training iterations, each with its own (i.i.d.) variance, so the t
reference of the final randomizations is approximate there.

Usage::

    python benchmarks/policy_coverage.py               # 7 integrands x 60 seeds x 3 groups
    python benchmarks/policy_coverage.py --quick       # 2 integrands x 2 seeds, small budgets
    python benchmarks/policy_coverage.py --groups rtol --seeds 100 --first-seed 1

Writes ``results/policy_coverage.md`` (tables, settings, machine, versions, commit),
``results/policy_coverage_runs.csv`` (one row per run) and
``results/policy_coverage_pulls.png`` (pull histograms against the normal and t densities);
``--out FILE.md`` puts the CSV and the figure beside it (``FILE_runs.csv``,
``FILE_pulls.png``). The CSV is appended after every run and the tables and figure are rewritten
after every (group, integrand); a rerun with the same ``--out`` skips the runs already in the
CSV (same group, integrand, seed, budget and rtol), so an interrupted study resumes where it
stopped. ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import flowint  # noqa: E402
import integrands  # noqa: E402

__all__ = ["CASES", "COLUMNS", "CSV_COLUMNS", "GROUPS", "REFERENCE", "SAMPLERS", "SAMPLER_COLUMN",
           "coverage_misses", "coverage_t", "main", "reference", "run_one", "summarize"]

#: (registry specification, relative error target of the ``rtol`` group). The targets sit
#: near what the policy reaches in ~3·10⁴–10⁵ calls, so the runs stop early (optional stopping)
#: well within the cap.
CASES: list[tuple[str, float]] = [
    ("gaussian:dim=2", 1e-4),
    ("camel:dim=2", 1e-4),
    ("camel:dim=4", 2e-3),
    ("polynomial:dim=4", 1e-5),
    ("gaussian_genz:dim=4", 1e-4),
    ("annulus", 2e-3),
    ("toploop", 1e-4),
]
#: ``--quick``: two integrands with looser targets (and smaller budgets, see :func:`main`).
QUICK_CASES: list[tuple[str, float]] = [("gaussian:dim=2", 3e-4), ("annulus", 5e-3)]

GROUPS = ("budget", "rtol", "reuse")
LEVELS = (1, 2, 3)
try:  # the usual and the fewest randomizations of a final estimate (the library's constants)
    from flowint.run.estimator import MIN_RANDOMIZATIONS
except ImportError:  # pragma: no cover - older layouts
    MIN_RANDOMIZATIONS = 32
try:
    from flowint.run.estimator import FEWEST_RANDOMIZATIONS
except ImportError:  # pragma: no cover - older layouts
    FEWEST_RANDOMIZATIONS = MIN_RANDOMIZATIONS
DOF = MIN_RANDOMIZATIONS - 1


def coverage_t(k: float, dof: float) -> float:
    """``P(|T| < k)`` for Student's t with ``dof`` degrees of freedom."""
    return float(2 * stats.t.cdf(k, dof) - 1)


#: Honest coverage within 1σ / 2σ / 3σ of a run with the fewest randomizations.
REFERENCE: dict[int, float] = {k: coverage_t(k, DOF) for k in LEVELS}
SAMPLERS = ("identity", "interlaced", "grid", "strata", "flow")
SAMPLER_COLUMN = " / ".join(SAMPLERS)

CSV_COLUMNS = ["group", "case", "seed", "mean", "sdev", "exact", "pull", "method", "n_evals",
               "n_evals_reused", "seconds", "budget", "rtol", "warnings", "randomizations"]
COLUMNS = ["case", "runs", "within 1σ (%)", "within 2σ (%)", "within 3σ (%)",
           "reference ± 2 sd 1σ / 2σ / 3σ (%)", "pass", "max abs pull", "mean pull",
           SAMPLER_COLUMN, "calls mean", "reused > 0 (%)", "s mean"]


# ---------------------------------------------------------------------------- runs


def _settings_of(group: str, budget: int, rtol_cap: int, reuse_budget: int,
                 rtol: float) -> tuple[int, float | None, dict[str, Any]]:
    """``(budget, rtol, extra settings)`` of one group's runs."""
    if group == "budget":
        return budget, None, {}
    if group == "rtol":
        return rtol_cap, rtol, {}
    if group == "reuse":
        return reuse_budget, None, {"explore": False}
    raise ValueError(f"unknown group {group!r}; choose from {GROUPS}")


def run_one(group: str, spec: str, seed: int, budget: int, rtol: float | None,
            extra: dict[str, Any]) -> dict[str, Any]:
    """One ``flowint.integrate`` run with the default settings: a CSV row. A run that raises
    is a row too (method ``error: ...``, NaN numbers): it counts as outside every interval."""
    f = integrands.get(spec)
    exact = float(f.exact)
    row: dict[str, Any] = {"group": group, "case": spec, "seed": seed, "exact": exact,
                           "budget": budget, "rtol": "" if rtol is None else rtol}
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # counted in the CSV, not printed
        try:
            r = flowint.integrate(f, f.dim, budget=budget, rtol=rtol, seed=seed,
                                  progress=False, **extra)
        except Exception as exc:  # a failure is a result too
            row.update(mean=math.nan, sdev=math.nan, pull=math.nan,
                       method=f"error: {type(exc).__name__}: {exc}"[:120].replace("\n", " "),
                       n_evals=0, n_evals_reused=0, warnings=len(caught), randomizations=0,
                       seconds=time.perf_counter() - t0)
            return row
    row.update(mean=float(r.mean), sdev=float(r.sdev), pull=float(r.pull(exact)),
               method=str(r.method), n_evals=int(r.n_evals),
               n_evals_reused=int(getattr(r, "n_evals_reused", 0)),
               warnings=len(set(r.warnings) | {str(w.message) for w in caught}),
               randomizations=sum(h.phase == "final" for h in r.history),
               seconds=time.perf_counter() - t0)
    return row


def _key(row: dict[str, Any]) -> tuple:
    rtol = row["rtol"]
    return (row["group"], row["case"], int(row["seed"]), int(float(row["budget"])),
            "" if rtol in ("", None) else float(rtol))


def load_runs(path: Path) -> list[dict[str, Any]]:
    """The rows of a runs CSV written by this script (empty if there is none)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != CSV_COLUMNS:
            raise SystemExit(f"{path} has columns {reader.fieldnames}, expected {CSV_COLUMNS}: "
                             "use --fresh or another --out")
        rows = list(reader)
    for row in rows:
        for col in ("mean", "sdev", "exact", "pull", "seconds"):
            row[col] = float(row[col])
        for col in ("seed", "n_evals", "n_evals_reused", "budget", "warnings",
                    "randomizations"):
            row[col] = int(float(row[col]))
        row["rtol"] = "" if row["rtol"] == "" else float(row["rtol"])
    return rows


def _csv_cell(v: Any) -> Any:
    return repr(v) if isinstance(v, float) else v


# ---------------------------------------------------------------------------- summaries


def reference(rows: Sequence[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    """Per level ``k``: the expected share of honest runs within ``kσ`` (the mean over the runs
    of ``P(|t_{K−1}| < k)``, ``K`` a run's randomizations, at least :data:`FEWEST_RANDOMIZATIONS`)
    and the binomial standard deviation of the observed share."""
    dofs = [max(int(r.get("randomizations") or 0), FEWEST_RANDOMIZATIONS) - 1 for r in rows]
    out = {}
    for k in LEVELS:
        ps = [coverage_t(k, d) for d in dofs]
        out[k] = (float(np.mean(ps)), math.sqrt(sum(p * (1 - p) for p in ps)) / len(ps))
    return out


def coverage_misses(rows: Sequence[dict[str, Any]], n_sd: float = 3.0) -> list[str]:
    """The levels at which the share of runs within ``kσ`` lies outside :func:`reference` ±
    ``n_sd`` binomial standard deviations, two-sided: ``[]`` when the error bars pass.

    Each entry reads like ``"1σ low: 57.7 % within, reference 67.1 ± 7.7 % (3 sd)"``: ``low``
    (too few runs inside: error bars too small) or ``high`` (too many: too large). A run
    whose pull is not finite (a run that raised) counts as outside every interval.

    Arguments:
        rows: runs with a ``pull`` and a ``randomizations`` entry (:func:`run_one`'s rows).
        n_sd: width of the band in binomial standard deviations.
    """
    if not rows:
        raise ValueError("no runs to check")
    pulls = np.array([r["pull"] for r in rows], dtype=float)
    inside = np.isfinite(pulls)
    ref = reference(rows)
    misses = []
    for k in LEVELS:
        share = float(np.sum(np.abs(pulls[inside]) < k)) / len(rows)
        p, sd = ref[k]
        if abs(share - p) > n_sd * sd:
            misses.append(f"{k}σ {'low' if share < p else 'high'}: {100 * share:.1f} % within, "
                          f"reference {100 * p:.1f} ± {100 * n_sd * sd:.1f} % ({n_sd:g} sd)")
    return misses


def summarize(rows: Sequence[dict[str, Any]], label: str) -> dict[str, Any]:
    """Coverage numbers of a set of runs (a table row keyed by :data:`COLUMNS`)."""
    n = len(rows)
    pulls = np.array([r["pull"] for r in rows], dtype=float)
    finite = pulls[np.isfinite(pulls)]
    within = {k: float(np.sum(np.abs(finite) < k)) / n for k in LEVELS}
    ref = reference(rows)
    misses = []
    for k in LEVELS:
        p, sd = ref[k]
        if within[k] < p - 2 * sd:
            misses.append(f"{k}σ low")
        elif within[k] > p + 2 * sd:
            misses.append(f"{k}σ high")
    methods = Counter(r["method"] for r in rows)
    n_err = sum(v for m, v in methods.items() if m.startswith("error"))
    samplers = " / ".join(str(methods.get(s, 0)) for s in SAMPLERS)
    if n_err:
        samplers += f" + {n_err} errors"
    return {
        "case": label,
        "runs": n,
        "within 1σ (%)": f"{100 * within[1]:.1f}",
        "within 2σ (%)": f"{100 * within[2]:.1f}",
        "within 3σ (%)": f"{100 * within[3]:.1f}",
        "reference ± 2 sd 1σ / 2σ / 3σ (%)": " / ".join(
            f"{100 * ref[k][0]:.1f} ± {200 * ref[k][1]:.1f}" for k in LEVELS),
        "pass": "ok" if not misses else "FAIL: " + ", ".join(misses),
        "max abs pull": f"{np.max(np.abs(finite)):.2f}" if finite.size else "—",
        "mean pull": f"{np.mean(finite):+.3f}" if finite.size else "—",
        SAMPLER_COLUMN: samplers,
        "calls mean": f"{np.mean([r['n_evals'] for r in rows]):,.0f}",
        "reused > 0 (%)": f"{100 * np.mean([r['n_evals_reused'] > 0 for r in rows]):.1f}",
        "s mean": f"{np.mean([r['seconds'] for r in rows]):.2f}",
    }


def _table(summaries: Sequence[dict[str, Any]], first: str = "case") -> str:
    cols = [first] + COLUMNS[1:]
    return common.markdown_table(cols, [list(s.values()) for s in summaries])


def report(runs: Sequence[dict[str, Any]], groups: Sequence[str], cases: Sequence[str],
           settings: dict[str, Any], command: str) -> str:
    """The markdown report of ``runs`` (only the groups and cases asked for)."""
    ref = " / ".join(f"{100 * REFERENCE[k]:.2f}" for k in LEVELS)
    text = common.header("Coverage of the error bars of the default policy", command, settings)
    text += (
        "\nReference: a final estimate of K randomizations has an error bar with K − 1 degrees "
        "of freedom, so an honest run's pull follows Student's t with K − 1 degrees of freedom; "
        f"K (the `randomizations` column of the CSV) is usually at least {MIN_RANDOMIZATIONS} "
        f"(`flowint.run.estimator.MIN_RANDOMIZATIONS`; at least {FEWEST_RANDOMIZATIONS} where "
        f"a fixed budget's final sets are doubled): Student's t with {DOF} degrees of "
        f"freedom gives {ref} % within 1σ / 2σ / 3σ (t31, for K = 32: 67.49 / 94.57 / 99.47 %; "
        "normal: 68.27 / 95.45 / 99.73 %). `reference ± 2 sd`: per row, the mean over its runs "
        "of P(|t_(K−1)| < k), ± two binomial standard deviations √(Σ p(1 − p))/runs; `pass` "
        "is `ok` when all three observed shares lie inside their band, else `FAIL` with the "
        "levels outside (`low`: too few runs inside, error bars too small; `high`: too many, "
        f"error bars too large). With {len(cases) + 1} rows per group and three levels each, "
        "a few FAILs at the 2-sd level are expected by chance. In the `reuse` group the "
        "estimate combines the final randomizations with training iterations of their own "
        "(i.i.d.) variance, so the t reference is approximate there. `max abs pull` and "
        f"`mean pull` are over runs with a finite pull; `{SAMPLER_COLUMN}` "
        "counts the sampler of the final estimate; `reused > 0`: runs where training calls "
        "entered the estimate; `s mean`: wall seconds per run.\n")
    overall = []
    for group in groups:
        sel = [r for r in runs if r["group"] == group]
        if not sel:
            continue
        rows = [summarize([r for r in sel if r["case"] == c], c) for c in cases
                if any(r["case"] == c for r in sel)]
        rows.append(summarize(sel, "all"))
        overall.append(summarize(sel, group))
        text += f"\n## Group `{group}`: {settings.get(f'{group} group', '')}\n\n" + _table(rows)
    if overall:
        if len(overall) > 1:
            overall.append(summarize([r for r in runs if r["group"] in groups], "all"))
        text += "\n## Overall\n\n" + _table(overall, first="group")
    return text


def plot(runs: Sequence[dict[str, Any]], groups: Sequence[str], path: Path) -> None:
    """Pull histograms, one panel per group, against the normal and t densities (the fewest
    randomizations' t, and t31)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [g for g in groups if any(r["group"] == g for r in runs)]
    if not present:
        return
    fig, axes = plt.subplots(1, len(present), figsize=(4.6 * len(present), 3.8), squeeze=False)
    bins = np.linspace(-5, 5, 41)
    grid = np.linspace(-5, 5, 400)
    for ax, group in zip(axes[0], present, strict=True):
        pulls = np.array([r["pull"] for r in runs if r["group"] == group], dtype=float)
        finite = pulls[np.isfinite(pulls)]
        outside = int(np.sum(np.abs(finite) > 5)) + int(pulls.size - finite.size)
        within2 = 100 * np.mean(np.abs(pulls) < 2) if pulls.size else math.nan
        ax.hist(np.clip(finite, -4.99, 4.99), bins=bins, density=True, histtype="stepfilled",
                alpha=0.45, color="C0",
                label=f"{pulls.size} runs ({within2:.1f}% in 2σ)")
        ax.plot(grid, stats.norm.pdf(grid), "k--", lw=1.2, label="N(0, 1)")
        ax.plot(grid, stats.t.pdf(grid, DOF), "C3-", lw=1.0,
                label=f"t{DOF} ({MIN_RANDOMIZATIONS} randomizations)")
        if DOF != 31:
            ax.plot(grid, stats.t.pdf(grid, 31), "C2:", lw=1.0, label="t31")
        title = f"{group}: pulls"
        if outside:
            title += f" ({outside} beyond ±5 or NaN, clipped)"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("(mean − exact) / sdev")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- main


def _parse_cases(items: Sequence[str] | None, quick: bool) -> list[tuple[str, float]]:
    """``--cases`` entries, ``spec`` (target from :data:`CASES`) or ``spec@rtol``."""
    known = dict(QUICK_CASES) if quick else dict(CASES)
    known = {**dict(CASES), **known}
    if not items:
        return list(QUICK_CASES) if quick else list(CASES)
    out = []
    for item in items:
        spec, _, rt = item.partition("@")
        if rt:
            out.append((spec, float(rt)))
        elif spec in known:
            out.append((spec, known[spec]))
        else:
            raise SystemExit(f"no rtol known for {spec!r}: write it as {spec}@1e-3")
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the study (skipping runs already in the CSV); returns every run reported."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{len(QUICK_CASES)} integrands x 2 seeds, looser targets, budgets "
                        "2e4 / cap 5e4 / reuse 1e4")
    p.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    p.add_argument("--cases", nargs="+", default=None,
                   help="registry specs (rtol from CASES) or spec@rtol")
    p.add_argument("--seeds", type=int, default=None,
                   help="runs per integrand and group (default 60; --quick 2)")
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--budget", type=float, default=None,
                   help="budget of the budget group (default 5e4; --quick 2e4)")
    p.add_argument("--rtol-cap", type=float, default=None,
                   help="budget cap of the rtol group (default 2e5; --quick 5e4)")
    p.add_argument("--reuse-budget", type=float, default=None,
                   help="budget of the reuse group (default 2e4; --quick 1e4)")
    p.add_argument("--out", default=None, help="markdown file (CSV and PNG go beside it)")
    p.add_argument("--fresh", action="store_true", help="ignore runs already in the CSV")
    args = p.parse_args(argv)

    cases = _parse_cases(args.cases, args.quick)
    n_seeds = args.seeds or (2 if args.quick else 60)
    seeds = range(args.first_seed, args.first_seed + n_seeds)
    budget = int(args.budget or (2e4 if args.quick else 5e4))
    rtol_cap = int(args.rtol_cap or (5e4 if args.quick else 2e5))
    reuse_budget = int(args.reuse_budget or (1e4 if args.quick else 2e4))
    default = "policy_coverage_quick.md" if args.quick else "policy_coverage.md"
    out = Path(args.out) if args.out else common.RESULTS_DIR / default
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out.with_name(out.stem + "_runs.csv")
    png_path = out.with_name(out.stem + "_pulls.png")
    command = "python benchmarks/policy_coverage.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {
        "integrands (rtol target)": ", ".join(f"{s} ({r:g})" for s, r in cases),
        "seeds": f"{seeds.start}..{seeds.stop - 1} ({n_seeds} per integrand and group)",
        "budget group": f"`integrate(f, d, budget={budget:,}, seed=s)`",
        "rtol group": f"`integrate(f, d, budget={rtol_cap:,}, rtol=r, seed=s)`",
        "reuse group": f"`integrate(f, d, budget={reuse_budget:,}, seed=s, explore=False)`",
        "flowint settings": "defaults otherwise (progress=False)",
        "runs CSV": csv_path.name, "figure": png_path.name,
    }

    if args.fresh and csv_path.exists():
        csv_path.unlink()
    runs = load_runs(csv_path)
    done = {_key(r) for r in runs}
    new_file = not csv_path.exists()
    fh = csv_path.open("a", newline="")
    writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
    if new_file:
        writer.writeheader()
        fh.flush()

    wanted: set[tuple] = set()
    specs = [s for s, _ in cases]

    def flush() -> list[dict[str, Any]]:
        mine = [r for r in runs if _key(r) in wanted]
        out.write_text(report(mine, args.groups, specs, settings, command.strip()))
        plot(mine, args.groups, png_path)
        return mine

    try:
        for group in args.groups:
            for spec, rtol in cases:
                b, rt, extra = _settings_of(group, budget, rtol_cap, reuse_budget, rtol)
                t0, n_new = time.perf_counter(), 0
                for seed in seeds:
                    row0 = {"group": group, "case": spec, "seed": seed, "budget": b,
                            "rtol": "" if rt is None else rt}
                    wanted.add(_key(row0))
                    if _key(row0) in done:
                        continue
                    row = run_one(group, spec, seed, b, rt, extra)
                    writer.writerow({k: _csv_cell(row[k]) for k in CSV_COLUMNS})
                    fh.flush()
                    runs.append(row)
                    done.add(_key(row))
                    n_new += 1
                mine = flush() if n_new else [r for r in runs if _key(r) in wanted]
                s = summarize([r for r in mine if r["group"] == group and r["case"] == spec],
                              spec)
                print(f"{group:6s} {spec:22s} {s['runs']} runs ({n_new} new, "
                      f"{time.perf_counter() - t0:.0f} s): {s['within 1σ (%)']} / "
                      f"{s['within 2σ (%)']} / {s['within 3σ (%)']} % in 1/2/3σ, "
                      f"{s['pass']}, samplers {s[SAMPLER_COLUMN]}",
                      flush=True)
    finally:
        fh.close()
    mine = flush()
    print(f"wrote {out}, {csv_path.name}, {png_path.name}")
    return mine


if __name__ == "__main__":
    main()
