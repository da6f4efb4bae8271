"""Turn whatever the user passes as an integrand into a checked, batched function on the cube.

:class:`Integrand` wraps a user callable ``f`` over a box ``[lo, hi]^dim`` and evaluates it on
points ``u`` of the unit cube: ``F(u) = f(lo + (hi - lo) u) * prod(hi - lo)``, so that
``∫_{[0,1]^d} F = ∫_box f``. It accepts

* torch functions (get a ``torch.Tensor`` of shape ``(n, dim)``) and numpy functions (get a
  ``numpy.ndarray``); ``backend=None`` detects which on the first call;
* vegas batch integrands (``@vegas.batchintegrand`` / ``@vegas.rbatchintegrand``);
* scalar functions of one point with ``vectorized=False`` (slow but working);
* vector-valued integrands returning ``(n, k)``;
* logarithms of non-negative integrands (``log=True``): ``f`` returns ``log f`` and ``F``
  returns ``log F`` (``-inf`` where ``f = 0``), so that ``f`` may underflow float64;
* a prior transform instead of a box (``prior=``): ``F(u) = f(prior(u))``, the form nautilus
  and dynesty take a likelihood in, whose integral over the cube is the evidence;

evaluates in chunks of at most ``max_batch`` points, optionally through an executor
(``concurrent.futures`` or a Dask client's executor), and validates what comes back: shape,
dtype, finiteness. Values are returned in float64.
"""

from __future__ import annotations

import contextlib
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["Integrand", "IntegrandError", "map_points", "parse_bounds"]

_BACKENDS = (None, "torch", "numpy")
_NAN_POLICIES = ("raise", "drop")


class IntegrandError(ValueError):
    """The integrand raised, or returned something that cannot be integrated."""


