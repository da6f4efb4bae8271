"""Quick start: the 4-D camel of i-flow's test set (its output is shown in the README)."""

import torch

import flowint
import integrands

camel = integrands.get("camel:dim=4")  # or any batched torch / numpy function

result = flowint.integrate(camel, dim=4, budget=300_000, seed=1)
print(result)  # the estimate with its error
print(f"exact = {camel.exact:.8f}   pull = {result.pull(camel.exact):+.2f}")
print(f"calls: {result.n_evals_train} exploring/training + {result.n_evals_final} final, "
      f"through the {result.method} (training calls reused: {result.n_evals_reused}); "
      f"{result.wall_time:.1f} s")

# Your own integrand over a box: f takes an (n, dim) batch and returns (n,) values.
r = flowint.integrate(lambda x: torch.exp(-(x**2).sum(-1)), dim=3, bounds=(-2, 2),
                      budget=100_000, seed=1)
exact = (torch.pi**0.5 * torch.special.erf(torch.tensor(2.0, dtype=torch.float64))) ** 3
print(f"∫ exp(-|x|²) over [-2,2]³ = {r}   (exact {float(exact):.6f})")
