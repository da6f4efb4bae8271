"""Every bad input of ``docs/bad_inputs.md``: a clear error naming the argument, or the
documented policy.

The ids (``B01`` ... ) are the row numbers of the table in ``docs/bad_inputs.md``. Runs that
need an integration use tiny explicit budgets and a small flow, so the whole file takes a few
seconds; statistical checks are fixed-seeded 5σ bounds.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from flowint import DEFAULTS, IntegrandError, Integrator, integrate

#: Small explicit settings: independent of the library's defaults, fast on 2 cores.
FAST: dict[str, Any] = {k: v for k, v in {
    "batch_size": 250,
    "seed": 0,
    "progress": False,
    "warmup": 1,
    "steps_per_batch": 2,
    "minibatch": None,
    "flow_options": {"hidden": 8, "bins": 8, "grid": True},  # grid: the warm-up is exercised
}.items() if k in DEFAULTS}
BUDGET = 2_000

#: ∫_{[0,1]²} exp(-|x - ½|² / 0.1) dx, in closed form.
G_EXACT = (math.sqrt(0.1 * math.pi) * math.erf(0.5 / math.sqrt(0.1))) ** 2


def g(x: torch.Tensor) -> torch.Tensor:
    """A smooth positive test integrand on the unit square."""
    return torch.exp(-((x - 0.5) ** 2).sum(-1) / 0.1)


def run(f: Callable, dim: int = 2, bounds: Any = None, **kw: Any):
    """``integrate`` with the small settings (overridable)."""
    settings = {**FAST, "budget": BUDGET, **kw}
    return integrate(f, dim, bounds, **settings)


def _with_nan(x: torch.Tensor) -> torch.Tensor:
    return g(x) * torch.where(x[:, 0] > 0.9, math.nan, 1.0)


# --------------------------------------------------------------------------- errors
#: (id, call, expected exception, regex the message must match)
ERRORS: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    ("B01-nan", lambda: run(_with_nan), IntegrandError, r"non-finite.*nan_policy='drop'"),
    ("B02-inf", lambda: run(lambda x: g(x) / (x[:, 0] > 0.1).double()), IntegrandError,
     r"non-finite value"),
    ("B04-short-output", lambda: run(lambda x: g(x)[:-1]), IntegrandError,
     r"returned shape \(\d+,\) for \d+ points"),
    ("B05-extra-axes", lambda: run(lambda x: x[:, :, None]), IntegrandError,
     r"returned shape \(\d+, 2, 1\)"),
    ("B06-scalar-output", lambda: run(lambda x: g(x).sum()), IntegrandError,
     r"returned shape \(\)"),
    ("B07-string-dtype", lambda: run(lambda x: np.array(["a"] * x.shape[0])), IntegrandError,
     r"not numeric"),
    ("B08-none", lambda: run(lambda x: None), IntegrandError, r"NoneType, which is not numeric"),
    ("B09-complex", lambda: run(lambda x: g(x) * (1 + 1j)), IntegrandError,
     r"complex values.*shape \(n, 2\)"),
    ("B10-raises", lambda: run(lambda x: 1 / 0), IntegrandError,
     r"raised ZeroDivisionError.*first point"),
    ("B11-python-list", lambda: run(lambda x: [1.0] * x.shape[0]), IntegrandError,
     r"Python list"),
    ("B15-empty-box", lambda: run(g, 2, [(0, 1), (1, 1)]), ValueError,
     r"bounds: lower >= upper on axis 1"),
    ("B16-inverted-box", lambda: run(g, 2, (1, 0)), ValueError, r"lower >= upper on axis 0"),
    ("B17-infinite-box", lambda: run(g, 2, (0, math.inf)), ValueError, r"bounds must be finite"),
    ("B18-bounds-length", lambda: run(g, 2, [(0, 1)] * 3), ValueError,
     r"bounds has 3 pairs but dim is 2"),
    ("B19-bounds-not-numbers", lambda: run(g, 2, "0,1"), ValueError,
     r"bounds must be numbers"),
    ("B20-dim-mismatch", lambda: run(lambda x: x[:, 3]), IntegrandError,
     r"raised IndexError"),
    ("B21-zero-budget", lambda: run(g, budget=0), ValueError, r"budget must be >= 1"),
    ("B22-tiny-budget", lambda: integrate(g, 2, budget=10, progress=False), ValueError,
     r"budget=10 is too small"),
    ("B23-nan-budget", lambda: run(g, budget=math.nan), ValueError,
     r"budget must be a positive integer"),
    ("B24-n-train-exceeds-budget", lambda: run(g, n_train=BUDGET + 1), ValueError,
     r"leaves nothing for the final estimate"),
    ("B25-not-callable", lambda: run(3.0), TypeError, r"f must be callable"),
    ("B26-negative-dim", lambda: run(g, -1), ValueError, r"dim must be an integer >= 1"),
    ("B27-float-dim", lambda: run(g, 2.0), ValueError, r"dim must be an integer >= 1"),
    ("B28-bool-dim", lambda: run(g, True), ValueError, r"dim must be an integer >= 1"),
    ("B29-unknown-setting", lambda: run(g, lerning_rate=1e-3), TypeError,
     r"unknown settings \['lerning_rate'\]; valid: .*'lr'"),
    ("B30-bad-loss", lambda: run(g, loss="mse"), ValueError, r"unknown loss 'mse'; choose"),
    ("B31-bad-nan-policy", lambda: run(g, nan_policy="ignore"), ValueError,
     r"nan_policy must be one of"),
    ("B32-zero-batch", lambda: run(g, batch_size=0), ValueError,
     r"batch_size must be None or an integer >= 2"),
    ("B32-float-batch", lambda: run(g, batch_size=250.5), ValueError,
     r"batch_size must be None or an integer >= 2"),
    ("B33-zero-max-batch", lambda: run(g, max_batch=0), ValueError,
     r"max_batch must be a positive integer"),
    ("B34-negative-lr", lambda: run(g, lr=-1.0), ValueError, r"(?i)learning rate"),
    ("B35-train-fraction", lambda: run(g, train_fraction=1.5), ValueError,
     r"train_fraction must be in \(0, 1\)"),
    ("B36-unknown-flow", lambda: run(g, flow="maf"), ValueError, r"unknown flow kind 'maf'"),
    ("B37-seed-type", lambda: run(g, seed="abc"), TypeError, r"seed must be"),
    ("B43-temper", lambda: run(g, temper=1.0), ValueError,
     r"temper must be None or a fraction in \[0, 1\)"),
]


_NAMES = re.compile(r"integrand|bounds|budget|dim|settings|loss|nan_policy|batch|lr|learning rate|"
                    r"train_fraction|flow|seed|callable|n_train|temper")


@pytest.mark.parametrize("call, exc, pattern", [c[1:] for c in ERRORS],
                         ids=[c[0] for c in ERRORS])
def test_bad_input_raises_clear_error(call: Callable[[], Any], exc: type[BaseException],
                                      pattern: str) -> None:
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert _NAMES.search(str(info.value)), "the message must name the argument at fault"


def test_exception_in_f_keeps_its_cause() -> None:
    """B10: the user's exception is chained, so its traceback is not lost."""
    with pytest.raises(IntegrandError) as info:
        run(lambda x: 1 / 0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_changing_output_width_raises() -> None:
    """B38: an integrand whose number of outputs changes between calls."""
    calls = [0]

    def f(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return torch.ones(x.shape[0], 1 if calls[0] == 1 else 2, dtype=x.dtype)

    with pytest.raises(IntegrandError, match="output width changed"):
        run(f)


# --------------------------------------------------------------------------- policies
def test_nan_policy_drop_counts_and_zeroes() -> None:
    """B03: ``nan_policy='drop'`` sets non-finite values to 0 and counts them."""
    r = run(_with_nan, nan_policy="drop")
    assert r.n_dropped > 0
    assert math.isfinite(r.mean) and math.isfinite(r.sdev) and r.sdev > 0
    assert "non-finite values dropped" in r.summary()


@pytest.mark.parametrize("scale", [1e200, 1e300, 1e-300], ids=["1e200", "1e300", "1e-300"])
def test_huge_or_tiny_finite_values_stay_finite(scale: float) -> None:
    """B12/B13: f² overflows (or underflows) float64, the estimate and its error do not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow warnings either
        r = run(lambda x: scale * g(x))
    assert math.isfinite(r.mean) and math.isfinite(r.sdev) and 0 < r.sdev < abs(r.mean)
    assert math.isfinite(r.rel_std) and math.isfinite(r.ess) and math.isfinite(r.chi2)
    assert all(math.isfinite(h.sdev) and math.isfinite(h.rel_std) for h in r.history)
    assert abs(r.mean / scale - G_EXACT) < 5 * r.sdev / scale


def test_scale_does_not_change_training() -> None:
    """B12/B13: the flow learns the same from ``c·f`` for any constant ``c`` (scaled weights)."""
    ref = run(g)
    for scale in (1e200, 1e-300):
        r = run(lambda x, s=scale: s * g(x))
        assert r.rel_std == pytest.approx(ref.rel_std, rel=1e-6)


def test_huge_vector_integrand_covariance() -> None:
    """B12 for a vector integrand: components finite, the error of component 0 finite."""
    r = run(lambda x: torch.stack([1e200 * g(x), g(x)], -1))
    assert math.isfinite(r.sdev) and r.sdev > 0
    assert all(math.isfinite(c) for c in r.components)


def test_all_zero_integrand_returns_zero_with_warning() -> None:
    """B14: 0 ± 0, with a warning that nothing was found."""
    with pytest.warns(RuntimeWarning, match="zero at every sampled point"):
        r = run(lambda x: torch.zeros(x.shape[0], dtype=x.dtype))
    assert r.mean == 0.0 and r.sdev == 0.0
    assert any("zero at every sampled point" in w for w in r.warnings)


@pytest.fixture(scope="module")
def reference_float64():
    """``g`` integrated with float64 training (the case where points could be shared)."""
    return run(g, dtype=torch.float64)


def test_integrand_mutating_its_input_is_harmless(reference_float64) -> None:
    """B39: ``f`` that modifies its argument in place cannot corrupt the sampled points."""

    def mutating(x: torch.Tensor) -> torch.Tensor:
        x -= 0.5
        return torch.exp(-(x**2).sum(-1) / 0.1)

    a = reference_float64
    b = run(mutating, dtype=torch.float64)
    assert b.mean == pytest.approx(a.mean, rel=1e-12)
    assert b.sdev == pytest.approx(a.sdev, rel=1e-12)


def test_numpy_integrand_mutating_its_input_is_harmless(reference_float64) -> None:
    """B39 with a numpy integrand (which gets a view of the points without the copy)."""

    def mutating(x: np.ndarray) -> np.ndarray:
        assert isinstance(x, np.ndarray)
        x -= 0.5
        return np.exp(-(x**2).sum(-1) / 0.1)

    a = reference_float64
    b = run(mutating, dtype=torch.float64, backend="numpy")
    assert b.mean == pytest.approx(a.mean, rel=1e-12)


@pytest.mark.parametrize("kind", ["bool", "int", "float32"])
def test_bool_int_float32_outputs_are_numbers(kind: str) -> None:
    """B40: booleans (indicator functions), integers and float32 are accepted as numbers."""
    exact = 0.5  # ∫ 1{x₀ < ½}
    convert = {"bool": lambda t: t, "int": lambda t: t.long(), "float32": lambda t: t.float()}

    def f(x: torch.Tensor) -> torch.Tensor:
        return convert[kind](x[:, 0] < 0.5)

    r = run(f)
    assert abs(r.mean - exact) < 5 * r.sdev


def test_float_budget_is_truncated() -> None:
    """B41: a float budget is accepted and truncated to an integer number of evaluations."""
    r = run(g, budget=BUDGET + 0.9)
    assert r.n_evals <= BUDGET


def test_single_column_output_is_squeezed() -> None:
    """B42: ``(n, 1)`` is read as a scalar integrand."""
    r = run(lambda x: g(x)[:, None])
    assert r.components == ()
    assert abs(r.mean - G_EXACT) < 5 * r.sdev


def test_integrator_validates_before_any_evaluation() -> None:
    """Argument errors come from the constructor, before ``f`` is ever called."""
    with pytest.raises(ValueError):
        Integrator(2, batch_size=-3)
    with pytest.raises(TypeError):
        Integrator(2, not_a_setting=1)
