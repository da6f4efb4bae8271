"""Density estimation: fit a flow to data by maximum likelihood.

:func:`fit` minimises the (optionally weighted) negative log-likelihood ``-mean log q(x)`` with
Adam over shuffled mini-batches, watches the NLL of a held-out validation split after every
epoch, stops when it has not improved for ``patience`` epochs and restores the parameters of the
best epoch. It returns a :class:`FitResult` with the per-epoch history.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ._rng import SeedLike, make_generator
from .run.adam import Adam

__all__ = ["fit", "FitResult"]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did: per-epoch negative log-likelihoods and how training ended.

    Attributes:
        train_nll: mean training NLL (nats per point) of each epoch, averaged over its batches.
        val_nll: validation NLL after each epoch (empty without a validation split).
        best_epoch: index (from 0) of the epoch whose parameters were restored (-1: none
            improved on the start, whose parameters were restored).
        stop_reason: ``"epochs"`` (ran all epochs), ``"patience"`` (early stopping) or
            ``"non-finite"`` (a loss became NaN or infinite; the best parameters were restored).
        n_train: number of training points.
        n_val: number of validation points.
        wall_time: seconds spent.
    """

    train_nll: tuple[float, ...]
    val_nll: tuple[float, ...]
    best_epoch: int
    stop_reason: str
    n_train: int
    n_val: int
    wall_time: float

    @property
    def history(self) -> dict[str, list[float]]:
        """``{"train_nll": [...], "val_nll": [...]}``, one entry per epoch."""
        return {"train_nll": list(self.train_nll), "val_nll": list(self.val_nll)}

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.train_nll)

    @property
    def best_nll(self) -> float:
        """The monitored NLL (validation, else training) of the restored parameters."""
        monitored = self.val_nll if self.val_nll else self.train_nll
        return monitored[self.best_epoch] if self.best_epoch >= 0 else math.nan

    @property
    def stopped_early(self) -> bool:
        """Whether training ended before the last epoch."""
        return self.stop_reason != "epochs"

    def __str__(self) -> str:
        which = "val" if self.val_nll else "train"
        return (f"FitResult(best {which} NLL {self.best_nll:.4f} at epoch {self.best_epoch} of "
                f"{self.epochs}, stop: {self.stop_reason}, n_train={self.n_train}, "
                f"n_val={self.n_val}, {self.wall_time:.1f} s)")

    def summary(self) -> str:
        """A per-epoch table of the training and validation NLL."""
        rows = ["epoch   train NLL     val NLL"]
        for i, tr in enumerate(self.train_nll):
            val = f"{self.val_nll[i]:11.4f}" if self.val_nll else "          -"
            mark = "  *" if i == self.best_epoch else ""
            rows.append(f"{i:5d} {tr:11.4f} {val}{mark}")
        return "\n".join(rows)


