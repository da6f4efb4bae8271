"""The i-flow Table III protocol: integrand calls to reach a relative precision, and the pull.

For each case of the i-flow test set (REFERENCES.md §1; Gao, Isaacson, Krause,
arXiv:2001.05486, Table III) both methods run in the same process, on the same machine:

- **flowint**: ``flowint.integrate(f, d, budget=cap, rtol=target, seed=seed)``; its calls are
  all the integrand calls it made, training included (``Result.n_evals``).
- **vegas** (6.x): the i-flow authors' protocol: adaptive iterations of 5000 points, all
  iterations combined by inverse-variance weighting (as vegas does), until
  ``sdev/|mean| <= target`` or ``cap`` calls.

Target: 1e-4 (1e-5 for the polynomial), as in the paper. The published calls of i-flow and of
VEGAS are shown beside the measured ones. ``beats both`` is ``yes`` when flowint reached the
target with ``|pull| < 3`` in fewer calls than i-flow's published count and than the better
*correct* VEGAS count (published or this run's; a VEGAS result with ``|pull| >= 3`` or that
missed the target sets no bar). When the target differs from the paper's (``--quick``,
``--target``), published counts are not comparable: the column then compares with this run's
vegas only and says so.

Usage::

    python benchmarks/iflow_table.py                  # all 14 rows, 1e-4 / 1e-5, cap 5e7
    python benchmarks/iflow_table.py --quick          # 4 rows at 1e-3, cap 3e5 (~3 min)
    python benchmarks/iflow_table.py --cases camel:dim=8 annulus --cap 2e7 --seed 3

The table is rewritten after every row (with a machine-readable copy of each row in HTML
comments); rerunning with the same ``--out`` skips rows already there (``--fresh`` to redo).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["CASES", "PUBLISHED", "QUICK_CASES", "main", "run_case", "run_flowint_to",
           "run_vegas_to", "table"]

#: Registry specification -> label of the paper's row.
CASES: dict[str, str] = {
    "gaussian:dim=2": "gaussian 2d",
    "gaussian:dim=4": "gaussian 4d",
    "gaussian:dim=8": "gaussian 8d",
    "gaussian:dim=16": "gaussian 16d",
    "camel:dim=2": "camel 2d",
    "camel:dim=4": "camel 4d",
    "camel:dim=8": "camel 8d",
    "camel:dim=16": "camel 16d",
    "circles": "circles 2d",
    "annulus": "annulus 2d",
    "toploop": "top loop 3d",
    "polynomial:dim=18": "polynomial 18d",
    "polynomial:dim=54": "polynomial 54d",
    "polynomial:dim=96": "polynomial 96d",
}
QUICK_CASES = ["gaussian:dim=2", "camel:dim=2", "camel:dim=4", "annulus"]

#: Published calls (i-flow, VEGAS) at 1e-4 (1e-5 polynomial), REFERENCES.md §1 (i-flow
#: Table III, runs.log). A string marks a lower bound or a wrong result.
PUBLISHED: dict[str, tuple[int, int | str]] = {
    "gaussian 2d": (2_310_000, 164_436),
    "gaussian 4d": (2_285_000, 631_874),
    "gaussian 8d": (3_095_000, 1_299_718),
    "gaussian 16d": (7_230_000, 2_772_216),
    "camel 2d": (2_225_000, 421_475),
    "camel 4d": (8_220_000, 24_139_889),
    "camel 8d": (19_460_000, ">50,001,768"),
    "camel 16d": (32_145_000, "993,294 (wrong, pull −5001)"),
    "circles 2d": (23_105_000, "43,367,192 (pull −3.63)"),
    "annulus 2d": (17_435_000, "4,981,080 (pull −13.6)"),
    "top loop 3d": (685_000, 152_957),
    "polynomial 18d": (585_000, "42,756,678 (pull −3.61)"),
    "polynomial 54d": (685_000, ">50,002,470"),
    "polynomial 96d": (1_145_000, ">50,002,470"),
}
PAPER_TARGET = 1e-4
POINTS_PER_ITERATION = 5000

COLUMNS = ["case", "target", "flowint calls", "flowint pull", "flowint s", "vegas calls",
           "vegas pull", "vegas s", "i-flow calls (pub.)", "VEGAS calls (pub.)", "beats both"]


def target_for(spec: str, base: float) -> float:
    """The paper asks ten times more precision of the polynomial."""
    return base / 10 if spec.startswith("polynomial") else base


def run_flowint_to(f: Any, target: float, cap: int, seed: int) -> dict[str, Any]:
    """flowint until ``sdev/|mean| <= target`` or ``cap`` calls (training included)."""
    import flowint

    t0 = time.perf_counter()
    r = flowint.integrate(f, f.dim, budget=cap, rtol=target, seed=seed, progress=False)
    return {"calls": int(r.n_evals), "mean": r.mean, "sdev": r.sdev,
            "reached": bool(r.rel_error <= target), "pull": r.pull(f.exact),
            "time": time.perf_counter() - t0}


def run_vegas_to(f: Any, target: float, cap: int, seed: int,
                 neval: int = POINTS_PER_ITERATION) -> dict[str, Any]:
    """vegas iterations of ``neval`` points, all combined by inverse-variance weights, until
    ``sdev/|mean| <= target`` or ``cap`` calls."""
    import vegas

    count = common.Counter(f.numpy)
    F = vegas.lbatchintegrand(count)
    integ = common._vegas_integrator(f.dim, seed)
    t0 = time.perf_counter()
    sw = swm = 0.0
    mean = sdev = math.nan
    reached = False
    while count.n < cap:
        r = integ(F, nitn=1, neval=neval)
        s = float(r.sdev)
        if s > 0 and math.isfinite(s):
            sw += 1.0 / s**2
            swm += float(r.mean) / s**2
            mean, sdev = swm / sw, 1.0 / math.sqrt(sw)
        elif s == 0 and math.isnan(mean):
            mean, sdev = float(r.mean), 0.0
        if mean != 0 and math.isfinite(mean) and sdev / abs(mean) <= target:
            reached = True
            break
    pull = common._pull(mean, sdev, float(f.exact))
    return {"calls": count.n, "mean": mean, "sdev": sdev, "reached": reached, "pull": pull,
            "time": time.perf_counter() - t0}


def run_case(spec: str, target: float, cap: int, seed: int) -> dict[str, Any]:
    """One row: both methods on one integrand."""
    import integrands

    f = integrands.get(spec)
    label = CASES.get(spec, spec)
    row: dict[str, Any] = {"spec": spec, "label": label, "target": target, "cap": cap,
                           "seed": seed}
    for name, fn in (("flowint", run_flowint_to), ("vegas", run_vegas_to)):
        try:
            row[name] = fn(f, target, cap, seed)
        except Exception as exc:
            row[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return row


def _calls(d: dict[str, Any]) -> str:
    if "error" in d:
        return "error"
    return common.fmt(d["calls"]) if d["reached"] else f">{common.fmt(d['calls'])}"


def _good(d: dict[str, Any]) -> bool:
    return "error" not in d and d["reached"] and abs(common.as_float(d["pull"])) < 3


def beats_both(row: dict[str, Any], paper_target: bool) -> str:
    """See the module docstring."""
    fl, ve = row["flowint"], row["vegas"]
    if not _good(fl):
        return "no (flowint missed target or pull ≥ 3σ)"
    bars = [ve["calls"]] if _good(ve) else []
    if not paper_target:
        if not bars:
            return "yes vs this run's vegas only (vegas failed)"
        return ("yes" if fl["calls"] < min(bars) else "no") + " (vs this run's vegas only)"
    pub_iflow, pub_vegas = PUBLISHED.get(row["label"], (None, None))
    if isinstance(pub_vegas, int):
        bars.append(pub_vegas)
    if pub_iflow is not None:
        bars.append(pub_iflow)
    return "yes" if all(fl["calls"] < b for b in bars) else "no"


def table(rows: Sequence[dict[str, Any]], paper_target: bool) -> str:
    out = []
    for row in rows:
        fl, ve = row["flowint"], row["vegas"]
        pub_iflow, pub_vegas = PUBLISHED.get(row["label"], (None, None))
        out.append([row["label"], common.fmt(row["target"]), _calls(fl),
                    common.fmt(common.as_float(fl.get("pull"))),
                    common.fmt(common.as_float(fl.get("time"))),
                    _calls(ve), common.fmt(common.as_float(ve.get("pull"))),
                    common.fmt(common.as_float(ve.get("time"))),
                    common.fmt(pub_iflow), common.fmt(pub_vegas),
                    beats_both(row, paper_target)])
    return common.markdown_table(COLUMNS, out)


def write(path: Path, rows: list[dict[str, Any]], settings: dict[str, Any],
          command: str, paper_target: bool) -> None:
    text = common.header("i-flow Table III protocol: calls to reach a relative precision",
                         command, settings)
    text += "\n" + table(rows, paper_target)
    text += ("\nCalls: all integrand calls, training included; `>N`: target not reached within "
             "the cap. Pull: (mean − exact)/sdev of the final value. s: wall seconds. "
             "Published counts (REFERENCES.md §1, i-flow Table III) are at 1e-4 (1e-5 for the "
             "polynomial).\n")
    if not paper_target:
        text += ("\n**Target differs from the paper's: published counts are shown for "
                 "orientation only and are not compared.**\n")
    text += "\n" + common.save_rows_comment(rows)
    common.write_atomic(path, text)


def parse_count(text: str) -> int:
    return int(float(text))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="4 rows at relative precision 1e-3, cap 3e5 (a few minutes)")
    p.add_argument("--cases", nargs="+", default=None,
                   help="registry specifications (default: the 14 rows of Table III)")
    p.add_argument("--target", type=float, default=None,
                   help="relative precision (default 1e-4, --quick 1e-3; polynomial ÷10)")
    p.add_argument("--cap", type=parse_count, default=None,
                   help="most calls per method and row (default 5e7, --quick 3e5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=None,
                   help="markdown file (default results/iflow_table.md, "
                        "--quick results/iflow_table_quick.md)")
    p.add_argument("--fresh", action="store_true", help="ignore rows already in --out")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = build_parser().parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else list(CASES))
    base = args.target if args.target is not None else (1e-3 if args.quick else PAPER_TARGET)
    cap = args.cap if args.cap is not None else (300_000 if args.quick else 50_000_000)
    out = args.out or common.RESULTS_DIR / ("iflow_table_quick.md" if args.quick
                                            else "iflow_table.md")
    paper_target = base == PAPER_TARGET
    settings = {"cases": ", ".join(cases), "target": f"{base:g} (polynomial {base / 10:g})",
                "cap (calls per method and row)": f"{cap:,}", "seed": args.seed,
                "vegas": f"iterations of {POINTS_PER_ITERATION} points, inverse-variance "
                         "combined", "flowint": "integrate(f, d, budget=cap, rtol=target)"}
    command = "python benchmarks/iflow_table.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    done = {} if args.fresh else {
        (r["spec"], r["target"], r["cap"], r["seed"]): r for r in common.load_rows(out)}
    rows: list[dict[str, Any]] = []
    for i, spec in enumerate(cases, 1):
        target = target_for(spec, base)
        key = (spec, target, cap, args.seed)
        if key in done:
            rows.append(done[key])
            print(f"[{i}/{len(cases)}] {spec}: already in {out}, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        print(f"[{i}/{len(cases)}] {spec} (target {target:g}, cap {cap:,}) ...", flush=True)
        row = run_case(spec, target, cap, args.seed)
        rows.append(row)
        write(out, rows, settings, command, paper_target)
        print(f"    flowint {_calls(row['flowint'])} calls, pull "
              f"{common.fmt(common.as_float(row['flowint'].get('pull')))}; vegas "
              f"{_calls(row['vegas'])} calls, pull "
              f"{common.fmt(common.as_float(row['vegas'].get('pull')))} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    write(out, rows, settings, command, paper_target)
    print(table(rows, paper_target))
    print(f"written: {out}")
    return rows


if __name__ == "__main__":
    main()
