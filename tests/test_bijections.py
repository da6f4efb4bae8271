"""One battery of tests looped over every bijection and flow in the registry.

See ``tests/registry.py`` for the cases and how to add one. The battery checks, for every case:
round trips in both directions, the log-determinant against the autograd Jacobian in both
directions and the sign convention between them, the triangular structure where the case
declares it, the unit cube mapped into itself with finite densities at its faces, gradients
reaching every parameter, and ``b.inv.inv is b``. Fresh (unperturbed) layers and flows are
checked to be the identity.
"""

from __future__ import annotations

import pytest
import torch
from registry import BIJECTION_CASES, FLOW_CASES, Case
from torch import Tensor, nn
from torch.autograd.functional import jacobian

from flowint.flows import (
    ElementwiseSpline,
    Flow,
    InverseBijection,
    PerAxisGrid,
    SplineCoupling,
    make_flow,
)

pytestmark = pytest.mark.usefixtures("float64_default", "torch_single_thread")

ALL_CASES = BIJECTION_CASES + FLOW_CASES
TRIANGULAR_CASES = [c for c in ALL_CASES if c.triangular]
CUBE_CASES = [c for c in ALL_CASES if c.domain == "cube"]

ROUND_TRIP_TOL = 1e-10
LADJ_TOL = 1e-8
N_JACOBIAN = 6


def _params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def _dim(module: nn.Module) -> int:
    return int(module.dim)


def _points(case: Case, dim: int, n: int, seed: int) -> Tensor:
    """Interior points of the case's domain (cube: uniform; real: standard normal)."""
    gen = torch.Generator().manual_seed(seed)
    if case.domain == "cube":
        return torch.rand(n, dim, generator=gen, dtype=torch.float64)
    return torch.randn(n, dim, generator=gen, dtype=torch.float64)


