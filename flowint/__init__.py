"""flowint: integration and sampling in many dimensions with normalizing flows."""

from .flows import Flow, load_flow, make_flow

__all__ = ["Flow", "load_flow", "make_flow"]
__version__ = "0.1.0"
