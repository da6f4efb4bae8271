"""The Policy's decisions about sign-changing integrands: when to split, who gets the calls,
and how many bins the parts' flows take.

A sign-changing ``f`` is integrated as two channels, ``I = I⁺ − I⁻`` with
``I± = ∫ max(±f, 0)`` (:mod:`flowint.run.channels`). The channels draw independent points, so
the variance of the difference is ``σ⁺²/n⁺ + σ⁻²/n⁻`` (``σ±``: the per-call standard deviation
of each part's weights); for ``n⁺ + n⁻ = N`` it is smallest at ``n± ∝ σ±`` (Neyman's
allocation), where it is ``(σ⁺ + σ⁻)² / N``. An absolute error target ``g`` is met with the
fewest calls by per-channel targets ``g±² = g² σ± / (σ⁺ + σ⁻)``.

:class:`ChannelDecisions` is a part of :class:`~flowint.run.policy.Policy`: every number here
is a function of the call record (plain data in the :class:`~flowint.run.state.RunState`), so
a resumed run decides alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..result import IterationRecord
from .modes import DISPARITY, Mode, disparity

__all__ = ["ALPHA_GAIN", "CHANNELS", "ChannelDecisions", "MIN_CHANNEL_CALLS", "MIN_CHANNEL_SHARE",
           "MIN_SPLIT_CALLS", "PART_RICH_CALLS", "PILOT_FRACTION", "RESIDUAL", "RESIDUAL_MARGIN",
           "SIGN_SHARE", "SPLIT_NAMES"]

#: The channels of a split run: the positive and the negative part.
CHANNELS = ("+", "-")
#: The third channel of a sign split: the residual ``A = c⁺q⁺ − c⁻q⁻ − f`` of ``f`` against
#: the parts' frozen flows as control variates (:class:`~flowint.run.split.ResidualPart`).
RESIDUAL = "r"
#: Every channel a sign split can have.
SPLIT_NAMES = (*CHANNELS, RESIDUAL)
#: The control variates' coefficients are ``c± = (1 ± m) Î±`` with this ``m`` and the pilots'
#: means ``Î±``: the residual is then about ``m |f|`` plus the parts' flows' misfit, positive
#: where the misfit stays below ``m``. Chosen on the signed camel with 10⁶ training calls
#: (scratch runs, seeds 1–3 or 1–4): ``m`` = 0.15 gave rel. std per sample 0.073–0.081 (2-D)
#: and 0.17–0.19 (4-D), ``m`` = 0.3 gave 0.072–0.12 and 0.22–0.26, ``m`` = 0.6 0.39 (4-D).
RESIDUAL_MARGIN = 0.15
#: ``signed="auto"`` splits once the smaller part holds this share of ``∫|f|`` estimated on
#: the points seen: below it the single-density bound ``√((∫|f|/I)² − 1) ≈ 2√share`` is
#: at most 0.02, which a split would not repay.
SIGN_SHARE = 1e-4
#: Fewest calls left for which a run splits (the pilots and two calls need them).
MIN_SPLIT_CALLS = 4000
#: The pilot's calls per channel, as a fraction of the calls left at the split.
PILOT_FRACTION = 0.05
#: Fewest calls a channel's own call gets (with at least 2 % of those left).
MIN_CHANNEL_CALLS = 500
MIN_CHANNEL_SHARE = 0.02
#: A sign split's part flows take twice the integrator's bins where each of its channels is to
#: train on at least this many calls (:meth:`ChannelDecisions.part_bins_factor`).
PART_RICH_CALLS = 300_000
#: Learned channel weights are taken where they cut ``Σ_c σ_c`` on the held-out points by at
#: least this fraction (:mod:`flowint.run.alpha`): less is within what two halves of a pilot's
#: heavy-tailed weights disagree on.
ALPHA_GAIN = 0.05


class ChannelDecisions:
    """Decisions of a split run (mixed into :class:`~flowint.run.policy.Policy`)."""

    settings: Any
    batch_size: Any  # Policy.batch_size
    training_trend: Any  # Policy.training_trend

    @staticmethod
    def cancellation(call: dict[str, Any]) -> float:
        """``∫|f| / |∫f|`` as the call's weights show it so far (the positive and negative
        parts summed over its iterations, ``call["signs"]``): 1 for one sign, at most 10³.
        Two channels whose flows reach ``ρ`` each give ``ρ`` times this per sample."""
        pos, neg = call.get("signs", (0.0, 0.0))
        if not (pos > 0 and neg > 0):
            return 1.0
        diff = abs(pos - neg)
        return min((pos + neg) / diff, 1e3) if diff > 0 else 1e3

    @staticmethod
    def alpha_accepted(check: tuple[float, float]) -> bool:
        """Whether a multi-channel run takes its learned ``α``: ``Σ_c σ_c`` on the held-out
        points (``check``: at the pilots' ``α``, at the learned one) lower by
        :data:`ALPHA_GAIN` at least."""
        before, after = check
        return math.isfinite(before) and math.isfinite(after) and \
            after <= (1.0 - ALPHA_GAIN) * before

    def split_due(self, call: dict[str, Any], left: float) -> bool:
        """Whether the call goes on as two channels (see :data:`SIGN_SHARE`).

        ``channels=`` (multi-channel runs, :mod:`flowint.run.mode_channels`) goes on as
        channels at once (``"auto"``: if the mode search found disparate peaks,
        :meth:`modes_disparate`). Otherwise ``signed="split"`` splits at once, ``"auto"`` once
        ``call["signs"]`` (the positive and negative parts of the weights seen, summed over
        iterations) shows both signs; never with ``log=True``, ``"off"``, or fewer than
        :data:`MIN_SPLIT_CALLS` left. Once
        taken, the decision is kept in the call record.
        """
        if call.get("split") is not None:
            return True
        s = self.settings
        if s.channels is not None and (s.channels != "auto" or self.modes_disparate(call)):
            if left < MIN_SPLIT_CALLS:  # a multi-channel run: channels from the start
                return False
            call["split"] = {"kind": "modes"}
            return True
        if s.signed == "off" or s.log or left < max(MIN_SPLIT_CALLS, 4 * self._min_channel()):
            return False
        if s.signed == "auto":
            pos, neg = call.get("signs", (0.0, 0.0))
            if not (min(pos, neg) > SIGN_SHARE * (pos + neg)):
                return False
        call["split"] = {}
        return True

    def search_due(self, call: dict[str, Any], left: float) -> bool:
        """Whether the call searches the peaks of ``|f|`` first: with ``channels="modes"``
        or ``"auto"``, once per call, before anything else, with at least
        :data:`MIN_SPLIT_CALLS` left."""
        return self.settings.channels in ("modes", "auto") and "modes" not in call and \
            call.get("split") is None and left >= MIN_SPLIT_CALLS

    @staticmethod
    def modes_disparate(call: dict[str, Any]) -> bool:
        """``channels="auto"``: the search found peaks that a single tempered flow risks
        losing (:func:`~flowint.run.modes.disparity` above
        :data:`~flowint.run.modes.DISPARITY`)."""
        modes = [Mode.from_plain(m) for m in call.get("modes") or []]
        return disparity(modes) > DISPARITY

    @staticmethod
    def residual_planned(call: dict[str, Any]) -> bool:
        """Whether a sign split gets the residual channel (three channels): with ``n_train``,
        where the pilots are the whole training and the parts' flows can fit well enough for
        it; where it does not fit, its share of the training goes back to the parts. A call
        without ``n_train`` pilots each part on a few per cent of its calls, too short for
        the residual's margin (signed camel 4-D, seeds 1–5 at 10⁵ and 1.1·10⁶ calls: none
        did), and there the third pilot only took calls from the parts' (120 seeds of the
        4-D one at 5·10⁴ calls: RMS error 1.06·10⁻³ against 9.7·10⁻⁴ with two channels)."""
        return call.get("n_train") is not None

    @staticmethod
    def residual_fits(sigmas: Mapping[str, float], means: Mapping[str, float]) -> bool:
        """Whether a sign split's residual channel is worth a pilot: both parts' flows fit
        their part to a rel. std per sample ``σ±/Î±`` of at most :data:`RESIDUAL_MARGIN`
        (a misfit larger than the margin makes the residual change sign, and it is then no
        easier than the parts; with 30,000 calls and small flows it was 3–50 times worse)."""
        for c in CHANNELS:
            sigma, mean = sigmas.get(c, math.nan), means.get(c, math.nan)
            if not (math.isfinite(sigma) and math.isfinite(mean) and mean > 0
                    and sigma <= RESIDUAL_MARGIN * mean):
                return False
        return True

    @staticmethod
    def residual_wins(sigmas: Mapping[str, float], means: Mapping[str, float]) -> bool:
        """Whether a sign split spends the calls after its pilots on the residual channel
        alone (:data:`RESIDUAL`) rather than on the two parts: where the residual's
        ``σ_r`` from its pilot is below ``σ⁺ + σ⁻`` (the difference's σ per sample under
        Neyman's allocation), both measured on the pilots' last training iterations, and
        the residual's pilot saw a positive ``∫A`` (its ``σ`` is 0 otherwise)."""
        r = sigmas.get(RESIDUAL, math.nan)
        parts = sum(sigmas.get(c, math.nan) for c in CHANNELS)
        mean = means.get(RESIDUAL, math.nan)
        return math.isfinite(r) and math.isfinite(parts) and r < parts and \
            math.isfinite(mean) and mean > 0

    def pilot_calls(self, rest: int, n_train_left: int | None, channels: int = 2) -> int:
        """Training calls of each channel's pilot: :data:`PILOT_FRACTION` of the calls left
        (times ``2 / channels``: the pilots of many channels take what two would) in whole
        training batches, or, with ``n_train``, the training calls left shared out (the whole
        training)."""
        if n_train_left is not None:
            return max(int(n_train_left) // max(channels, 1), 100)
        calls = max(int(PILOT_FRACTION * 2.0 / max(channels, 1) * rest), 100)
        batch = self.batch_size(calls)
        return batch * max(1, calls // batch)

    @staticmethod
    def part_bins_factor(n_train_left: int | None, channels: int = 2) -> int:
        """How many times the bins of the integrator's own flow a sign split's part flows
        take: 2 where ``n_train`` gives each part at least :data:`PART_RICH_CALLS` training
        calls, else 1.

        More knots follow the edge where a part falls to zero, but need more calls to place.
        With 10⁶ training calls (``n_train``) on the signed camel, parts of twice the bins
        reach a median rel. std per sample of 0.131 (2-D) and 0.183 (4-D) against 0.170 and
        0.285 with the integrator's bins, both with the parts' final rate
        (``benchmarks/results/signed_channels_equal_budget.md`` against
        ``signed_channels_equal_budget_bins_dim2.md`` and ``_dim4.md``); at a budget of
        5·10⁴ calls, where each part trains briefly, 8 bins gave the 4-D split larger errors
        than 4 (``policy_coverage_signed_e6b9439.md`` against ``policy_coverage_signed.md``)."""
        if n_train_left is not None and n_train_left / max(channels, 1) >= PART_RICH_CALLS:
            return 2
        return 1

    def channel_sigma(self, train: Sequence[IterationRecord]) -> tuple[float, float]:
        """``(σ, |I|)`` of a channel from its pilot's training: ``σ = ρ |I|`` with the median
        rel. std per sample ``ρ`` and the median estimate of the newer half of the last
        iterations (:meth:`~flowint.run.policy.Policy.training_trend`); NaN without any."""
        if not train:
            return math.nan, math.nan
        rho, mean, _ = self.training_trend(list(train))
        return (rho * mean if mean > 0 else 0.0), mean

    def _min_channel(self) -> int:
        """Fewest calls of a channel's own call: :data:`MIN_CHANNEL_CALLS`, and two
        training batches where ``batch_size`` is set."""
        return max(MIN_CHANNEL_CALLS, 2 * int(self.settings.batch_size or 0))

    def channel_budgets(self, rest: int, sigmas: Mapping[str, float],
                        floors: Mapping[str, float] | None = None) -> dict[str, int]:
        """The calls left divided ``∝ σ`` between the channels (Neyman's allocation), each
        given at least :data:`MIN_CHANNEL_SHARE` of them (or its share in ``floors``) and
        :meth:`_min_channel` calls; an even split where no ``σ`` was measured (non-finite or
        all zero)."""
        names = list(sigmas)
        good = {c: s for c, s in sigmas.items() if math.isfinite(s) and s >= 0}
        total = sum(good.values())
        if len(good) < len(names) or not total > 0:
            shares = {c: 1.0 / len(names) for c in names}
        else:
            shares = {c: good[c] / total for c in names}
        floor = min(max(MIN_CHANNEL_SHARE * rest, self._min_channel()), rest / len(names))
        floors = floors or {}
        least = {c: max(floor, floors.get(c, 0.0) * rest) for c in names}
        out = {c: max(least[c], shares[c] * rest) for c in names}
        big = max(names, key=lambda c: out[c])
        if rest - sum(v for c, v in out.items() if c != big) < least[big]:
            # many channels: the floors (scaled to fit), and the rest ∝ σ
            scale = min(1.0, rest / max(sum(least.values()), 1e-300))
            spare = rest - scale * sum(least.values())
            out = {c: scale * least[c] + shares[c] * spare for c in names}
            big = max(names, key=lambda c: out[c])
        out[big] = rest - sum(v for c, v in out.items() if c != big)
        return {c: int(v) for c, v in out.items()}

    @staticmethod
    def channel_goals(rtol: float | None, atol: float | None, means: Mapping[str, float],
                      sigmas: Mapping[str, float]) -> dict[str, float | None]:
        """Per-channel absolute error targets ``g_c² = g² σ_c / Σσ`` for the target ``g`` of
        the combination (``max(atol, rtol |I|)`` with the pilot's means, ``I = I⁺ − I⁻`` for
        a sign split and ``Σ I_c`` otherwise); ``None`` without a target."""
        if rtol is None and atol is None:
            return {c: None for c in means}
        integral = abs(sum(-m if c == "-" else m for c, m in means.items()))
        goal = max(atol or 0.0, (rtol or 0.0) * integral, 1e-300)
        good = all(math.isfinite(s) and s >= 0 for s in sigmas.values())
        total = sum(sigmas.values()) if good else 0.0
        return {c: max(goal * math.sqrt(sigmas[c] / total if total > 0 else 1.0 / len(sigmas)),
                       1e-300) for c in sigmas}
