"""Randomized Sobol points: nested uniform scrambling (the default) or linear matrix scrambling.

One randomization of ``n`` Sobol points in ``dim`` dimensions, ``m = ceil(log2 n)``:

- **Nested uniform scrambling** (Owen's, :func:`nested_scrambled_sobol_array`, the default).
  In each coordinate every digit is flipped by a random bit that depends on all the digits
  above it (a random permutation of each dyadic interval's two halves, nested). The first
  ``m`` digits of ``2^m`` Sobol points are a permutation of ``0 … 2^m − 1`` in each
  coordinate, so every point's digits below the ``m``-th have a distinct prefix and come out
  i.i.d. uniform: the scrambled point is ``(π(a_i) + u_i) / 2^m``, ``π`` the nested random
  permutation of the top ``m`` digits ``a_i``, ``u_i`` uniform on ``[0, 1)``. It needs
  ``2^m − 1`` random bits per coordinate.
- **Linear matrix scrambling with a digital shift** (Matoušek's,
  :func:`linear_scrambled_sobol_array`): each direction number ``v`` (64 bits, most
  significant first) becomes ``L v`` for a random lower-triangular binary matrix ``L`` with a
  unit diagonal, and every point is XORed with a random 64-bit shift — the randomization of
  ``scipy.stats.qmc.Sobol(dim, scramble=True, bits=64)``, scrambling only the
  ``m`` direction numbers a set uses.

Both keep the net property of the unscrambled set, make each point uniform on the cube and
give the same variance of a set's mean (Owen 2003, "Variance with alternative scramblings of
digital nets"). They differ in the *shape* of the set means' distribution, and that decides
whether a Student-t error bar over ``K`` sets is honest: for smooth integrands the linear
scrambling's set means are heavy-tailed — most sets very accurate, a few far off — so the
studentized mean bunches near ±1 and too few runs land within 1σ (polynomial 4-D, 16 sets of
4,096 points: 54.0 % against Student t's 66.7 ± 3.8 %; with 8 sets of 8,192, 41.3 % against
64.9 ± 3.9 %), while nested uniform scrambling, whose estimates tend to normal (Loh 2003 proves
it for (0, m, d)-nets), gives 64.3 % and 64.7 % (600 repetitions each;
``benchmarks/results/rqmc_sets.md``, per integrand and number of sets).

Points are in the sequence's natural order (``x_i`` is the XOR of the ``v_j`` for the set bits
``j`` of ``i``; scipy uses the Gray-code order, which gives the same set for ``n = 2^m``). The
direction numbers are scipy's (Joe and Kuo's), read once per dimension (from its engine's
private ``_sv``, or, where a scipy has none, derived through its public API).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["MAX_DIM", "SCRAMBLES", "direction_numbers", "linear_scrambled_sobol_array",
           "nested_scrambled_sobol_array", "scrambled_sobol_array"]

#: Most dimensions scipy's Sobol direction numbers cover.
MAX_DIM = 21201
_BITS = 64
_ONE = np.uint64(1)
#: Digits of a float64 in ``[0, 1)``.
_MANTISSA = 53
#: The randomizations :func:`scrambled_sobol_array` offers, the default first.
SCRAMBLES = ("nested", "linear")


def direction_numbers(dim: int, m: int = _BITS) -> np.ndarray:
    """The first ``m`` unscrambled Sobol direction numbers, ``(dim, m)`` uint64, most
    significant bit first, read-only.

    Read from scipy's engine (its private ``_sv``: 64 of them, cached per dimension); where a
    scipy keeps none, derived through its public API (:func:`_public_direction_numbers`: the
    same numbers, at most 32 of them, i.e. sets of up to ``2^32`` points).
    """
    if not 1 <= dim <= MAX_DIM:
        raise ValueError(f"Sobol points need 1 <= dim <= {MAX_DIM}, got {dim}")
    private = _scipy_direction_numbers(dim)
    if private is not None:
        return private if m >= _BITS else private[:, :m]
    if m > 32:
        raise ValueError(f"sets of 2^{m} points need more direction numbers than the 32 this "
                         f"scipy gives through its public API (n exceeds the 2^32 points it "
                         f"covers)")
    return _public_direction_numbers(dim, m)


@functools.lru_cache(maxsize=32)
def _scipy_direction_numbers(dim: int) -> np.ndarray | None:
    """scipy's ``(dim, 64)`` direction numbers from its engine's private ``_sv`` (read-only),
    or ``None`` where it has none of that shape."""
    from scipy.stats import qmc

    sv = getattr(qmc.Sobol(dim, scramble=False, bits=_BITS), "_sv", None)
    if sv is None:
        return None
    sv = np.array(sv, dtype=np.uint64)
    if sv.shape != (dim, _BITS):
        return None
    sv.setflags(write=False)
    return sv


_PUBLIC: dict[int, np.ndarray] = {}


def _public_direction_numbers(dim: int, m: int) -> np.ndarray:
    """The first ``m <= 32`` direction numbers through scipy's public API, ``(dim, m)``.

    scipy's unscrambled points come in Gray-code order, and the one at position ``2^(j+1) − 1``
    (whose Gray code is ``2^j``) is ``v_j`` itself; ``fast_forward`` reaches it in ``O(2^j)``
    steps, so the cost is about that of drawing one set of ``2^m`` points, paid once per
    dimension (kept, and computed again when a larger set needs more). ``v_j`` has no digit beyond
    the ``(j+1)``-th, so 32-bit points give the first 32 exactly; they are shifted to the top
    of 64 bits.
    """
    from scipy.stats import qmc

    have = _PUBLIC.get(dim)
    if have is None or have.shape[1] < m:
        engine = qmc.Sobol(dim, scramble=False, bits=32)
        columns = []
        for j in range(m):
            engine.reset()
            engine.fast_forward((2 << j) - 1)
            columns.append(np.round(engine.random(1)[0] * 2.0**32).astype(np.uint64))
        have = np.stack(columns, axis=1) << np.uint64(_BITS - 32)
        have.setflags(write=False)
        _PUBLIC[dim] = have
    return have[:, :m]


def _parity(x: np.ndarray) -> np.ndarray:
    """The parity (0 or 1) of each uint64, as uint64."""
    x = x.copy()
    for s in (32, 16, 8, 4, 2, 1):
        x ^= x >> np.uint64(s)
    return x & _ONE


def _check(n: int, dim: int, max_log2: int) -> tuple[int, int, int]:
    """``(n, dim, m)`` with ``m = max(1, ceil(log2 n))``, after checking them."""
    n, dim = int(n), int(dim)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    m = max(1, math.ceil(math.log2(n)))
    if m > max_log2:
        raise ValueError(f"n = {n} exceeds the 2^{max_log2} points this randomization covers")
    direction_numbers(dim, m)  # checks dim, and m where scipy gives fewer than 64
    return n, dim, m


def _natural_order(v: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The ``2^m`` points ``first ⊕ (⊕ of v[:, j] over the set bits j of i)``, ``i = 0 … 2^m −
    1``, from the ``(dim, m)`` (scrambled or not) direction numbers ``v``."""
    m = v.shape[1]
    x = np.empty((1 << m, v.shape[0]), dtype=v.dtype)
    x[0] = first
    for j in range(m):
        x[1 << j: 2 << j] = x[: 1 << j] ^ v[:, j]
    return x


