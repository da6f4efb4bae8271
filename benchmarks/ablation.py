"""Ablation of the integrator's settings at equal budget, with MadNIS and vegas in the same run.

Issue 4 asks, where a target is missed, to find out why by ablating the loss, the flow and the
schedule. This script integrates one registry case (default: the camel in 8-D, the row where
flowint must reach a third of MadNIS's relative standard deviation per sample) with the
integrator's defaults and with one setting changed at a time, at the equal-budget protocol
(``--train`` calls of training, then ``--final`` calls of the frozen flow), and prints, for each
variant, the relative std per sample σ(f/q)/|I|, the pull, the wall time and the ratios to
MadNIS and vegas measured in the same run.

Usage::

    python benchmarks/ablation.py                      # camel 8-D, 1e6 + 1e5 calls
    python benchmarks/ablation.py --quick              # camel 4-D, 5e4 + 1e4 calls, 3 variants
    python benchmarks/ablation.py --case camel:dim=16 --variants default steps=48

Writes ``benchmarks/results/ablation_<case>.md`` (``ablation_quick.md`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import integrands  # noqa: E402

__all__ = ["COMBINED", "SINGLE", "VARIANTS", "run", "main"]

#: name -> Integrator settings changed from the defaults of the recorded commit (one change
#: per variant; the names give the new values). Run by default.
SINGLE: dict[str, dict[str, Any]] = {
    "default": {},
    "bins=16 lr=3e-3 (0.1.0 defaults)": {"lr": 3e-3, "flow_options": {"bins": 16}},
    "lr=3e-3": {"lr": 3e-3},
    "lr=1e-2": {"lr": 1e-2},
    "bins=16": {"flow_options": {"bins": 16}},
    "bins=4": {"flow_options": {"bins": 4}},
    "steps=32": {"steps_per_batch": 32},
    "steps=48": {"steps_per_batch": 48},
    "loss=kl": {"loss": "kl"},
    "minibatch=2048": {"minibatch": 2048},
    "buffer=8": {"buffer": 8},
    "hidden=128": {"flow_options": {"hidden": 128}},
    "hidden=32": {"flow_options": {"hidden": 32}},
    "flow=pwq": {"flow": "pwq"},
    "derivative=exp": {"flow_options": {"derivative": "exp"}},
    "derivative=exp min_width=1e-5": {"flow_options": {"derivative": "exp", "min_width": 1e-5}},
    "lr_final=1e-2": {"lr_final": 1e-2},
    "lr_final=1e-4": {"lr_final": 1e-4},
}
#: Combinations that set lr and bins explicitly; run by name with ``--variants``.
COMBINED: dict[str, dict[str, Any]] = {
    "bins=8 lr=6e-3": {"lr": 6e-3, "flow_options": {"bins": 8}},
    "bins=8 lr=6e-3 steps=32": {"lr": 6e-3, "steps_per_batch": 32, "flow_options": {"bins": 8}},
    "bins=8 lr=6e-3 steps=48": {"lr": 6e-3, "steps_per_batch": 48, "flow_options": {"bins": 8}},
    "bins=8 lr=1e-2": {"lr": 1e-2, "flow_options": {"bins": 8}},
    "bins=4 lr=6e-3": {"lr": 6e-3, "flow_options": {"bins": 4}},
    "bins=8 lr=1e-2 steps=24": {"lr": 1e-2, "steps_per_batch": 24, "flow_options": {"bins": 8}},
    "bins=8 lr=1e-2 steps=32": {"lr": 1e-2, "steps_per_batch": 32, "flow_options": {"bins": 8}},
}
VARIANTS: dict[str, dict[str, Any]] = {**SINGLE, **COMBINED}
QUICK_VARIANTS = ["default", "steps=32", "loss=kl"]


def run(spec: str, variants: list[str], n_train: int, n_final: int, seed: int,
        peers: list[str]) -> list[dict[str, Any]]:
    """One row per peer and per variant, with ratios to the peers measured in this run."""
    f = integrands.get(spec)
    ref: dict[str, float] = {}
    rows = []
    for peer in peers:
        rec = common.RUNNERS[peer](f, n_train, n_final, seed)
        ref[peer] = rec.rel_std if rec.ok else math.nan
        rows.append({"variant": f"({peer})", "status": rec.status, "rel std/sample": rec.rel_std,
                     "pull": rec.pull, "wall s": rec.wall_time})
        print(f"{peer}: {rec.status} rel std {rec.rel_std:.3g} ({rec.wall_time:.0f} s)",
              flush=True)
    for name in variants:
        rec = common.run_flowint(f, n_train, n_final, seed, **VARIANTS[name])
        row = {"variant": name, "status": rec.status, "rel std/sample": rec.rel_std,
               "pull": rec.pull, "wall s": rec.wall_time}
        for peer in peers:
            row[f"/ {peer}"] = rec.rel_std / ref[peer] if rec.ok else math.nan
        rows.append(row)
        print(f"{name}: {rec.status} rel std {rec.rel_std:.3g} pull {rec.pull:+.2f} "
              f"({rec.wall_time:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="camel 4-D, 5e4 + 1e4 calls")
    p.add_argument("--case", default=None, help="registry specification (camel:dim=8)")
    p.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS))
    p.add_argument("--peers", nargs="*", default=["madnis", "vegas"],
                   choices=["madnis", "vegas", "plain-mc", "qmc_quad"])
    p.add_argument("--train", type=lambda s: int(float(s)), default=None)
    p.add_argument("--final", type=lambda s: int(float(s)), default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = args.case or ("camel:dim=4" if args.quick else "camel:dim=8")
    variants = args.variants or (QUICK_VARIANTS if args.quick else list(SINGLE))
    n_train = args.train or (50_000 if args.quick else 1_000_000)
    n_final = args.final or (10_000 if args.quick else 100_000)
    rows = run(spec, variants, n_train, n_final, args.seed, args.peers)
    tag = "quick" if args.quick else spec.replace(":", "_").replace("=", "")
    out = args.out or Path(__file__).resolve().parent / "results" / f"ablation_{tag}.md"
    command = "python benchmarks/ablation.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {"case": spec, "training calls": f"{n_train:,}", "final calls": f"{n_final:,}",
                "seed": args.seed, "variants": ", ".join(
                    f"{v}: {VARIANTS[v] or 'Integrator defaults'}" for v in variants)}
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = common.markdown_table(
        columns, [[common.fmt(r.get(c, math.nan)) for c in columns] for r in rows])
    text = (common.header("Ablation of the integrator's settings", command.strip(), settings)
            + "\nOne setting changed per variant; ratios are to the peers measured in this "
              "run (lower is better).\n\n" + table)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
