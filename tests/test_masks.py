"""Tests of the coupling masks and of flows with a single dimension (no coupling)."""

from __future__ import annotations

import math

import pytest
import torch

from flowint.flows import (
    ElementwiseSpline,
    PerAxisGrid,
    SplineCoupling,
    alternating_masks,
    binary_masks,
    make_flow,
    make_masks,
    random_masks,
    splits_every_pair,
)

pytestmark = pytest.mark.usefixtures("float64_default", "torch_single_thread")


def _assert_valid(masks: list[torch.Tensor], dim: int) -> None:
    for m in masks:
        assert m.dtype == torch.bool and m.shape == (dim,)
        assert m.any() and not m.all(), "both sets must be non-empty"


def _columns_distinct(masks: list[torch.Tensor]) -> bool:
    """Every pair is split iff no two coordinates see the same sequence of roles."""
    columns = {tuple(col.tolist()) for col in torch.stack(masks).T}
    return len(columns) == masks[0].numel()


@pytest.mark.parametrize("dim", range(2, 129))
def test_binary_masks_split_every_pair(dim: int):
    masks = binary_masks(dim)
    assert len(masks) == 2 * math.ceil(math.log2(dim))
    _assert_valid(masks, dim)
    assert _columns_distinct(masks)
    assert splits_every_pair(masks)
    # Every coordinate is transformed by some layer and conditions some other layer.
    stacked = torch.stack(masks)
    assert stacked.any(0).all() and (~stacked).any(0).all()
    # Consecutive layers are complements.
    for a, b in zip(masks[::2], masks[1::2], strict=True):
        assert torch.equal(a, ~b)


def test_splits_every_pair_detects_unsplit_pairs():
    # Coordinates 0 and 2 are both even: alternating masks never separate them.
    assert not splits_every_pair(alternating_masks(4, 4))
    assert not splits_every_pair([torch.tensor([True, True, False])])
    assert splits_every_pair([torch.tensor([True, False])])


@pytest.mark.parametrize("dim", [2, 3, 4, 7, 16, 33])
@pytest.mark.parametrize("n_layers", [1, 2, 5])
def test_alternating_and_random_masks_are_valid(dim: int, n_layers: int):
    alt = alternating_masks(dim, n_layers)
    rnd = random_masks(dim, n_layers, seed=dim * 10 + n_layers)
    assert len(alt) == len(rnd) == n_layers
    _assert_valid(alt, dim)
    _assert_valid(rnd, dim)
    for a, b in zip(alt, alt[1:], strict=False):
        assert torch.equal(a, ~b)
    for a, b in zip(rnd[::2], rnd[1::2], strict=False):
        assert torch.equal(a, ~b), "each random mask is followed by its complement"
    assert all(int(m.sum()) in (dim // 2, dim - dim // 2) for m in rnd)


def test_random_masks_are_seeded():
    a = random_masks(10, 6, seed=3)
    b = random_masks(10, 6, seed=3)
    c = random_masks(10, 6, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not torch.equal(x, y) for x, y in zip(a, c, strict=True))
    state = torch.random.get_rng_state()
    random_masks(10, 6, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("scheme", ["binary", "alternating", "random"])
def test_make_masks(scheme: str):
    masks = make_masks(6, scheme, seed=0)
    assert len(masks) == len(binary_masks(6))
    _assert_valid(masks, 6)
    longer = make_masks(6, scheme, n_layers=9, seed=0)
    assert len(longer) == 9
    _assert_valid(longer, 6)
    if scheme == "binary":
        base = binary_masks(6)
        assert all(torch.equal(m, base[i % len(base)]) for i, m in enumerate(longer))


@pytest.mark.parametrize(
    "call",
    [
        lambda: binary_masks(1),
        lambda: alternating_masks(1, 2),
        lambda: random_masks(0, 2),
        lambda: make_masks(1),
        lambda: make_masks(4, "stripes"),
        lambda: make_masks(4, n_layers=0),
        lambda: SplineCoupling(torch.tensor([True, True])),
        lambda: SplineCoupling(torch.tensor([False, False, False])),
        lambda: SplineCoupling(torch.tensor([[True, False]])),
    ],
    ids=["binary-d1", "alternating-d1", "random-d0", "make-d1", "unknown-scheme",
         "zero-layers", "coupling-all-true", "coupling-all-false", "coupling-2d-mask"],
)
def test_bad_masks_raise(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("kind", ["rqs", "pwq", "pwl"])
@pytest.mark.parametrize("grid", [True, False])
def test_one_dimensional_flow_has_no_coupling(kind: str, grid: bool):
    flow = make_flow(1, kind, grid=grid, seed=0)
    types = [type(t) for t in flow.transforms]
    expected = [ElementwiseSpline, PerAxisGrid] if grid else [ElementwiseSpline]
    assert types == expected
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
        x, log_q = flow.sample(2000, seed=2)
        assert x.shape == (2000, 1) and ((x >= 0) & (x <= 1)).all()
        torch.testing.assert_close(flow.log_prob(x), log_q, rtol=0.0, atol=1e-10)
        # A grid of the interval: the density integrates to one (midpoint rule, smooth q).
        u = (torch.arange(20000) + 0.5).unsqueeze(1) / 20000
        assert abs(flow.log_prob(u).exp().mean().item() - 1.0) < 1e-3
