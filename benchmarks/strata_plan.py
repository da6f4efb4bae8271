"""What the policy's stratified-sets candidate sees, per integrand and seed, and where runs end.

For each integrand, budget and seed, one ``flowint.integrate`` call with the defaults, and what
its policy computed about the stratified candidate (``flowint.run.strata``,
``flowint.run.statics``):

- ``m``: cells per axis of its plan; ``zone``: the share of cells with a spread among plain
  RQMC's exploration points in their ``3^dim`` neighbourhood (measured only where it is at
  most ``STRATA_ZONE``);
- ``pred / ident``: the final variance the plan predicts from those points over plain RQMC's
  predicted one (measured only below ``STRATA_GATE``), and plain RQMC's fitted rate ``a``;
- ``ratio``: where measured, the sets' variance over that of i.i.d. points in their cells (a
  jump below ``JUMP_RATIO`` is not believed);
- the sampler the run ended in, its error and pull.

The numbers quoted in ``flowint/run/statics.py`` and ``docs/reliability.md`` come from this
script. It reads the plan by wrapping the policy's own methods, so it changes nothing the run
does.

Usage::

    python benchmarks/strata_plan.py --seeds 20           # 2-D cases, 10^5 and 1.1·10^6
    python benchmarks/strata_plan.py --cases annulus --budgets 1.1e6 --seeds 20 --out /tmp/p.md
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

__all__ = ["BUDGETS", "CASES", "COLUMNS", "main", "run_one"]

CASES = ["annulus", "circles", "discontinuous:dim=2", "camel:dim=2", "signed_camel:dim=2",
         "gaussian:dim=2"]
BUDGETS = (100_000, 1_100_000)
COLUMNS = ["integrand", "budget", "seed", "m", "zone", "pred / ident", "ident a", "measured",
           "ratio", "sampler", "err", "pull"]


def run_one(spec: str, budget: int, seed: int) -> dict[str, Any]:
    """One default call, with what its policy computed about the stratified candidate."""
    import flowint
    import integrands
    from flowint.run.policy import Policy

    seen: dict[str, Any] = {}
    plan_of, ratio_of = Policy.strata_plan, Policy.strata_ratio

    def plan(self, call, ident, left):
        fresh = "strata" not in call
        out = plan_of(self, call, ident, left)
        if fresh and out is not None:
            seen.update(m=out.get("m"), zone=out.get("zone", math.nan),
                        pred=out.get("predicted", math.nan) / ident.var(left), a=ident.a,
                        measured=bool(out.get("measure")))
        return out

    def ratio(self, plan, measures):
        seen["ratio"] = ratio_of(self, plan, measures)
        return seen["ratio"]

    f = integrands.get(spec)
    Policy.strata_plan, Policy.strata_ratio = plan, ratio
    try:
        r = flowint.integrate(f, f.dim, budget=budget, seed=seed, progress=False)
    finally:
        Policy.strata_plan, Policy.strata_ratio = plan_of, ratio_of
    exact = float(f.exact)
    return {"integrand": spec, "budget": budget, "seed": seed, "m": seen.get("m", "—"),
            "zone": seen.get("zone", math.nan), "pred / ident": seen.get("pred", math.nan),
            "ident a": seen.get("a", math.nan), "measured": seen.get("measured", False),
            "ratio": seen.get("ratio", math.nan), "sampler": r.method,
            "err": abs(r.mean - exact), "pull": (r.mean - exact) / r.sdev if r.sdev > 0
            else math.nan}


def _cell(x: Any) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return "—" if math.isnan(x) else f"{x:.3g}"
    return f"{x:,}" if isinstance(x, int) and x >= 10_000 else str(x)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    p.add_argument("--seeds", type=int, default=10, help="seeds 1..N")
    p.add_argument("--out", default=str(common.RESULTS_DIR / "strata_plan.md"))
    args = p.parse_args(argv)
    command = "python benchmarks/strata_plan.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    rows = []
    for spec in args.cases:
        for budget in (int(b) for b in args.budgets):
            t0 = time.perf_counter()
            for seed in range(1, args.seeds + 1):
                rows.append(run_one(spec, budget, seed))
            mine = [r for r in rows if r["integrand"] == spec and r["budget"] == budget]
            print(f"{spec} {budget:,}: measured {sum(r['measured'] for r in mine)} of "
                  f"{len(mine)}, {time.perf_counter() - t0:.0f} s", flush=True)
    from flowint.run.statics import JUMP_RATIO, STRATA_GATE, STRATA_ZONE

    settings = {"cases": ", ".join(args.cases),
                "budgets": ", ".join(f"{int(b):,}" for b in args.budgets),
                "seeds": f"1..{args.seeds}", "flowint": "integrate(f, d, budget=B, seed=s)",
                "thresholds": f"STRATA_ZONE {STRATA_ZONE}, STRATA_GATE {STRATA_GATE:g}, "
                              f"JUMP_RATIO {JUMP_RATIO}"}
    text = common.header("What the stratified candidate sees", command, settings)
    summary = []
    for spec in args.cases:
        for budget in (int(b) for b in args.budgets):
            mine = [r for r in rows if r["integrand"] == spec and r["budget"] == budget]
            ms = [r for r in mine if r["measured"]]

            def span(key: str, rs: list[dict[str, Any]]) -> str:
                v = [r[key] for r in rs if isinstance(r[key], float) and not math.isnan(r[key])]
                return f"{min(v):.3g}–{max(v):.3g}" if v else "—"

            summary.append([spec, f"{budget:,}", len(mine), span("zone", mine),
                            span("pred / ident", mine), span("ident a", mine), len(ms),
                            span("ratio", ms),
                            sum(r["sampler"] == "strata" for r in mine)])
    text += "\n## Over seeds\n\n" + common.markdown_table(
        ["integrand", "budget", "runs", "zone", "pred / ident", "ident a", "measured",
         "ratio (measured)", "ended in strata"], summary)
    text += "\n## Every run\n\n" + common.markdown_table(
        COLUMNS, [[_cell(r[c]) for c in COLUMNS] for r in rows])
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
