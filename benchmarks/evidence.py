"""Bayesian evidence: flowint against nautilus and dynesty on problems with known log Z.

The problems are those of :mod:`integrands.evidence` (Gaussian shells in 2-D and 10-D, the egg
box, a narrow correlated Gaussian in 16-D, a two-mode Gaussian mixture in 8-D), each a
log-likelihood with a uniform prior given through a prior transform, with ``log Z`` known to
1e-12 or better. For each problem and seed, in one run on the same machine:

- **flowint**: ``flowint.integrate(log_l, dim, log=True, prior=prior_transform, budget=B,
  seed=seed, progress=False)``; ``Result.log_mean`` and ``Result.log_sdev``. ``B`` is set
  per problem below the fewest calls a finished peer run took on it (:data:`FLOWINT_BUDGETS`:
  15,000 for the 2-D problems, 60,000 to 200,000 for the others), or ``--budget`` on all.
  With ``log=True`` flowint's default is ``channels="auto"`` (``docs/channels.md``): a search
  for the likelihood's peaks first, then one flow per peak and one for the rest if a peak is
  much higher than the volume-weighted mean height, else one flow.
- **flowint-single**: the same call with ``channels=None``: one flow, no search (what the
  search costs, and what it saves). Same budgets. (``flowint-modes``, ``channels="modes"``,
  runs only when asked for with ``--methods``.)
- **nautilus**: ``nautilus.Sampler(prior, log_l, n_dim, vectorized=True, seed=seed).run()``
  with its defaults (``vectorized=True`` only hands the likelihood ``n_batch`` points at a
  time instead of one by one; the algorithm is unchanged); ``sampler.log_z``, and as its
  error ``1 / sqrt(sampler.n_eff)``, the statistical uncertainty of ``log Z`` that the
  nautilus documentation gives (FAQ, "What is the uncertainty in the evidence?").
- **dynesty**: ``dynesty.NestedSampler(log_l, prior, ndim, rstate=default_rng(seed))
  .run_nested(print_progress=False)`` with its defaults (static nested sampling, 500 live
  points, multi-ellipsoid bounds, ``sample="auto"``); ``results.logz[-1]`` and
  ``results.logzerr[-1]``. dynesty calls both functions one point at a time.

Every likelihood call is counted by a wrapper (not taken from the sampler's bookkeeping), and
wall seconds cover the whole run. Columns: ``Δ log Z`` = estimate − truth, the method's own
error, the pull ``|Δ| / error``, calls, seconds. A run is **confidently wrong** when
``|Δ log Z| > 3 ×`` its own error (the truths' errors are ≤ 1e-12, negligible).

Usage::

    python benchmarks/evidence.py                       # 5 problems × 5 seeds × 4 methods
    python benchmarks/evidence.py --quick               # the 2-D problems, 2 seeds
    python benchmarks/evidence.py --problems eggbox shells_10d --seeds 1 2 3
    python benchmarks/evidence.py --methods nautilus dynesty --budget 1e5
    python benchmarks/evidence.py --problems gaussian_16d --timeout 3600
    python benchmarks/evidence.py --tables-only         # rewrite the file from its rows

Writes ``results/evidence.md`` (another file with ``--out``), rewritten after every run; rows
are also stored in the file as JSON, and a rerun skips the (problem, method, seed[, budget])
rows already there, except failed ones (``--fresh`` starts over); rows that another run adds
to the same file meanwhile are kept (one file can take two runs, e.g. flowint and the peers
side by side). ``--timeout`` caps each run's
wall seconds (checked at each likelihood call; default: no limit, the peers' own stopping
rules); a run past it is recorded as a timeout and rerun only under a longer limit.
``--quick`` rows are rows of the full run, so a full run after ``--quick`` reuses them.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
import common  # noqa: E402

from integrands.evidence import EVIDENCE_PROBLEMS, EvidenceProblem  # noqa: E402

__all__ = ["METHODS", "PROBLEMS", "QUICK_PROBLEMS", "RUNNERS", "WRONG", "main", "run_dynesty",
           "run_flowint", "run_nautilus", "summary_table", "tables"]

PROBLEMS = ["shells_2d", "eggbox", "shells_10d", "mixture_8d", "gaussian_16d"]
QUICK_PROBLEMS = ["shells_2d", "eggbox"]
METHODS = ["flowint", "flowint-single", "nautilus", "dynesty"]
SEEDS = [1, 2, 3, 4, 5]
QUICK_SEEDS = [1, 2]
#: flowint's likelihood calls per problem: below the fewest calls a finished peer run took on
#: it (dynesty: ~19k shells 2-D, ~50k egg box, ~200k shells 10-D, ~1.2M Gaussian 16-D; on the
#: mixture dynesty stopped at 600 s after ~240k and nautilus used more than 40k everywhere).
#: The 16-D Gaussian (68 nats of information) needs ~70 tempered training iterations: at
#: 100k calls seed 2 was still collapsed (log Z 407 low); 200k was right on seed 1.
FLOWINT_BUDGETS = {"shells_2d": 15_000, "eggbox": 15_000, "shells_10d": 75_000,
                   "mixture_8d": 60_000, "gaussian_16d": 200_000}
WRONG = 3.0  # |Δ log Z| > WRONG × own error: confidently wrong

F = common.as_float


# ---------------------------------------------------------------------------- runners


def _row(problem: EvidenceProblem, method: str, seed: int, budget: int | None,
         timeout: float | None) -> dict[str, Any]:
    return {"problem": problem.name, "method": method, "seed": int(seed), "budget": budget,
            "status": "ok", "truth": problem.log_z, "log_z": math.nan, "error": math.nan,
            "calls": 0, "seconds": math.nan, "timeout": timeout, "note": ""}


class _Likelihood:
    """A log-likelihood that counts the points it is called on and enforces a time limit.

    One point (shape ``(dim,)``) counts 1, a batch ``(n, dim)`` counts ``n``. Past ``timeout``
    seconds from construction, every call raises ``TimeoutError`` (and sets ``timed_out``, so
    the limit is recognised even when the method wraps the exception in its own).
    """

    def __init__(self, fn: Callable[[Any], Any], timeout: float | None) -> None:
        self.fn, self.timeout = fn, timeout
        self.calls = 0
        self.timed_out = False
        self.t0 = time.perf_counter()

    def __call__(self, theta: Any) -> Any:
        if self.timeout is not None and time.perf_counter() - self.t0 > self.timeout:
            self.timed_out = True
            raise TimeoutError(f"time limit of {self.timeout:g} s reached")
        self.calls += 1 if len(theta.shape) == 1 else int(theta.shape[0])
        return self.fn(theta)

    def finish(self, row: dict[str, Any], exc: BaseException | None = None) -> dict[str, Any]:
        """Fill ``calls`` and ``seconds`` (and ``status`` after an exception ``exc``)."""
        row["calls"], row["seconds"] = self.calls, time.perf_counter() - self.t0
        row["load"] = os.getloadavg()[0]  # the machine's 1-min load average as the run ends
        if self.timed_out:
            row["status"] = f"timeout ({self.timeout:g} s)"
        elif exc is not None:
            row["status"] = f"error: {type(exc).__name__}: {exc}"[:200]
        return row


def flowint_budget(problem: EvidenceProblem, budget: int | None = None) -> int:
    """flowint's likelihood calls on ``problem``: ``budget`` if given, else
    :data:`FLOWINT_BUDGETS` (10,000 per parameter for a problem not listed there)."""
    if budget:
        return int(budget)
    return FLOWINT_BUDGETS.get(problem.name, 10_000 * problem.dim)


def run_flowint(problem: EvidenceProblem, seed: int, *, budget: int | None = None,
                timeout: float | None = None, method: str = "flowint",
                **settings: Any) -> dict[str, Any]:
    """flowint in log space with the prior transform, ``budget`` likelihood calls at most
    (``settings``: more :func:`flowint.integrate` settings, e.g. ``channels="modes"``)."""
    budget = flowint_budget(problem, budget)
    row = _row(problem, method, seed, budget, timeout)
    log_l = _Likelihood(problem.log_likelihood, timeout)  # torch in, torch out
    try:
        import flowint

        res = flowint.integrate(log_l, problem.dim, log=True, prior=problem.prior_transform,
                                budget=int(budget), seed=seed, progress=False, **settings)
        row["log_z"], row["error"] = float(res.log_mean), float(res.log_sdev)
    except Exception as exc:  # a failure is a result too: record it, go on
        return log_l.finish(row, exc)
    log_l.finish(row)
    reported = int(getattr(res, "n_evals", -1))
    row["note"] = f"method {getattr(res, 'method', '?')}" + (
        f", {len(res.channels)} channels" if res.channels else "") + (
        f"; reports {reported:,} calls" if reported != row["calls"] else "") + (
        f"; commit {common._git_commit()}")
    return row


def run_flowint_single(problem: EvidenceProblem, seed: int, **kwargs: Any) -> dict[str, Any]:
    """flowint with ``channels=None``: one flow, no search for the likelihood's peaks."""
    return run_flowint(problem, seed, method="flowint-single", channels=None, **kwargs)


