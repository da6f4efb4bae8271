"""Autoregressive flows (lecture notes §3.5): MAF for density estimation, IAF for sampling.

* MAF evaluates densities in one conditioner pass per layer, so it is fitted to data by maximum
  likelihood (:func:`flowint.fit`) — here a ring of eight Gaussians.
* IAF samples in one pass and knows the density of its own samples, so it is trained by the
  reverse KL divergence ``E_q[log q(x) - log p(x)]`` to an unnormalised target known only as a
  formula — here a banana-shaped density.

Run from the repository root:

    python examples/autoregressive.py
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import GaussianMixture, density_image, save, scatter

from flowint import fit
from flowint.flows import iaf_flow, maf_flow


def banana_log_density(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised log-density of a banana: x1 ~ N(0, 2^2), x2 | x1 ~ N(x1^2 / 4 - 1, 0.5^2)."""
    x1, x2 = x[..., 0], x[..., 1]
    return -0.5 * (x1 / 2.0) ** 2 - 0.5 * ((x2 - 0.25 * x1**2 + 1.0) / 0.5) ** 2


def fit_maf(axes) -> None:
    angles = np.arange(8) * np.pi / 4
    ring = GaussianMixture(np.stack([2.5 * np.cos(angles), 2.5 * np.sin(angles)], 1),
                           [0.08 * np.eye(2)] * 8)
    data = ring.sample(4000, seed=0)
    flow = maf_flow(2, "rqs", n_layers=4, hidden=64, bins=8, seed=0)
    result = fit(flow, data, epochs=60, batch_size=256, lr=3e-3, patience=8, seed=0)
    print("MAF:", result)
    samples, _ = flow.sample(3000, seed=1)
    lims = ((-4.0, 4.0), (-4.0, 4.0))
    scatter(axes[0], data, "target: ring of 8 Gaussians", lims)
    scatter(axes[1], samples.numpy(), "MAF (rqs) fitted by max. likelihood", lims, "C1")


def train_iaf(axes) -> None:
    flow = iaf_flow(2, "affine", n_layers=4, hidden=64, seed=0)
    optimizer = torch.optim.Adam(flow.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(2)
    for _ in range(600):
        x, log_q = flow.rsample(256, seed=gen)  # reparametrised; one conditioner pass a layer
        loss = (log_q - banana_log_density(x)).mean()  # reverse KL up to log Z
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    samples, _ = flow.sample(3000, seed=3)
    # The loss is KL(q || p) - log Z with Z = 2 pi * 2 * 0.5 the target's normaliser.
    print(f"IAF: KL(q || p) = {loss.item() + np.log(2 * np.pi):.3f} nats (last batch)")
    lims = ((-6.0, 6.0), (-2.5, 8.0))
    density_image(axes[0], lambda g: banana_log_density(torch.as_tensor(g)).numpy(), lims,
                  "target: banana (unnormalised)")
    scatter(axes[1], samples.numpy(), "IAF trained by reverse KL", lims, "C1")


def main() -> None:
    torch.set_default_dtype(torch.float64)
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    fit_maf(axes[:2])
    train_iaf(axes[2:])
    save(fig, "autoregressive")


if __name__ == "__main__":
    main()
