"""Higher-order quasi-random points: the digits of two scrambled Sobol coordinates interlaced.

A scrambled Sobol set in ``2·dim`` dimensions becomes one in ``dim`` dimensions by *digit
interlacing* (Dick 2008, "Walsh spaces containing smooth functions and quasi-Monte Carlo
rules of arbitrary high order"): coordinate ``j`` of a point takes the binary digits of source
coordinates ``2j`` and ``2j + 1`` in turn, ``0.a₁b₁a₂b₂…``. The result is a higher-order
digital net of order 2: for integrands with square-integrable mixed second derivatives the
root mean square error of one randomization falls as ``N^(-5/2+ε)`` instead of the
``N^(-3/2+ε)`` of a scrambled Sobol set, when the source set is scrambled by Owen's nested
uniform scrambling before the interlacing (Dick 2011, "Higher order scrambled digital nets
achieve the optimal rate of the root mean square error for smooth integrands", Ann. Statist.
39). Each point stays uniform on the cube (its digits are those of two independent uniform
coordinates), so the mean of one randomization is unbiased and independent randomizations
give an error bar as plain ones do.

What it gains is the integrand's business: 8 randomizations of ``2^17`` points against
plain nested-scrambled Sobol points (60 seeds, ``benchmarks/results/rqmc_sets_interlaced.md``
against ``rqmc_sets.md``) have an RMS error 32× smaller on the camel 2-D and 17× on the
signed camel 2-D, about the same on the annulus (an indicator), and 2.1× *larger* on the
camel 4-D. So it is a candidate sampler the :class:`~flowint.run.policy.Policy` measures like the
others (``"interlaced"``, up to :data:`MAX_DIM` dimensions), never a default.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["DIGITS", "MAX_DIM", "InterlacedIdentity", "interlace"]

#: Most dimensions in which the Policy measures the interlaced candidate (the source set has
#: twice as many).
MAX_DIM = 4
#: Digits taken from each source coordinate: two of them fill a float64's 52-bit fraction.
DIGITS = 26

_MASKS = (  # spread the low 32 bits of a uint64 to the even bit positions
    (16, np.uint64(0x0000FFFF0000FFFF)),
    (8, np.uint64(0x00FF00FF00FF00FF)),
    (4, np.uint64(0x0F0F0F0F0F0F0F0F)),
    (2, np.uint64(0x3333333333333333)),
    (1, np.uint64(0x5555555555555555)),
)


def _spread(a: np.ndarray) -> np.ndarray:
    """Bit ``i`` of ``a`` (uint64, below ``2^32``) moved to bit ``2i``."""
    a = a.astype(np.uint64)
    for shift, mask in _MASKS:
        a = (a | (a << np.uint64(shift))) & mask
    return a


def interlace(points: np.ndarray) -> np.ndarray:
    """Points of ``[0, 1)^(2·dim)`` to points of ``[0, 1)^dim`` by interlacing the first
    :data:`DIGITS` binary digits of coordinates ``2j`` and ``2j + 1`` (``2j`` first).

    Arguments:
        points: float64 array of shape ``(n, 2·dim)`` in ``[0, 1)``.

    Returns:
        float64 array of shape ``(n, dim)`` in ``[0, 1)`` (multiples of ``2^-52``).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] % 2:
        raise ValueError(f"need points of shape (n, 2·dim), got {points.shape}")
    top = float(2**DIGITS - 1)  # a point rounded up to 1.0 keeps every digit 1
    digits = np.minimum(np.floor(points * float(2**DIGITS)), top).astype(np.uint64)
    first, second = digits[:, 0::2], digits[:, 1::2]
    merged = (_spread(first) << np.uint64(1)) | _spread(second)
    return merged.astype(np.float64) * 2.0 ** (-2 * DIGITS)


class InterlacedIdentity:
    """The identity sampler fed interlaced points: base points in ``2·dim`` dimensions
    (:attr:`base_dim`) become uniform points of the cube by :func:`interlace`, density 1.

    Arguments:
        dim: dimensions of the cube.
        dtype: dtype of the points returned.
    """

    #: Base points are drawn in float64 whatever :attr:`dtype` is: their digits are
    #: interlaced, and a float32 base point near 1 would round to 1.0.
    base_dtype = torch.float64

    def __init__(self, dim: int, dtype: torch.dtype = torch.float64):
        self.dim, self.dtype = int(dim), dtype
        self.base_dim = 2 * self.dim

    def transform_base(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(u, log q)`` for base points ``z`` of shape ``(n, 2·dim)``: ``u`` interlaced,
        in ``[0, 1)`` also after rounding to :attr:`dtype`, ``log q = 0``."""
        u = interlace(z.detach().cpu().to(torch.float64).numpy())
        out = torch.as_tensor(u, dtype=self.dtype, device=z.device)
        below_one = torch.nextafter(torch.ones((), dtype=self.dtype),
                                    torch.zeros((), dtype=self.dtype))
        out = torch.minimum(out, below_one.to(z.device))
        return out, torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