def run_flowint_modes(problem: EvidenceProblem, seed: int, **kwargs: Any) -> dict[str, Any]:
    """flowint with ``channels="modes"``: channels for every peak found, whatever their
    shapes (not in the default methods)."""
    return run_flowint(problem, seed, method="flowint-modes", channels="modes", **kwargs)


def run_nautilus(problem: EvidenceProblem, seed: int, *, timeout: float | None = None,
                 **_: Any) -> dict[str, Any]:
    """nautilus with its defaults; error ``1/sqrt(n_eff)`` (the nautilus FAQ)."""
    row = _row(problem, "nautilus", seed, None, timeout)
    log_l = _Likelihood(problem.log_likelihood_numpy, timeout)  # vectorized: (n, dim) -> (n,)
    try:
        from nautilus import Sampler

        sampler = Sampler(problem.prior_transform_numpy, log_l, problem.dim, vectorized=True,
                          seed=seed)
        finished = sampler.run(verbose=False)
        n_eff = float(sampler.n_eff)
        row["log_z"], row["error"] = float(sampler.log_z), 1.0 / math.sqrt(n_eff)
    except Exception as exc:
        return log_l.finish(row, exc)
    log_l.finish(row)
    row["note"] = f"n_eff {n_eff:,.0f}" + ("" if finished else "; stopped early")
    return row


