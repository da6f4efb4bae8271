"""Figures: error against total calls and against wall seconds, each method with its own recipe.

For each integrand and each total budget B, the equal-cost runners of ``equal_cost.py``
(``common.COST_RUNNERS``: flowint ``integrate(budget=B)``, vegas 5 + 5 iterations of B/10,
plain RQMC with 16 scrambled Sobol sets, MadNIS with 10/11·B training calls) are run once with
one seed. One PNG per integrand, two log-log panels: the relative error against the calls
actually made (training included) and against the wall seconds of the run. Markers: the true
relative error |mean − I|/|I| (filled: |pull| < 3, crosses: |pull| ≥ 3); lines: the reported
relative error sdev/|I|.

Usage::

    python benchmarks/cost_figures.py              # camel 4/8/16-D, gaussian_genz 4-D; 1e4..1e7
    python benchmarks/cost_figures.py --quick      # camel 4-D, gaussian_genz 4-D; 1e4, 1e5
    python benchmarks/cost_figures.py --cases camel:dim=8 --budgets 1e4 1e5 1e6 --seed 2
    python benchmarks/cost_figures.py --methods flowint vegas rqmc

Writes ``results/cost_<integrand>.png`` (dpi 80) and ``results/cost_figures.md`` with every
data point (suffix ``_quick`` with ``--quick``; ``--out DIR`` for another folder). The markdown
is flushed after every (integrand, budget), and a rerun skips the points already there
(except those where a method failed with an error; points of earlier runs with other cases or
budgets are kept in the markdown; ``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import equal_cost  # noqa: E402

__all__ = ["BUDGETS", "CASES", "METHODS", "data_table", "main", "plot_case"]

CASES = ["camel:dim=4", "camel:dim=8", "camel:dim=16", "gaussian_genz:dim=4"]
BUDGETS = [10_000, 100_000, 1_000_000, 10_000_000]
QUICK_CASES = ["camel:dim=4", "gaussian_genz:dim=4"]
QUICK_BUDGETS = [10_000, 100_000]
METHODS = list(equal_cost.METHODS)
COLORS = {"flowint": "C0", "vegas": "C1", "rqmc": "C2", "madnis": "C3"}
DPI = 80
F = common.as_float

DATA_COLUMNS = ["method", "budget", "calls", "wall s", "f s", "mean", "rel err", "rel sdev",
                "pull", "status"]


def _tag(spec: str) -> str:
    return spec.replace(":", "_").replace("=", "").replace(",", "_")


def _points(rows: Sequence[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    """One point per (budget, method) of ``spec``: the record plus its budget."""
    pts = []
    for row in rows:
        if row["spec"] != spec:
            continue
        for r in row["records"]:
            pts.append({**r, "budget": row["budget"]})
    return pts


def _rel(r: dict[str, Any]) -> tuple[float, float]:
    ex = abs(F(r["exact"]))
    return abs(F(r["mean"]) - F(r["exact"])) / ex, F(r["sdev"]) / ex


def plot_case(rows: Sequence[dict[str, Any]], spec: str, path: Path) -> Path:
    """Two panels for ``spec``: relative error against calls and against wall seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in _points(rows, spec) if p["status"] == "ok" and math.isfinite(F(p["mean"]))]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.6))
    for ax, xkey, xlabel in ((axes[0], "n_evals", "integrand calls (training included)"),
                             (axes[1], "wall_time", "wall seconds (training included)")):
        for method in METHODS:
            ps = sorted((p for p in pts if p["method"] == method), key=lambda p: p["budget"])
            if not ps:
                continue
            color = COLORS.get(method, "k")
            x = [max(F(p[xkey]), 1e-6) for p in ps]
            err = [max(_rel(p)[0], 1e-16) for p in ps]
            sd = [_rel(p)[1] for p in ps]
            ax.loglog(x, sd, "-", color=color, lw=1.2, label=f"{method} sdev")
            good = [abs(F(p["pull"])) < equal_cost.PULL_LIMIT for p in ps]
            ax.loglog([a for a, g in zip(x, good, strict=True) if g],
                      [e for e, g in zip(err, good, strict=True) if g], "o", color=color, ms=4,
                      label=f"{method} |error|")
            bad = [(a, e) for a, e, g in zip(x, err, good, strict=True) if not g]
            if bad:
                ax.loglog(*zip(*bad, strict=True), "x", color=color, ms=6,
                          label=f"{method} |error|, |pull| ≥ 3")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("relative error")
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(spec, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def data_table(rows: Sequence[dict[str, Any]], spec: str) -> str:
    body = []
    for p in sorted(_points(rows, spec),
                    key=lambda p: (METHODS.index(p["method"]) if p["method"] in METHODS
                                   else len(METHODS), p["budget"])):
        ok = p["status"] == "ok"
        rel_err, rel_sd = _rel(p) if ok else (math.nan, math.nan)
        body.append([p["method"], p["budget"], p["n_evals"] if ok else "—",
                     common.fmt(F(p["wall_time"]), 3), common.fmt(F(p.get("f_time")), 2),
                     common.fmt(F(p["mean"]), 6), common.fmt(rel_err, 2),
                     common.fmt(rel_sd, 2), common.fmt(F(p["pull"]), 2), p["status"]])
    return common.markdown_table(DATA_COLUMNS, body)


NOTES = """
Columns: *budget* the total calls asked; *calls* those made (vegas a little under B, rqmc
16·2^m ≤ B), training included; *wall s* seconds of the whole run; *f s* seconds inside the
integrand; *rel err* |mean − I|/|I| (the markers); *rel sdev* sdev/|I| (the lines); *pull*
(mean − I)/sdev. Recipes as in ``equal_cost.py``. One seed: one run per point.
"""


def write(path: Path, rows: list[dict[str, Any]], specs: Sequence[str], pngs: dict[str, Path],
          settings: dict[str, Any], command: str) -> None:
    text = common.header("Error against calls and against wall time", command, settings)
    for spec in specs:
        text += f"\n## {spec}\n\n"
        if spec in pngs:
            text += f"![{spec}]({pngs[spec].name})\n\n"
        text += data_table(rows, spec)
    text += NOTES + "\n" + common.save_rows_comment(rows)
    common.write_atomic(path, text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 integrands, budgets 1e4 and 1e5")
    p.add_argument("--cases", nargs="+", default=None)
    p.add_argument("--budgets", nargs="+", type=lambda s: int(float(s)), default=None,
                   help="total calls per method (default 1e4 1e5 1e6 1e7)")
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR, help="folder of the files")
    p.add_argument("--fresh", action="store_true", help="ignore points already in the markdown")
    p.add_argument("--plot-only", action="store_true",
                   help="redraw the figures and the markdown from the points already there")
    return p


def _previous_commands(md: Path) -> list[str]:
    """The commands recorded in an earlier markdown (its points are kept with it)."""
    if not md.exists():
        return []
    found = re.search(r"Generated by (.*)\.\n", md.read_text())
    return re.findall(r"`([^`]+)`", found.group(1)) if found else []


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = build_parser().parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else CASES)
    budgets = sorted(args.budgets or (QUICK_BUDGETS if args.quick else BUDGETS))
    suffix = "_quick" if args.quick else ""
    md = args.out / f"cost_figures{suffix}.md"
    settings = {"cases": ", ".join(cases), "budgets": ", ".join(f"{b:,}" for b in budgets),
                "methods": ", ".join(args.methods), "seed": args.seed,
                "recipes": "as equal_cost.py (common.COST_RUNNERS)"}
    command = "python benchmarks/cost_figures.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    commands = ([] if args.fresh else _previous_commands(md)) + [command.strip()]
    command = "` then `".join(dict.fromkeys(commands))  # header() adds the outer backticks
    old = [] if args.fresh else [r for r in common.load_rows(md) if r.get("kind") == "cost"]
    if args.plot_only:
        specs = sorted({r["spec"] for r in old})
        pngs = {spec: plot_case(old, spec, args.out / f"cost_{_tag(spec)}{suffix}.png")
                for spec in specs}
        settings.update(cases=", ".join(specs), budgets=", ".join(
            f"{b:,}" for b in sorted({int(r["budget"]) for r in old})), methods=", ".join(
            sorted({rec["method"] for r in old for rec in r["records"]})))
        write(md, old, specs, pngs, settings, command)
        return [*pngs.values(), md]
    done = {equal_cost._key(r): r for r in old if not equal_cost._failed(r)}
    rows: list[dict[str, Any]] = []
    pngs: dict[str, Path] = {}
    used: set[tuple] = set()
    n = len(cases) * len(budgets)
    i = 0

    def current() -> tuple[list[dict[str, Any]], list[str]]:
        """This run's points, then those of earlier runs (other cases, budgets or seeds)."""
        keep = rows + [r for r in old if equal_cost._key(r) not in used]
        specs = list(cases) + sorted({r["spec"] for r in keep} - set(cases))
        return keep, specs

    for spec in cases:
        for b in budgets:
            i += 1
            key = ("cost", spec, b, args.seed, tuple(args.methods))
            used.add(key)
            if key in done:
                rows.append(done[key])
                print(f"[{i}/{n}] {spec} at {b:,} calls: already in {md}, skipped", flush=True)
            else:
                t0 = time.perf_counter()
                print(f"[{i}/{n}] {spec} at {b:,} calls ...", flush=True)
                rows.append(equal_cost.run_case(spec, b, args.seed, args.methods))
                print(f"    ({time.perf_counter() - t0:.0f} s)", flush=True)
            pngs[spec] = plot_case(current()[0], spec,
                                   args.out / f"cost_{_tag(spec)}{suffix}.png")
            write(md, *current(), pngs, settings, command)
    paths = [*pngs.values(), md]
    for p in paths:
        print(f"written: {p}")
    return paths


if __name__ == "__main__":
    main()
