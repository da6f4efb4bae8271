"""The Trainer: a flow, its optimizer, a loss, and one training iteration.

One iteration takes a batch of points drawn from the flow and evaluated already, adds it to a
buffer of recent batches, and takes ``steps_per_batch`` gradient steps on minibatches of the
buffer; each point keeps the density ``q0`` it was drawn from, so the surrogate loss of
:mod:`flowint.losses` stays an unbiased gradient of the divergence whatever flow drew it. The
buffer holds the target's logarithm, so that a target known only as ``log |f|`` (values like
``e^-13000``, an integrand given as a logarithm) trains without underflow: the linear target
of a step is ``exp(β (log t - max log t))`` over the buffer, the loss being blind to scale.
While the batch's weights are degenerate, the target is tempered to ``|f|^β`` (adaptive
tempering as in sequential Monte Carlo). Everything that changes and must survive a restart
lives in the :class:`~flowint.run.state.RunState`; the Trainer owns only the flow and the
optimizer. The PDE module trains its collocation density with the same class.
"""

from __future__ import annotations

import math
import time
import warnings

import torch
from torch import Tensor

from ..flows import Flow
from ..losses import surrogate_loss
from .adam import Adam
from .settings import LR_FINAL
from .state import RunState

__all__ = ["TEMPER_END", "Trainer", "tempered"]

#: Where in a training loop (0 to 1) the tempering exponent is set to 1 whatever the weights.
#: Targets far from the starting density (a narrow 16-D likelihood holding ``e^-68`` of the
#: prior) need tens of tempered iterations; forcing ``β = 1`` at half the loop made the flow
#: collapse onto one point there, while 0.9 leaves the last tenth on the target itself.
TEMPER_END = 0.9


