"""Bayesian evidence problems with known ``log Z``: a log-likelihood, a prior transform, a truth.

Each problem is a likelihood ``L(theta)`` on a parameter space with a uniform prior on a box
``[low, high]``, given the way samplers take it: :meth:`EvidenceProblem.log_likelihood` maps a
batch of parameter points ``(n, dim)`` to ``log L`` ``(n,)`` and
:meth:`EvidenceProblem.prior_transform` maps points of the unit cube ``[0, 1]^dim`` to the
box. The evidence is ``Z = int L(theta) pi(theta) dtheta = int_{[0,1]^dim} L(prior(u)) du``;
:attr:`EvidenceProblem.log_z` holds its logarithm, with the bound on its own error and where
it comes from. Everything is computed in float64, in log space (``logaddexp`` for the
mixtures), so that ``L`` may overflow or underflow float64 without harm.

The problems (:data:`EVIDENCE_PROBLEMS`):

- ``shells_2d``, ``shells_10d``: two Gaussian shells (Feroz & Hobson, arXiv:0704.3704;
  MultiNest, Feroz, Hobson & Bridges, arXiv:0809.3437, §6.1 and Table 2: log Z = -1.75 in
  2-D, -14.59 in 10-D). Here exact: a closed form for the radial integral.
- ``eggbox``: the 2-D egg box (MultiNest paper §6.2, which gives 235.88; the importance nested
  sampling paper, Feroz, Hobson, Cameron & Pettitt, arXiv:1306.2144, gives 235.856, the value
  dynesty's test suite uses). Here 235.8559403322541 from a spectrally convergent quadrature.
- ``gaussian_16d``: a narrow correlated Gaussian likelihood in 16-D inside a uniform box.
- ``mixture_8d``: two well separated Gaussian modes of unequal weight and shape in 8-D.

The problems are not in the :mod:`integrands` name registry: that registry holds
:class:`integrands.Integrand` subclasses, integrands on the unit cube with a linear-scale exact
value, whereas these are log-likelihoods in parameter space with a prior transform.

Example:
    >>> from integrands.evidence import EVIDENCE_PROBLEMS
    >>> p = EVIDENCE_PROBLEMS["shells_2d"]
    >>> round(p.log_z, 4)
    -1.7456
    >>> import torch
    >>> p.log_likelihood(p.prior_transform(torch.rand(5, 2))).shape
    torch.Size([5])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import torch
from scipy import integrate, special

__all__ = [
    "EVIDENCE_PROBLEMS",
    "CorrelatedGaussian",
    "Eggbox",
    "EvidenceProblem",
    "GaussianMixture",
    "GaussianShells",
    "eggbox_log_z",
    "random_correlation",
    "shell_log_mass",
]

Array = Any  # a torch.Tensor or a numpy.ndarray, following the input

_MULTINEST = "Feroz, Hobson & Bridges, MultiNest, arXiv:0809.3437"
_INS = "Feroz, Hobson, Cameron & Pettitt, importance nested sampling, arXiv:1306.2144"


class EvidenceProblem(ABC):
    """A log-likelihood with a uniform prior on a box and the exact log-evidence.

    Subclasses set their parameters, call ``super().__init__(name, low, high)`` and then set
    :attr:`log_z`, :attr:`log_z_error` and :attr:`log_z_source`; they write ``log L`` once in
    :meth:`_log_likelihood` against an array module (``torch`` or ``numpy``) using only
    operations spelt the same in both.

    Attributes:
        name: the key in :data:`EVIDENCE_PROBLEMS`.
        dim: number of parameters.
        low, high: float64 arrays of shape ``(dim,)``, the prior box.
        log_z: ``log Z`` with ``Z = int L pi``, ``pi = 1 / prod(high - low)`` on the box.
        log_z_error: a bound on ``|log_z - log Z_true|`` (rounding aside).
        log_z_source: how :attr:`log_z` was obtained and what it was checked against.
        description: one line saying what the problem is.
    """

    name: str
    dim: int
    low: np.ndarray
    high: np.ndarray
    log_z: float
    log_z_error: float
    log_z_source: str
    description: str = ""

    def __init__(self, name: str, low: np.ndarray, high: np.ndarray) -> None:
        self.name = name
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.span = self.high - self.low
        self.dim = int(self.low.shape[0])
        self._cache: dict[tuple[str, torch.device], torch.Tensor] = {}

    @abstractmethod
    def _log_likelihood(self, theta: Array, xp: ModuleType) -> Array:
        """``log L`` of a float64 batch ``theta`` of shape ``(n, dim)``; ``xp`` its module."""

    # -- public API ----------------------------------------------------------------------------

    @property
    def log_prior_volume(self) -> float:
        """``log prod(high - low)``: minus the log prior density on the box."""
        return float(np.log(self.span).sum())

    def log_likelihood(self, theta: Array) -> Array:
        """``log L`` of a batch of parameter points.

        Arguments:
            theta: ``(n, dim)`` points of the prior box, a torch tensor (any float dtype and
                device) or a numpy array.

        Returns:
            ``(n,)`` float64 values of ``log L``: a tensor on ``theta``'s device for a tensor,
            a numpy array otherwise.

        Raises:
            ValueError: ``theta`` is not of shape ``(n, dim)``.
        """
        if isinstance(theta, torch.Tensor):
            self._check(tuple(theta.shape), "theta")
            return self._log_likelihood(theta.to(torch.float64), torch)
        theta = np.asarray(theta, dtype=np.float64)
        self._check(theta.shape, "theta")
        return np.asarray(self._log_likelihood(theta, np), dtype=np.float64)

    def prior_transform(self, u: Array) -> Array:
        """Map points of the unit cube to the prior box, ``low + (high - low) u``.

        Arguments:
            u: ``(n, dim)`` points of ``[0, 1]^dim``, a torch tensor or a numpy array.

        Returns:
            ``(n, dim)`` float64 parameter points, of the input's kind (and device).
        """
        if isinstance(u, torch.Tensor):
            self._check(tuple(u.shape), "u")
            u = u.to(torch.float64)
            return self._const("low", u) + self._const("span", u) * u
        u = np.asarray(u, dtype=np.float64)
        self._check(u.shape, "u")
        return self.low + self.span * u

    def log_likelihood_numpy(self, theta: np.ndarray) -> float | np.ndarray:
        """``log L`` with numpy, for one point or a batch (the form nautilus and dynesty take).

        Arguments:
            theta: one point of shape ``(dim,)`` or a batch ``(n, dim)``.

        Returns:
            A Python float for one point, else a float64 array of shape ``(n,)``.
        """
        theta = np.asarray(theta, dtype=np.float64)
        if theta.ndim == 1:
            return float(self.log_likelihood(theta[None, :])[0])
        return self.log_likelihood(theta)

    def prior_transform_numpy(self, u: np.ndarray) -> np.ndarray:
        """The prior transform with numpy, for one point ``(dim,)`` or a batch ``(n, dim)``.

        Arguments:
            u: point(s) of the unit cube.

        Returns:
            float64 parameter point(s) of the same shape.
        """
        u = np.asarray(u, dtype=np.float64)
        if u.ndim == 1:
            return self.prior_transform(u[None, :])[0]
        return self.prior_transform(u)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim}, log_z={self.log_z:.6f})"

    # -- helpers -------------------------------------------------------------------------------

    def _check(self, shape: tuple[int, ...], what: str) -> None:
        if len(shape) != 2 or shape[1] != self.dim:
            raise ValueError(f"{self.name} expects {what} of shape (n, {self.dim}), got {shape}")

    def _const(self, attr: str, like: Array) -> Array:
        """The float64 numpy constant ``attr`` as an array of ``like``'s kind (cached)."""
        value = getattr(self, attr)
        if not isinstance(like, torch.Tensor):
            return value
        key = (attr, like.device)
        cached = self._cache.get(key)
        if cached is None:
            cached = torch.as_tensor(value, dtype=torch.float64, device=like.device)
            self._cache[key] = cached
        return cached


