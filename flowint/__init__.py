"""flowint: integration and sampling in many dimensions with normalizing flows."""

from . import pde
from .channel_maps import ChannelMap, IdentityMap, LogisticMap
from .checkpoint import save_checkpoint
from .fit import fit
from .flows import Flow, load_flow, make_flow
from .integrand import Integrand, IntegrandError
from .integrator import DEFAULTS, Integrator, integrate, load_checkpoint
from .result import IterationRecord, Result
from .sampling import unweighted_samples, weighted_samples

__all__ = [
    "DEFAULTS",
    "ChannelMap",
    "Flow",
    "IdentityMap",
    "Integrand",
    "IntegrandError",
    "Integrator",
    "IterationRecord",
    "LogisticMap",
    "Result",
    "fit",
    "integrate",
    "load_checkpoint",
    "load_flow",
    "make_flow",
    "pde",
    "save_checkpoint",
    "unweighted_samples",
    "weighted_samples",
]
__version__ = "0.1.0"