def parse_bounds(bounds: Any, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Validate box bounds.

    Arguments:
        bounds: ``None`` (the unit cube), a pair ``(lo, hi)`` for every axis, or a sequence of
            ``dim`` pairs ``[(lo_1, hi_1), ...]``.
        dim: the number of dimensions.

    Returns:
        ``None`` for the unit cube, else ``(lo, hi)`` float64 arrays of shape ``(dim,)``.

    Raises:
        ValueError: wrong length, non-finite bounds, or ``lo >= hi`` on some axis.
    """
    if bounds is None:
        return None
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be numbers shaped (dim, 2) or (2,), got {bounds!r}") from exc
    if arr.shape == (2,):
        arr = np.broadcast_to(arr, (dim, 2))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"bounds must have shape ({dim}, 2) or (2,), got {arr.shape}")
    if arr.shape[0] != dim:
        raise ValueError(f"bounds has {arr.shape[0]} pairs but dim is {dim}")
    if not np.isfinite(arr).all():
        raise ValueError("bounds must be finite (map an infinite range onto a finite one first)")
    lo, hi = arr[:, 0].copy(), arr[:, 1].copy()
    bad = np.nonzero(lo >= hi)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"bounds: lower >= upper on axis {i} ({lo[i]} >= {hi[i]})")
    if np.all(lo == 0.0) and np.all(hi == 1.0):
        return None
    return lo, hi


def map_points(u: Tensor, box: tuple[np.ndarray, np.ndarray] | None,
               prior: Callable | None) -> Tensor:
    """Points of the unit cube mapped where ``f`` takes them: the box, or a prior transform.

    Arguments:
        u: float64 points of the unit cube, shape ``(n, dim)``.
        box: ``(lo, hi)`` from :func:`parse_bounds`, or ``None``.
        prior: a prior transform (cube to parameter space, batched; torch or numpy), or
            ``None``.

    Returns:
        float64 points, shape ``(n, k)`` (``k = dim`` unless the prior changes it).
    """
    if prior is not None:
        return _apply_prior(prior, u)
    if box is None:
        return u
    lo = torch.as_tensor(box[0], device=u.device, dtype=u.dtype)
    hi = torch.as_tensor(box[1], device=u.device, dtype=u.dtype)
    return lo + (hi - lo) * u


def _apply_prior(prior: Callable, u: Tensor) -> Tensor:
    """``prior(u)`` as a float64 tensor of shape ``(n, k)``: a torch call first, numpy if
    the prior does not take tensors."""
    try:
        out = prior(u.clone())
    except Exception as torch_exc:
        try:
            out = prior(u.cpu().numpy())
        except Exception as exc:
            raise IntegrandError(f"the prior transform raised {type(exc).__name__}: {exc}") \
                from torch_exc
    out = torch.as_tensor(np.asarray(out) if not isinstance(out, Tensor) else out)
    out = out.detach().to(device=u.device, dtype=torch.float64)
    if out.ndim == 1 and u.shape[1] == 1 and out.shape[0] == u.shape[0]:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] != u.shape[0]:
        raise IntegrandError(f"the prior transform returned shape {tuple(out.shape)} for "
                             f"{u.shape[0]} points; expected ({u.shape[0]}, k)")
    return out


class Integrand:
    """A user integrand evaluated on points of the unit cube (see the module docstring).

    Arguments:
        f: the integrand.
        dim: number of dimensions.
        bounds: integration box (see :func:`parse_bounds`); ``None`` is the unit cube.
        backend: ``"torch"``, ``"numpy"`` or ``None`` (detect on the first call).
        vectorized: ``False`` for a function of one point returning a number.
        max_batch: most points per call of ``f`` (bounds memory); ``None`` is unlimited.
        nan_policy: ``"raise"`` on NaN/inf values, or ``"drop"`` them (set to 0 and counted).
        executor: an object with ``submit(fn, *args) -> Future`` (``concurrent.futures``
            executors, ``distributed.Client``), or a factory of one: a class or a callable
            without arguments such as ``functools.partial(ProcessPoolExecutor, 4)``, called on
            first use. Chunks of ``max_batch`` points are evaluated on it, each resubmitted up
            to ``retries`` times if its worker dies. A process pool that broke (a worker was
            killed) takes no new work: only with a factory can it be replaced (see
            ``docs/distributed.md``). Workers receive CPU arrays/tensors, never CUDA ones.
        retries: resubmissions of a failed chunk when an executor is used.
        log: ``f`` returns ``log f`` of a non-negative integrand; the call returns ``log F``
            (``-inf`` is ``f = 0``; NaN and ``+inf`` follow ``nan_policy``, dropped values
            become ``-inf``). Scalar integrands only.
        prior: a prior transform from the cube to parameter space (batched, torch or numpy),
            applied instead of a box: ``F(u) = f(prior(u))``.

    Attributes:
        n_evals: points evaluated so far.
        n_dropped: non-finite values dropped so far (``nan_policy="drop"``).
        n_outputs: ``None`` for a scalar integrand, ``k`` for one returning ``(n, k)``.
        eval_time: seconds spent inside ``f``.
    """

    def __init__(self, f: Callable, dim: int, bounds: Any = None, *, backend: str | None = None,
                 vectorized: bool = True, max_batch: int | None = None,
                 nan_policy: str = "raise", executor: Executor | Any | None = None,
                 retries: int = 2, log: bool = False, prior: Callable | None = None):
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"dim must be an integer, got {type(dim).__name__}")
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if nan_policy not in _NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {_NAN_POLICIES}, got {nan_policy!r}")
        if max_batch is not None and int(max_batch) < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch}")
        if prior is not None and not callable(prior):
            raise TypeError(f"prior must be a callable (a prior transform), got "
                            f"{type(prior).__name__}")
        if prior is not None and parse_bounds(bounds, int(dim)) is not None:
            raise ValueError("give bounds or a prior transform, not both (the prior maps the "
                             "cube onto the parameter space)")
        factory = None
        if executor is not None and (isinstance(executor, type)
                                     or not callable(getattr(executor, "submit", None))):
            if not callable(executor):
                raise TypeError("executor must have a submit(fn, *args) method, or be a "
                                "factory (a callable without arguments) returning one")
            factory = executor
        self.f = f
        self.dim = int(dim)
        self.box = parse_bounds(bounds, self.dim)
        self.volume = 1.0 if self.box is None else float(np.prod(self.box[1] - self.box[0]))
        self.log = bool(log)
        self.prior = prior
        fcntype = getattr(f, "fcntype", None)
        self._rbatch = fcntype == "rbatch"
        if fcntype in ("lbatch", "rbatch") and backend is None:
            backend = "numpy"
        if fcntype == "scalar":
            vectorized = False
        self.backend = backend if vectorized else "numpy"
        self.vectorized = bool(vectorized)
        self.max_batch = None if max_batch is None else int(max_batch)
        self.nan_policy = nan_policy
        self.executor = executor
        self.retries = int(retries)
        self._factory = factory
        self._pool: Any = None if factory is not None else executor
        self._owned: list[Any] = []  # pools made from the factory, shut down with this object
        weakref.finalize(self, _shutdown_pools, self._owned)
        self.n_evals = 0
        self.n_dropped = 0
        self.n_outputs: int | None = None
        self.eval_time = 0.0

    # ------------------------------------------------------------------ evaluation
    def __call__(self, u: Tensor) -> Tensor:
        """Evaluate ``F(u)`` for unit-cube points ``u`` of shape ``(n, dim)``.

        Returns:
            float64 tensor of shape ``(n,)`` (or ``(n, k)`` for vector integrands) on ``u``'s
            device, Jacobian of the box included; with ``log=True``, ``log F``.

        Raises:
            IntegrandError: ``f`` raised, or returned a wrong shape, a non-numeric or complex
                dtype, or non-finite values under ``nan_policy="raise"``.
        """
        n = u.shape[0]
        if n == 0:
            shape = (0,) if self.n_outputs is None else (0, self.n_outputs)
            return torch.zeros(shape, dtype=torch.float64, device=u.device)
        x = u.detach().to(torch.float64, copy=True)  # f may modify its argument in place
        x = map_points(x, self.box, self.prior)
        t0 = time.perf_counter()
        size = self.max_batch or n
        starts = range(0, n, size)
        if self.executor is not None:
            values = self._evaluate_on_executor([x[s:s + size] for s in starts])
        else:
            values = [self._evaluate(x[s:s + size]) for s in starts]
        self.eval_time += time.perf_counter() - t0
        out = values[0] if len(values) == 1 else torch.cat(values)
        out = self._finite(out, x)
        self.n_evals += n
        if self.volume != 1.0:
            out = out + float(np.log(self.volume)) if self.log else out * self.volume
        return out.to(u.device)

    def _evaluate(self, x: Tensor) -> Tensor:
        """One chunk, in this process."""
        if self.backend is None:
            return self._detect(x)
        arg = self._argument(x)
        try:
            raw = self._raw_call(arg)
        except Exception as exc:
            raise self._wrap(exc, x) from exc
        return self._check(raw, x.shape[0])

    def _argument(self, x: Tensor) -> Any:
        if self.backend == "torch":
            return x
        arr = x.cpu().numpy()
        return arr.T if self._rbatch else arr

    def _raw_call(self, arg: Any) -> Any:
        if self.vectorized:
            return self.f(arg)
        return [self.f(point) for point in arg]

    def _detect(self, x: Tensor) -> Tensor:
        """First call with ``backend=None``: try torch, fall back to numpy."""
        try:
            with warnings.catch_warnings():
                # numpy functions handed a tensor may warn about __array_wrap__; we switch to
                # numpy below when that is what they return.
                warnings.simplefilter("ignore", DeprecationWarning)
                raw = self.f(x)
        except Exception as torch_exc:
            self.backend = "numpy"
            try:
                raw = self.f(x.cpu().numpy())
            except Exception as exc:
                raise self._wrap(exc, x) from torch_exc
            return self._check(raw, x.shape[0])
        self.backend = "torch" if isinstance(raw, Tensor) else "numpy"
        return self._check(raw, x.shape[0])

    def _evaluate_on_executor(self, chunks: Sequence[Tensor]) -> list[Tensor]:
        """Evaluate chunks on the executor, resubmitting chunks whose worker failed.

        A chunk whose worker died is resubmitted up to ``retries`` times; results keep the
        order of the chunks, so the outcome does not depend on failures. A broken
        ``concurrent.futures`` pool is replaced from the factory (when there is one) and every
        chunk it had not finished goes to the new pool.
        """
        if self.backend is None:
            # Detect the backend locally on a single point, so workers get a fixed convention.
            self._detect(chunks[0][:1])
        args = [self._argument(c.cpu()) for c in chunks]  # workers never get CUDA data
        fn = self.f if self.vectorized else _PointwiseCall(self.f)
        pool = self._executor()
        futures = [_submit(pool, fn, a) for a in args]
        attempts = [0] * len(args)
        results: list[Tensor] = []
        while len(results) < len(args):
            i = len(results)
            try:
                raw = futures[i].result()
            except Exception as exc:
                if attempts[i] >= self.retries or not _is_worker_failure(exc):
                    raise self._wrap(exc, chunks[i]) from exc
                attempts[i] += 1
                if isinstance(exc, BrokenExecutor):
                    pool = self._replace_executor(pool, exc)
                    for j in range(i, len(args)):
                        if j == i or not _succeeded(futures[j]):
                            futures[j] = _submit(pool, fn, args[j])
                else:
                    futures[i] = _submit(pool, fn, args[i])
                continue
            results.append(self._check(raw, chunks[i].shape[0]))
        return results

    def _executor(self) -> Any:
        """The executor in use, made from the factory on first use."""
        if self._pool is None:
            pool = self._factory()
            if not callable(getattr(pool, "submit", None)):
                raise TypeError(f"the executor factory returned {type(pool).__name__}, which "
                                "has no submit(fn, *args) method")
            self._owned.append(pool)
            self._pool = pool
        return self._pool

    def _replace_executor(self, pool: Any, exc: BaseException) -> Any:
        """A fresh pool in place of a broken one (only possible with a factory)."""
        if self._factory is None:
            raise IntegrandError(
                f"the executor broke ({type(exc).__name__}: {exc}) and takes no new work; pass "
                "a factory instead of the pool, e.g. executor=functools.partial("
                "ProcessPoolExecutor, 4), so that flowint can replace a broken pool"
            ) from exc
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
        if pool in self._owned:
            self._owned.remove(pool)
        self._pool = None
        return self._executor()

    def close(self) -> None:
        """Shut down the pools this object made from an executor factory (no-op otherwise)."""
        _shutdown_pools(self._owned)
        if self._factory is not None:
            self._pool = None

    # ------------------------------------------------------------------ validation
    def _wrap(self, exc: Exception, x: Tensor) -> IntegrandError:
        point = x[0].tolist()
        return IntegrandError(
            f"the integrand raised {type(exc).__name__}: {exc} "
            f"(on a batch of {x.shape[0]} points; first point {point})"
        )

    def _check(self, raw: Any, n: int) -> Tensor:
        if isinstance(raw, list) and self.vectorized:
            raise IntegrandError(
                "the integrand returned a Python list; return a numpy array or torch tensor "
                "of shape (n,)"
            )
        if isinstance(raw, Tensor):
            val = raw.detach()
        else:
            try:
                val = torch.as_tensor(np.asarray(raw))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise IntegrandError(
                    f"the integrand returned {type(raw).__name__}, which is not numeric"
                ) from exc
        if val.is_complex():
            raise IntegrandError(
                "the integrand returned complex values; integrate the real and imaginary parts "
                "as two components of a vector integrand, shape (n, 2)"
            )
        if not (val.dtype == torch.bool or val.is_floating_point() or _is_integer(val)):
            raise IntegrandError(f"the integrand returned dtype {val.dtype}, not a number")
        val = val.to(torch.float64)
        if self._rbatch and val.ndim == 2 and val.shape[-1] == n:
            val = val.T
        if val.ndim == 2 and val.shape == (n, 1):
            val = val[:, 0]
        if val.ndim == 0 or val.shape[0] != n or val.ndim > 2:
            raise IntegrandError(
                f"the integrand returned shape {tuple(val.shape)} for {n} points; "
                f"expected ({n},) or ({n}, k)"
            )
        k = None if val.ndim == 1 else int(val.shape[1])
        if k is not None and self.log:
            raise IntegrandError(f"with log=True the integrand must return (n,) values of "
                                 f"log f, got shape {tuple(val.shape)}")
        if self.n_outputs is None and self.n_evals == 0:
            self.n_outputs = k
        elif k != self.n_outputs:
            raise IntegrandError(f"the integrand's output width changed from {self.n_outputs} "
                                 f"to {k}")
        return val

    def _finite(self, val: Tensor, x: Tensor) -> Tensor:
        bad = torch.isnan(val) | (val == torch.inf) if self.log else ~torch.isfinite(val)
        if val.ndim == 2:
            bad = bad.any(-1)
        nbad = int(bad.sum())
        if nbad == 0:
            return val
        if self.nan_policy == "raise":
            i = int(torch.nonzero(bad)[0])
            raise IntegrandError(
                f"the integrand returned {nbad} non-finite value(s) (NaN or inf) out of "
                f"{val.shape[0]}; e.g. f({x[i].tolist()}) = {val[i].tolist()}. "
                "Fix the integrand or pass nan_policy='drop' to count them as zero"
                + (" (log f = -inf is allowed: f = 0)." if self.log else ".")
            )
        self.n_dropped += nbad
        val = val.clone()
        val[bad] = -torch.inf if self.log else 0.0
        return val

    def __repr__(self) -> str:
        name = getattr(self.f, "__name__", type(self.f).__name__)
        return (f"Integrand({name}, dim={self.dim}, backend={self.backend!r}, "
                f"volume={self.volume:g}{', log=True' if self.log else ''}"
                f"{', prior' if self.prior is not None else ''})")


class _PointwiseCall:
    """Picklable wrapper that maps a scalar function over the rows of an array."""

    def __init__(self, f: Callable):
        self.f = f

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        return np.asarray([self.f(p) for p in arr], dtype=np.float64)


def _is_integer(val: Tensor) -> bool:
    return val.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _is_worker_failure(exc: BaseException) -> bool:
    """Whether an executor failure is the worker's fault (worth a retry), not the integrand's."""
    names = {type(exc).__name__, *(c.__name__ for c in type(exc).__mro__)}
    return bool(names & {"BrokenProcessPool", "KilledWorker", "CommClosedError",
                         "CancelledError", "BrokenExecutor"})


def _submit(pool: Any, fn: Callable, arg: Any) -> Any:
    """Submit one chunk; a pool that is already broken gives a failed future, not an error."""
    try:
        # ``fn`` itself is sent (no wrapper of ours), so workers need not import torch.
        if type(pool).__module__.split(".")[0] == "distributed":
            # Dask: a fresh key per submission, so a resubmitted chunk is computed again.
            return pool.submit(fn, arg, pure=False)
        return pool.submit(fn, arg)
    except BrokenExecutor as exc:
        failed: Future = Future()
        failed.set_exception(exc)
        return failed


def _succeeded(fut: Any) -> bool:
    return fut.done() and not fut.cancelled() and fut.exception() is None


def _shutdown_pools(pools: list[Any]) -> None:
    while pools:
        with contextlib.suppress(Exception):
            pools.pop().shutdown(wait=False, cancel_futures=True)
