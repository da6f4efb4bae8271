"""The Policy: every decision about what the rest of the budget buys.

Candidates for the final estimate are *samplers* pushed quasi-random points through: the
identity (plain randomized QMC), a per-axis grid adapted to the exploration points (what VEGAS
learns), in few dimensions interlaced points or stratified sets (:mod:`flowint.run.statics`),
and the flow as trained so far. Each is *measured* in the run: ``k`` scrambled-Sobol
randomizations at two sizes ``n`` and ``4n`` give the variance of one randomization's mean,
``v(n) = v(n1) (n / n1)^-a``, and so the error a final estimate of ``N`` calls would reach.
Training is the remaining candidate: its per-sample relative standard deviation ``ρ`` falls
at a measured rate ``r`` per call, and a flow's quasi-random gain ``G = var_point / (n v(n))``
is measured like the others. After each training iteration the policy predicts

- the final variance of stopping now: ``(ρ I)² / (G N)``, ``N`` the calls left (fixed budget)
  or the calls the error target needs, and
- the marginal value of one more iteration of ``b`` calls: it lowers ``ρ²`` by ``2 r b`` and,
  with ``reuse``, its own points enter the estimate,

and trains on while ``2 r G N + ω > G c_train / c_final`` (``ω = 1`` with reuse; the cost
ratio is that of seconds per call with an error target or a time limit, else 1) and while
training can still beat the best static candidate. Every choice is a function of the
:class:`~flowint.run.state.RunState` alone, so a resumed run makes the same ones.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from ..result import IterationRecord
from .allocation import ChannelDecisions
from .estimator import MIN_RANDOMIZATIONS
from .model import Model, candidate_model, final_sizes, goal_var, pow2_floor, square
from .replan import replan
from .sizing import (
    FLOAT32_FLOOR,
    explore_size,
    flow_dtype,
    median,
    tempered_batch,
    training_trend,
)
from .state import Measurement, RunState
from .statics import (
    EXPLORE_RANDOMIZATIONS,
    EXPLORE_SIZES,
    GRID_PRIOR,
    SMOOTH_RATE,
    STRATA_SHARE,
    StaticDecisions,
)

__all__ = ["EXPLORE_RANDOMIZATIONS", "EXPLORE_SIZES", "FLOAT32_FLOOR", "GRID_PRIOR",
           "SMOOTH_RATE", "Action", "Policy", "flow_dtype", "training_trend"]

#: With an error target, the final sets of a trained flow are sized for this fraction of the
#: calls the target is predicted to need: that prediction, from the training iterations'
#: ``ρ`` (which lags a flow still improving) and an extrapolated quasi-random gain, can be
#: several times too high or too low, and at least 16 sets are drawn. Sets found too small
#: grow (:mod:`flowint.run.replan`); sets too large cannot shrink (camel 8-D at
#: ``rtol=1e-3``: sized for 586,000 calls, 16 sets of 32,768 where 250,000 calls sufficed).
FLOW_NEED_SHRINK = 4.0


class Action(NamedTuple):
    """What the integrator does next.

    Attributes:
        kind: ``"measure"`` (randomizations of a candidate), ``"train"`` (one training
            iteration), ``"final"`` (the final estimate), ``"search"`` (the mode search,
            :mod:`flowint.run.modes`) or ``"split"`` (go on as channels: a sign split,
            :mod:`flowint.run.channels`, or a multi-channel run,
            :mod:`flowint.run.mode_channels`).
        candidate: ``"identity"``, ``"grid"`` or ``"flow"``.
        n: points per randomization (per iteration for ``"train"``).
        k: randomizations (most randomizations for ``"final"``).
        planned_var: predicted variance of the final estimate (its combination weight).
    """

    kind: str
    candidate: str = "flow"
    n: int = 0
    k: int = 0
    planned_var: float = math.inf


class Policy(ChannelDecisions, StaticDecisions):
    """Budget decisions for one integrator (see the module doc; sign-changing integrands:
    :mod:`flowint.run.allocation`).

    Arguments:
        dim: dimension.
        settings: the integrator's :class:`~flowint.run.settings.Settings`.
    """

    def __init__(self, dim: int, settings: Any):
        self.dim = dim
        self.settings = settings

    tempered_batch = staticmethod(tempered_batch)
    explore_size = staticmethod(explore_size)
    training_trend = staticmethod(training_trend)

    # ---------------------------------------------------------------- sizes
    def batch_size(self, budget: int | None = None) -> int:
        """Points per training iteration: the setting, else grows with ``dim``, capped by the
        budget (at least 30 iterations)."""
        if self.settings.batch_size is not None:
            return max(1, int(self.settings.batch_size))
        n = min(20_000, 2_000 * max(2, self.dim))
        if budget is not None:
            n = min(n, max(100, budget // 30))
        return n

    # ---------------------------------------------------------------- the next step
    def goal(self, call: dict[str, Any], state: RunState, rtol: float | None,
             atol: float | None) -> float | None:
        """The error target as an absolute standard error (``None``: a fixed budget), with
        ``|I|`` from the best measurement so far (the trained flow's, else training's, else
        plain quasi-Monte Carlo's)."""
        if rtol is None and atol is None:
            return None
        measures = call.get("measures", {})
        train = [r for r in state.history[call.get("history_start", 0):] if r.phase == "train"]
        integral = 0.0
        if measures.get("flow"):
            integral = abs(Measurement(*measures["flow"][-1]).mean)
        elif train:
            integral = self.training_trend(train)[1]
        elif measures.get("identity"):
            integral = abs(Measurement(*measures["identity"][-1]).mean)
        return max(self.goal_value(rtol, atol, integral), 1e-300)

    @staticmethod
    def goal_value(rtol: float | None, atol: float | None, mean: float) -> float:
        """``max(atol, rtol |mean|)``."""
        return max(atol or 0.0, (rtol or 0.0) * abs(mean))

    def cost_ratio(self, state: RunState, train: list[IterationRecord]) -> float:
        """Seconds per training call over seconds per final call, measured so far and rounded
        to a power of two (frozen in the call record, so a resumed run decides alike).

        A training call costs its evaluation and its share of the training seconds (drawing
        the batch and the gradient steps); a final call its evaluation and the estimator's
        sampling seconds per call of the run so far. That understates a trained flow's cost
        per final point (the measurements' sets are small and most calls were training
        ones), which stops training earlier than the true ratio would; the rate of
        improvement :func:`training_trend` measures lags behind a flow that improves ever
        more slowly, and with the true ratio (the training draws' seconds per point) the
        policy trained too long (camel 8-D at ``rtol=1e-3``, seed 1: 14 iterations and
        13.5 s against 9.3 s)."""
        calls = max(state.n_evals, 1)
        c_f = state.spent("f") / calls
        c_train = c_f + state.spent("train") / max(sum(r.n for r in train), 1)
        c_final = c_f + state.spent("sample") / calls
        ratio = c_train / max(c_final, 1e-12)
        return 2.0 ** round(math.log2(min(max(ratio, 1.0), 2.0**20)))

    def next_action(self, call: dict[str, Any], state: RunState, left: float,
                    goal: float | None) -> Action:
        """The next step of a call of :meth:`~flowint.Integrator.__call__`.

        Arguments:
            call: the call's progress record (measures, choice, budget).
            state: the run state (history, seconds).
            left: calls left (time-limited calls included).
            goal: the error target as an absolute standard error (``None``: fixed budget).
        """
        history = state.history
        if self.search_due(call, left):
            return Action("search")
        if call.get("split") is not None or self.settings.signed == "split" or \
                self.settings.channels is not None:
            if self.split_due(call, left):
                return Action("split")
        measures = call.setdefault("measures", {})
        n1 = int(call["explore_n"]) if call.get("explore_n") else 0
        for cand in (self.static_candidates(measures, call, left) if n1 else ()):
            done = measures.get(cand, [])
            if cand == "strata":  # one size, from its plan
                n = int(call["strata"]["n"])
                if done or cand in call.setdefault("explored", []):
                    continue
                if n * EXPLORE_RANDOMIZATIONS > 2 * STRATA_SHARE * left:
                    call["explored"].append(cand)  # too dear for what is left (time limit)
                    continue
                return Action("measure", cand, n, EXPLORE_RANDOMIZATIONS)
            if len(done) < EXPLORE_SIZES and cand not in call.setdefault("explored", []):
                n = n1 * 4 ** len(done)
                if done and n * EXPLORE_RANDOMIZATIONS > 0.05 * left:
                    call["explored"].append(cand)  # too dear for what is left (time limit)
                    continue
                return Action("measure", cand, n, EXPLORE_RANDOMIZATIONS)
        if call.get("choice"):
            return self.final_action(call, call["choice"], left, goal, history)
        train = [r for r in history[call["history_start"]:] if r.phase == "train"]
        if call.get("n_train") is not None:
            spent = sum(r.n for r in history[call["history_start"]:]
                        if r.phase in ("train", "warmup"))
            if self.split_due(call, left):
                return Action("split")
            if spent < call["n_train"]:
                return Action("train", "flow", min(call["batch"], call["n_train"] - spent))
            return self.final_action(call, "flow", left, goal, history)
        timed = goal is not None or call["key"].get("time_limit") is not None
        if timed and "cost_ratio" not in call and len(train) >= 4:
            call["cost_ratio"] = self.cost_ratio(state, train)
        return self._train_or_stop(call, train, left, goal, history)

    def _train_or_stop(self, call: dict[str, Any], train: list[IterationRecord], left: float,
                       goal: float | None, history: list[IterationRecord]) -> Action:
        measures = call["measures"]
        batch = int(call["batch"])
        statics = {c: mod for c, m in measures.items() if c != "flow" and m
                   and (mod := self.static_model(call, c)).reliable}
        best_static = min(statics, key=lambda c: self._static_score(c, statics[c], left, goal),
                          default=None)
        if best_static is not None and not train and not call.get("trained") and \
                self._static_suffices(statics[best_static], left, goal, call["key"]["budget"],
                                      self.cancellation(call)):
            return self._choose(call, best_static, left, goal, history)
        if self.split_due(call, left):  # no static sampler suffices: f⁺ and f⁻ apart
            return Action("split")
        cap = float(call["train_cap"])
        spent = sum(r.n for r in train)
        if spent + batch > cap or left < 2 * batch:
            return self._choose_best(call, statics, train, left, goal, history)
        probe = max(4, min(2 * int(self.settings.patience), 6))
        if train and train[-1].beta < 1.0:  # no stop while the target is tempered
            return Action("train", "flow", self.tempered_batch(batch, train[-1].beta,
                                                               train[0].beta))
        if len(train) < probe:
            return Action("train", "flow", batch)
        flow_m = measures.get("flow", [])
        rho, mean, rate = self.training_trend(train)
        if self.settings.qmc and self._stale(call, flow_m, rho):
            call["flow_rho"] = rho
            measures["flow"] = []
            # two sizes, n and 4n, within 5 % of what is left (a time limit shrinks it)
            n = min(call["explore_n"] or 64, pow2_floor(left / (40 * EXPLORE_RANDOMIZATIONS)))
            if n >= 16:
                return Action("measure", "flow", n, EXPLORE_RANDOMIZATIONS)
            flow_m = measures["flow"]  # too few calls left to measure: train on or stop
        if len(flow_m) == 1 and 4 * int(flow_m[0][0]) * EXPLORE_RANDOMIZATIONS <= 0.1 * left:
            return Action("measure", "flow", 4 * int(flow_m[0][0]), EXPLORE_RANDOMIZATIONS)
        if self._keep_training(call, statics, rho, mean, rate, left, goal, batch, spent):
            return Action("train", "flow", batch)
        return self._choose_best(call, statics, train, left, goal, history)

    # ---------------------------------------------------------------- predictions
    def _stale(self, call: dict[str, Any], flow_m: list[Any], rho: float) -> bool:
        """Whether the flow's quasi-random gain must be (re)measured: never measured, or
        ``ρ`` fell below 60 % of what it was at the last measurement."""
        if not flow_m:
            return True
        if len(flow_m) < 2:
            return False
        return rho < 0.6 * float(call.get("flow_rho", rho))

    def _flow_gain(self, call: dict[str, Any], n: float) -> float:
        flow_m = call["measures"].get("flow", [])
        if len(flow_m) < 2:
            return 1.0
        return candidate_model("flow", flow_m, self.jump_rate(call)).gain(n)

    def _keep_training(self, call: dict[str, Any], statics: dict[str, Model], rho: float,
                       mean: float, rate: float, left: float, goal: float | None,
                       batch: int, spent: float = math.inf) -> bool:
        """The marginal rule of the module doc, and an optimistic look at the static
        candidates: if even training on at the current rate (for as many calls again as it
        has spent, at most half of what is left) cannot beat the best of them, stop."""
        if not (math.isfinite(rho) and rho > 0 and mean > 0):
            return True
        omega = 1.0 if self.settings.reuse else 0.0
        ratio = float(call.get("cost_ratio", 1.0))
        if goal is not None:
            need = square(rho * mean / goal)
            gain = self._flow_gain(call, need / MIN_RANDOMIZATIONS)
            horizon = need / gain
        else:
            gain = self._flow_gain(call, left / MIN_RANDOMIZATIONS)
            horizon = left
        if 2.0 * rate * gain * horizon + omega <= gain * ratio:
            return False
        if statics:
            half = 0.5 * left
            rho_end = rho * math.exp(-rate * min(half, spent))
            flow_var = square(rho_end) / (self._flow_gain(call, half / MIN_RANDOMIZATIONS)
                                                * half)
            best = min(m.var(left) for m in statics.values())
            if flow_var > best:
                return False
        return True

    # ---------------------------------------------------------------- the choice
    def _choose_best(self, call: dict[str, Any], statics: dict[str, Model],
                     train: list[IterationRecord], left: float, goal: float | None,
                     history: list[IterationRecord]) -> Action:
        options = {c: self._static_score(c, m, left, goal) for c, m in statics.items()}
        if train:
            rho, mean, _ = self.training_trend(train)
            if goal is not None:
                need = square(rho * mean / goal)
                options["flow"] = need / self._flow_gain(call, need / MIN_RANDOMIZATIONS)
            else:
                options["flow"] = square(rho) / (
                    self._flow_gain(call, left / MIN_RANDOMIZATIONS) * max(left, 1.0))
        choice = min(options, key=lambda c: options[c]) if options else "flow"
        return self._choose(call, choice, left, goal, history)

    def _choose(self, call: dict[str, Any], choice: str, left: float, goal: float | None,
                history: list[IterationRecord]) -> Action:
        call["choice"] = choice
        return self.final_action(call, choice, left, goal, history)

    def final_action(self, call: dict[str, Any], choice: str, left: float,
                     goal: float | None, history: Any) -> Action:
        """The final estimate with ``choice``: randomizations of a power-of-two size. With a
        fixed budget, :func:`~flowint.run.model.final_sizes` of the calls left (8–15 larger
        sets where ``choice``'s measured convergence makes them pay, else at least
        :data:`MIN_RANDOMIZATIONS`); with a goal, at least :data:`MIN_RANDOMIZATIONS` sized
        to the calls the goal is predicted to need (``history``: the history or the run
        state)."""
        if isinstance(history, RunState):
            history = history.history
        planned = self.planned_var(call, choice, left, history)
        if not self.settings.qmc:  # i.i.d. batches; the error from the pooled variance
            n = max(1, min(self.batch_size(int(left)), int(left)))
            return Action("final", choice, n, max(int(left // n), 1), planned)
        if goal is None and left >= 2 * MIN_RANDOMIZATIONS:
            size, k = final_sizes(left, self._final_rate(call, choice))
            if choice == "strata" and size < self.strata_min_set(call):  # a point per cell
                size = self.strata_min_set(call)
                k = max(int(left // size), 1)
            return Action("final", choice, size, k, planned)
        calls = left
        if goal is not None:
            need = self.calls_needed(call, choice, goal, history)
            if need is not None:  # the flow's need is a rough guess: sets that may grow
                calls = min(left, need / (FLOW_NEED_SHRINK if choice == "flow" else 1.0))
        n = max(calls / MIN_RANDOMIZATIONS, 2.0)
        if left >= 2 * MIN_RANDOMIZATIONS:
            n = min(n, left / MIN_RANDOMIZATIONS)
        size = 2 ** max(1, int(math.floor(math.log2(n))))
        if goal is None:
            size = min(size, pow2_floor(max(left / MIN_RANDOMIZATIONS, 2)))
        size = min(size, pow2_floor(left))  # never more calls than are left
        if choice == "strata":  # a point in every cell
            size = max(size, self.strata_min_set(call))
        return Action("final", choice, size, max(int(left // size), 1), planned)

    def replan(self, call: dict[str, Any], action: Action, weights: list[Any], sdev: float,
               goal: float, history: list[IterationRecord],
               first: int) -> tuple[Action, list[Any], int] | None:
        """A larger-set final action, the measurement of the sets so far and the new sets to
        draw before a look at the goal, where starting the final estimate again is predicted
        to take under half the seconds of going on (:func:`flowint.run.replan.replan`); else
        ``None``."""
        return replan(call, action, weights, sdev, goal, history, first, EXPLORE_RANDOMIZATIONS)

    def _final_rate(self, call: dict[str, Any], choice: str) -> float:
        """The measured convergence exponent ``a`` of ``choice``'s quasi-random error (1, no
        gain, when it was not measured at two sizes)."""
        ms = call.get("measures", {}).get(choice, [])
        if choice == "flow":
            return candidate_model(choice, ms, self.jump_rate(call)).a if len(ms) >= 2 else 1.0
        return self.static_model(call, choice).a if len(ms) >= 2 else 1.0

    def calls_needed(self, call: dict[str, Any], choice: str, goal: float,
                     history: list[IterationRecord]) -> float | None:
        """Calls the goal needs with ``choice``, from its measurements (or training)."""
        ms = call.get("measures", {}).get(choice, [])
        if choice != "flow" and ms:
            m = self.static_model(call, choice)
            return m.calls_for(goal_var(goal, m.mean))
        train = [r for r in history[call.get("history_start", 0):] if r.phase == "train"]
        if not train:
            return None
        rho, mean, _ = self.training_trend(train)
        need = square(rho * mean / goal)
        if not math.isfinite(need):
            return None
        return need / self._flow_gain(call, need / MIN_RANDOMIZATIONS)

    def planned_var(self, call: dict[str, Any], choice: str, left: float,
                    history: list[IterationRecord]) -> float:
        """The final estimate's predicted variance, fixed before its draw (its weight in the
        combination with training iterations)."""
        ms = call.get("measures", {}).get(choice, [])
        if choice != "flow" and ms:
            return self.static_model(call, choice).var(left)
        train = [r for r in history[call.get("history_start", 0):] if r.phase == "train"]
        if not train or (self.settings.qmc and len(call.get("measures", {}).get("flow", [])) < 2):
            return math.inf  # no measured quasi-random gain: no weight to fix in advance
        rho, mean, _ = self.training_trend(train)
        return square(rho) / (self._flow_gain(call, left / MIN_RANDOMIZATIONS)
                                    * max(left, 1.0))

    # ---------------------------------------------------------------- the flow's dtype
    def measure_dtype(self) -> torch.dtype:
        """The dtype a call measures its trained flow in (:func:`flow_dtype`: float32 with
        ``estimate_dtype="auto"``: a measurement estimates a spread far above rounding)."""
        return flow_dtype(self.settings.estimate_dtype, math.inf)

    def final_dtype(self, call: dict[str, Any], action: Action, goal: float | None,
                    history: list[IterationRecord]) -> torch.dtype:
        """The dtype of the trained flow in a call's final estimate (:func:`flow_dtype` of
        the relative error asked for, ``goal`` over the integral; else of the one predicted,
        ``√action.planned_var``; without a measured quasi-random gain, training's
        ``ρ / √N`` with the largest gain the model extrapolates, 100)."""
        train = [r for r in history[call.get("history_start", 0):] if r.phase == "train"]
        rho, mean, _ = training_trend(train)
        var = float(action.planned_var)
        if goal is not None:
            rel = goal / abs(mean) if mean != 0 else 0.0
        else:
            rel = math.sqrt(var) if 0 <= var < math.inf else \
                rho / math.sqrt(100.0 * max(action.n * action.k, 1))
        return flow_dtype(self.settings.estimate_dtype, rel)

    # ---------------------------------------------------------------- standalone training
    def converged(self, train: list[IterationRecord], beta: float) -> bool:
        """:meth:`~flowint.Integrator.train` with ``early_stop``: ``ρ`` improved by less than
        2 % over the last ``patience`` iterations (and tempering is over)."""
        p = int(self.settings.patience)
        if p == 0 or len(train) < 2 * p or beta < 1.0:
            return False
        recent = median([r.rel_std for r in train[-p:]])
        before = median([r.rel_std for r in train[-2 * p:-p]])
        if not (math.isfinite(recent) and math.isfinite(before)) or recent <= 0:
            return False
        return math.log(before / recent) / p < math.log(1.02) / p
