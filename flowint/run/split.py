"""Sign-changing integrands as channels: ``∫f = ∫f⁺ − ∫f⁻``, each part with its own sampler,
and the residual of ``f`` against the parts' flows.

With one positive density ``q`` for a sign-changing ``f``, the i.i.d. relative standard
deviation per sample of ``f/q`` is at least ``√((∫|f| / I)² − 1)`` (2.83 for the signed camel
in 2-D), however well ``q`` is trained. A split run instead integrates the positive part
``f⁺ = max(f, 0)`` and the negative part ``f⁻ = max(−f, 0)`` as two channels
(:class:`~flowint.run.channels.ChannelRun`), each drawing its own independent points, so
both estimates are unbiased and independent and

    ``I = I⁺ − I⁻``,  ``var = var⁺ + var⁻``.

Every evaluation of ``f`` serves one channel: ``f`` is evaluated once per point, and the other
part's value at that point is discarded (using it would couple the two estimates).

Each part has a kink where ``f`` changes sign, which a smooth flow follows only so far. After
the parts' pilots, a third channel (:data:`~flowint.run.allocation.RESIDUAL`) can take the
rest: the residual ``A = c⁺q⁺ − c⁻q⁻ − f`` of ``f`` against the parts' frozen flows ``q±``
(:class:`ResidualPart`). The flows are normalised densities on the cube, so

    ``I = c⁺ − c⁻ − ∫A``

exactly, and only ``∫A`` is estimated: about ``m ∫|f|`` with ``c± = (1 ± m) Î±``, smooth and
almost everywhere positive, so that a third flow fits it better than either part. The Policy
pilots it only where both parts' flows fit to ``m`` (:meth:`~flowint.run.allocation.
ChannelDecisions.residual_fits`) and gives it the calls left only where its pilot's ``σ``
beats the parts' (:meth:`~flowint.run.allocation.ChannelDecisions.residual_wins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..result import Result
from .allocation import CHANNELS, RESIDUAL, RESIDUAL_MARGIN, SPLIT_NAMES
from .channel_result import combine_channels
from .channels import ChannelRun, quietly

if TYPE_CHECKING:  # pragma: no cover
    from .driver import CallDriver

__all__ = ["TOP_UP_START", "ResidualPart", "SignedPart", "SplitRun", "track_signs"]

#: Where in the training schedule a part's top-up starts (:meth:`SplitRun.tune`): it goes on
#: at the rate the cosine decay has there (a quarter of ``lr``), not at the full rate again.
#: Restarting the schedule took the signed camel 4-D's median rel. std per sample with
#: ``n_train=10⁵`` from 0.388 (two parts of half the training each) to 0.422 (seeds 1–6);
#: going on from 2/3 gives 0.387 (``benchmarks/results/signed_channels_topup*.md``).
TOP_UP_START = 2.0 / 3.0


def track_signs(call: dict[str, Any], w: Tensor) -> None:
    """Add an iteration's positive and negative parts of the weights ``w = f/q`` (each an
    unbiased estimate of ``I±``) to ``call["signs"]``, which ``signed="auto"`` reads."""
    signs = call.setdefault("signs", [0.0, 0.0])
    signs[0] += float(w.clamp_min(0.0).mean())
    signs[1] += float((-w).clamp_min(0.0).mean())


def _scalar(fx: Tensor) -> Tensor:
    """``f``'s values at the points, checked to be one per point."""
    if fx.ndim != 1:
        raise ValueError("signed='split' needs a scalar integrand: a vector integrand is "
                         "integrated with one density (signed='auto' or 'off')")
    return fx


class SignedPart:
    """``f⁺ = max(f, 0)`` (``sign=1``) or ``f⁻ = max(−f, 0)`` (``sign=-1``) on the unit cube.

    ``f`` is evaluated through the parent's driver (its box, executor and checks; its calls,
    seconds and dropped values counted in the parent's state).

    Arguments:
        driver: the parent call's driver.
        sign: ``1`` or ``-1``.
    """

    def __init__(self, driver: CallDriver, sign: int):
        self.driver = driver
        self.sign = sign

    def __call__(self, u: Tensor) -> Tensor:
        fx = _scalar(self.driver.evaluate(u))
        return (fx if self.sign > 0 else -fx).clamp_min(0.0)


class ResidualPart:
    """``A = c⁺q⁺ − c⁻q⁻ − f`` on the unit cube: ``f`` against the parts' frozen flows.

    ``q±`` are normalised densities on the cube, so ``∫A = c⁺ − c⁻ − I`` holds exactly for
    any coefficients and ``I = c⁺ − c⁻ − ∫A`` (control variates of known integral, as in
    neural control variates, Müller et al., arXiv:1912.07488). With ``c± = (1 ± m) Î±``
    (:data:`~flowint.run.allocation.RESIDUAL_MARGIN`) ``A ≈ m|f|`` plus the flows' misfit:
    positive almost everywhere, smooth (no kink where ``f`` changes sign, since ``f`` and the
    flows are smooth), and with ``∫A ≈ m ∫|f|`` instead of ``∫|f|`` to estimate.

    Arguments:
        driver: the parent call's driver (evaluates ``f``).
        flows: ``{"+": q⁺, "-": q⁻}``, frozen.
        coef: ``{"+": c⁺, "-": c⁻}``.
    """

    def __init__(self, driver: CallDriver, flows: dict[str, Any], coef: dict[str, float]):
        self.driver = driver
        self.flows = flows
        self.coef = {c: float(coef[c]) for c in CHANNELS}

    def __call__(self, u: Tensor) -> Tensor:
        fx = _scalar(self.driver.evaluate(u))
        with torch.no_grad():
            cv = sum(sign * self.coef[c] * self.flows[c].log_prob(
                u.to(self.flows[c].dtype)).to(torch.float64).exp()
                for c, sign in zip(CHANNELS, (1.0, -1.0), strict=True))
        return cv.to(fx.dtype) - fx


