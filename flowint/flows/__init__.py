"""Bijections of the unit cube and the flows built from them."""

from .affine import AFFINE_KINDS, Affine
from .autoregressive import IAF, MADE, MAF, MaskedLinear
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
from .continuous import ContinuousFlow, LinearField, TimeMLP
from .coupling import MLP, Coupling, SplineCoupling
from .elementwise import ElementwiseSpline, PerAxisGrid
from .factory import make_flow
from .inverse_cdf import InverseCDF
from .masks import alternating_masks, binary_masks, make_masks, random_masks, splits_every_pair
from .permutation import Permutation
from .realnvp import AdditiveCoupling, AffineCoupling, MaskedCoupling
from .recipes import affine_flow, cnf_flow, elementwise_flow, iaf_flow, maf_flow, realnvp_flow
from .rq_fused import fused_splines
from .splines import PiecewiseLinear, PiecewiseQuadratic, RationalQuadratic, SplineMap, make_spline
from .transformers import (
    AffineMap,
    ElementwiseReal,
    LogitSpline,
    Shift,
    SinhArcsinh,
    make_transformer,
)

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
    "Coupling",
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
    "fused_splines",
    "random_masks",
    "register_builder",
    "splits_every_pair",
    # general families (issue 5)
    "AFFINE_KINDS",
    "AdditiveCoupling",
    "Affine",
    "AffineCoupling",
    "AffineMap",
    "ContinuousFlow",
    "ElementwiseReal",
    "IAF",
    "InverseCDF",
    "LinearField",
    "LogitSpline",
    "MADE",
    "MAF",
    "MaskedCoupling",
    "MaskedLinear",
    "Shift",
    "SinhArcsinh",
    "TimeMLP",
    "affine_flow",
    "cnf_flow",
    "elementwise_flow",
    "iaf_flow",
    "maf_flow",
    "make_transformer",
    "realnvp_flow",
]
