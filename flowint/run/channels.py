"""Channel runs: a call integrated as several channels, each an integrator of its own.

:class:`ChannelRun` is what a sign split (:mod:`flowint.run.split`) and a multi-channel run
(:mod:`flowint.run.mode_channels`) share: the channel integrators (:func:`build_channels`),
their pilots, the Policy's allocation of the calls left, the channels' own calls, and the
mixture of their flows that the integrator samples afterwards (:class:`ChannelMixture`).

Each *channel* is an :class:`~flowint.Integrator` of its own (flow, trainer, run state, random
stream) on one part of ``f``, drawing its own independent points. The steps of a channel call
(its progress is the call record's ``"split"`` entry, plain data in the
:class:`~flowint.run.state.RunState`; the channels' own states are saved beside it by
:meth:`~flowint.Integrator.state_dict`):

1. *pilot*: each channel trains on its part (:meth:`~flowint.Integrator.train`) for
   :data:`~flowint.run.allocation.PILOT_FRACTION` of the calls left, times ``2 / channels``
   (with ``n_train``: the training calls left shared out, i.e. all of the training);
2. *allocation*: ``σ_c`` measured on each pilot's last training iterations; the
   :class:`~flowint.run.policy.Policy` divides the calls left (:mod:`flowint.run.allocation`);
3. each channel with calls makes its own call with its share (exploration, training, final
   estimate and every diagnostic, as for any integrand; with ``n_train``: an estimate from
   the trained flow), and the :class:`~flowint.result.Result` combines them.

With the default ``flow="rqs"`` a sign split's flows take :func:`part_flow_options` (knot
derivatives ``exp(θ)``, bin floors of 10⁻⁵; twice the bins of the integrator's own flow where
``n_train`` gives each channel long training) before the user's ``flow_options``, and with
``lr_final=None`` (the default) their learning rate decays to :data:`PART_LR_FINAL` of ``lr``
instead of :data:`~flowint.run.settings.LR_FINAL`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..channel_maps import ChannelMap
from ..flows import Flow
from ..result import Result
from .allocation import CHANNELS, SPLIT_NAMES
from .channel_result import result_from_plain, result_to_plain
from .settings import default_flow_options

if TYPE_CHECKING:  # pragma: no cover
    from ..integrator import Integrator
    from .driver import CallDriver

__all__ = ["CHANNELS", "PART_FLOW_OPTIONS", "PART_LR_FINAL", "ChannelMixture", "ChannelRun",
           "build_channels", "part_flow_options", "part_lr_final", "quietly"]

_BELOW_ONE = 1.0 - 2.0**-53


PART_FLOW_OPTIONS: dict[str, Any] = {"derivative": "exp", "min_width": 1e-5}
"""What the flows of a sign split's parts take before the user's ``flow_options`` (with the
default ``flow="rqs"``), beside the bins of :func:`part_flow_options`: knot derivatives
``exp(θ)`` and bin floors of ``10⁻⁵``. A part ``f± = max(±f, 0)`` is zero wherever ``f`` has
the other sign, and the density must fall by orders of magnitude there and in the tails of its
peaks; a softplus derivative reaches a density ``ε`` of the mean only through a parameter of
size ``1/ε``, the exponential through ``log(1/ε)``. Measured in
``benchmarks/results/signed_channels_equal_budget.md``."""

PART_LR_FINAL = 1e-4
"""The fraction of ``lr`` that a sign split's parts decay their learning rate to when
``lr_final`` is ``None`` (the default; the integrator's own flow decays to
:data:`~flowint.run.settings.LR_FINAL`). A part is a fixed positive target trained to the end
of its share, and the last stretch at a small rate is where its fit sharpens: with 10⁶
training calls and the integrator's bins it took the signed camel's median rel. std per
sample from 0.201 to 0.170 (2-D) and from 0.299 to 0.285 (4-D)
(``benchmarks/results/signed_channels_equal_budget_bins_dim2.md``, ``_dim4.md``), and at
5·10⁴ calls the 4-D split's RMS error over 120 seeds from 1.16·10⁻³ to 9.7·10⁻⁴, its error
bars from a little small to honest (``policy_coverage_signed.md`` against
``policy_coverage_signed_b3b79ea.md``)."""


def part_lr_final(lr_final: float | None) -> float:
    """The final learning-rate fraction of a sign split's parts under the setting
    ``lr_final``: :data:`PART_LR_FINAL` for ``None``, else the user's value."""
    return PART_LR_FINAL if lr_final is None else float(lr_final)