class SplitRun(ChannelRun):
    """The split of a sign-changing integrand into ``f⁺`` and ``f⁻`` (see the module doc),
    with the residual channel where the Policy plans it (:data:`RESIDUAL`)."""

    names = CHANNELS
    sign_split = True

    def __init__(self, driver: CallDriver, call: dict[str, Any]):
        super().__init__(driver, call)
        rec = call["split"]
        if "names" not in rec:  # fixed when the split starts: a resumed call matches
            # (a split begun before the residual channel existed has "rest" and no names)
            planned = "rest" not in rec and self.integ.policy.residual_planned(call)
            rec["names"] = list(SPLIT_NAMES if planned else CHANNELS)
        self.names = tuple(rec["names"])
        self.parts = {c: SignedPart(driver, 1 if c == "+" else -1) for c in CHANNELS}

    def part(self, c: str, rec: dict[str, Any]) -> Callable[[Tensor], Tensor] | None:
        """``f±``, or the residual against the parts' flows as their pilots left them (the
        coefficients ``c± = (1 ± m) Î±`` fixed in ``rec["cv"]`` from the pilots' means);
        ``None`` for the residual where the parts' flows do not fit well enough for it
        (:meth:`~flowint.run.allocation.ChannelDecisions.residual_fits`)."""
        if c != RESIDUAL:
            return self.parts[c]
        if "cv" not in rec:
            fits = self.integ.policy.residual_fits(rec["sigma"], rec["mean"])
            rec["cv"] = {k: (1.0 + sign * RESIDUAL_MARGIN) * float(rec["mean"][k])
                         for k, sign in zip(CHANNELS, (1, -1), strict=True)} if fits else None
        if rec["cv"] is None:
            return None
        if RESIDUAL not in self.parts:
            flows = {k: self.integ.channels[k].frozen_flow(torch.float64) for k in CHANNELS}
            self.parts[RESIDUAL] = ResidualPart(self.driver, flows, rec["cv"])
        return self.parts[RESIDUAL]

    def tune(self, rec: dict[str, Any]) -> None:
        """With ``n_train``, where the residual got no pilot (the parts did not fit well
        enough), its share of the training goes to the parts, half each, so that the run
        still trains on ``n_train`` calls, going on from :data:`TOP_UP_START` of the
        schedule. Once per call."""
        if RESIDUAL not in self.names or rec.get("cv") is not None or \
                rec.get("train_left") is None:
            return
        topped = rec.setdefault("topped", [])
        share = int(rec["train_left"]) - len(CHANNELS) * int(rec["pilot"])  # what r's was
        for i, c in enumerate(CHANNELS):
            if c in topped:
                continue
            child = self.integ.channels[c]
            extra = share // 2 if i == 0 else share - share // 2
            if extra <= 0:
                topped.append(c)
                continue
            done = quietly(c, child.train, self.parts[c], extra, start=TOP_UP_START)
            train = [r for r in done if r.phase == "train"]
            if train:
                rec["sigma"][c], rec["mean"][c] = self.sigma_mean(c, train)
            topped.append(c)
            self.integ.checkpoint_step(done=True)

    def allocate(self, rest: int, rtol: float | None, atol: float | None,
                 rec: dict[str, Any]) -> None:
        """All the calls left to the residual channel where its pilot's ``σ`` beats the
        parts' (:meth:`~flowint.run.allocation.ChannelDecisions.residual_wins`; the error
        target is then the residual's own), else Neyman's allocation between the parts."""
        policy = self.integ.policy
        means = {c: rec["mean"][c] for c in CHANNELS}
        if RESIDUAL in self.names and policy.residual_wins(rec["sigma"], rec["mean"]):
            rec["alloc"] = {**{c: 0 for c in CHANNELS}, RESIDUAL: int(rest)}
            rec["skip"] = list(CHANNELS)
            rec["goals"] = policy.channel_goals(rtol, atol, means,
                                                {RESIDUAL: rec["sigma"][RESIDUAL]})
            return
        sigmas = {c: rec["sigma"][c] for c in CHANNELS}
        rec["alloc"] = {**policy.channel_budgets(rest, sigmas), RESIDUAL: 0}
        rec["skip"] = [RESIDUAL] if RESIDUAL in self.names else []
        rec["goals"] = policy.channel_goals(rtol, atol, means, sigmas)

    def combine(self, results: dict[str, Result]) -> Result:
        rec = self.call["split"]
        idle = [c for c in self.names if c not in results]  # pilots without a call
        pilots = {k: sum(self.integ.channels[c].state.spent(k)
                         - float(rec["seconds0"][c].get(k, 0.0)) for c in idle)
                  for k in ("train", "sample")}
        if RESIDUAL not in results:
            return combine_channels(self.driver, self.call, results, seconds=pilots)
        offset = rec["cv"]["+"] - rec["cv"]["-"]  # I = c⁺ − c⁻ − ∫A
        return combine_channels(self.driver, self.call, results, signs={RESIDUAL: -1},
                                offset=offset, seconds=pilots)

    def mixture_weights(self, result: Result) -> dict[str, float]:
        """The weights of the mixture the integrator samples after this call:
        ``|I±|`` of the parts' results, or of their pilots where the call ended in the
        residual channel (its flow follows ``A``, not ``|f|``)."""
        if RESIDUAL in result.channels:
            return {c: abs(float(self.call["split"]["mean"][c])) for c in CHANNELS}
        return {c: abs(r.mean) for c, r in result.channels.items()}
