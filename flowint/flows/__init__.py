"""Bijections of the unit cube and the flows built from them."""

from .base import (
    Base,
    Bijection,
    Chain,
    Flow,
    InverseBijection,
    NormalBase,
    UniformBase,
    build_flow,
    load_flow,
    register_builder,
)
from .coupling import MLP, SplineCoupling
from .elementwise import ElementwiseSpline, PerAxisGrid
from .factory import make_flow
from .masks import alternating_masks, binary_masks, make_masks, random_masks, splits_every_pair
from .permutation import Permutation
from .splines import PiecewiseLinear, PiecewiseQuadratic, RationalQuadratic, SplineMap, make_spline

__all__ = [
    "Base",
    "Bijection",
    "Chain",
    "ElementwiseSpline",
    "Flow",
    "InverseBijection",
    "MLP",
    "NormalBase",
    "PerAxisGrid",
    "Permutation",
    "PiecewiseLinear",
    "PiecewiseQuadratic",
    "RationalQuadratic",
    "SplineCoupling",
    "SplineMap",
    "UniformBase",
    "alternating_masks",
    "binary_masks",
    "build_flow",
    "load_flow",
    "make_flow",
    "make_masks",
    "make_spline",
    "random_masks",
    "register_builder",
    "splits_every_pair",
]
