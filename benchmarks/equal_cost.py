"""Equal-cost comparison: flowint, VEGAS, plain RQMC and MadNIS at the same TOTAL calls.

Unlike ``equal_budget.py`` (the same training/final split imposed on every method), each
method here gets one total budget B of integrand calls and spends it with its own usual
recipe, in one run on the same machine:

- **flowint**: ``flowint.integrate(f, d, budget=B, seed=seed)`` with the defaults (all calls
  of the run, training included, counted by a torch-in/torch-out wrapper).
- **vegas**: ``vegas.Integrator([[0, 1]]*d)``: 5 iterations of B/10 calls to adapt
  (discarded), then 5 iterations of B/10 averaged by vegas (batch integrand ``f.numpy``).
- **rqmc**: plain randomised QMC, no adaptation: 16 independently scrambled Sobol sets of
  2^m points (largest m with 16·2^m ≤ B); mean of the 16 means, sdev = std/√16.
- **madnis**: MadNIS defaults, 10/11·B training calls (batches of 1024), B/11 fresh calls.

The calls each method actually made are counted (vegas and rqmc may use fewer than B), and the
seconds spent inside the integrand are measured by the same wrapper (sum of ``perf_counter``
around each call). Tables: (1) per budget, the absolute error |mean − exact| and pull of each
method, the wall seconds, and flowint's error over the best *right* other method's
(|pull| < 3); (2) the same at equal wall time (peers' sdev scaled to flowint's seconds);
(3) the break-even integrand cost above which flowint is cheaper than vegas to reach a
relative error of 1e-3 (camel 8-D and 16-D). Runners are in ``common.py``
(:data:`common.COST_RUNNERS`).

Usage::

    python benchmarks/equal_cost.py                     # 13 integrands × (1e5, 1.1e6) + break-even
    python benchmarks/equal_cost.py --quick             # 7 integrands at 1e5, no break-even
    python benchmarks/equal_cost.py --cases camel:dim=2 --budgets 2e4 --no-breakeven
    python benchmarks/equal_cost.py --methods flowint vegas rqmc --seed 3
    python benchmarks/equal_cost.py --cases annulus --seeds 1 2 3 4 5 --no-breakeven
    python benchmarks/equal_cost.py --breakeven-only    # only the break-even table
    python benchmarks/equal_cost.py --breakeven-only --breakeven-seeds 1-7   # and its median

Writes ``results/equal_cost.md`` (``equal_cost_quick.md`` with ``--quick``), flushed after every
(integrand, budget) and every break-even case; rerunning with the same ``--out`` skips what is
already there, except rows where a method failed with an error, which are run again (rows of
earlier runs with other cases, budgets or seeds are kept; ``--fresh`` starts over;
``--merge FILE`` adds the rows of another run's file, e.g. seeds run in parallel).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import equal_budget  # noqa: E402

__all__ = ["BUDGETS", "CASES", "METHODS", "QUICK_CASES", "breakeven", "carry", "goal", "main",
           "over_seeds", "run_breakeven", "run_case", "seed_groups", "tables"]

CASES = list(equal_budget.CASES)
QUICK_CASES = list(equal_budget.QUICK_CASES)
BUDGETS = [100_000, 1_100_000]
QUICK_BUDGETS = [100_000]
METHODS = ["flowint", "vegas", "rqmc", "madnis"]

# The goal (figure of merit: the absolute error |mean − exact| of this seed's run).
GOAL_RATIO = 1.2            # flowint err ≤ 1.2 × the best other right method's, every row
STRICT_RATIO = 0.5          # ... ≤ 0.5 × on these cases at budgets ≥ STRICT_BUDGET
STRICT_CASES = ("camel:dim=8", "camel:dim=16", "camel:dim=32")
STRICT_BUDGET = 1_100_000
PULL_LIMIT = 3.0            # "right": |pull| < 3 with sdev > 0; flowint must be right
# Over several seeds an honest error bar still gives |pull| >= 3 now and then: P = 0.0027 for a
# Gaussian estimate, 0.009 for the Student t of 16 randomizations. A method is right over the
# seeds when it has no more such seeds than a rate of TAIL_RATE allows with probability
# 1 - TAIL_LEVEL (binomial), and none with |pull| >= GROSS_PULL.
TAIL_RATE = 0.01
TAIL_LEVEL = 0.01
GROSS_PULL = 5.0

BREAKEVEN_CASES = ["camel:dim=8", "camel:dim=16"]
BREAKEVEN_RTOL = 1e-3
BREAKEVEN_FLOWINT_CAP = 20_000_000
BREAKEVEN_VEGAS_CAP = 50_000_000
BREAKEVEN_VEGAS_NEVAL = 100_000
BREAKEVEN_GOAL_US = 1.0     # c* ≤ 1 µs per call

F = common.as_float


# ---------------------------------------------------------------------------- running


def run_case(spec: str, budget: int, seed: int,
             methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """All ``methods`` on one integrand at one total budget."""
    import integrands

    f = integrands.get(spec)
    records = []
    for m in methods:
        t0 = time.perf_counter()
        rec = common.COST_RUNNERS[m](f, budget, seed)
        rec.case = spec
        records.append(asdict(rec))
        print(f"    {m}: {rec.status}, err {common.fmt(abs(rec.mean - rec.exact))}, pull "
              f"{common.fmt(rec.pull, 2)}, {rec.n_evals:,} calls "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    return {"kind": "cost", "spec": spec, "budget": int(budget), "seed": seed,
            "methods": list(methods), "exact": float(f.exact), "records": records}


def run_breakeven(spec: str, seed: int, *, rtol: float = BREAKEVEN_RTOL,
                  flowint_cap: int = BREAKEVEN_FLOWINT_CAP,
                  vegas_cap: int = BREAKEVEN_VEGAS_CAP,
                  vegas_neval: int = BREAKEVEN_VEGAS_NEVAL) -> dict[str, Any]:
    """flowint (``rtol``, budget ``flowint_cap``) and vegas (to ``rtol`` or ``vegas_cap``) on one
    integrand, with the seconds spent inside the integrand measured for both."""
    import integrands

    f = integrands.get(spec)
    t0 = time.perf_counter()
    fl = common.run_flowint_budget(f, flowint_cap, seed, rtol=rtol)
    print(f"    flowint: {fl.status}, {fl.n_evals:,} calls ({time.perf_counter() - t0:.0f} s)",
          flush=True)
    t0 = time.perf_counter()
    ve = common.run_vegas_to(f, rtol, vegas_cap, seed, neval=vegas_neval)
    print(f"    vegas: {ve.status}, {ve.n_evals:,} calls, {ve.note} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    fl.case = ve.case = spec
    return {"kind": "breakeven", "spec": spec, "seed": seed, "rtol": rtol,
            "flowint_cap": int(flowint_cap), "vegas_cap": int(vegas_cap),
            "vegas_neval": int(vegas_neval), "exact": float(f.exact),
            "flowint": asdict(fl), "vegas": asdict(ve)}


# ---------------------------------------------------------------------------- analysis


def _ok(r: dict[str, Any] | None) -> bool:
    return bool(r) and r["status"] == "ok" and math.isfinite(F(r["mean"]))


def _err(r: dict[str, Any]) -> float:
    return abs(F(r["mean"]) - F(r["exact"])) if _ok(r) else math.nan


def _right(r: dict[str, Any] | None) -> bool:
    """Status ok, sdev > 0 and |pull| < 3."""
    if not _ok(r):
        return False
    s, p = F(r["sdev"]), F(r["pull"])
    return math.isfinite(s) and s > 0 and math.isfinite(p) and abs(p) < PULL_LIMIT


def _by_method(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["method"]: r for r in row["records"]}


def goal(row: dict[str, Any]) -> dict[str, Any]:
    """flowint against the best other right method (smallest |error| among the others with
    |pull| < 3): the error and sdev ratios, the limit that applies and the misses."""
    by = _by_method(row)
    fl = by.get("flowint")
    others = [r for m, r in by.items() if m != "flowint" and _right(r)]
    best = min(others, key=_err) if others else None
    strict = row["spec"] in STRICT_CASES and row["budget"] >= STRICT_BUDGET
    limit = STRICT_RATIO if strict else GOAL_RATIO
    out = {"best": best["method"] if best else "none", "err_ratio": math.nan,
           "sdev_ratio": math.nan, "limit": limit, "misses": []}
    if fl is None:
        out["misses"].append("no flowint run")
        return out
    if not _ok(fl):
        out["misses"].append(f"flowint {fl['status']}"[:60])
        return out
    if best is not None:
        e_fl, e_best = _err(fl), _err(best)
        out["err_ratio"] = e_fl / e_best if e_best > 0 else (1.0 if e_fl == 0 else math.inf)
        out["sdev_ratio"] = F(fl["sdev"]) / F(best["sdev"])
        if not out["err_ratio"] <= limit:
            out["misses"].append(f"err ratio {common.fmt(out['err_ratio'])} > {limit:g}")
    if not _right(fl):
        out["misses"].append(f"flowint pull {common.fmt(F(fl['pull']), 2)}")
    return out


def seed_groups(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The equal-cost rows by ``(spec, budget)``, each group's rows in seed order."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in sorted((r for r in rows if r.get("kind", "cost") == "cost"),
                      key=lambda r: r["seed"]):
        groups.setdefault((row["spec"], row["budget"]), []).append(row)
    return groups


def allowed_tail(seeds: int, rate: float = TAIL_RATE, level: float = TAIL_LEVEL) -> int:
    """The most seeds with |pull| >= :data:`PULL_LIMIT` that honest error bars give with
    probability at least ``1 - level`` over ``seeds`` seeds: the smallest ``k`` with
    ``P(Binomial(seeds, rate) > k) <= level`` (0 for one seed, 1 for 5, 2 for 40, 5 for 140)."""
    from scipy.stats import binom

    return int(binom.ppf(1.0 - level, seeds, rate))


def over_seeds(group: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per method over the seeds of one ``(spec, budget)``: the root-mean-square error, the
    largest |pull|, how many seeds have |pull| >= 3 and the mean seconds; and the goal judged
    on them (flowint's RMS error over the best RMS error of the other methods right over the
    seeds, flowint right over the seeds). Right over the seeds: every run ok, |pull| >= 3 on
    at most :func:`allowed_tail` seeds and |pull| < :data:`GROSS_PULL` on every seed (with
    one seed: |pull| < 3, as a single row)."""
    per: dict[str, dict[str, Any]] = {}
    for m in _methods_of(group):
        recs = [_by_method(row).get(m) for row in group]
        ok = [r for r in recs if _ok(r)]
        errs = [_err(r) for r in ok]
        sdevs = [F(r["sdev"]) for r in ok]
        pulls = [abs(F(r["pull"])) for r in ok]
        sane = [r for r in ok if math.isfinite(F(r["sdev"])) and F(r["sdev"]) > 0
                and math.isfinite(F(r["pull"]))]
        tail = sum(1 for r in sane if abs(F(r["pull"])) >= PULL_LIMIT)
        allowed = allowed_tail(len(recs))
        per[m] = {"seeds": len(ok), "failed": len(recs) - len(ok),
                  "rms": math.sqrt(sum(e * e for e in errs) / len(errs)) if errs else math.nan,
                  "rms_sdev": math.sqrt(sum(v * v for v in sdevs) / len(sdevs)) if sdevs
                  else math.nan,
                  "max_pull": max(pulls) if pulls else math.nan, "tail": tail,
                  "allowed": allowed,
                  "seconds": sum(F(r["wall_time"]) for r in ok) / len(ok) if ok else math.nan,
                  "right": bool(ok) and len(sane) == len(recs)
                  and tail <= allowed
                  and all(abs(F(r["pull"])) < GROSS_PULL for r in sane)}
    spec, budget = group[0]["spec"], group[0]["budget"]
    strict = spec in STRICT_CASES and budget >= STRICT_BUDGET
    limit = STRICT_RATIO if strict else GOAL_RATIO
    others = {m: v for m, v in per.items() if m != "flowint" and v["right"]}
    best = min(others, key=lambda m: others[m]["rms"]) if others else None
    out = {"methods": per, "best": best or "none", "ratio": math.nan, "sdev_ratio": math.nan,
           "limit": limit, "misses": []}
    fl = per.get("flowint")
    if fl is None or fl["seeds"] == 0:
        out["misses"].append("no flowint run")
        return out
    if best is not None:
        e_best = others[best]["rms"]
        out["ratio"] = fl["rms"] / e_best if e_best > 0 else (
            1.0 if fl["rms"] == 0 else math.inf)
        out["sdev_ratio"] = fl["rms_sdev"] / others[best]["rms_sdev"]
        if not out["ratio"] <= limit:
            out["misses"].append(f"rms ratio {common.fmt(out['ratio'])} > {limit:g}")
    if not fl["right"]:
        out["misses"].append(f"flowint |pull| >= 3 on {fl['tail']} of {len(group)} seeds "
                             f"(max {common.fmt(fl['max_pull'], 2)}, {fl['allowed']} allowed)"
                             + (f", {fl['failed']} failed" if fl["failed"] else ""))
    return out


