"""One place where seeds become random generators.

Every public entry point of flowint takes a single ``seed`` argument and passes it through
:func:`make_generator`; nothing in the library touches torch's or numpy's global random state.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SeedLike", "make_generator", "numpy_rng"]

SeedLike = int | torch.Generator | np.random.Generator | None


def make_generator(
    seed: SeedLike = None, device: torch.device | str | None = None
) -> torch.Generator:
    """Return a ``torch.Generator`` on ``device`` built from ``seed``.

    Arguments:
        seed: ``None`` (fresh entropy), an ``int``, a ``numpy.random.Generator`` (an integer is
            drawn from it) or a ``torch.Generator`` (returned as is when it lives on ``device``).
        device: the device the generator must live on (default CPU).

    Returns:
        A seeded ``torch.Generator``.

    Raises:
        TypeError: if ``seed`` is of another type.
        ValueError: if ``seed`` is a negative integer.
    """
    device = torch.device("cpu" if device is None else device)
    if isinstance(seed, torch.Generator):
        if seed.device.type == device.type:
            return seed
        # Derive a generator on the target device from the given one, deterministically.
        seed = int(torch.randint(0, 2**62, (1,), generator=seed).item())
    gen = torch.Generator(device=device)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 2)
    elif isinstance(seed, np.random.Generator):
        seed = int(seed.integers(0, 2**62))
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            f"seed must be None, an int, or a torch/numpy Generator, got {type(seed)!r}"
        )
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    gen.manual_seed(int(seed))
    return gen


def numpy_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from a torch generator (advances ``gen``)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen).item()))
