"""Autoregressive flows with a MADE conditioner: MAF and IAF (lecture notes §3.5).

Both apply a transformer coordinate by coordinate, ``x_i = tau(z_i; h_i)``, so the Jacobian is
triangular in the autoregressive order and ``log|det| = sum_i log tau'``. They differ in what the
parameters ``h_i`` depend on:

* :class:`MAF` (masked autoregressive flow): ``h_i = h_i(x_{<i})``. Density evaluation
  (``x -> z``) takes one conditioner pass; sampling (``z -> x``) takes ``dim`` passes.
* :class:`IAF` (inverse autoregressive flow): ``h_i = h_i(z_{<i})``. Sampling takes one pass;
  density evaluation takes ``dim`` passes.

The conditioner :class:`MADE` computes every ``h_i`` in one pass of a masked network and counts
its passes in :attr:`MADE.n_calls`. The transformer is affine or a spline: on ``R`` splines go
through a sigmoid (:class:`~flowint.flows.transformers.LogitSpline`); with ``domain="cube"``
they map ``[0,1]^dim`` onto itself and the flow can sit over a uniform base.

References:
    MADE: Masked Autoencoder for Distribution Estimation (M. Germain, K. Gregor, I. Murray,
    H. Larochelle, 2015), https://arxiv.org/abs/1502.03509

    Masked Autoregressive Flow for Density Estimation (G. Papamakarios, T. Pavlakou,
    I. Murray, 2017), https://arxiv.org/abs/1705.07057

    Improved Variational Inference with Inverse Autoregressive Flow (D. P. Kingma, T. Salimans,
    R. Jozefowicz, X. Chen, I. Sutskever, M. Welling, 2016), https://arxiv.org/abs/1606.04934
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Bijection
from .coupling import _ACTIVATIONS
from .transformers import make_transformer

__all__ = ["MaskedLinear", "MADE", "MAF", "IAF"]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 ``mask`` of the same shape."""

    def __init__(self, mask: Tensor, bias: bool = True):
        out_features, in_features = mask.shape
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class _Constant(nn.Module):
    """Outputs a learned vector (starting at zero) whatever the input."""

    def __init__(self, n_out: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return self.bias.expand(x.shape[0], -1)


class MADE(nn.Module):
    """A masked network whose outputs for coordinate ``i`` see only earlier coordinates.

    Degrees follow Germain et al. (2015): input ``order[k]`` gets degree ``k + 1``, hidden units
    get degrees ``1 .. dim-1`` in turn, a hidden unit sees the units of lower or equal degree
    below it, and the outputs of coordinate ``i`` see the hidden units of degree strictly below
    that of ``i``. The last layer starts at zero.

    Arguments:
        dim: number of coordinates.
        n_params: outputs per coordinate.
        hidden: width of each hidden layer (at least ``dim - 1`` for full connectivity).
        depth: number of hidden layers (0: one masked linear map).
        activation: ``"relu"``, ``"tanh"``, ``"elu"``, ... as for :class:`~flowint.flows.MLP`.
        order: the autoregressive order, a permutation of ``range(dim)`` listing coordinates
            from first to last (default ``0, 1, ..., dim-1``).

    Attributes:
        n_calls: the number of forward passes so far (reset it freely).

    Example:
        >>> made = MADE(3, n_params=2)
        >>> made(torch.randn(5, 3)).shape
        torch.Size([5, 3, 2])
    """

    def __init__(self, dim: int, n_params: int, hidden: int = 64, depth: int = 2,
                 activation: str = "relu", order: Sequence[int] | Tensor | None = None):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}"
            )
        dim, n_params, hidden, depth = int(dim), int(n_params), int(hidden), int(depth)
        if dim < 1 or n_params < 1 or hidden < 1 or depth < 0:
            raise ValueError("need dim >= 1, n_params >= 1, hidden >= 1 and depth >= 0")
        order = torch.arange(dim) if order is None else torch.as_tensor(order, dtype=torch.long)
        if order.shape != (dim,) or not torch.equal(order.sort().values, torch.arange(dim)):
            raise ValueError(f"order must be a permutation of range({dim})")
        self.dim, self.n_params = dim, n_params
        self.register_buffer("order", order)
        degrees = torch.empty(dim, dtype=torch.long)
        degrees[order] = torch.arange(1, dim + 1)
        self.register_buffer("degrees", degrees)
        self.n_calls = 0
        if dim == 1:
            # The only output sees no input: the conditioner is a learned constant.
            self.net: nn.Module = _Constant(n_params)
            return
        layers: list[nn.Module] = []
        d_in = degrees
        for _ in range(depth):
            d_hid = torch.arange(hidden) % (dim - 1) + 1
            layers += [MaskedLinear(d_hid[:, None] >= d_in[None, :]), _ACTIVATIONS[activation]()]
            d_in = d_hid
        d_out = degrees.repeat_interleave(n_params)
        last = MaskedLinear(d_out[:, None] > d_in[None, :])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor) -> Tensor:
        """Parameters of shape ``(n, dim, n_params)``; row ``i`` depends on ``x_{<i}`` only."""
        self.n_calls += 1
        return self.net(x).view(x.shape[0], self.dim, self.n_params)


