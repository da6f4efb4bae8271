"""Flow families as importance samplers: coupling vs autoregressive vs elementwise.

Every flow on the unit cube can drive :class:`flowint.Integrator`; this script integrates the
same integrands with each family at the same budget and prints the relative standard deviation
per sample, the pull and the wall time, all measured in this run.

Usage::

    python benchmarks/families.py            # camel 4-D and gaussian 4-D, 2e5 + 5e4 calls
    python benchmarks/families.py --quick    # 3e4 + 1e4 calls
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

import flowint  # noqa: E402
import integrands  # noqa: E402
from flowint.flows import elementwise_flow, iaf_flow, maf_flow, make_flow  # noqa: E402

__all__ = ["FAMILIES", "run", "main"]

#: name -> factory(dim, seed) of a flow on the unit cube.
FAMILIES = {
    "coupling (rqs)": lambda d, s: make_flow(d, "rqs", hidden=64, grid=False, seed=s),
    "coupling (pwq)": lambda d, s: make_flow(d, "pwq", hidden=64, grid=False, seed=s),
    "MAF (rqs)": lambda d, s: maf_flow(d, "rqs", domain="cube", n_layers=2, seed=s),
    "IAF (rqs)": lambda d, s: iaf_flow(d, "rqs", domain="cube", n_layers=2, seed=s),
    "elementwise (rqs)": lambda d, s: elementwise_flow(d, "rqs", domain="cube", seed=s),
}


def run(cases: list[str], n_train: int, n_final: int, seed: int) -> list[dict]:
    """Integrate each case with each family; one row per (case, family)."""
    rows = []
    for spec in cases:
        f = integrands.get(spec)
        for name, factory in FAMILIES.items():
            flow = factory(f.dim, seed).to(torch.float32)
            t0 = time.perf_counter()
            integ = flowint.Integrator(f.dim, flow=flow, seed=seed, progress=False)
            integ.train(f, n_train)
            r = integ.estimate(f, n_final)
            rows.append({
                "integrand": spec, "flow": name, "estimate": str(r),
                "pull": f"{r.pull(f.exact):+.2f}", "rel std/sample": f"{r.rel_std:.3g}",
                "unweighting eff.": f"{r.unweighting_efficiency:.3g}",
                "wall s": f"{time.perf_counter() - t0:.1f}",
            })
            print(" | ".join(str(v) for v in rows[-1].values()), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3e4 + 1e4 calls")
    p.add_argument("--cases", nargs="+", default=["camel:dim=4", "gaussian:dim=4"])
    p.add_argument("--train", type=float, default=None)
    p.add_argument("--final", type=float, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    n_train = int(args.train or (3e4 if args.quick else 2e5))
    n_final = int(args.final or (1e4 if args.quick else 5e4))
    rows = run(args.cases, n_train, n_final, args.seed)
    default = "families_quick.md" if args.quick else "families.md"
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / default
    command = "python benchmarks/families.py " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
    settings = {"cases": " ".join(args.cases), "training calls": n_train,
                "final calls": n_final, "seed": args.seed}
    columns = list(rows[0]) if rows else []
    text = (common.header("Flow families as importance samplers", command.strip(), settings)
            + "\n" + common.markdown_table(columns, [list(r.values()) for r in rows]))
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