class Trainer:
    """Train a flow toward a non-negative target by importance-weighted gradient steps.

    Arguments:
        flow: the flow (trained in place).
        generator: randomness of the minibatch choice.
        loss: a name from :data:`flowint.losses.LOSSES`.
        lr: base learning rate of Adam.
        steps_per_batch: gradient steps per iteration.
        minibatch: points per step, drawn at random from the buffer (``None`` or 0: the whole
            buffer, every step).
        clip: gradient-norm clipping (``None`` or 0: off).
        buffer: batches kept for re-use.
        temper: the tempering threshold (``None`` or 0: off).
        lr_final: learning rate at the end of the cosine schedule, as a fraction of ``lr``.
    """

    def __init__(self, flow: Flow, generator: torch.Generator, *, loss: str = "variance",
                 lr: float = 6e-3, steps_per_batch: int = 16, minibatch: int | None = 1024,
                 clip: float | None = 10.0, buffer: int = 4, temper: float | None = 0.3,
                 lr_final: float = LR_FINAL):
        self.flow = flow
        self.generator = generator
        self.loss = loss
        self.base_lr = float(lr)
        self.steps_per_batch = int(steps_per_batch)
        self.minibatch = minibatch
        self.clip = clip
        self.buffer = max(1, int(buffer))
        self.temper = float(temper) if temper else 0.0
        self.lr_final = float(lr_final)
        # torch.optim.Adam(foreach=True)'s update without torch.optim, whose first optimizer
        # imports torch._dynamo (2-4 s per process; flowint.run.adam)
        self.optimizer = Adam(flow.parameters(), lr=self.base_lr)

    def learning_rate(self, state: RunState, position: float) -> float:
        """The cosine-decayed learning rate at ``position`` (0 to 1) of a training loop."""
        lo = self.lr_final
        cosine = lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * min(max(position, 0.0), 1.0)))
        return self.base_lr * state.lr_scale * cosine

    def step(self, state: RunState, u: Tensor, log_target: Tensor, log_q0: Tensor,
             lr: float, position: float = 1.0) -> float:
        """One training iteration on an evaluated batch.

        Arguments:
            state: the run state (its buffer, ``beta`` and ``lr_scale`` are advanced).
            u: the batch's points on the cube, drawn from a density ``q0``.
            log_target: the logarithm of the non-negative training target at ``u``
                (``log |f|`` or of a norm; ``-inf`` where the target is 0), float64.
            log_q0: ``log q0(u)``.
            lr: the learning rate of this iteration's steps.
            position: how far the training loop is (0 to 1); tempering ends at
                :data:`TEMPER_END`.

        Returns:
            The last step's divergence estimate (NaN when no step was taken).
        """
        t0 = time.perf_counter()
        self.raise_beta(state, log_target, log_q0, position)
        state.buffer.append((u.to(self.flow.dtype), log_target, log_q0))
        del state.buffer[: max(0, len(state.buffer) - self.buffer)]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        pool_u = torch.cat([b[0] for b in state.buffer])
        pool_t = tempered(torch.cat([b[1] for b in state.buffer]), state.beta)
        pool_q0 = torch.cat([b[2] for b in state.buffer])
        value = math.nan
        if bool((pool_t > 0).any()):
            value = self._descend(state, pool_u, pool_t, pool_q0)
        state.add_seconds("train", time.perf_counter() - t0)
        return value

    def _descend(self, state: RunState, pool_u: Tensor, pool_t: Tensor,
                 pool_q0: Tensor) -> float:
        """The gradient steps of one iteration, rolled back if they leave non-finite values."""
        good = {k: v.clone() for k, v in self.flow.state_dict().items()}
        value = math.nan
        for _ in range(self.steps_per_batch):
            if self.minibatch:  # a random minibatch of the buffer
                idx = torch.randint(0, pool_u.shape[0], (int(self.minibatch),),
                                    generator=self.generator, device=pool_u.device)
                u, t, q0 = pool_u[idx], pool_t[idx], pool_q0[idx]
            else:  # the whole buffer
                u, t, q0 = pool_u, pool_t, pool_q0
            loss, val = surrogate_loss(self.loss, t, self.flow.log_prob(u), q0)
            if not torch.isfinite(loss):
                self._roll_back(state, good)
                return value
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip:
                torch.nn.utils.clip_grad_norm_(self.flow.parameters(), float(self.clip))
            self.optimizer.step()
            value = float(val)
        if not all(torch.isfinite(p).all() for p in self.flow.parameters()):
            self._roll_back(state, good)
        return value

    def _roll_back(self, state: RunState, good: dict[str, Tensor]) -> None:
        """Restore the last good parameters and halve the learning rate (NaN safety)."""
        self.flow.load_state_dict(good)
        self.optimizer.state.clear()
        state.lr_scale *= 0.5
        warnings.warn("non-finite loss during training: rolled back and halved the learning "
                      "rate", RuntimeWarning, stacklevel=4)

    def raise_beta(self, state: RunState, log_target: Tensor, log_q: Tensor,
                   position: float) -> None:
        """Raise the tempering exponent ``β`` of the training target ``|f|^β``.

        ``β`` becomes the largest value in ``[β, 1]`` at which the batch's tempered weights
        ``|f|^β / q`` keep a Kish effective sample size of at least ``temper`` times the
        number of points where ``f != 0``. It is 1 once :data:`TEMPER_END` of the training
        loop is spent, whatever the weights.
        """
        if state.beta >= 1.0:
            return
        if position >= TEMPER_END or not self.temper:
            state.beta = 1.0
            return
        nz = torch.isfinite(log_target)
        if int(nz.sum()) < 2:
            return
        log_t = log_target[nz].to(torch.float64)
        log_q = log_q[nz].to(torch.float64)
        need = self.temper * log_t.shape[0]

        def ess(beta: float) -> float:
            lw = beta * log_t - log_q
            w = torch.exp(lw - lw.max())
            return float(w.sum() ** 2 / (w * w).sum())

        if ess(1.0) >= need:
            state.beta = 1.0
            return
        lo, hi = state.beta, 1.0
        if ess(lo) < need:
            if lo <= 0.0:  # degenerate before any tempered step: q itself is narrow (a grid
                state.beta = 1.0  # warm-up, a warm start), and flattening |f| cannot help
            return
        for _ in range(30):  # bisection: the ESS falls as β rises (the weights spread out)
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if ess(mid) >= need else (lo, mid)
        state.beta = lo


def tempered(log_t: Tensor, beta: float) -> Tensor:
    """``t ** beta / max(t) ** beta`` from ``log t`` (the loss ignores scale).

    Computed in log space, so targets of any magnitude keep their ratios (values more than
    ~745 below the largest in ``β log t`` underflow to 0, which they are beside it). With
    ``β <= 0`` every point with ``t > 0`` gets 1; a pool without one gives zeros.
    """
    log_t = log_t.to(torch.float64)
    finite = torch.isfinite(log_t)
    if beta <= 0.0:
        return finite.to(torch.float64)
    if not bool(finite.any()):
        return torch.zeros_like(log_t)
    top = log_t[finite].max()
    return torch.exp(min(beta, 1.0) * (log_t - top))
