"""Figures: error against calls (flowint vs vegas), and weight histograms for one integrand.

1. ``error_vs_calls.png``: for each integrand, independent runs of flowint and of vegas at a
   list of budgets (``n_train`` = budget, ``n_final`` = budget/10, the equal-budget recipe of
   ``equal_budget.py``); plotted: the relative error sdev/|I| of the final estimate (lines)
   and the true error |mean − I|/|I| (markers), against all calls, training included.
2. ``weights_<integrand>.png``: histograms of the normalised weights w/⟨w⟩ (w = f/q) of the
   trained samplers, flowint against vegas (vegas's stratified per-sample weights); a
   narrow peak at 1 is the zero-variance limit.

Usage::

    python benchmarks/figures.py              # camel 2/4/8d, gaussian 4d; budgets 1e4..1e6
    python benchmarks/figures.py --quick      # camel 2d/4d; budgets 1e4, 3e4, 1e5 (~3 min)
    python benchmarks/figures.py --cases camel:dim=8 --budgets 1e5 1e6 --hist camel:dim=8

PNG files (dpi 80) go to ``results/`` (suffix ``_quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["error_vs_calls", "main", "sweep", "weight_histograms"]

CASES = ["camel:dim=2", "camel:dim=4", "camel:dim=8", "gaussian:dim=4"]
BUDGETS = [10_000, 30_000, 100_000, 300_000, 1_000_000]
QUICK_CASES = ["camel:dim=2", "camel:dim=4"]
QUICK_BUDGETS = [10_000, 30_000, 100_000]
DPI = 80


def sweep(specs: Sequence[str], budgets: Sequence[int], seed: int) -> dict[str, list[dict]]:
    """flowint and vegas at each budget; ``{spec: [record dicts]}``."""
    import integrands

    out: dict[str, list[dict]] = {}
    for spec in specs:
        f = integrands.get(spec)
        out[spec] = []
        for b in budgets:
            t0 = time.perf_counter()
            for rec in (common.run_flowint(f, b, max(b // 10, 1000), seed),
                        common.run_vegas(f, b, max(b // 10, 1000), seed, weights=False)):
                out[spec].append({"method": rec.method, "ok": rec.ok, "calls": rec.n_evals,
                                  "rel_err": rec.sdev / abs(rec.exact),
                                  "true_err": abs(rec.mean - rec.exact) / abs(rec.exact)})
            print(f"  {spec} budget {b:,}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def error_vs_calls(data: dict[str, list[dict]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(data)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, (spec, recs) in zip(axes[0], data.items(), strict=True):
        for method, color in (("flowint", "C0"), ("vegas", "C1")):
            rs = sorted((r for r in recs if r["method"] == method and r["ok"]),
                        key=lambda r: r["calls"])
            if not rs:
                continue
            x = [r["calls"] for r in rs]
            ax.loglog(x, [r["rel_err"] for r in rs], "-", color=color, label=f"{method} sdev")
            ax.loglog(x, [max(r["true_err"], 1e-12) for r in rs], "o", color=color, ms=4,
                      mfc="none", label=f"{method} |error|")
        ax.set_title(spec, fontsize=9)
        ax.set_xlabel("integrand calls (training included)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("relative error")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def weight_histograms(spec: str, n_train: int, n_final: int, seed: int, path: Path) -> Path:
    """Train flowint and vegas with ``n_train`` calls; histogram ``n_final`` weights of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import vegas

    import flowint
    import integrands

    f = integrands.get(spec)
    integ = flowint.Integrator(f.dim, seed=seed, progress=False)
    integ.train(f, n_train)
    w_fl = common.flowint_weights(integ, f, n_final, seed + 1)
    vi = common._vegas_integrator(f.dim, seed)
    F = vegas.lbatchintegrand(f.numpy)
    vi(F, nitn=10, neval=max(n_train // 10, 1))
    vi(F, nitn=1, neval=n_final, adapt=False)  # sets neval for random_batch
    w_ve = common.vegas_weights(vi, f)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    hi = 0.0
    for w in (w_fl, w_ve):
        hi = max(hi, float(np.quantile(np.abs(w) / np.abs(w).mean(), 0.999)))
    bins = np.linspace(0, max(hi, 2.0), 80)
    for w, name, color in ((w_fl, "flowint", "C0"), (w_ve, "vegas", "C1")):
        r = np.abs(w) / np.abs(w).mean()
        eff = r.mean() / r.max()
        ax.hist(np.clip(r, 0, bins[-1]), bins=bins, histtype="step", color=color,
                label=f"{name}: σ/⟨w⟩ = {r.std():.3g}, unw. eff. {eff:.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("w / ⟨w⟩ (last bin: overflow)")
    ax.set_ylabel("samples")
    ax.set_title(f"{spec}: {n_train:,} training calls, {len(w_fl):,} samples", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 integrands, budgets up to 1e5")
    p.add_argument("--cases", nargs="+", default=None)
    p.add_argument("--budgets", nargs="+", type=lambda s: int(float(s)), default=None)
    p.add_argument("--hist", default=None,
                   help="integrand of the weight histogram (default camel:dim=4)")
    p.add_argument("--hist-train", type=lambda s: int(float(s)), default=None,
                   help="training calls for the histogram (default 1e6, --quick 1e5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR)
    return p


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = build_parser().parse_args(argv)
    cases = args.cases or (QUICK_CASES if args.quick else CASES)
    budgets = args.budgets or (QUICK_BUDGETS if args.quick else BUDGETS)
    hist = args.hist or "camel:dim=4"
    n_hist = args.hist_train or (100_000 if args.quick else 1_000_000)
    suffix = "_quick" if args.quick else ""
    print("error against calls:", flush=True)
    data = sweep(cases, budgets, args.seed)
    paths = [error_vs_calls(data, args.out / f"error_vs_calls{suffix}.png")]
    print(f"weight histograms ({hist}):", flush=True)
    tag = hist.replace(":", "_").replace("=", "").replace(",", "_")
    paths.append(weight_histograms(hist, n_hist, max(n_hist // 10, 1000), args.seed,
                                   args.out / f"weights_{tag}{suffix}.png"))
    for p in paths:
        print(f"written: {p}")
    return paths


if __name__ == "__main__":
    main()