def part_flow_options(dim: int, bins_factor: int = 1) -> dict[str, Any]:
    """The :func:`~flowint.make_flow` arguments a sign split's part flows of the default
    ``"rqs"`` family take on ``dim`` dimensions before the user's ``flow_options``:
    :data:`PART_FLOW_OPTIONS`, and ``bins_factor`` times the bins of the integrator's own flow
    (:func:`~flowint.run.settings.default_flow_options`: 8 in 1 and 2 dimensions, 4 from 3
    on; the factor is the Policy's,
    :meth:`~flowint.run.allocation.ChannelDecisions.part_bins_factor`: 2 with long training)."""
    bins = int(default_flow_options("rqs", dim)["bins"]) * int(bins_factor)
    return {**PART_FLOW_OPTIONS, "bins": bins}


def build_channels(parent: Integrator, seeds: dict[str, int],
                   flows: dict[str, Flow] | None = None,
                   bins_factor: int = 1, split: bool | None = None) -> dict[str, Integrator]:
    """The channel integrators of ``parent``, one per key of ``seeds`` (in its order): its
    settings and flow recipe, on the unit cube (the parent's driver maps the points), torch in
    and out, ``signed="off"``, one channel, no checkpoint file of their own (they checkpoint
    through the parent) and one seed each. The channels of a sign split take ``f±`` as
    values; those of a multi-channel run take what the parent takes (``log``). ``flows``:
    channels' flows to take as they are (rebuilt from a checkpoint's recipes); the others
    are built fresh from the family the parent's flow was built from by name (a sign split's
    parts from ``"rqs"`` with :func:`part_flow_options` and ``bins_factor``), or copy a Flow
    passed as ``flow``. A sign split's parts decay their learning rate to
    :data:`PART_LR_FINAL` where the parent's ``lr_final`` is ``None``. ``split``: whether
    they are a sign split's channels (default: whether ``seeds`` names the split's channels,
    ``"+"`` and ``"-"`` and perhaps ``"r"``)."""
    s = parent.settings
    flow = s.flow
    if split is None:
        split = set(CHANNELS) <= set(seeds) <= set(SPLIT_NAMES)
    log = bool(s.log) and not split
    if parent.flow_kind is not None:  # built by name, also when loaded from a checkpoint
        flow = parent.flow_kind
    options = s.flow_options
    if split and flow == "rqs":
        options = {**part_flow_options(parent.dim, bins_factor), **(s.flow_options or {})}
    lr_final = part_lr_final(s.lr_final) if split else s.lr_final
    out = {}
    for c in seeds:
        settings = s.replace(signed="off", checkpoint=None, seed=int(seeds[c]), backend="torch",
                             vectorized=True, executor=None, max_batch=None, prior=None,
                             nan_policy="raise", log=log, progress=False,
                             channels=None, flow_options=options,
                             lr_final=lr_final).as_dict()
        if flows and c in flows:
            settings["flow"] = flows[c]
        else:
            settings["flow"] = flow if isinstance(flow, str) else copy.deepcopy(flow)
        child = type(parent)(parent.dim, None, **settings)
        child.parent = parent
        out[c] = child
    return out


