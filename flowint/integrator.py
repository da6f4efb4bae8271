"""The adaptive importance-sampling integrator: a thin driver over Trainer, Estimator, Policy.

The loop (lecture notes §1, the law of the unconscious statistician): the :class:`Policy`
decides each step — measure a candidate sampler with quasi-random randomizations, train the
flow one iteration, or make the final estimate — the :class:`Trainer` takes the gradient
steps, the :class:`Estimator` draws from frozen samplers, and everything that must survive a
restart lives in one :class:`RunState`, which is what a checkpoint saves. With a fixed budget
the policy spends the calls where the predicted final error falls fastest; with an error
target (``rtol``/``atol``) it minimises the predicted wall time; training iterations may enter
the estimate (``reuse``) with weights fixed before their draw.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import checkpoint as _ckpt
from ._rng import SeedLike, make_generator
from .channel_maps import ChannelMap, map_from_plain
from .flows import Flow, build_flow, make_flow
from .integrand import Integrand, map_points, parse_bounds
from .result import IterationRecord, Result
from .run.adam import Adam
from .run.channels import ChannelMixture, build_channels
from .run.driver import CallDriver, check_count, check_tolerances, progress_bar
from .run.estimator import Estimator
from .run.policy import Policy
from .run.settings import DEFAULTS, LR_FINAL, Settings, default_flow_options
from .run.state import RunState
from .run.trainer import Trainer

__all__ = ["DEFAULTS", "Integrator", "default_flow_options", "integrate", "load_checkpoint"]


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
        self.settings = Settings.from_kwargs(**settings)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        self.dim = dim
        self.bounds = bounds
        if parse_bounds(bounds, dim) is not None and self.settings.prior is not None:
            raise ValueError("give bounds or a prior transform, not both (the prior maps the "
                             "cube onto the parameter space)")
        s = self.settings
        self.device = torch.device(s.device or "cpu")
        self.generator = make_generator(s.seed, self.device)
        self.flow = self._build_flow(s.flow)
        #: The spline family the flow was built from by name (``"rqs"``, ...), ``None`` for a
        #: Flow passed as ``flow``; kept in checkpoints, so that an integrator loaded from one
        #: builds a split's part flows as the original would (:func:`build_channels`).
        self.flow_kind: str | None = s.flow if isinstance(s.flow, str) else None
        self.state = RunState(beta=0.0 if s.temper else 1.0)
        self.policy = Policy(dim, s)
        self.trainer = Trainer(self.flow, self.generator, loss=s.loss, lr=s.lr,
                               steps_per_batch=s.steps_per_batch, minibatch=s.minibatch,
                               clip=s.clip, buffer=s.buffer, temper=s.temper,
                               lr_final=LR_FINAL if s.lr_final is None else s.lr_final)
        self.estimator = Estimator(dim, self.generator, torch.float64
                                   if isinstance(s.estimate_dtype, str) else s.estimate_dtype)
        self._integrands: dict[int, Integrand] = {}
        self._since_checkpoint = 0
        #: A split run's channel integrators, ``{"+": ..., "-": ...}`` (empty until a call
        #: splits a sign-changing integrand; see :mod:`flowint.run.split`).
        self.channels: dict[str, Integrator] = {}
        #: The integrator a channel belongs to (it checkpoints through it); ``None`` otherwise.
        self.parent: Integrator | None = None
        if s.checkpoint is not None:
            _ckpt.resume(self, s.checkpoint)

    def _build_flow(self, spec: str | Flow) -> Flow:
        s = self.settings
        if isinstance(spec, Flow):
            if spec.dim != self.dim:
                raise ValueError(f"flow has dim {spec.dim}, integrator {self.dim}")
            if spec.base.support != "cube":
                raise ValueError("the integrator needs a flow on the unit cube (UniformBase)")
            return spec.to(device=self.device, dtype=s.dtype)
        if not isinstance(spec, str):
            raise TypeError(f"flow must be a kind name or a Flow, got {type(spec).__name__}")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator, device=self.device))
        options = {**default_flow_options(spec, self.dim), **(s.flow_options or {})}
        return make_flow(self.dim, spec, seed=seed, dtype=s.dtype, device=self.device,
                         **options)

    # ---------------------------------------------------------------- views of the state
    @property
    def history(self) -> list[IterationRecord]:
        """Every iteration so far, in order."""
        return self.state.history

    @property
    def n_evals(self) -> int:
        """Integrand evaluations so far."""
        return self.state.n_evals

    @property
    def n_dropped(self) -> int:
        """Non-finite values dropped so far (``nan_policy="drop"``)."""
        return self.state.n_dropped

    @property
    def optimizer(self) -> Adam:
        """The trainer's optimizer."""
        return self.trainer.optimizer

    def wrap(self, f: Callable | Integrand) -> Integrand:
        """The :class:`Integrand` used for ``f`` (cached, so backend detection happens once)."""
        if isinstance(f, Integrand):
            return f
        cached = self._integrands.get(id(f))
        if cached is None or cached.f is not f:
            s = self.settings
            cached = Integrand(f, self.dim, self.bounds, backend=s.backend,
                               vectorized=s.vectorized, max_batch=s.max_batch,
                               nan_policy=s.nan_policy, executor=s.executor, log=s.log,
                               prior=s.prior)
            self._integrands[id(f)] = cached
        return cached

    def batch_size(self, budget: int | None = None) -> int:
        """Points per training iteration (see :meth:`Policy.batch_size`)."""
        return self.policy.batch_size(budget)

    def frozen_flow(self, dtype: torch.dtype | None = None) -> Flow | ChannelMixture:
        """A copy of the current flow without gradients, in ``dtype`` (default:
        ``estimate_dtype``, float64 for ``"auto"``); after a call that split a sign-changing
        integrand, the mixture of the channels' frozen flows weighted by their ``|I|``
        (:class:`~flowint.run.channels.ChannelMixture`, in the channels' default dtype)."""
        if self.channels and self.state.split_weights:
            return ChannelMixture({c: ch.frozen_flow() for c, ch in self.channels.items()},
                                  self.state.split_weights, self._channel_maps())
        return self.estimator.freeze(self.flow, dtype)

    def _channel_maps(self) -> dict[str, ChannelMap] | None:
        """The maps of a multi-channel run's channels (``None`` after a sign split)."""
        plain = self.state.channel_maps
        if plain is None:
            return None
        spec = self.settings.channels
        given = list(spec) if spec is not None and not isinstance(spec, str) else []
        if any(m is None for m in plain) and len(given) != len(plain):
            raise ValueError(f"this integrator's {len(plain)} channels have maps of your own, "
                             "which a checkpoint does not hold: pass them again, e.g. "
                             "load_checkpoint(path, channels=maps)")
        maps = [map_from_plain(m) if m is not None else given[i] for i, m in enumerate(plain)]
        return dict(zip(self.channels, maps, strict=True))

    # ---------------------------------------------------------------- public API
    def train(self, f: Callable, n_evals: int, *, early_stop: bool = False,
              start: float = 0.0) -> list[IterationRecord]:
        """Train the flow with (about) ``n_evals`` integrand evaluations.

        Arguments:
            f: the integrand.
            n_evals: evaluations to spend (whole iterations; the last one may be smaller).
            early_stop: stop once the per-sample variance improves by less than 2 % over
                ``patience`` iterations.
            start: where in its schedule (learning-rate decay and tempering, 0 to 1) the
                loop starts: 0, a fresh loop; more to go on with a flow already trained,
                at the smaller rate the schedule has there (a sign split's parts topped up
                after their pilot start at 2/3).

        Returns:
            The records of the iterations run by this call.
        """
        n_evals = check_count(n_evals, "n_evals")
        if not 0.0 <= float(start) < 1.0:
            raise ValueError(f"start must be in [0, 1), got {start!r}")
        driver = CallDriver(self, self.wrap(f))
        batch = self.batch_size(n_evals)
        loop = self.state.begin("train", {"n_evals": n_evals, "early_stop": early_stop},
                                spent=0, start=len(self.history))
        with progress_bar(self.settings.progress, n_evals, "training") as bar:
            while not loop["done"] and loop["spent"] < n_evals:
                n = min(batch, n_evals - loop["spent"])
                driver.train_iteration(n, start + (1.0 - start) * loop["spent"] / n_evals)
                loop["spent"] += n
                bar.update(n)
                train = [r for r in self.history[loop["start"]:] if r.phase == "train"]
                loop["done"] = (loop["spent"] >= n_evals
                                or (early_stop and self.policy.converged(train, self.state.beta)))
                self.checkpoint_step(loop["done"])
        start = loop["start"]
        self.state.end("train")
        return self.history[start:]

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
        n_evals = check_count(n_evals, "n_evals")
        check_tolerances(rtol, atol)
        return CallDriver(self, self.wrap(f)).estimate_only(n_evals, rtol, atol)

    def __call__(self, f: Callable, budget: int = 1_000_000, *, rtol: float | None = None,
                 atol: float | None = None, n_train: int | None = None,
                 time_limit: float | None = None) -> Result:
        """Integrate within ``budget`` evaluations (and ``time_limit`` seconds) in total.

        The policy (:mod:`flowint.run.policy`) first measures plain randomized quasi-Monte
        Carlo and a per-axis grid (a few per cent of the budget), then trains the flow while
        that is predicted to lower the final error (with a target: the wall time) more than
        spending the calls on the best static candidate, and ends with quasi-random
        randomizations through the best sampler. Training iterations enter the estimate with
        weights fixed before their draw (``reuse``). With ``n_train``, exactly that many
        calls train the flow and the flow makes the final estimate. A sign-changing scalar
        integrand is split into its positive and negative parts, two channels with their own
        flows and draws (``signed``; :mod:`flowint.run.split`): ``result.method`` is then
        ``"channels"`` and ``result.channels`` holds each part's result.

        Arguments:
            f: the integrand.
            budget: most evaluations of this call.
            rtol: stop once the relative error is below ``rtol``.
            atol: stop once the absolute error is below ``atol``.
            n_train: evaluations for training (default: the policy decides).
            time_limit: most wall-clock seconds of this call (checked between iterations).

        Returns:
            The :class:`Result`; ``result.method`` names the sampler of the final estimate.
        """
        budget = check_count(budget, "budget")
        check_tolerances(rtol, atol)
        if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(
                time_limit, (int, float)) or not time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds, got "
                             f"{time_limit!r}")
        if n_train is not None:
            n_train = check_count(n_train, "n_train")
        if atol is not None and self.settings.log:
            raise ValueError("with log=True give rtol, not atol: rtol is the error of log_mean "
                             "(the relative error of the integral)")
        return CallDriver(self, self.wrap(f)).call(budget, rtol, atol, n_train, time_limit)

    def sample(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """Points in the box (through the ``prior`` transform when one is set) and their
        importance weights ``volume / q`` (``1 / q`` with a prior) from the frozen flow.

        For any integrand ``g``, ``mean(g(x) * w)`` estimates ``∫ g`` over the box (with a
        prior: the prior expectation of ``g``). After a call that split a sign-changing integrand,
        the points come from the mixture of the channels' flows (:meth:`frozen_flow`).
        """
        n = check_count(n, "n")
        gen = self.generator if seed is None else make_generator(seed, self.device)
        u, log_q = self.frozen_flow().sample(n, seed=gen)
        box = parse_bounds(self.bounds, self.dim)
        x = map_points(u.to(torch.float64), box, self.settings.prior).to(u.dtype)
        volume = 1.0 if box is None else float(np.prod(box[1] - box[0]))
        return x, volume * torch.exp(-log_q)

    def with_settings(self, **changes: Any) -> Integrator:
        """A new integrator with this one's flow, optimizer and state, and changed settings
        (settings are immutable: this is how to, say, estimate again with ``qmc=False``)."""
        new = self.settings.replace(**changes).as_dict()
        new["flow"] = copy.deepcopy(self.flow)
        new["checkpoint"] = changes.get("checkpoint")
        other = Integrator(self.dim, self.bounds, **new)
        other.flow_kind = self.flow_kind
        other.load_state_dict(self.state_dict())
        return other

    # ---------------------------------------------------------------- persistence
    def checkpoint_step(self, done: bool = False) -> None:
        """Write the automatic checkpoint when one is due (every ``checkpoint_every``
        iterations and at the end of a loop)."""
        if self.parent is not None:  # a channel: saved with the integrator it belongs to
            self.parent.checkpoint_step(done)
            return
        path = self.settings.checkpoint
        if path is None:
            return
        self._since_checkpoint += 1
        if done or self._since_checkpoint >= max(1, int(self.settings.checkpoint_every or 1)):
            _ckpt.save_checkpoint(self, path)
            self._since_checkpoint = 0

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: settings, flow, optimizer, run state and RNG state,
        and each channel's own (``"channels"``: seed and state dict) after a split run.

        Plain tensors and containers only, so it saves with ``torch.save`` and loads with
        ``torch.load(..., weights_only=True)``. Settings that are objects (a Flow passed as
        ``flow``, an executor) are not included: pass them again when rebuilding.
        """
        box = parse_bounds(self.bounds, self.dim)
        bounds = None if self.bounds is None else [
            [float(a), float(b)] for a, b in zip(box[0].tolist(), box[1].tolist(), strict=True)]
        return {
            "format": _ckpt.FORMAT,
            "dim": self.dim,
            "bounds": bounds,
            "settings": self.settings.plain(),
            "flow_config": self.flow.config,
            "flow_kind": self.flow_kind,
            "flow": {k: v.detach().cpu() for k, v in self.flow.state_dict().items()},
            "optimizer": self.trainer.optimizer.state_dict(),
            "state": self.state.to_dict(),
            "rng": self.generator.get_state(),
            "rng_device": self.generator.device.type,
            "channels": {c: {"seed": int(ch.settings.seed), "state": ch.state_dict()}
                         for c, ch in self.channels.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the flow's architecture must match; a
        state of an older checkpoint format is converted)."""
        state = _ckpt.upgrade(state)
        if state.get("format") != _ckpt.FORMAT:
            raise ValueError("not a flowint integrator state")
        if state["dim"] != self.dim:
            raise ValueError(f"state has dim {state['dim']}, integrator {self.dim}")
        self.flow.load_state_dict(state["flow"])
        self.trainer.optimizer.load_state_dict(state["optimizer"])
        self.state = RunState.from_dict(state["state"], self.device)
        self.generator.set_state(state["rng"])
        saved = state.get("channels") or {}
        # each channel's flow from its own recipe where it has one (a split's parts differ
        # from the parent's flow; a parent loaded from a file holds a Flow, not "rqs")
        flows = {}
        for c, v in saved.items():
            try:
                flows[c] = build_flow(v["state"]["flow_config"])
            except (KeyError, TypeError, ValueError):  # no recipe, or an unregistered builder:
                pass  # the channel copies the parent's flow, as checkpoints before 9b02110 did
        self.channels = build_channels(self, {c: v["seed"] for c, v in saved.items()},
                                       flows) if saved else {}
        for c, child in self.channels.items():
            child.load_state_dict(saved[c]["state"])


def integrate(f: Callable, dim: int, bounds: Any = None, *, budget: int = 1_000_000,
              rtol: float | None = None, atol: float | None = None, n_train: int | None = None,
              time_limit: float | None = None, **settings: Any) -> Result:
    """Integrate ``f`` over a box in ``dim`` dimensions, spending the budget where it pays.

    Arguments:
        f: batched integrand: takes an ``(n, dim)`` tensor or array, returns ``(n,)`` values
            (``(n, k)`` for ``k`` integrals at once). See :class:`flowint.integrand.Integrand`.
        dim: number of dimensions.
        bounds: ``None`` (the unit cube), ``(lo, hi)`` for all axes, or one pair per axis.
        budget: total integrand evaluations, exploration, training and estimate together.
        rtol: stop once the relative error is below ``rtol``.
        atol: stop once the absolute error is below ``atol``.
        n_train: evaluations for training (default: the policy decides).
        time_limit: most wall-clock seconds (checked between iterations).
        **settings: see :data:`DEFAULTS` (``loss``, ``flow``, ``seed``, ``device``, ...).

    Returns:
        A :class:`~flowint.result.Result`; ``print(result)`` gives ``0.98166(12)``.

    Example:
        >>> import torch, flowint
        >>> r = flowint.integrate(lambda x: torch.exp(-((x - 0.5)**2).sum(-1) / 0.02), 4,
        ...                       budget=200_000, seed=0)
    """
    return Integrator(dim, bounds, **settings)(f, budget, rtol=rtol, atol=atol, n_train=n_train,
                                               time_limit=time_limit)


def load_checkpoint(path: Any, **settings: Any) -> Integrator:
    """Rebuild an integrator from a checkpoint file.

    Arguments:
        path: the checkpoint file.
        **settings: settings to change (``device``, ``executor``, ``progress``, ...); a flow
            built without a registered recipe must be passed again as ``flow``. Automatic
            checkpoints are off unless ``checkpoint`` is given here.

    Returns:
        The integrator, with flow, optimizer, run state and random state restored.

    Example:
        >>> integ = load_checkpoint("run.ckpt", device="cuda")
        >>> x, w = integ.sample(10_000)
    """
    saved, blob = _ckpt.saved_settings(path)
    rebuilt = "flow" not in settings
    if rebuilt:
        saved["flow"] = _ckpt.saved_flow(blob, path)
    target = settings.pop("checkpoint", None)
    saved.update(settings)
    saved["checkpoint"] = None
    integ = Integrator(int(blob["dim"]), blob["bounds"], **saved)
    if rebuilt:  # the flow stands for the family it was built from by name, if it was
        integ.flow_kind = blob.get("flow_kind")
    _ckpt.resume(integ, path)
    integ.settings = integ.settings.replace(checkpoint=target)
    return integ
