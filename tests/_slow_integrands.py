"""Picklable integrands for the executor, checkpoint and CLI tests.

Worker processes (``concurrent.futures`` pools, Dask workers) receive integrands by pickle, which
stores module-level functions and classes by reference: they must live in an importable module
such as this one (``tests/`` is on ``sys.path`` through ``conftest.py``, and child processes
inherit that path).
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

__all__ = ["CountCalls", "CtrlC", "KillOnce", "Sleepy", "always_kill", "gauss", "gauss_exact",
           "raises"]

#: Centre and width of :func:`gauss`.
CENTRE, WIDTH = 0.4, 0.2


def gauss(x: np.ndarray) -> np.ndarray:
    """``exp(-sum((x - 0.4)^2) / 0.04)``, a numpy integrand on the unit cube."""
    return np.exp(-((np.asarray(x) - CENTRE) ** 2).sum(-1) / WIDTH**2)


def gauss_exact(dim: int) -> float:
    """The integral of :func:`gauss` over ``[0, 1]^dim``."""
    from math import erf, pi, sqrt

    one = WIDTH * sqrt(pi) / 2 * (erf((1 - CENTRE) / WIDTH) + erf(CENTRE / WIDTH))
    return one**dim


def raises(x: np.ndarray) -> np.ndarray:
    """An integrand that always raises (an error of the integrand, not of a worker)."""
    raise ValueError("integrand failure")


class Sleepy:
    """:func:`gauss` that also sleeps, per call and per point (a stand-in for a costly f)."""

    def __init__(self, per_call: float = 0.0, per_point: float = 0.0):
        self.per_call = per_call
        self.per_point = per_point

    def __call__(self, x: np.ndarray) -> np.ndarray:
        time.sleep(self.per_call + self.per_point * len(x))
        return gauss(x)


class KillOnce:
    """:func:`gauss`, except that the first worker process to call it dies by SIGKILL.

    ``marker`` is created atomically by the victim, so exactly one call in one worker dies,
    ``delay`` seconds into its evaluation; calls in the process that built the object (the
    test itself, e.g. for backend detection) never kill.
    """

    def __init__(self, marker: str, delay: float = 0.0):
        self.marker = str(marker)
        self.delay = delay
        self.parent = os.getpid()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if os.getpid() != self.parent:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(fd)
                time.sleep(self.delay)
                os.kill(os.getpid(), signal.SIGKILL)
        return gauss(x)


def always_kill(x: np.ndarray) -> np.ndarray:
    """Kills whichever process evaluates it (a chunk that can never be computed)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return gauss(x)  # pragma: no cover


class CtrlC:
    """``fn`` (default :func:`gauss`) that raises KeyboardInterrupt (a Ctrl-C) at its
    ``at``-th call (``None``: never), counting its calls."""

    def __init__(self, at: int | None, fn=None):
        self.at, self.calls, self.fn = at, 0, fn or gauss

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.fn(x)


class CountCalls:
    """:func:`gauss` that counts its calls and points (in the process that evaluates it)."""

    def __init__(self, per_call: float = 0.0):
        self.calls = 0
        self.points = 0
        self.per_call = per_call

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.points += len(x)
        if self.per_call:
            time.sleep(self.per_call)
        return gauss(x)
