"""Equal-budget comparison: flowint, vegas, MadNIS, plain Monte Carlo and scipy's qmc_quad.

Every method gets the same integrand calls: ``n_train`` for adaptation (default 10⁶) and
``n_final`` for the final estimate (default 10⁵); methods that do not adapt (plain MC,
qmc_quad) get all ``n_train + n_final`` calls for their estimate. For each integrand the
table gives the relative standard deviation per sample σ(f/q)/|I| (lower is better; for
vegas and qmc_quad the effective sdev·√n_final/|I|), the pull (mean − exact)/sdev, the
unweighting efficiency ⟨|w|⟩/max|w| and the wall time; then the ratio flowint/vegas of the
relative std. Separable integrands where flowint's rel std is more than 1.5× vegas's are
flagged (a target of issue 4: a flow must not lose badly where VEGAS's grid is exact).

Peers' published figures for the camel at this budget are in REFERENCES.md §3 (vegas 6.4.1:
0.016, 0.256, 1.63, 16–33 at d = 2, 4, 8, 16; MadNIS 1.0.0: 0.105, 0.33, 0.37, 0.43 with one
peak missed at d = 16).

Usage::

    python benchmarks/equal_budget.py                 # 13 integrands, 1e6 + 1e5 calls
    python benchmarks/equal_budget.py --quick         # 7 integrands, 1e5 + 2e4 (~4 min)
    python benchmarks/equal_budget.py --cases camel:dim=8 --train 2e6 --final 2e5 --seed 3
    python benchmarks/equal_budget.py --methods flowint vegas

Writes ``results/equal_budget.md`` (``equal_budget_quick.md`` with ``--quick``), flushed after
every integrand; rerunning with the same ``--out`` and settings skips integrands already there.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["CASES", "QUICK_CASES", "METHODS", "SEPARABLE_LIMIT", "main", "run_case", "ratios"]

CASES = [
    "camel:dim=2", "camel:dim=4", "camel:dim=8", "camel:dim=16", "camel:dim=32",
    "gaussian:dim=4", "gaussian:dim=16",
    "gaussian_genz:dim=4", "product_peak:dim=8",   # separable Genz families
    "polynomial:dim=18", "annulus", "signed_camel:dim=2", "signed_camel:dim=4",
]
QUICK_CASES = ["camel:dim=2", "camel:dim=4", "camel:dim=8", "gaussian:dim=4",
               "gaussian_genz:dim=4", "annulus", "signed_camel:dim=2"]
METHODS = ["flowint", "vegas", "madnis", "plain-mc", "qmc_quad"]
SEPARABLE_LIMIT = 1.5

COLUMNS = ["integrand", "method", "status", "calls", "mean", "sdev", "rel std/sample",
           "pull", "unw. eff.", "time s"]
RATIO_COLUMNS = ["integrand", "separable", "rel std flowint/vegas", "time flowint/vegas",
                 "flag"]


def run_case(spec: str, n_train: int, n_final: int, seed: int,
             methods: Sequence[str] = METHODS) -> dict[str, Any]:
    """All ``methods`` on one integrand; returns ``{"spec", "separable", "records"}``."""
    import integrands

    f = integrands.get(spec)
    records = []
    for m in methods:
        rec = common.RUNNERS[m](f, n_train, n_final, seed)
        rec.case = spec
        records.append(asdict(rec))
    return {"spec": spec, "separable": bool(f.separable),
            "sign_changing": bool(f.sign_changing), "exact": float(f.exact),
            "n_train": n_train, "n_final": n_final, "seed": seed, "records": records}


def _by_method(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["method"]: r for r in row["records"]}


def ratios(row: dict[str, Any]) -> dict[str, Any]:
    """flowint/vegas ratios of one row and the separable-integrand flag."""
    by = _by_method(row)
    fl, ve = by.get("flowint"), by.get("vegas")
    if not fl or not ve or fl["status"] != "ok" or ve["status"] != "ok":
        return {"rel_std": math.nan, "time": math.nan, "flag": ""}
    rs = common.as_float(fl["rel_std"]) / common.as_float(ve["rel_std"])
    tm = common.as_float(fl["wall_time"]) / common.as_float(ve["wall_time"])
    flag = ""
    if row["separable"] and rs > SEPARABLE_LIMIT:
        flag = f"separable, flowint > {SEPARABLE_LIMIT}× vegas"
    return {"rel_std": rs, "time": tm, "flag": flag}


def tables(rows: Sequence[dict[str, Any]]) -> str:
    main_rows, ratio_rows = [], []
    for row in rows:
        for r in row["records"]:
            ok = r["status"] == "ok"
            main_rows.append([row["spec"], r["method"], r["status"],
                              r["n_evals"] if ok else "—",
                              common.fmt(common.as_float(r["mean"]), 6),
                              common.fmt(common.as_float(r["sdev"]), 2),
                              common.fmt(common.as_float(r["rel_std"])),
                              common.fmt(common.as_float(r["pull"]), 2),
                              common.fmt(common.as_float(r["unweighting_efficiency"]), 2),
                              common.fmt(common.as_float(r["wall_time"]), 2)])
        q = ratios(row)
        ratio_rows.append([row["spec"], "yes" if row["separable"] else "no",
                           common.fmt(q["rel_std"]), common.fmt(q["time"]), q["flag"] or "—"])
    return (common.markdown_table(COLUMNS, main_rows) + "\n"
            + common.markdown_table(RATIO_COLUMNS, ratio_rows))


NOTES = """
Columns: *calls* all integrand calls (training included; plain-mc and qmc_quad spend them all
on the estimate); *rel std/sample* σ(f/q)/|I| (vegas, qmc_quad, madnis: sdev·√n_final/|I|);
*pull* (mean − exact)/sdev; *unw. eff.* ⟨|w|⟩/max|w| of the final weights (vegas: of a
separate pass of its stratified sampler, not counted in calls or time); *time s* wall seconds
of training and estimate. Ratio table: flowint/vegas (below 1: flowint better); *flag* marks
separable integrands where flowint's rel std exceeds {limit}× vegas's.

