"""Coordinate permutations (volume preserving: ``ladj = 0``)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._rng import SeedLike, make_generator
from .base import Bijection

__all__ = ["Permutation"]


class Permutation(Bijection):
    """``x = z[:, perm]``: a fixed reordering of the coordinates.

    Arguments:
        perm: a permutation of ``range(dim)`` (sequence or tensor).
    """

    def __init__(self, perm: Tensor | list[int]):
        super().__init__()
        perm = torch.as_tensor(perm, dtype=torch.long)
        dim = perm.numel()
        if perm.ndim != 1 or not torch.equal(perm.sort().values, torch.arange(dim)):
            raise ValueError("perm must be a permutation of range(dim)")
        self.dim = dim
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    @classmethod
    def random(cls, dim: int, seed: SeedLike = None) -> Permutation:
        """A uniformly random permutation of ``dim`` coordinates."""
        return cls(torch.randperm(int(dim), generator=make_generator(seed)))

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        """The order-reversing permutation."""
        return cls(torch.arange(int(dim) - 1, -1, -1))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z[:, self.perm], z.new_zeros(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.inv_perm], x.new_zeros(x.shape[0])

    def config(self) -> dict:
        return {"perm": self.perm.tolist()}
