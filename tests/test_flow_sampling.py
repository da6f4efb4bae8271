"""Sampling conventions of :class:`flowint.flows.Flow`, as in ``torch.distributions``:
``sample`` draws without gradients (and in chunks), ``rsample`` draws reparametrised points
whose gradients reach the parameters, ``transform_base`` follows the caller's grad mode."""

from __future__ import annotations

import pytest
import torch
from registry import FLOW_CASES, Case, perturbed

from flowint.flows import Flow, make_flow
from flowint.flows.base import SAMPLE_CHUNK

pytestmark = pytest.mark.usefixtures("float64_default", "torch_single_thread")

# Points drawn by sample and rsample (or chunked and one-pass) agree to rounding: a matrix
# product may round differently for another number of rows.
SAME = {"rtol": 0.0, "atol": 1e-12}


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def _flow() -> Flow:
    """A three-dimensional rqs coupling flow, clearly away from the identity."""
    return perturbed(make_flow(3, "rqs", n_layers=2, seed=7, dtype=torch.float64), "sampling",
                     scale=0.3)


def _record_first_transform(flow: Flow) -> tuple[list[tuple[int, bool]], object]:
    """Record ``(rows, grad enabled)`` of every call of the flow's first bijection."""
    calls: list[tuple[int, bool]] = []

    def hook(module, args) -> None:
        calls.append((args[0].shape[0], torch.is_grad_enabled()))

    return calls, flow.transforms[0].register_forward_pre_hook(hook)


@pytest.mark.parametrize("case", _params(FLOW_CASES))
def test_sample_carries_no_gradient(case: Case):
    flow = case.build()
    assert any(p.requires_grad for p in flow.parameters())
    assert torch.is_grad_enabled()
    x, log_q = flow.sample(64, seed=1)
    for t in (x, log_q):
        assert not t.requires_grad and t.grad_fn is None
    assert x.shape == (64, flow.dim) and log_q.shape == (64,)


def test_sample_builds_no_graph_and_rsample_does():
    """The flow itself runs without grad inside ``sample`` (not just detached afterwards)."""
    flow = _flow()
    calls, handle = _record_first_transform(flow)
    try:
        flow.sample(32, seed=2)
        assert calls == [(32, False)]
        calls.clear()
        flow.rsample(32, seed=2)
        assert calls == [(32, True)]
    finally:
        handle.remove()


@pytest.mark.parametrize("case", _params(FLOW_CASES))
def test_rsample_gradients_reach_every_parameter(case: Case):
    flow = case.build()
    x, log_q = flow.rsample(64, seed=3)
    assert x.grad_fn is not None and log_q.grad_fn is not None
    gen = torch.Generator().manual_seed(4)
    # Random weights, so that no contribution cancels another.
    loss = (x * torch.rand(x.shape, generator=gen)).sum()
    loss = loss + (log_q * torch.rand(log_q.shape, generator=gen)).sum()
    loss.backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize("case", _params(FLOW_CASES))
def test_sample_and_rsample_draw_the_same_points(case: Case):
    flow = case.build()
    x, log_q = flow.sample(50, seed=5)
    xr, log_qr = flow.rsample(50, seed=5)
    torch.testing.assert_close(xr.detach(), x, **SAME)
    torch.testing.assert_close(log_qr.detach(), log_q, **SAME)
    other, _ = flow.sample(50, seed=6)
    assert (other - x).abs().max() > 1e-3


def test_sample_and_rsample_advance_a_generator_alike():
    flow = _flow()
    gen_s, gen_r = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(2):
        x, _ = flow.sample(20, seed=gen_s)
        xr, _ = flow.rsample(20, seed=gen_r)
        torch.testing.assert_close(xr.detach(), x, **SAME)


def test_chunked_sample_equals_one_pass_transform_base():
    flow = _flow()
    n = 2 * SAMPLE_CHUNK + 123
    calls, handle = _record_first_transform(flow)
    try:
        x, log_q = flow.sample(n, seed=8)
    finally:
        handle.remove()
    assert calls == [(SAMPLE_CHUNK, False), (SAMPLE_CHUNK, False), (123, False)]
    with torch.no_grad():
        x1, log_q1 = flow.transform_base(flow.sample_base(n, seed=8))
    torch.testing.assert_close(x, x1, **SAME)
    torch.testing.assert_close(log_q, log_q1, **SAME)


def test_transform_base_chunk_keyword():
    flow = _flow()
    z = flow.sample_base(1000, seed=9)
    calls, handle = _record_first_transform(flow)
    try:
        with torch.no_grad():
            x, log_q = flow.transform_base(z, chunk=300)
    finally:
        handle.remove()
    assert [rows for rows, _ in calls] == [300, 300, 300, 100]
    with torch.no_grad():
        x1, log_q1 = flow.transform_base(z)
    torch.testing.assert_close(x, x1, **SAME)
    torch.testing.assert_close(log_q, log_q1, **SAME)
    for bad in (0, -4):
        with pytest.raises(ValueError, match="chunk"):
            flow.transform_base(z, chunk=bad)


def test_transform_base_follows_the_grad_mode_and_the_sign_convention():
    flow = _flow()
    z = flow.sample_base(40, seed=10)
    x, log_q = flow.transform_base(z, chunk=16)
    assert x.grad_fn is not None and log_q.grad_fn is not None
    log_q.sum().backward()
    assert all(p.grad is not None for p in flow.parameters())
    with torch.no_grad():
        x0, log_q0 = flow.transform_base(z)
        x_t, ladj_fwd = flow(z)
    assert x0.grad_fn is None and log_q0.grad_fn is None
    torch.testing.assert_close(x0, x_t, **SAME)
    # log q(x) = log p_Z(z) - ladj_forward (log p_Z = 0 on the cube).
    torch.testing.assert_close(log_q0, flow.base.log_prob(z) - ladj_fwd, **SAME)
    torch.testing.assert_close(flow.log_prob(x0), log_q0, rtol=0.0, atol=1e-9)


def test_rsample_rejects_negative_counts_and_draws_none():
    flow = _flow()
    with pytest.raises(ValueError, match="non-negative"):
        flow.rsample(-1)
    x, log_q = flow.rsample(0, seed=0)
    assert x.shape == (0, 3) and log_q.shape == (0,)