def _unscrambled_top(n: int, dim: int, m: int) -> np.ndarray:
    """The first ``m`` binary digits of the first ``n`` unscrambled Sobol points, as integers
    in ``[0, 2^m)`` (uint32, shape ``(n, dim)``, natural order; ``m <= 32``)."""
    v = (direction_numbers(dim, m) >> np.uint64(_BITS - m)).astype(np.uint32)
    return _natural_order(v, np.zeros(dim, dtype=np.uint32))[:n]


def nested_scrambled_sobol_array(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of one nested-uniformly scrambled Sobol sequence (Owen's scrambling).

    The nested permutation of the first ``m`` digits is built as a table of flips over the
    digit strings, level by level (the flips of the top ``k`` digits of every ``k``-digit
    prefix, shifted up, the random flip of digit ``k`` of that prefix added, then each entry
    repeated twice for the ``k + 1``-digit prefixes: about ``2^(m+1)`` operations per
    coordinate), and looked up once per point. The first ``2^m`` unscrambled points are built
    whatever ``n``, so a set just above a power of two costs twice the one at it. The
    scrambled top digits plus a uniform ``u`` in ``[0, 1)`` are added in float64; the sum
    rounds up to the next cell for ``u`` within ``2^(m-53)`` of 1 (a shift of the point by
    at most ``2^-53``, far below anything an estimate resolves).

    Arguments:
        n: number of points, at most ``2^32`` (a power of two keeps the net property of the
            whole set).
        dim: dimension (1 to :data:`MAX_DIM`).
        rng: the source of the scrambling's random bits.

    Returns:
        A float64 array of shape ``(n, dim)``, every value in ``[0, 1)``.
    """
    n, dim, m = _check(n, dim, 32)
    top = _unscrambled_top(n, dim, m)                            # distinct per coordinate
    table = np.zeros((dim, 1), dtype=np.uint32)                  # flips of the top k digits
    for k in range(m):                                           # ... by their k-digit prefix
        random = np.frombuffer(rng.bytes(dim * (((1 << k) + 7) >> 3)), dtype=np.uint8)
        bits = np.unpackbits(random.reshape(dim, -1), axis=1, count=1 << k)
        table = (table << np.uint32(1)) | bits
        if k < m - 1:  # the last level stays indexed by the top m - 1 digits
            table = np.repeat(table, 2, axis=1)
    index = top.astype(np.intp)
    index >>= 1
    index += np.arange(dim, dtype=np.intp) << (m - 1)           # row of each coordinate
    digits = top ^ np.take(table.ravel(), index)                 # the scrambled first m
    # digits below the m-th: i.i.d. uniform (each point's prefix is its own)
    x = rng.random(digits.shape)
    x += digits
    x *= 2.0**-m
    return np.minimum(x, 1.0 - 2.0**-_MANTISSA, out=x)


def scrambled_sobol_array(n: int, dim: int, rng: np.random.Generator,
                          scramble: str = "nested") -> np.ndarray:
    """``n`` points of one randomized Sobol sequence, float64 of shape ``(n, dim)`` in ``[0, 1)``.

    Arguments:
        n: number of points (a power of two keeps the net property of the whole set).
        dim: dimension (1 to :data:`MAX_DIM`).
        rng: the source of the randomization's random bits.
        scramble: ``"nested"`` (:func:`nested_scrambled_sobol_array`, the default) or
            ``"linear"`` (:func:`linear_scrambled_sobol_array`).
    """
    if scramble == "nested":
        return nested_scrambled_sobol_array(n, dim, rng)
    if scramble == "linear":
        return linear_scrambled_sobol_array(n, dim, rng)
    raise ValueError(f"scramble must be one of {SCRAMBLES}, got {scramble!r}")


def linear_scrambled_sobol_array(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of one linear-matrix-scrambled, digitally shifted Sobol sequence.

    Arguments:
        n: number of points (a power of two keeps the net property of the whole set).
        dim: dimension (1 to :data:`MAX_DIM`).
        rng: the source of the scrambling's random bits.

    Returns:
        A float64 array of shape ``(n, dim)``, every value in ``[0, 1)`` (the top 53 of the
        64 digits).
    """
    n, dim, m = _check(n, dim, _BITS)
    v = direction_numbers(dim, m)                                       # (dim, m)
    k = np.arange(_BITS, dtype=np.uint64)                               # output bit, MSB first
    diagonal = _ONE << (np.uint64(_BITS - 1) - k)
    above = ~((diagonal << _ONE) - _ONE)                                # bits more significant
    rows = rng.integers(0, 2**64, size=(dim, _BITS), dtype=np.uint64) & above | diagonal
    bits = _parity(rows[:, :, None] & v[:, None, :])                    # (dim, 64, m)
    scrambled = np.bitwise_or.reduce(bits << (np.uint64(_BITS - 1) - k)[None, :, None], axis=1)
    shift = rng.integers(0, 2**64, size=dim, dtype=np.uint64)
    x = _natural_order(scrambled, shift)[:n]
    return (x >> np.uint64(_BITS - 53)).astype(np.float64) * 2.0**-53