def _faces(dim: int, n_random: int = 32, seed: int = 0) -> Tensor:
    """Points of the cube with coordinates exactly 0 or 1: corners and points on faces."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.arange(dim)
    fixed = [torch.zeros(dim), torch.ones(dim), (idx % 2).double(), 1.0 - (idx % 2).double()]
    rows = torch.rand(n_random, dim, generator=gen, dtype=torch.float64)
    pick = torch.randint(0, 3, (n_random, dim), generator=gen)
    rows = torch.where(pick == 0, 0.0, torch.where(pick == 1, 1.0, rows))
    return torch.cat([torch.stack(fixed).double(), rows])


def _directions(module: nn.Module):
    return {"forward": module.forward, "inverse": module.inverse}


def _jacobians(fn, points: Tensor) -> Tensor:
    """Per-sample Jacobians ``d fn(p)[0] / d p`` of shape ``(n, dim, dim)``.

    Samples do not interact (checked by :func:`test_samples_are_independent`), so the Jacobian
    of the output summed over the batch holds every sample's Jacobian: ``dim`` backward passes
    for the whole batch instead of ``dim`` per sample.
    """
    jac = jacobian(lambda v: fn(v)[0].sum(0), points)  # (dim_out, n, dim_in)
    return jac.permute(1, 0, 2)


def _unwrap(module: nn.Module) -> nn.Module:
    """The layer an InverseBijection wraps (same structure, other direction)."""
    while isinstance(module, InverseBijection):
        module = module.base
    return module


@pytest.fixture(params=_params(ALL_CASES))
def case(request) -> Case:
    return request.param


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_shapes_and_dtype(case: Case, direction: str):
    module = case.build()
    dim = _dim(module)
    z = _points(case, dim, 7, seed=1)
    out, ladj = _directions(module)[direction](z)
    assert out.shape == (7, dim) and ladj.shape == (7,)
    assert out.dtype == ladj.dtype == torch.float64
    assert torch.isfinite(out).all() and torch.isfinite(ladj).all()


def test_round_trip(case: Case):
    module = case.build()
    z = _points(case, _dim(module), 64, seed=2)
    with torch.no_grad():
        x, _ = module.forward(z)
        z_back, _ = module.inverse(x)
        x_back, _ = module.forward(module.inverse(z)[0])
    assert (z_back - z).abs().max() < ROUND_TRIP_TOL
    assert (x_back - z).abs().max() < ROUND_TRIP_TOL


def test_inverse_ladj_is_minus_forward_ladj(case: Case):
    module = case.build()
    z = _points(case, _dim(module), 64, seed=3)
    with torch.no_grad():
        x, ladj_fwd = module.forward(z)
        _, ladj_inv = module.inverse(x)
    torch.testing.assert_close(ladj_inv, -ladj_fwd, rtol=0.0, atol=1e-9)


def test_perturbed_away_from_identity(case: Case):
    """The registry contract: a case is not the identity (or the ladj tests would be weak)."""
    module = case.build()
    z = _points(case, _dim(module), 64, seed=4)
    with torch.no_grad():
        x, _ = module.forward(z)
    assert (x - z).abs().max() > 1e-4


def test_factory_is_deterministic_and_leaves_global_rng(case: Case):
    state = torch.random.get_rng_state()
    a, b = case.build(), case.build()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a is not b
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_samples_are_independent(case: Case, direction: str):
    """Each sample's output depends on that sample only (and the per-sample Jacobian agrees)."""
    module = case.build()
    fn = _directions(module)[direction]
    points = _points(case, _dim(module), N_JACOBIAN, seed=5)
    with torch.no_grad():
        out, ladj = fn(points)
        for i in range(N_JACOBIAN):
            out_i, ladj_i = fn(points[i:i + 1])
            # Adaptive ODE solvers choose steps per batch: agreement to solver precision.
            torch.testing.assert_close(out_i[0], out[i], rtol=0.0, atol=ROUND_TRIP_TOL)
            torch.testing.assert_close(ladj_i[0], ladj[i], rtol=0.0, atol=LADJ_TOL)
    single = jacobian(lambda v: fn(v.unsqueeze(0))[0].squeeze(0), points[0])
    torch.testing.assert_close(_jacobians(fn, points)[0], single, rtol=0.0, atol=LADJ_TOL)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_ladj_matches_autograd_jacobian(case: Case, direction: str):
    module = case.build()
    fn = _directions(module)[direction]
    points = _points(case, _dim(module), N_JACOBIAN, seed=5)
    jac = _jacobians(fn, points)
    sign, logabsdet = torch.linalg.slogdet(jac)
    assert (sign != 0).all()
    with torch.no_grad():
        _, ladj = fn(points)
    torch.testing.assert_close(ladj, logabsdet, rtol=0.0, atol=LADJ_TOL)


def _acyclic(dependency: Tensor) -> bool:
    """Whether ``dependency[i, j]`` (``i`` depends on ``j``) has no cycle (triangularisable)."""
    remaining = torch.ones(dependency.shape[0], dtype=torch.bool)
    while remaining.any():
        sub = dependency[remaining][:, remaining]
        free = ~sub.any(1)
        if not free.any():
            return False
        remaining[torch.nonzero(remaining).squeeze(1)[free]] = False
    return True


@pytest.mark.parametrize("case", _params(TRIANGULAR_CASES))
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_triangular_jacobian(case: Case, direction: str):
    module = case.build()
    dim = _dim(module)
    fn = _directions(module)[direction]
    points = _points(case, dim, N_JACOBIAN, seed=6)
    jac = _jacobians(fn, points)
    eye = torch.eye(dim, dtype=torch.bool)
    diag = jac.diagonal(dim1=-2, dim2=-1)
    # Generic: a cycle-free dependency graph, and ladj = sum of log|diagonal|.
    assert (diag != 0).all()
    assert _acyclic((jac != 0).any(0) & ~eye)
    with torch.no_grad():
        _, ladj = fn(points)
    torch.testing.assert_close(ladj, diag.abs().log().sum(-1), rtol=0.0, atol=LADJ_TOL)
    # Specific structures that the theory fixes exactly.
    layer = _unwrap(module)
    if isinstance(layer, SplineCoupling):
        a, b = ~layer.mask, layer.mask
        jac_a = jac[:, a]
        assert torch.equal(jac_a[:, :, a], torch.eye(int(a.sum())).expand_as(jac_a[:, :, a]))
        assert torch.equal(jac_a[:, :, b], torch.zeros_like(jac_a[:, :, b]))
    elif isinstance(layer, ElementwiseSpline) or (isinstance(layer, Flow) and dim == 1):
        assert torch.equal(jac[:, ~eye], torch.zeros_like(jac[:, ~eye]))