def seed_list(seeds: Sequence[int]) -> str:
    """Seeds as ranges: ``1–3, 7`` for 1, 2, 3, 7 (a run of three or more is a range)."""
    out: list[str] = []
    run: list[int] = []
    for s in [*seeds, None]:
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            out += [f"{run[0]}–{run[-1]}"] if len(run) >= 3 else [str(x) for x in run]
        run = [s] if s is not None else []
    return ", ".join(out)


def _columns(first: list[str], methods: list[str], pair: tuple[str, str], seconds: str,
             last: list[str]) -> list[str]:
    """``first``, two columns per method (``pair``), one of seconds per method, ``last``."""
    return (first + [f"{m} {c}" for m in methods for c in pair]
            + [f"{m} {seconds}" for m in methods] + last)


def seeds_table(groups: Sequence[Sequence[dict[str, Any]]]) -> str:
    methods = _methods_of([row for g in groups for row in g])
    cols = _columns(["integrand", "seeds"], methods, ("rms err", "max abs pull (n ≥ 3)"),
                    "mean s",
                    ["best other right", "flowint rms / best", "flowint rms sdev / best",
                     "goal"])
    body = []
    for group in groups:
        q = over_seeds(group)
        cells = [group[0]["spec"], seed_list([r["seed"] for r in group])]
        for m in methods:
            v = q["methods"].get(m)
            cells += ([common.fmt(v["rms"], 2),
                       f"{common.fmt(v['max_pull'], 2)} ({v['tail']})"] if v else ["—", "—"])
        for m in methods:
            v = q["methods"].get(m)
            cells.append(common.fmt(v["seconds"], 2) if v else "—")
        cells += [q["best"], common.fmt(q["ratio"]), common.fmt(q["sdev_ratio"]),
                  ("MISS: " + "; ".join(q["misses"])) if q["misses"] else
                  f"ok (≤ {q['limit']:g})"]
        body.append(cells)
    return common.markdown_table(cols, body)


