"""The integrator's settings: one immutable object, one home for every default.

:data:`DEFAULTS` lists every setting with its default; :class:`Settings` holds one validated
set of them and is never changed during a run (``settings.replace(lr=...)`` makes a new one).
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any

import torch

from ..losses import LOSSES

__all__ = ["DEFAULTS", "LR_FINAL", "SIGNED_MODES", "Settings", "default_flow_options"]

#: The values of the ``signed`` setting.
SIGNED_MODES = ("auto", "split", "off")

#: The fraction of ``lr`` that training decays to when ``lr_final`` is ``None`` (a sign
#: split's parts take :data:`~flowint.run.channels.PART_LR_FINAL` instead).
LR_FINAL = 0.1


@dataclasses.dataclass(frozen=True)
class Settings:
    """Settings of :class:`~flowint.Integrator` (all keyword-only; see :data:`DEFAULTS`).

    Attributes:
        flow: ``"rqs"`` | ``"pwq"`` | ``"pwl"`` or a :class:`~flowint.flows.Flow` on the cube.
        flow_options: extra :func:`~flowint.make_flow` arguments; the integrator's own
            defaults are ``grid=False`` and, from 3 dimensions on, ``hidden=32`` and
            ``bins=4`` for ``rqs`` (in 1 and 2, ``hidden=64`` and ``bins=8``;
            :func:`default_flow_options`); a sign split's parts take
            :func:`~flowint.run.channels.part_flow_options` before these.
        loss: ``"variance"`` | ``"kl"`` | ``"hellinger"`` | ``"jeffreys"``.
        lr: Adam learning rate, cosine-decayed over training to a fraction ``lr_final`` of it.
        batch_size: points per training iteration (``None``: from ``dim`` and the budget).
        steps_per_batch: gradient steps per iteration, on minibatches of the buffer.
        minibatch: points per gradient step, drawn from the buffer (``None``: the whole buffer).
        lr_final: learning rate at the end of training, as a fraction of ``lr`` (``None``:
            :data:`LR_FINAL`, and :data:`~flowint.run.channels.PART_LR_FINAL` for a
            sign split's parts).
        clip: gradient-norm clipping (``None`` or 0: off).
        buffer: evaluated batches kept for re-use (importance-weighted).
        warmup: VEGAS-style refinements of the flow's per-axis grid before training (only with
            ``flow_options={"grid": True}``).
        grid_alpha: damping exponent of grid refinements.
        train_fraction: most of the budget training may take.
        patience: training iterations over which the rate of improvement is measured.
        temper: train on ``|f|^β``, β rising to 1 while the Kish effective sample size of the
            tempered weights stays above this fraction of the batch's non-zero points;
            ``None`` or 0: off.
        train_on: vector integrands: ``"norm"`` or a component index.
        explore: let the policy measure plain RQMC and a per-axis grid before training and
            choose what the budget buys (``False``: always train, then sample the flow).
        reuse: let the training iterations enter the estimate (weights fixed before each
            iteration's draw; see :mod:`flowint.run.estimator`).
        dtype: training dtype of the flow.
        estimate_dtype: dtype of the frozen flow in the final estimate: ``torch.float64``,
            ``torch.float32`` or ``"auto"`` (the default: a call's measurements and final
            estimate push their points through a trained flow in float32 — the dtype it was
            trained in, whose training iterations the estimate reuses — unless the final
            estimate is predicted, or asked, to reach a relative error below
            :data:`~flowint.run.sizing.FLOAT32_FLOOR`; the identity, the grid,
            :meth:`~flowint.Integrator.sample` and :meth:`~flowint.Integrator.estimate` use
            float64).
        qmc: final estimate from independently scrambled Sobol base points.
        device: torch device (default CPU).
        seed: int or generator; the only source of randomness.
        max_batch: most points per call of ``f``.
        nan_policy: ``"raise"`` | ``"drop"`` non-finite values of ``f``.
        backend: ``"torch"`` | ``"numpy"`` | ``None`` (detect).
        vectorized: ``False``: ``f`` takes one point and returns a number.
        executor: ``concurrent.futures``-like executor for evaluating ``f``, or a factory.
        progress: tqdm bar: ``None`` = only when stderr is a terminal.
        checkpoint: file to checkpoint to and resume from (see :mod:`flowint.checkpoint`).
        checkpoint_every: iterations between automatic checkpoints.
        log: the integrand returns ``log f`` of a non-negative ``f`` (a log-likelihood): every
            weight is formed as ``log f - log q`` and kept on a running scale, so that values
            like ``exp(-800)`` work; the result adds ``log_mean`` and ``log_sdev``.
        prior: a prior transform from the unit cube to parameter space (as nautilus and dynesty
            take it), applied to every point before ``f``: the integral over the cube is then
            the evidence ``∫ L(θ) π(θ) dθ``. Not with ``bounds``; not saved in checkpoints
            (pass it again when loading one).
        channels: ``"default"``: ``"auto"`` for an integrand given as a logarithm
            (``log=True``: a likelihood, whose posterior may have separated modes of unequal
            height), else ``None``; ``None`` (one flow), ``"modes"`` (search the peaks of
            ``|f|`` first, then one
            flow per peak behind its own channel map, and one for the rest), ``"auto"`` (search,
            then channels only if a peak is much higher than the volume-weighted mean height,
            which a single tempered flow risks losing; else one flow, the search's pilot in its
            training buffer) or a list of :class:`~flowint.channel_maps.ChannelMap` (one
            channel each); scalar integrands (:mod:`flowint.run.mode_channels`).
        signed: sign-changing scalar integrands in :meth:`~flowint.Integrator.__call__`:
            ``"auto"`` splits ``f = f⁺ − f⁻`` into two channels, each with its own flow and
            its own draws (:mod:`flowint.run.channels`), once the points seen show both signs
            and no static sampler suffices; ``"split"`` always splits (an error for vector
            integrands); ``"off"``: one density trained on ``|f|``. Ignored with ``log=True``
            (a logarithm has no sign) and by ``train``/``estimate``.
        learn_alpha: multi-channel runs (``channels=``) learn the channel weights ``α``
            from the pilots' points before the channels' own calls, and keep them where
            held-out points confirm the gain (:mod:`flowint.run.alpha`); ``False``: ``α``
            from the modes' masses (equal for given maps).
    """

    flow: Any = "rqs"
    flow_options: dict[str, Any] | None = None
    loss: str = "variance"
    lr: float = 6e-3
    batch_size: int | None = None
    steps_per_batch: int = 16
    minibatch: int | None = 1024
    lr_final: float | None = None
    clip: float | None = 10.0
    buffer: int = 4
    warmup: int = 0
    grid_alpha: float = 0.5
    train_fraction: float = 0.8
    patience: int = 8
    temper: float | None = 0.3
    train_on: Any = "norm"
    explore: bool = True
    reuse: bool = True
    dtype: torch.dtype = torch.float32
    estimate_dtype: Any = "auto"
    qmc: bool = True
    device: Any = None
    seed: Any = None
    max_batch: int | None = None
    nan_policy: str = "raise"
    backend: str | None = None
    vectorized: bool = True
    executor: Any = None
    progress: bool | None = None
    checkpoint: Any = None
    checkpoint_every: int = 1
    log: bool = False
    prior: Any = None
    signed: str = "auto"
    channels: Any = "default"
    learn_alpha: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSSES)}")
        for key in ("steps_per_batch", "warmup", "patience", "buffer"):
            value = getattr(self, key)
            if isinstance(value, bool) or not hasattr(value, "__index__") or value < 0:
                raise ValueError(f"{key} must be an integer >= 0, got {value!r}")
        r = self.lr_final
        if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float))
                              or not 0.0 <= float(r) <= 1.0):
            raise ValueError(f"lr_final must be None or a fraction in [0, 1], got {r!r}")
        if not 0.0 < float(self.train_fraction) < 1.0:
            raise ValueError("train_fraction must be in (0, 1)")
        b = self.batch_size
        if b is not None and (isinstance(b, bool) or not hasattr(b, "__index__") or b < 2):
            raise ValueError(f"batch_size must be None or an integer >= 2, got {b!r}")
        t = self.temper
        if t is not None and not (isinstance(t, (int, float)) and not isinstance(t, bool)
                                  and 0.0 <= float(t) < 1.0):
            raise ValueError(f"temper must be None or a fraction in [0, 1), got {t!r}")
        on = self.train_on
        if on != "norm" and (isinstance(on, bool) or not isinstance(on, int) or on < 0):
            raise ValueError(f"train_on must be 'norm' or a component index >= 0, got {on!r}")
        for key in ("log", "learn_alpha"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{key} must be True or False, got {getattr(self, key)!r}")
        if self.prior is not None and not callable(self.prior):
            raise TypeError(f"prior must be a callable (a prior transform), got "
                            f"{type(self.prior).__name__}")
        if self.signed not in SIGNED_MODES:
            raise ValueError(f"signed must be one of {SIGNED_MODES}, got {self.signed!r}")
        if self.signed == "split" and self.log:
            raise ValueError("signed='split' needs log=False: an integrand given as a logarithm "
                             "cannot change sign")
        if isinstance(self.channels, str) and self.channels == "default":
            object.__setattr__(self, "channels", _default_channels(self.log))
        _check_channels(self.channels)
        if not (self.estimate_dtype in (torch.float32, torch.float64)
                or (isinstance(self.estimate_dtype, str) and self.estimate_dtype == "auto")):
            raise ValueError("estimate_dtype must be torch.float32, torch.float64 or 'auto', "
                             f"got {self.estimate_dtype!r}")
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 \
                or not math.isfinite(lr):
            raise ValueError(f"lr (the learning rate) must be a positive number, got {lr!r}")

    @classmethod
    def from_kwargs(cls, **settings: Any) -> Settings:
        """Validated settings from keyword arguments; unknown names raise :class:`TypeError`."""
        unknown = set(settings) - set(DEFAULTS)
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
        return cls(**settings)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (validated again). A change of ``log`` without one
        of ``channels`` takes the new default of ``channels`` if the old one was the default
        (``"auto"`` with ``log=True``, else ``None``)."""
        if "log" in changes and "channels" not in changes and \
                self.channels == _default_channels(self.log):
            changes = {**changes, "channels": "default"}
        return Settings.from_kwargs(**{**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (objects such as a Flow or an executor included)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __getitem__(self, key: str) -> Any:
        """Read access as in a mapping: ``settings["lr"]``."""
        if key not in DEFAULTS:
            raise KeyError(key)
        return getattr(self, key)

    def plain(self) -> dict[str, Any]:
        """The settings a checkpoint stores: plain data only (no Flow, executor, seed, prior
        or channel maps)."""
        out = {k: v for k, v in self.as_dict().items() if k not in ("executor", "flow", "seed",
                                                               "prior")}
        if out["channels"] is not None and not isinstance(out["channels"], str):
            out["channels"] = None  # channel maps are objects: pass them again
        for key in ("dtype", "estimate_dtype"):
            out[key] = str(out[key]).removeprefix("torch.")
        out["device"] = None
        out["checkpoint"] = None if out["checkpoint"] is None else str(out["checkpoint"])
        return out


def _default_channels(log: bool) -> str | None:
    """What ``channels="default"`` stands for: a search with ``log=True``, else one flow."""
    return "auto" if log else None


def _check_channels(spec: Any) -> None:
    """``channels`` must be ``None``, ``"modes"``, ``"auto"`` or a non-empty sequence of
    channel maps."""
    if spec is None or spec in ("modes", "auto"):
        return
    from ..channel_maps import ChannelMap

    if isinstance(spec, str) or not isinstance(spec, (list, tuple)) or not spec or \
            not all(isinstance(m, ChannelMap) for m in spec):
        raise ValueError(f"channels must be 'default', None, 'modes', 'auto' or a non-empty "
                         f"list of ChannelMap, got {spec!r}")


#: Every setting of :class:`~flowint.Integrator` with its default (read-only).
DEFAULTS: MappingProxyType = MappingProxyType(
    {f.name: f.default for f in dataclasses.fields(Settings)})


def default_flow_options(kind: str, dim: int) -> dict[str, Any]:
    """The :func:`~flowint.make_flow` arguments of the integrator's flow of spline family
    ``kind`` on ``dim`` dimensions before ``flow_options``: no per-axis grid (the grid is a
    candidate of its own); from 3 dimensions on, conditioners 32 wide and 4 bins for
    ``"rqs"``; in 1 and 2 dimensions, 64 wide and 8 bins.

    Above 2 dimensions the lighter flow takes about half the seconds of the 64-wide, 8-bin
    one in an error-target run with a cheap integrand, where training and sampling are most
    of the seconds (camel 8-D: 2.7–3.4 µs per final point against 4.7–6.4, and a break-even
    integrand cost against VEGAS of 0.77 µs per call against 1.55), and the camel 8/16/32-D
    reached error bars as small or smaller at the same calls
    (``benchmarks/results/equal_cost.md``). In 2 dimensions the flow has two coupling layers
    of one coordinate each, a point through it costs little, and a sharp feature needs the
    knots: with 4 bins and 32 wide the annulus at 10⁵ calls ended 1.64× plain RQMC's RMS
    error over 140 seeds (2.27× on the 44 that end in the trained flow;
    ``benchmarks/results/equal_cost_2d_seeds_4bins.md``), with 8 bins and 32 wide 1.01× but
    with six pulls beyond 3 (a scratch run), with 8 bins and 64 wide 0.92×."""
    if dim <= 2:
        return {"hidden": 64, "grid": False, **({"bins": 8} if kind == "rqs" else {})}
    return {"hidden": 32, "grid": False, **({"bins": 4} if kind == "rqs" else {})}
