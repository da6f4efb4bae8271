"""The adaptive importance-sampling integrator.

The loop (lecture notes §1, the law of the unconscious statistician): draw ``x ~ q`` from the
flow, evaluate ``f`` once, record the iteration's estimate ``mean(f/q)``, and take gradient
steps that move ``q`` towards ``|f|/I`` (see :mod:`flowint.losses`); a few cheap VEGAS-style
refinements of the per-axis grid come first. Training estimates are kept as history only. The
final number comes from fresh samples of the frozen flow, so its error is the plain standard
error of i.i.d. weights.
"""

from __future__ import annotations

import copy
import math
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import checkpoint as _ckpt
from ._rng import SeedLike, make_generator
from .flows import Flow, PerAxisGrid, make_flow
from .integrand import Integrand, parse_bounds
from .losses import LOSSES, surrogate_loss
from .result import IterationRecord, Result
from .stats import combine_final, scaled_mean_std, weight_diagnostics

__all__ = ["Integrator", "integrate", "DEFAULTS"]

#: Settings of :class:`Integrator` and their defaults (all keyword-only).
DEFAULTS: dict[str, Any] = {
    "flow": "rqs",          # "rqs" | "pwq" | "pwl" | a Flow on the unit cube
    "flow_options": None,   # extra make_flow arguments; the integrator's own defaults are
                            # hidden=64, grid=False, and bins=8 for rqs (measured on the
                            # camel, 2-16 D: benchmarks/ablation.py)
    "loss": "variance",     # "variance" | "kl" | "hellinger" | "jeffreys"
    "lr": 6e-3,             # Adam learning rate (cosine-decayed to lr/10 over training)
    "batch_size": None,     # points per iteration (None: from dim and budget)
    "steps_per_batch": 16,  # gradient steps per iteration, on minibatches of the buffer
    "minibatch": 1024,      # points per gradient step (None: the batch size)
    "lr_final": 0.1,        # learning rate at the end of training, as a fraction of lr
    "clip": 10.0,           # gradient-norm clipping (None or 0: off)
    "buffer": 4,            # evaluated batches kept for re-use (importance-weighted)
    "warmup": 0,            # VEGAS-style refinements of the per-axis grid before training
                            # (only with flow_options={"grid": True})
    "grid_alpha": 0.5,      # damping exponent of those refinements
    "train_fraction": 0.8,  # most of the budget training may take when it keeps improving
    "patience": 8,          # iterations without improvement of the per-sample variance
    "temper": 0.3,          # train on |f|^beta, beta rising to 1 while the effective sample
                            # size of the tempered weights stays above this fraction of the
                            # batch's non-zero points (finds every peak in high d); None or
                            # 0: off
    "train_on": "norm",     # vector integrands: "norm" or a component index
    "dtype": torch.float32,  # training dtype of the flow
    "estimate_dtype": torch.float64,  # dtype of the frozen flow in the final estimate
    "qmc": True,            # final estimate from independently scrambled Sobol base points
    "device": None,         # torch device (default CPU)
    "seed": None,           # int or generator; the only source of randomness
    "max_batch": None,      # most points per call of f
    "nan_policy": "raise",  # "raise" | "drop" non-finite values of f
    "backend": None,        # "torch" | "numpy" | None (detect)
    "vectorized": True,     # False: f takes one point and returns a number
    "executor": None,       # concurrent.futures-like executor for evaluating f, or a factory
    "progress": None,       # tqdm bar: None = only when stderr is a terminal
    "checkpoint": None,     # file to checkpoint to and resume from (see flowint.checkpoint)
    "checkpoint_every": 1,  # iterations between automatic checkpoints
}