def _sampler(record: dict[str, Any]) -> str:
    """flowint's final sampler, from its note (``sampler flow; ...`` gives ``flow``)."""
    note = str(record.get("note", ""))
    return note.split(";")[0].removeprefix("sampler ").strip() if note.startswith("sampler ") \
        else "?"


def sampler_table(groups: Sequence[Sequence[dict[str, Any]]]) -> str:
    """Over the seeds, flowint's RMS error by the sampler its runs ended in, beside the RMS
    error of the best other right method (of the whole group) on the same seeds."""
    cols = ["integrand", "flowint sampler", "seeds", "flowint rms err", "best other",
            "its rms err on these seeds", "ratio"]
    body = []
    for group in groups:
        q = over_seeds(group)
        by: dict[str, list[tuple[float, float]]] = {}
        for row in group:
            recs = _by_method(row)
            fl, other = recs.get("flowint"), recs.get(q["best"])
            if _ok(fl):
                by.setdefault(_sampler(fl), []).append(
                    (_err(fl), _err(other) if _ok(other) else math.nan))
        for name, pairs in sorted(by.items(), key=lambda kv: -len(kv[1])):
            e_fl = math.sqrt(sum(a * a for a, _ in pairs) / len(pairs))
            e_ot = math.sqrt(sum(b * b for _, b in pairs) / len(pairs))
            body.append([group[0]["spec"], name, str(len(pairs)), common.fmt(e_fl, 2),
                         q["best"], common.fmt(e_ot, 2),
                         common.fmt(e_fl / e_ot) if e_ot > 0 else "—"])
    return common.markdown_table(cols, body)


