"""How well one flow learns each part of the signed camel 2-D: the frozen flow's per-sample error.

A sign split (``docs/signed.md``) integrates ``f⁺ = max(f, 0)`` and ``f⁻ = max(−f, 0)`` with a
flow each; its per-sample relative standard deviation is ``(ρ⁺ I⁺ + ρ⁻ I⁻) / |I|`` with the
calls divided ``∝ σ``, so the issue's goal of 0.1 for the signed camel 2-D (``I⁺ + I⁻ = 3 |I|``)
needs ``ρ± ≈ 0.033``. This script trains one flow on a target with ``Integrator.train`` (``n``
calls) and measures ``ρ`` of the frozen flow with ``Integrator.estimate`` (i.i.d. points, no
training iterations in the estimate) for: each part of the signed camel 2-D, and a plain 2-D
Gaussian of the negative part's width (``exp(-|x - 2/3|² / 0.01)``, not truncated), with the
default flow, with four coupling layers instead of two, with the knot derivatives
``exp(θ)`` (with the default bin floors of 10⁻³, and with the floors of 10⁻⁵ of
:data:`flowint.run.channels.PART_FLOW_OPTIONS` with 8 and with 16 bins), and with those, 16
bins and the learning rate decayed to 10⁻⁴ of ``lr``: what a sign split's parts take in 2-D
with long training (:func:`flowint.run.channels.part_flow_options`,
:data:`flowint.run.channels.PART_LR_FINAL`).

Usage::

    python benchmarks/signed_parts.py                 # 5e5 training calls, seed 1
    python benchmarks/signed_parts.py --n-train 1e5 --out /tmp/parts.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

__all__ = ["TARGETS", "main", "measure"]

COLUMNS = ["target", "flow", "training calls", "seed", "rel std/sample", "final calls", "s"]
FLOWS = {"default": {}, "4 coupling layers": {"flow_options": {"n_layers": 4}},
         "exp derivatives (floors 1e-3)": {"flow_options": {"derivative": "exp"}},
         "exp derivatives, floors 1e-5":
             {"flow_options": {"derivative": "exp", "min_width": 1e-5}},
         "the same, 16 bins":
             {"flow_options": {"derivative": "exp", "min_width": 1e-5, "bins": 16}},
         "the same, lr_final=1e-4 (a split's parts)":
             {"flow_options": {"derivative": "exp", "min_width": 1e-5, "bins": 16},
              "lr_final": 1e-4}}


def _targets() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    import integrands

    f = integrands.get("signed_camel:dim=2")

    def gauss(x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-((x - 2.0 / 3.0) ** 2).sum(-1) / 0.01)

    return {"signed camel 2-D, f⁻": lambda x: (-f(x)).clamp_min(0.0),
            "signed camel 2-D, f⁺": lambda x: f(x).clamp_min(0.0),
            "2-D Gaussian, σ = 0.07": gauss}


TARGETS = list(_targets())


def measure(target: Callable[[torch.Tensor], torch.Tensor], n_train: int, seed: int,
            **settings: Any) -> tuple[float, int]:
    """``(ρ, calls)``: the frozen flow's per-sample relative std after ``n_train`` calls."""
    import flowint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        integ = flowint.Integrator(2, seed=seed, qmc=False, progress=False, signed="off",
                                   **settings)
        integ.train(target, n_train)
        r = integ.estimate(target, 100_000)
    calls = sum(h.n for h in r.history if h.phase == "final")
    return r.sdev / abs(r.mean) * math.sqrt(calls), calls


def main(argv: Sequence[str] | None = None) -> list[list[Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-train", type=float, default=5e5)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "signed_parts.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    command = "python benchmarks/signed_parts.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {"training": f"Integrator.train(target, {int(args.n_train):,}) then "
                            "estimate(target, 100,000), i.i.d. points (qmc=False)",
                "seed": args.seed, "flows": "; ".join(f"{k}: {v or 'defaults'}"
                                                      for k, v in FLOWS.items())}
    rows: list[list[Any]] = []
    for name, target in _targets().items():
        for flow, extra in FLOWS.items():
            t0 = time.perf_counter()
            rho, calls = measure(target, int(args.n_train), args.seed, **extra)
            rows.append([name, flow, int(args.n_train), args.seed, rho, calls,
                         time.perf_counter() - t0])
            common.add_row(args.out, "Per-sample error of one flow on each part of a signed "
                           "integrand", command.strip(), settings, COLUMNS, rows)
    return rows


if __name__ == "__main__":
    main()
