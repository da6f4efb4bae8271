"""Coupling masks: which coordinates each coupling layer transforms.

A mask is a boolean tensor of shape ``(dim,)``; ``True`` marks the coordinates the layer
transforms, ``False`` those it conditions on. Every mask has at least one of each.
"""

from __future__ import annotations

import math

import torch

from .._rng import SeedLike, make_generator

__all__ = ["binary_masks", "alternating_masks", "random_masks", "make_masks", "splits_every_pair"]


#: The mask scheme names accepted by :func:`make_masks`.
SCHEMES = ("binary", "alternating", "random")


def _check_dim(dim: int) -> int:
    dim = int(dim)
    if dim < 2:
        raise ValueError(f"coupling masks need dim >= 2, got {dim}")
    return dim


def binary_masks(dim: int) -> list[torch.Tensor]:
    """The binary-digit scheme of i-flow: ``2 * ceil(log2 dim)`` masks.

    For each bit ``b`` of the coordinate index, one layer transforms the coordinates whose bit
    ``b`` is one and the next those whose bit is zero. Two distinct indices differ in some bit,
    so every pair of coordinates is split (one transformed, the other conditioning) by at least
    one layer, and every coordinate is transformed by at least one layer.
    """
    dim = _check_dim(dim)
    idx = torch.arange(dim)
    masks = []
    for b in range(math.ceil(math.log2(dim))):
        bit = ((idx >> b) & 1).bool()
        masks += [bit, ~bit]
    return masks


def alternating_masks(dim: int, n_layers: int) -> list[torch.Tensor]:
    """Masks that alternate between even and odd coordinates (RealNVP's checkerboard)."""
    dim = _check_dim(dim)
    even = torch.arange(dim) % 2 == 0
    return [even if i % 2 else ~even for i in range(int(n_layers))]


def random_masks(dim: int, n_layers: int, seed: SeedLike = None) -> list[torch.Tensor]:
    """Random half/half masks, each followed by its complement so every coordinate moves."""
    dim = _check_dim(dim)
    gen = make_generator(seed)
    masks: list[torch.Tensor] = []
    while len(masks) < int(n_layers):
        perm = torch.randperm(dim, generator=gen)
        m = torch.zeros(dim, dtype=torch.bool)
        m[perm[: dim // 2]] = True
        masks += [m, ~m]
    return masks[: int(n_layers)]


def make_masks(dim: int, scheme: str = "binary", n_layers: int | None = None,
               seed: SeedLike = None) -> list[torch.Tensor]:
    """Masks by scheme name: ``"binary"``, ``"alternating"`` or ``"random"``.

    Arguments:
        dim: number of coordinates (at least 2).
        scheme: the mask scheme.
        n_layers: number of masks; for ``"binary"`` it defaults to ``2*ceil(log2 dim)`` and a
            larger value repeats the scheme; for the others it defaults to the same number.
        seed: randomness for ``"random"``.
    """
    dim = _check_dim(dim)
    base = binary_masks(dim)
    n = len(base) if n_layers is None else int(n_layers)
    if n < 1:
        raise ValueError(f"n_layers must be positive, got {n_layers}")
    if scheme == "binary":
        return [base[i % len(base)] for i in range(n)]
    if scheme == "alternating":
        return alternating_masks(dim, n)
    if scheme == "random":
        return random_masks(dim, n, seed)
    raise ValueError(f"unknown mask scheme {scheme!r}; choose 'binary', 'alternating' or 'random'")


def splits_every_pair(masks: list[torch.Tensor]) -> bool:
    """Whether every pair of coordinates is separated (one transformed, one not) by some mask."""
    m = torch.stack(masks).to(torch.int64)  # (layers, dim)
    split = (m.unsqueeze(2) != m.unsqueeze(1)).any(0)
    dim = m.shape[1]
    return bool(split[~torch.eye(dim, dtype=torch.bool)].all())
