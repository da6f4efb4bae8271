"""The :class:`Integrand` base class shared by every test function of the package.

An integrand is written once, in :meth:`Integrand._evaluate`, against a small array namespace
(:class:`Ops`) so that the same formula serves both the batched torch path
(:meth:`Integrand.__call__`, any float dtype and device, differentiable) and the float64 numpy
path (:meth:`Integrand.numpy`). Only operations that exist with the same meaning in ``torch`` and
``numpy`` are used (``exp``, ``cos``, ``abs``, ``where``, ``.sum(-1)``, ``.prod(-1)``, ...), and
constant parameter vectors are converted once per dtype/device and cached.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import torch

__all__ = ["Array", "Integrand", "Ops"]

Array = Any  # a torch.Tensor or a numpy.ndarray, depending on the Ops in use


class Ops:
    """Array namespace handed to :meth:`Integrand._evaluate`.

    Attribute access falls through to the wrapped module (``torch`` or ``numpy``); the few
    operations whose spelling differs between the two are methods.

    Arguments:
        xp: the module providing the array functions, ``torch`` or ``numpy``.

    Example:
        >>> ops = Ops(np)
        >>> ops.exp(np.zeros(2))
        array([1., 1.])
    """

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp
        self.is_torch = xp is torch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.xp, name)

    def cast(self, mask: Array, like: Array) -> Array:
        """Convert a boolean mask to the floating dtype (and device) of ``like``.

        Arguments:
            mask: boolean array.
            like: array whose dtype is wanted.

        Returns:
            ``mask`` as 0.0/1.0 values of ``like``'s dtype.
        """
        if self.is_torch:
            return mask.to(dtype=like.dtype)
        return mask.astype(like.dtype)


TORCH_OPS = Ops(torch)
NUMPY_OPS = Ops(np)


def validate_dim(dim: Any, fixed: int | None = None) -> int:
    """Check that ``dim`` is a positive integer (equal to ``fixed`` when given).

    Arguments:
        dim: the requested dimension; an int, or a float with an integral value.
        fixed: the only dimension the integrand is defined in, or None.

    Returns:
        ``dim`` as an int.

    Raises:
        ValueError: ``dim`` is not a positive integer or differs from ``fixed``.
    """
    if isinstance(dim, bool) or not isinstance(dim, int | float | np.integer | np.floating):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if not float(dim).is_integer() or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    dim = int(dim)
    if fixed is not None and dim != fixed:
        raise ValueError(f"this integrand is defined in dim={fixed} only, got dim={dim}")
    return dim


def positive(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is finite and > 0.

    Arguments:
        name: parameter name, for the error message.
        value: the value to check.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: the value is not a finite positive number.
    """
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return value


class Integrand(ABC):
    """A test function on the unit cube ``[0, 1]^dim`` with a known integral.

    Subclasses set the class attributes below, compute their parameters in ``__init__`` and
    then call ``super().__init__(dim, **params)``, which fills :attr:`exact` and
    :attr:`exact_error` from :meth:`_compute_exact`. They implement the formula once in
    :meth:`_evaluate`.

    Attributes:
        name: registry name (set by :func:`integrands.register`).
        description: one line saying what the function is.
        source: where the function (and its exact value) comes from.
        separable: True when the integrand is a product of one-dimensional functions.
        sign_changing: True when the integrand takes both signs.
        fixed_dim: the only dimension the integrand exists in, or None.
        dim: number of variables.
        params: the parameters the instance was built with (``dim`` first).
        exact: the integral over the unit cube, float64.
        exact_error: 0.0 for a closed form, else the absolute tolerance of :attr:`exact`.

    Example:
        >>> import integrands, torch
        >>> f = integrands.get("gaussian", dim=2)
        >>> f(torch.full((3, 2), 0.5)).shape
        torch.Size([3])
    """

    name: ClassVar[str] = "integrand"
    description: ClassVar[str] = ""
    source: ClassVar[str] = ""
    separable: ClassVar[bool] = False
    sign_changing: ClassVar[bool] = False
    fixed_dim: ClassVar[int | None] = None

    dim: int
    params: dict[str, Any]
    exact: float
    exact_error: float

    def __init__(self, dim: int, **params: Any) -> None:
        self.dim = validate_dim(dim, self.fixed_dim)
        self.params = {"dim": self.dim, **params}
        self._cache: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}
        exact, error = self._compute_exact()
        self.exact = float(exact)
        self.exact_error = float(error)

    # -- to be implemented by subclasses -------------------------------------------------------

    @abstractmethod
    def _compute_exact(self) -> tuple[float, float]:
        """Return ``(exact, exact_error)`` for the current parameters."""

    @abstractmethod
    def _evaluate(self, x: Array, ops: Ops) -> Array:
        """Evaluate the integrand on a validated batch ``x`` of shape ``(n, dim)``."""

    # -- public API ----------------------------------------------------------------------------

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the integrand on a batch of points.

        Arguments:
            x: tensor of shape ``(n, dim)`` with points in ``[0, 1]^dim``; any floating dtype,
                any device.

        Returns:
            Tensor of shape ``(n,)`` with the same dtype and device as ``x``.

        Example:
            >>> import integrands, torch
            >>> integrands.get("polynomial", dim=3)(torch.full((1, 3), 0.5))
            tensor([0.7500])
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}; use .numpy()")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating point tensor, got {x.dtype}")
        self._check_shape(tuple(x.shape))
        return self._evaluate(x, TORCH_OPS)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        """Evaluate the integrand with numpy in float64.

        Arguments:
            x: array of shape ``(n, dim)`` with points in ``[0, 1]^dim``.

        Returns:
            float64 array of shape ``(n,)``.

        Example:
            >>> import integrands, numpy as np
            >>> integrands.get("polynomial", dim=3).numpy(np.full((1, 3), 0.5))
            array([0.75])
        """
        x = np.asarray(x, dtype=np.float64)
        self._check_shape(x.shape)
        return np.asarray(self._evaluate(x, NUMPY_OPS), dtype=np.float64)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.name}({args})"

    # -- helpers for subclasses ----------------------------------------------------------------

    def _const(self, attr: str, like: Array) -> Array:
        """Return the numpy attribute ``attr`` as an array matching ``like``.

        For torch inputs the conversion is cached per dtype and device, so that a CUDA
        evaluation copies each constant vector once.

        Arguments:
            attr: name of a float64 numpy array attribute of ``self``.
            like: the batch being evaluated.

        Returns:
            The constant as a numpy array or as a tensor of ``like``'s dtype and device.
        """
        value = getattr(self, attr)
        if not isinstance(like, torch.Tensor):
            return value
        key = (attr, like.dtype, like.device)
        cached = self._cache.get(key)
        if cached is None:
            cached = torch.as_tensor(value, dtype=like.dtype, device=like.device)
            self._cache[key] = cached
        return cached

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or shape[1] != self.dim:
            raise ValueError(f"{self.name} expects points of shape (n, {self.dim}), got {shape}")
