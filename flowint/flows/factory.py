"""Recipes that assemble flows on the unit cube with sensible defaults."""

from __future__ import annotations

import contextlib

import torch

from .._rng import make_generator
from .base import Bijection, Flow, UniformBase, register_builder
from .coupling import SplineCoupling
from .elementwise import ElementwiseSpline, PerAxisGrid
from .masks import SCHEMES, make_masks

__all__ = ["make_flow", "DEFAULT_BINS"]

DEFAULT_BINS = {"rqs": 16, "pwq": 32, "pwl": 32}


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Seed parameter initialisation without leaving a trace on torch's global RNG state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@register_builder("make_flow")
def make_flow(
    dim: int,
    kind: str = "rqs",
    *,
    bins: int | None = None,
    hidden: int = 32,
    depth: int = 2,
    activation: str = "relu",
    masks: str = "binary",
    n_layers: int | None = None,
    grid: bool = True,
    grid_bins: int = 64,
    min_width: float = 1e-3,
    derivative: str = "softplus",
    seed: int | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Flow:
    """A coupling flow on ``[0,1]^dim`` over a uniform base.

    The generative map is ``coupling layers -> per-axis grid``: the separable grid (the family
    VEGAS adapts) sits next to ``x`` and absorbs what factorises, the couplings learn the
    correlations. With ``dim = 1`` there is nothing to couple and the flow is one learned
    elementwise spline (plus the grid).

    Arguments:
        dim: number of dimensions (>= 1).
        kind: spline family of the couplings: ``"rqs"`` (rational-quadratic), ``"pwq"``
            (piecewise-quadratic) or ``"pwl"`` (piecewise-linear).
        bins: spline bins (default 16 for rqs, 32 otherwise).
        hidden: width of each conditioner's hidden layers.
        depth: number of hidden layers per conditioner.
        activation: conditioner activation.
        masks: ``"binary"`` (``2*ceil(log2 dim)`` layers, every pair of coordinates split),
            ``"alternating"`` or ``"random"``.
        n_layers: number of coupling layers (default: from ``masks`` and ``dim``).
        grid: put a learnable per-axis grid (:class:`PerAxisGrid`) next to ``x``.
        grid_bins: bins of that grid.
        min_width: smallest spline bin width and height.
        derivative: ``"rqs"`` only: how the knot derivatives follow their parameters,
            ``"softplus"`` or ``"exp"`` (:class:`~flowint.flows.splines.RationalQuadratic`).
        seed: seeds the parameter initialisation and random masks (global RNG untouched).
        dtype: parameter dtype (default: torch's default dtype).
        device: parameter device.

    Returns:
        A :class:`Flow` that starts as the identity map (uniform density).

    Example:
        >>> flow = make_flow(8, kind="rqs", seed=0)
        >>> x, log_q = flow.sample(4, seed=1)
    """
    dim = int(dim)
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if kind not in DEFAULT_BINS:
        raise ValueError(f"unknown flow kind {kind!r}; choose one of {sorted(DEFAULT_BINS)}")
    if masks not in SCHEMES:  # checked here too: with dim = 1 no mask is ever made
        raise ValueError(f"unknown mask scheme {masks!r}; choose one of {list(SCHEMES)}")
    bins = DEFAULT_BINS[kind] if bins is None else int(bins)
    if masks == "random" and seed is None:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=make_generator(None)).item())
    spline_kw = {"bins": bins, "min_width": min_width}
    if kind == "pwl":
        spline_kw = {"bins": bins, "min_height": min_width}
    elif kind == "rqs":
        spline_kw["min_height"] = min_width
        spline_kw["derivative"] = derivative
    if kind != "rqs" and derivative != "softplus":  # (rqs: RationalQuadratic checks it)
        raise ValueError(f"derivative={derivative!r} is a setting of kind='rqs' only")
    transforms: list[Bijection] = []
    with _seeded(seed):
        if dim == 1:
            transforms.append(ElementwiseSpline(1, kind, **spline_kw))
        else:
            for m in make_masks(dim, masks, n_layers, seed=seed):
                transforms.append(SplineCoupling(m, kind, hidden=hidden, depth=depth,
                                                 activation=activation, **spline_kw))
        if grid:
            transforms.append(PerAxisGrid(dim, bins=grid_bins))
    config = {
        "builder": "make_flow",
        "kwargs": {"dim": dim, "kind": kind, "bins": bins, "hidden": int(hidden),
                   "depth": int(depth), "activation": activation, "masks": masks,
                   "n_layers": n_layers, "grid": bool(grid), "grid_bins": int(grid_bins),
                   "min_width": float(min_width), "seed": seed,
                   **({"derivative": derivative} if derivative != "softplus" else {})},
    }
    flow = Flow(transforms, UniformBase(dim), config=config)
    return flow.to(dtype=dtype or torch.get_default_dtype(), device=device)
