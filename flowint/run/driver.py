"""One call of the integrator on one integrand: the steps the Policy asks for, carried out.

:class:`CallDriver` evaluates the integrand (counting calls and seconds into the
:class:`~flowint.run.state.RunState`), runs a training iteration through the Trainer, a
measurement or the final estimate through the Estimator, and checkpoints between steps. It
decides nothing: every choice is :class:`~flowint.run.policy.Policy`'s.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..flows import Flow, PerAxisGrid
from ..integrand import Integrand
from ..result import IterationRecord, Result
from ..stats import scaled_mean_std
from .estimator import FEWEST_RANDOMIZATIONS, MIN_RANDOMIZATIONS, Estimator, next_stage, qmc_errors
from .interlaced import InterlacedIdentity
from .mode_channels import ModeRun
from .model import square
from .modes import modes_from_pilot, pilot_points, search_calls
from .policy import Action
from .report import build_result
from .split import SplitRun, track_signs
from .state import Piece
from .static_samplers import adapted_grid, grid_flow, keep_points, stratified
from .strata import Stratified

if TYPE_CHECKING:  # pragma: no cover
    from ..integrator import Integrator

__all__ = ["CallDriver", "LOG_HEADROOM", "check_count", "check_tolerances", "progress_bar"]

#: With ``log=True``: how far (in ``log f``) values may exceed the run's scale before the
#: scale is raised (``exp(64)`` squared stays far inside float64).
LOG_HEADROOM = 64.0


class CallDriver:
    """Carries out the steps of one call (see the module doc).

    Arguments:
        integ: the integrator (its state, flow, trainer, estimator and policy).
        integrand: the wrapped integrand.
    """

    def __init__(self, integ: Integrator, integrand: Integrand):
        self.integ = integ
        self.f = integrand
        self.last_log_f = torch.empty(0, dtype=torch.float64)  # log f of the last evaluation
        self.t_start = time.perf_counter()
        self.seconds0 = dict(integ.state.seconds)

    def elapsed(self) -> float:
        """Wall-clock seconds of this call (across a resumption, those before it included)."""
        return time.perf_counter() - self.t_start

    @property
    def state(self):
        return self.integ.state

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, u: Tensor) -> Tensor:
        """``f(u)``, with the calls, dropped values and seconds counted in the state.

        An integrand given as a logarithm returns ``f(u) / exp(state.log_scale)``: the scale
        follows the largest ``log f`` seen (the stored values are moved with it when a batch
        exceeds it by more than :data:`LOG_HEADROOM`), so every value stays representable.
        """
        before, t_before = self.f.n_dropped, self.f.eval_time
        fx = self.f(u)
        self.state.n_evals += int(u.shape[0])
        self.state.n_dropped += self.f.n_dropped - before
        self.state.add_seconds("f", self.f.eval_time - t_before)
        if not self.f.log:
            return fx
        self.last_log_f = fx.to(torch.float64)  # for log_target: exp() may underflow
        return self.from_log(fx)

    def from_log(self, log_f: Tensor) -> Tensor:
        """``exp(log_f - log_scale)``, the run's scale raised first if ``log_f`` needs it."""
        state = self.state
        finite = log_f[torch.isfinite(log_f)]
        if finite.numel():
            top = float(finite.max())
            if state.log_scale is None or top > state.log_scale + LOG_HEADROOM:
                state.rescale(top)
        return torch.exp(log_f - (state.log_scale or 0.0))

    def log_target(self, fx: Tensor) -> Tensor:
        """``log`` of the training target at the points just evaluated into ``fx`` (float64).

        For an integrand given as a logarithm this is ``log f`` itself, as returned, so that
        points far below the run's scale (``fx`` 0 after ``exp``) still rank against each
        other in training; otherwise ``log`` of :meth:`target`.
        """
        if self.f.log:
            return self.last_log_f
        return torch.log(self.target(fx).to(torch.float64))

    def target(self, fx: Tensor) -> Tensor:
        """The non-negative function the flow is trained on (``|f|`` or a norm)."""
        if fx.ndim == 1:
            return fx.abs()
        spec = self.integ.settings.train_on
        if spec == "norm":  # scaled per row: components near 1e200 must not overflow
            big = fx.abs().amax(-1).clamp_min(1e-300)
            return (fx / big.unsqueeze(-1)).norm(dim=-1) * big
        if spec >= fx.shape[1]:
            raise ValueError(f"train_on={spec}, but the integrand has {fx.shape[1]} components")
        return fx[:, spec].abs()

    def record(self, phase: str, fx: Tensor, log_q: Tensor, t0: float,
               **extra: float) -> IterationRecord:
        """Append an iteration's record (component 0) to the history."""
        w = Estimator.weights(fx if fx.ndim == 1 else fx[:, 0], log_q)
        if fx.ndim == 1 and not self.f.log and self.state.call is not None:
            track_signs(self.state.call, w)
        rec = iteration_record(phase, w, time.perf_counter() - t0, **extra)
        self.state.history.append(rec)
        return rec

    # ---------------------------------------------------------------- steps
    def train_iteration(self, n: int, position: float) -> IterationRecord:
        """Draw ``n`` points from the flow, evaluate them, and train one iteration."""
        t0 = time.perf_counter()
        integ = self.integ
        warming = self.state.warmed < int(integ.settings.warmup)
        with torch.no_grad():
            u, log_q0 = integ.flow.sample(n, seed=integ.generator)
        self.state.add_seconds("train", time.perf_counter() - t0)  # drawing is training too
        log_q0 = log_q0.to(torch.float64)
        fx = self.evaluate(u)
        if warming:
            return self._warmup(u, fx, log_q0, t0)
        lr = integ.trainer.learning_rate(self.state, position)
        loss = integ.trainer.step(self.state, u, self.log_target(fx), log_q0, lr, position)
        return self.record("train", fx, log_q0, t0, loss=loss, lr=lr, beta=self.state.beta)

    def _warmup(self, u: Tensor, fx: Tensor, log_q: Tensor, t0: float) -> IterationRecord:
        grid = self.integ.flow.transforms[-1]
        if isinstance(grid, PerAxisGrid):
            wt = self.target(fx) * torch.exp(-log_q)
            wt = (wt / wt.max().clamp_min(1e-300)) ** 2  # scaled: huge or tiny f stay finite
            grid.adapt(u, wt, alpha=float(self.integ.settings.grid_alpha))
        self.state.warmed += 1
        return self.record("warmup", fx, log_q, t0)

    def measure(self, call: dict[str, Any], action: Action) -> None:
        """``action.k`` quasi-random randomizations of ``action.n`` points of a candidate."""
        t0 = time.perf_counter()
        if action.candidate == "grid" and "grid" not in call:
            call["grid"] = adapted_grid(call["seen"], self.f)
        sampler = self.sampler(call, action.candidate, self.integ.policy.measure_dtype())
        weights, us, fxs, log_qs, scales, log_ts = [], [], [], [], [], []
        for _ in range(action.k):
            u, log_q = self.integ.estimator.draw(self.state, sampler, action.n, qmc=True)
            fx = self.evaluate(u)
            log_ts.append(self.log_target(fx))
            weights.append(Estimator.weights(fx, log_q))
            us.append(u)
            fxs.append(fx)
            log_qs.append(log_q)
            scales.append(self.state.log_scale)
        if scales[0] != scales[-1]:  # log=True: the scale rose during the measurement
            factors = [math.exp(c - scales[-1]) if c is not None else 1.0 for c in scales]
            weights = [w * c for w, c in zip(weights, factors, strict=True)]
            fxs = [fx * c for fx, c in zip(fxs, factors, strict=True)]
        m = Estimator.measurement(weights)
        call["measures"].setdefault(action.candidate, []).append(list(m))
        u, fx, log_q = torch.cat(us), torch.cat(fxs), torch.cat(log_qs)
        self.record(f"{action.candidate}", fx, log_q, t0)
        keep_points(call, action.candidate, u, fx)
        # the evaluated points are training samples too (each with the density it came from)
        buf = self.state.buffer
        buf.append((u.to(self.integ.flow.dtype), torch.cat(log_ts), log_q))
        del buf[: max(0, len(buf) - max(1, int(self.integ.settings.buffer)))]

    def search(self, call: dict[str, Any], budget: int) -> None:
        """The mode search of ``channels="modes"`` or ``"auto"`` (:mod:`flowint.run.modes`):
        its modes into the call record; its quasi-random pilot, one record ``"search"`` in the
        history, joins the training buffer (density 1). Training's cap is then taken from
        the calls left (a fixed fraction of them, as for a call without a search)."""
        t0 = time.perf_counter()
        before = self.state.n_evals
        dim = self.integ.dim
        pilot, most = search_calls(budget, dim)
        u = pilot_points(dim, pilot, self.integ.generator)
        fx = self.evaluate(u)
        if fx.ndim != 1:
            raise ValueError("channels= needs a scalar integrand")
        lf = self.log_target(fx)
        log_q = torch.zeros(u.shape[0], dtype=torch.float64)
        modes = modes_from_pilot(self.log_abs, u, lf, max(most - pilot, 2 * dim + 1))
        call["modes"] = [m.to_plain() for m in modes]
        if call.get("n_train") is None:
            left = budget - (self.state.n_evals - before)
            call["train_cap"] = int(left * float(self.integ.settings.train_fraction))
        self.record("search", fx, log_q, t0)
        buf = self.state.buffer
        buf.append((u.to(self.integ.flow.dtype), lf, log_q))
        del buf[: max(0, len(buf) - max(1, int(self.integ.settings.buffer)))]

    def log_abs(self, u: Tensor) -> Tensor:
        """``log |f(u)|`` (float64; ``log f`` as returned for an integrand given as a
        logarithm), its calls counted."""
        fx = self.evaluate(u)
        if fx.ndim != 1:
            raise ValueError("channels= needs a scalar integrand")
        return self.log_target(fx)

    def sampler(self, call: dict[str, Any] | None, candidate: str,
                dtype: torch.dtype | None = None) -> Flow | InterlacedIdentity | Stratified | None:
        """The frozen sampler of a candidate (``None``: the identity); a trained flow in
        ``dtype`` (default: the estimator's)."""
        own = self.integ.estimator.dtype
        statics = {"identity": lambda: None, "grid": lambda: grid_flow(call["grid"], own),
                   "interlaced": lambda: InterlacedIdentity(self.integ.dim, own),
                   "strata": lambda: stratified(call["strata"], self.integ.dim, own)}
        return statics.get(candidate, lambda: self.integ.frozen_flow(dtype))()

    # ---------------------------------------------------------------- a whole call
    def call(self, budget: int, rtol: float | None, atol: float | None,
             n_train: int | None, time_limit: float | None) -> Result:
        """:meth:`~flowint.Integrator.__call__` (arguments checked there)."""
        integ, state = self.integ, self.state
        batch = integ.batch_size(budget)
        explores = integ.policy.explores(budget, n_train)
        if n_train is None and not explores and budget < 2 * batch:
            raise ValueError(f"budget={budget} is too small: it must allow one training and one "
                             f"estimation iteration of {batch} points (set batch_size lower)")
        if n_train is not None and budget - n_train < 1:
            raise ValueError(f"budget={budget} leaves nothing for the final estimate after "
                             f"n_train={n_train}")
        key = {"budget": budget, "rtol": rtol, "atol": atol, "n_train": n_train,
               "time_limit": time_limit}
        call = state.begin("call", key, start_evals=state.n_evals, history_start=len(
            state.history), batch=batch, n_train=n_train, measures={}, elapsed=0.0,
            explore_n=integ.policy.explore_size(budget, rtol, atol) if explores else 0,
            seconds0=dict(state.seconds), trained=any(r.phase == "train" for r in state.history),
            train_cap=n_train or int(budget * float(integ.settings.train_fraction)))
        self.t_start = time.perf_counter() - float(call["elapsed"])
        self.seconds0 = dict(call["seconds0"])
        state.split_weights = None  # the integrator samples its own flow unless this splits
        state.channel_maps = None
        with progress_bar(integ.settings.progress, budget, "integrating") as bar:
            while not call.get("final_action"):
                left = self.calls_left(call, budget, time_limit)
                goal = integ.policy.goal(call, state, rtol, atol)
                action = integ.policy.next_action(call, state, left, goal)
                if action.kind == "split":  # f⁺ and f⁻, or f's channels, from here on
                    result = self.channel_call(call, budget, rtol, atol, n_train, time_limit)
                    integ.checkpoint_step(done=True)  # the mixture weights reach the file
                    state.end("call")
                    return result
                if action.kind == "final":
                    call["final_action"], call["goal"] = list(action), goal
                    integ.checkpoint_step(done=True)  # the end of exploration and training
                    break
                self.step(call, action, bar)
            action, goal = Action(*call["final_action"]), call["goal"]
            result = self.final(call, action, goal, rtol, atol, bar)
        state.end("call")
        return result

    def channel_call(self, call: dict[str, Any], budget: int, rtol: float | None,
                     atol: float | None, n_train: int | None,
                     time_limit: float | None) -> Result:
        """The rest of the call as channels: a sign split, or a multi-channel run with
        ``channels=``; the state keeps the mixture the integrator samples afterwards."""
        sign = call["split"].get("kind") != "modes"
        run = SplitRun(self, call) if sign else ModeRun(self, call)
        result = run.run(budget, rtol, atol, n_train, time_limit)
        self.state.split_weights = run.mixture_weights(result) if sign else \
            ModeRun.mixture_weights(result.channels)
        if not sign:
            self.state.channel_maps = list(call["split"]["maps"])
        return result

    def step(self, call: dict[str, Any], action: Action, bar: Any) -> None:
        """Carry out a measurement or a training iteration, then checkpoint if due."""
        state = self.state
        before = state.n_evals
        if action.kind == "measure":
            self.measure(call, action)
        elif action.kind == "search":
            self.search(call, int(call["key"]["budget"]))
        else:
            spent = state.n_evals - call["start_evals"]
            self.train_iteration(action.n, spent / max(float(call["train_cap"]), 1.0))
        bar.update(state.n_evals - before)
        call["elapsed"] = time.perf_counter() - self.t_start
        self.integ.checkpoint_step()

    def calls_left(self, call: dict[str, Any], budget: int, time_limit: float | None) -> float:
        """Calls left in the budget, and within the time limit at the call's average cost."""
        spent = self.state.n_evals - call["start_evals"]
        left = float(budget - spent)
        if time_limit is not None and spent > 0:
            elapsed = time.perf_counter() - self.t_start
            in_time = max(time_limit - elapsed, 0.0) * spent / max(elapsed, 1e-9)
            # a final estimate needs some points: at least 16 randomizations of 64
            left = min(left, max(in_time, 64.0 * MIN_RANDOMIZATIONS))
        return max(left, 0.0)

    def estimate_only(self, n_evals: int, rtol: float | None, atol: float | None) -> Result:
        """:meth:`~flowint.Integrator.estimate`: the frozen flow, no training pieces."""
        call = {"measures": {}, "history_start": 0, "start_evals": self.state.n_evals}
        goal = self.integ.policy.goal(call, self.state, rtol, atol)
        action = self.integ.policy.final_action(call, "flow", n_evals, goal, self.state)
        with progress_bar(self.integ.settings.progress, n_evals, "estimate") as bar:
            return self.final(call, action._replace(planned_var=math.inf), goal, rtol, atol,
                              bar, pieces=False)

    # ---------------------------------------------------------------- the final estimate
    def final(self, call: dict[str, Any], action: Action, goal: float | None,
              rtol: float | None, atol: float | None, bar: Any, pieces: bool = True) -> Result:
        """The final estimate of ``action`` (staged stopping with a goal; started again with
        larger sets when the policy re-plans, :mod:`flowint.run.replan`), combined with the
        call's training iterations when ``reuse`` is on."""
        state, integ = self.state, self.integ
        while True:
            qmc = bool(integ.settings.qmc) and action.k >= FEWEST_RANDOMIZATIONS
            key = {"candidate": action.candidate, "n": action.n, "k": action.k}
            look = call.get("first_look") or (MIN_RANDOMIZATIONS if qmc else 2)
            loop = state.begin("final", key, first=len(state.history), weights=[], next_check=look)
            dtype = integ.policy.final_dtype(call, action, goal, state.history) if pieces \
                else None
            new = self._final_sets(call, action, loop, self.sampler(call, action.candidate, dtype),
                                   goal, rtol, atol, bar, qmc)
            if new is None:
                break
            action = new
        weights, first = loop["weights"], loop["first"]
        state.end("final")
        kept = self.training_pieces(call) if pieces and integ.settings.reuse else []
        return build_result(self, call, action, weights, state.history[first:], qmc, kept)

    def _final_sets(self, call: dict[str, Any], action: Action, loop: dict[str, Any],
                    sampler: Any, goal: float | None, rtol: float | None, atol: float | None,
                    bar: Any, qmc: bool) -> Action | None:
        """Draw ``action``'s sets into ``loop`` until the goal is met or they run out; the new
        action when the policy re-plans (the sets so far then become a measurement)."""
        state, integ = self.state, self.integ
        while not loop["done"] and len(loop["weights"]) < action.k:
            t0 = time.perf_counter()
            u, log_q = integ.estimator.draw(state, sampler, action.n, qmc=qmc)
            fx = self.evaluate(u)
            loop["weights"].append(Estimator.weights(fx, log_q))
            self.record("final", fx, log_q, t0)
            bar.update(action.n)
            k = len(loop["weights"])
            if k >= loop["next_check"]:
                mean, sdev = current_error(loop["weights"], qmc)
                live_goal = integ.policy.goal_value(rtol, atol, mean) if goal is not None else None
                stop, loop["next_check"] = next_stage(k, mean, sdev, live_goal,
                                                      loop["next_check"])
                loop["done"] = stop
                if not stop and live_goal is not None and qmc:
                    new = integ.policy.replan(call, action, loop["weights"], sdev, live_goal,
                                              state.history, loop["first"])
                    if new is not None:
                        abandon(state.history, call, action.candidate, loop["first"], *new)
                        integ.checkpoint_step(done=True)  # a resumed run follows the decision
                        return new[0]
            loop["done"] = loop["done"] or len(loop["weights"]) >= action.k
            integ.checkpoint_step(loop["done"])
        return None

    def training_pieces(self, call: dict[str, Any]) -> list[Piece]:
        """The call's training iterations that enter the estimate: those of the second half
        of its training, drawn at ``β = 1``, each weighted by the variance predicted from
        the iteration before it (fixed before its draw)."""
        train = [r for r in self.state.history[call["history_start"]:] if r.phase == "train"]
        out = []
        for prev, rec in zip(train[len(train) // 2:][:-1], train[len(train) // 2 + 1:],
                             strict=False):
            if rec.beta < 1.0 or not (math.isfinite(prev.rel_std) and math.isfinite(rec.sdev)):
                continue
            planned = square(prev.rel_std) / rec.n  # relative to the integral squared
            out.append(Piece(rec.n, rec.mean, rec.sdev, planned))
        return out


def abandon(history: list[IterationRecord], call: dict[str, Any], candidate: str, first: int,
            new: Action, measurement: list[Any], first_look: int) -> None:
    """Turn the final sets from ``history[first]`` on into a measurement of ``candidate``
    (their records are relabelled ``candidate``) and make ``new`` the call's final action,
    whose goal is first looked at after ``first_look`` sets."""
    history[first:] = [dataclasses.replace(r, phase=candidate) for r in history[first:]]
    call.setdefault("measures", {}).setdefault(candidate, []).append(measurement)
    call["final_action"], call["first_look"] = list(new), int(first_look)


def iteration_record(phase: str, w: Tensor, seconds: float, **extra: float) -> IterationRecord:
    """The record of an iteration with weights ``w`` (overflow-safe mean and std)."""
    n = int(w.shape[0])
    mean, std = scaled_mean_std(w)
    rel = std / abs(mean) if mean != 0 else (0.0 if std == 0 else math.inf)
    return IterationRecord(phase, n, mean, std / math.sqrt(n), rel, extra.get("loss", math.nan),
                           extra.get("lr", math.nan), seconds, extra.get("beta", 1.0))


def current_error(weights: list[Tensor], qmc: bool) -> tuple[float, float]:
    """``(mean, sdev)`` of component 0 from the final iterations so far."""
    if qmc:
        means, _, sdev = qmc_errors(weights)
        return float(means[0]), sdev
    w = torch.cat(weights)
    mean, std = scaled_mean_std(w if w.ndim == 1 else w[:, 0])
    return mean, std / math.sqrt(w.shape[0])


def check_tolerances(rtol: float | None, atol: float | None) -> None:
    """Raise :class:`ValueError` unless each tolerance is ``None`` or a positive number."""
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not math.isfinite(tol) or tol <= 0):
            raise ValueError(f"{name} must be a positive number or None, got {tol!r}")


def check_count(n: Any, name: str) -> int:
    """``n`` as a positive integer, or :class:`ValueError`."""
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    if int(n) < 1:
        raise ValueError(f"{name} must be >= 1, got {n!r}")
    return int(n)


class progress_bar:
    """A tqdm bar when wanted (``progress=True``, or ``None`` and stderr is a terminal)."""

    def __init__(self, progress: bool | None, total: int, desc: str):
        show = sys.stderr.isatty() if progress is None else bool(progress)
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="eval", leave=False)

    def __enter__(self) -> progress_bar:
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