def equal_time(row: dict[str, Any]) -> dict[str, Any]:
    """Each peer's sdev scaled to flowint's wall seconds, ``sdev·√(t_peer/t_flowint)``, and
    flowint's sdev over the smallest scaled sdev among the right peers."""
    by = _by_method(row)
    fl = by.get("flowint")
    t_fl = F(fl["wall_time"]) if _ok(fl) else math.nan
    scaled = {}
    for m, r in by.items():
        if m == "flowint":
            continue
        scaled[m] = (F(r["sdev"]) * math.sqrt(F(r["wall_time"]) / t_fl)
                     if _ok(r) and t_fl > 0 else math.nan)
    right = {m: s for m, s in scaled.items() if _right(by[m]) and math.isfinite(s)}
    best = min(right, key=right.get) if right else None
    ratio = F(fl["sdev"]) / right[best] if best and _ok(fl) and right[best] > 0 else math.nan
    return {"scaled": scaled, "best": best or "none", "ratio": ratio}


def breakeven(row: dict[str, Any]) -> dict[str, Any]:
    """Overheads O = wall − time in f, and the break-even cost per call
    ``c* = (O_flowint − O_vegas) / (N_vegas − N_flowint)`` (seconds), as text in µs."""
    fl, ve = row["flowint"], row["vegas"]
    rtol = row["rtol"]
    out = {"O_flowint": math.nan, "O_vegas": math.nan, "c_star": math.nan, "text": "—",
           "fl_reached": False, "ve_reached": False, "ve_right": _right(ve), "goal": "—"}

    def reached(r):
        m, s = F(r["mean"]), F(r["sdev"])
        return _ok(r) and m != 0 and math.isfinite(s) and s / abs(m) < rtol * (1 + 1e-9)

    out["fl_reached"], out["ve_reached"] = reached(fl), reached(ve)
    if not (_ok(fl) and _ok(ve)):
        out["goal"] = "MISS: " + ("flowint " + fl["status"] if not _ok(fl)
                                  else "vegas " + ve["status"])[:60]
        return out
    o_fl = F(fl["wall_time"]) - F(fl["f_time"])
    o_ve = F(ve["wall_time"]) - F(ve["f_time"])
    n_fl, n_ve = int(fl["n_evals"]), int(ve["n_evals"])
    out["O_flowint"], out["O_vegas"] = o_fl, o_ve
    if n_fl >= n_ve:
        out["text"] = "never"
    else:
        c = (o_fl - o_ve) / (n_ve - n_fl)
        out["c_star"] = max(c, 0.0)
        if c <= 0:
            out["text"] = "always (0)"
        else:
            # vegas stopped by its cap: it needs more calls and overhead, c* is an upper bound;
            # flowint stopped by its cap: a lower bound; both: unknown.
            prefix = {(True, True): "", (True, False): "≤ ", (False, True): "≥ ",
                      (False, False): "? "}[(out["fl_reached"], out["ve_reached"])]
            out["text"] = prefix + common.fmt(c * 1e6)
    misses = []
    if not out["fl_reached"]:
        misses.append("flowint missed rtol")
    if not _right(fl):
        misses.append(f"flowint pull {common.fmt(F(fl['pull']), 2)}")
    if out["ve_right"] and not (out["text"] == "always (0)" or (
            math.isfinite(out["c_star"]) and out["c_star"] * 1e6 <= BREAKEVEN_GOAL_US)):
        misses.append(f"c* > {BREAKEVEN_GOAL_US:g} µs")
    out["goal"] = "MISS: " + "; ".join(misses) if misses else (
        "yes" if out["ve_right"] else "yes (vegas wrong: sets no bar)")
    return out


# ---------------------------------------------------------------------------- tables


def _methods_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    seen = {r["method"] for row in rows for r in row["records"]}
    return [m for m in METHODS if m in seen]


def _short(status: str) -> str:
    return "n/i" if status == "not installed" else ("error" if status != "ok" else "ok")


def main_table(rows: Sequence[dict[str, Any]]) -> str:
    methods = _methods_of(rows)
    cols = _columns(["integrand"], methods, ("err", "pull"), "s",
                    ["best other right", "flowint err / best", "flowint sdev / best sdev",
                     "goal"])
    body = []
    for row in rows:
        by = _by_method(row)
        cells = [row["spec"]]
        for m in methods:
            r = by.get(m)
            if r is None:
                cells += ["—", "—"]
            elif not _ok(r):
                cells += [_short(r["status"]), "—"]
            else:
                cells += [common.fmt(_err(r), 2), common.fmt(F(r["pull"]), 2)]
        for m in methods:
            r = by.get(m)
            cells.append(common.fmt(F(r["wall_time"]), 2) if _ok(r) else "—")
        q = goal(row)
        cells += [q["best"], common.fmt(q["err_ratio"]), common.fmt(q["sdev_ratio"]),
                  ("MISS: " + "; ".join(q["misses"])) if q["misses"] else
                  f"ok (≤ {q['limit']:g})"]
        body.append(cells)
    return common.markdown_table(cols, body)


