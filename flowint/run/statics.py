"""The Policy's decisions about the static samplers: which it measures before training, how
their measured errors compare, and when one is so good that training is not worth trying.

The static candidates are samplers that learn nothing from the calls: the identity (plain
randomized quasi-Monte Carlo), a per-axis grid adapted to the identity's points (what VEGAS
learns), in few dimensions on smooth integrands the identity fed interlaced (higher-order)
quasi-random points (:mod:`flowint.run.interlaced`), and in few dimensions on integrands with
a jump stratified sets whose cells' shares of the points follow the identity's points
(:mod:`flowint.run.strata`). Mixed into :class:`~flowint.run.policy.Policy`.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .estimator import MIN_RANDOMIZATIONS
from .interlaced import MAX_DIM as INTERLACED_MAX_DIM
from .model import MIN_ESS, Model, candidate_model, final_sizes, goal_var, model, pow2_floor
from .state import Measurement
from .strata import MAX_DIM as STRATA_MAX_DIM
from .strata import allocate, cell_sigmas, cells_per_axis, predicted_var, set_var, strata_sums

__all__ = ["EXPLORE_RANDOMIZATIONS", "EXPLORE_SIZES", "GRID_PRIOR", "JUMP_RATIO", "SMOOTH_RATE",
           "STRATA_GATE", "STRATA_PILOT", "STRATA_PRIOR", "STRATA_SHARE", "STRATA_ZONE",
           "StaticDecisions", "StrataModel", "shows_jump"]

EXPLORE_RANDOMIZATIONS = 8  # per size
EXPLORE_SIZES = 3           # sizes n, 4n, 16n per static candidate
GRID_PRIOR = 4.0            # the grid must be predicted this much better than the identity
#: The identity's measured variance exponent from which the interlaced candidate is measured:
#: over seeds 1–20 at 1.1·10⁶ calls the annulus (an indicator) measured 1.00–2.14, the signed
#: camel 2-D 1.95–2.5, the camel 2-D 2.04–2.5 and gaussian_genz 4-D 2.06–2.5 (2.5 is the cap).
SMOOTH_RATE = 2.2
#: Most of the calls left that measuring the stratified candidate may take (its sets need a
#: point in every cell, twice as many points as cells).
STRATA_SHARE = 0.08
#: Fewest of the identity's exploration points per cell of the stratified candidate's grid.
STRATA_PILOT = 4
#: The stratified candidate is measured only where at most this share of its cells show a
#: spread in their neighbourhood among the identity's points (``benchmarks/results/
#: strata_plan.md``, 20 seeds): on the annulus at 1.1·10⁶ calls (64² cells) 0.21; on the
#: smooth camel, signed camel and gaussian in 2-D and on the circles' ridges 1.0; on the
#: annulus at 10⁵ calls (16² cells) 0.80–0.83, where the cells are too coarse for the jump's
#: cells to be few. (A function that is nowhere constant, a jump on a smooth background
#: included, has a zone of 1: the candidate is for indicators and cuts.)
STRATA_ZONE = 0.5
#: The stratified candidate is measured only where its final variance predicted from the
#: identity's exploration points (i.i.d. points within cells) is below this many times the
#: identity's: a smooth integrand's quasi-random error falls far faster than a stratified
#: set's, and the measurement would be wasted. The prediction is pessimistic, for it sees
#: neither the cells' own spreads nor the order of the points within them: on the annulus at
#: 1.1·10⁶ calls 0.27–262× the identity's (whose own prediction is optimistic there), on the
#: smooth camel, signed camel and gaussian in 2-D 754–10⁵× at 1.1·10⁶ calls and 10–1.1·10⁴×
#: at 10⁵ (``strata_plan.md``): this test alone would not keep them out,
#: :data:`STRATA_ZONE` does.
STRATA_GATE = 1000.0
#: Least ratio of the stratified sets' measured variance to that of i.i.d. points in their
#: cells that shows a jump (:meth:`StaticDecisions.strata_jump`).
JUMP_RATIO = 0.1
#: The stratified candidate must be predicted this much better than the others: its
#: prediction is close on the annulus, while a trained flow's ignores the training iterations
#: that enter its estimate and so errs on the pessimistic side where training goes well.
STRATA_PRIOR = 2.0


def shows_jump(ratio: float) -> bool:
    """Whether the stratified sets' measured ratio to i.i.d. points in their cells
    (:meth:`StaticDecisions.strata_ratio`) shows a jump: finite and at least
    :data:`JUMP_RATIO`."""
    return math.isfinite(ratio) and ratio >= JUMP_RATIO


class StrataModel:
    """The stratified candidate's :class:`~flowint.run.model.Model` (the same interface): the
    variance of a set of ``n`` points is the one its allocation gives with i.i.d. points in
    each cell (:func:`~flowint.run.strata.set_var` of the cells' spreads ``sigmas``), times
    the measured ``ratio`` (what the spreads miss, and the order of the points within the
    cells at the measured size ``n_meas``), times ``(n / n_meas)^(-1/dim)``: within a cell a
    jump crosses, a scrambled net's variance falls as ``n_c^-(1+1/dim)``
    (:meth:`StaticDecisions.static_model`), and the measurement's cells hold only a few
    points each. Sets below one point per cell have an infinite variance. Its exponent
    ``a`` (which sizes the final sets) is ``1 + 1/dim``.

    On the annulus at 1.1·10⁶ calls (seeds 1, 3, 4) this predicts 4–6·10⁻¹⁰ against
    5–11·10⁻¹⁰ measured by the final sets (relative variances); without the last factor it
    was 3× higher, and training was chosen over it. Predicting from the allocation at each
    size, not a power law from one, keeps small sets (where one point per cell takes most
    of a set) from looking as good as large ones under an error target.
    """

    def __init__(self, sigmas: torch.Tensor, ratio: float, n_meas: int, dim: int, mean: float,
                 var_point: float, ess: float):
        self.sigmas, self.ratio, self.n_meas, self.dim = sigmas, float(ratio), n_meas, dim
        self.mean, self.var_point, self.ess = mean, var_point, ess
        self.a = 1.0 + 1.0 / dim
        self.min_set = 2 ** math.ceil(math.log2(max(sigmas.numel(), 2)))

    @property
    def reliable(self) -> bool:
        """As :attr:`Model.reliable`: an effective sample size of at least ``MIN_ESS``."""
        return self.ess >= MIN_ESS

    def set_var(self, n: float) -> float:
        """The predicted variance of one set of ``n`` points, relative to the mean squared."""
        n = int(n)
        mean2 = self.mean * self.mean
        if n < self.sigmas.numel() or not mean2 > 0 or not math.isfinite(self.ratio):
            return math.inf
        iid = set_var(self.sigmas, allocate(self.sigmas, n)) / mean2
        return iid * self.ratio * (n / self.n_meas) ** (-1.0 / self.dim)

    def var(self, calls: float, k: int | None = None) -> float:
        """As :meth:`Model.var`: a final estimate of ``calls`` in ``k`` sets (``None``: as
        :func:`~flowint.run.model.final_sizes` would draw it)."""
        if k is None and calls >= 2 * MIN_RANDOMIZATIONS:
            n, k = final_sizes(calls, self.a)
        else:
            k = k or MIN_RANDOMIZATIONS
            n = max(calls / k, 1.0)
        return self.set_var(n) / k

    def calls_for(self, goal_var: float, k: int = MIN_RANDOMIZATIONS) -> float:
        """As :meth:`Model.calls_for`: the calls of ``k`` sets of the smallest power-of-two
        size, at least one point per cell, whose variance meets ``goal_var``."""
        n = self.min_set
        while n < 2**40 and self.set_var(n) / k > goal_var:
            n *= 2
        return float(n * k)


class StaticDecisions:
    """Decisions about the static candidates (mixed into :class:`~flowint.run.policy.Policy`)."""

    dim: int
    settings: Any

    def static_candidates(self, measures: dict[str, Any], call: dict[str, Any] | None = None,
                          left: float = 0.0) -> tuple[str, ...]:
        """The samplers measured before training: the identity and the per-axis grid, and,
        up to :data:`~flowint.run.interlaced.MAX_DIM` dimensions where the identity's
        measured rate shows a smooth integrand (variance falling at least as ``n^-a`` with
        ``a`` = :data:`SMOOTH_RATE`), the identity fed higher-order (interlaced)
        quasi-random points (:mod:`flowint.run.interlaced`). On a discontinuous integrand
        the interlaced points gain nothing and their set means are heavy-tailed (annulus, 15
        sets of 2^16, 40 seeds: RMS error 6.1·10⁻⁵ against 4.0·10⁻⁵ for plain points). Where
        it is measured and not taken, its calls are missing from the final estimate, which
        then can fall below a power of two per set (camel 4-D and the annulus at 1.1·10⁶
        calls: 15 sets of 2^16 instead of 8 of 2^17).

        Up to :data:`~flowint.run.strata.MAX_DIM` dimensions, given the call record and the
        calls left, also stratified sets (:mod:`flowint.run.strata`), where
        :meth:`strata_plan` measures them."""
        out: tuple[str, ...] = ("identity", "grid")
        done = measures.get("identity", [])
        if len(done) < EXPLORE_SIZES:
            return out
        ident = model(done)
        if self.dim <= INTERLACED_MAX_DIM and ident.reliable and ident.a >= SMOOTH_RATE:
            out = (*out, "interlaced")
        if call is not None and (self.strata_plan(call, ident, left) or {}).get("measure"):
            out = (*out, "strata")
        return out

    def strata_plan(self, call: dict[str, Any], ident: Model,
                    left: float) -> dict[str, Any] | None:
        """The stratified candidate's grid and measurement, decided once (kept in
        ``call["strata"]``) when the identity's exploration is done: ``m`` cells per axis,
        as many as give each at least :data:`STRATA_PILOT` of the identity's points and let a
        measurement of :data:`EXPLORE_RANDOMIZATIONS` sets of ``n ≥ 2 m^dim`` points take at
        most :data:`STRATA_SHARE` of the calls left; ``measure`` where at most
        :data:`STRATA_ZONE` of the cells have any spread in their neighbourhood (``zone``):
        ``f`` is constant on most of the cube and jumps between regions (an indicator, a cut),
        and the final variance predicted from those points is within :data:`STRATA_GATE` of
        the identity's; ``sums``, the cells' point counts, sums and sums of squares (the
        measurement's points are added to them). ``None`` where it does not apply (too many
        dimensions, no points, or plain RQMC's measurement is unreliable); ``measure`` is
        also false where no cell has a spread at all (a constant integrand)."""
        if "strata" in call:
            return call["strata"]
        seen = call.get("seen")
        if self.dim > STRATA_MAX_DIM or not seen or not ident.reliable:
            return None
        n_seen = sum(int(s[0].shape[0]) for s in seen)
        cap = pow2_floor(STRATA_SHARE * left / EXPLORE_RANDOMIZATIONS)
        m = cells_per_axis(self.dim, min(n_seen / STRATA_PILOT, cap / 2))
        plan: dict[str, Any] = {"m": m, "measure": False}
        if m >= 4:
            u = torch.cat([s[0] for s in seen])
            fx = torch.cat([s[1] for s in seen])
            sums = strata_sums(u, fx, m, self.dim)
            n = 2 ** math.ceil(math.log2(2 * m**self.dim))
            sets = 16
            pred = predicted_var(sums, m, self.dim, left / sets) / sets
            zone = float((cell_sigmas(sums, m, self.dim) > 0).double().mean())
            plan.update(n=n, sums=sums, pilot_sums=sums, predicted=pred, zone=zone,
                        measure=0 < zone <= STRATA_ZONE and
                        pred <= STRATA_GATE * ident.var(left))
        call["strata"] = plan
        return plan

    def static_model(self, call: dict[str, Any], candidate: str) -> Model | StrataModel:
        """The :class:`~flowint.run.model.Model` of a static candidate's measurements.

        Where the stratified sets' measurement shows a jump (:meth:`strata_jump`), the
        quasi-random candidates' rate is capped at ``1 + 1/dim``, the variance exponent of
        scrambled nets on an integrand with a jump across a surface (of a net's ``n``
        elementary boxes only the ``∝ n^(1-1/dim)`` the surface crosses carry variance, each
        ``∝ 1/n²``; the annulus's plain-RQMC error falls as ``N^-3/4`` in 2-D): their
        rate fitted on small sets tends to be higher (the annulus at 1.1·10⁶ calls, 20
        seeds: 1.0–2.14 from sets of 128 to 2,048 points, ``strata_plan.md``; extrapolated
        to sets of 2^16 a rate of 2.1 predicts an error 3.5× smaller than the rate of 1.5
        does). The stratified candidate's own model is :meth:`strata_model`."""
        ms = call.get("measures", {}).get(candidate, [])
        if candidate == "strata":
            return self.strata_model(call["strata"], ms)
        return candidate_model(candidate, ms, self.jump_rate(call))

    def jump_rate(self, call: dict[str, Any]) -> float | None:
        """``1 + 1/dim`` where the stratified sets' measurement shows a jump
        (:meth:`strata_jump`): the cap on the quasi-random rate of every other sampler, the
        trained flow's too (a jump stays a jump through a smooth map); else ``None``."""
        return 1.0 + 1.0 / self.dim if self.strata_jump(call) else None

    def strata_jump(self, call: dict[str, Any]) -> bool:
        """Whether the stratified sets were measured and their variance is at least
        :data:`JUMP_RATIO` times what i.i.d. points in their cells would give
        (:meth:`strata_ratio`): within the cells a jump crosses, a few quasi-random points
        gain little over i.i.d. ones, while a smooth integrand's cells gain much (the
        annulus at 1.1·10⁶ calls: 0.12–0.62 over 20 seeds, ``strata_plan.md``). A safeguard
        behind :data:`STRATA_ZONE`: where a smooth integrand got through the plan (under a
        looser first plan, the camel 2-D and signed camel 2-D at 10⁵ calls, mostly 0.03–0.16),
        the cap made plain RQMC look far worse than it was."""
        plan = call.get("strata") or {}
        ms = call.get("measures", {}).get("strata")
        if not (plan.get("measure") and ms):
            return False
        return shows_jump(self.strata_ratio(plan, ms))

    def strata_ratio(self, plan: dict[str, Any], measures: list[Any]) -> float:
        """The stratified sets' measured variance over the one the cells' spreads (with the
        measurement's points added) predict for i.i.d. points under the measurement's own
        allocation (``inf`` where that prediction is 0 or the mean is)."""
        return self._strata_fit(plan, measures)[1]

    def _strata_fit(self, plan: dict[str, Any], measures: list[Any]) -> tuple[torch.Tensor, float]:
        """The cells' spreads with the measurement's points added, and :meth:`strata_ratio`."""
        last = Measurement(*measures[0])
        m, dim = int(plan["m"]), self.dim
        sig = cell_sigmas(plan["sums"], m, dim)
        pilot = allocate(cell_sigmas(plan["pilot_sums"], m, dim), int(last.n))
        mean2 = last.mean * last.mean
        seen = set_var(sig, pilot) / mean2 if mean2 > 0 else 0.0
        return sig, last.var_mean / seen if seen > 0 and math.isfinite(seen) else math.inf

    def strata_model(self, plan: dict[str, Any], measures: list[Any]) -> StrataModel:
        """The stratified candidate's model (:class:`StrataModel`): the cells' spreads with
        the measurement's points added (:func:`~flowint.run.strata.cell_sigmas`), and the
        ratio of the measured variance to the one those spreads predict for the
        measurement's own allocation (:meth:`strata_ratio`). Where the measurement shows no
        jump (:meth:`strata_jump`) it is unreliable (``ess = 0``) and the candidate is not
        taken: on a smooth integrand quasi-random points alone do better."""
        sig, ratio = self._strata_fit(plan, measures)
        base = model(measures[:1])
        return StrataModel(sig, ratio, int(Measurement(*measures[0]).n), self.dim, base.mean,
                           base.var_point, base.ess if shows_jump(ratio) else 0.0)

    def strata_min_set(self, call: dict[str, Any]) -> int:
        """Fewest points a stratified set may have: a power of two, one point per cell."""
        m = int((call.get("strata") or {}).get("m", 1))
        return 2 ** math.ceil(math.log2(max(m**self.dim, 2)))

    def explores(self, budget: int, n_train: int | None) -> bool:
        """Whether a call measures the static candidates before training."""
        return bool(self.settings.explore) and bool(self.settings.qmc) and n_train is None \
            and budget >= 10_000

    def _static_score(self, candidate: str, m: Model, left: float, goal: float | None) -> float:
        """:meth:`_final_var`, with the grid handicapped by :data:`GRID_PRIOR`: a per-axis map
        bends a smooth integrand's quasi-random structure, and its rate measured on small sets
        tends to over-predict (camel 2-D: predicted better than the identity, measured 5×
        worse), so it is chosen only where it is predicted clearly better (separable peaks,
        where it wins by orders of magnitude)."""
        prior = {"grid": GRID_PRIOR, "strata": STRATA_PRIOR}.get(candidate, 1.0)
        return self._final_var(m, left, goal) * prior

    def _final_var(self, m: Model, left: float, goal: float | None) -> float:
        """A static candidate's predicted final variance (fixed budget) or, with a goal,
        the calls it needs (both: smaller is better)."""
        if goal is not None:
            return m.calls_for(goal_var(goal, m.mean))
        return m.var(left)

    @staticmethod
    def _static_suffices(m: Model, left: float, goal: float | None, budget: float,
                         cancel: float = 1.0) -> bool:
        """Whether a static candidate is so good that training is not worth trying (asked only
        when the flow was not trained before the call, e.g. by a split run's pilot): it meets
        the goal within a tenth of the calls left, or its predicted relative error is below
        that of i.i.d. points with a per-sample relative std of ``ρ_floor(B) = 0.2 (3·10⁴ /
        B)^½`` (clipped to [0.005, 0.3]): a rough envelope of what flows reach with ``B``
        calls in our benchmarks (about 0.17 at 3·10⁴ calls in 3-D, 0.01–0.2 at 10⁶).

        For a sign-changing ``f`` the envelope is ``cancel`` times larger (``∫|f| / |∫f|``,
        :meth:`~flowint.run.allocation.ChannelDecisions.cancellation`): two channels each at
        ``ρ`` give at best ``ρ ∫|f| / |∫f|`` per sample (one density cannot go below
        ``√(cancel² − 1)``). The signed camel 2-D at 10⁵ calls (``cancel = 3``) split on two
        of five seeds without it, with error bars 3–5× those of plain RQMC."""
        if goal is not None and m.calls_for(goal_var(goal, m.mean)) <= 0.1 * left:
            return True
        floor = min(max(0.2 * math.sqrt(3e4 / max(budget, 1.0)), 0.005), 0.3) * cancel
        return m.var(left) < floor ** 2 / max(left, 1.0)