def run_dynesty(problem: EvidenceProblem, seed: int, *, timeout: float | None = None,
                **_: Any) -> dict[str, Any]:
    """dynesty's static nested sampler with its defaults; ``logz[-1]`` and ``logzerr[-1]``."""
    row = _row(problem, "dynesty", seed, None, timeout)
    log_l = _Likelihood(problem.log_likelihood_numpy, timeout)  # one point at a time
    try:
        import dynesty

        sampler = dynesty.NestedSampler(log_l, problem.prior_transform_numpy, problem.dim,
                                        rstate=np.random.default_rng(seed))
        sampler.run_nested(print_progress=False)
        res = sampler.results
        row["log_z"], row["error"] = float(res.logz[-1]), float(res.logzerr[-1])
    except Exception as exc:
        return log_l.finish(row, exc)
    log_l.finish(row)
    row["note"] = f"{int(res.niter):,} iterations"
    return row


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "flowint": run_flowint,
    "flowint-single": run_flowint_single,
    "flowint-modes": run_flowint_modes,
    "nautilus": run_nautilus,
    "dynesty": run_dynesty,
}


# ---------------------------------------------------------------------------- analysis


def _ok(row: dict[str, Any]) -> bool:
    return row["status"] == "ok" and math.isfinite(F(row["log_z"]))


def _delta(row: dict[str, Any]) -> float:
    return F(row["log_z"]) - F(row["truth"]) if _ok(row) else math.nan


def _pull(row: dict[str, Any]) -> float:
    """``|Δ log Z| / error`` (inf for a wrong value with a zero or missing error)."""
    delta, error = abs(_delta(row)), F(row["error"])
    if math.isnan(delta):
        return math.nan
    if not error > 0:
        return 0.0 if delta == 0 else math.inf
    return delta / error


def _verdict(row: dict[str, Any]) -> str:
    if not _ok(row):
        return "failed" if row["status"] == "ok" else row["status"][:80]
    return "**confidently wrong**" if _pull(row) > WRONG else "ok"