@pytest.mark.parametrize("case", _params(CUBE_CASES))
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_cube_maps_into_cube_with_finite_ladj(case: Case, direction: str):
    module = case.build()
    dim = _dim(module)
    pts = torch.cat([_faces(dim), _points(case, dim, 32, seed=7)])
    with torch.no_grad():
        out, ladj = _directions(module)[direction](pts)
    assert ((out >= 0.0) & (out <= 1.0)).all()
    assert torch.isfinite(ladj).all()


@pytest.mark.parametrize("case", _params(CUBE_CASES))
def test_round_trip_on_faces(case: Case):
    module = case.build()
    pts = _faces(_dim(module))
    with torch.no_grad():
        back, _ = module.inverse(module.forward(pts)[0])
    assert (back - pts).abs().max() < ROUND_TRIP_TOL


def test_gradients_reach_every_parameter(case: Case):
    module = case.build()
    params = dict(module.named_parameters())
    if not params:
        pytest.skip("no parameters")
    dim = _dim(module)
    gen = torch.Generator().manual_seed(8)
    if isinstance(module, Flow):
        x, log_q = module.rsample(64, seed=9)
        loss = (log_q * torch.rand(64, generator=gen)).sum() + x.sum()
        loss = loss + module.log_prob(_points(case, dim, 64, seed=10)).sum()
    else:
        # Random weights, so that no contribution cancels another (a shift moves x and z
        # by opposite amounts).
        x, ladj_fwd = module.forward(_points(case, dim, 64, seed=9))
        z, ladj_inv = module.inverse(_points(case, dim, 64, seed=10))
        loss = sum((t * torch.rand(t.shape, generator=gen)).sum()
                   for t in (x, z, ladj_fwd, ladj_inv))
    loss.backward()
    for name, p in params.items():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name


@pytest.mark.parametrize("case", _params(BIJECTION_CASES))
def test_inv_inv_is_b(case: Case):
    b = case.build()
    assert b.inv.inv is b
    assert b.inv.dim == b.dim
    z = _points(case, _dim(b), 8, seed=11)
    with torch.no_grad():
        x, ladj = b.forward(z)
        x_inv, ladj_inv = b.inv.inverse(z)
        z_inv, _ = b.inv.forward(x)
    assert torch.equal(x_inv, x) and torch.equal(ladj_inv, ladj)
    assert (z_inv - z).abs().max() < ROUND_TRIP_TOL


# Identity at initialisation: fresh, unperturbed layers and flows.

def _fresh_modules() -> list:
    out = []
    for kind in ("rqs", "pwq", "pwl"):
        out.append(pytest.param(lambda k=kind: ElementwiseSpline(3, k), id=f"elementwise-{kind}"))
        out.append(pytest.param(
            lambda k=kind: SplineCoupling(torch.tensor([True, False, True]), k, depth=2),
            id=f"coupling-{kind}"))
        for dim in (1, 2, 3, 8):
            for grid in (True, False):
                out.append(pytest.param(
                    lambda d=dim, k=kind, g=grid: make_flow(d, k, grid=g, seed=0),
                    id=f"flow-{kind}-d{dim}-{'grid' if grid else 'nogrid'}"))
    out.append(pytest.param(lambda: PerAxisGrid(4), id="grid"))
    return out


@pytest.mark.parametrize("build", _fresh_modules())
def test_identity_at_initialisation(build):
    module = build()
    dim = _dim(module)
    pts = torch.cat([_faces(dim), torch.rand(64, dim, generator=torch.Generator().manual_seed(0))])
    with torch.no_grad():
        for fn in (module.forward, module.inverse):
            out, ladj = fn(pts)
            torch.testing.assert_close(out, pts, rtol=0.0, atol=1e-12)
            torch.testing.assert_close(ladj, torch.zeros_like(ladj), rtol=0.0, atol=1e-12)