class ChannelRun:
    """The channel part of one call: pilots, allocation, the channels' own calls (see the
    module doc). Subclasses name the channels, give their integrands and combine results.

    Arguments:
        driver: the parent call's driver.
        call: the parent call's progress record (its ``"split"`` entry is filled here).
    """

    names: tuple[str, ...]
    parts: dict[str, Callable[[Tensor], Tensor]]
    #: Whether the channels are a sign split's (their flows take the parts' options).
    sign_split = False
    #: Least shares of the calls left after the pilots, by channel (beside Neyman's).
    floors: dict[str, float] | None = None

    def __init__(self, driver: CallDriver, call: dict[str, Any]):
        self.driver = driver
        self.integ = driver.integ
        self.call = call

    def combine(self, results: dict[str, Result]) -> Result:  # pragma: no cover - abstract
        """The call's result from the channels' results."""
        raise NotImplementedError

    def sigma_mean(self, c: str, train: list[Any]) -> tuple[float, float]:
        """``(σ, |I|)`` of channel ``c`` from its pilot's training iterations."""
        return self.integ.policy.channel_sigma(train)

    def goal_kwargs(self, c: str, goal: float | None) -> dict[str, Any]:
        """The error target of channel ``c``'s own call, as its keyword arguments."""
        return {"atol": goal}

    def grow(self, rec: dict[str, Any]) -> bool:
        """Add channels after the pilots (what their points show); whether any were added.
        None here; see :meth:`~flowint.run.mode_channels.ModeRun.grow`."""
        return False

    def tune(self, rec: dict[str, Any]) -> None:
        """Adjust the channels after the pilots (and any growth), before the allocation.
        Nothing here; see :meth:`~flowint.run.mode_channels.ModeRun.tune`."""

    def part(self, c: str, rec: dict[str, Any]) -> Callable[[Tensor], Tensor] | None:
        """Channel ``c``'s integrand (``None``: it cannot be built; its pilot is skipped)."""
        return self.parts[c]

    def allocate(self, rest: int, rtol: float | None, atol: float | None,
                 rec: dict[str, Any]) -> None:
        """``rec["alloc"]`` (calls of each channel's own call; 0: no call) and
        ``rec["goals"]`` from the pilots' ``σ`` and means (the Policy's decisions)."""
        policy = self.integ.policy
        rec["alloc"] = policy.channel_budgets(rest, rec["sigma"], self.floors)
        rec["goals"] = policy.channel_goals(rtol, atol, rec["mean"], rec["sigma"])

    def run(self, budget: int, rtol: float | None, atol: float | None, n_train: int | None,
            time_limit: float | None) -> Result:
        """Pilot, allocation and the channels' calls; the combined result."""
        integ, state, rec = self.integ, self.integ.state, self.call["split"]
        if "rest" not in rec:  # fixed when the split starts
            spent = state.n_evals - self.call["start_evals"]
            train_spent = sum(r.n for r in state.history[self.call["history_start"]:]
                              if r.phase in ("train", "warmup"))
            rest = budget - spent
            left = None if n_train is None else max(n_train - train_spent, 0)
            missing = [c for c in self.names if c not in integ.channels]
            if missing:  # all of them, or what an earlier split did not have (the residual)
                seeds = torch.randint(0, 2**62, (len(missing),), generator=integ.generator)
                integ.channels.update(build_channels(
                    integ, dict(zip(missing, seeds.tolist(), strict=True)),
                    bins_factor=integ.policy.part_bins_factor(left, len(self.names)),
                    split=self.sign_split))
            rec.update(rest=rest, pilot=integ.policy.pilot_calls(rest, left, len(self.names)),
                       piloted=[], train_left=left,
                       sigma={}, mean={}, results={},
                       seconds0={c: dict(ch.state.seconds) for c, ch in integ.channels.items()},
                       evals0={c: ch.state.n_evals for c, ch in integ.channels.items()})
        self._pilot(rec)
        if "alloc" not in rec and self.grow(rec):
            self._pilot(rec)  # the new channels' pilots
        if "alloc" not in rec:
            self.tune(rec)
            rest = budget - (state.n_evals - self.call["start_evals"])
            self.allocate(rest, rtol, atol, rec)
        for c in self.names:  # "skip": channels the Policy gave no call of their own
            if c not in rec["results"] and c not in rec.get("skip", ()):
                rec["results"][c] = result_to_plain(self._channel_call(c, rec, n_train,
                                                                       time_limit))
                integ.checkpoint_step(done=True)
        return self.combine({c: self._whole(c, rec) for c in self.names
                             if c in rec["results"]})

    def _pilot(self, rec: dict[str, Any]) -> None:
        """Each channel's pilot training, and its ``σ`` and mean."""
        for c in self.names:
            if c in rec["piloted"]:
                continue
            child, part = self.integ.channels[c], self.part(c, rec)
            if part is None:
                rec["sigma"][c], rec["mean"][c] = math.nan, math.nan
            else:
                done = quietly(c, child.train, part, int(rec["pilot"]))
                train = [r for r in done if r.phase == "train"]
                rec["sigma"][c], rec["mean"][c] = self.sigma_mean(c, train)
            rec["piloted"].append(c)
            self.integ.checkpoint_step(done=True)

    def _channel_call(self, c: str, rec: dict[str, Any], n_train: int | None,
                      time_limit: float | None) -> Result:
        """Channel ``c``'s own call with its share of the calls (and of the time left)."""
        child, part = self.integ.channels[c], self.part(c, rec)
        n = max(int(rec["alloc"][c]), 1)
        goal = rec["goals"].get(c)
        if n_train is not None:  # trained in the pilot: the estimate alone
            return quietly(c, child.estimate, part, n, **self.goal_kwargs(c, goal))
        limits = rec.setdefault("limits", {})
        if time_limit is not None and c not in limits:  # fixed once: a resumed call matches
            waiting = sum(int(rec["alloc"][k]) for k in self.names if k not in rec["results"])
            limits[c] = max(time_limit - self.driver.elapsed(), 1e-3) * n / max(waiting, 1)
        return quietly(c, child, part, n, time_limit=limits.get(c), **self.goal_kwargs(c, goal))

    def _whole(self, c: str, rec: dict[str, Any]) -> Result:
        """Channel ``c``'s result with the calls and seconds of the whole channel in this
        split, its pilot included (its own call's result counts only that call)."""
        child = self.integ.channels[c]
        seconds = {k: child.state.spent(k) - float(rec["seconds0"][c].get(k, 0.0))
                   for k in ("f", "train", "sample")}
        return dataclasses.replace(result_from_plain(rec["results"][c]), seconds=seconds,
                                   n_evals=child.state.n_evals - int(rec["evals0"][c]))


