"""Registered recipes for the general flow families (affine, coupling, autoregressive,
elementwise, continuous-time).

Every recipe takes plain-data keyword arguments, seeds its parameter initialisation without
touching torch's global random state, records itself in ``flow.config`` and so supports
:meth:`Flow.save` / :func:`~flowint.flows.load_flow`. Flows on ``R^dim`` sit over a standard
normal base; the cube variants (``domain="cube"``) over the uniform base, like
:func:`~flowint.make_flow`, and can serve as importance samplers.
"""

from __future__ import annotations

from typing import Any

import torch

from .affine import Affine
from .autoregressive import IAF, MAF
from .base import Bijection, Flow, NormalBase, UniformBase, register_builder
from .continuous import ContinuousFlow
from .elementwise import ElementwiseSpline
from .factory import _seeded
from .masks import make_masks
from .permutation import Permutation
from .realnvp import AdditiveCoupling, AffineCoupling
from .splines import SPLINES
from .transformers import ElementwiseReal

__all__ = ["affine_flow", "realnvp_flow", "maf_flow", "iaf_flow", "elementwise_flow",
           "cnf_flow"]


def _check_dim(dim: int, least: int = 1) -> int:
    dim = int(dim)
    if dim < least:
        raise ValueError(f"dim must be >= {least}, got {dim}")
    return dim


def _check_domain(domain: str) -> str:
    if domain not in ("real", "cube"):
        raise ValueError(f"domain must be 'real' or 'cube', got {domain!r}")
    return domain


def _finish(transforms: list[Bijection], dim: int, domain: str, name: str,
            kwargs: dict[str, Any], dtype: torch.dtype | None,
            device: torch.device | str | None) -> Flow:
    base = NormalBase(dim) if domain == "real" else UniformBase(dim)
    flow = Flow(transforms, base, config={"builder": name, "kwargs": kwargs})
    return flow.to(dtype=dtype or torch.get_default_dtype(), device=device)


@register_builder("affine_flow")
def affine_flow(dim: int, kind: str = "lu", *, permute: bool = False, seed: int | None = None,
                dtype: torch.dtype | None = None,
                device: torch.device | str | None = None) -> Flow:
    """The Gaussian flow ``x = A z + b`` over ``N(0, I)`` (one :class:`Affine` layer).

    Arguments:
        dim: number of dimensions.
        kind: ``"lu"``, ``"triangular"`` or ``"diagonal"``.
        permute: give the ``"lu"`` layer a random fixed permutation ``P`` (from ``seed``)
            instead of the identity.
        seed: seeds the permutation.
        dtype: parameter dtype (default: torch's default dtype).
        device: parameter device.

    Returns:
        A :class:`Flow` (``N(0, I)`` at the start unless ``permute``).

    Example:
        >>> flow = affine_flow(3, kind="lu")
        >>> x, log_q = flow.sample(10, seed=0)
    """
    dim = _check_dim(dim)
    perm = Permutation.random(dim, seed).perm if permute else None
    layer = Affine(dim, kind, perm=perm)
    kwargs = {"dim": dim, "kind": kind, "permute": bool(permute), "seed": seed}
    return _finish([layer], dim, "real", "affine_flow", kwargs, dtype, device)


@register_builder("realnvp_flow")
def realnvp_flow(dim: int, coupling: str = "affine", *, n_layers: int = 4, hidden: int = 64,
                 depth: int = 2, activation: str = "relu", masks: str = "alternating",
                 scale: str = "tanh", scaling: bool = True, seed: int | None = None,
                 dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> Flow:
    """A coupling flow on ``R^dim`` over ``N(0, I)``: NICE (additive) or RealNVP (affine).

    Arguments:
        dim: number of dimensions (>= 2).
        coupling: ``"affine"`` (RealNVP) or ``"additive"`` (NICE, volume preserving).
        n_layers: number of coupling layers.
        hidden: conditioner width.
        depth: conditioner hidden layers.
        activation: conditioner activation.
        masks: mask scheme of :func:`~flowint.flows.make_masks` (``"alternating"``,
            ``"binary"``, ``"random"``).
        scale: log-scale parametrisation of the affine coupling (``"tanh"``, ``"softplus"``).
        scaling: end with a learned diagonal affine layer (NICE's scaling layer; it lets a
            volume-preserving flow change the scale).
        seed: seeds the initialisation (and random masks).
        dtype: parameter dtype.
        device: parameter device.

    Returns:
        A :class:`Flow` that starts as the identity (standard normal density).

    Example:
        >>> flow = realnvp_flow(2, coupling="additive", n_layers=4, seed=0)
    """
    dim = _check_dim(dim, 2)
    if coupling not in ("affine", "additive"):
        raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}")
    transforms: list[Bijection] = []
    with _seeded(seed):
        for m in make_masks(dim, masks, n_layers, seed=seed):
            if coupling == "affine":
                transforms.append(AffineCoupling(m, hidden, depth, activation, scale=scale))
            else:
                transforms.append(AdditiveCoupling(m, hidden, depth, activation))
        if scaling:
            transforms.append(Affine(dim, "diagonal"))
    kwargs = {"dim": dim, "coupling": coupling, "n_layers": int(n_layers), "hidden": int(hidden),
              "depth": int(depth), "activation": activation, "masks": masks, "scale": scale,
              "scaling": bool(scaling), "seed": seed}
    return _finish(transforms, dim, "real", "realnvp_flow", kwargs, dtype, device)


