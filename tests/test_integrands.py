"""Tests of the ``integrands`` package: exact values checked independently, API, registry.

Exact values are checked against scipy quadrature of the implemented function (dim <= 2, and
Gauss-Legendre product rules for smooth 3-d cases) and against plain Monte Carlo with a 5-sigma
tolerance in higher dimensions, never against the closed forms used in the package.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

import integrands
from integrands import registry
from integrands.genz import corner_peak_exact
from integrands.peaks import zunis_log_moment_ratio, zunis_width

ALL_DEFAULTS = integrands.names()


def _gauss_legendre(f: integrands.Integrand, nodes: int) -> float:
    """Tensor-product Gauss-Legendre rule on [0,1]^dim (for smooth integrands)."""
    g, w = np.polynomial.legendre.leggauss(nodes)
    g, w = (g + 1.0) / 2.0, w / 2.0
    grids = np.meshgrid(*([g] * f.dim), indexing="ij")
    weights = np.meshgrid(*([w] * f.dim), indexing="ij")
    points = np.stack([grid.reshape(-1) for grid in grids], axis=1)
    weight = np.prod(np.stack([wt.reshape(-1) for wt in weights], axis=1), axis=1)
    return float(f.numpy(points) @ weight)


def _opts(points, **options) -> dict:
    inside = sorted(p for p in points if 0.0 < p < 1.0)
    return {**options, "points": inside} if inside else options


def _nquad_2d(f: integrands.Integrand, inner_points, outer_points) -> float:
    """Nested adaptive quadrature of a 2-d integrand with breakpoints at its features."""

    def func(x1: float, x2: float) -> float:
        return float(f.numpy(np.array([[x1, x2]]))[0])

    def inner_opts(x2: float) -> dict:
        return _opts(inner_points(x2), limit=200, epsabs=1e-14, epsrel=1e-11)

    outer_opts = _opts(outer_points, limit=200, epsabs=1e-14, epsrel=1e-11)
    value, _ = integrate.nquad(func, [[0.0, 1.0], [0.0, 1.0]], opts=[inner_opts, outer_opts])
    return value


def _circle_kinks(center: float, other: float, radius: float, coord: float) -> list[float]:
    disc = radius**2 - (coord - other) ** 2
    if disc <= 0.0:
        return []
    return [center - math.sqrt(disc), center + math.sqrt(disc)]


def _genz_points(f):
    u = f.u
    return (lambda x2: [u[0]]), [u[1]]


QUAD_2D = {
    "gaussian:dim=2": lambda f: ((lambda x2: [0.5]), [0.5]),
    "camel:dim=2": lambda f: ((lambda x2: [1 / 3, 2 / 3]), [1 / 3, 2 / 3]),
    "camel:dim=2,alpha=0.05": lambda f: ((lambda x2: [1 / 3, 2 / 3]), [1 / 3, 2 / 3]),
    "polynomial:dim=2": lambda f: ((lambda x2: []), []),
    "zunis_camel:dim=2,sigma1d=0.1": lambda f: ((lambda x2: [0.25, 0.75]), [0.25, 0.75]),
    "zunis_camel:dim=2,sigma1d=0.001": lambda f: ((lambda x2: [0.25, 0.75]), [0.25, 0.75]),
    "signed_camel:dim=2": lambda f: ((lambda x2: [1 / 3, 2 / 3]), [1 / 3, 2 / 3]),
    "oscillatory:dim=2": _genz_points,
    "product_peak:dim=2": _genz_points,
    "corner_peak:dim=2": _genz_points,
    "gaussian_genz:dim=2": _genz_points,
    "c0:dim=2": _genz_points,
    "c0:dim=2,seed=3": _genz_points,
    "discontinuous:dim=2": _genz_points,
    "annulus": lambda f: (
        lambda x2: [
            *_circle_kinks(0.5, 0.5, f.rmin, x2),
            *_circle_kinks(0.5, 0.5, f.rmax, x2),
        ],
        [0.5 - f.rmax, 0.5 - f.rmin, 0.5, 0.5 + f.rmin, 0.5 + f.rmax],
    ),
}


@pytest.mark.parametrize("spec", sorted(QUAD_2D))
def test_exact_against_nquad_2d(spec: str) -> None:
    f = integrands.get(spec)
    inner, outer = QUAD_2D[spec](f)
    value = _nquad_2d(f, inner, outer)
    assert value == pytest.approx(f.exact, rel=1e-8, abs=1e-12 + f.exact_error)


@pytest.mark.parametrize(
    ("epsrel", "tolerance"),
    [(1e-10, 1e-11), pytest.param(1e-12, 1e-13, marks=pytest.mark.slow)],
)
def test_circles_against_nquad(epsrel: float, tolerance: float) -> None:
    f = integrands.get("circles")
    p1, p2, r = f.p1, f.p2, f.r

    def inner(x1: float) -> list[float]:  # integrate x2 innermost, the other order than stored
        return [*_circle_kinks(p2, p1, r, x1), *_circle_kinks(1 - p2, 1 - p1, r, x1)]

    def func(x2: float, x1: float) -> float:
        return float(f.numpy(np.array([[x1, x2]]))[0])

    def inner_opts(x1: float) -> dict:
        return _opts(inner(x1), limit=400, epsabs=1e-16, epsrel=epsrel)

    outer = {p1 - r, p1, p1 + r, 1 - p1 - r, 1 - p1, 1 - p1 + r}
    outer_opts = _opts(outer, limit=400, epsabs=1e-16, epsrel=epsrel)
    value, error = integrate.nquad(func, [[0, 1], [0, 1]], opts=[inner_opts, outer_opts])
    assert error < tolerance
    assert abs(value - f.exact) < tolerance + f.exact_error
    assert f.exact_error <= 1e-13
    assert f.exact == pytest.approx(0.0136848, abs=1e-7)  # i-flow: 0.0136848(1)


def test_circles_non_default_parameters_are_integrated() -> None:
    f = integrands.get("circles:w=60,r=0.2")
    value = _nquad_2d(
        f,
        lambda x2: [
            *_circle_kinks(f.p1, f.p2, f.r, x2),
            *_circle_kinks(1 - f.p1, 1 - f.p2, f.r, x2),
        ],
        [f.p2 - f.r, f.p2 + f.r, 1 - f.p2 - f.r, 1 - f.p2 + f.r],
    )
    assert value == pytest.approx(f.exact, rel=1e-9)
    assert 0.0 < f.exact_error < 1e-12


def test_toploop_against_gauss_legendre() -> None:
    f = integrands.get("toploop")
    assert f.exact == 1.93696402386819321e-10
    assert _gauss_legendre(f, 24) == pytest.approx(f.exact, rel=1e-11)
    other = integrands.get("toploop:s12=10000.0,s23=-5000.0")
    assert _gauss_legendre(other, 20) == pytest.approx(other.exact, rel=1e-11)
    with pytest.raises(ValueError, match="threshold"):
        integrands.get("toploop:s12=200000.0")


def test_corner_peak_3d_against_gauss_legendre() -> None:
    f = integrands.get("corner_peak:dim=3")
    assert _gauss_legendre(f, 40) == pytest.approx(f.exact, rel=1e-12)
    assert f.exact_error < 1e-13 * f.exact


def test_corner_peak_formulas_agree() -> None:
    # inclusion-exclusion (d <= 2 always, exact_error 0) and the Laplace quadrature path
    assert corner_peak_exact(np.array([0.3, 1.1]))[1] == 0.0
    for d in (3, 5, 8, 12, 30):
        a = integrands.get("corner_peak", dim=d).a
        value, error = corner_peak_exact(a)
        d_fact_prod = math.factorial(d) * np.prod(a)
        vertices = (np.arange(2**d)[:, None] >> np.arange(d)) & 1 if d <= 12 else None
        if vertices is not None:
            signs = (-1.0) ** vertices.sum(1)
            brute = math.fsum(signs / (1.0 + vertices @ a)) / d_fact_prod
            # inclusion-exclusion loses ~2^d eps / value of accuracy; compare loosely
            assert value == pytest.approx(brute, rel=1e-6)
        assert 0.0 < error < 1e-12 * value


def test_breit_wigner_against_quad() -> None:
    f = integrands.get("breit_wigner")
    peak = (f.mass - f.e_lo) / (f.e_hi - f.e_lo)
    g, w = np.polynomial.legendre.leggauss(3)  # exact in cos(theta) (degree 2) and phi (0)
    g, w = (g + 1) / 2, w / 2
    total = 0.0
    for u2, w2 in zip(g, w, strict=True):
        for u3, w3 in zip(g, w, strict=True):
            value, _ = integrate.quad(
                lambda u1, u2=u2, u3=u3: float(f.numpy(np.array([[u1, u2, u3]]))[0]),
                0.0,
                1.0,
                points=[peak],
                epsabs=0.0,
                epsrel=1e-12,
                limit=200,
            )
            total += w2 * w3 * value
    assert total == pytest.approx(f.exact, rel=1e-10)
    assert "91.1876" in f.description and "2.4952" in f.description


MONTE_CARLO = [
    ("gaussian:dim=4", 2**20),
    ("camel:dim=4", 2**20),
    ("camel:dim=4,alpha=0.4", 2**18),
    ("polynomial:dim=18", 2**16),
    ("polynomial:dim=96", 2**14),
    ("oscillatory:dim=6", 2**20),
    ("product_peak:dim=6", 2**18),
    ("corner_peak:dim=6", 2**18),
    ("corner_peak:dim=25", 2**18),
    ("gaussian_genz:dim=6", 2**20),
    ("c0:dim=6", 2**20),
    ("discontinuous:dim=6", 2**18),
    ("zunis_camel:dim=8,sigma1d=0.5", 2**18),
    ("signed_camel:dim=4,alpha=0.3,beta=0.2", 2**20),
    ("breit_wigner", 2**20),
    ("circles", 2**20),
    ("annulus", 2**18),
    ("toploop", 2**18),
]


@pytest.mark.parametrize(("spec", "n"), MONTE_CARLO)
def test_exact_against_monte_carlo(spec: str, n: int) -> None:
    f = integrands.get(spec)
    generator = torch.Generator().manual_seed(12345)
    x = torch.rand(n, f.dim, generator=generator, dtype=torch.float64)
    values = f(x)
    mean = values.mean().item()
    sigma = values.std().item() / math.sqrt(n)
    assert sigma < 0.02 * abs(f.exact), "test not meaningful: too few points"
    assert abs(mean - f.exact) < 5.0 * sigma + f.exact_error


@pytest.mark.parametrize(
    ("dim", "table"),
    [(2, (0.99918626, 0.98166031)), (4, (0.99837319, 0.96365697)),
     (8, (0.99674902, 0.92863475)), (16, (0.99350860, 0.86236250))],
)  # fmt: skip
def test_iflow_table_values(dim: int, table: tuple[float, float]) -> None:
    gaussian, camel = integrands.get("gaussian", dim=dim), integrands.get("camel", dim=dim)
    assert round(gaussian.exact, 8) == table[0]
    assert round(camel.exact, 8) == table[1]
    assert round(integrands.get("annulus").exact, 8) == 0.51050881
    assert integrands.get("polynomial", dim=54).exact == pytest.approx(9.0, rel=1e-15)


def test_zunis_width_rule() -> None:
    for sigma in (0.001, 0.1, 1.0):
        assert zunis_width(sigma, 1) == sigma
        target = zunis_log_moment_ratio(sigma, 1)
        widths = [zunis_width(sigma, d) for d in (2, 4, 8, 16, 32)]
        assert widths == sorted(widths) and widths[0] > sigma
        for d, s in zip((2, 4, 8, 16, 32), widths, strict=True):
            assert zunis_log_moment_ratio(s, d) == pytest.approx(target, rel=1e-9)
    # the closed-form moment ratio against a Monte Carlo estimate of the relative spread
    f = integrands.get("zunis_camel:dim=4,sigma1d=0.2")
    x = torch.rand(2**20, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    values = f(x)
    relative_std = (values.std() / values.mean()).item()
    expected = math.sqrt(math.expm1(zunis_log_moment_ratio(f.width, 4)))
    assert relative_std == pytest.approx(expected, rel=0.02)


def test_genz_parameters() -> None:
    defaults = {
        "oscillatory": 9.0,
        "product_peak": 7.25,
        "corner_peak": 1.85,
        "gaussian_genz": 7.03,
        "c0": 20.4,
        "discontinuous": 4.3,
    }
    for name, difficulty in defaults.items():
        f = integrands.get(name, dim=5)
        assert f.a.sum() == pytest.approx(difficulty, rel=1e-14)
        assert np.all((f.u >= 0) & (f.u <= 1)) and f.a.shape == f.u.shape == (5,)
        again = integrands.get(f"{name}:dim=5,seed=0")
        assert np.array_equal(again.a, f.a) and again.exact == f.exact
        assert not np.array_equal(integrands.get(name, dim=5, seed=1).u, f.u)
        assert integrands.get(name, dim=5, difficulty=2.0).a.sum() == pytest.approx(2.0)
    explicit = integrands.get("c0", dim=2, a=[1.0, 2.0], u=[0.5, 0.25])
    assert explicit.exact == pytest.approx(
        (2 - 2 * math.exp(-0.5)) * (2 - math.exp(-0.5) - math.exp(-1.5)) / 2.0, rel=1e-14
    )
    assert explicit.params["a"] == (1.0, 2.0)
    with pytest.raises(ValueError, match="a must be"):
        integrands.get("c0", dim=2, a=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="u must"):
        integrands.get("c0", dim=2, u=[0.5, 1.5])
    assert integrands.get("discontinuous", dim=1).exact > 0.0


@pytest.mark.parametrize("name", ALL_DEFAULTS)
def test_api_torch_numpy_float32(name: str) -> None:
    f = integrands.get(name)
    assert isinstance(f, integrands.Integrand)
    assert f.name == name and isinstance(f.dim, int) and f.params["dim"] == f.dim
    assert isinstance(f.exact, float) and isinstance(f.exact_error, float)
    assert f.exact_error >= 0.0 and math.isfinite(f.exact)
    assert f.description and "\n" not in f.description and f.source
    assert isinstance(f.separable, bool) and isinstance(f.sign_changing, bool)
    assert repr(f).startswith(f"{name}(dim={f.dim}")
    assert repr(integrands.get(name, **f.params)) == repr(f)

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(257, f.dim, generator=generator, dtype=torch.float64)
    out = f(x)
    assert out.shape == (257,) and out.dtype == torch.float64 and torch.isfinite(out).all()
    ref = f.numpy(x.numpy())
    assert ref.shape == (257,) and ref.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-300)

    out32 = f(x.float())
    assert out32.dtype == torch.float32 and out32.shape == (257,)
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(out32.double().numpy(), ref, rtol=2e-3, atol=1e-4 * scale)

    if torch.cuda.is_available():
        out_cuda = f(x.cuda())
        assert out_cuda.device.type == "cuda" and out_cuda.dtype == torch.float64
        np.testing.assert_allclose(out_cuda.cpu().numpy(), ref, rtol=1e-10, atol=1e-300)
        assert f(x.float().cuda()).dtype == torch.float32

    with pytest.raises(ValueError, match="shape"):
        f(torch.rand(4, f.dim + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        f.numpy(np.zeros(f.dim))
    with pytest.raises(TypeError):
        f(x.numpy())


def test_flags() -> None:
    separable = {n for n in ALL_DEFAULTS if integrands.get(n).separable}
    assert separable == {
        "gaussian",
        "product_peak",
        "gaussian_genz",
        "c0",
        "discontinuous",
        "breit_wigner",
    }
    signed = {n for n in ALL_DEFAULTS if integrands.get(n).sign_changing}
    assert signed == {"signed_camel", "oscillatory"}
    f = integrands.get("signed_camel")
    values = f(torch.rand(4096, 2, generator=torch.Generator().manual_seed(1)))
    assert (values > 0).any() and (values < 0).any()


def test_registry_parsing() -> None:
    f = integrands.get("camel:dim=8,alpha=0.1")
    assert isinstance(f, integrands.Camel) and f.dim == 8 and f.alpha == 0.1
    assert repr(f) == "camel(dim=8, alpha=0.1)"
    assert repr(integrands.get("camel", dim=8)) == "camel(dim=8, alpha=0.2)"
    assert repr(integrands.get(" camel : dim = 4 , alpha = 1e-1 ")) == "camel(dim=4, alpha=0.1)"
    assert integrands.parse_spec("gaussian:dim=16,alpha=2") == (
        "gaussian",
        {"dim": 16, "alpha": 2},
    )
    assert integrands.parse_spec("annulus") == ("annulus", {})
    assert set(ALL_DEFAULTS) >= {
        "gaussian", "camel", "circles", "annulus", "toploop", "polynomial", "oscillatory",
        "product_peak", "corner_peak", "gaussian_genz", "c0", "discontinuous", "zunis_camel",
        "signed_camel", "breit_wigner",
    }  # fmt: skip
    assert ALL_DEFAULTS == sorted(ALL_DEFAULTS)
    for name in integrands.__all__:
        assert hasattr(integrands, name)


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("camell", {}, "valid names: annulus"),
        ("camel:dims=3", {}, "valid parameters: dim, alpha"),
        ("camel:dim=3", {"beta": 1}, "valid parameters"),
        ("camel:dim", {}, "key=value"),
        ("camel:dim=3,dim=4", {}, "twice"),
        ("camel:alpha=abc", {}, "neither an int nor a float"),
        ("camel:alpha=nan", {}, "finite"),
        ("camel:alpha=__import__('os')", {}, "neither an int nor a float"),
        ("camel:dim=3", {"dim": 4}, "both"),
        ("camel:dim=2.5", {}, "positive integer"),
        ("camel:dim=0", {}, "positive integer"),
        ("camel:alpha=-1", {}, "positive"),
        ("annulus:dim=3", {}, "dim=2 only"),
        ("annulus:rmax=0.6", {}, "rmax <= 0.5"),
        ("toploop:dim=2", {}, "dim=3 only"),
        ("breit_wigner:window=100", {}, "window too wide"),
    ],
)
def test_registry_errors(spec: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        integrands.get(spec, **kwargs)


def test_register_new_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @integrands.register("shifted_polynomial")
    class Shifted(integrands.Integrand):
        description = "polynomial plus a constant"
        source = "test"

        def __init__(self, dim: int = 2, shift: float = 1.0) -> None:
            self.shift = float(shift)
            super().__init__(dim, shift=self.shift)

        def _compute_exact(self) -> tuple[float, float]:
            return self.dim / 6.0 + self.shift, 0.0

        def _evaluate(self, x, ops):
            return (x - x * x).sum(-1) + self.shift

    f = integrands.get("shifted_polynomial:dim=3,shift=2")
    assert "shifted_polynomial" in integrands.names() and f.exact == 2.5
    assert repr(f) == "shifted_polynomial(dim=3, shift=2.0)"
    with pytest.raises(ValueError, match="already used"):
        integrands.register("camel")(Shifted)
    with pytest.raises(ValueError, match="invalid integrand name"):
        integrands.register("Bad Name")
    with pytest.raises(TypeError):
        integrands.register("not_a_class")(object)