class _Autoregressive(Bijection):
    """Shared machinery of :class:`MAF` and :class:`IAF`.

    ``conditions_on`` is ``"x"`` (MAF) or ``"z"`` (IAF): the side whose earlier coordinates
    parametrise the transformer. The direction that knows that side computes all parameters in
    one conditioner pass; the other fixes one more coordinate per pass, ``dim`` passes in all.
    """

    conditions_on: str = ""

    def __init__(self, dim: int, transformer: str = "affine", domain: str = "real",
                 hidden: int = 64, depth: int = 2, activation: str = "relu",
                 order: Sequence[int] | Tensor | None = None, **transformer_kwargs):
        super().__init__()
        self.dim = int(dim)
        self.domain = domain
        self.transformer = make_transformer(transformer, domain, **transformer_kwargs)
        self.made = MADE(self.dim, self.transformer.n_params, hidden, depth, activation, order)
        self._hparams = {"hidden": int(hidden), "depth": int(depth), "activation": activation,
                         "domain": domain}

    def _theta(self, t: Tensor) -> Tensor:
        # On the cube, centre the conditioner's inputs on zero: [0,1] -> [-1,1].
        return self.made(2.0 * t - 1.0 if self.domain == "cube" else t)

    def _one_pass(self, t: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        fn = self.transformer.inverse if inverse else self.transformer.forward
        out, ladj = fn(t, self._theta(t))
        return out, ladj.sum(-1)

    def _sequential(self, t: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        # Pass k computes the first k coordinates (in order) exactly: their parameters only use
        # coordinates already fixed by the previous passes. The start value only needs to lie in
        # the domain.
        fn = self.transformer.inverse if inverse else self.transformer.forward
        out = t
        for _ in range(self.dim):
            out, ladj = fn(t, self._theta(out))
        return out, ladj.sum(-1)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.conditions_on == "z":
            return self._one_pass(z, inverse=False)
        return self._sequential(z, inverse=False)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.conditions_on == "x":
            return self._one_pass(x, inverse=True)
        return self._sequential(x, inverse=True)

    def config(self) -> dict:
        return {"dim": self.dim, "order": self.made.order.tolist(), **self._hparams,
                **self.transformer.config()}


class MAF(_Autoregressive):
    """Masked autoregressive flow: ``x_i = tau(z_i; h_i(x_{<i}))``.

    Density evaluation (:meth:`inverse`) takes one conditioner pass, sampling (:meth:`forward`)
    ``dim`` passes.

    Arguments:
        dim: number of coordinates.
        transformer: ``"affine"`` (default), ``"sinh_arcsinh"`` or a spline family ``"rqs"``,
            ``"pwq"``, ``"pwl"``.
        domain: ``"real"`` (maps of ``R^dim``) or ``"cube"`` (maps of ``[0,1]^dim``; splines
            only).
        hidden: width of the MADE's hidden layers.
        depth: number of hidden layers.
        activation: MADE activation.
        order: the autoregressive order (default ``0, ..., dim-1``).
        **transformer_kwargs: transformer arguments (``bins``, ``scale``, ...).

    Example:
        >>> maf = MAF(3, transformer="rqs", bins=8)
        >>> z, ladj = maf.inverse(torch.randn(5, 3))  # one pass: maf.made.n_calls == 1
    """

    conditions_on = "x"


class IAF(_Autoregressive):
    """Inverse autoregressive flow: ``x_i = tau(z_i; h_i(z_{<i}))``.

    Sampling (:meth:`forward`) takes one conditioner pass, density evaluation (:meth:`inverse`)
    ``dim`` passes. Arguments as for :class:`MAF`.

    Example:
        >>> iaf = IAF(3, transformer="rqs", domain="cube", bins=8)
        >>> x, ladj = iaf(torch.rand(5, 3))  # one pass: iaf.made.n_calls == 1
    """

    conditions_on = "z"
