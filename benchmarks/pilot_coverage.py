"""Error bars of runs with an error target, where the quasi-random pilot often decides.

``flowint.integrate(f, d, rtol=...)`` first tries the untrained flow with scrambled-Sobol
randomizations and stops there when that meets the target cheaply (see
:meth:`flowint.Integrator.__call__`). This script checks that the error bars it then reports
are honest: for each integrand it runs many seeds and counts the runs within 1σ, 2σ and 3σ of
the exact value, next to how many runs the pilot alone finished. With 32 randomizations the
standardised error follows Student's t with 31 degrees of freedom: 67.5 / 94.6 / 99.5 %.

Usage::

    python benchmarks/pilot_coverage.py            # 5 integrands x 40 seeds (~5 min)
    python benchmarks/pilot_coverage.py --quick    # 3 integrands x 10 seeds
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import flowint  # noqa: E402
import integrands  # noqa: E402

__all__ = ["CASES", "run", "main"]

#: (registry specification, relative precision asked for)
CASES = [("polynomial:dim=18", 1e-5), ("polynomial:dim=4", 1e-5), ("camel:dim=2", 1e-4),
         ("gaussian:dim=2", 1e-4), ("toploop", 1e-3)]


def run(cases: list[tuple[str, float]], seeds: range,
        budget: int) -> tuple[list[dict], list[float]]:
    """One row per integrand (coverage over ``seeds``, the pilot's share), and all pulls."""
    rows, every_pull = [], []
    for spec, rtol in cases:
        f = integrands.get(spec)
        pulls, pilot_only, calls = [], 0, []
        t0 = time.perf_counter()
        for seed in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # counted, not printed
                r = flowint.integrate(f, f.dim, budget=budget, rtol=rtol, seed=seed,
                                      progress=False)
            pulls.append((r.mean - f.exact) / r.sdev)
            pilot_only += all(h.phase == "final" for h in r.history)
            calls.append(r.n_evals)
        n = len(pulls)
        every_pull += pulls
        within = [100.0 * sum(abs(p) < k for p in pulls) / n for k in (1, 2, 3)]
        rows.append({
            "integrand": spec, "rtol": f"{rtol:g}", "runs": n,
            "pilot only": f"{pilot_only}/{n}",
            "median calls": f"{sorted(calls)[n // 2]:,}",
            "within 1σ (%)": f"{within[0]:.0f}", "within 2σ (%)": f"{within[1]:.0f}",
            "within 3σ (%)": f"{within[2]:.0f}",
            "max abs pull": f"{max(abs(p) for p in pulls):.2f}",
            "wall s": f"{time.perf_counter() - t0:.0f}",
        })
        print(" | ".join(str(v) for v in rows[-1].values()), flush=True)
    return rows, every_pull


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 integrands x 10 seeds")
    p.add_argument("--seeds", type=int, default=None, help="runs per integrand (default 40)")
    p.add_argument("--first-seed", type=int, default=100)
    p.add_argument("--budget", type=float, default=3e6, help="cap on calls per run")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    cases = CASES[:3] if args.quick else CASES
    n_seeds = args.seeds or (10 if args.quick else 40)
    seeds = range(args.first_seed, args.first_seed + n_seeds)
    rows, pulls = run(cases, seeds, int(args.budget))
    default = "pilot_coverage_quick.md" if args.quick else "pilot_coverage.md"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / default
    command = "python benchmarks/pilot_coverage.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {"cases": ", ".join(f"{s} (rtol {r:g})" for s, r in cases),
                "seeds": f"{seeds.start}..{seeds.stop - 1}", "budget cap": f"{int(args.budget):,}",
                "flowint": "integrate(f, d, budget=cap, rtol=rtol), defaults otherwise"}
    pooled = [100.0 * sum(abs(x) < k for x in pulls) / len(pulls) for k in (1, 2, 3)]
    text = (common.header("Error bars with an error target (quasi-random pilot)",
                          command.strip(), settings)
            + "\n" + common.markdown_table(list(rows[0]), [list(r.values()) for r in rows])
            + f"\nPooled over {len(pulls)} runs: {pooled[0]:.1f} / {pooled[1]:.1f} / "
              f"{pooled[2]:.1f} % within 1σ / 2σ / 3σ (t with 31 degrees of freedom: "
              "67.5 / 94.6 / 99.5 %).\n")
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