DETAIL_COLUMNS = ["integrand", "method", "status", "calls", "mean", "sdev", "err", "rel err",
                  "pull", "wall s", "f s", "own breakdown s", "note"]


def detail_table(rows: Sequence[dict[str, Any]]) -> str:
    body = []
    for row in rows:
        for r in row["records"]:
            ok = _ok(r)
            own = r.get("seconds")
            body.append([
                row["spec"], r["method"], r["status"], r["n_evals"] if ok else "—",
                common.fmt(F(r["mean"]), 6), common.fmt(F(r["sdev"]), 2),
                common.fmt(_err(r), 2), common.fmt(_err(r) / abs(F(r["exact"])), 2),
                common.fmt(F(r["pull"]), 2), common.fmt(F(r["wall_time"]), 3),
                common.fmt(F(r.get("f_time")), 2),
                ", ".join(f"{k} {common.fmt(F(v), 2)}" for k, v in own.items()) if own else "—",
                r.get("note") or "—"])
    return common.markdown_table(DETAIL_COLUMNS, body)


def time_table(rows: Sequence[dict[str, Any]]) -> str:
    peers = [m for m in _methods_of(rows) if m != "flowint"]
    cols = (["integrand", "flowint s", "flowint sdev"] + [f"{m} sdev @ t_flowint" for m in peers]
            + ["best right peer", "flowint sdev / best"])
    body = []
    for row in rows:
        fl = _by_method(row).get("flowint")
        q = equal_time(row)
        body.append([row["spec"], common.fmt(F(fl["wall_time"]), 2) if _ok(fl) else "—",
                     common.fmt(F(fl["sdev"]), 2) if _ok(fl) else "—",
                     *[common.fmt(q["scaled"].get(m, math.nan), 2) for m in peers],
                     q["best"], common.fmt(q["ratio"])])
    return common.markdown_table(cols, body)


BREAKEVEN_COLUMNS = ["integrand", "seed", "rtol", "flowint calls", "flowint s", "flowint f s",
                     "flowint O s", "flowint pull", "flowint reached", "vegas calls", "vegas s",
                     "vegas f s", "vegas O s", "vegas pull", "vegas reached", "vegas right",
                     "c* µs/call", "goal"]


def breakeven_table(rows: Sequence[dict[str, Any]]) -> str:
    body = []
    for row in rows:
        fl, ve = row["flowint"], row["vegas"]
        q = breakeven(row)
        body.append([row["spec"], row["seed"], common.fmt(row["rtol"]),
                     fl["n_evals"], common.fmt(F(fl["wall_time"]), 3),
                     common.fmt(F(fl["f_time"]), 3), common.fmt(q["O_flowint"], 3),
                     common.fmt(F(fl["pull"]), 2), common.fmt(q["fl_reached"]),
                     ve["n_evals"], common.fmt(F(ve["wall_time"]), 3),
                     common.fmt(F(ve["f_time"]), 3), common.fmt(q["O_vegas"], 3),
                     common.fmt(F(ve["pull"]), 2), common.fmt(q["ve_reached"]),
                     common.fmt(q["ve_right"]), q["text"], q["goal"]])
    return common.markdown_table(BREAKEVEN_COLUMNS, body)


BREAKEVEN_SUMMARY_COLUMNS = ["integrand", "rtol", "seeds", "c* µs/call by seed", "median c*",
                             "seeds meeting the goal", "seeds vegas right", "goal (median)"]


