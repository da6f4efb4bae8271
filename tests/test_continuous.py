"""Continuous-time flows (lecture notes §3.6): the log-determinant of Theorem 3.1 on a linear
field, Hutchinson's estimator, adjoint gradients (Theorem 3.2) against backpropagation through
the solver, round trips, and the optional dependency."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from scipy.linalg import expm
from scipy.stats import multivariate_normal

from flowint.flows import ContinuousFlow, LinearField, TimeMLP, cnf_flow, load_flow

pytestmark = pytest.mark.usefixtures("float64_default")

TIGHT = {"rtol": 1e-10, "atol": 1e-10}


def _matrix(dim: int, seed: int) -> torch.Tensor:
    return 0.5 * torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed))


def _points(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _randomise(module: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Set every parameter to ``scale * N(0, 1)`` noise: seeded, whatever the initialisation."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return module


@pytest.mark.parametrize("T", [0.5, 1.7])
def test_linear_field_log_det_is_t_trace_and_map_is_expm(T: float):
    a = _matrix(3, seed=0)
    cnf = ContinuousFlow(3, LinearField(a), T=T, trace="exact", **TIGHT)
    z = _points(20, 3, seed=1)
    with torch.no_grad():
        x, ladj = cnf(z)
        z_back, ladj_inv = cnf.inverse(x)
    flow_map = torch.as_tensor(expm(T * a.numpy()))
    torch.testing.assert_close(x, z @ flow_map.T, rtol=0, atol=1e-8)
    expected = torch.full((20,), T * torch.trace(a).item())
    torch.testing.assert_close(ladj, expected, rtol=0, atol=1e-8)
    torch.testing.assert_close(ladj_inv, -expected, rtol=0, atol=1e-8)
    torch.testing.assert_close(z_back, z, rtol=0, atol=1e-8)


def test_linear_flow_density_is_the_gaussian_it_pushes_forward():
    from flowint.flows import Flow, NormalBase

    a = _matrix(2, seed=2)
    flow = Flow([ContinuousFlow(2, LinearField(a), trace="exact", **TIGHT)], NormalBase(2))
    x, log_q = flow.sample(50, seed=3)
    e = expm(a.numpy())
    expected = multivariate_normal(np.zeros(2), e @ e.T).logpdf(x.detach().numpy())
    torch.testing.assert_close(log_q.detach(), torch.as_tensor(expected), rtol=0, atol=1e-7)
    torch.testing.assert_close(flow.log_prob(x).detach(), torch.as_tensor(expected), rtol=0,
                               atol=1e-7)


def test_hutchinson_is_unbiased_and_exact_on_diagonal_fields():
    a = _matrix(12, seed=4)
    n = 4000
    cnf = ContinuousFlow(12, LinearField(a), T=1.0, trace="auto", seed=5, **TIGHT)
    assert cnf.trace_mode == "hutchinson"
    with torch.no_grad():
        _, ladj = cnf(_points(n, 12, seed=6))
    # Rademacher probes: eps^T A eps = tr A + sum_{i != j} eps_i eps_j A_ij, variance
    # sum_{i != j} A_ij (A_ij + A_ji); with a constant field, ladj = T * eps^T A eps.
    off = a - torch.diag(a.diagonal())
    sd = math.sqrt((off * (off + off.T)).sum().item())
    assert abs(ladj.mean().item() - torch.trace(a).item()) < 5 * sd / math.sqrt(n)
    assert ladj.std().item() == pytest.approx(sd, rel=0.1)
    diag = ContinuousFlow(12, LinearField(torch.diag(a.diagonal())), trace="hutchinson",
                          seed=5, **TIGHT)
    with torch.no_grad():
        _, ladj = diag(_points(10, 12, seed=7))
    torch.testing.assert_close(ladj, torch.full((10,), torch.trace(a).item()), rtol=0, atol=1e-8)


def test_trace_auto_switches_above_dim_8():
    assert ContinuousFlow(8).trace_mode == "exact"
    assert ContinuousFlow(9).trace_mode == "hutchinson"
    assert ContinuousFlow(9, trace="exact").trace_mode == "exact"


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_adjoint_gradients_equal_backprop_through_the_solver(trace: str):
    field = _randomise(TimeMLP(2, hidden=16, depth=2), 0.3, seed=8)
    z = _points(16, 2, seed=9)
    grads = {}
    for adjoint in (True, False):
        cnf = ContinuousFlow(2, field, trace=trace, adjoint=adjoint, seed=10, rtol=1e-11,
                             atol=1e-11)
        field.zero_grad()
        x, ladj = cnf(z)
        nfe_forward = cnf.nfe
        (x.square().sum() + ladj.sum()).backward()
        # The adjoint method solves a second ODE backwards: the field is called again.
        assert (cnf.nfe > nfe_forward) == adjoint
        grads[adjoint] = [p.grad.clone() for p in field.parameters()]
    for g_adj, g_bp in zip(grads[True], grads[False], strict=True):
        torch.testing.assert_close(g_adj, g_bp, rtol=1e-6, atol=1e-6)
    assert max(g.abs().max() for g in grads[True]) > 1e-2


def test_sample_then_invert_returns_the_input_and_log_prob_matches():
    flow = _randomise(cnf_flow(2, hidden=16, seed=0, **TIGHT), 0.3, seed=11)
    with torch.no_grad():
        z = flow.sample_base(64, seed=12)
        x, log_q = flow.transform_base(z)
        z_back, _ = flow.inverse(x)
        torch.testing.assert_close(z_back, z, rtol=0, atol=1e-8)
        torch.testing.assert_close(flow.log_prob(x), log_q, rtol=0, atol=1e-8)
    assert (x - z).abs().max() > 0.1


def test_fresh_flow_is_identity_and_save_load(tmp_path):
    flow = cnf_flow(3, hidden=8, seed=1)
    z = _points(5, 3, seed=13)
    x, ladj = flow(z)
    torch.testing.assert_close(x, z, rtol=0, atol=1e-12)  # the solver's interpolation rounds
    assert torch.equal(ladj, torch.zeros(5))
    _randomise(flow, 0.2, seed=14)
    flow.save(tmp_path / "cnf.pt")
    loaded = load_flow(tmp_path / "cnf.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(z), flow.log_prob(z), rtol=0, atol=0)


def test_missing_torchdiffeq_raises_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchdiffeq", None)
    cnf = ContinuousFlow(2)  # building needs no solver
    with pytest.raises(ImportError, match=r"pip install flowint\[ode\]"):
        cnf(_points(3, 2, seed=0))


def test_errors():
    with pytest.raises(ValueError, match="trace"):
        ContinuousFlow(2, trace="stochastic")
    with pytest.raises(ValueError, match="T must be positive"):
        ContinuousFlow(2, T=0.0)