def _autoregressive_flow(cls: type, name: str, dim: int, transform: str, n_layers: int,
                         hidden: int, depth: int, activation: str, domain: str, bins: int,
                         seed: int | None, dtype: torch.dtype | None,
                         device: torch.device | str | None) -> Flow:
    dim = _check_dim(dim)
    domain = _check_domain(domain)
    if domain == "cube" and transform not in SPLINES:
        raise ValueError(f"on the cube the transform must be a spline ({sorted(SPLINES)}), "
                         f"got {transform!r}")
    kw = {"bins": int(bins)} if transform in SPLINES else {}
    transforms: list[Bijection] = []
    with _seeded(seed):
        for i in range(int(n_layers)):
            # Alternate the autoregressive order so that every coordinate conditions others.
            order = list(range(dim)) if i % 2 == 0 else list(range(dim - 1, -1, -1))
            transforms.append(cls(dim, transform, domain, hidden, depth, activation, order, **kw))
    kwargs = {"dim": dim, "transform": transform, "n_layers": int(n_layers),
              "hidden": int(hidden), "depth": int(depth), "activation": activation,
              "domain": domain, "bins": int(bins), "seed": seed}
    return _finish(transforms, dim, domain, name, kwargs, dtype, device)


@register_builder("maf_flow")
def maf_flow(dim: int, transform: str = "affine", *, n_layers: int = 4, hidden: int = 64,
             depth: int = 2, activation: str = "relu", domain: str = "real", bins: int = 8,
             seed: int | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None) -> Flow:
    """A masked autoregressive flow (:class:`MAF` layers, alternating orders).

    Fast density (one conditioner pass per layer), sequential sampling (``dim`` passes).

    Arguments:
        dim: number of dimensions.
        transform: ``"affine"``, ``"sinh_arcsinh"`` or a spline ``"rqs"``, ``"pwq"``, ``"pwl"``.
        n_layers: number of MAF layers.
        hidden: MADE width.
        depth: MADE hidden layers.
        activation: MADE activation.
        domain: ``"real"`` (``N(0, I)`` base on ``R^dim``) or ``"cube"`` (uniform base on
            ``[0,1]^dim``, spline transforms only).
        bins: spline bins.
        seed: seeds the initialisation.
        dtype: parameter dtype.
        device: parameter device.

    Example:
        >>> flow = maf_flow(3, transform="rqs", domain="cube", seed=0)
    """
    return _autoregressive_flow(MAF, "maf_flow", dim, transform, n_layers, hidden, depth,
                                activation, domain, bins, seed, dtype, device)


@register_builder("iaf_flow")
def iaf_flow(dim: int, transform: str = "affine", *, n_layers: int = 4, hidden: int = 64,
             depth: int = 2, activation: str = "relu", domain: str = "real", bins: int = 8,
             seed: int | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None) -> Flow:
    """An inverse autoregressive flow (:class:`IAF` layers, alternating orders).

    Fast sampling (one conditioner pass per layer), sequential density (``dim`` passes).
    Arguments as for :func:`maf_flow`.

    Example:
        >>> flow = iaf_flow(3, transform="affine", seed=0)
        >>> x, log_q = flow.sample(100, seed=1)
    """
    return _autoregressive_flow(IAF, "iaf_flow", dim, transform, n_layers, hidden, depth,
                                activation, domain, bins, seed, dtype, device)