def breakeven_summary(rows: Sequence[dict[str, Any]]) -> str:
    """The break-even rows of integrands run with several seeds, one line each: every seed's
    c*, their median and how many meet the goal (each row's own verdict: a wrong vegas answer
    sets no bar there). The median is over the seeds where vegas is right; ``—`` when there is
    none."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["spec"], row["rtol"]), []).append(row)
    body = []
    for (spec, rtol), group in groups.items():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda r: r["seed"])
        qs = [breakeven(r) for r in group]
        values = [q["c_star"] * 1e6 for q in qs if q["ve_right"] and math.isfinite(q["c_star"])]
        median = statistics.median(values) if values else math.nan
        met = sum(1 for q in qs if not q["goal"].startswith("MISS"))
        verdict = ("—" if not values else "yes" if median <= BREAKEVEN_GOAL_US
                   else f"MISS: median c* > {BREAKEVEN_GOAL_US:g} µs")
        body.append([spec, common.fmt(rtol), seed_list([r["seed"] for r in group]),
                     ", ".join(f"{r['seed']}: {q['text']}" for r, q in zip(group, qs,
                                                                         strict=True)),
                     common.fmt(median), f"{met} of {len(group)}",
                     f"{sum(q['ve_right'] for q in qs)} of {len(group)}", verdict])
    return common.markdown_table(BREAKEVEN_SUMMARY_COLUMNS, body) if body else ""


NOTES = """
**Figure of merit.** The goal uses the *absolute error* err = |mean − exact| of one run (one
seed): flowint's err ≤ {ratio:g}× the best other *right* method's (right: status ok, sdev > 0
and |pull| < {pull:g}; the best is the one with the smallest err) on every row, ≤
{strict:g}× on {strict_cases} at budgets ≥ {strict_budget:,}, and flowint's own pull within
±{pull:g} everywhere.
One seed's err is noisy (it is |N(0, sdev)|-like), so the ratio of the *reported* sdevs,
flowint sdev / best-other-right sdev, is given beside it; the goal column uses the err ratio.
Rows that miss the goal say MISS and why. Where no other method is right, only flowint's pull
is checked.
Where an integrand was run with several seeds (``--seeds``), the *Over seeds* table judges the
goal on the root-mean-square error over the seeds instead: flowint's RMS error over the
smallest RMS error of the other methods that are right over the seeds, and flowint right over
the seeds. Honest error bars still give |pull| ≥ {pull:g} now and then (0.27 % of Gaussian
estimates, 0.9 % of Student-t ones with 15 degrees of freedom, as from 16 randomizations), so
*right over the seeds* is: every run ok, |pull| < {gross:g} on every seed, and |pull| ≥ {pull:g}
on no more seeds than a rate of {rate:g} gives with probability {conf:g} (binomial: none of
1 seed, 1 of 2–15, 2 of 16–44, 3 of 45–83, 4 of 84–129, 5 of 130–180); the count is in
brackets after each method's largest |pull|. Where flowint spends the budget as plain RQMC
does (the *sampler identity* note), one seed's ratio is that of two draws of nearly the same
estimator, above 1.2 about half the time; the RMS over seeds is what can show a difference.
With five seeds it is still noisy (one seed's error is |N(0, sdev)|-like, and the means of
scrambled sets are heavy-tailed), so the ratio of the root-mean-square *error bars* is given
beside it: a steadier measure of precision where the bars are honest (the coverage study), not
the goal.

Columns: *err* |mean − exact|; *pull* (mean − exact)/sdev; *s* wall seconds of the whole run
(training included); *calls* every integrand call made, counted by a wrapper (vegas makes a
little under its nominal B, rqmc uses 16·2^m ≤ B); *f s* seconds inside the integrand (sum
of perf_counter around each call); *own breakdown s* flowint's ``Result.seconds`` when the
result has it; *n/i* not installed.

Recipes: flowint ``integrate(f, d, budget=B, seed)``, defaults; vegas 5 × B/10 to adapt
(discarded) then 5 × B/10 averaged; rqmc 16 scrambled Sobol sets of 2^m points, 16·2^m ≤ B;
madnis defaults, 10/11·B training calls in batches of 1024, B/11 fresh calls.
"""

TIME_NOTES = """
Equal wall time: each peer's sdev scaled to flowint's seconds, sdev·√(t_peer / t_flowint):
the Monte Carlo scaling (error ∝ 1/√time, i.e. ∝ 1/√calls at a fixed cost per call). It is an
approximation: vegas keeps adapting with more calls and RQMC converges faster than 1/√N on
smooth integrands, so for peers much faster than flowint the scaled sdev is, if anything, too
high (flattering flowint). Only peers that are right (|pull| < {pull:g}) count for *best*.
"""

BREAKEVEN_NOTES = """
Break-even integrand cost. flowint: ``integrate(f, d, budget={fcap:,}, rtol=rtol)``; vegas:
5 iterations of neval = {neval:,} to adapt (discarded), then iterations of neval (still
adapting), inverse-variance combined, until sdev/|mean| < rtol or {vcap:,} calls in all. Time
inside f is measured by wrapping f with a timer for both; the overhead is O = wall − time in
f. With an integrand costing c seconds per call, flowint's total is O_flowint + c·N_flowint,
so it is cheaper than vegas above c* = (O_flowint − O_vegas) / (N_vegas − N_flowint)
(µs/call below; *never* if N_flowint ≥ N_vegas, *always (0)* if c* ≤ 0; *≤* when vegas
stopped at its cap without reaching rtol, *≥* when flowint did). Goal: c* ≤ {goal:g} µs, with
flowint reaching rtol with |pull| < {pull:g}; a vegas answer with |pull| ≥ {pull:g} sets no bar.
"""


def tables(rows: Sequence[dict[str, Any]]) -> str:
    cost = [r for r in rows if r.get("kind", "cost") == "cost"]
    be = [r for r in rows if r.get("kind") == "breakeven"]
    text = ""
    order = {spec: i for i, spec in enumerate(CASES)}  # the set's order, others after
    groups = dict(sorted(seed_groups(cost).items(),
                         key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][0])))
    for budget in sorted({r["budget"] for r in cost}):
        part = [g[0] for (_, b), g in groups.items() if b == budget]
        several = [g for (_, b), g in groups.items() if b == budget and len(g) > 1]
        seeds = sorted({r["seed"] for r in part})
        text += f"\n## Budget {budget:,} calls\n\n"
        text += (f"Seed {', '.join(map(str, seeds))} (each integrand's first seed).\n\n"
                 + main_table(part))
        if several:
            text += "\n### Over seeds\n\n" + seeds_table(several)
            text += ("\n### Over seeds, by the sampler flowint's run ended in\n\n"
                     + sampler_table(several))
        text += "\n### Every run (first seed)\n\n" + detail_table(part)
        text += "\n### Equal wall time (first seed)\n\n" + time_table(part)
    if cost:
        text += NOTES.format(ratio=GOAL_RATIO, pull=PULL_LIMIT, strict=STRICT_RATIO,
                             gross=GROSS_PULL, rate=TAIL_RATE, conf=1 - TAIL_LEVEL,
                             strict_cases=", ".join(STRICT_CASES),
                             strict_budget=STRICT_BUDGET)
        text += TIME_NOTES.format(pull=PULL_LIMIT)
    if be:
        text += "\n## Break-even integrand cost (flowint against vegas)\n\n"
        summary = breakeven_summary(be)
        if summary:
            text += "Over seeds (each seed's row below):\n\n" + summary + "\n"
        text += breakeven_table(be)
        r0 = be[0]
        text += BREAKEVEN_NOTES.format(fcap=r0["flowint_cap"], vcap=r0["vegas_cap"],
                                       neval=r0["vegas_neval"], goal=BREAKEVEN_GOAL_US,
                                       pull=PULL_LIMIT)
    return text


def write(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
          command: str) -> None:
    text = common.header("Equal-cost comparison (same total calls, each method's own recipe)",
                         command, settings)
    text += tables(rows) + "\n" + common.save_rows_comment(rows)
    common.write_atomic(path, text)


# ---------------------------------------------------------------------------- command line


def _key(row: dict[str, Any]) -> tuple:
    if row.get("kind") == "breakeven":
        return ("breakeven", row["spec"], row["seed"], row["rtol"], row["flowint_cap"],
                row["vegas_cap"], row["vegas_neval"])
    return ("cost", row["spec"], row["budget"], row["seed"], tuple(row["methods"]))


def carry(row: dict[str, Any], source: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``row`` with the records of the methods it lacks taken from the (first) cost row of
    ``source`` for the same integrand, budget and seed (each marked ``carried``); ``row`` as it
    is where ``source`` has none."""
    match = [r for r in source if r.get("kind") == "cost" and r["spec"] == row["spec"]
             and r["budget"] == row["budget"] and r["seed"] == row["seed"]]
    if not match:
        return row
    extra = [{**rec, "carried": True} for rec in match[0]["records"]
             if rec["method"] not in row["methods"]]
    return {**row, "methods": list(row["methods"]) + [rec["method"] for rec in extra],
            "records": list(row["records"]) + extra}