def _as_tensor(value, name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    try:
        t = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array or tensor of numbers") from exc
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t.detach().to(dtype=dtype, device=device)


def _check_inputs(flow: nn.Module, data, weights, dtype: torch.dtype,
                  device: torch.device) -> tuple[Tensor, Tensor | None]:
    dim = int(flow.dim)
    x = _as_tensor(data, "data", dtype, device)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"data must have shape (n, {dim}), got {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"data needs at least 2 points, got {x.shape[0]}")
    if not torch.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values")
    base = getattr(flow, "base", None)
    if getattr(base, "support", None) == "cube" and ((x < 0) | (x > 1)).any():
        n_out = int(((x < 0) | (x > 1)).any(1).sum())
        raise ValueError(f"data has {n_out} points outside the unit cube [0,1]^{dim}, the "
                         "support of this flow (uniform base); rescale the data first")
    if weights is None:
        return x, None
    w = _as_tensor(weights, "weights", dtype, device)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {tuple(w.shape)}")
    if not torch.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise ValueError("weights must be finite and non-negative with a positive sum")
    return x, w


def _nll(flow: nn.Module, x: Tensor, w: Tensor | None) -> Tensor:
    log_q = flow.log_prob(x)
    if w is None:
        return -log_q.mean()
    return -(w * log_q).sum() / w.sum()


@torch.no_grad()
def _eval_nll(flow: nn.Module, x: Tensor, w: Tensor | None, chunk: int) -> float:
    total, mass = 0.0, 0.0
    for i in range(0, x.shape[0], chunk):
        xb = x[i:i + chunk]
        wb = None if w is None else w[i:i + chunk]
        m = float(xb.shape[0]) if wb is None else float(wb.sum())
        if m > 0:
            total += float(_nll(flow, xb, wb)) * m
            mass += m
    return total / mass if mass > 0 else math.nan


def _check_settings(epochs: int, batch_size: int, lr: float, val_fraction: float,
                    patience: int | None) -> None:
    """Raise ``ValueError`` for a training setting of :func:`fit` out of its range."""
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not float(lr) > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if patience is not None and int(patience) < 1:
        raise ValueError(f"patience must be >= 1 or None, got {patience}")


def _split(x: Tensor, w: Tensor | None, val_fraction: float, gen: torch.Generator,
           device: torch.device) -> tuple[tuple[Tensor, Tensor | None],
                                          tuple[Tensor, Tensor | None]]:
    """Shuffle the points (and weights) with ``gen``; ``((x_train, w_train), (x_val, w_val))``.

    The validation split holds ``val_fraction`` of the points, rounded, but at least one and
    leaving at least one for training; with ``val_fraction == 0`` it is empty.
    """
    n = x.shape[0]
    order = torch.randperm(n, generator=gen).to(device)
    n_val = min(max(round(float(val_fraction) * n), 1), n - 1) if val_fraction > 0 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_val, x_train = x[val_idx], x[train_idx]
    w_val = None if w is None else w[val_idx]
    w_train = None if w is None else w[train_idx]
    return (x_train, w_train), (x_val, w_val)


def _train_epoch(flow: nn.Module, optimizer: Adam, x: Tensor,
                 w: Tensor | None, bs: int, gen: torch.Generator) -> float | None:
    """One pass of Adam steps over shuffled batches of ``bs`` points.

    Returns:
        The mean NLL of the epoch's batches (weighted by their points or weight mass), or
        ``None`` when a batch's loss was not finite (the epoch stops before stepping on it).
    """
    perm = torch.randperm(x.shape[0], generator=gen).to(x.device)
    total, mass = 0.0, 0.0
    for i in range(0, x.shape[0], bs):
        idx = perm[i:i + bs]
        wb = None if w is None else w[idx]
        loss = _nll(flow, x[idx], wb)
        if not torch.isfinite(loss):
            return None
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        m = float(idx.numel()) if wb is None else float(wb.sum())
        total, mass = total + float(loss.detach()) * m, mass + m
    return total / mass if mass > 0 else math.nan


class _BestEpoch:
    """The best monitored NLL so far, its epoch and parameters, and the epochs since it.

    Starts from the flow's initial parameters (epoch -1) with an infinite NLL.
    """

    def __init__(self, flow: nn.Module) -> None:
        self.flow = flow
        self.nll, self.epoch, self.stale = math.inf, -1, 0
        self.state = copy.deepcopy(flow.state_dict())

    def update(self, epoch: int, monitored: float) -> None:
        """Keep ``epoch``'s parameters if ``monitored`` beats the best, else count it stale."""
        if monitored < self.nll:
            self.nll, self.epoch, self.stale = monitored, epoch, 0
            self.state = copy.deepcopy(self.flow.state_dict())
        else:
            self.stale += 1


def fit(flow: nn.Module, data, *, epochs: int = 100, batch_size: int = 256, lr: float = 1e-3,
        val_fraction: float = 0.2, patience: int | None = 10, seed: SeedLike = None,
        progress: bool | None = None, weights=None) -> FitResult:
    """Fit ``flow`` to ``data`` by maximum likelihood, with early stopping.

    Arguments:
        flow: a :class:`~flowint.flows.Flow` (anything with ``dim``, ``log_prob`` and
            parameters); trained in place, in its own dtype and device.
        data: points of shape ``(n, dim)`` (numpy array or tensor); for a flow over the uniform
            base they must lie in ``[0,1]^dim``.
        epochs: the largest number of passes over the training split.
        batch_size: points per gradient step.
        lr: Adam learning rate.
        val_fraction: share of the points held out for validation (in ``[0, 1)``); with 0,
            early stopping watches the training NLL.
        patience: stop after this many epochs without a better monitored NLL (``None``: never).
        seed: seeds the split and the shuffling (an int, a generator or ``None``).
        progress: show a tqdm progress bar; ``None`` shows it only when stderr is a terminal.
        weights: optional non-negative weights of shape ``(n,)``: the loss becomes
            ``-sum w log q / sum w`` (e.g. importance weights of the data).

    Returns:
        A :class:`FitResult`; the flow holds the parameters of its ``best_epoch``.

    Raises:
        ValueError: for data of the wrong shape, with NaN/inf, outside the cube of a cube flow,
            bad weights or settings.

    Example:
        >>> flow = realnvp_flow(2, seed=0)
        >>> result = fit(flow, data, epochs=50, seed=0)
        >>> print(result)
    """
    _check_settings(epochs, batch_size, lr, val_fraction, patience)
    params = [p for p in flow.parameters() if p.requires_grad]
    if not params:
        raise ValueError("flow has no trainable parameters")
    dtype, device = params[0].dtype, params[0].device
    x, w = _check_inputs(flow, data, weights, dtype, device)
    gen = make_generator(seed)
    (x_train, w_train), (x_val, w_val) = _split(x, w, val_fraction, gen, device)
    n_train, n_val = x_train.shape[0], x_val.shape[0]
    bs = min(int(batch_size), n_train)
    chunk = max(bs, 4096)

    optimizer = Adam(params, lr=float(lr))  # torch.optim's update, without its 2-4 s import
    show = bool(progress) if progress is not None else sys.stderr.isatty()
    start = time.perf_counter()
    train_hist: list[float] = []
    val_hist: list[float] = []
    best = _BestEpoch(flow)
    reason = "epochs"
    bar = tqdm(range(int(epochs)), disable=not show, desc="fit", unit="epoch", leave=False)
    for epoch in bar:
        train_nll = _train_epoch(flow, optimizer, x_train, w_train, bs, gen)
        if train_nll is None:
            reason = "non-finite"
            break
        train_hist.append(train_nll)
        if n_val:
            val_hist.append(_eval_nll(flow, x_val, w_val, chunk))
        monitored = val_hist[-1] if n_val else train_hist[-1]
        if not math.isfinite(monitored):
            reason = "non-finite"
            break
        best.update(epoch, monitored)
        bar.set_postfix(train=f"{train_hist[-1]:.4f}",
                        val=f"{val_hist[-1]:.4f}" if n_val else "-")
        if patience is not None and best.stale >= int(patience):
            reason = "patience"
            break
    bar.close()
    flow.load_state_dict(best.state)
    return FitResult(
        train_nll=tuple(train_hist),
        val_nll=tuple(val_hist),
        best_epoch=best.epoch,
        stop_reason=reason,
        n_train=n_train,
        n_val=n_val,
        wall_time=time.perf_counter() - start,
    )

