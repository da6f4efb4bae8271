"""Plain RQMC in fewer, larger randomizations, and how honest its error bar is per scrambling.

A quasi-random estimate of ``N`` calls is the mean of ``K`` independently scrambled sets of
``N / K`` points; its error bar is the spread of the ``K`` set means (``K − 1`` degrees of
freedom). Where the variance of one set's mean falls as ``n^-a`` with ``a > 1``, fewer and larger
sets give a smaller error: ``(K / K')^(a-1)`` in variance going from ``K`` to ``K'`` sets. What
they cost is the error bar's own precision (Student's t with ``K' − 1`` degrees of freedom) —
and that t law holds only if the set means are close to normal. This script measures both, on
the points ``flowint`` itself draws (``flowint.run.sobol``), for each of its two scramblings:
nested uniform (the default) and linear matrix scrambling with a digital shift (scipy's), and
for the higher-order points of the policy's interlaced candidate (nested-scrambled points in
twice the dimensions, digits interlaced: ``flowint.run.interlaced``).

1. **Error at equal calls**: per integrand, at ``N = 2^20`` calls in 16, 8 and 4 sets, the RMS
   error over seeds, its ratio to 16 sets, the share of pulls within ±1 against Student's t
   with ``K − 1`` degrees of freedom, the share beyond ±3 (t7: 2.0 %; t15: 0.9 %) and the RMS
   pull (1.18 and 1.07).
2. **Calibration**: on the smooth integrands whose error bars the policy coverage study found
   too small (gaussian 2-D, camel 2-D, polynomial 4-D), many repetitions of 16 sets of 4,096
   points and of 8 sets of 8,192: the shares of pulls within ±1 and ±2, against Student's t
   and ± two binomial standard deviations. The linear scrambling's set means are heavy-tailed
   there (most sets very accurate, a few far off), its pulls bunch near ±1 and too few fall
   within ±1; ``flowint.run.model.final_sizes`` takes 8 to 15 sets only because the nested
   scrambling's pulls follow the t law.

Usage::

    python benchmarks/rqmc_sets.py                  # 5 integrands x 60 seeds, 3 x 600 reps
    python benchmarks/rqmc_sets.py --seeds 20 --cases camel:dim=2 --reps 0 --out /tmp/sets.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from policy_coverage import coverage_t  # noqa: E402

__all__ = ["CALIBRATION_CASES", "CALIBRATION_SETS", "CASES", "SCRAMBLES", "SETS", "calibrate",
           "main", "points", "run_case"]

CASES = ["camel:dim=2", "signed_camel:dim=2", "annulus", "camel:dim=4", "gaussian_genz:dim=4"]
SETS = (16, 8, 4)
SCRAMBLES = ("nested", "linear", "interlaced")
CALIBRATION_CASES = ["gaussian:dim=2", "camel:dim=2", "polynomial:dim=4"]
#: (sets, points per set) of the calibration part.
CALIBRATION_SETS = ((16, 4096), (8, 8192))
HERE = Path(__file__).resolve().parent


def points(n: int, dim: int, rng: np.random.Generator, scramble: str) -> np.ndarray:
    """One randomization of ``n`` points: a scrambled Sobol set (``"nested"``, ``"linear"``),
    or a nested-scrambled one in ``2·dim`` dimensions with its digits interlaced
    (``"interlaced"``, :mod:`flowint.run.interlaced`)."""
    from flowint.run.interlaced import interlace
    from flowint.run.sobol import scrambled_sobol_array

    if scramble == "interlaced":
        return interlace(scrambled_sobol_array(n, 2 * dim, rng, "nested"))
    return scrambled_sobol_array(n, dim, rng, scramble)


def _pulls(f, k: int, n: int, reps: int, rng: np.random.Generator, scramble: str,
           ) -> tuple[np.ndarray, np.ndarray]:
    """Errors and pulls of ``reps`` estimates of ``k`` sets of ``n`` points."""
    errs, pulls = [], []
    for _ in range(reps):
        means = np.array([float(f(torch.as_tensor(points(n, f.dim, rng, scramble)))
                                .double().mean()) for _ in range(k)])
        mean, sdev = means.mean(), means.std(ddof=1) / math.sqrt(k)
        errs.append(mean - f.exact)
        pulls.append((mean - f.exact) / sdev)
    return np.array(errs), np.array(pulls)


def run_case(spec: str, calls_log2: int, seeds: int, sets: Sequence[int] = SETS,
             scramble: str = "nested") -> dict[int, dict[str, float]]:
    """For each number of sets ``K``: RMS error, shares of ``|pull| < 1`` and ``≥ 3`` and RMS
    pull of plain RQMC with ``K`` sets of ``2^calls_log2 / K`` points, over ``seeds`` seeds."""
    import integrands

    f = integrands.get(spec)
    out = {}
    for k in sets:
        errs, pulls = [], []
        for seed in range(seeds):
            e, p = _pulls(f, k, 2**calls_log2 // k, 1, np.random.default_rng([k, seed]), scramble)
            errs.append(e[0])
            pulls.append(p[0])
        e, p = np.array(errs), np.array(pulls)
        out[k] = {"rms": float(np.sqrt((e**2).mean())), "tail3": float((np.abs(p) >= 3).mean()),
                  "rms_pull": float(np.sqrt((p**2).mean())),
                  "within1": float((np.abs(p) < 1).mean())}
    return out


def calibrate(spec: str, k: int, n: int, reps: int, scramble: str, seed: int = 0,
              ) -> dict[str, float]:
    """Shares of ``reps`` pulls (``k`` sets of ``n`` points) within ±1 and ±2, the Student-t
    shares and two binomial standard deviations of each."""
    import integrands

    f = integrands.get(spec)
    _, p = _pulls(f, k, n, reps, np.random.default_rng([seed, k, n]), scramble)
    out = {}
    for level in (1, 2):
        ref = coverage_t(float(level), k - 1)
        out[f"within{level}"] = float((np.abs(p) < level).mean())
        out[f"t{level}"] = ref
        out[f"band{level}"] = 2 * math.sqrt(ref * (1 - ref) / reps)
    return out


def _error_rows(args: argparse.Namespace) -> list[list]:
    rows = []
    for spec in args.cases:
        for scramble in args.scrambles:
            t0 = time.perf_counter()
            res = run_case(spec, args.calls_log2, args.seeds, scramble=scramble)
            base = res[SETS[0]]["rms"]
            for k, r in res.items():
                rows.append([spec, scramble, k, 2**args.calls_log2 // k, r["rms"], r["rms"] / base,
                             100 * r["within1"], 100 * coverage_t(1.0, k - 1), 100 * r["tail3"],
                             r["rms_pull"]])
            print(f"{spec} {scramble}: " + ", ".join(f"K={k} {r['rms'] / base:.2f}x"
                                                     for k, r in res.items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows


def _calibration_rows(args: argparse.Namespace) -> list[list]:
    rows = []
    for spec in args.calibration_cases:
        for k, n in CALIBRATION_SETS:
            for scramble in args.scrambles:
                c = calibrate(spec, k, n, args.reps, scramble)
                verdict = "ok" if all(abs(c[f"within{lv}"] - c[f"t{lv}"]) <= c[f"band{lv}"]
                                      for lv in (1, 2)) else "outside"
                rows.append([spec, scramble, k, n, args.reps]
                            + [f"{100 * c[f'within{lv}']:.1f} ({100 * c[f't{lv}']:.1f} ± "
                               f"{100 * c[f'band{lv}']:.1f})" for lv in (1, 2)] + [verdict])
                print(f"calibration {spec} {scramble} {k}x{n}: {rows[-1][5]} / {rows[-1][6]}",
                      flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES)
    p.add_argument("--seeds", type=int, default=60)
    p.add_argument("--calls-log2", type=int, default=20)
    p.add_argument("--scrambles", nargs="+", choices=SCRAMBLES, default=list(SCRAMBLES))
    p.add_argument("--calibration-cases", nargs="+", default=CALIBRATION_CASES)
    p.add_argument("--reps", type=int, default=600, help="repetitions per calibration row "
                   "(0: no calibration part)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "rqmc_sets.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = _error_rows(args)
    cal = _calibration_rows(args) if args.reps > 0 else []
    command = "python benchmarks/rqmc_sets.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    text = common.header("Plain RQMC in fewer, larger randomizations, per scrambling",
                         command.strip(), {"calls": f"2^{args.calls_log2}", "seeds": args.seeds,
                                           "points": "flowint.run.sobol",
                                           "calibration repetitions": args.reps})
    text += "\n## Error at equal calls\n\n" + common.markdown_table(
        ["case", "scrambling", "sets K", "points per set", "RMS error", "÷ RMS error at K=16",
         "pulls within ±1 (%)", "Student t within ±1 (%)", "pulls beyond ±3 (%)", "RMS pull"],
        rows)
    if cal:
        text += ("\n## Calibration of the error bar\n\nShare of pulls within ±1 and ±2 (%), "
                 "Student's t with K − 1 degrees of freedom ± two binomial standard deviations "
                 "in brackets; `ok` when both shares lie inside their band.\n\n"
                 + common.markdown_table(["case", "scrambling", "sets K", "points per set",
                                          "repetitions", "within ±1 (t ± 2 sd)",
                                          "within ±2 (t ± 2 sd)", "t law"], cal))
    common.write_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
