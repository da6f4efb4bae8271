"""Multi-channel runs: one flow per peak of ``f``, each behind a channel map.

With ``channels="modes"`` a call first searches the peaks of ``|f|`` (:mod:`flowint.run.modes`)
and then integrates ``f`` as a sum over channels: a *rest* channel (the identity map) and one
channel per mode ``m`` with a :class:`~flowint.channel_maps.LogisticMap` centred on it, its
scale on each axis the mode's width there. With ``channels=[maps...]`` the channels are the
given maps. The channel weights (:mod:`flowint.channel_maps`)

    ``w_c(x) = α_c ρ_c(x) / Σ_j α_j ρ_j(x)``,  ``Σ_c w_c = 1``,

split ``f``, and channel ``c`` integrates ``g_c(u) = f(x) w_c(x) / ρ_c(x)`` at ``x = T_c(u)``
with a flow and a call of its own (an :class:`~flowint.Integrator` on the unit cube, as the
channels of a sign split, :mod:`flowint.run.channels`): pilot training, calls allocated
``∝ σ_c`` by the Policy, then each channel's own call. The channels draw independent points,
so ``I = Σ_c I_c`` and ``var = Σ_c var_c``; with ``log=True`` the sum is taken in log space.
A peak the search missed lies in some channel's part (the rest channel's, far from every
mode), so the estimate stays unbiased; its variance shows the miss, and the rest channel's
pilot draws there: after the pilots, ascents from the pilot's points that the modes found
explain worst may add channels (:meth:`ModeRun.grow`).

``α``: the rest channel :data:`REST_SHARE`, each mode its share of the rest ``∝`` its Laplace
mass; given maps, equal. With ``learn_alpha`` (the default) the pilots' points then give the
``α`` that minimises the variance of the sum (:mod:`flowint.run.alpha`,
:meth:`ModeRun.tune`), fixed before the channels' own calls draw anything. Everything the run
decides is kept in the call record (plain data).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import Tensor

from ..channel_maps import ChannelMap, IdentityMap, LogisticMap, map_from_plain
from ..result import Result
from .alpha import learn_alpha
from .channel_result import combine_channels
from .channels import ChannelRun, build_channels
from .modes import MAX_MODES, Mode, grow_modes

__all__ = ["GROW_SHARE", "ModePart", "ModeRun", "REST_SHARE", "channel_log_weights"]

#: The rest channel's ``α`` in a mode search's channels.
REST_SHARE = 0.01
#: A mode's channel map: a logistic bump of scale ``WIDEN`` times the mode's width per axis
#: (standard deviation ``1.81 WIDEN`` widths): wide enough for tails heavier than the
#: curvature at the peak shows (the egg box's), which a narrow bump leaves to the rest channel.
WIDEN = 2.0
#: The rest channel's least share of the calls after the pilots: its pilot's ``σ`` is the
#: least reliable (what it holds, peaks the search missed and the far tails of those it found,
#: its pilot may not have seen), and a starved rest channel is confidently wrong. Given maps:
#: every :class:`~flowint.channel_maps.IdentityMap` among them has it too.
REST_FLOOR = 0.2
#: Most calls the growth after the pilots takes (:meth:`ModeRun.grow`), a share of the calls
#: the split started with.
GROW_SHARE = 0.02


def _pooled(buf: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """A training buffer's batches ``(u, log target, log q)`` joined, as float64."""
    return tuple(torch.cat([b[k] for b in buf]).to(torch.float64) for k in range(3))


def channel_log_weights(maps: list[ChannelMap], log_alpha: Tensor, x: Tensor) -> Tensor:
    """``log w_c(x)`` for every channel, shape ``(channels, n)``."""
    log_rho = torch.stack([m.log_density(x) for m in maps]) + log_alpha[:, None]
    return log_rho - torch.logsumexp(log_rho, 0, keepdim=True)


class ModePart:
    """Channel ``index``'s integrand ``g_c(u) = f(x) w_c(x) / ρ_c(x)``, ``x = T_c(u)``;
    ``log g_c`` for an integrand given as a logarithm. ``f`` is evaluated through the
    parent's driver (its calls and seconds counted there).

    Arguments:
        driver: the parent call's driver.
        maps: every channel's map.
        log_alpha: ``log α_c`` of every channel.
        index: this channel.
    """

    def __init__(self, driver: Any, maps: list[ChannelMap], log_alpha: Tensor, index: int):
        self.driver, self.maps, self.log_alpha, self.index = driver, maps, log_alpha, index

    def __call__(self, u: Tensor) -> Tensor:
        x, log_det = self.maps[self.index].forward(u.to(torch.float64))
        fx = self.driver.evaluate(x)
        if fx.ndim != 1:
            raise ValueError("channels= needs a scalar integrand")
        log_w = channel_log_weights(self.maps, self.log_alpha, x)[self.index] + log_det
        if self.driver.f.log:
            return self.driver.last_log_f + log_w
        return fx.to(torch.float64) * torch.exp(log_w)


