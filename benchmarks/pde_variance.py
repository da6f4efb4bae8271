"""Variance reduction of flowint on Monte Carlo PDE solvers, against plain Monte Carlo.

Three tables, written to ``benchmarks/results/pde_variance.md``:

1. Feynman–Kac (``u(t, x)`` as an integral over ``[0,1]^d``): relative variance per sample of
   plain Monte Carlo (uniform ``y``, exact where a closed form exists) and of the trained flow
   (measured on fresh i.i.d. samples of the frozen flow), their ratio, and the ratio of the
   variances of the final estimates at equal total calls (the flow's training included).
2. Warm starts along a path of points: calls to reach a relative error ``rtol`` at every point,
   each point's flow started from scratch or from its neighbour's.
3. Walk on spheres, Poisson source term: the first ball's source integral sampled from the
   Green's density in every walk, or integrated once per point by a flow.

Run ``python benchmarks/pde_variance.py`` (``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy
import torch
from scipy.stats import norm

import flowint
from flowint.pde import Ball, FeynmanKac, exact, walk_on_spheres

RESULTS = Path(__file__).resolve().parent / "results"
FAST = {"batch_size": 4000, "steps_per_batch": 4, "progress": False}
TINY = {"hidden": 8, "bins": 8, "n_layers": 2}  # for d = 100: the flow is the cost there


@dataclass
class Case:
    name: str
    fk: FeynmanKac
    t: float
    x: torch.Tensor
    exact: float
    mc_relvar: float | None  # exact relative variance per sample of plain MC, if known
    budget: int
    n_train: int


def gaussian_case(name: str, d: int, t: float, s: float, offset: float | torch.Tensor,
                  budget: int, n_train: int, diffusion: float | torch.Tensor = 1.0,
                  **settings) -> Case:
    x = torch.as_tensor(offset, dtype=torch.float64).expand(d).clone()
    u = exact.heat_gaussian(t, x, s, diffusion=diffusion)
    name = f"{name}, u = {u:.2g}"
    # E[φ²] is the same Gaussian integral with s² -> s²/2
    second = exact.heat_gaussian(t, x, s / math.sqrt(2), diffusion=diffusion)
    fk = FeynmanKac(lambda y: torch.exp(-(y**2).sum(-1) / s**2), d, diffusion=diffusion,
                    **settings)
    return Case(name, fk, t, x, u, second / u**2 - 1, budget, n_train)


def paraboloid_case(budget: int, n_train: int, **settings) -> Case:
    d, t = 100, 0.5
    x = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
    u = exact.heat_paraboloid(t, x)
    var = float((4 * x**2 * 2 * t + 2 * (2 * t) ** 2).sum())  # Var of Σ (x_i + √(2t) z_i)²
    fk = FeynmanKac(lambda y: (y**2).sum(-1), d, **settings)
    return Case("paraboloid, d = 100", fk, t, x, u, var / u**2, budget, n_train)


def basket_case(d: int, rho: float, K: float, budget: int, n_train: int, **settings) -> Case:
    sigma, r, T, s0 = 0.2, 0.05, 1.0, 100.0
    price = exact.geometric_basket_call_price(d, sigma=sigma, rho=rho, r=r, T=T, S0=s0, K=K)
    sig = torch.full((d,), sigma, dtype=torch.float64)
    corr = torch.full((d, d), rho, dtype=torch.float64).fill_diagonal_(1.0)
    diffusion = 0.5 * sig**2 if rho == 0 else 0.5 * corr * sig.outer(sig)
    disc = math.exp(-r * T)
    fk = FeynmanKac(lambda y: disc * (torch.exp(y.mean(-1)) - K).clamp_min(0.0), d,
                    diffusion=diffusion, drift=r - 0.5 * sig**2, **settings)
    # second moment of the lognormal call payoff, log G ~ N(μ, v)
    v = float(sig @ corr @ sig) / d**2 * T
    mu = math.log(s0) + (r - 0.5 * sigma**2) * T
    k = math.log(K)
    m2 = (math.exp(2 * mu + 2 * v) * norm.cdf((mu + 2 * v - k) / math.sqrt(v))
          - 2 * K * math.exp(mu + v / 2) * norm.cdf((mu + v - k) / math.sqrt(v))
          + K**2 * norm.cdf((mu - k) / math.sqrt(v))) * disc**2
    name = f"geometric basket call, d = {d}, ρ = {rho:g}, K = {K:g}"
    return Case(name, fk, T, torch.full((d,), math.log(s0), dtype=torch.float64), price,
                m2 / price**2 - 1, budget, n_train)


def per_sample_relvar(f: Callable, integ: flowint.Integrator, n: int, seed: int) -> float:
    """Relative variance per sample of ``f/q`` on fresh i.i.d. points of the frozen flow."""
    u, w = integ.sample(n, seed=seed)
    vals = f(u) * w
    return float(vals.var() / vals.mean() ** 2)


def run_case(case: Case, seed: int) -> dict:
    t0 = time.perf_counter()
    f = case.fk.integrand(case.t, case.x)
    integ = case.fk.integrator(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = integ(f, case.budget, n_train=case.n_train)
    flow_relvar = per_sample_relvar(f, integ, 100_000, seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    y = torch.rand(case.budget, case.x.shape[0], generator=gen, dtype=torch.float64)
    mc = f(y)
    mc_emp = float(mc.var() / mc.mean() ** 2) if float(mc.mean()) != 0 else math.inf
    mc_relvar = case.mc_relvar if case.mc_relvar is not None else mc_emp
    n_final = case.budget - case.n_train
    return {
        "name": case.name, "exact": case.exact, "result": res,
        "pull": res.pull(case.exact), "mc_relvar": mc_relvar, "mc_emp": mc_emp,
        "mc_mean": float(mc.mean()), "mc_sdev": float(mc.std()) / math.sqrt(case.budget),
        "flow_relvar": flow_relvar, "ratio": mc_relvar / flow_relvar,
        "equal_calls": (mc_relvar / case.budget) / (flow_relvar / n_final),
        "budget": case.budget, "n_train": case.n_train, "seconds": time.perf_counter() - t0,
    }


def cases(quick: bool) -> list[Case]:
    k = 0.5 if quick else 1.0
    big = {**FAST, "batch_size": 2000, "flow_options": TINY}
    corr = torch.full((10, 10), 0.5, dtype=torch.float64).fill_diagonal_(1.0)
    alternating = 0.8 * (-1.0) ** torch.arange(10, dtype=torch.float64)
    return [
        paraboloid_case(int(40_000 * k), int(8_000 * k), **big),
        gaussian_case("Gaussian data, d = 10, t = 0.25, s = 0.5, x_i = 0.2 (near)", 10, 0.25,
                      0.5, 0.2, int(100_000 * k), int(40_000 * k), **FAST),
        gaussian_case("Gaussian data, d = 10, t = 0.25, s = 0.5, x_i = 0.8 (rare)", 10, 0.25,
                      0.5, 0.8, int(100_000 * k), int(40_000 * k), **FAST),
        gaussian_case("same, without PDE_SETTINGS (no per-axis grid, no warm-up)", 10, 0.25,
                      0.5, 0.8, int(100_000 * k), int(40_000 * k), warmup=0,
                      flow_options={"grid": False}, **FAST),
        gaussian_case("Gaussian data, d = 10, t = 0.1, s = 0.5, x_i = 1 (rarer)", 10, 0.1,
                      0.5, 1.0, int(200_000 * k), int(120_000 * k), **FAST),
        gaussian_case("Gaussian data, d = 20, t = 0.25, s = 0.5, x_i = 0.6 (rare)", 20, 0.25,
                      0.5, 0.6, int(200_000 * k), int(120_000 * k), **FAST),
        gaussian_case("Gaussian data, d = 10, correlated diffusion A = ρ-matrix (ρ = 0.5), "
                      "x_i = ±0.8 (rare)", 10, 0.25, 0.5, alternating,
                      int(100_000 * k), int(60_000 * k), diffusion=corr, **FAST),
        basket_case(100, 0.0, 100.0, int(40_000 * k), int(8_000 * k), **big),
        basket_case(10, 0.5, 150.0, int(100_000 * k), int(40_000 * k), **FAST),
    ]


# ---------------------------------------------------------------------- warm starts
def warm_start_study(quick: bool, seed: int) -> dict:
    d, t, s, rtol = 10, 0.25, 0.5, 0.002
    offsets = np.linspace(0.6, 0.9, 4 if quick else 7)
    pts = torch.stack([torch.full((d,), float(v), dtype=torch.float64) for v in offsets])
    want = torch.tensor([exact.heat_gaussian(t, p, s) for p in pts])
    out = {"d": d, "t": t, "s": s, "rtol": rtol, "offsets": offsets.tolist()}
    for warm in (False, True):
        fk = FeynmanKac(lambda y: torch.exp(-(y**2).sum(-1) / s**2), d, seed=seed, **FAST)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sol = fk.solve_path(t, pts, rtol, warm_start=warm, chunk=4000)
        out["warm" if warm else "cold"] = {
            "evals": [r.n_evals for r in sol.results],
            "train": [r.n_evals_train for r in sol.results],
            "rel_err": (sol.errors / sol.values).tolist(),
            "pulls": ((sol.values - want) / sol.errors).tolist(),
            "seconds": time.perf_counter() - t0,
        }
    return out


# ---------------------------------------------------------------------- walk on spheres
def wos_study(quick: bool, seed: int) -> list[dict]:
    dim = 3
    ball = Ball(0.0, 1.0, dim=dim)

    def source(y: torch.Tensor) -> torch.Tensor:  # u = (1 - |x|²)²
        return 4 * dim - 4 * (dim + 2) * (y**2).sum(-1)

    n_walks = 5_000 if quick else 20_000
    rows = []
    for r0 in (0.0, 0.5, 0.9):
        x = torch.zeros(1, dim, dtype=torch.float64)
        x[0, 0] = r0
        want = float((1 - r0**2) ** 2)
        row = {"x": r0, "exact": want}
        for mode in ("green", "flow"):
            res = walk_on_spheres(x, ball, lambda y: torch.zeros(len(y)), source=source,
                                  n_walks=n_walks, seed=seed, first_ball=mode,
                                  flow_budget=20_000, diagnose_source=(mode == "green"))
            # the green run makes a diagnostic second source draw per jump: not counted
            evals = res.n_source_evals // 2 if mode == "green" else res.n_source_evals
            row[mode] = {"mean": float(res.mean[0]), "sdev": float(res.sdev[0]),
                         "var_walk": float(res.var[0]), "evals": evals,
                         "source_share": float(res.source_var[0] / res.var[0]),
                         "steps": res.mean_steps}
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- report
def fmt(x: float) -> str:
    return f"{x:.3g}"


def write(rows: list[dict], warm: dict, wos: list[dict], args, seconds: float) -> str:
    lines = [
        "# Variance reduction of flowint on Monte Carlo PDE solvers",
        "",
        "Generated by `python benchmarks/pde_variance.py"
        + (" --quick" if args.quick else "") + f" --seed {args.seed}` "
        f"({seconds:.0f} s on {platform.machine()}, {torch.get_num_threads()} thread; "
        f"Python {platform.python_version()}, torch {torch.__version__}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, flowint {flowint.__version__}).",
        "",
        "## Feynman–Kac: relative variance per sample, plain Monte Carlo vs the trained flow",
        "",
        "`u(t, x) = ∫ φ(x + b t + √(2t) L Φ⁻¹(y)) dy` over `[0,1]^d` (`flowint.pde.FeynmanKac`,",
        f"integrator settings `{FAST}` plus `PDE_SETTINGS` = per-axis grid and 5 VEGAS",
        "warm-up iterations; d = 100 uses a 2-layer flow of width 8). MC relative variance",
        "σ²/u² per sample is exact (closed form of E[φ²]); the flow's is measured on 100 000",
        "fresh i.i.d. samples of the frozen flow. *Equal calls*: variance of plain MC with the",
        "whole budget over that of the flow's final estimate after its training.",
        "",
        "| case | exact u | flowint result | pull | MC σ²/u² | flow σ²/u² | ratio per "
        "sample | ratio at equal calls | budget (train) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['exact']:.6g} | {r['result']} | {r['pull']:+.2f} | "
            f"{fmt(r['mc_relvar'])} | {fmt(r['flow_relvar'])} | **{fmt(r['ratio'])}** | "
            f"{fmt(r['equal_calls'])} | {r['budget']} ({r['n_train']}) |")
    lines += [
        "",
        "Plain Monte Carlo with the same budget (empirical, for comparison):",
        "",
        "| case | MC estimate | MC pull | empirical MC σ²/u² |",
        "|---|---|---|---|",
    ]
    for r in rows:
        pull = (r["mc_mean"] - r["exact"]) / r["mc_sdev"] if r["mc_sdev"] > 0 else math.nan
        mc = flowint.result.format_uncertainty(r["mc_mean"], r["mc_sdev"])
        lines.append(f"| {r['name']} | {mc} | {pull:+.2f} | {fmt(r['mc_emp'])} |")
    c, w = warm["cold"], warm["warm"]
    u_first, u_last = (exact.heat_gaussian(warm["t"], torch.full((warm["d"],), v), warm["s"])
                       for v in (warm["offsets"][0], warm["offsets"][-1]))
    lines += [
        "",
        "## Warm starts along a path of points",
        "",
        f"Gaussian data, d = {warm['d']}, t = {warm['t']}, s = {warm['s']}, points x = v·(1,…,1)"
        f" for v = {', '.join(f'{v:.2f}' for v in warm['offsets'])} (u from "
        f"{u_first:.2g} to {u_last:.2g}),"
        f" each solved to relative error {warm['rtol']} by `FeynmanKac.solve_path` (one "
        "integrator call per point with the error target rtol, training iterations of 4000; "
        "warm-started points skip the exploration).",
        "",
        "| point v | cold: calls (train) | warm: calls (train) | cold rel. err | warm rel. err |",
        "|---|---|---|---|---|",
    ]
    for i, v in enumerate(warm["offsets"]):
        lines.append(f"| {v:.2f} | {c['evals'][i]} ({c['train'][i]}) | {w['evals'][i]} "
                     f"({w['train'][i]}) | {c['rel_err'][i]:.2g} | {w['rel_err'][i]:.2g} |")
    tc, tw = sum(c["evals"]), sum(w["evals"])
    lines += [
        f"| **total** | **{tc}** | **{tw}** | | |",
        "",
        f"Warm starts used {tw / tc:.2f}× the calls of cold starts "
        f"({100 * (1 - tw / tc):.0f}% saved; after the first point: "
        f"{sum(w['evals'][1:]) / sum(c['evals'][1:]):.2f}×). Largest |pull| against the closed "
        f"form: cold {max(abs(p) for p in c['pulls']):.2f}, warm "
        f"{max(abs(p) for p in w['pulls']):.2f}.",
        "",
        "## Walk on spheres: the Poisson source term",
        "",
        "`Δu = -f` in the unit ball of R³, `u = 0` on the sphere, `f = 12 - 20‖x‖²` "
        "(`u = (1 - ‖x‖²)²`), ε = 1e-4. *green*: every walk samples the source in every ball "
        "from the Green's density; *flow*: the first ball (the same for every walk from x) is "
        "integrated once by flowint (20 000 evaluations), the rest as in *green*. "
        "*source share*: fraction of the per-walk variance due to sampling the source.",
        "",
        "| ‖x‖ | exact | green | flow | source share (green) | var/walk green | "
        "var/walk flow | f-evals green | f-evals flow | steps/walk |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    fu = flowint.result.format_uncertainty
    for r in wos:
        g, f_ = r["green"], r["flow"]
        lines.append(
            f"| {r['x']} | {r['exact']:.4f} | {fu(g['mean'], g['sdev'])} | "
            f"{fu(f_['mean'], f_['sdev'])} | {g['source_share']:.2f} | {fmt(g['var_walk'])} | "
            f"{fmt(f_['var_walk'])} | {g['evals']} | {f_['evals']} | {g['steps']:.1f} |")
    lines.append("")
    lines.append("(The *green* f-eval counts leave out the diagnostic second draw per jump that "
                 "measures the source share.)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = []
    for case in cases(args.quick):
        r = run_case(case, args.seed)
        rows.append(r)
        print(f"{r['name']:<62} {r['result']!s:>16} pull {r['pull']:+.2f}  MC {r['mc_relvar']:.3g}"
              f"  flow {r['flow_relvar']:.3g}  ratio {r['ratio']:.3g}  ({r['seconds']:.0f} s)",
              flush=True)
    warm = warm_start_study(args.quick, args.seed)
    print("warm start: cold", sum(warm["cold"]["evals"]), "warm", sum(warm["warm"]["evals"]),
          flush=True)
    wos = wos_study(args.quick, args.seed)
    print("wos", wos, flush=True)
    text = write(rows, warm, wos, args, time.perf_counter() - t0)
    if args.no_write:
        print(text)
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "pde_variance.md").write_text(text)
        print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
