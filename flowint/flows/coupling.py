"""Spline coupling layers on the unit cube.

A coupling layer keeps the conditioning coordinates ``z_A`` and moves the others through
monotone splines whose parameters a network computes from ``z_A`` (lecture notes §3.4):
``x_A = z_A``, ``x_B = g(z_B; h(z_A))``. The Jacobian is triangular, so
``log|det| = sum_B log g'``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Bijection
from .splines import SplineMap, make_spline

__all__ = ["MLP", "Coupling", "SplineCoupling"]

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "silu": nn.SiLU,
                "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Sequential):
    """A fully connected network whose last layer starts at zero.

    Arguments:
        n_in: input features.
        n_out: output features.
        hidden: width of each hidden layer.
        depth: number of hidden layers (0 gives a single linear map).
        activation: ``"relu"``, ``"leaky_relu"``, ``"elu"``, ``"silu"``, ``"tanh"`` or ``"gelu"``.
        zero_init: zero the last layer's weights and bias, so the output starts at zero.
    """

    def __init__(self, n_in: int, n_out: int, hidden: int = 32, depth: int = 4,
                 activation: str = "relu", zero_init: bool = True):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}"
            )
        if int(depth) < 0 or int(hidden) < 1:
            raise ValueError("depth must be >= 0 and hidden >= 1")
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(int(depth)):
            layers += [nn.Linear(width, int(hidden)), _ACTIVATIONS[activation]()]
            width = int(hidden)
        last = nn.Linear(width, n_out)
        if zero_init:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        layers.append(last)
        super().__init__(*layers)

    def columns(self, x: Tensor) -> Tensor:
        """The output transposed, shape ``(n_out, n)``: the last layer as ``W h^T + b``.

        Equal to ``self(x).T`` up to rounding, but contiguous in this layout without a copy.
        """
        for layer in list(self)[:-1]:
            x = layer(x)
        last = self[-1]
        return torch.addmm(last.bias.unsqueeze(1), last.weight, x.t())


class Coupling(Bijection):
    """The mechanics shared by every coupling layer: ``x_A = z_A``, ``x_B = τ(z_B; h(z_A))``.

    Subclasses set ``self.transformer`` — any object with ``forward(x, theta)``,
    ``inverse(y, theta)`` (each returning the output and the elementwise log-derivative),
    ``n_params`` and ``config()``, such as the splines of :mod:`~flowint.flows.splines` — and
    may override :meth:`_encode`, the map applied to ``z_A`` before the network.

    Arguments:
        mask: boolean tensor of shape ``(dim,)``; ``True`` marks the coordinates this layer
            transforms, ``False`` those the network conditions on. Both sets must be non-empty.
        transformer: the elementwise map of the transformed coordinates.
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.
    """

    def __init__(self, mask: Tensor, transformer, hidden: int, depth: int, activation: str):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.ndim != 1 or mask.all() or not mask.any():
            raise ValueError("mask must be 1-D with at least one True and one False entry")
        self.dim = mask.numel()
        self.register_buffer("mask", mask)
        self.register_buffer("idx_b", torch.nonzero(mask).squeeze(-1))
        self.register_buffer("idx_a", torch.nonzero(~mask).squeeze(-1))
        self.transformer = transformer
        self.n_b = int(mask.sum())
        self.net = MLP(self.dim - self.n_b, self.n_b * transformer.n_params, hidden, depth,
                       activation)
        self._hparams = {"hidden": int(hidden), "depth": int(depth), "activation": activation}

    def _encode(self, t_a: Tensor) -> Tensor:
        """The network's input computed from the conditioning coordinates."""
        return t_a

    def _couple(self, t: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        column_map = getattr(self.transformer, "column_map", None)
        fn = column_map(inverse) if column_map is not None else None
        if fn is not None:  # parameters as columns: no per-point layout of theta at all
            n = t.shape[0]
            theta = self.net.columns(self._encode(t.index_select(1, self.idx_a)))
            theta = theta.view(self.n_b, self.transformer.n_params, n)
            out_b, ladj = fn(t.t().index_select(0, self.idx_b), theta)
            return t.index_copy(1, self.idx_b, out_b.t()), ladj.sum(0)
        theta = self.net(self._encode(t.index_select(1, self.idx_a)))
        theta = theta.view(t.shape[0], self.n_b, self.transformer.n_params)
        fn = self.transformer.inverse if inverse else self.transformer.forward
        out_b, ladj = fn(t.index_select(1, self.idx_b), theta)
        return t.index_copy(1, self.idx_b, out_b), ladj.sum(-1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(z, inverse=False)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, inverse=True)

    def config(self) -> dict:
        return {"mask": self.mask.int().tolist(), **self._hparams, **self.transformer.config()}

    def extra_repr(self) -> str:
        c = self.config()
        mask = "".join(str(m) for m in c.pop("mask"))
        return f"mask={mask}, " + ", ".join(f"{k}={v!r}" for k, v in c.items())


class SplineCoupling(Coupling):
    """A coupling layer of the unit cube with spline transformers.

    Arguments:
        mask: boolean tensor of shape ``(dim,)``; ``True`` marks the coordinates this layer
            transforms, ``False`` those the network conditions on. Both sets must be non-empty.
        kind: spline family, ``"rqs"``, ``"pwq"`` or ``"pwl"``.
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.
        **spline_kwargs: spline arguments (``bins``, ``min_width``, ...).

    The conditioner's last layer starts at zero, so the layer starts as the identity.
    """

    def __init__(self, mask: Tensor, kind: str = "rqs", hidden: int = 32, depth: int = 4,
                 activation: str = "relu", **spline_kwargs):
        super().__init__(mask, make_spline(kind, **spline_kwargs), hidden, depth, activation)

    @property
    def spline(self) -> SplineMap:
        """The spline family of this layer (its transformer)."""
        return self.transformer

    def _encode(self, t_a: Tensor) -> Tensor:
        # Centre the conditioner's inputs on zero: [0,1] -> [-1,1].
        return 2.0 * t_a - 1.0
