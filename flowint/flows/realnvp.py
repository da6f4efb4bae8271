"""Coupling layers of ``R^d``: additive (NICE) and affine (RealNVP) (lecture notes §3.4).

A coupling layer keeps the conditioning coordinates and moves the others through a transformer
whose parameters a network computes from them: ``x_A = z_A``, ``x_B = tau(z_B; h(z_A))``. The
Jacobian is triangular (after a permutation), so ``log|det| = sum_B log tau'``. The additive
transformer ``tau(z) = z + t`` is volume preserving (``ladj = 0``); the affine one
``tau(z) = exp(s) z + t`` bounds ``s`` (``tanh``) or the scale (``softplus``). The network's last
layer starts at zero, so every layer starts as the identity. Masks come from
:mod:`flowint.flows.masks`; the unit-cube counterpart is :class:`~flowint.flows.SplineCoupling`.

References:
    NICE: Non-linear Independent Components Estimation (L. Dinh, D. Krueger, Y. Bengio, 2014),
    https://arxiv.org/abs/1410.8516

    Density estimation using Real NVP (L. Dinh, J. Sohl-Dickstein, S. Bengio, 2016),
    https://arxiv.org/abs/1605.08803
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Bijection
from .coupling import MLP
from .transformers import make_transformer

__all__ = ["MaskedCoupling", "AdditiveCoupling", "AffineCoupling"]


class MaskedCoupling(Bijection):
    """A coupling layer of ``R^dim`` with any transformer of :mod:`~flowint.flows.transformers`.

    Arguments:
        mask: boolean tensor of shape ``(dim,)``; ``True`` marks the coordinates this layer
            transforms, ``False`` those the network conditions on. Both sets must be non-empty.
        transformer: ``"affine"``, ``"shift"``, ``"sinh_arcsinh"`` or a spline family (through a
            sigmoid).
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.
        **transformer_kwargs: arguments of the transformer (``scale``, ``bins``, ...).
    """

    def __init__(self, mask: Tensor, transformer: str = "affine", hidden: int = 64,
                 depth: int = 2, activation: str = "relu", **transformer_kwargs):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.ndim != 1 or mask.all() or not mask.any():
            raise ValueError("mask must be 1-D with at least one True and one False entry")
        self.dim = mask.numel()
        self.register_buffer("mask", mask)
        self.register_buffer("idx_b", torch.nonzero(mask).squeeze(-1))
        self.register_buffer("idx_a", torch.nonzero(~mask).squeeze(-1))
        self.transformer = make_transformer(transformer, "real", **transformer_kwargs)
        self.n_b = int(mask.sum())
        self.net = MLP(self.dim - self.n_b, self.n_b * self.transformer.n_params, hidden, depth,
                       activation)
        self._hparams = {"hidden": int(hidden), "depth": int(depth), "activation": activation}

    def _couple(self, t: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        theta = self.net(t.index_select(1, self.idx_a))
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


class AdditiveCoupling(MaskedCoupling):
    """NICE's additive coupling ``x_B = z_B + t(z_A)``: volume preserving, ``ladj = 0``.

    Arguments:
        mask: the transformed coordinates (see :class:`MaskedCoupling`).
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.

    Example:
        >>> layer = AdditiveCoupling(torch.tensor([True, False]))
        >>> x, ladj = layer(torch.randn(4, 2))  # ladj == 0
    """

    def __init__(self, mask: Tensor, hidden: int = 64, depth: int = 2, activation: str = "relu"):
        super().__init__(mask, "shift", hidden, depth, activation)


class AffineCoupling(MaskedCoupling):
    """RealNVP's affine coupling ``x_B = exp(s(z_A)) * z_B + t(z_A)``.

    Arguments:
        mask: the transformed coordinates (see :class:`MaskedCoupling`).
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.
        scale: ``"tanh"`` (``|s| <= bound``), ``"softplus"`` or ``"exp"``
            (see :class:`~flowint.flows.transformers.AffineMap`).
        bound: the bound of ``|s|`` for ``"tanh"``.

    Example:
        >>> layer = AffineCoupling(torch.tensor([True, False, True]))
        >>> x, ladj = layer(torch.randn(4, 3))
    """

    def __init__(self, mask: Tensor, hidden: int = 64, depth: int = 2, activation: str = "relu",
                 scale: str = "tanh", bound: float = 3.0):
        super().__init__(mask, "affine", hidden, depth, activation, scale=scale, bound=bound)
