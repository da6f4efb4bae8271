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

from torch import Tensor

from .coupling import Coupling
from .transformers import make_transformer

__all__ = ["MaskedCoupling", "AdditiveCoupling", "AffineCoupling"]


class MaskedCoupling(Coupling):
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
        super().__init__(mask, make_transformer(transformer, "real", **transformer_kwargs),
                         hidden, depth, activation)


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
