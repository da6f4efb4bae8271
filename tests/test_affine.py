"""The affine flow x = A z + b (lecture notes §3.3): Gaussian density, LU algebra, composition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from flowint.flows import AFFINE_KINDS, Affine, affine_flow, load_flow

pytestmark = pytest.mark.usefixtures("float64_default")


def _random_matrix(dim: int, kind: str, seed: int) -> torch.Tensor:
    """A well-conditioned random matrix of the kind's structure (any sign of determinant)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=gen) / dim**0.5 + torch.eye(dim) * 1.5
    a[0] = -a[0]  # a negative determinant for odd structures too
    if kind == "triangular":
        return a.tril()
    if kind == "diagonal":
        return torch.diag(a.diagonal())
    return a


def _layer(dim: int, kind: str, seed: int) -> tuple[Affine, torch.Tensor, torch.Tensor]:
    a = _random_matrix(dim, kind, seed)
    b = torch.randn(dim, generator=torch.Generator().manual_seed(seed + 1))
    return Affine.from_matrix(a, b, kind), a, b


@pytest.mark.parametrize("kind", AFFINE_KINDS)
@pytest.mark.parametrize("dim", [1, 2, 5])
def test_log_prob_is_gaussian_with_covariance_a_at(kind: str, dim: int):
    flow = affine_flow(dim, kind)
    layer, a, b = _layer(dim, kind, seed=dim)
    flow.transforms[0].load_state_dict(layer.state_dict())
    x, log_q = flow.sample(500, seed=3)
    ref = multivariate_normal(b.numpy(), (a @ a.T).numpy())
    expected = torch.as_tensor(np.atleast_1d(ref.logpdf(x.detach().numpy())))
    torch.testing.assert_close(flow.log_prob(x).detach(), expected, rtol=0, atol=1e-10)
    torch.testing.assert_close(log_q.detach(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", AFFINE_KINDS)
def test_from_matrix_reproduces_map_matrix_and_log_det(kind: str):
    layer, a, b = _layer(4, kind, seed=7)
    torch.testing.assert_close(layer.matrix(), a, rtol=0, atol=1e-12)
    z = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    x, ladj = layer(z)
    torch.testing.assert_close(x, z @ a.T + b, rtol=0, atol=1e-12)
    sign, logdet = torch.linalg.slogdet(a)
    assert sign < 0  # the row flip in _random_matrix
    torch.testing.assert_close(ladj, logdet.expand(10), rtol=0, atol=1e-12)
    z_back, ladj_inv = layer.inverse(x)
    torch.testing.assert_close(z_back, z, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=0, atol=0)


def test_lu_needs_and_uses_its_permutation():
    """A matrix whose LU factorisation must pivot: the permutation carries the pivoting."""
    a = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    layer = Affine.from_matrix(a)
    assert not torch.equal(layer.perm, torch.arange(3))
    torch.testing.assert_close(layer.matrix(), a, rtol=0, atol=1e-12)
    p = torch.eye(3)[layer.perm]  # (P y)_i = y_perm[i]
    torch.testing.assert_close(p @ layer.lower_matrix() @ layer.upper_matrix(), a,
                               rtol=0, atol=1e-12)
    assert torch.equal(layer.lower_matrix().diagonal(), torch.ones(3))
    assert torch.equal(layer.lower_matrix().triu(1), torch.zeros(3, 3))
    assert torch.equal(layer.upper_matrix().tril(-1), torch.zeros(3, 3))


def test_log_det_costs_dim_parameters_only():
    layer, a, _ = _layer(6, "lu", seed=11)
    torch.testing.assert_close(layer.log_abs_det(), torch.linalg.slogdet(a)[1], rtol=0,
                               atol=1e-12)
    # The log-determinant is the sum of the log-diagonal: its gradient is 1 there, 0 elsewhere.
    layer.log_abs_det().backward()
    assert torch.equal(layer.log_diag.grad, torch.ones(6))
    assert layer.lower.grad is None and layer.upper.grad is None


@pytest.mark.parametrize(("k1", "k2", "expected"), [
    ("lu", "lu", "lu"), ("diagonal", "lu", "lu"), ("triangular", "diagonal", "triangular"),
    ("diagonal", "diagonal", "diagonal"), ("triangular", "triangular", "triangular"),
])
def test_composition_is_affine_with_ca_and_cb_plus_d(k1: str, k2: str, expected: str):
    first, a, b = _layer(3, k1, seed=20)  # f1(z) = A z + b
    second, c, d = _layer(3, k2, seed=30)  # f2(y) = C y + d
    both = second.compose(first)  # f2 ∘ f1
    assert both.kind == expected
    torch.testing.assert_close(both.matrix(), c @ a, rtol=0, atol=1e-12)
    torch.testing.assert_close(both.shift.detach(), c @ b + d, rtol=0, atol=1e-12)
    z = torch.randn(50, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x2, ladj2 = second(first(z)[0])
        x, ladj = both(z)
    torch.testing.assert_close(x, x2, rtol=0, atol=1e-12)
    torch.testing.assert_close(ladj, ladj2 + first(z)[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", AFFINE_KINDS)
def test_fresh_layer_is_identity_and_structure_is_kept(kind: str):
    layer = Affine(4, kind)
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    x, ladj = layer(z)
    assert torch.equal(x, z) and torch.equal(ladj, torch.zeros(8))
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(generator=torch.Generator().manual_seed(1))
    a = layer.matrix()
    if kind == "triangular":
        assert torch.equal(a.triu(1), torch.zeros(4, 4))
    if kind == "diagonal":
        assert torch.equal(a, torch.diag(a.diagonal()))
    n_params = sum(p.numel() for p in layer.parameters())
    assert n_params == {"lu": 4 + 4 + 12, "triangular": 4 + 4 + 6, "diagonal": 4 + 4}[kind]


def test_save_load_keeps_permutation_and_signs(tmp_path):
    flow = affine_flow(3, "lu", permute=True, seed=5)
    layer, _, _ = _layer(3, "lu", seed=9)
    flow.transforms[0].load_state_dict(layer.state_dict())
    flow.save(tmp_path / "affine.pt")
    loaded = load_flow(tmp_path / "affine.pt")
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.log_prob(x), flow.log_prob(x), rtol=0, atol=0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="singular"):
        Affine.from_matrix(torch.tensor([[1.0, 2.0], [2.0, 4.0]]))
    with pytest.raises(ValueError, match="not triangular"):
        Affine.from_matrix(torch.tensor([[1.0, 2.0], [0.0, 4.0]]), kind="triangular")
    with pytest.raises(ValueError, match="not diagonal"):
        Affine.from_matrix(torch.tensor([[1.0, 0.0], [3.0, 4.0]]), kind="diagonal")
    with pytest.raises(ValueError, match="unknown affine kind"):
        Affine(2, "dense")
    with pytest.raises(ValueError, match="permutation"):
        Affine(3, perm=[0, 0, 1])
    with pytest.raises(ValueError, match="cannot compose"):
        Affine(2).compose(Affine(3))