def _failed(row: dict[str, Any]) -> bool:
    recs = row["records"] if "records" in row else [row["flowint"], row["vegas"]]
    return any(r["status"].startswith("error") for r in recs)


def _count(s: str) -> int:
    return int(float(s))


def _seeds(s: str) -> list[int]:
    """One seed (``7``) or an inclusive range (``41-140``)."""
    lo, sep, hi = s.partition("-")
    try:
        first, last = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seed or a range of seeds: {s!r}") from None
    if last < first:
        raise argparse.ArgumentTypeError(f"empty range of seeds: {s!r}")
    return list(range(first, last + 1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{len(QUICK_CASES)} integrands at 1e5 calls, no break-even")
    p.add_argument("--cases", nargs="+", default=None,
                   help="registry specifications (default: the equal_budget.py set)")
    p.add_argument("--budgets", nargs="+", type=_count, default=None,
                   help="total calls per method (default 1e5 1.1e6; --quick 1e5)")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--seed", type=int, default=None, help="one seed (as --seeds SEED)")
    p.add_argument("--seeds", nargs="+", type=_seeds, default=None,
                   help="seeds of the equal-cost rows, each a number or a range such as "
                        "41-140 (default 1); with several, the 'Over seeds' tables judge the "
                        "goal on the RMS error over them")
    p.add_argument("--merge", nargs="+", type=Path, default=[],
                   help="results files of other runs whose rows join this one's (rows of "
                        "the same integrand, budget, seed and methods: this run's win)")
    p.add_argument("--carry", type=Path, default=None,
                   help="a results file whose rows give the records of the methods this run "
                        "does not run (same integrand, budget and seed), marked as carried: "
                        "for peers whose code did not change (e.g. MadNIS, 50 s a run)")
    p.add_argument("--breakeven", action=argparse.BooleanOptionalAction, default=None,
                   help="run the break-even table (default: on, off with --quick)")
    p.add_argument("--breakeven-only", action="store_true",
                   help="only the break-even table (no equal-cost rows)")
    p.add_argument("--breakeven-cases", nargs="+", default=BREAKEVEN_CASES)
    p.add_argument("--breakeven-seeds", nargs="+", type=_seeds, default=None,
                   help="seeds of the break-even rows, numbers or ranges (default: the first "
                        "seed of the equal-cost rows); with several, a line per integrand "
                        "gives the median c*")
    p.add_argument("--breakeven-rtol", type=float, default=BREAKEVEN_RTOL)
    p.add_argument("--breakeven-flowint-cap", type=_count, default=BREAKEVEN_FLOWINT_CAP)
    p.add_argument("--breakeven-vegas-cap", type=_count, default=BREAKEVEN_VEGAS_CAP)
    p.add_argument("--breakeven-vegas-neval", type=_count, default=BREAKEVEN_VEGAS_NEVAL)
    p.add_argument("--out", type=Path, default=None,
                   help="markdown file (default results/equal_cost.md, --quick "
                        "results/equal_cost_quick.md)")
    p.add_argument("--fresh", action="store_true", help="ignore rows already in --out")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = build_parser().parse_args(argv)
    if args.seed is not None and args.seeds is not None:
        raise SystemExit("give --seed or --seeds, not both")
    seeds = ([s for group in args.seeds for s in group] if args.seeds
             else [args.seed if args.seed is not None else 1])
    args.seed = seeds[0]  # the break-even rows' seed unless --breakeven-seeds
    cases = [] if args.breakeven_only else (args.cases or (QUICK_CASES if args.quick
                                                           else CASES))
    budgets = args.budgets or (QUICK_BUDGETS if args.quick else BUDGETS)
    do_be = args.breakeven_only or (args.breakeven if args.breakeven is not None
                                    else not args.quick)
    be_cases = args.breakeven_cases if do_be else []
    out = args.out or common.RESULTS_DIR / ("equal_cost_quick.md" if args.quick
                                            else "equal_cost.md")
    settings = {
        "cases (this run)": ", ".join(cases) or "—",
        "budgets (total calls per method)": ", ".join(f"{b:,}" for b in budgets),
        "methods": ", ".join(args.methods), "seeds": seed_list(seeds),
        "flowint": "integrate(f, d, budget=B, seed=seed), defaults",
        "vegas": "5 × B/10 to adapt (discarded), then 5 × B/10 averaged",
        "rqmc": "16 scrambled Sobol sets of 2^m points, 16·2^m ≤ B",
        "madnis": "defaults, 10/11·B training calls (batches of 1024), B/11 fresh calls",
        "break-even": (f"{', '.join(be_cases)}; rtol {args.breakeven_rtol:g}, flowint cap "
                       f"{args.breakeven_flowint_cap:,}, vegas neval "
                       f"{args.breakeven_vegas_neval:,}, cap {args.breakeven_vegas_cap:,}")
        if be_cases else "off",
    }
    command = "python benchmarks/equal_cost.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    carried = common.load_rows(args.carry) if args.carry else []
    if args.carry:
        settings["carried"] = (f"records of the methods not run here, from {args.carry.name} "
                               "(marked `carried` in each record)")
    old = [] if args.fresh else common.load_rows(out)
    keys = {_key(r) for r in old}
    for path in args.merge:
        for r in common.load_rows(path):
            if _key(r) not in keys:
                old.append(r)
                keys.add(_key(r))
    done = {_key(r): r for r in old if not _failed(r)}  # failed rows are run again
    plan: list[tuple] = [("cost", spec, b, seed) for b in budgets for spec in cases
                         for seed in seeds]
    be_seeds = ([s for group in args.breakeven_seeds for s in group] if args.breakeven_seeds
                else [args.seed])
    plan += [("breakeven", spec, seed) for spec in be_cases for seed in be_seeds]
    rows: list[dict[str, Any]] = []
    used: set[tuple] = set()

    def current() -> list[dict[str, Any]]:  # this run's rows, then those of earlier runs
        return rows + [r for r in old if _key(r) not in used]

    for i, item in enumerate(plan, 1):
        if item[0] == "cost":
            _, spec, b, seed = item
            # a carried row holds the carried methods too: its key must say so to resume
            key = ("cost", spec, b, seed, tuple(carry(
                {"spec": spec, "budget": b, "seed": seed, "methods": list(args.methods),
                 "records": []}, carried)["methods"]))
            label = f"{spec} at {b:,} calls, seed {seed}"
        else:
            _, spec, seed = item
            key = ("breakeven", spec, seed, args.breakeven_rtol,
                   args.breakeven_flowint_cap, args.breakeven_vegas_cap,
                   args.breakeven_vegas_neval)
            label = f"{spec} break-even (rtol {args.breakeven_rtol:g}), seed {seed}"
        used.add(key)
        if key in done:
            rows.append(done[key])
            print(f"[{i}/{len(plan)}] {label}: already in {out}, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        print(f"[{i}/{len(plan)}] {label} ...", flush=True)
        if item[0] == "cost":
            row = carry(run_case(spec, b, seed, args.methods), carried)
            q = goal(row)
            summary = (f"flowint err / best right ({q['best']}) {common.fmt(q['err_ratio'])}, "
                       f"sdev ratio {common.fmt(q['sdev_ratio'])}"
                       + (f"  <-- MISS: {'; '.join(q['misses'])}" if q["misses"] else ""))
        else:
            row = run_breakeven(spec, seed, rtol=args.breakeven_rtol,
                                flowint_cap=args.breakeven_flowint_cap,
                                vegas_cap=args.breakeven_vegas_cap,
                                vegas_neval=args.breakeven_vegas_neval)
            q = breakeven(row)
            summary = f"c* = {q['text']} µs/call, goal: {q['goal']}"
        rows.append(row)
        write(out, current(), settings, command)
        print(f"    {summary} ({time.perf_counter() - t0:.0f} s)", flush=True)
    final = current()
    write(out, final, settings, command)
    print(tables(final))
    misses = [f"{spec} @ {b:,}" for (spec, b), g in seed_groups(final).items()
              if (over_seeds(g) if len(g) > 1 else goal(g[0]))["misses"]]
    misses += [f"{r['spec']} break-even" for r in final
               if r.get("kind") == "breakeven" and breakeven(r)["goal"].startswith("MISS")]
    print(f"rows missing the goal: {', '.join(misses) if misses else 'none'}")
    print(f"written: {out}")
    return final


if __name__ == "__main__":
    main()
