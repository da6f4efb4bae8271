"""Shared fixtures of the test suite.

The flow tests run in float64: modules opt in with
``pytestmark = pytest.mark.usefixtures("float64_default")``, which sets torch's default dtype
for the duration of each test and restores the previous one afterwards (so tests elsewhere
that rely on torch's own default are unaffected). ``torch_single_thread`` likewise runs a
module of small-batch tests on one thread.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# The case registry (``registry.py``, ``cases_*.py``) is imported by module name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def float64_default() -> Iterator[None]:
    """Make float64 torch's default dtype inside the test; restore the old default after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def torch_single_thread() -> Iterator[None]:
    """Run torch on one thread inside a module of small-batch tests; restore the count after.

    Tests evaluate batches of a few points, where handing work to a second thread costs more
    than it saves (and much more when the cores are shared with other processes).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
