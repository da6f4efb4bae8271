"""flowint: integration and sampling in many dimensions with normalizing flows."""

from .fit import fit
from .flows import Flow, load_flow, make_flow
from .integrand import Integrand, IntegrandError
from .integrator import DEFAULTS, Integrator, integrate
from .result import IterationRecord, Result

__all__ = [
    "DEFAULTS",
    "Flow",
    "Integrand",
    "IntegrandError",
    "Integrator",
    "IterationRecord",
    "Result",
    "fit",
    "integrate",
    "load_flow",
    "make_flow",
]
__version__ = "0.1.0"