Published peers at 10⁶ + 10⁵ calls on the camel (REFERENCES.md §3), rel std per sample:
vegas 6.4.1 0.016 / 0.256 / 1.63 / 16–33 and MadNIS 1.0.0 0.105 / 0.33 / 0.37 / 0.43 (one peak
only) at d = 2 / 4 / 8 / 16.
"""


def write(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
          command: str) -> None:
    text = common.header("Equal-budget comparison", command, settings)
    text += "\n" + tables(rows) + NOTES.format(limit=SEPARABLE_LIMIT)
    text += "\n" + common.save_rows_comment(rows)
    common.write_atomic(path, text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"{len(QUICK_CASES)} integrands at 1e5 + 2e4 calls (a few minutes)")
    p.add_argument("--cases", nargs="+", default=None, help="registry specifications")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--train", type=lambda s: int(float(s)), default=None,
                   help="training calls (default 1e6, --quick 1e5)")
    p.add_argument("--final", type=lambda s: int(float(s)), default=None,
                   help="final-estimate calls (default 1e5, --quick 2e4)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None,
                   help="markdown file (default results/equal_budget.md, "
                        "--quick results/equal_budget_quick.md)")
    p.add_argument("--fresh", action="store_true", help="ignore rows already in --out")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = build_parser().parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else CASES)
    n_train = args.train if args.train is not None else (100_000 if args.quick else 1_000_000)
    n_final = args.final if args.final is not None else (20_000 if args.quick else 100_000)
    out = args.out or common.RESULTS_DIR / ("equal_budget_quick.md" if args.quick
                                            else "equal_budget.md")
    settings = {"cases": ", ".join(cases), "methods": ", ".join(args.methods),
                "training calls": f"{n_train:,}", "final calls": f"{n_final:,}",
                "seed": args.seed, "flowint": "Integrator defaults, train(n_train), "
                "estimate(n_final)", "vegas": f"10 iterations of {n_train // 10:,}, then "
                "adapt=False", "qmc_quad": "8 scrambled Halton sets"}
    command = "python benchmarks/equal_budget.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    done = {} if args.fresh else {
        (r["spec"], r["n_train"], r["n_final"], r["seed"]): r for r in common.load_rows(out)
        if [x["method"] for x in r["records"]] == list(args.methods)}
    rows: list[dict[str, Any]] = []
    for i, spec in enumerate(cases, 1):
        key = (spec, n_train, n_final, args.seed)
        if key in done:
            rows.append(done[key])
            print(f"[{i}/{len(cases)}] {spec}: already in {out}, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        print(f"[{i}/{len(cases)}] {spec} ...", flush=True)
        row = run_case(spec, n_train, n_final, args.seed, args.methods)
        rows.append(row)
        write(out, rows, settings, command)
        by = _by_method(row)
        parts = [f"{m} {common.fmt(common.as_float(r['rel_std']))}"
                 if r["status"] == "ok" else f"{m} {r['status']}" for m, r in by.items()]
        q = ratios(row)
        print(f"    rel std: {', '.join(parts)}; flowint/vegas {common.fmt(q['rel_std'])}"
              f"{'  <-- ' + q['flag'] if q['flag'] else ''} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    write(out, rows, settings, command)
    print(tables(rows))
    flagged = [r["spec"] for r in rows if ratios(r)["flag"]]
    print("flagged (separable, flowint rel std > "
          f"{SEPARABLE_LIMIT}× vegas): {', '.join(flagged) if flagged else 'none'}")
    print(f"written: {out}")
    return rows


if __name__ == "__main__":
    main()
