"""The registry of every bijection and flow configuration that the test battery runs over.

``BIJECTION_CASES`` and ``FLOW_CASES`` are lists of :class:`Case`. Each case has an ``id``
(the pytest id), a ``factory`` that builds a *fresh* float64 module whose parameters are
randomised away from the identity (seeded, so every build is identical), the ``domain`` the
map lives on (``"cube"`` for ``[0,1]^d``, ``"real"`` for ``R^d``) and whether its Jacobian is
``triangular`` (up to a reordering of the coordinates, with a non-zero diagonal: coupling
layers, elementwise maps, autoregressive maps; not permutations or compositions of couplings).

Bijection cases build :class:`flowint.flows.Bijection` objects; flow cases build
:class:`flowint.flows.Flow` objects (both have ``forward`` and ``inverse`` returning
``(output, ladj)``, see ``flowint/flows/base.py`` for the sign convention).

The cases are collected from two modules:

* ``tests/cases_cube.py``: the bijections and flows of the unit cube (``flowint.flows``);
* ``tests/cases_families.py`` (optional; collected when it exists): other flow families.

Adding cases
------------
In either module (or a new one listed in ``_CASE_MODULES``), append to its module-level
``BIJECTION_CASES`` or ``FLOW_CASES``::

    from registry import Case, perturbed

    BIJECTION_CASES.append(
        Case("affine-coupling-d4", lambda: perturbed(AffineCoupling(mask), seed=3),
             domain="real"),
    )

An entry may also be a plain tuple ``(id, factory)`` or ``(id, factory, domain[, triangular])``;
a tuple without a domain takes the module's ``DOMAIN`` attribute (``domain`` is accepted too),
else ``"cube"``. The factory must return a new module on every call, in float64, with
parameters moved away from the identity (use :func:`perturbed`), and must not touch torch's
global random state (build under :func:`seeded` when construction draws random numbers).
Ids must be unique across all modules. Every test in ``tests/test_bijections.py`` then runs
on the new case.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Case", "BIJECTION_CASES", "FLOW_CASES", "as_case", "perturbed", "seeded"]

DOMAINS = ("cube", "real")

_CASE_MODULES = ("cases_cube", "cases_families")


@dataclass(frozen=True)
class Case:
    """One configuration of the battery.

    Attributes:
        id: unique pytest id.
        factory: builds a fresh float64 module with parameters away from the identity.
        domain: ``"cube"`` (maps ``[0,1]^d`` onto itself) or ``"real"`` (maps ``R^d``).
        triangular: whether the Jacobian is triangular up to a reordering of coordinates.
    """

    id: str
    factory: Callable[[], nn.Module]
    domain: str = "cube"
    triangular: bool = True

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"case {self.id!r}: domain must be one of {DOMAINS}")

    def build(self) -> nn.Module:
        """A fresh module from the factory."""
        return self.factory()

    def __repr__(self) -> str:
        return f"Case({self.id!r}, domain={self.domain!r}, triangular={self.triangular})"


def as_case(entry: Any, default_domain: str = "cube") -> Case:
    """Normalise a registry entry (a :class:`Case` or a tuple) to a :class:`Case`."""
    if isinstance(entry, Case):
        return entry
    entry = tuple(entry)
    if not 2 <= len(entry) <= 4:
        raise ValueError(f"a case is (id, factory[, domain[, triangular]]), got {entry!r}")
    ident, factory, *rest = entry
    domain = rest[0] if rest else default_domain
    triangular = bool(rest[1]) if len(rest) > 1 else True
    return Case(str(ident), factory, domain, triangular)


def _seed_of(key: str | int) -> int:
    return key if isinstance(key, int) else zlib.crc32(key.encode())


@contextlib.contextmanager
def seeded(key: str | int) -> Iterator[None]:
    """Seed torch's CPU generator inside the block and restore the global state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_of(key))
        yield


def perturbed(module: nn.Module, seed: str | int, scale: float = 0.05) -> nn.Module:
    """Cast to float64 and add ``scale * randn`` to every parameter (seeded; global RNG kept).

    Arguments:
        module: the module (changed in place).
        seed: an int or a string (hashed) that fixes the perturbation.
        scale: standard deviation of the perturbation.

    Returns:
        The module.
    """
    module = module.to(torch.float64)
    gen = torch.Generator().manual_seed(_seed_of(seed))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device))
    return module


def _collect(kind: str) -> list[Case]:
    cases: list[Case] = []
    for name in _CASE_MODULES:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        default = getattr(module, "DOMAIN", getattr(module, "domain", "cube"))
        cases += [as_case(entry, default) for entry in getattr(module, kind, [])]
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate {kind} ids: {duplicates}")
    return cases


BIJECTION_CASES: list[Case] = _collect("BIJECTION_CASES")
FLOW_CASES: list[Case] = _collect("FLOW_CASES")