def _median(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _int(value: float) -> int | str:
    return int(round(value)) if math.isfinite(value) else "—"


def _problems_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen = {r["problem"] for r in rows}
    return [p for p in PROBLEMS if p in seen] + sorted(seen - set(PROBLEMS))


def _label(row: dict[str, Any]) -> str:
    return row["method"] + (f" (B={row['budget']:,})" if row.get("budget") else "")


def _note(row: dict[str, Any]) -> str:
    parts = [row["note"]] if row.get("note") else []
    if row.get("load") is not None:
        parts.append(f"load {F(row['load']):.1f}")
    return "; ".join(parts) or "—"


PROBLEM_COLUMNS = ["method", "seed", "log Z", "Δ log Z", "error", "pull", "calls", "seconds",
                   "verdict", "note"]


def problem_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per run of one problem, methods in :data:`METHODS` order, then by seed."""
    order = {m: i for i, m in enumerate(RUNNERS)}
    body = []
    for r in sorted(rows, key=lambda r: (order.get(r["method"], 99), r.get("budget") or 0,
                                         r["seed"])):
        ok = _ok(r)
        body.append([_label(r), r["seed"], common.fmt(F(r["log_z"]), 6) if ok else "—",
                     common.fmt(_delta(r), 2), common.fmt(F(r["error"]), 2),
                     common.fmt(_pull(r), 2), r["calls"], common.fmt(F(r["seconds"]), 3),
                     _verdict(r), _note(r)])
    return common.markdown_table(PROBLEM_COLUMNS, body)


SUMMARY_COLUMNS = ["problem", "method", "runs", "confidently wrong", "median abs Δ",
                   "max abs Δ", "median error", "max pull", "median calls", "median seconds"]


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per problem and method (and flowint budget): runs, confidently wrong, medians."""
    body = []
    for prob in _problems_of(rows):
        here = [r for r in rows if r["problem"] == prob]
        labels = sorted({_label(r) for r in here},
                        key=lambda s: (list(RUNNERS).index(s.split()[0])
                                       if s.split()[0] in METHODS else 99, s))
        for label in labels:
            runs = [r for r in here if _label(r) == label]
            good = [r for r in runs if _ok(r)]
            wrong = sum(_pull(r) > WRONG for r in good)
            failed = len(runs) - len(good)
            deltas = [abs(_delta(r)) for r in good]
            body.append([
                prob, label, len(runs),
                f"{wrong}/{len(good)}" + (f" ({failed} not finished)" if failed else ""),
                common.fmt(_median(deltas), 2), common.fmt(max(deltas, default=math.nan), 2),
                common.fmt(_median([F(r["error"]) for r in good]), 2),
                common.fmt(max((_pull(r) for r in good), default=math.nan), 2),
                _int(_median([float(r["calls"]) for r in good])),
                common.fmt(_median([F(r["seconds"]) for r in good]), 3)])
    return common.markdown_table(SUMMARY_COLUMNS, body)


NOTES = """
Δ log Z = estimate − truth (abs Δ its size); error = the method's own error of log Z (flowint
`log_sdev`, nautilus 1/√n_eff as its documentation advises, dynesty `logzerr`); pull =
abs Δ / error, and a pull above {wrong:g} marks a run **confidently wrong**. Calls are counted by
a wrapper around the likelihood; seconds are wall time of the whole run on this machine (one
thread per process; "load" in the notes is the machine's 1-minute load average as the run
ended, where recorded: wall seconds grow with it on a shared machine). Truths
(`integrands/evidence.py`): Gaussian shells exact (closed-form radial integral; MultiNest
Table 2: −1.75, −14.59), egg box 235.8559403 (periodic trapezoidal rule; MultiNest's 235.88
is 0.024 high), the Gaussians −d log 2 (normalised densities, box truncation < 1e-40).
"""


def tables(rows: Sequence[dict[str, Any]]) -> str:
    """The summary, then one table per problem, then the notes."""
    text = "\n## Summary\n\n" + summary_table(rows)
    for prob in _problems_of(rows):
        p = EVIDENCE_PROBLEMS.get(prob)
        here = [r for r in rows if r["problem"] == prob]
        truth = F(here[0]["truth"])
        text += f"\n## {prob}" + (f" ({p.dim}-D)" if p else "") + "\n\n"
        if p is not None:
            text += f"{p.description}. True log Z = {truth:.10g} ({p.log_z_source}).\n\n"
        text += problem_table(here)
    return text + NOTES.format(wrong=WRONG)


# ---------------------------------------------------------------------------- command line


def _key(row: dict[str, Any]) -> tuple:
    return (row["problem"], row["method"], row["seed"], row.get("budget"))


def write(path: Path, rows: Sequence[dict[str, Any]], settings: dict[str, Any],
          command: str) -> None:
    """Rewrite ``path``: header, tables, and the rows as JSON comments (atomic replace)."""
    text = common.header("Bayesian evidence: flowint, nautilus and dynesty on known log Z",
                         command, settings)
    text += tables(rows) + "\n" + common.save_rows_comment(rows)
    common.write_atomic(path, text)


def _count(s: str) -> int:
    return int(float(s))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"problems {', '.join(QUICK_PROBLEMS)}, seeds {QUICK_SEEDS}")
    p.add_argument("--problems", nargs="+", default=None, choices=sorted(EVIDENCE_PROBLEMS),
                   help="default: all (--quick: the 2-D ones)")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help=f"default {SEEDS} (--quick {QUICK_SEEDS})")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=list(RUNNERS))
    p.add_argument("--budget", type=_count, default=None,
                   help="flowint's likelihood calls on every problem (default: per problem, "
                        "FLOWINT_BUDGETS; the peers stop by their own rules)")
    p.add_argument("--timeout", type=float, default=None,
                   help="wall seconds per run (default: none); a run past it is recorded as "
                        "a timeout, kept on a rerun unless the new limit is longer")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "evidence.md")
    p.add_argument("--fresh", action="store_true", help="ignore rows already in --out")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: rewrite --out's tables and header from its rows")
    return p