class ModeRun(ChannelRun):
    """A multi-channel call (see the module doc)."""

    def run(self, budget: int, rtol: float | None, atol: float | None, n_train: int | None,
            time_limit: float | None) -> Result:
        rec = self.call["split"]
        if "maps" not in rec:
            self._channels(rec)
        self._setup(rec)
        return super().run(budget, rtol, atol, n_train, time_limit)

    def _setup(self, rec: dict[str, Any]) -> None:
        """The channels' maps, names, floors and integrands from the call record."""
        self.maps = [map_from_plain(m) if isinstance(m, dict) else m for m in
                     self._given() or rec["maps"]]
        self.names = tuple(rec["names"])
        # an identity map among given maps plays the rest channel's part: its floor too
        self.floors = {c: REST_FLOOR for c, m in zip(self.names, self.maps, strict=True)
                       if isinstance(m, IdentityMap)} if len(self.names) > 1 else None
        self.log_alpha = torch.tensor(rec["log_alpha"], dtype=torch.float64)
        self.parts = {c: ModePart(self.driver, self.maps, self.log_alpha, i)
                      for i, c in enumerate(self.names)}

    def grow(self, rec: dict[str, Any]) -> bool:
        """Channels for the peaks that the rest channel's pilot shows and the search missed
        (:func:`~flowint.run.modes.grow_modes`, at most :data:`GROW_SHARE` of the split's
        calls), each with a pilot of its own (by the caller). Every ``α`` is set again from
        the masses, so the partition changes for every channel (most for the rest channel:
        the peak it held is no longer its own); the piloted channels' points, ``σ`` and
        means move to the new partition (:meth:`_reweight`). Once per call, and only for a
        search's channels."""
        if rec.get("grown") is not None or self._given() is not None or \
                "rest" not in self.names:
            return False
        rec["grown"] = []
        buf = self.integ.channels["rest"].state.buffer
        modes = [Mode.from_plain(m) for m in self.call.get("modes", [])]
        if not buf or len(modes) >= MAX_MODES:
            return False
        u, log_t, _ = _pooled(buf)
        log_w = channel_log_weights(self.maps, self.log_alpha, u)[0]
        new = grow_modes(self.driver.log_abs, u, log_t - log_w, modes,
                         int(GROW_SHARE * float(rec["rest"])))[: MAX_MODES - len(modes)]
        if not new:
            return False
        self.call["modes"] = [m.to_plain() for m in modes + new]
        ref = rec["ref"]  # the pilots' σ and means are in its units
        old = (self.maps, self.log_alpha)
        self._channels(rec)
        rec["ref"] = ref
        self._setup(rec)
        added = [c for c in self.names if c not in self.integ.channels]
        seeds = torch.randint(0, 2**62, (len(added),), generator=self.integ.generator)
        self.integ.channels.update(build_channels(self.integ, dict(zip(added, seeds.tolist(),
                                                                       strict=True))))
        for c in added:
            rec["seconds0"][c] = dict(self.integ.channels[c].state.seconds)
            rec["evals0"][c] = self.integ.channels[c].state.n_evals
        self._reweight(old, [c for c in self.names if c not in added])
        rec["grown"] = added
        return True

    def tune(self, rec: dict[str, Any]) -> None:
        """``α`` learned from the pilots' last points (:func:`~flowint.run.alpha.learn_alpha`)
        with ``learn_alpha``, and taken where the Policy finds the held-out gain large
        enough (:meth:`~flowint.run.allocation.ChannelDecisions.alpha_accepted`); the
        pilots' buffers, ``σ`` and means then move to the new partition
        (:meth:`_reweight`). Once per call; what was measured is kept in ``rec["tuned"]``."""
        if "tuned" in rec:
            return
        rec["tuned"] = None
        bufs = [self.integ.channels[c].state.buffer for c in self.names]
        if not self.integ.settings.learn_alpha or len(self.names) < 2 or not all(bufs):
            return
        log_rho, log_r = [], []
        for i, buf in enumerate(bufs):
            u, log_t, log_q = _pooled(buf)
            x = self.maps[i].forward(u)[0]
            log_rho.append(torch.stack([m.log_density(x) for m in self.maps]))
            log_r.append(log_t - log_q)
        fit = learn_alpha(log_rho, log_r, self.log_alpha, self.integ.generator)
        accepted = self.integ.policy.alpha_accepted(fit.check)
        rec["tuned"] = {"before": fit.check[0], "after": fit.check[1], "accepted": accepted,
                        "fit": list(fit.fit)}
        if accepted:
            old = (self.maps, self.log_alpha)
            rec["log_alpha"] = fit.log_alpha.tolist()
            self._setup(rec)
            self._reweight(old, list(self.names))

    def _reweight(self, old: tuple[list[ChannelMap], Tensor], names: list[str]) -> None:
        """Channels ``names``' pilot points moved from the partition of ``old`` (maps and
        ``log α``, the channels in the same order) to the current one: their buffers'
        targets (the flows train on under the new ``α``), and their ``σ`` and means scaled
        by what the reweighted points show (the pilots' estimates are in the old units)."""
        rec = self.call["split"]
        for c in names:
            i = self.names.index(c)
            buf = self.integ.channels[c].state.buffer
            if not buf:
                continue
            u, log_t, log_q = _pooled(buf)
            x = self.maps[i].forward(u)[0]
            shift = channel_log_weights(self.maps, self.log_alpha, x)[i] - \
                channel_log_weights(old[0], old[1], x)[i]
            before = log_t - log_q
            after = before + shift
            top = float(torch.cat([before, after]).nan_to_num(-math.inf).max())
            if math.isfinite(top):
                w0 = torch.exp(before - top).nan_to_num(0.0)
                w1 = torch.exp(after - top).nan_to_num(0.0)
                if float(w0.std()) > 0 and float(w0.mean()) > 0 and c in rec["sigma"]:
                    rec["sigma"][c] *= float(w1.std() / w0.std())
                    rec["mean"][c] *= float(w1.mean() / w0.mean())
            start = 0
            for j, (bu, bt, bq) in enumerate(buf):
                n = bu.shape[0]
                buf[j] = (bu, bt + shift[start:start + n].to(bt.dtype), bq)
                start += n

    def _given(self) -> list[ChannelMap] | None:
        spec = self.integ.settings.channels
        return None if isinstance(spec, str) else list(spec)

    def _channels(self, rec: dict[str, Any]) -> None:
        """The channels: the given maps, or those of the modes the call's search found
        (:meth:`~flowint.run.driver.CallDriver.search`)."""
        dim = self.integ.dim
        given = self._given()
        if given is not None:
            rec.update(names=[f"c{i}" for i in range(len(given))], maps=[None] * len(given),
                       log_alpha=[-math.log(len(given))] * len(given), ref=0.0)
            return
        modes = [Mode.from_plain(m) for m in self.call.get("modes", [])]  # the call's search
        maps: list[ChannelMap] = [IdentityMap(dim)]
        maps += [LogisticMap(torch.tensor(m.center).clamp(0, 1),
                             [WIDEN * w for w in m.width]) for m in modes]
        masses = torch.tensor([m.log_mass for m in modes], dtype=torch.float64)
        log_alpha = [math.log(REST_SHARE)]
        if modes:
            log_alpha += (math.log1p(-REST_SHARE) + masses - masses.logsumexp(0)).tolist()
        else:
            log_alpha = [0.0]
        rec.update(names=["rest"] + [f"m{i}" for i in range(len(modes))],
                   maps=[m.to_plain() for m in maps], log_alpha=log_alpha,
                   ref=max((m.log_mass for m in modes), default=0.0))

    def sigma_mean(self, c: str, train: list[Any]) -> tuple[float, float]:
        """``(σ, |I|)`` in units of ``exp(ref)`` for an integrand given as a logarithm (the
        channels' runs each have a scale of their own)."""
        sigma, mean = super().sigma_mean(c, train)
        if not self.driver.f.log:
            return sigma, mean
        shift = (self.integ.channels[c].state.log_scale or 0.0) - float(self.call["split"]["ref"])
        factor = math.exp(min(shift, 700.0))
        return sigma * factor, mean * factor

    def goal_kwargs(self, c: str, goal: float | None) -> dict[str, Any]:
        """A channel's target as a relative one (the channels' units differ with ``log``)."""
        mean = float(self.call["split"]["mean"].get(c, math.nan))
        if goal is None or not (math.isfinite(mean) and mean > 0):
            return {}
        return {"rtol": max(goal / mean, 1e-15)}

    def combine(self, results: dict[str, Result]) -> Result:
        out = combine_channels(self.driver, self.call, results, signs={c: 1 for c in results})
        alpha = dict(zip(self.names, self.log_alpha.exp().tolist(), strict=True))
        return dataclasses.replace(out, channel_alpha=alpha)

    @staticmethod
    def mixture_weights(results: dict[str, Result]) -> dict[str, float]:
        """Each channel's share of ``Σ |I_c|`` (from ``log_mean`` where given)."""
        logs = {c: (r.log_mean if math.isfinite(r.log_mean) else
                    (math.log(abs(r.mean)) if r.mean else -math.inf))
                for c, r in results.items()}
        top = max(logs.values())
        if not math.isfinite(top):
            return {c: 1.0 for c in results}
        return {c: math.exp(v - top) for c, v in logs.items()}

