"""Tests of :class:`flowint.flows.Flow`: sampling and density, normalisation, saving and
loading, dtype and device, ``repr``, seeding, and argument checks of :func:`make_flow`."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from registry import FLOW_CASES, Case, perturbed

from flowint.flows import Flow, PerAxisGrid, SplineCoupling, load_flow, make_flow

pytestmark = pytest.mark.usefixtures("float64_default", "torch_single_thread")

KINDS = ("rqs", "pwq", "pwl")
CUBE_FLOW_CASES = [c for c in FLOW_CASES if c.domain == "cube"]


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def _strong(kind: str, dim: int = 3, scale: float = 0.3, **kwargs) -> Flow:
    """A make_flow flow perturbed strongly (a clearly non-uniform density)."""
    flow = make_flow(dim, kind, seed=7, dtype=torch.float64, **kwargs)
    return perturbed(flow, f"strong-{kind}-{dim}", scale=scale)


def _mean_and_error(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    return values.mean().item(), values.std().item() / math.sqrt(values.numel())


# Sampling and density.

@pytest.mark.parametrize("case", _params(FLOW_CASES))
def test_sample_log_q_equals_log_prob(case: Case):
    flow = case.build()
    with torch.no_grad():
        x, log_q = flow.sample(200, seed=1)
        log_p = flow.log_prob(x)
    assert x.shape == (200, flow.dim) and log_q.shape == (200,)
    assert torch.isfinite(log_q).all()
    torch.testing.assert_close(log_q, log_p, rtol=0.0, atol=1e-9)


def test_sample_and_log_prob_match_the_transforms():
    """``log q(x) = log p_Z(z) + ladj_inverse(x)`` and ``x = T(z)`` for the base draw ``z``."""
    flow = _strong("rqs")
    with torch.no_grad():
        z = flow.sample_base(50, seed=3)
        x, log_q = flow.sample(50, seed=3)
        x_t, ladj_fwd = flow(z)
        z_back, ladj_inv = flow.inverse(x)
    assert torch.equal(x, x_t)
    torch.testing.assert_close(log_q, -ladj_fwd, rtol=0.0, atol=1e-12)
    torch.testing.assert_close(flow.log_prob(x), ladj_inv, rtol=0.0, atol=1e-12)
    torch.testing.assert_close(z_back, z, rtol=0.0, atol=1e-10)


def _cube_flows() -> list:
    out = [pytest.param(c.build, id=c.id) for c in CUBE_FLOW_CASES]
    out += [pytest.param(lambda k=k: _strong(k), id=f"strong-{k}-d3") for k in KINDS]
    out += [pytest.param(lambda: _strong("rqs", 2, grid=False), id="strong-rqs-d2-nogrid")]
    return out


@pytest.mark.parametrize("build", _cube_flows())
def test_density_integrates_to_one(build):
    """``E_uniform[q] = 1`` and ``E_q[1/q] = 1`` (the cube has volume one), at 5 sigma."""
    flow = build()
    n = 20_000
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        u = torch.rand(n, flow.dim, generator=gen, dtype=torch.float64)
        mean_q, err_q = _mean_and_error(flow.log_prob(u).exp())
        _, log_q = flow.sample(n, seed=12)
        mean_inv, err_inv = _mean_and_error((-log_q).exp())
    # The flows are perturbed away from the uniform density, so the errors are not zero.
    assert err_q > 1e-6 and err_inv > 1e-6
    assert abs(mean_q - 1.0) < 5 * err_q, (mean_q, err_q)
    assert abs(mean_inv - 1.0) < 5 * err_inv, (mean_inv, err_inv)


# Saving and loading.

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masks", ["binary", "random"])
def test_save_load_round_trip(tmp_path, kind: str, masks: str):
    flow = perturbed(make_flow(4, kind, masks=masks, n_layers=3), f"save-{kind}", 0.1)
    path = tmp_path / "flow.pt"
    flow.save(str(path))
    blob = torch.load(path, weights_only=True)  # plain data only
    assert blob["format"] == "flowint.flow/1"
    loaded = load_flow(str(path))
    assert isinstance(loaded, Flow) and loaded.config == flow.config
    assert loaded.dtype == torch.float64
    x = torch.rand(100, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(x), flow.log_prob(x))
        assert torch.equal(loaded.sample(10, seed=1)[0], flow.sample(10, seed=1)[0])


def test_save_load_keeps_float32(tmp_path):
    flow = perturbed(make_flow(2, "rqs", seed=0), "f32", 0.1).to(torch.float32)
    flow.save(str(tmp_path / "f.pt"))
    loaded = load_flow(str(tmp_path / "f.pt"), map_location="cpu")
    assert loaded.dtype == torch.float32
    x = torch.rand(20, 2)
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(x), flow.log_prob(x))


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}, "config": {}}, other)
    with pytest.raises(ValueError, match="not a flowint flow file"):
        load_flow(str(other))
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ValueError, match="not a flowint flow file"):
        load_flow(str(tensor))
    text = tmp_path / "text.txt"
    text.write_text("hello, not a torch file")
    with pytest.raises(ValueError, match="not a flowint flow file"):
        load_flow(str(text))
    pickled = tmp_path / "code.pt"
    pickled.write_bytes(pickle.dumps(Flow([PerAxisGrid(2)])))
    with pytest.raises(ValueError, match="not a flowint flow file"):
        load_flow(str(pickled))
    with pytest.raises(FileNotFoundError):
        load_flow(str(tmp_path / "missing.pt"))


def test_save_needs_a_config(tmp_path):
    with pytest.raises(ValueError, match="config"):
        Flow([PerAxisGrid(2)]).save(str(tmp_path / "x.pt"))


# dtype and device.

@pytest.mark.parametrize("kind", KINDS)
def test_float32_follows_to(kind: str):
    # A milder perturbation than _strong's: float32 rounding of x moves log q by about
    # eps_32 * |d log q / dx|, which grows with the steepness of the splines.
    flow64 = _strong(kind, scale=0.05)
    flow32 = _strong(kind, scale=0.05).to(torch.float32)
    assert flow32.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in flow32.parameters())
    with torch.no_grad():
        x, log_q = flow32.sample(500, seed=0)
        assert x.dtype == log_q.dtype == torch.float32
        assert ((x >= 0) & (x <= 1)).all() and torch.isfinite(log_q).all()
        torch.testing.assert_close(flow32.log_prob(x), log_q, rtol=0.0, atol=1e-4)
        # Input in float64 is cast to the flow's dtype; values agree with the float64 flow.
        u = torch.rand(500, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        lp32 = flow32.log_prob(u)
        assert lp32.dtype == torch.float32
        diff = (lp32.double() - flow64.log_prob(u)).abs()
        # Where rounding moves a point across a knot of a piecewise-linear map, log q jumps
        # by a finite step: a few points may differ by more, none by much more.
        assert (diff < 1e-4).double().mean() > 0.98
        assert diff.max() < 0.2
    x, log_q = flow32.rsample(64, seed=2)
    log_q.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in flow32.parameters())


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                            reason="no CUDA device"))],
)
def test_device_follows_to(device: str):
    flow = _strong("rqs").to(device)
    assert flow.device.type == device
    with torch.no_grad():
        x, log_q = flow.sample(100, seed=0)
        assert x.device.type == device and log_q.device.type == device
        torch.testing.assert_close(flow.log_prob(x), log_q, rtol=0.0, atol=1e-9)
        # CPU input is moved to the flow's device.
        assert flow.log_prob(x.cpu()).device.type == device


def test_make_flow_dtype_argument():
    assert make_flow(3, dtype=torch.float32).dtype == torch.float32
    assert make_flow(3, dtype=torch.float64).dtype == torch.float64
    assert make_flow(3).dtype == torch.get_default_dtype()


# repr.

def test_repr_is_readable():
    flow = make_flow(3, "rqs", seed=0)
    text = repr(flow)
    assert text.startswith("Flow(")
    n_params = sum(p.numel() for p in flow.parameters())
    assert f"dim=3, parameters={n_params}, dtype=float64" in text
    assert "SplineCoupling(" in text and "mask=" in text
    assert "kind='rqs'" in text and "bins=16" in text
    assert "PerAxisGrid(dim=3, bins=64" in text
    assert "UniformBase(dim=3)" in text
    assert max(len(line) for line in text.splitlines()) < 200
    layer = flow.transforms[0]
    assert isinstance(layer, SplineCoupling)
    mask = "".join(str(int(m)) for m in layer.mask)
    assert f"mask={mask}," in repr(layer)


# Seeding.

def test_same_seed_same_samples():
    flow = _strong("pwq")
    with torch.no_grad():
        a, la = flow.sample(100, seed=5)
        b, lb = flow.sample(100, seed=5)
        c, _ = flow.sample(100, seed=6)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert not torch.equal(a, c)


def test_generator_seed_is_advanced():
    flow = _strong("pwl")
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        a, _ = flow.sample(50, seed=gen)
        b, _ = flow.sample(50, seed=gen)
        c, _ = flow.sample(50, seed=torch.Generator().manual_seed(3))
    assert not torch.equal(a, b)
    assert torch.equal(a, c)


@pytest.mark.parametrize("masks", ["binary", "random"])
def test_make_flow_seed_is_deterministic_and_leaves_global_rng(masks: str):
    state = torch.random.get_rng_state()
    a = make_flow(5, "rqs", masks=masks, seed=123)
    b = make_flow(5, "rqs", masks=masks, seed=123)
    c = make_flow(5, "rqs", masks=masks, seed=124)
    assert torch.equal(torch.random.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_sampling_leaves_global_rng():
    flow = _strong("rqs")
    state = torch.random.get_rng_state()
    with torch.no_grad():
        flow.sample(10, seed=1)
        flow.sample(10)
        flow.sample(10, seed=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)


# Argument checks.

@pytest.mark.parametrize(
    "kwargs",
    [
        {"dim": 0},
        {"dim": -2},
        {"dim": 3, "kind": "spline"},
        {"dim": 3, "masks": "checkerboard"},
        {"dim": 1, "masks": "checkerboard"},
        {"dim": 3, "n_layers": 0},
        {"dim": 3, "bins": 0},
        {"dim": 1, "kind": "linear"},
        {"dim": 3, "activation": "sigmoidal"},
        {"dim": 3, "min_width": 0.5},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_make_flow_rejects_bad_arguments(kwargs: dict):
    with pytest.raises(ValueError):
        make_flow(**kwargs)


def test_flow_rejects_bad_points():
    flow = make_flow(3)
    with pytest.raises(ValueError, match="shape"):
        flow.log_prob(torch.rand(4, 2))
    with pytest.raises(ValueError, match="shape"):
        flow.log_prob(torch.rand(4))
    with pytest.raises(ValueError, match="non-negative"):
        flow.sample(-1)
    x, log_q = flow.sample(0, seed=0)
    assert x.shape == (0, 3) and log_q.shape == (0,)