def _budget_text(args: argparse.Namespace) -> str:
    if args.budget:
        return f"{args.budget:,}"
    return "per problem: " + ", ".join(f"{k} {v:,}" for k, v in FLOWINT_BUDGETS.items())


def _settings(args: argparse.Namespace, problems: Sequence[str],
              seeds: Sequence[int]) -> dict[str, Any]:
    return {
        "problems (this run)": ", ".join(problems), "seeds": ", ".join(map(str, seeds)),
        "methods": ", ".join(args.methods),
        "flowint call": (f"integrate(log_l, d, log=True, prior=transform, "
                         f"budget={_budget_text(args)}, seed=seed)"),
        "nautilus call": ("Sampler(prior, log_l, n_dim, vectorized=True, seed=seed).run(), "
                          "defaults; error 1/√n_eff"),
        "dynesty call": ("NestedSampler(log_l, prior, ndim, rstate=default_rng(seed))"
                         ".run_nested(), defaults; logz[-1] ± logzerr[-1]"),
        "nautilus version": common._version("nautilus"),
        "dynesty version": common._version("dynesty"),
        "scikit-learn version": common._version("sklearn"),
        "confidently wrong": f"abs Δ log Z > {WRONG:g} × own error",
        "time limit per run": f"{args.timeout:g} s" if args.timeout else "none",
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = build_parser().parse_args(argv)
    problems = args.problems or (QUICK_PROBLEMS if args.quick else PROBLEMS)
    seeds = args.seeds or (QUICK_SEEDS if args.quick else SEEDS)
    settings = _settings(args, problems, seeds)
    command = "python benchmarks/evidence.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out = args.out
    old = [] if args.fresh else common.load_rows(out)
    if args.tables_only:
        write(out, old, settings, command)
        print(tables(old))
        return old
    # kept: finished rows, and rows that hit a time limit at least as long as this run's;
    # failed rows are run again
    done = {_key(r): r for r in old if r["status"] == "ok" or (
        r["status"].startswith("timeout") and args.timeout is not None
        and args.timeout <= F(r.get("timeout")))}
    plan = [(prob, m, s) for prob in problems for s in seeds for m in args.methods]
    rows: list[dict[str, Any]] = []
    used: set[tuple] = set()

    def current() -> list[dict[str, Any]]:
        # this run's rows, then those in the file now (another run on the same --out may
        # have added some since this one started), then those read at the start
        mine = {_key(r) for r in rows} | used
        now = [] if args.fresh else [r for r in common.load_rows(out) if _key(r) not in mine]
        seen = mine | {_key(r) for r in now}
        return rows + now + [r for r in old if _key(r) not in seen]

    for i, (prob, method, seed) in enumerate(plan, 1):
        budget = (flowint_budget(EVIDENCE_PROBLEMS[prob], args.budget)
                  if method.startswith("flowint") else None)
        key = (prob, method, seed, budget)
        used.add(key)
        label = f"[{i}/{len(plan)}] {prob} {method} seed {seed}"
        if key in done:
            rows.append(done[key])
            print(f"{label}: already in {out}, skipped", flush=True)
            continue
        print(f"{label} ...", flush=True)
        row = RUNNERS[method](EVIDENCE_PROBLEMS[prob], seed, budget=budget,
                              timeout=args.timeout)
        rows.append(row)
        write(out, current(), settings, command)
        print(f"    {row['status']}: log Z {common.fmt(F(row['log_z']), 6)}, Δ "
              f"{common.fmt(_delta(row), 2)} ± {common.fmt(F(row['error']), 2)} "
              f"(|Δ|/err {common.fmt(_pull(row), 2)}), {row['calls']:,} calls, "
              f"{common.fmt(F(row['seconds']), 3)} s -> {_verdict(row)}", flush=True)
    final = current()
    write(out, final, settings, command)
    print(tables(final))
    print(f"written: {out}")
    return final


if __name__ == "__main__":
    main()
