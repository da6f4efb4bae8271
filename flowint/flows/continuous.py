"""Continuous-time flows: ``dz/dt = f(t, z)`` solved by an ODE solver (lecture notes §3.6).

The generative map sends ``z = z(0)`` to ``x = z(T)``. By Theorem 3.1 the log-density along a
trajectory obeys ``d log p(z(t))/dt = -tr(df/dz)``, so the flow's log-determinant is

    ``log|det dx/dz| = int_0^T tr(df/dz)(t, z(t)) dt``,

integrated together with the state. The trace is exact (``dim`` autograd passes) or Hutchinson's
unbiased estimate ``eps^T (df/dz) eps`` with Rademacher noise ``eps`` held fixed over one solve
(one autograd pass). Gradients with respect to the parameters come from the adjoint method
(Theorem 3.2): a second ODE solved backwards in time, with memory independent of the number of
solver steps.

The ODE solvers come from ``torchdiffeq``, an optional dependency (``pip install flowint[ode]``),
imported when a flow is first solved.

References:
    Neural Ordinary Differential Equations (R. T. Q. Chen, Y. Rubanova, J. Bettencourt,
    D. Duvenaud, 2018), https://arxiv.org/abs/1806.07366

    FFJORD: Free-form Continuous Dynamics for Scalable Reversible Generative Models
    (W. Grathwohl, R. T. Q. Chen, J. Bettencourt, I. Sutskever, D. Duvenaud, 2018),
    https://arxiv.org/abs/1810.01367
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import torch
from torch import Tensor, nn

from .._rng import SeedLike, make_generator
from .base import Bijection
from .coupling import MLP

__all__ = ["ContinuousFlow", "TimeMLP", "LinearField", "exact_trace", "hutchinson_trace"]

TRACE_MODES = ("auto", "exact", "hutchinson")
_EXACT_MAX_DIM = 8  # "auto" uses the exact trace up to this dimension


def _torchdiffeq() -> ModuleType:
    try:
        import torchdiffeq
    except ImportError as exc:  # pragma: no cover - exercised with the module hidden
        raise ImportError(
            "continuous-time flows need torchdiffeq, an optional dependency: "
            "pip install flowint[ode]"
        ) from exc
    return torchdiffeq


class TimeMLP(nn.Module):
    """The vector field ``f(t, z) = MLP([z, t])``, time as an extra input.

    Arguments:
        dim: number of coordinates.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        activation: a smooth activation keeps the ODE well behaved (default ``"tanh"``).

    The last layer starts at zero, so ``f = 0`` and the flow starts as the identity.
    """

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, activation: str = "tanh"):
        super().__init__()
        self.net = MLP(int(dim) + 1, int(dim), hidden, depth, activation)

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        tt = torch.as_tensor(t, dtype=z.dtype, device=z.device).reshape(1, 1)
        return self.net(torch.cat([z, tt.expand(z.shape[0], 1)], dim=-1))


class LinearField(nn.Module):
    """The linear vector field ``f(t, z) = A z``; its flow map is ``expm(t A)``.

    Arguments:
        matrix: the ``(dim, dim)`` matrix ``A`` (a trainable parameter).
    """

    def __init__(self, matrix: Tensor):
        super().__init__()
        self.matrix = nn.Parameter(torch.as_tensor(matrix).clone())

    def forward(self, t: Tensor, z: Tensor) -> Tensor:
        return z @ self.matrix.T


def exact_trace(f: Tensor, z: Tensor, create_graph: bool) -> Tensor:
    """``tr(df/dz)`` per sample by ``dim`` autograd passes (``f``, ``z`` of shape ``(n, dim)``)."""
    tr = torch.zeros_like(f[:, 0])
    if not f.requires_grad:
        return tr
    for i in range(z.shape[1]):
        (g,) = torch.autograd.grad(f[:, i].sum(), z, create_graph=create_graph,
                                   retain_graph=True, allow_unused=True)
        if g is not None:
            tr = tr + g[:, i]
    return tr


def hutchinson_trace(f: Tensor, z: Tensor, noise: Tensor, create_graph: bool) -> Tensor:
    """Hutchinson's estimate ``mean_k eps_k^T (df/dz) eps_k`` with probes ``noise[k]``.

    Arguments:
        f: the field values, shape ``(n, dim)``, computed from ``z``.
        z: the state, shape ``(n, dim)``.
        noise: probe vectors of shape ``(probes, n, dim)`` (Rademacher: unbiased, least variance
            among i.i.d. probes).
        create_graph: keep the graph for higher derivatives (training).
    """
    tr = torch.zeros_like(f[:, 0])
    if not f.requires_grad:
        return tr
    for k in range(noise.shape[0]):
        (g,) = torch.autograd.grad(f, z, noise[k], create_graph=create_graph, retain_graph=True,
                                   allow_unused=True)
        if g is not None:
            tr = tr + (g * noise[k]).sum(-1)
    return tr / noise.shape[0]


class ContinuousFlow(Bijection):
    """A continuous normalizing flow ``dz/dt = f(t, z)`` on ``R^dim`` over ``t in [0, T]``.

    Arguments:
        dim: number of coordinates.
        field: the vector field, a module called as ``field(t, z)`` (default: a
            :class:`TimeMLP` with ``hidden``, ``depth`` and ``activation``).
        hidden: width of the default field.
        depth: hidden layers of the default field.
        activation: activation of the default field.
        T: the integration time.
        trace: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact for ``dim <= 8``).
        n_probes: Hutchinson probes per point and solve.
        method: a torchdiffeq solver (``"dopri5"``, ``"rk4"``, ``"euler"``, ...).
        rtol: relative tolerance of adaptive solvers.
        atol: absolute tolerance of adaptive solvers.
        adjoint: compute parameter gradients by the adjoint method (Theorem 3.2) instead of
            backpropagating through the solver's steps.
        options: solver options passed to torchdiffeq (e.g. ``{"step_size": 0.05}``).
        seed: seeds the Hutchinson probes (a fresh draw per solve from one generator).

    Attributes:
        nfe: number of field evaluations so far, in every solve (the adjoint's backward solves
            included); reset it freely.

    Example:
        >>> cnf = ContinuousFlow(2, hidden=32)
        >>> x, ladj = cnf(torch.randn(8, 2))
        >>> z, ladj_inv = cnf.inverse(x)
    """

    def __init__(self, dim: int, field: nn.Module | None = None, *, hidden: int = 64,
                 depth: int = 2, activation: str = "tanh", T: float = 1.0, trace: str = "auto",
                 n_probes: int = 1, method: str = "dopri5", rtol: float = 1e-5,
                 atol: float = 1e-7, adjoint: bool = True, options: dict | None = None,
                 seed: SeedLike = None):
        super().__init__()
        self.dim = int(dim)
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if trace not in TRACE_MODES:
            raise ValueError(f"trace must be one of {list(TRACE_MODES)}, got {trace!r}")
        if float(T) <= 0:
            raise ValueError(f"T must be positive, got {T}")
        if int(n_probes) < 1:
            raise ValueError(f"n_probes must be >= 1, got {n_probes}")
        self.field = field if field is not None else TimeMLP(self.dim, hidden, depth, activation)
        self.T = float(T)
        self.trace = trace
        self.trace_mode = ("exact" if self.dim <= _EXACT_MAX_DIM else "hutchinson") \
            if trace == "auto" else trace
        self.n_probes = int(n_probes)
        self.method, self.rtol, self.atol = method, float(rtol), float(atol)
        self.adjoint = bool(adjoint)
        self.options = dict(options) if options else None
        self._seed = seed
        self._gen: torch.Generator | None = None
        self.nfe = 0

    def _noise(self, like: Tensor) -> Tensor:
        if self._gen is None or self._gen.device.type != like.device.type:
            self._gen = make_generator(self._seed, like.device)
        shape = (self.n_probes, *like.shape)
        bits = torch.randint(0, 2, shape, generator=self._gen, device=like.device)
        return bits.to(like.dtype) * 2.0 - 1.0

    def _dynamics(self, noise: Tensor | None) -> Callable:
        field = self.field

        def func(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
            self.nfe += 1
            # Keep the trace's graph only where gradients are wanted: plain backprop through
            # the solver, or the adjoint's backward solve (both run with grad enabled).
            create_graph = torch.is_grad_enabled()
            z = state[0]
            with torch.enable_grad():
                if not z.requires_grad:
                    z = z.detach().requires_grad_(True)
                f = field(t, z)
                if noise is None:
                    tr = exact_trace(f, z, create_graph)
                else:
                    tr = hutchinson_trace(f, z, noise, create_graph)
            if not create_graph:
                f, tr = f.detach(), tr.detach()
            return f, tr

        return func

    def _solve(self, y: Tensor, t0: float, t1: float) -> tuple[Tensor, Tensor]:
        tde = _torchdiffeq()
        noise = None if self.trace_mode == "exact" else self._noise(y)
        func = self._dynamics(noise)
        t = torch.tensor([t0, t1], dtype=y.dtype, device=y.device)
        state = (y, y.new_zeros(y.shape[0]))
        kw = {"rtol": self.rtol, "atol": self.atol, "method": self.method,
              "options": self.options}
        if self.adjoint and torch.is_grad_enabled():
            params = tuple(p for p in self.field.parameters() if p.requires_grad)
            out, logdet = tde.odeint_adjoint(func, state, t, adjoint_params=params, **kw)
        else:
            out, logdet = tde.odeint(func, state, t, **kw)
        return out[-1], logdet[-1]

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        # d(ladj)/dt = tr(df/dz) from 0 to T: ladj = log|det dx/dz|.
        return self._solve(z, 0.0, self.T)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        # The same ODE from T back to 0 accumulates -int tr = log|det dz/dx|.
        return self._solve(x, self.T, 0.0)

    def config(self) -> dict:
        return {"dim": self.dim, "T": self.T, "trace": self.trace, "method": self.method,
                "rtol": self.rtol, "atol": self.atol, "adjoint": self.adjoint,
                "options": self.options}
