"""Closed-form one-dimensional integrals over ``[0, 1]`` used to build exact values."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

__all__ = ["gauss_interval", "log_gauss_interval"]


def gauss_interval(center: float | np.ndarray, width: float | np.ndarray) -> np.ndarray:
    """Integral of ``exp(-((x - center) / width)**2)`` over ``x`` in ``[0, 1]``.

    Arguments:
        center: the centre of the Gaussian (scalar or array).
        width: the width ``s`` in ``exp(-(x - c)^2 / s^2)`` (scalar or array), > 0.

    Returns:
        ``width * sqrt(pi) / 2 * (erf((1 - center) / width) + erf(center / width))``.

    Example:
        >>> round(float(gauss_interval(0.5, 0.2)), 6)
        0.354347
    """
    center = np.asarray(center, dtype=np.float64)
    width = np.asarray(width, dtype=np.float64)
    return width * math.sqrt(math.pi) / 2.0 * (erf((1.0 - center) / width) + erf(center / width))


def log_gauss_interval(center: float, width: float) -> float:
    """Logarithm of :func:`gauss_interval`, accurate for tiny widths.

    Arguments:
        center: the centre of the Gaussian, in ``[0, 1]``.
        width: the width ``s`` (> 0).

    Returns:
        ``log(gauss_interval(center, width))``.
    """
    total = math.erf((1.0 - center) / width) + math.erf(center / width)
    return math.log(width * math.sqrt(math.pi) / 2.0) + math.log(total)
