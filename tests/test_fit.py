"""Maximum-likelihood density estimation with ``flowint.fit``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from flowint import fit
from flowint.fit import FitResult
from flowint.flows import affine_flow, maf_flow, make_flow

pytestmark = pytest.mark.usefixtures("float64_default")

#: The fitted flow's held-out mean log-likelihood must come this close to the true density's.
MARGIN_NATS = 0.15


class _Mixture:
    """An equal-weight mixture of two correlated 2-D Gaussians."""

    components = (
        multivariate_normal([-1.5, 0.0], [[0.5, 0.3], [0.3, 0.5]]),
        multivariate_normal([1.5, 0.5], [[0.3, -0.1], [-0.1, 0.4]]),
    )

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, 2, n)
        draws = [c.rvs(n, random_state=rng) for c in self.components]
        return np.where(pick[:, None] == 0, draws[0], draws[1])

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(*(c.logpdf(x) for c in self.components)) - np.log(2.0)


def test_fitted_flow_reaches_the_true_held_out_likelihood():
    target = _Mixture()
    train, test = target.sample(4000, seed=0), target.sample(20000, seed=1)
    flow = maf_flow(2, "affine", n_layers=4, hidden=32, seed=0)
    result = fit(flow, train, epochs=60, batch_size=256, lr=5e-3, patience=10, seed=0)
    with torch.no_grad():
        fitted = flow.log_prob(torch.as_tensor(test)).mean().item()
    true = target.logpdf(test).mean()
    assert true - MARGIN_NATS < fitted < true + 0.05  # a held-out score cannot beat the truth
    assert result.n_train == 3200 and result.n_val == 800
    assert result.val_nll[result.best_epoch] == min(result.val_nll)


def test_best_parameters_are_restored():
    data = _Mixture().sample(600, seed=2)
    flow = maf_flow(2, "affine", n_layers=2, hidden=16, seed=1)
    # A large learning rate makes the validation NLL jump around after the first epochs.
    result = fit(flow, data, epochs=15, batch_size=32, lr=0.05, patience=3, seed=3)
    assert result.epochs == len(result.train_nll) == len(result.val_nll)
    assert result.best_epoch < result.epochs - 1  # later epochs were worse: restoring matters
    gen = torch.Generator().manual_seed(3)
    order = torch.randperm(600, generator=gen)
    val = torch.as_tensor(data)[order[:120]]
    with torch.no_grad():
        restored = -flow.log_prob(val).mean().item()
    assert restored == pytest.approx(min(result.val_nll), abs=1e-10)
    assert result.best_nll == min(result.val_nll)
    if result.stop_reason == "patience":
        assert result.epochs == result.best_epoch + 1 + 3


def test_weights_tilt_the_fit():
    """Importance weights exp(x1 - 1/2) turn N(0, 1) data into a fit of N(1, 1) along x1."""
    gen = torch.Generator().manual_seed(4)
    data = torch.randn(4000, 2, generator=gen)
    weights = torch.exp(data[:, 0] - 0.5)
    flow = affine_flow(2, "diagonal")
    fit(flow, data, weights=weights, epochs=60, batch_size=500, lr=0.05, val_fraction=0.0,
        patience=None, seed=5)
    shift = flow.transforms[0].shift.detach()
    # Weighted-sample standard error of the mean: sd(w x)/mean(w)/sqrt(n) ~ 1.7/sqrt(4000).
    assert abs(shift[0].item() - 1.0) < 5 * 1.7 / 4000**0.5
    assert abs(shift[1].item()) < 5 * 1.7 / 4000**0.5


def test_no_validation_split_monitors_training_loss_and_result_reads_well(capsys):
    data = torch.randn(300, 2, generator=torch.Generator().manual_seed(6))
    result = fit(affine_flow(2), data, epochs=3, val_fraction=0.0, seed=0, progress=False)
    assert result.n_val == 0 and result.val_nll == ()
    assert result.stop_reason == "epochs" and not result.stopped_early
    assert result.best_nll == min(result.train_nll)
    assert result.history == {"train_nll": list(result.train_nll), "val_nll": []}
    assert "best train NLL" in str(result) and "epoch" in result.summary()
    assert pickle.loads(pickle.dumps(result)) == result
    assert capsys.readouterr().err == ""


def test_progress_bar_on_request(capsys):
    data = torch.randn(100, 2, generator=torch.Generator().manual_seed(7))
    fit(affine_flow(2), data, epochs=2, seed=0, progress=True)
    assert "fit" in capsys.readouterr().err


def test_seed_makes_fits_reproducible():
    data = _Mixture().sample(300, seed=8)
    results, states = [], []
    for _ in range(2):
        flow = maf_flow(2, n_layers=1, hidden=8, seed=0)
        results.append(fit(flow, data, epochs=2, seed=9))
        states.append(flow.state_dict())
    assert results[0].train_nll == results[1].train_nll
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_inputs_are_validated_with_named_arguments():
    flow = affine_flow(2)
    good = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"data must have shape \(n, 2\)"):
        fit(flow, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="data contains NaN"):
        fit(flow, np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="outside the unit cube"):
        fit(make_flow(2, seed=0), np.full((10, 2), 1.5))
    with pytest.raises(ValueError, match=r"weights must have shape \(10,\)"):
        fit(flow, good, weights=np.ones(9))
    with pytest.raises(ValueError, match="weights must be finite"):
        fit(flow, good, weights=-np.ones(10))
    with pytest.raises(ValueError, match="val_fraction"):
        fit(flow, good, val_fraction=1.0)
    with pytest.raises(ValueError, match="epochs"):
        fit(flow, good, epochs=0)
    with pytest.raises(ValueError, match="at least 2 points"):
        fit(flow, np.zeros((1, 2)))
    with pytest.raises(TypeError, match="data must"):
        fit(flow, "points")


def test_cube_flow_fits_cube_data():
    data = torch.rand(500, 2, generator=torch.Generator().manual_seed(10)) ** 2
    flow = maf_flow(2, "rqs", n_layers=1, hidden=8, domain="cube", seed=0)
    result = fit(flow, data, epochs=5, lr=1e-2, seed=0)
    assert isinstance(result, FitResult)
    assert result.val_nll[result.best_epoch] < 0.0  # better than the uniform density (NLL 0)
