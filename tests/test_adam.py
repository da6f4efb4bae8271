"""flowint's Adam: torch.optim.Adam(foreach=True)'s update and state, without torch.optim."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import flowint
from flowint.run.adam import Adam


def _train(make, steps: int = 25):
    flow = flowint.make_flow(3, seed=0, dtype=torch.float64)
    opt = make(flow.parameters())
    g = torch.Generator().manual_seed(1)
    for i in range(steps):
        x = torch.rand(128, 3, generator=g, dtype=torch.float64)
        loss = (flow.log_prob(x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 10.0)
        if i == 7:
            opt.param_groups[0]["lr"] = 2e-3  # the Trainer's schedule changes it so
        opt.step()
    return flow, opt


def test_adam_matches_torch_bit_for_bit_and_shares_its_state_format():
    ref, ref_opt = _train(lambda p: torch.optim.Adam(p, lr=6e-3, foreach=True))
    own, own_opt = _train(lambda p: Adam(p, lr=6e-3))
    for a, b in zip(ref.parameters(), own.parameters(), strict=True):
        assert torch.equal(a, b)
    ours, theirs = own_opt.state_dict(), ref_opt.state_dict()
    assert set(ours["param_groups"][0]) == set(theirs["param_groups"][0])
    for k, s in theirs["state"].items():
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(s[name], ours["state"][k][name])
    # a state written by either loads into the other, and the next steps agree
    fresh = Adam(own.parameters(), lr=1.0)
    fresh.load_state_dict(theirs)
    assert fresh.param_groups[0]["lr"] == 2e-3
    ref_opt.load_state_dict(ours)


def test_adam_refuses_a_state_it_cannot_continue():
    p = [torch.zeros(3, requires_grad=True)]
    state = torch.optim.Adam(p, amsgrad=True).state_dict()
    with pytest.raises(ValueError, match="options"):
        Adam(p).load_state_dict(state)
    with pytest.raises(ValueError, match="does not match"):
        Adam(p + [torch.zeros(2, requires_grad=True)]).load_state_dict(
            torch.optim.Adam(p).state_dict())
    with pytest.raises(ValueError, match="empty"):
        Adam([])


def test_a_run_that_trains_never_imports_torch_dynamo():
    """torch.optim's first optimizer imports torch._dynamo (seconds of wall time); an
    integration, a density fit and a multi-channel run with learned α do without it."""
    code = (
        "import sys, torch, flowint\n"
        "f = lambda x: torch.exp(-((x - 0.3) ** 2).sum(-1) / 0.002)\n"
        "r = flowint.integrate(f, 2, budget=6000, seed=1, explore=False, progress=False)\n"
        "assert r.n_evals_train > 0, r.n_evals_train\n"
        "flowint.fit(flowint.make_flow(2), torch.rand(500, 2), epochs=2, progress=False)\n"
        "flowint.integrate(f, 2, budget=6000, seed=1, channels='modes', progress=False)\n"
        "print('torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
