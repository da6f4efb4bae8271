"""Test integrands on the unit cube with exact values, for benchmarking integrators.

Every integrand is an :class:`Integrand`: a batched callable on torch tensors of shape
``(n, dim)`` (plus a float64 :meth:`Integrand.numpy` twin) carrying its exact integral over
``[0, 1]^dim``. Build them by name::

    >>> import integrands
    >>> f = integrands.get("camel:dim=8,alpha=0.1")
    >>> f
    camel(dim=8, alpha=0.1)

Families: the i-flow set (``gaussian``, ``camel``, ``circles``, ``annulus``, ``toploop``,
``polynomial``), the six Genz families (``oscillatory``, ``product_peak``, ``corner_peak``,
``gaussian_genz``, ``c0``, ``discontinuous``), ``zunis_camel``, ``signed_camel``,
``three_peaks`` and ``breit_wigner``.
"""

from .base import Integrand
from .genz import (
    C0,
    CornerPeak,
    Discontinuous,
    GaussianGenz,
    GenzIntegrand,
    Oscillatory,
    ProductPeak,
)
from .iflow import Annulus, Camel, Circles, Gaussian, Polynomial
from .peaks import SignedCamel, ThreePeaks, ZunisCamel
from .physics import BreitWigner, TopLoop
from .registry import get, names, parse_spec, register

__all__ = [
    "Annulus",
    "BreitWigner",
    "C0",
    "Camel",
    "Circles",
    "CornerPeak",
    "Discontinuous",
    "Gaussian",
    "GaussianGenz",
    "GenzIntegrand",
    "Integrand",
    "Oscillatory",
    "Polynomial",
    "ProductPeak",
    "SignedCamel",
    "ThreePeaks",
    "TopLoop",
    "ZunisCamel",
    "get",
    "names",
    "parse_spec",
    "register",
]