# ---------------------------------------------------------------------------- Gaussian shells


def _normal_moment(n: int, mean: float, sd: float) -> float:
    """``E[X^n]`` for ``X ~ N(mean, sd^2)``: ``sum_k C(n, 2k) mean^(n-2k) sd^2k (2k-1)!!``."""
    return math.fsum(math.comb(n, 2 * k) * mean ** (n - 2 * k) * sd ** (2 * k)
                     * math.prod(range(1, 2 * k, 2)) for k in range(n // 2 + 1))


def shell_log_mass(dim: int, radius: float, width: float) -> float:
    """``log int_{R^dim} N(|x| - radius; 0, width^2) dx``: the mass of one Gaussian shell.

    In polar coordinates the integral is ``S_{dim-1} int_0^inf rho^(dim-1) N(rho; radius,
    width^2) d rho`` with ``S_{dim-1} = 2 pi^(dim/2) / Gamma(dim/2)`` the area of the unit
    sphere. Extending the radial integral to ``rho < 0`` changes it by a relative amount of
    order ``exp(-radius^2 / (2 width^2))`` (``e^-200`` for the MultiNest shells), so it is the
    normal moment ``E[X^(dim-1)]``, a finite sum.

    Arguments:
        dim: the dimension (>= 1).
        radius: the shell radius ``r``.
        width: the shell width ``w``.

    Returns:
        The logarithm of the mass.

    Example:
        >>> round(math.exp(shell_log_mass(2, 2.0, 0.1)) / (4 * math.pi), 12)  # 2 pi r
        1.0
    """
    log_sphere = math.log(2.0) + 0.5 * dim * math.log(math.pi) - math.lgamma(0.5 * dim)
    return log_sphere + math.log(_normal_moment(dim - 1, radius, width))


def _shell_box_loss(dim: int, radius: float, width: float, gap: float) -> float:
    """Fraction of one shell's mass beyond a face at distance ``gap`` from its centre.

    With ``rho`` the distance from the centre (density ``∝ rho^(dim-1) N(rho; radius, width)``)
    and ``c`` the cosine of the angle to the face's normal (density ``∝ (1 - c^2)^((dim-3)/2)``,
    independent of ``rho``), the mass beyond the face is ``P(rho c > gap)``.
    """

    def beyond(c0: float) -> float:  # P(c > c0)
        if c0 >= 1.0:
            return 0.0
        if dim == 1:
            return 0.5
        if dim == 2:
            return math.acos(c0) / math.pi
        p = 0.5 * (dim - 3)
        num = integrate.quad(lambda c: (1.0 - c * c) ** p, c0, 1.0)[0]
        return num / math.exp(math.lgamma(p + 1.0) + math.lgamma(0.5) - math.lgamma(p + 1.5))

    def radial(rho: float) -> float:
        log_n = -0.5 * ((rho - radius) / width) ** 2 - math.log(width * math.sqrt(2 * math.pi))
        return math.exp((dim - 1) * math.log(rho) + log_n)

    hi = radius + 40.0 * width
    if gap >= hi:
        return 0.0
    lost = integrate.quad(lambda rho: radial(rho) * beyond(gap / rho), gap, hi,
                          epsabs=0.0, epsrel=1e-8, limit=200)[0]
    return lost / _normal_moment(dim - 1, radius, width)


class GaussianShells(EvidenceProblem):
    """Two Gaussian shells, ``L = sum_k N(|theta - c_k| - r; 0, w^2)``, uniform prior on a cube.

    The MultiNest test problem (Feroz & Hobson, arXiv:0704.3704; Feroz, Hobson & Bridges,
    arXiv:0809.3437, §6.1): ``w = 0.1``, ``r = 2``, centres ``(±3.5, 0, ..., 0)``, prior
    ``U[-6, 6]^dim``. Thin, curved, two-mode posterior.

    ``log Z`` is exact: each shell's mass is the closed-form radial integral of
    :func:`shell_log_mass`, ``Z = 2 M / 12^dim``, less the part of each shell beyond the face
    of the box at ``|theta_1| = 6`` (computed by quadrature: a fraction 1.2e-8 in 2-D, 7e-14 in
    10-D). The shells do not overlap and ``L`` is their sum, so nothing else enters. It gives
    -1.745642 (2-D) and -14.590491 (10-D), as the MultiNest paper's Table 2 (-1.75, -14.59).

    Arguments:
        dim: number of parameters (>= 2).
        radius: shell radius ``r``.
        width: shell width ``w``.
        center: distance of the two centres from the origin along the first axis.
        half_width: the prior box is ``[-half_width, half_width]^dim``.

    Example:
        >>> round(GaussianShells(2).log_z, 4), round(GaussianShells(10).log_z, 4)
        (-1.7456, -14.5905)
    """

    description = "two Gaussian shells (MultiNest §6.1), uniform prior on [-6, 6]^d"

    def __init__(self, dim: int = 2, *, radius: float = 2.0, width: float = 0.1,
                 center: float = 3.5, half_width: float = 6.0) -> None:
        if dim < 2:
            raise ValueError(f"GaussianShells needs dim >= 2, got {dim}")
        super().__init__(f"shells_{dim}d", np.full(dim, -half_width), np.full(dim, half_width))
        self.radius, self.width = float(radius), float(width)
        self.centers = np.zeros((2, dim))
        self.centers[:, 0] = (-center, center)
        self._log_norm = -0.5 * math.log(2.0 * math.pi * self.width**2)
        loss = _shell_box_loss(dim, self.radius, self.width, half_width - center)
        self.log_z = (math.log(2.0) + shell_log_mass(dim, self.radius, self.width)
                      + math.log1p(-loss) - self.log_prior_volume)
        self.log_z_error = 1e-12
        self.log_z_source = (
            "exact: closed-form radial integral (normal moment) less the mass beyond the box "
            f"(fraction {loss:.1e}, quadrature); {_MULTINEST}, Table 2, gives -1.75 (2-D) and "
            "-14.59 (10-D)")

    def _log_likelihood(self, theta: Array, xp: ModuleType) -> Array:
        c = self._const("centers", theta)
        terms = []
        for k in range(2):
            dist = xp.sqrt(((theta - c[k]) ** 2).sum(-1))
            terms.append(self._log_norm - 0.5 * ((dist - self.radius) / self.width) ** 2)
        return xp.logaddexp(terms[0], terms[1])


# ---------------------------------------------------------------------------- egg box


def eggbox_log_z(n: int = 400) -> float:
    """``log Z`` of the egg box by the trapezoidal rule on ``n x n`` intervals.

    With ``s = x/2``, ``t = y/2`` the prior ``U[0, 10 pi]^2`` becomes ``U[0, 5 pi]^2`` and,
    since ``g(s, t) = exp((2 + cos s cos t)^5)`` is even and ``2 pi``-periodic in each variable
    and ``g(s + pi, t + pi) = g(s, t)``, ``Z = pi^-2 int_{[0, pi]^2} g``. The trapezoidal rule
    with half weights at ``0`` and ``pi`` is the periodic trapezoidal rule for an even
    integrand, which converges geometrically: ``n = 100`` already agrees with ``n = 3200`` to
    1e-15 in ``log Z``. Evaluated in log space around the maximum ``log g = 243``.

    Arguments:
        n: intervals per axis.

    Returns:
        ``log Z``.

    Example:
        >>> round(eggbox_log_z(), 6)
        235.85594
    """
    t = np.linspace(0.0, math.pi, n + 1)
    log_w = np.full(n + 1, math.log(math.pi / n))
    log_w[[0, -1]] -= math.log(2.0)
    c = np.cos(t)
    log_g = (2.0 + np.outer(c, c)) ** 5
    return float(special.logsumexp(log_g + log_w[:, None] + log_w[None, :])
                 - 2.0 * math.log(math.pi))


class Eggbox(EvidenceProblem):
    """The egg box, ``L = exp((2 + cos(x/2) cos(y/2))^5)`` with prior ``U[0, 10 pi]^2``.

    MultiNest paper (arXiv:0809.3437, §6.2): 18 sharp maxima of equal height (``log L = 243``)
    on a regular grid, 8 inside the box and the others cut by its edges and corners.

    ``log Z = 235.8559403322541`` by :func:`eggbox_log_z` (periodic trapezoidal rule,
    converged to 1e-15), confirmed by nested ``scipy.integrate.quad`` on a cell of the
    symmetry and by a midpoint rule on the original box (tests). The MultiNest paper's 235.88
    is 0.024 high; the importance nested sampling paper (arXiv:1306.2144) gives 235.856.

    Example:
        >>> round(Eggbox().log_z, 3)
        235.856
    """

    description = "egg box (MultiNest §6.2), prior U[0, 10 pi]^2"

    def __init__(self) -> None:
        super().__init__("eggbox", np.zeros(2), np.full(2, 10.0 * math.pi))
        self.log_z = eggbox_log_z()
        self.log_z_error = 1e-12
        self.log_z_source = (
            "periodic trapezoidal rule on [0, pi]^2 (converged to 1e-15; nested quad agrees); "
            f"{_MULTINEST} gives 235.88, {_INS} gives 235.856")

    def _log_likelihood(self, theta: Array, xp: ModuleType) -> Array:
        return (2.0 + xp.cos(theta[:, 0] / 2.0) * xp.cos(theta[:, 1] / 2.0)) ** 5


# ---------------------------------------------------------------------------- Gaussians


def random_correlation(dim: int, condition: float, seed: int) -> np.ndarray:
    """A random correlation matrix with a fixed seed.

    Eigenvalues spaced geometrically from 1 to ``1 / condition``, a random rotation (QR of a
    Gaussian matrix with the sign fixed), then rescaled to a unit diagonal (which moves the
    eigenvalues a little).

    Arguments:
        dim: size of the matrix.
        condition: ratio of the largest to the smallest eigenvalue before the rescaling.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        A symmetric positive definite ``(dim, dim)`` float64 array with ones on the diagonal.
    """
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))
    eig = np.geomspace(1.0, 1.0 / condition, dim)
    s = (q * eig) @ q.T
    d = np.sqrt(np.diag(s))
    c = s / np.outer(d, d)
    return 0.5 * (c + c.T)