class ChannelMixture:
    """The density ``q = Σ α_c q_c`` of the channels' frozen flows, ``α_c ∝ |I_c|``.

    After a split run, ``q ≈ |f| / ∫|f|`` when each channel's flow is close to its part, which
    is what :meth:`~flowint.Integrator.sample` and the samplers of :mod:`flowint.sampling`
    (weights ``f/q``, accept–reject on ``|f|``) want. Base points map to the mixture by their
    first coordinate: ``z₀`` in the ``c``-th interval of the cumulative weights picks channel
    ``c`` and is stretched back to ``[0, 1)`` (a measure-preserving map, so uniform and
    scrambled-Sobol base points alike give points of density ``q``).

    After a multi-channel run, channel ``c``'s points are ``T_c(u)`` with ``u`` from its flow
    and ``T_c`` its :class:`~flowint.channel_maps.ChannelMap`.

    Arguments:
        flows: the channels' frozen flows.
        weights: ``{channel: |I_c|}`` (normalised here; channels of weight 0 are left out;
            all zero: equal weights).
        maps: ``{channel: map}`` of a multi-channel run (``None``: no maps).
    """

    def __init__(self, flows: dict[str, Flow], weights: dict[str, float],
                 maps: dict[str, ChannelMap] | None = None):
        kept = [c for c in flows if abs(float(weights.get(c, 0.0))) > 0] or list(flows)
        self.flows = [flows[c] for c in kept]  # a channel of weight 0 (the residual): out
        self.maps = [None if maps is None else maps.get(c) for c in kept]
        first = self.flows[0]
        alpha = torch.tensor([abs(float(weights.get(c, 0.0))) for c in kept],
                             dtype=torch.float64)
        if not float(alpha.sum()) > 0:
            alpha = torch.ones_like(alpha)
        self.alpha = alpha / alpha.sum()
        self.dim, self.dtype, self.device = first.dim, first.dtype, first.device

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x) = log Σ α_c q_c(x)`` (float64); with a channel map ``T_c``,
        ``q_c(x) = q_flow(T_c⁻¹(x)) ρ_c(x)``."""
        parts = []
        with torch.no_grad():
            for f, m, a in zip(self.flows, self.maps, self.alpha.tolist(), strict=True):
                if m is None:
                    parts.append(f.log_prob(x).to(torch.float64) + math.log(a))
                    continue
                x64 = x.to(torch.float64)
                u = m.inverse(x64).to(x.dtype)
                parts.append(f.log_prob(u).to(torch.float64) + m.log_density(x64) + math.log(a))
        return torch.logsumexp(torch.stack(parts), 0)

    def transform_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Base points to mixture points and their ``log q`` (see the class doc)."""
        cum = torch.cumsum(self.alpha, 0).to(z.device)
        z0 = z[:, 0].to(torch.float64).contiguous()
        idx = torch.searchsorted(cum, z0, right=True).clamp(max=len(self.flows) - 1)
        lo = cum[idx] - self.alpha.to(z.device)[idx]
        stretched = ((z0 - lo) / self.alpha.to(z.device)[idx]).clamp(0.0, _BELOW_ONE)
        z = torch.cat([stretched.to(z.dtype).unsqueeze(-1), z[:, 1:]], 1)
        u = torch.empty_like(z)
        with torch.no_grad():
            for c, (flow, m) in enumerate(zip(self.flows, self.maps, strict=True)):
                mask = idx == c
                if bool(mask.any()):
                    uc = flow.transform_base(z[mask])[0]
                    if m is not None:
                        uc = m.forward(uc.to(torch.float64))[0]
                    u[mask] = uc.to(z.dtype)
        return u, self.log_prob(u)

    def sample(self, n: int, *, seed: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` i.i.d. points of the mixture and their ``log q``."""
        z = torch.rand(n, self.dim, generator=seed, dtype=self.dtype, device=self.device)
        return self.transform_base(z)


def quietly(channel: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with its warnings raised again, prefixed ``channel c:``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    for w in caught:
        warnings.warn(f"channel {channel}: {w.message}", w.category, stacklevel=3)
    return out

