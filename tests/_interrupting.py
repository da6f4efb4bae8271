"""An integrand wrapper for checkpoint tests: counts the calls and the points it is called
with, and raises :class:`KeyboardInterrupt` (a Ctrl-C) at its ``at``-th call."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["Interrupting"]


class Interrupting:
    """``f``, counting calls and points; a Ctrl-C at the ``at``-th call (never with ``None``).

    Arguments:
        f: the integrand wrapped.
        at: the call that raises :class:`KeyboardInterrupt`.
    """

    def __init__(self, f: Callable[[Tensor], Tensor], at: int | None = None):
        self.f, self.at, self.calls, self.points = f, at, 0, 0

    def __call__(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        self.points += int(x.shape[0])
        return self.f(x)
