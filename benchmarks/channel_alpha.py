"""Learned channel weights: the same multi-channel run with ``learn_alpha`` on and off.

A multi-channel run (``channels=``) partitions ``f`` with weights
``w_c = α_c ρ_c / Σ_j α_j ρ_j``. With ``learn_alpha=True`` (the default) the pilots' points
give the ``α`` that minimises ``Σ_c σ_c`` (:mod:`flowint.run.alpha`), taken only where the
held-out half of the points confirms a gain of 5 % or more. Each row runs one case and seed
twice, identical up to that step: ``Σ σ_c`` at the pilots' ``α`` and at the learned one on the
half of the points fitted and on the held-out half (relative units), whether the learned ``α``
was taken, the ``α`` the run used, and both results with their pulls and the ratio of their
error bars (1 exactly where the learned ``α`` was not taken).

Cases:

- ``bumps-frozen``: three Gaussian peaks in 2-D (widths 0.03, 0.06, 0.09; masses ½, ⅓, ⅙),
  given maps (the identity and a logistic bump on each peak, equal ``α``) and flows that do
  not learn (``lr=1e-9``): the classic multi-channel setting, where ``α`` is all that adapts;
- ``bumps``: the same with the default flows, which adapt to whatever part they are given;
- ``three_peaks-8d``: ``channels="modes"`` on :class:`integrands.peaks.ThreePeaks` in 8-D;
- ``eggbox``: ``channels="modes"`` on the egg-box evidence (``log=True``, 18 peaks).

The step's measures are read by wrapping :meth:`flowint.run.mode_channels.ModeRun.tune`.

Usage::

    python benchmarks/channel_alpha.py                       # every case, its default seeds
    python benchmarks/channel_alpha.py --cases bumps --seeds 1 2
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common

import flowint
import flowint.run.mode_channels as mc
from flowint.channel_maps import IdentityMap, LogisticMap
from integrands.evidence import Eggbox
from integrands.peaks import ThreePeaks

__all__ = ["CASES", "COLUMNS", "main", "run_pair"]

PEAKS2 = ThreePeaks(2, widths=(0.03, 0.06, 0.09))
BUMPS = [IdentityMap(2)] + [LogisticMap([float(v) for v in c], [w, w])
                            for c, w in zip(PEAKS2.centers, PEAKS2.widths, strict=True)]

#: name: (budget, default seeds, description)
CASES = {
    "bumps-frozen": (20_000, [1, 2, 3, 4, 5, 6], "three peaks 2-D, identity + 3 bumps, lr=1e-9"),
    "bumps": (20_000, [1, 2, 3, 4, 5, 6], "three peaks 2-D, identity + 3 bumps, defaults"),
    "three_peaks-8d": (100_000, [1], "ThreePeaks(8), channels='modes'"),
    "eggbox": (15_000, [1, 2, 3], "egg box log Z, log=True, channels='modes'"),
}
COLUMNS = ["case", "seed", "fitted half Σσ (pilots' α → learned)",
           "held-out Σσ (pilots' α → learned)", "taken", "α used",
           "learned", "pull", "fixed α", "pull", "sdev learned / fixed", "s (learned, fixed)"]


def _call(case: str, seed: int, learn: bool) -> tuple[flowint.Result, float, float]:
    """One run: its result, the exact value (``log Z`` for the egg box) and wall seconds."""
    budget = CASES[case][0]
    common_kw = dict(budget=budget, seed=seed, progress=False, learn_alpha=learn)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if case == "eggbox":
            p = Eggbox()
            r = flowint.integrate(p.log_likelihood, 2, log=True, prior=p.prior_transform,
                                  channels="modes", **common_kw)
            exact = p.log_z
        elif case == "three_peaks-8d":
            f = ThreePeaks(8)
            r = flowint.integrate(f, 8, channels="modes", **common_kw)
            exact = float(f.exact)
        else:
            extra = {"lr": 1e-9} if case == "bumps-frozen" else {}
            r = flowint.integrate(PEAKS2, 2, channels=BUMPS, **common_kw, **extra)
            exact = float(PEAKS2.exact)
    return r, exact, time.perf_counter() - t0


def _value(r: flowint.Result, exact: float, log: bool) -> tuple[str, float, float]:
    """The result as text, its pull and its error (``log`` for the egg box)."""
    if log:
        return (f"log Z {common.fmt(r.log_mean, 6)} ± {common.fmt(r.log_sdev, 2)}",
                (r.log_mean - exact) / r.log_sdev, r.log_sdev)
    return str(r), r.pull(exact), r.sdev


def run_pair(case: str, seed: int) -> list[Any]:
    """One row: the case and seed with ``learn_alpha`` on, then off."""
    seen: dict[str, Any] = {}
    tune = mc.ModeRun.tune

    def spy(self: Any, rec: dict[str, Any]) -> None:
        tune(self, rec)
        seen.update(rec["tuned"] or {})

    mc.ModeRun.tune = spy
    try:
        learned, exact, s1 = _call(case, seed, True)
    finally:
        mc.ModeRun.tune = tune
    fixed, _, s2 = _call(case, seed, False)
    log = case == "eggbox"
    (t1, p1, e1), (t2, p2, e2) = _value(learned, exact, log), _value(fixed, exact, log)
    fit = held = "—"
    if seen:
        fit = f"{common.fmt(seen['fit'][0])} → {common.fmt(seen['fit'][1])}"
        held = f"{common.fmt(seen['before'])} → {common.fmt(seen['after'])}"
    alpha = ", ".join(f"{c} {a:.3g}" for c, a in learned.channel_alpha.items())
    if len(learned.channel_alpha) > 6:
        values = sorted(learned.channel_alpha.values())
        alpha = f"{len(values)} channels, {values[0]:.3g}–{values[-1]:.3g}"
    return [case, seed, fit, held, bool(seen.get("accepted")), alpha, t1, p1, t2, p2,
            e1 / e2 if e2 > 0 else math.nan, f"{s1:.1f}, {s2:.1f}"]


def main(argv: Sequence[str] | None = None) -> list[list[Any]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="seeds for every case (default: each case's own)")
    p.add_argument("--out", type=Path, default=common.RESULTS_DIR / "channel_alpha.md")
    args = p.parse_args(argv)
    command = "python benchmarks/channel_alpha.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    settings = {name: f"{budget:,} calls, seeds {args.seeds or seeds}: {what}"
                for name, (budget, seeds, what) in CASES.items() if name in args.cases}
    rows: list[list[Any]] = []
    for case in args.cases:
        for seed in args.seeds or CASES[case][1]:
            rows.append(run_pair(case, seed))
            common.add_row(args.out, "Learned channel weights: learn_alpha on and off",
                           command, settings, COLUMNS, rows)
    print(f"written: {args.out}")
    return rows


if __name__ == "__main__":
    main()