@register_builder("elementwise_flow")
def elementwise_flow(dim: int, kind: str = "sinh_arcsinh", *, domain: str = "real",
                     bins: int = 16, seed: int | None = None, dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> Flow:
    """A separable flow ``x_i = tau_i(z_i)`` (lecture notes §3.5.1).

    On ``R^dim`` (``N(0, I)`` base) the map is ``kind`` followed by a diagonal affine layer
    (location and scale); ``kind="affine"`` is the diagonal affine layer alone. On the cube it
    is one :class:`~flowint.flows.ElementwiseSpline` over the uniform base.

    Arguments:
        dim: number of dimensions.
        kind: ``"affine"``, ``"sinh_arcsinh"`` or a spline ``"rqs"``, ``"pwq"``, ``"pwl"``
            (through a sigmoid on ``R``); on the cube a spline.
        domain: ``"real"`` or ``"cube"``.
        bins: spline bins.
        seed: seeds the initialisation (the layers start as the identity whatever the seed).
        dtype: parameter dtype.
        device: parameter device.

    Example:
        >>> flow = elementwise_flow(2, kind="sinh_arcsinh")
    """
    dim = _check_dim(dim)
    domain = _check_domain(domain)
    kw = {"bins": int(bins)} if kind in SPLINES else {}
    with _seeded(seed):
        if domain == "cube":
            if kind not in SPLINES:
                raise ValueError(f"on the cube the kind must be a spline ({sorted(SPLINES)})")
            transforms: list[Bijection] = [ElementwiseSpline(dim, kind, **kw)]
        elif kind == "affine":
            transforms = [Affine(dim, "diagonal")]
        else:
            transforms = [ElementwiseReal(dim, kind, **kw), Affine(dim, "diagonal")]
    kwargs = {"dim": dim, "kind": kind, "domain": domain, "bins": int(bins), "seed": seed}
    return _finish(transforms, dim, domain, "elementwise_flow", kwargs, dtype, device)


@register_builder("cnf_flow")
def cnf_flow(dim: int, *, hidden: int = 64, depth: int = 2, activation: str = "tanh",
             T: float = 1.0, trace: str = "auto", n_probes: int = 1, method: str = "dopri5",
             rtol: float = 1e-5, atol: float = 1e-7, step_size: float | None = None,
             adjoint: bool = True, seed: int | None = None, dtype: torch.dtype | None = None,
             device: torch.device | str | None = None) -> Flow:
    """A continuous normalizing flow (:class:`ContinuousFlow`) over ``N(0, I)``.

    Needs the optional dependency torchdiffeq (``pip install flowint[ode]``) to be solved.

    Arguments:
        dim: number of dimensions.
        hidden: vector field width.
        depth: vector field hidden layers.
        activation: vector field activation (smooth).
        T: integration time.
        trace: ``"exact"``, ``"hutchinson"`` or ``"auto"`` (exact for ``dim <= 8``).
        n_probes: Hutchinson probes.
        method: torchdiffeq solver.
        rtol: solver relative tolerance.
        atol: solver absolute tolerance.
        step_size: the step of a fixed-step ``method`` (``"rk4"``, ``"euler"``, ...): a cheap,
            fixed cost per solve, at the price of an inverse that is exact only up to the
            discretisation error.
        adjoint: gradients by the adjoint method.
        seed: seeds the initialisation and the Hutchinson probes.
        dtype: parameter dtype.
        device: parameter device.

    Example:
        >>> flow = cnf_flow(2, hidden=32, seed=0)
    """
    dim = _check_dim(dim)
    with _seeded(seed):
        layer = ContinuousFlow(dim, hidden=hidden, depth=depth, activation=activation, T=T,
                               trace=trace, n_probes=n_probes, method=method, rtol=rtol,
                               atol=atol, adjoint=adjoint, seed=seed,
                               options=None if step_size is None else {"step_size": step_size})
    kwargs = {"dim": dim, "hidden": int(hidden), "depth": int(depth), "activation": activation,
              "T": float(T), "trace": trace, "n_probes": int(n_probes), "method": method,
              "rtol": float(rtol), "atol": float(atol),
              "step_size": None if step_size is None else float(step_size),
              "adjoint": bool(adjoint), "seed": seed}
    return _finish([layer], dim, "real", "cnf_flow", kwargs, dtype, device)
