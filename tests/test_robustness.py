"""Numerical robustness of the integrator end to end (the splines themselves are property-tested
in ``tests/test_splines.py``).

* a non-finite loss or gradient during training rolls the flow back to its last good state and
  halves the learning rate, instead of crashing or poisoning the flow;
* float32 training in 64 and 128 dimensions stays finite;
* extremely narrow peaks (width 1e-3 in 2-d, 1e-2 in 8-d) give no NaN anywhere in the result,
  and a warning that the number is not to be trusted.

Budgets and settings are explicit and small; seeds are fixed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

import flowint
import flowint.run.trainer as trainer_module
import integrands
from flowint import Integrator, Result, integrate

#: Small explicit settings (independent of the library's defaults); ``minibatch=None`` makes each
#: gradient step use one batch's worth of points, where the installed flowint has that setting.
SMALL: dict[str, Any] = {k: v for k, v in {"progress": False, "minibatch": None,
                                           "flow_options": {"hidden": 8, "bins": 8}}.items()
                         if k in flowint.DEFAULTS}


def _poisoned_loss(bad_calls: set[int], kind: str) -> Callable[..., Any]:
    """``surrogate_loss`` that misbehaves on the given (1-based) calls.

    ``kind="loss"``: the loss is NaN. ``kind="grad"``: the loss is finite but its gradient is
    NaN (``sqrt`` at 0), so the optimizer step writes NaN into the parameters.
    """
    original = trainer_module.surrogate_loss
    calls = [0]

    def loss(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        calls[0] += 1
        value, val = original(*args, **kwargs)
        if calls[0] in bad_calls:
            if kind == "loss":
                return value * math.nan, val
            return value + torch.sqrt(value * 0.0), val  # finite value, NaN gradient
        return value, val

    return loss


def _gaussian(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((x - 0.5) ** 2).sum(-1) / 0.05)


def _state(integ: Integrator) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in integ.flow.state_dict().items()}


@pytest.mark.parametrize("kind", ["loss", "grad"])
def test_non_finite_step_rolls_back_to_last_good_state(monkeypatch: pytest.MonkeyPatch,
                                                       kind: str) -> None:
    monkeypatch.setattr(trainer_module, "surrogate_loss", _poisoned_loss({1}, kind))
    integ = Integrator(2, seed=0, batch_size=250, warmup=0, steps_per_batch=1, **SMALL)
    before = _state(integ)
    with pytest.warns(RuntimeWarning, match="non-finite loss during training: rolled back"):
        integ.train(_gaussian, 250)  # one iteration, whose only step is poisoned
    after = _state(integ)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(p).all() for p in integ.flow.parameters())


def test_nan_loss_once_run_completes_with_halved_learning_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = {"seed": 1, "batch_size": 250, "warmup": 1, "steps_per_batch": 2, "lr": 4e-3,
                **SMALL}
    ref = Integrator(2, **settings)
    ref_hist = ref.train(_gaussian, 2000)

    monkeypatch.setattr(trainer_module, "surrogate_loss", _poisoned_loss({5}, "loss"))
    integ = Integrator(2, **settings)
    with pytest.warns(RuntimeWarning, match="halved the learning rate"):
        hist = integ.train(_gaussian, 2000)
    monkeypatch.undo()
    # Call 5 is the first step of the third training iteration (two steps per iteration).
    ratios = [h.lr / r.lr for h, r in zip(hist, ref_hist, strict=True) if h.phase == "train"]
    assert ratios[:3] == pytest.approx([1.0, 1.0, 1.0])
    assert ratios[3:] == pytest.approx([0.5] * (len(ratios) - 3))
    assert integ.settings["lr"] == 4e-3  # restored for the next call
    assert all(torch.isfinite(p).all() for p in integ.flow.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = integ.estimate(_gaussian, 4000)
    exact = (math.sqrt(0.05 * math.pi) * math.erf(0.5 / math.sqrt(0.05))) ** 2
    assert abs(r.mean - exact) < 5 * r.sdev


def test_integrate_survives_repeated_nan_losses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "surrogate_loss", _poisoned_loss({1, 2, 3, 7}, "loss"))
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        r = integrate(_gaussian, 2, budget=4000, n_train=2000, seed=2, batch_size=250, warmup=0,
                      steps_per_batch=2, **SMALL)
    _assert_no_nan(r)


# --------------------------------------------------------------------------- float32, high d
@pytest.mark.parametrize("dim", [64, 128])
def test_float32_training_in_high_dimension_stays_finite(dim: int) -> None:
    f = integrands.get(f"gaussian:dim={dim}")
    integ = Integrator(dim, seed=3, batch_size=64, warmup=1, steps_per_batch=2,
                       dtype=torch.float32, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no roll-back may be needed either
        hist = integ.train(f, 64 * 3)  # one grid refinement, two training iterations
    assert all(p.dtype == torch.float32 for p in integ.flow.parameters())
    assert all(torch.isfinite(p).all() for p in integ.flow.parameters())
    train = [h for h in hist if h.phase == "train"]
    assert train and all(math.isfinite(h.loss) and math.isfinite(h.mean) for h in train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained 64-d flow is rightly warned about
        r = integ.estimate(f, 256)
    _assert_no_nan(r)
    assert r.sdev > 0 and math.isfinite(r.mean)


# --------------------------------------------------------------------------- extreme peaks
def _narrow_peak(width: float, dim: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """A normalised Gaussian of the given width, off-centre, and its exact integral."""
    centre = 0.37
    norm = (width * math.sqrt(math.pi)) ** (-dim)

    def f(x: torch.Tensor) -> torch.Tensor:
        return norm * torch.exp(-((x - centre) ** 2).sum(-1) / width**2)

    one = 0.5 * (math.erf((1 - centre) / width) + math.erf(centre / width))
    return f, one**dim


def _assert_no_nan(r: Result) -> None:
    numbers = [r.mean, r.sdev, r.chi2, r.Q, r.rel_std, r.ess, r.unweighting_efficiency,
               r.max_weight_share, *r.components]
    assert not any(math.isnan(x) for x in numbers), r
    for h in r.history:
        assert not any(math.isnan(x) for x in (h.mean, h.sdev, h.rel_std)), h
        if h.phase == "train":
            assert not math.isnan(h.lr)
    assert math.isfinite(r.mean) and math.isfinite(r.sdev)


#: The warning that says the flow missed the peak (and the error bar may be too small).
MISSED = "the flow may have missed part of the integrand"
#: The warning of a run that never saw the peak at all.
ZERO = "the integrand was zero at every sampled point"


# These peaks are far too narrow for the flow of ``SMALL`` (8 hidden units, two gradient steps
# per batch) to learn from 8000 training calls: the premise of each test is that the run ends
# without a NaN *and* says that its number is not to be trusted, with the warning that fits
# (the estimate itself is then wrong or its error bar meaningless, see the comments).
@pytest.mark.parametrize("width, dim, warning", [(1e-3, 2, MISSED), (1e-2, 8, ZERO)],
                         ids=["2d-1e-3", "8d-1e-2"])
def test_extreme_peak_gives_no_nan(width: float, dim: int, warning: str) -> None:
    # observed: 2d-1e-3 gives 6.8(59)e-08 against 1 with an effective sample size of 1.3;
    # 8d-1e-2 gives 0(0): no sampled point ever reached the peak
    f, exact = _narrow_peak(width, dim)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        r = integrate(f, dim, budget=12_000, n_train=8000, seed=4, batch_size=1000,
                      steps_per_batch=2, **SMALL)
    _assert_no_nan(r)
    assert any(warning in w for w in r.warnings), (str(r), exact, r.warnings)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_peak_float32_and_float64(dtype: torch.dtype) -> None:
    # observed: float32 gives 0.0020(14) against 1 (effective sample size 1.9), float64
    # 3.1(31) (one point carries 99.6 % of the weight): both must say so
    f, exact = _narrow_peak(3e-3, 2)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        r = integrate(f, 2, budget=12_000, n_train=8000, seed=5, batch_size=1000, dtype=dtype,
                      steps_per_batch=2, **SMALL)
    _assert_no_nan(r)
    assert any(MISSED in w for w in r.warnings), (str(r), exact, r.warnings)
