"""Bijections, base distributions and the :class:`Flow` that chains them.

The one sign convention of flowint
----------------------------------
A flow maps a base variable ``z ~ p_Z`` to ``x`` in the *generative* direction ``z -> x``
(sampling) and back in the *normalizing* direction ``x -> z`` (density evaluation).

Every :class:`Bijection` implements both directions and each returns ``(output, ladj)`` where
``ladj`` is ``log |det d output / d input|`` *for the direction it was called in*, one value per
sample (shape ``(n,)``). Hence, for ``x = T(z)``::

    log q(x) = log p_Z(z) - ladj_forward(z) = log p_Z(z) + ladj_inverse(x)

and ``ladj_inverse(T(z)) == -ladj_forward(z)``. This is tested against autograd Jacobians for
every bijection in the library (``tests/test_bijections.py``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._io import load_plain
from .._rng import SeedLike, make_generator

__all__ = [
    "Bijection",
    "InverseBijection",
    "Chain",
    "Base",
    "UniformBase",
    "NormalBase",
    "Flow",
    "register_builder",
    "build_flow",
    "load_flow",
]


class Bijection(nn.Module):
    """An invertible map with a tractable log-determinant.

    Subclasses implement :meth:`forward` (generative, ``z -> x``) and :meth:`inverse`
    (normalizing, ``x -> z``). Both take a batch of shape ``(n, dim)`` and return
    ``(output, ladj)`` with ``ladj`` of shape ``(n,)`` equal to ``log|det J|`` of the map that was
    applied (see the module docstring for the sign convention).

    Attributes:
        dim: the number of coordinates the bijection acts on.
    """

    dim: int

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Generative direction ``z -> x``; returns ``(x, log|det dx/dz|)``."""
        raise NotImplementedError

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        """Normalizing direction ``x -> z``; returns ``(z, log|det dz/dx|)``."""
        raise NotImplementedError

    @property
    def inv(self) -> Bijection:
        """The inverse bijection (``b.inv.inv is b``, also when ``b`` is itself an inverse)."""
        ref = self.__dict__.get("_inverse_ref")
        inverse = ref() if ref is not None else None
        return inverse if inverse is not None else InverseBijection(self)

    def __getstate__(self) -> dict[str, Any]:
        # The weak reference to the cached inverse cannot be pickled (nor need it be).
        state = dict(super().__getstate__())
        state.pop("_inverse_ref", None)
        return state

    def config(self) -> dict[str, Any]:
        """Plain-data description of the constructor arguments (for ``repr`` and saving)."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


class InverseBijection(Bijection):
    """The inverse of a bijection: swaps ``forward`` and ``inverse``."""

    def __init__(self, base: Bijection):
        super().__init__()
        self.base = base
        self.dim = base.dim
        # Let ``base.inv`` return this object while it lives, so ``self.inv.inv is self``; a
        # weak reference, because a strong one would make the two modules own each other.
        base._inverse_ref = weakref.ref(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Copies and unpickled objects re-link to their own (copied) base.
        super().__setstate__(state)
        self.base._inverse_ref = weakref.ref(self)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.base.inverse(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.base.forward(x)

    @property
    def inv(self) -> Bijection:
        return self.base


def _compose_forward(transforms: Sequence[Bijection], z: Tensor) -> tuple[Tensor, Tensor]:
    total = z.new_zeros(z.shape[0])
    for t in transforms:
        z, ladj = t(z)
        total = total + ladj
    return z, total


def _compose_inverse(transforms: Sequence[Bijection], x: Tensor) -> tuple[Tensor, Tensor]:
    total = x.new_zeros(x.shape[0])
    for t in reversed(transforms):
        x, ladj = t.inverse(x)
        total = total + ladj
    return x, total


class Chain(Bijection):
    """Composition ``T_k ∘ ... ∘ T_1``: ``forward`` applies the transforms in list order.

    Arguments:
        transforms: bijections of equal ``dim``; the first one acts first in the generative
            direction.
    """

    def __init__(self, transforms: Sequence[Bijection]):
        super().__init__()
        transforms = list(transforms)
        if not transforms:
            raise ValueError("Chain needs at least one bijection")
        dims = {t.dim for t in transforms}
        if len(dims) != 1:
            raise ValueError(f"all bijections in a Chain must share dim, got {sorted(dims)}")
        self.transforms = nn.ModuleList(transforms)
        self.dim = dims.pop()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return _compose_forward(self.transforms, z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return _compose_inverse(self.transforms, x)


class Base(nn.Module):
    """A base distribution ``p_Z`` on ``R^dim`` or ``[0,1]^dim`` with sampling and log-density."""

    dim: int
    support: str

    def sample(self, n: int, generator: torch.Generator, *, dtype: torch.dtype,
               device: torch.device) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def log_prob(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class UniformBase(Base):
    """The uniform distribution on ``[0,1]^dim`` (``log p_Z = 0`` inside the cube)."""

    support = "cube"

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def sample(self, n: int, generator: torch.Generator, *, dtype: torch.dtype,
               device: torch.device) -> Tensor:
        return torch.rand(n, self.dim, generator=generator, dtype=dtype, device=device)

    def log_prob(self, z: Tensor) -> Tensor:
        return z.new_zeros(z.shape[0])


class NormalBase(Base):
    """The standard normal distribution on ``R^dim``."""

    support = "real"

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    def sample(self, n: int, generator: torch.Generator, *, dtype: torch.dtype,
               device: torch.device) -> Tensor:
        return torch.randn(n, self.dim, generator=generator, dtype=dtype, device=device)

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z * z).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)


_BUILDERS: dict[str, Callable[..., Flow]] = {}


def register_builder(name: str) -> Callable[[Callable[..., Flow]], Callable[..., Flow]]:
    """Register a flow factory so that flows it builds can be saved and loaded by name.

    The factory must accept only plain-data keyword arguments (numbers, strings, booleans,
    ``None`` and lists/dicts of those) and return a :class:`Flow` whose ``config`` it sets.
    """

    def deco(fn: Callable[..., Flow]) -> Callable[..., Flow]:
        _BUILDERS[name] = fn
        return fn

    return deco


def build_flow(config: dict[str, Any]) -> Flow:
    """Rebuild a flow (with fresh parameters) from ``flow.config``."""
    try:
        builder = _BUILDERS[config["builder"]]
    except KeyError as exc:
        raise ValueError(
            f"unknown flow builder {config.get('builder')!r}; known: {sorted(_BUILDERS)}"
        ) from exc
    return builder(**config.get("kwargs", {}))


SAMPLE_CHUNK = 4096  # rows pushed through the flow at a time by Flow.sample


def _check_count(n: int) -> int:
    if int(n) < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return int(n)


class Flow(nn.Module):
    """A normalizing flow: a base distribution pushed through a chain of bijections.

    ``x = T(z)`` with ``z ~ base``; ``T`` applies ``transforms`` in list order. The device and
    dtype of the flow follow the module (``flow.to(torch.float32)``, ``flow.to("cuda")``).

    Sampling follows ``torch.distributions``: :meth:`sample` draws without gradients,
    :meth:`rsample` draws reparametrised points whose ``x`` and ``log q`` carry gradients to
    the parameters, and :meth:`transform_base` pushes given base points with the caller's grad
    mode.

    Arguments:
        transforms: the bijections, first-applied first in the generative direction.
        base: the base distribution (default: uniform on the unit cube).
        config: plain-data recipe used by :meth:`save` / :func:`load_flow` to rebuild the flow;
            set by the factories such as :func:`flowint.make_flow`.

    Example:
        >>> flow = make_flow(2, kind="rqs")
        >>> x, log_q = flow.sample(1000, seed=0)
        >>> torch.allclose(flow.log_prob(x), log_q)
        True
        >>> x, log_q = flow.rsample(256, seed=1)  # reparametrised: gradients reach the flow
        >>> log_q.mean().backward()
    """

    def __init__(self, transforms: Sequence[Bijection], base: Base | None = None,
                 config: dict[str, Any] | None = None):
        super().__init__()
        transforms = list(transforms)
        if base is None:
            if not transforms:
                raise ValueError("a Flow without transforms needs an explicit base")
            base = UniformBase(transforms[0].dim)
        self.base = base
        self.dim = base.dim
        for t in transforms:
            if t.dim != self.dim:
                raise ValueError(
                    f"bijection {t.__class__.__name__} has dim {t.dim}, flow {self.dim}"
                )
        self.transforms = nn.ModuleList(transforms)
        self.config = dict(config) if config is not None else None
        # A buffer that carries the flow's dtype and device even when it has no parameters.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self._anchor.dtype

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Generative map ``z -> x``; returns ``(x, log|det dx/dz|)``."""
        return _compose_forward(self.transforms, z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalizing map ``x -> z``; returns ``(z, log|det dz/dx|)``."""
        return _compose_inverse(self.transforms, x)

    def _check_points(self, x: Tensor, name: str) -> Tensor:
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}), got {tuple(x.shape)}")
        return x.to(dtype=self.dtype, device=self.device)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x)`` for a batch ``x`` of shape ``(n, dim)``."""
        x = self._check_points(x, "x")
        z, ladj = self.inverse(x)
        return self.base.log_prob(z) + ladj

    def sample_base(self, n: int, *, seed: SeedLike = None) -> Tensor:
        """Draw ``n`` base points ``z`` (shape ``(n, dim)``)."""
        gen = make_generator(seed, self.device)
        return self.base.sample(int(n), gen, dtype=self.dtype, device=self.device)

    def transform_base(self, z: Tensor, *, chunk: int | None = None) -> tuple[Tensor, Tensor]:
        """Push base points through the flow: ``x = T(z)`` and ``log q(x)``.

        The public way to map base points drawn elsewhere (e.g. scrambled Sobol points of an
        estimator) through the flow. Gradients follow the caller's grad mode: with grad
        enabled they flow to the parameters (and to ``z`` if it requires them); wrap the call
        in ``torch.no_grad()`` when they are not needed. :meth:`sample` and :meth:`rsample`
        are this method applied to fresh draws of :meth:`sample_base`.

        Sign convention: with ``ladj_forward = log|det dx/dz|`` of the generative map,
        ``log q(x) = log p_Z(z) - ladj_forward``.

        Arguments:
            z: base points of shape ``(n, dim)``, in the flow's dtype and on its device.
            chunk: push at most this many rows through the flow at a time and concatenate
                the results (same points, same order); ``None`` (default) does one pass.
                Chunks keep the per-point intermediate tensors small enough to stay in cache;
                with gradients enabled the autograd graph still covers every row.

        Returns:
            ``(x, log_q)`` of shapes ``(n, dim)`` and ``(n,)``: the points ``x = T(z)`` and
            their log-density ``log q(x)`` under the flow.

        Raises:
            ValueError: if ``chunk`` is given and smaller than 1.
        """
        if chunk is not None and int(chunk) < 1:
            raise ValueError(f"chunk must be >= 1 or None, got {chunk}")
        if chunk is None or z.shape[0] <= int(chunk):
            x, ladj = self(z)
            return x, self.base.log_prob(z) - ladj
        parts = [self.transform_base(c) for c in z.split(int(chunk))]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def sample(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points and their log-density, without gradients.

        Runs under ``torch.no_grad()`` (no autograd graph is built, whatever the caller's grad
        mode) and pushes the base points through the flow ``SAMPLE_CHUNK`` rows at a time; the
        points are the same, in the same order, as one pass of :meth:`transform_base`. Use
        :meth:`rsample` for reparametrised samples that carry gradients.

        Arguments:
            n: number of points.
            seed: an int, a ``torch.Generator`` (advanced in place) or ``None``.

        Returns:
            ``(x, log_q)`` of shapes ``(n, dim)`` and ``(n,)``, detached (``requires_grad`` is
            ``False``).

        Raises:
            ValueError: if ``n`` is negative.
        """
        n = _check_count(n)
        with torch.no_grad():
            x, log_q = self.transform_base(self.sample_base(n, seed=seed), chunk=SAMPLE_CHUNK)
        return x.detach(), log_q.detach()

    def rsample(self, n: int, *, seed: SeedLike = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` reparametrised points and their log-density, with gradients.

        ``x = T(z)`` for base draws ``z`` in one pass of :meth:`transform_base` with the
        caller's grad mode, so gradients of ``x`` and ``log_q`` flow to the parameters (e.g.
        for reverse-KL training). With the same ``seed`` the points equal those of
        :meth:`sample`.

        Arguments:
            n: number of points.
            seed: an int, a ``torch.Generator`` (advanced in place) or ``None``.

        Returns:
            ``(x, log_q)`` of shapes ``(n, dim)`` and ``(n,)``.

        Raises:
            ValueError: if ``n`` is negative.
        """
        n = _check_count(n)
        return self.transform_base(self.sample_base(n, seed=seed))

    def save(self, path: str) -> None:
        """Write the flow's recipe and parameters to ``path`` (a torch file, no pickled code)."""
        if self.config is None:
            raise ValueError("this flow has no config (build it with a registered factory)")
        torch.save(
            {
                "format": "flowint.flow/1",
                "config": self.config,
                "dtype": str(self.dtype).removeprefix("torch."),
                "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            },
            path,
        )

    def extra_repr(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"dim={self.dim}, parameters={n}, dtype={str(self.dtype).removeprefix('torch.')}"


def load_flow(path: str, map_location: str | torch.device | None = None) -> Flow:
    """Load a flow written by :meth:`Flow.save`, with ``torch.load(..., weights_only=True)``."""
    blob = load_plain(path, "flowint.flow/1", "flowint flow file")
    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
              "float64": torch.float64}
    if blob.get("dtype") not in dtypes:
        raise ValueError(f"{path}: unsupported dtype {blob.get('dtype')!r}")
    flow = build_flow(blob["config"])
    flow = flow.to(dtypes[blob["dtype"]])
    flow.load_state_dict(blob["state_dict"])
    if map_location is not None:
        flow = flow.to(map_location)
    return flow
