"""The state of a run as plain data: exactly what a checkpoint saves.

:class:`RunState` holds the counters, the history, the tempering exponent, the training buffer
and the progress of the loop in flight. The Trainer, Estimator and Policy read and advance it;
nothing else of theirs needs saving (the flow's parameters and the optimizer aside), so a run
restored from :meth:`RunState.from_dict` continues exactly where it stopped.

Progress records are dicts of numbers, strings, lists and tensors:

- ``call``: the call of :meth:`~flowint.Integrator.__call__` in flight — its arguments
  (``key``), the counters when it started, the policy's measurements (``measures``: candidate
  name to a list of :class:`Measurement` tuples), the per-axis grid candidate's edges, the
  reusable training iterations (``pieces``: :class:`Piece` tuples) and the choice made; the
  positive and negative parts of the weights seen (``signs``) and, once a sign-changing
  integrand is split, the split's progress (``split``: calls left at the split, pilot size,
  each channel's measured ``σ`` and mean, the allocation, per-channel error targets and the
  finished channels' results; :mod:`flowint.run.channels`). The channels' own states (flow,
  optimizer, run state, random state) are saved beside this one by
  :meth:`~flowint.Integrator.state_dict`.
- ``train``: a training loop in flight (iteration, calls spent, learning rate at its start).
- ``final``: a final estimate in flight (randomization size, weights so far, next look).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..result import IterationRecord

__all__ = ["Measurement", "Piece", "RunState"]


class Measurement(NamedTuple):
    """``k`` independent randomizations of ``n`` quasi-random points through one sampler.

    Attributes:
        n: points per randomization.
        k: randomizations.
        mean: the mean of the randomization means.
        var_mean: the variance of one randomization's mean (from their spread), relative to
            ``mean²`` (to the largest ``|f/q|`` squared where the mean is 0).
        var_point: the per-point variance of ``f/q`` (pooled), what i.i.d. points would give,
            in the same relative units.
        abs_ratio: ``mean |f/q| / |mean f/q|`` of the pooled points (1 where ``f`` keeps its
            sign; ``∫|f| / |∫f|`` for a sign-changing one); NaN in measurements saved before
            it was recorded.
    """

    n: int
    k: int
    mean: float
    var_mean: float
    var_point: float
    abs_ratio: float = math.nan


class Piece(NamedTuple):
    """A training iteration kept for the estimate.

    Attributes:
        n: its points (i.i.d. from a flow fixed before the draw).
        mean: its estimate of the integral.
        sdev: the standard error of that estimate (its own per-point std over ``√n``).
        planned_var: the variance predicted before the draw, from the iteration before,
            relative to the integral squared (the combination weight is ``1 / planned_var``,
            fixed before the draw).
    """

    n: int
    mean: float
    sdev: float
    planned_var: float


@dataclasses.dataclass
class RunState:
    """Counters, history and progress of an integrator (plain data; see the module doc).

    Attributes:
        n_evals: integrand evaluations so far (all calls together).
        n_dropped: non-finite values dropped.
        history: every iteration, in order.
        beta: the tempering exponent of the training target ``|f|^beta``.
        lr_scale: factor on the learning rate (halved when a step produced non-finite values).
        warmed: per-axis grid refinements done.
        seconds: seconds spent in ``f`` (``"f"``), in training (``"train"``: drawing the
            batches and the gradient steps) and in sampling the estimator's samplers
            (``"sample"``).
        buffer: evaluated training batches ``(u, log_target, log_q0)`` kept for re-use
            (``log_target`` is ``log |f|`` or of a norm, in absolute units).
        call, train, final: progress of the loops in flight (``None`` when idle).
        channel_maps: after a multi-channel call (``channels=``), each channel's map as plain
            data (``None`` for a map given in the settings), in the channels' order.
        split_weights: after a call that split a sign-changing integrand into channels, each
            channel's ``|I|`` (the weights of the mixture of the channels' flows that the
            integrator then samples, :class:`~flowint.run.channels.ChannelMixture`); ``None``
            after any other call.
        log_scale: integrands given as logarithms (``log=True``): every value derived from
            ``f`` (history, measurements, final weights; not the buffer) is in units of
            ``exp(log_scale)``; ``None`` until a finite ``log f`` has been seen.
    """

    n_evals: int = 0
    n_dropped: int = 0
    history: list[IterationRecord] = dataclasses.field(default_factory=list)
    beta: float = 1.0
    lr_scale: float = 1.0
    warmed: int = 0
    seconds: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"f": 0.0, "train": 0.0, "sample": 0.0})
    buffer: list[tuple[Tensor, Tensor, Tensor]] = dataclasses.field(default_factory=list)
    call: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    final: dict[str, Any] | None = None
    log_scale: float | None = None
    split_weights: dict[str, float] | None = None
    channel_maps: list[dict[str, Any] | None] | None = None

    def rescale(self, log_scale: float) -> None:
        """Move every value derived from ``f`` to units of ``exp(log_scale)``.

        Multiplies the history's means and errors, the measurements' means (their variances
        are relative), the points kept for the grid, the stratified plan's cell sums (``Σf²``
        by the square) and the final weights by ``exp(old - log_scale)``; values far below
        the new scale underflow to zero, which is what they are beside it. The buffer holds
        ``log`` targets, which have no unit.
        """
        old = self.log_scale
        self.log_scale = float(log_scale)
        if old is None or old == self.log_scale:
            return
        c = math.exp(old - self.log_scale)
        self.history = [dataclasses.replace(r, mean=r.mean * c, sdev=r.sdev * c)
                        for r in self.history]
        if self.call is not None:
            for entries in self.call.get("measures", {}).values():
                for m in entries:
                    m[2] *= c  # Measurement.mean (kept as a list)
            for pair in self.call.get("seen", []):
                pair[1] = pair[1] * c
            plan = self.call.get("strata") or {}
            for key in ("sums", "pilot_sums"):  # counts, Σf, Σf² per cell
                if key in plan:
                    plan[key] = plan[key] * torch.tensor([[1.0], [c], [c * c]],
                                                         dtype=plan[key].dtype,
                                                         device=plan[key].device)
        if self.final is not None:
            self.final["weights"] = [w * c for w in self.final.get("weights", [])]

    def begin(self, kind: str, key: dict[str, Any], **fresh: Any) -> dict[str, Any]:
        """The progress record of loop ``kind`` (``"call"``, ``"train"`` or ``"final"``).

        A record restored from a checkpoint is continued when its loop was started with the
        same arguments ``key``; otherwise a fresh ``{"key", "done": False, **fresh}`` replaces
        it. A new call also forgets the loops of the previous one.
        """
        entry = getattr(self, kind)
        if entry is not None and entry["key"] == key:
            return entry
        if kind == "call":
            self.train = self.final = None
        if kind in ("call", "train"):
            self.lr_scale = 1.0  # a learning rate halved by a roll-back lasts one loop
        entry = {"key": dict(key), "done": False, **fresh}
        setattr(self, kind, entry)
        return entry

    def end(self, kind: str) -> None:
        """Forget a finished loop (inner loops are kept while a call is in flight)."""
        if kind == "call":
            self.call = self.train = self.final = None
        elif self.call is None:
            setattr(self, kind, None)

    def spent(self, kind: str) -> float:
        """Seconds of kind ``"f"``, ``"train"`` or ``"sample"`` so far."""
        return float(self.seconds.get(kind, 0.0))

    def add_seconds(self, kind: str, seconds: float) -> None:
        """Add to the seconds spent in ``kind``."""
        self.seconds[kind] = self.spent(kind) + float(seconds)

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors and containers, on the CPU (``torch.load(weights_only=True)`` safe)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["history"] = [list(dataclasses.astuple(r)) for r in self.history]
        out["buffer"] = [list(b) for b in self.buffer]
        out["seconds"] = dict(self.seconds)
        return _to_device(out, torch.device("cpu"))

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device) -> RunState:
        """Rebuild a state written by :meth:`to_dict`, its tensors moved to ``device``."""
        data = _to_device(dict(data), device)
        known = {f.name for f in dataclasses.fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.history = [IterationRecord(*r) for r in data.get("history", [])]
        state.buffer = [tuple(b) for b in data.get("buffer", [])]
        return state


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach().to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # named tuples: saved as lists
        return [_to_device(v, device) for v in obj]
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