class _Normal:
    """A multivariate normal density written for log-space evaluation."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        chol = np.linalg.cholesky(cov)
        self.whiten = np.linalg.inv(chol).T  # z = (x - mean) @ whiten, so that z ~ N(0, 1)
        self.log_norm = float(-0.5 * len(mean) * math.log(2.0 * math.pi)
                              - np.log(np.diag(chol)).sum())


class _GaussianProblem(EvidenceProblem):
    """Shared part of the Gaussian problems: a weighted sum of normalised normal densities."""

    _modes: list[_Normal]
    _log_weights: np.ndarray

    def _setup(self, modes: list[_Normal], weights: np.ndarray) -> None:
        self._modes = modes
        self._log_weights = np.log(np.asarray(weights, dtype=np.float64))
        for k, mode in enumerate(modes):
            setattr(self, f"mean_{k}", mode.mean)
            setattr(self, f"whiten_{k}", mode.whiten)
        # Box truncation: the nearest face is `gap` marginal sds away from some mean, so each
        # mode's mass outside the box is at most 2 dim Phi(-gap) (a union bound over the faces);
        # log Z = -log V - log(1/P_box) is then -log V to within that bound.
        gap = min(float(np.min(np.minimum(m.mean - self.low, self.high - m.mean)
                               / np.sqrt(np.diag(m.cov)))) for m in modes)
        self.gap_sigmas = gap
        self.truncation_bound = float(2 * self.dim * special.ndtr(-gap))
        self.log_z = -self.log_prior_volume
        self.log_z_error = max(self.truncation_bound, 1e-15)

    def _log_likelihood(self, theta: Array, xp: ModuleType) -> Array:
        out = None
        for k, mode in enumerate(self._modes):
            z = (theta - self._const(f"mean_{k}", theta)) @ self._const(f"whiten_{k}", theta)
            term = float(self._log_weights[k]) + mode.log_norm - 0.5 * (z * z).sum(-1)
            out = term if out is None else xp.logaddexp(out, term)
        return out


class CorrelatedGaussian(_GaussianProblem):
    """A narrow correlated Gaussian likelihood, ``L = N(theta; mu, Sigma)``, uniform prior box.

    ``Sigma = sd^2 C`` with ``C`` from :func:`random_correlation` (fixed seed; condition 100
    before the rescaling to a unit diagonal, 69 after in 16-D); the mean is drawn uniformly in
    ``[-0.5, 0.5]^dim`` (same seed); prior ``U[-1, 1]^dim``. In 16-D with ``sd = 0.01`` the
    correlations reach 0.65 and the posterior's information (KL divergence from the prior) is
    68 nats: it fills ``e^-68 ~ 2e-30`` of the prior.

    ``L`` is a normalised density, so ``Z = P_box / V`` with ``V = 2^dim`` the prior volume and
    ``P_box`` the Gaussian's mass inside the box. Every mean is at least 0.5 (50 sd) from the
    faces, so ``1 - P_box < 2 dim Phi(-50)``, which underflows: ``log Z = -dim log 2`` to
    float64 precision (-11.090354888959125 in 16-D).

    Arguments:
        dim: number of parameters.
        sd: marginal standard deviation of every parameter.
        condition: condition number of the correlation matrix (before unit-diagonal scaling).
        seed: seed of the mean and the correlation matrix.

    Example:
        >>> p = CorrelatedGaussian()
        >>> round(p.log_z, 6), p.truncation_bound
        (-11.090355, 0.0)
    """

    description = "narrow correlated Gaussian likelihood (sd 0.01, condition ~70) in U[-1, 1]^d"

    def __init__(self, dim: int = 16, *, sd: float = 0.01, condition: float = 100.0,
                 seed: int = 2024) -> None:
        super().__init__(f"gaussian_{dim}d", np.full(dim, -1.0), np.full(dim, 1.0))
        rng = np.random.default_rng(seed)
        self.mean = rng.uniform(-0.5, 0.5, dim)
        self.correlation = random_correlation(dim, condition, seed)
        self.cov = sd**2 * self.correlation
        self._setup([_Normal(self.mean, self.cov)], np.ones(1))
        self.log_z_source = (f"analytic: normalised density, log Z = -log V = -{dim} log 2; "
                             f"mass outside the box < {self.truncation_bound:.1e} "
                             f"(nearest face {self.gap_sigmas:.0f} sd away)")


class GaussianMixture(_GaussianProblem):
    """Two well separated Gaussian modes of unequal weight and shape, uniform prior box.

    ``L = w_1 N(theta; -a 1, s_1^2 I) + w_2 N(theta; +a 1, s_2^2 C)`` with ``a = 0.4``,
    ``s_1 = 0.02`` (isotropic), ``s_2 = 0.04`` with a random correlation ``C`` (fixed seed,
    condition 10), weights ``2/3`` and ``1/3``, prior ``U[-1, 1]^dim``. The narrow mode has
    the higher peak (250 times the other's in 8-D); a sampler that keeps only one mode is off
    by ``log(2/3) = -0.41`` or ``log(1/3) = -1.10``.

    ``Z = (w_1 P_1 + w_2 P_2) / V`` with ``P_k`` each mode's mass in the box; the faces are
    15 sd or more from both means, so ``1 - P_k < 2 dim Phi(-15)`` (5e-50) and
    ``log Z = -dim log 2`` (-5.545177444479562 in 8-D).

    Arguments:
        dim: number of parameters.
        offset: the means are ``-offset`` and ``+offset`` on every axis.
        sds: the marginal standard deviations of the two modes.
        weights: the mode weights (normalised here).
        seed: seed of the second mode's correlation matrix.

    Example:
        >>> round(GaussianMixture().log_z, 6)
        -5.545177
    """

    description = "two separated Gaussian modes (weights 2/3, 1/3; sd 0.02, 0.04) in U[-1, 1]^d"

    def __init__(self, dim: int = 8, *, offset: float = 0.4,
                 sds: tuple[float, float] = (0.02, 0.04),
                 weights: tuple[float, float] = (2.0 / 3.0, 1.0 / 3.0),
                 seed: int = 7) -> None:
        super().__init__(f"mixture_{dim}d", np.full(dim, -1.0), np.full(dim, 1.0))
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.means = np.stack([np.full(dim, -offset), np.full(dim, offset)])
        self.covs = np.stack([sds[0] ** 2 * np.eye(dim),
                              sds[1] ** 2 * random_correlation(dim, 10.0, seed)])
        self._setup([_Normal(m, c) for m, c in zip(self.means, self.covs, strict=True)],
                     self.weights)
        self.log_z_source = (f"analytic: mixture of normalised densities, log Z = -log V = "
                             f"-{dim} log 2; mass outside the box < {self.truncation_bound:.1e} "
                             f"(nearest face {self.gap_sigmas:.0f} sd away)")


# ---------------------------------------------------------------------------- the set

_FACTORIES: dict[str, Callable[[], EvidenceProblem]] = {
    "shells_2d": lambda: GaussianShells(2),
    "shells_10d": lambda: GaussianShells(10),
    "eggbox": Eggbox,
    "gaussian_16d": lambda: CorrelatedGaussian(16),
    "mixture_8d": lambda: GaussianMixture(8),
}

EVIDENCE_PROBLEMS: dict[str, EvidenceProblem] = {name: make() for name, make in
                                                  _FACTORIES.items()}
"""The standard evidence problems by name (instances; built once, at import, in ~10 ms)."""
