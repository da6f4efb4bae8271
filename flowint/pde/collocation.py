"""Adaptive collocation: draw PDE collocation points from a flow trained toward ``|r|^k``.

A physics-informed network is trained on the squared residual ``r(x)`` of its PDE at
collocation points. Where the points sit matters: a narrow peak of the solution that no point
sees is never learned. :class:`AdaptiveCollocation` trains a normalizing flow on the box toward
``p ∝ |r|^k`` with the integrator's divergences (:func:`flowint.losses.surrogate_loss`) and the
integrator's own training step (:class:`flowint.run.trainer.Trainer`), mixes in a uniform share
``c`` as a defensive component,

    q_mix(x) = (1 - c) q_flow(x) + c / volume,

and draws points from ``q_mix`` together with importance weights ``1 / (n q_mix(x))``, so that
``Σ w · g(x)`` is an unbiased estimate of ``∫_box g``. ``k = 2, c = 0`` is deep adaptive sampling
(DAS); general ``(k, c)`` is the residual-based adaptive distribution (RAD) of Wu et al. with a
continuous density instead of a finite candidate pool (their ``c_W`` in ``p ∝ |r|^k/E|r|^k + c_W``
is the uniform share ``c = c_W / (1 + c_W)`` here).

Modes: ``"replace"`` returns only the new points of each :meth:`~AdaptiveCollocation.sample`;
``"add"`` keeps every earlier point and appends the new ones, weighting the union by the balance
heuristic ``w_i = 1 / Σ_j n_j q_j(x_i)`` over all stages ``j`` (unbiased, and never worse than
weighting each stage on its own).

References:
    DAS-PINNs: A deep adaptive sampling method for solving high-dimensional partial differential
    equations (Tang, Wan, Yang, 2021), https://arxiv.org/abs/2112.14038.

    A comprehensive study of non-adaptive and residual-based adaptive sampling for
    physics-informed neural networks (Wu, Zhu, Tan, Kartha, Lu, 2022),
    https://arxiv.org/abs/2207.10289.

    Optimally combining sampling techniques for Monte Carlo rendering (Veach, Guibas, 1995) —
    the balance heuristic.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._rng import SeedLike, make_generator
from ..flows import Flow, PerAxisGrid, make_flow
from ..integrand import parse_bounds
from ..losses import LOSSES
from ..result import IterationRecord
from ..run.adam import Adam
from ..run.state import RunState
from ..run.trainer import Trainer

__all__ = ["AdaptiveCollocation"]

Residual = Callable[[Tensor], Tensor]


class AdaptiveCollocation:
    """Collocation points from a flow trained toward ``|r|^k``, mixed with a uniform share ``c``.

    Arguments:
        dim: number of dimensions.
        bounds: the box: ``None`` (unit cube), ``(lo, hi)`` for every axis, or one pair per axis.
        k: exponent of the target ``p ∝ |r|^k`` (2: deep adaptive sampling; 0: uniform).
        c: uniform share of the defensive mixture, in ``[0, 1]``; guarantees
            ``q >= c / volume`` everywhere.
        mode: ``"replace"`` (each sample replaces the points) or ``"add"`` (accumulate).
        loss: divergence of :mod:`flowint.losses` used to train the flow (``"kl"`` is the
            maximum-likelihood choice of DAS; ``"variance"`` weighs peaks harder).
        flow: a spline kind of :func:`flowint.make_flow` or a ``Flow`` on the unit cube.
        flow_options: extra keyword arguments of :func:`flowint.make_flow` (default here:
            ``grid=True``, the per-axis grid that ``warmup`` adapts).
        lr: Adam learning rate (constant; halved after a rolled-back iteration).
        batch_size: residual evaluations per training iteration (default 4096, capped by
            ``n_evals``).
        steps_per_batch: gradient steps that re-use each evaluated batch.
        warmup: VEGAS refinements of the flow's per-axis grid on the first batches.
        memory: share ``m`` of the previous sample's flow part kept in the next one
            (``"replace"`` mode): :meth:`sample` draws its flow share from
            ``(1 - m) q_flow + m q_prev``, with ``q_prev`` the flow mixture of the previous
            :meth:`sample` (so stage ``j`` keeps a weight of about ``m^(t - j)``). ``0``: the
            current flow only. Keeps points where the residual *was* large, which a PINN may
            forget once the flow follows the residual elsewhere (on the 2-D peak of
            ``benchmarks/pinn.py`` it did not pay; see ``docs/pde.md``).
        dtype: training dtype of the flow (points and weights are always float64).
        seed: the only source of randomness.

    Example:
        >>> col = AdaptiveCollocation(2, (-1.0, 1.0), k=2, c=0.1, seed=0)
        >>> col.fit(lambda x: torch.exp(-50 * (x**2).sum(-1)), 20_000)
        >>> x, w = col.sample(1_000)   # Σ w g(x) estimates ∫ g over [-1, 1]^2
    """

    def __init__(self, dim: int, bounds: Any = None, *, k: float = 2.0, c: float = 0.0,
                 mode: str = "replace", loss: str = "kl", flow: str | Flow = "rqs",
                 flow_options: dict[str, Any] | None = None, lr: float = 3e-3,
                 batch_size: int | None = None, steps_per_batch: int = 4, warmup: int = 2,
                 memory: float = 0.0, dtype: torch.dtype = torch.float32,
                 seed: SeedLike = None):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
        if not 0.0 <= float(c) <= 1.0:
            raise ValueError(f"c must be in [0, 1], got {c}")
        if float(k) < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if mode not in ("replace", "add"):
            raise ValueError(f"mode must be 'replace' or 'add', got {mode!r}")
        if not 0.0 <= float(memory) < 1.0:
            raise ValueError(f"memory must be in [0, 1), got {memory}")
        if memory and mode != "replace":
            raise ValueError("memory applies to mode='replace' ('add' keeps every point)")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)}")
        self.dim, self.k, self.c, self.mode, self.loss = dim, float(k), float(c), mode, loss
        box = parse_bounds(bounds, dim)
        lo, hi = (torch.zeros(dim), torch.ones(dim)) if box is None else map(torch.as_tensor, box)
        self.lo = lo.to(torch.float64)
        self.hi = hi.to(torch.float64)
        self.volume = float(torch.prod(self.hi - self.lo))
        self.batch_size, self.steps_per_batch = batch_size, int(steps_per_batch)
        self.warmup, self.dtype = int(warmup), dtype
        self.memory = float(memory)
        self.generator = make_generator(seed)
        if isinstance(flow, Flow):
            if flow.dim != dim or flow.base.support != "cube":
                raise ValueError("flow must be a flow on the unit cube of the same dimension")
            self.flow = flow.to(dtype=dtype)
        else:
            init = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
            options = {"grid": True, **(flow_options or {})}
            self.flow = make_flow(dim, flow, seed=init, dtype=dtype, **options)
        # the Trainer takes the gradient steps: on the current batch only (buffer 1), all of
        # it per step (minibatch None), untempered, at a constant learning rate
        self.state = RunState()
        self.trainer = Trainer(self.flow, self.generator, loss=loss, lr=float(lr),
                               steps_per_batch=self.steps_per_batch, minibatch=None, clip=10.0,
                               buffer=1, temper=None, lr_final=1.0)
        self._frozen: Flow | None = None
        self._past: list[tuple[Flow, float]] = []  # flow components of the last sample
        self.reset()

    # ------------------------------------------------------------------ views of the state
    @property
    def history(self) -> list[IterationRecord]:
        """Every training iteration so far, in order."""
        return self.state.history

    @property
    def n_evals(self) -> int:
        """Residual evaluations so far."""
        return self.state.n_evals

    @property
    def optimizer(self) -> Adam:
        """The Trainer's Adam optimizer."""
        return self.trainer.optimizer

    # ------------------------------------------------------------------ densities
    def frozen_flow(self) -> Flow:
        """A float64 copy of the current flow, without gradients (cached until the next fit)."""
        if self._frozen is None:
            self._frozen = copy.deepcopy(self.flow).to(torch.float64)
            self._frozen.requires_grad_(False)
        return self._frozen

    def _log_q_unit(self, flow: Flow, c: float, u: Tensor) -> Tensor:
        """``log q_mix`` on the unit cube for a given flow and uniform share."""
        with torch.no_grad():
            log_f = flow.log_prob(u.to(flow.dtype)).to(torch.float64)
        return _mix(log_f, c)

    def to_unit(self, x: Tensor) -> Tensor:
        """Map box points to the unit cube."""
        return (torch.as_tensor(x, dtype=torch.float64) - self.lo) / (self.hi - self.lo)

    def to_box(self, u: Tensor) -> Tensor:
        """Map unit-cube points to the box."""
        return self.lo + (self.hi - self.lo) * u.to(torch.float64)

    def components(self) -> list[tuple[Flow, float]]:
        """The flows of the current sampler and their weights (summing to 1).

        Without memory: the current flow alone. With ``memory = m > 0``, once :meth:`fit` has
        changed the flow since the last :meth:`sample`: the current flow with ``1 - m`` and the
        last sample's components scaled by ``m`` (until then, the last sample's components).
        """
        flow = self.frozen_flow()
        if not self.memory or not self._past:
            return [(flow, 1.0)]
        if flow is self._past[0][0]:
            return list(self._past)
        comps = [(flow, 1.0 - self.memory)] + [
            (f, self.memory * a) for f, a in self._past if self.memory * a >= 1e-3]
        total = sum(a for _, a in comps)  # components below 1e-3 dropped
        return [(f, a / total) for f, a in comps]

    def _log_q_components(self, comps: list[tuple[Flow, float]], u: Tensor) -> Tensor:
        """``log q_mix`` on the unit cube for a weighted mixture of flows."""
        with torch.no_grad():
            logs = torch.stack([f.log_prob(u.to(f.dtype)).to(torch.float64) + math.log(a)
                                for f, a in comps])
        return _mix(torch.logsumexp(logs, dim=0), self.c)

    def log_density(self, x: Tensor) -> Tensor:
        """``log q_mix(x)`` of the current sampler at box points (the box volume included)."""
        comps = self.components()
        u = self.to_unit(x)
        if len(comps) == 1:
            return self._log_q_unit(comps[0][0], self.c, u) - math.log(self.volume)
        return self._log_q_components(comps, u) - math.log(self.volume)

    def density(self, x: Tensor) -> Tensor:
        """``q_mix(x)`` of the current sampler at box points; ``>= c / volume`` everywhere."""
        return torch.exp(self.log_density(x))

    def _draw_unit(self, flow: Flow, n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points of ``q_mix`` on the unit cube and their ``log q_mix``."""
        n_unif = int((torch.rand(n, generator=gen, dtype=torch.float64) < self.c).sum())
        with torch.no_grad():
            u_flow, log_f = flow.sample(n - n_unif, seed=gen)
            u_unif = torch.rand(n_unif, self.dim, generator=gen, dtype=torch.float64)
            log_f_unif = flow.log_prob(u_unif.to(flow.dtype))
        u = torch.cat([u_flow.to(torch.float64), u_unif])
        log_f = torch.cat([log_f.to(torch.float64), log_f_unif.to(torch.float64)])
        return u, _mix(log_f, self.c)

    # ------------------------------------------------------------------ training
    def fit(self, residual: Residual, n_evals: int, *,
            batch_size: int | None = None) -> list[IterationRecord]:
        """Train the flow toward ``|r|^k`` with about ``n_evals`` residual evaluations.

        Each iteration draws a batch from the current mixture ``q_mix`` (so the uniform share
        keeps exploring), evaluates the residual once, adapts the per-axis grid on the first
        ``warmup`` batches, and hands the batch to the :class:`~flowint.run.trainer.Trainer`,
        which takes ``steps_per_batch`` gradient steps on the surrogate divergence between
        ``|r|^k / ∫|r|^k`` and ``q_flow`` with the importance weights of ``q_mix`` (each step
        on a resample of the current batch, of its size). A step that leaves non-finite
        values is rolled back with the iteration, and the learning rate is halved from then
        on (with a :class:`RuntimeWarning`). Calling ``fit`` again continues from the current
        flow and optimizer (the warm start used between PINN stages).

        Arguments:
            residual: batched residual on the box: ``(n, dim)`` float64 tensor to ``(n,)``. It
                may use autograd internally (it is called with gradients enabled); its output
                is detached.
            n_evals: residual evaluations to spend.
            batch_size: overrides the constructor's batch size for this call.

        Returns:
            One record per iteration: ``mean`` estimates ``∫_box |r|^k``, ``rel_std`` is the
            relative standard deviation per sample of that estimate under ``q_mix``.
        """
        n_evals = int(n_evals)
        if n_evals < 1:
            raise ValueError(f"n_evals must be >= 1, got {n_evals}")
        batch = int(batch_size or self.batch_size or 4096)
        batch = max(2, min(batch, n_evals))
        records: list[IterationRecord] = []
        spent = 0
        while spent < n_evals:
            n = min(batch, n_evals - spent)
            if n < 2:
                break
            records.append(self._iteration(residual, n))
            spent += n
        self._frozen = None
        return records

    def _iteration(self, residual: Residual, n: int) -> IterationRecord:
        """Draw ``n`` points of ``q_mix``, evaluate ``|r|^k`` once, adapt the per-axis grid
        (the first ``warmup`` iterations) and hand the batch to the Trainer."""
        t0 = time.perf_counter()
        with torch.no_grad():
            u, log_q0 = self._draw_unit(self.flow, n, self.generator)
        target = self._target(residual, self.to_box(u))
        self.state.n_evals += n
        w = target * torch.exp(-(log_q0 - math.log(self.volume)))
        mean, std = float(w.mean()), float(w.std())
        if float(target.sum()) > 0 and self.state.warmed < self.warmup:
            grid = self.flow.transforms[-1]
            if isinstance(grid, PerAxisGrid):
                grid.adapt(u, (target * torch.exp(-log_q0)) ** 2)
            self.state.warmed += 1
        lr = self.trainer.learning_rate(self.state, 0.0)  # constant (halved after a rollback)
        value = self.trainer.step(self.state, u, torch.log(target.to(torch.float64)), log_q0, lr)
        rec = IterationRecord("train", n, mean, std / math.sqrt(n),
                              std / abs(mean) if mean else math.inf, value, lr,
                              time.perf_counter() - t0)
        self.state.history.append(rec)
        return rec

    def _target(self, residual: Residual, x: Tensor) -> Tensor:
        with torch.enable_grad():
            r = residual(x)
        r = torch.as_tensor(r).detach().to(torch.float64).reshape(-1)
        if r.shape[0] != x.shape[0]:
            raise ValueError(f"residual returned {r.shape[0]} values for {x.shape[0]} points")
        if not torch.isfinite(r).all():
            raise ValueError("the residual returned non-finite values")
        return r.abs() ** self.k if self.k != 0 else torch.ones_like(r)

    # ------------------------------------------------------------------ sampling
    def reset(self) -> None:
        """Forget the accumulated points (``"add"`` mode) and their proposals."""
        self._points = torch.empty(0, self.dim, dtype=torch.float64)
        self._past = []
        self._stages: list[tuple[Flow, float, int]] = []
        self._log_q: list[Tensor] = []  # per stage: log q_j (box) at every stored point

    def draw(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """``n`` fresh points of the current sampler and their ``log q_mix`` (box), no state.

        Arguments:
            n: number of points.
            seed: randomness (default: the sampler's own generator).
        """
        gen = self.generator if seed is None else make_generator(seed)
        comps = self.components()
        if len(comps) == 1:
            u, log_q = self._draw_unit(comps[0][0], int(n), gen)
        else:
            u, log_q = self._draw_mixture(comps, int(n), gen)
        return self.to_box(u), log_q - math.log(self.volume)

    def _draw_mixture(self, comps: list[tuple[Flow, float]], n: int,
                      gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points of ``c · uniform + (1 - c) Σ_j a_j q_j`` and their ``log q_mix``."""
        n_unif = int((torch.rand(n, generator=gen, dtype=torch.float64) < self.c).sum())
        weights = torch.tensor([a for _, a in comps], dtype=torch.float64)
        which = torch.multinomial(weights, n - n_unif, replacement=True, generator=gen) \
            if n > n_unif else torch.empty(0, dtype=torch.long)
        parts = [torch.rand(n_unif, self.dim, generator=gen, dtype=torch.float64)]
        with torch.no_grad():
            for j, (f, _) in enumerate(comps):
                m = int((which == j).sum())
                if m:
                    parts.append(f.sample(m, seed=gen)[0].to(torch.float64))
        u = torch.cat(parts)
        return u, self._log_q_components(comps, u)

    def sample(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """Collocation points and weights with ``E[Σ w g(x)] = ∫_box g``.

        Arguments:
            n: new points to draw from the current sampler.
            seed: randomness (default: the sampler's own generator).

        Returns:
            ``(x, w)``, float64, shapes ``(N, dim)`` and ``(N,)``: in ``"replace"`` mode the
            ``N = n`` new points with ``w = 1 / (n q_mix(x))``; in ``"add"`` mode every point
            drawn since :meth:`reset`, weighted by the balance heuristic
            ``w = 1 / Σ_j n_j q_j(x)`` over the stages ``j``.
        """
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        comps = self.components()
        x_new, log_q_new = self.draw(n, seed=seed)
        if self.memory:  # the next stage keeps a share of this one
            self._past = comps
        if self.mode == "replace":
            self._points = x_new
            self._stages = [(self.frozen_flow(), self.c, n)]
            self._log_q = [log_q_new]
            return x_new, torch.exp(-log_q_new) / n
        flow = self.frozen_flow()
        # Old stages' densities at the new points, the new stage's density at the old points.
        logv = -math.log(self.volume)
        u_new = self.to_unit(x_new)
        self._log_q = [torch.cat([lq, self._log_q_unit(f, c, u_new) + logv])
                       for lq, (f, c, _) in zip(self._log_q, self._stages, strict=True)]
        old = self._log_q_unit(flow, self.c, self.to_unit(self._points)) + logv
        self._log_q.append(torch.cat([old, log_q_new]))
        self._stages.append((flow, self.c, n))
        self._points = torch.cat([self._points, x_new])
        return self._points, self.weights()

    @property
    def points(self) -> Tensor:
        """The current collocation points (box coordinates, float64)."""
        return self._points

    def weights(self) -> Tensor:
        """Weights of :attr:`points` (balance heuristic over the stages)."""
        if not self._stages:
            return torch.empty(0, dtype=torch.float64)
        counts = torch.tensor([n for _, _, n in self._stages], dtype=torch.float64)
        stacked = torch.stack(self._log_q) + torch.log(counts).unsqueeze(-1)
        return torch.exp(-torch.logsumexp(stacked, dim=0))

    def __repr__(self) -> str:
        return (f"AdaptiveCollocation(dim={self.dim}, k={self.k:g}, c={self.c:g}, "
                f"mode={self.mode!r}, memory={self.memory:g}, loss={self.loss!r}, "
                f"n_evals={self.n_evals}, "
                f"points={self._points.shape[0]})")


def _mix(log_flow: Tensor, c: float) -> Tensor:
    """``log((1 - c) q_flow + c)`` from ``log q_flow`` (unit-cube densities)."""
    if c <= 0.0:
        return log_flow
    if c >= 1.0:
        return torch.zeros_like(log_flow)
    return torch.logaddexp(log_flow + math.log1p(-c), torch.full_like(log_flow, math.log(c)))