class Integrator:
    """Adaptive flow-based importance sampling on a box, keeping its state between calls.

    Arguments:
        dim: number of dimensions.
        bounds: the box, ``None`` for the unit cube, ``(lo, hi)`` for every axis or one pair
            per axis.
        **settings: see :data:`DEFAULTS` for names, meanings and defaults.

    Example:
        >>> integ = Integrator(2, seed=1)
        >>> integ.train(lambda x: torch.exp(-((x - 0.5) ** 2).sum(-1) / 0.01), 50_000)
        >>> result = integ.estimate(lambda x: ..., 20_000)
    """

    def __init__(self, dim: int, bounds: Any = None, **settings: Any):
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        self.dim = dim
        self.bounds = bounds
        parse_bounds(bounds, dim)  # validate early
        self.settings = {**DEFAULTS, **settings}
        s = self.settings
        if s["loss"] not in LOSSES:
            raise ValueError(f"unknown loss {s['loss']!r}; choose one of {sorted(LOSSES)}")
        for key in ("steps_per_batch", "warmup", "patience", "buffer"):
            if isinstance(s[key], bool) or not hasattr(s[key], "__index__") or s[key] < 0:
                raise ValueError(f"{key} must be an integer >= 0, got {s[key]!r}")
        if not 0.0 < float(s["train_fraction"]) < 1.0:
            raise ValueError("train_fraction must be in (0, 1)")
        if s["batch_size"] is not None and (isinstance(s["batch_size"], bool)
                                            or not hasattr(s["batch_size"], "__index__")
                                            or s["batch_size"] < 2):
            raise ValueError(f"batch_size must be None or an integer >= 2, "
                             f"got {s['batch_size']!r}")
        if s["temper"] is not None and not (isinstance(s["temper"], (int, float))
                                            and not isinstance(s["temper"], bool)
                                            and 0.0 <= float(s["temper"]) < 1.0):
            raise ValueError(f"temper must be None or a fraction in [0, 1), got {s['temper']!r}")
        if s["train_on"] != "norm" and (isinstance(s["train_on"], bool)
                                        or not isinstance(s["train_on"], int) or s["train_on"] < 0):
            raise ValueError(f"train_on must be 'norm' or a component index >= 0, "
                             f"got {s['train_on']!r}")
        self.device = torch.device(s["device"] or "cpu")
        self.generator = make_generator(s["seed"], self.device)
        self.flow = self._build_flow(s["flow"])
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=float(s["lr"]))
        self.history: list[IterationRecord] = []
        self.n_evals = 0
        self.n_dropped = 0
        self._warmed = 0
        self._beta = 0.0 if self.settings["temper"] else 1.0  # tempering exponent of |f|
        self._pilot_points: tuple | None = None  # (integrand, u, f, log q) of a given-up pilot
        self._pilot_predicted = math.inf  # calls the last pilot stage predicted
        self._buffer: list[tuple[Tensor, Tensor, Tensor]] = []
        self._stop_goal: dict[str, Any] | None = None  # set by __call__ for _converged
        self._integrands: dict[int, Integrand] = {}
        self._run: dict[str, Any] = {}  # progress of the call in flight (for checkpoints)
        if s["checkpoint"] is not None:
            _ckpt.resume(self, s["checkpoint"])

    # ---------------------------------------------------------------- construction
    def _build_flow(self, spec: str | Flow) -> Flow:
        s = self.settings
        if isinstance(spec, Flow):
            if spec.dim != self.dim:
                raise ValueError(f"flow has dim {spec.dim}, integrator {self.dim}")
            if spec.base.support != "cube":
                raise ValueError("the integrator needs a flow on the unit cube (UniformBase)")
            return spec.to(device=self.device, dtype=s["dtype"])
        if not isinstance(spec, str):
            raise TypeError(f"flow must be a kind name or a Flow, got {type(spec).__name__}")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator, device=self.device))
        # A wider conditioner helps, and the per-axis grid layer hurts once the couplings train
        # (camel 4-D: rel. std per sample 0.26 -> 0.19 without it); 8 rational-quadratic bins
        # train faster than 16 at the same calls and cost less (camel 2-D / 8-D at 1e6 calls,
        # with lr 6e-3: 0.021 -> 0.012 and 0.265 -> 0.207; benchmarks/results/ablation_*.md).
        options = {"hidden": 64, "grid": False, **({"bins": 8} if spec == "rqs" else {}),
                   **(s["flow_options"] or {})}
        return make_flow(self.dim, spec, seed=seed, dtype=s["dtype"], device=self.device,
                         **options)

    def wrap(self, f: Callable | Integrand) -> Integrand:
        """The :class:`Integrand` used for ``f`` (cached, so backend detection happens once)."""
        if isinstance(f, Integrand):
            return f
        key = id(f)
        cached = self._integrands.get(key)
        if cached is None or cached.f is not f:
            s = self.settings
            cached = Integrand(f, self.dim, self.bounds, backend=s["backend"],
                               vectorized=s["vectorized"], max_batch=s["max_batch"],
                               nan_policy=s["nan_policy"], executor=s["executor"])
            self._integrands[key] = cached
        return cached

    def batch_size(self, budget: int | None = None) -> int:
        """Points per iteration: the setting, else grows with ``dim``, capped by the budget."""
        if self.settings["batch_size"] is not None:
            return max(1, int(self.settings["batch_size"]))
        n = min(20_000, 2_000 * max(2, self.dim))
        if budget is not None:
            n = min(n, max(100, budget // 30))
        return n

    # ---------------------------------------------------------------- one iteration
    def _draw(self, flow: Flow, n: int, qmc: bool = False) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            if qmc:
                z = _scrambled_sobol(n, self.dim, self.generator, flow.dtype, flow.device)
            else:
                z = flow.sample_base(n, seed=self.generator)
            # In chunks: the spline tensors of a whole batch (n x dim x parameters) fall out
            # of the caches and cost page faults; the points and their order are the same.
            parts = [flow.transform_base(c) for c in z.split(_DRAW_CHUNK)]
        if len(parts) == 1:
            u, log_q = parts[0]
        else:
            u, log_q = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        return u, log_q.to(torch.float64)

    def _evaluate(self, integrand: Integrand, u: Tensor) -> Tensor:
        before = integrand.n_dropped
        fx = integrand(u)
        self.n_evals += u.shape[0]
        self.n_dropped += integrand.n_dropped - before
        return fx

    def _target(self, fx: Tensor) -> Tensor:
        """The non-negative function the flow is trained on (``|f|`` or a norm)."""
        if fx.ndim == 1:
            return fx.abs()
        spec = self.settings["train_on"]
        if spec == "norm":  # scaled per row: components near 1e200 must not overflow
            big = fx.abs().amax(-1).clamp_min(1e-300)
            return (fx / big.unsqueeze(-1)).norm(dim=-1) * big
        if spec >= fx.shape[1]:
            raise ValueError(f"train_on={spec}, but the integrand has {fx.shape[1]} components")
        return fx[:, spec].abs()

    def _record(self, phase: str, fx: Tensor, log_q: Tensor, t0: float, loss: float = math.nan,
                lr: float = math.nan, beta: float = 1.0) -> IterationRecord:
        w = (fx if fx.ndim == 1 else fx[:, 0]) * torch.exp(-log_q)
        n = w.shape[0]
        mean, std = scaled_mean_std(w)  # overflow-safe for huge finite f
        rel = std / abs(mean) if mean != 0 else (0.0 if std == 0 else math.inf)
        rec = IterationRecord(phase, n, mean, std / math.sqrt(n), rel, loss, lr,
                              time.perf_counter() - t0, beta)
        self.history.append(rec)
        return rec

    def _warmup_step(self, integrand: Integrand, n: int) -> IterationRecord:
        t0 = time.perf_counter()
        u, log_q = self._draw(self.flow, n)
        fx = self._evaluate(integrand, u)
        grid = self.flow.transforms[-1]
        if isinstance(grid, PerAxisGrid):
            wt = self._target(fx) * torch.exp(-log_q)
            wt = (wt / wt.max().clamp_min(1e-300)) ** 2  # scaled: huge or tiny f stay finite
            grid.adapt(u, wt, alpha=float(self.settings["grid_alpha"]))
        self._warmed += 1
        return self._record("warmup", fx, log_q, t0)

    def _train_step(self, integrand: Integrand, n: int, lr: float, done: float = 1.0,
                    given: tuple[Tensor, Tensor, Tensor] | None = None) -> IterationRecord:
        t0 = time.perf_counter()
        if given is None:
            u, log_q0 = self._draw(self.flow, n)
            fx = self._evaluate(integrand, u)
        else:  # points drawn from this flow (by the pilot) and evaluated already
            u, fx, log_q0 = given
            u = u.to(self.flow.dtype)
        target = self._target(fx)
        self._raise_beta(target, log_q0, done)
        self._buffer.append((u, target, log_q0))
        del self._buffer[: max(0, len(self._buffer) - max(1, int(self.settings["buffer"])))]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        value = math.nan
        pool_u = torch.cat([b[0] for b in self._buffer])
        pool_t = _tempered(torch.cat([b[1] for b in self._buffer]), self._beta)
        pool_q0 = torch.cat([b[2] for b in self._buffer])
        if float(pool_t.sum()) > 0:
            good = {k: v.clone() for k, v in self.flow.state_dict().items()}
            m = int(self.settings["minibatch"] or n)
            clip = self.settings["clip"]
            for _ in range(int(self.settings["steps_per_batch"])):
                idx = torch.randint(0, pool_u.shape[0], (m,), generator=self.generator,
                                    device=self.device)
                log_q = self.flow.log_prob(pool_u[idx])
                loss, val = surrogate_loss(self.settings["loss"], pool_t[idx], log_q,
                                           pool_q0[idx])
                if not torch.isfinite(loss):
                    self._roll_back(good)
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if clip:
                    torch.nn.utils.clip_grad_norm_(self.flow.parameters(), float(clip))
                self.optimizer.step()
                value = float(val)
            if not all(torch.isfinite(p).all() for p in self.flow.parameters()):
                self._roll_back(good)
        return self._record("train", fx, log_q0, t0, value, lr, self._beta)

    def _raise_beta(self, target: Tensor, log_q: Tensor, done: float) -> None:
        """Raise the tempering exponent ``β`` of the training target ``|f|^β``.

        ``β`` becomes the largest value in ``[β, 1]`` at which the batch's tempered weights
        ``|f|^β / q`` keep an effective sample size (Kish) of at least ``temper`` times the
        number of points where ``f != 0``, as in adaptive tempering for sequential Monte
        Carlo. Early on, when ``q`` has not found the peaks, ``|f|^β`` is broad and every peak
        the batch touches pulls on the flow; once the flow covers ``|f|^β`` well, ``β`` rises.
        It is 1 once half of the training call's evaluations are spent (``done >= 1/2``; with
        early stopping, half of its cap), whatever the weights; while it is below 1 the early
        stop does not fire.
        """
        if self._beta >= 1.0:
            return
        if done >= 0.5:
            self._beta = 1.0
            return
        nz = target > 0
        if int(nz.sum()) < 2:
            return
        log_t = torch.log(target[nz]).to(torch.float64)
        log_q = log_q[nz].to(torch.float64)
        need = float(self.settings["temper"]) * log_t.shape[0]

        def ess(beta: float) -> float:
            lw = beta * log_t - log_q
            w = torch.exp(lw - lw.max())
            return float(w.sum() ** 2 / (w * w).sum())

        if ess(1.0) >= need:
            self._beta = 1.0
            return
        lo, hi = self._beta, 1.0
        if ess(lo) < need:
            return
        for _ in range(30):  # bisection: ESS falls as β rises (the weights spread out)
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ess(mid) >= need else (lo, mid)
        self._beta = lo

    def _roll_back(self, good: dict[str, Tensor]) -> None:
        """Restore the last good parameters and halve the learning rate (NaN safety)."""
        self.flow.load_state_dict(good)
        self.optimizer.state.clear()
        self.settings["lr"] = float(self.settings["lr"]) * 0.5
        warnings.warn("non-finite loss during training: rolled back and halved the learning "
                      "rate", RuntimeWarning, stacklevel=3)

    # ---------------------------------------------------------------- public API
    def train(
        self, f: Callable, n_evals: int, *, early_stop: bool = False
    ) -> list[IterationRecord]:
        """Train the flow with (about) ``n_evals`` integrand evaluations.

        Arguments:
            f: the integrand.
            n_evals: evaluations to spend (whole iterations; the last one may be smaller).
            early_stop: stop as soon as the per-sample variance stops improving.

        Returns:
            The records of the iterations run by this call.
        """
        n_evals = _check_count(n_evals, "n_evals")
        integrand = self.wrap(f)
        batch = self.batch_size(n_evals)
        start = len(self.history)
        n_iter = max(1, math.ceil(n_evals / batch))
        lr0 = float(self.settings["lr"])
        loop = _ckpt.loop(self, "train", {"n_evals": n_evals, "early_stop": early_stop},
                          it=0, spent=0, lr0=lr0, start=start, skip=0.0)  # or a restored one
        start, spent, lr0 = loop["start"], loop["spent"], loop["lr0"]
        skip = float(loop.get("skip", 0.0))  # iterations' worth of calls beyond one per step
        with _progress(self.settings["progress"], n_evals, "training") as bar:
            for it in range(loop["it"], 0 if loop["done"] else n_iter):
                n = min(batch, n_evals - spent)
                warming = self._warmed < int(self.settings["warmup"])
                given = None
                if self._pilot_points is not None and not warming:
                    owner, *points = self._pilot_points
                    self._pilot_points = None
                    if owner is integrand:  # a given-up pilot's evaluated points of this f
                        n = min(int(points[0].shape[0]), max(n_evals - spent, 0))
                        given = tuple(t[:n] for t in points)
                if n <= 0:
                    break
                # The schedules run on calls: a pilot's batch counts as n / batch iterations.
                position = (it + skip) / n_iter
                if warming:
                    self._warmup_step(integrand, n)
                else:
                    # settings["lr"] is lr0 unless _roll_back halved it during this call
                    lo = float(self.settings["lr_final"])
                    cosine = lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * min(position,
                                                                                     1.0)))
                    lr = float(self.settings["lr"]) * cosine
                    self._train_step(integrand, n, lr, done=position, given=given)
                if given is not None:
                    skip += max(0.0, n / batch - 1.0)
                spent += n
                bar.update(n)
                stop = early_stop and self._converged()
                _ckpt.step(self, "train", it=it + 1, spent=spent, skip=skip,
                           done=stop or it + 1 == n_iter)
                if stop:
                    break
        self.settings["lr"] = lr0 if math.isfinite(lr0) else self.settings["lr"]
        _ckpt.loop_end(self, "train")
        return self.history[start:]

    def _converged(self) -> bool:
        """Whether more training would cost more integrand calls than it saves.

        The per-sample relative standard deviation ``ρ`` of the last ``patience`` training
        iterations is compared with that of the ``patience`` before, giving its rate of
        improvement ``r`` (per iteration, in ``log ρ``). With an error target the final
        estimate needs ``N = (ρ I / target)²`` calls (i.i.d.; divided by
        ``_QMC_GAIN_GUESS`` for the quasi-random estimate), and one more iteration of ``b``
        calls saves about ``2 r N``: training stops once that is below ``b``. With a fixed
        budget the final error scales as ``ρ / √N_final``, so training stops once
        ``2 r < b / N_final``.
        Called from :meth:`train` alone (no goal), it stops when ``ρ`` improves by less than
        2 % over ``patience`` iterations.
        """
        train = [r for r in self.history if r.phase == "train"]
        p = int(self.settings["patience"])
        if p == 0 or len(train) < 2 * p or self._beta < 1.0:
            return False
        recent = _median([r.rel_std for r in train[-p:]])
        before = _median([r.rel_std for r in train[-2 * p:-p]])
        if not (math.isfinite(recent) and math.isfinite(before)) or recent <= 0:
            return False
        rate = math.log(before / recent) / p
        b = train[-1].n
        goal = self._stop_goal or {}
        if goal.get("rtol") is not None or goal.get("atol") is not None:
            integral = abs(_median([r.mean for r in train[-p:]]))
            target = max(goal.get("atol") or 0.0, (goal.get("rtol") or 0.0) * integral)
            if target <= 0:
                return False
            n_need = (recent * integral / target) ** 2
            if self.settings["qmc"]:  # quasi-random final points need fewer calls
                n_need /= _QMC_GAIN_GUESS
            return 2.0 * rate * n_need < b
        if goal.get("budget") is not None:
            n_final = goal["budget"] - (self.n_evals - goal["start"]) - b
            return n_final <= 0 or 2.0 * rate < b / n_final
        return rate < math.log(1.02) / p

    def _calls_needed(self, rtol: float | None, atol: float | None) -> float | None:
        """Calls the error target needs at the last training iterations' ``ρ`` (i.i.d.)."""
        train = [r for r in self.history if r.phase in ("train", "warmup")][-5:]
        if (rtol is None and atol is None) or not train:
            return None
        rho = _median([r.rel_std for r in train])
        integral = abs(_median([r.mean for r in train]))
        target = max(atol or 0.0, (rtol or 0.0) * integral)
        if target <= 0 or not math.isfinite(rho):
            return None
        return (rho * integral / target) ** 2

    def frozen_flow(self) -> Flow:
        """A copy of the current flow in ``estimate_dtype`` (what the final estimate samples)."""
        flow = copy.deepcopy(self.flow).to(self.settings["estimate_dtype"])
        flow.requires_grad_(False)
        return flow

    def estimate(self, f: Callable, n_evals: int, *, rtol: float | None = None,
                 atol: float | None = None) -> Result:
        """Estimate the integral from fresh samples of the frozen flow.

        Arguments:
            f: the integrand.
            n_evals: most evaluations to spend.
            rtol: stop once ``sdev <= rtol * |mean|``.
            atol: stop once ``sdev <= atol``.

        Returns:
            A :class:`Result` built from this call's samples only.
        """
        n_evals = _check_count(n_evals, "n_evals")
        _check_tolerances(rtol, atol)
        return self._estimate(self.wrap(f), n_evals, rtol, atol, time.perf_counter(),
                              self.n_evals)

    def _estimate(self, integrand: Integrand, n_evals: int, rtol: float | None,
                  atol: float | None, t_start: float, evals_before: int,
                  pilot: float | None = None, pilot_size: int = 0) -> Result | None:
        """The final estimate; with ``pilot`` (a number of calls), a quasi-random pilot.

        The pilot samples the flow as it is, in randomizations of ``pilot_size`` points, and
        gives up (returning ``None`` and dropping its records from the history; its calls stay
        counted) as soon as the error target is predicted to need more than ``pilot`` calls;
        the prediction is left in ``_pilot_predicted``. Its evaluated points are kept in
        ``_pilot_points`` for the first training iteration, so they are not wasted.
        """
        flow = self.frozen_flow()
        batch = self.batch_size(n_evals)
        qmc = bool(self.settings["qmc"]) and n_evals >= 2 * _QMC_MIN_RANDOMIZATIONS
        if pilot is not None:
            batch = pilot_size
        elif qmc:
            batch = _qmc_size(n_evals, batch, self._calls_needed(rtol, atol))
        key = {"n_evals": n_evals, "rtol": rtol, "atol": atol, "pilot": pilot,
               "pilot_size": pilot_size}
        loop = _ckpt.loop(self, "final", key,
                          first=len(self.history), spent=0, weights=[],
                          next_check=_QMC_MIN_RANDOMIZATIONS if qmc else 2)
        first, spent, weights = loop["first"], loop["spent"], loop["weights"]
        points: list[tuple[Tensor, Tensor, Tensor]] = []  # the pilot's, for training
        next_check = loop["next_check"]
        with _progress(self.settings["progress"], n_evals, "estimate") as bar:
            while spent < n_evals and not loop["done"]:
                t0 = time.perf_counter()
                n = min(batch, n_evals - spent)
                if qmc and n < batch:
                    break  # randomizations must be of equal size
                u, log_q = self._draw(flow, n, qmc=qmc)
                fx = self._evaluate(integrand, u)
                w = fx * torch.exp(-log_q).unsqueeze(-1) if fx.ndim == 2 else fx * torch.exp(-log_q)
                weights.append(w)
                if pilot is not None:
                    points.append((u, fx, log_q))
                self._record("final", fx, log_q, t0)
                spent += n
                bar.update(n)
                stop = False
                if len(weights) >= next_check:
                    # Staged stopping: the error estimate is consulted only at a few stages,
                    # each time predicting how many iterations the target needs; stopping
                    # the first time a noisy estimate dips below the target would select
                    # underestimated error bars.
                    sdev_now = _current_sdev(weights, qmc)
                    stop, next_check = _next_stage(weights, sdev_now, rtol, atol, next_check)
                    if pilot is not None and not stop and next_check * batch > pilot:
                        # Training starts from the points evaluated here (not checkpointed).
                        self._pilot_predicted = next_check * batch
                        self._keep_pilot_points(integrand, points)
                        del self.history[first:]
                        _ckpt.loop_end(self, "final")
                        return None
                _ckpt.step(self, "final", spent=spent, next_check=next_check,
                           done=stop or n_evals - spent < (batch if qmc else 1))
                if stop:
                    break
        _ckpt.loop_end(self, "final")
        records = self.history[first:]
        w_all = torch.cat(weights)
        mean, sdev, chi2, dof, q_value, comps, cov = combine_final(records, w_all)
        if qmc and len(records) > 1:
            sdev, cov = _qmc_errors(weights, cov)
        diag = weight_diagnostics(w_all if w_all.ndim == 1 else w_all[:, 0])
        if mean == 0.0 and sdev == 0.0:
            diag["warnings"] = diag["warnings"] + (
                "the integrand was zero at every sampled point; the result is 0 ± 0",)
        for msg in diag["warnings"]:
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
        return Result(
            mean=mean, sdev=sdev, chi2=chi2, dof=dof, Q=q_value,
            n_evals=self.n_evals - evals_before + 0, n_evals_final=int(w_all.shape[0]),
            rel_std=(sdev * math.sqrt(w_all.shape[0]) / abs(mean) if mean != 0
                     else diag["rel_std"]),
            ess=diag["ess"],
            unweighting_efficiency=diag["unweighting_efficiency"],
            max_weight_share=diag["max_weight_share"], history=tuple(self.history),
            wall_time=time.perf_counter() - t_start, n_dropped=self.n_dropped,
            warnings=diag["warnings"], components=comps, covariance=cov,
        )

    def __call__(self, f: Callable, budget: int = 1_000_000, *, rtol: float | None = None,
                 atol: float | None = None, n_train: int | None = None) -> Result:
        """Train, then estimate, within ``budget`` evaluations in total (this call).

        Training stops when the per-sample variance stops improving, or after ``n_train``
        evaluations if given (default cap: ``train_fraction`` of the budget); the rest of the
        budget goes to the final estimate, which stops early once ``rtol``/``atol`` is met.

        With ``rtol``/``atol``, quasi-random final points and no ``n_train``, a flow that has
        not trained yet is first tried as it is (a quasi-random pilot, in stages of 32 sets of
        256, 1024, ... points): if a stage meets the target within twice the calls training
        spends before its first chance to stop, it is the result and nothing is trained;
        otherwise its evaluated points become the first training batch.
        """
        budget = _check_count(budget, "budget")
        _check_tolerances(rtol, atol)
        integrand = self.wrap(f)
        batch = self.batch_size(budget)
        if budget < 2 * batch and n_train is None:
            raise ValueError(f"budget={budget} is too small: it must allow one training and one "
                             f"estimation iteration of {batch} points (set batch_size lower)")
        t_start, evals_before = time.perf_counter(), self.n_evals
        call = _ckpt.loop(self, "call", {"budget": budget, "rtol": rtol, "atol": atol,
                                         "n_train": n_train}, evals_before=evals_before)
        evals_before = call["evals_before"]
        if n_train is None and call.get("pilot") != "gave up" and self._pilot_pays(budget, rtol,
                                                                                   atol):
            # The flow as it is (uniform, when fresh) may already meet the target with
            # quasi-random points in fewer calls than training and a final estimate would
            # cost (the limit: twice what training spends before its first chance to stop):
            # try it, and give up as soon as it is predicted to cost more.
            # Randomizations of 256 points first; 4x larger ones while affordable and while the
            # prediction, divided by 16 (the most that 4x larger randomizations of a smooth
            # integrand gain at equal calls: variance ~ m^-3), is within the limit.
            limit = 4 * int(self.settings["patience"]) * batch
            size = call.setdefault("pilot_size", _PILOT_SIZE)
            try:
                while True:
                    # frozen per stage, so that a resumed checkpoint continues the stage
                    left = call.setdefault(f"pilot_left_{size}",
                                           budget - (self.n_evals - evals_before))
                    result = self._estimate(integrand, left, rtol, atol, t_start,
                                            evals_before, pilot=min(limit, left // 2),
                                            pilot_size=size)
                    if result is not None:
                        self._pilot_points = None
                        _ckpt.loop_end(self, "call")
                        return result
                    size *= 4
                    left = budget - (self.n_evals - evals_before)
                    if (2 * _QMC_MIN_RANDOMIZATIONS * size > min(limit, left // 2)
                            or self._pilot_predicted / 16 > limit):
                        break
                    call["pilot_size"] = size
            except BaseException:
                self._pilot_points = None
                raise
            call["pilot"] = "gave up"
        if n_train is None:
            self._stop_goal = {"rtol": rtol, "atol": atol, "budget": budget,
                               "start": evals_before}
            try:
                self.train(integrand, int(budget * float(self.settings["train_fraction"])),
                           early_stop=True)
            finally:
                self._stop_goal = None
        elif n_train > 0:
            self.train(integrand, _check_count(n_train, "n_train"))
        remaining = call.setdefault("remaining", budget - (self.n_evals - evals_before))
        if remaining < 1:
            raise ValueError(f"budget={budget} leaves nothing for the final estimate after "
                             f"n_train={n_train}")
        result = self._estimate(integrand, remaining, rtol, atol, t_start, evals_before)
        _ckpt.loop_end(self, "call")
        return result

    def _keep_pilot_points(self, integrand: Integrand,
                           points: list[tuple[Tensor, Tensor, Tensor]]) -> None:
        """Keep a given-up pilot stage's ``(u, f, log q)`` (after earlier stages' for the same
        integrand) for the first training iteration on that integrand."""
        if self._pilot_points is not None and self._pilot_points[0] is integrand:
            points = [tuple(self._pilot_points[1:])] + points
        self._pilot_points = None
        if points:
            self._pilot_points = (integrand, *(torch.cat(t) for t in zip(*points,
                                                                          strict=True)))

    def _pilot_pays(self, budget: int, rtol: float | None, atol: float | None) -> bool:
        """Whether :meth:`__call__` tries a quasi-random pilot before training.

        Only with an error target, quasi-random final points, a flow not trained yet and a
        budget of at least four first looks (``4 * 32 * _PILOT_SIZE`` calls).
        """
        return ((rtol is not None or atol is not None) and bool(self.settings["qmc"])
                and int(self.settings["patience"]) > 0
                and not any(r.phase in ("train", "warmup") for r in self.history)
                and budget >= 4 * _QMC_MIN_RANDOMIZATIONS * _PILOT_SIZE)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: flow, optimizer, history, counters and RNG state.

        Plain tensors and containers only, so it saves with ``torch.save`` and loads with
        ``torch.load(..., weights_only=True)``. Settings that are objects (a Flow passed as
        ``flow``, an executor) are not included: pass them again when rebuilding.
        """
        settings = {k: v for k, v in self.settings.items()
                    if k not in ("executor", "flow", "seed")}
        settings["dtype"] = str(settings["dtype"]).removeprefix("torch.")
        settings["estimate_dtype"] = str(settings["estimate_dtype"]).removeprefix("torch.")
        settings["device"] = None
        return {
            "format": "flowint.integrator/1",
            "dim": self.dim,
            "bounds": None if self.bounds is None else [list(map(float, b)) for b in
                                                        _bounds_pairs(self.bounds, self.dim)],
            "settings": settings,
            "flow_config": self.flow.config,
            "flow": {k: v.detach().cpu() for k, v in self.flow.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "history": [list(_record_tuple(r)) for r in self.history],
            "n_evals": self.n_evals,
            "n_dropped": self.n_dropped,
            "warmed": self._warmed,
            "beta": self._beta,
            "rng": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the flow's architecture must match)."""
        if state.get("format") != "flowint.integrator/1":
            raise ValueError("not a flowint integrator state")
        if state["dim"] != self.dim:
            raise ValueError(f"state has dim {state['dim']}, integrator {self.dim}")
        self.flow.load_state_dict(state["flow"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [IterationRecord(*r) for r in state["history"]]
        self.n_evals = int(state["n_evals"])
        self.n_dropped = int(state["n_dropped"])
        self._warmed = int(state["warmed"])
        self._beta = float(state.get("beta", 1.0))  # states saved before tempering existed
        self.generator.set_state(state["rng"])

    def sample(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """Points in the box and their importance weights ``volume / q`` from the frozen flow.

        For any integrand ``g``, ``mean(g(x) * w)`` estimates ``∫ g`` over the box.
        """
        n = _check_count(n, "n")
        flow = self.frozen_flow()
        gen = self.generator if seed is None else make_generator(seed, self.device)
        with torch.no_grad():
            u, log_q = flow.sample(n, seed=gen)
        box = parse_bounds(self.bounds, self.dim)
        if box is None:
            return u, torch.exp(-log_q)
        lo = torch.as_tensor(box[0], device=u.device, dtype=u.dtype)
        hi = torch.as_tensor(box[1], device=u.device, dtype=u.dtype)
        volume = float(torch.prod(hi - lo))
        return lo + (hi - lo) * u, volume * torch.exp(-log_q)


def integrate(f: Callable, dim: int, bounds: Any = None, *, budget: int = 1_000_000,
              rtol: float | None = None, atol: float | None = None, n_train: int | None = None,
              **settings: Any) -> Result:
    """Integrate ``f`` over a box in ``dim`` dimensions with a trained normalizing flow.

    Arguments:
        f: batched integrand: takes an ``(n, dim)`` tensor or array, returns ``(n,)`` values
            (``(n, k)`` for ``k`` integrals at once). See :class:`flowint.integrand.Integrand`.
        dim: number of dimensions.
        bounds: ``None`` (the unit cube), ``(lo, hi)`` for all axes, or one pair per axis.
        budget: total integrand evaluations, training and final estimate together.
        rtol: stop once the relative error is below ``rtol`` (an error target also lets a
            quasi-random look at the untrained flow end the run when that is cheaper; see
            :meth:`Integrator.__call__`).
        atol: stop once the absolute error is below ``atol``.
        n_train: evaluations for training (default: automatic; when given, always trained).
        **settings: see :data:`DEFAULTS` (``loss``, ``flow``, ``seed``, ``device``, ...).

    Returns:
        A :class:`~flowint.result.Result`; ``print(result)`` gives ``0.98166(12)``.

    Example:
        >>> import torch, flowint
        >>> r = flowint.integrate(lambda x: torch.exp(-((x - 0.5)**2).sum(-1) / 0.02), 4,
        ...                       budget=200_000, seed=0)
    """
    return Integrator(dim, bounds, **settings)(f, budget, rtol=rtol, atol=atol, n_train=n_train)


def _check_tolerances(rtol: float | None, atol: float | None) -> None:
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not math.isfinite(tol) or tol <= 0):
            raise ValueError(f"{name} must be a positive number or None, got {tol!r}")


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    if int(n) < 1:
        raise ValueError(f"{name} must be >= 1, got {n!r}")
    return int(n)


def _current_sdev(weights: list[Tensor], qmc: bool) -> tuple[float, float]:
    """``(mean, sdev)`` of component 0 from the final iterations so far."""
    if qmc:
        means = torch.stack([(w if w.ndim == 1 else w[:, 0]).mean() for w in weights])
        return float(means.mean()), float(means.std()) / math.sqrt(len(weights))
    w = torch.cat(weights)
    w = w if w.ndim == 1 else w[:, 0]
    mean, std = scaled_mean_std(w)
    return mean, std / math.sqrt(w.shape[0])


def _next_stage(weights: list[Tensor], current: tuple[float, float], rtol: float | None,
                atol: float | None, next_check: int) -> tuple[bool, int]:
    """Whether the error target is met, and otherwise after how many iterations to look again.

    The next look is where the target is predicted to be met (sdev falls as 1/√iterations),
    plus 5 %; without a target the estimate runs to its budget.
    """
    if rtol is None and atol is None:
        return False, 10**12
    mean, sdev = current
    k = len(weights)
    goal = max(atol or 0.0, (rtol or 0.0) * abs(mean))
    if not math.isfinite(sdev):
        return False, k + 1
    if sdev <= goal:
        return True, next_check
    if goal <= 0:
        return False, 10**12
    return False, max(k + 1, math.ceil(1.05 * k * (sdev / goal) ** 2))


class _progress:
    """A tqdm bar when wanted (``progress=True``, or ``None`` and stderr is a terminal)."""

    def __init__(self, progress: bool | None, total: int, desc: str):
        show = sys.stderr.isatty() if progress is None else bool(progress)
        self.bar = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="eval", leave=False)

    def __enter__(self) -> _progress:
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _bounds_pairs(bounds: Any, dim: int) -> list[tuple[float, float]]:
    box = parse_bounds(bounds, dim)
    if box is None:
        return [(0.0, 1.0)] * dim
    return list(zip(box[0].tolist(), box[1].tolist(), strict=True))


def _record_tuple(r: IterationRecord) -> tuple:
    return (r.phase, r.n, r.mean, r.sdev, r.rel_std, r.loss, r.lr, r.time, r.beta)


_DRAW_CHUNK = 4096  # points pushed through the flow at a time when sampling (no gradients)
_QMC_MIN_RANDOMIZATIONS = 32  # t with 31 dof: ±3σ covers 99.5 %
# With an error target: the training stop assumes the quasi-random final estimate needs 1/8
# of the i.i.d. calls, and its first look spends 1/32 of them (measured on the i-flow rows:
# gaussian 2-D 239k -> 149k calls, top loop 233k -> 118k, camel 2-D 239k -> 204k; camel 4-D
# and the annulus unchanged).
_QMC_GAIN_GUESS = 8
# Points per randomization of the pilot that __call__ runs on an untrained flow when given an
# error target (32 randomizations: 8192 calls for its first look).
_PILOT_SIZE = 256
_QMC_FIRST_SHARE = 32


def _qmc_size(n_evals: int, batch: int, n_needed: float | None = None) -> int:
    """Points per randomization: a power of two, with at least 32 randomizations.

    With an error target, ``n_needed`` (the calls the target takes with i.i.d. points, from
    the training iterations) keeps the randomizations small enough that the estimate can stop
    early: the first 32 randomizations hold ``n_needed / _QMC_FIRST_SHARE`` points. Quasi-random
    points usually need several times fewer calls than i.i.d. ones (measured: 5-25 times on
    the camel and gaussian in 2-D), so the first look often meets the target; where they gain
    nothing, the staged stopping adds randomizations of the same size up to what is needed.
    """
    target = min(n_evals / _QMC_MIN_RANDOMIZATIONS, max(batch, 8192))
    if n_needed is not None:
        first = n_needed / _QMC_FIRST_SHARE
        target = min(target, max(64.0, first / _QMC_MIN_RANDOMIZATIONS))
    return 2 ** max(1, int(math.floor(math.log2(max(target, 2)))))


def _scrambled_sobol(n: int, dim: int, gen: torch.Generator, dtype: torch.dtype,
                     device: torch.device) -> Tensor:
    """``n`` points of a freshly scrambled Sobol sequence (one independent randomization)."""
    if dim > 21201:
        return torch.rand(n, dim, generator=gen, dtype=dtype, device=device)
    from scipy.stats import qmc

    seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # balance warning for n not a power of two
        pts = qmc.Sobol(dim, scramble=True, seed=seed).random(n)
    return torch.as_tensor(pts, dtype=dtype, device=device)


def _qmc_errors(weights: list[Tensor], cov_iid: tuple) -> tuple[float, tuple]:
    """Standard error (and covariance) from the spread of equal-size randomization means."""
    means = torch.stack([w.mean(0) for w in weights])  # (K,) or (K, k)
    k = means.shape[0]
    m = means if means.ndim == 2 else means.unsqueeze(-1)
    scale = float(m.abs().max()) or 1.0  # scaled, so that huge finite f cannot overflow
    centred = (m - m.mean(0)) / scale
    cov = centred.T @ centred / (k - 1) / k
    sdev = float(cov[0, 0].sqrt()) * scale
    cov = cov * scale * scale
    cov_t = tuple(tuple(float(c) for c in row) for row in cov) if cov_iid else ()
    return sdev, cov_t



def _tempered(t: Tensor, beta: float) -> Tensor:
    """``t ** beta`` for ``t >= 0``, scaled by ``max(t) ** -beta`` (the loss ignores scale)."""
    if beta >= 1.0:
        return t
    if beta <= 0.0:
        return (t > 0).to(t.dtype)
    top = t.max()
    if not top > 0:
        return t
    return torch.exp(beta * (torch.log(t) - torch.log(top)))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan
