"""A Bayesian evidence from a log-likelihood and a prior transform (docs/evidence.md).

Uniform prior on [-5, 5]^2 and a Gaussian likelihood of sd 0.1 at the origin: Z = 1/100.
Its output is committed beside it in ``evidence.out``.
"""

import math

import flowint


def prior(u):
    """Unit cube -> parameter space, batched: uniform on [-5, 5]^2."""
    return -5.0 + 10.0 * u


def log_like(theta):
    """log L, shape (n,): a normalized Gaussian of sd 0.1 at the origin."""
    return -(theta**2).sum(-1) / (2 * 0.01) - math.log(2 * math.pi * 0.01)


r = flowint.integrate(log_like, 2, log=True, prior=prior, budget=30_000, seed=2, progress=False)
print(r)  # exp(log Z with its error)
print(f"log Z = {r.log_mean:.5f} +- {r.log_sdev:.5f}   exact {math.log(0.01):.5f}   "
      f"pull {r.log_pull(math.log(0.01)):+.2f}   Z = {r.mean:.6f}")
