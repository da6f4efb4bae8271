"""Affine flow (lecture notes §3.3): fit x = A z + b to a correlated Gaussian.

With z ~ N(0, I) the flow is N(b, A A^T), so maximum likelihood recovers the mean and the
covariance (A itself only up to an orthogonal factor). Run from the repository root:

    python examples/affine.py
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import save, scatter

from flowint import fit
from flowint.flows import affine_flow

MEAN = np.array([1.0, -0.5])
COV = np.array([[1.0, 0.8], [0.8, 0.9]])


def main() -> None:
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(0)
    data = rng.multivariate_normal(MEAN, COV, 3000)
    flow = affine_flow(2, "lu", seed=0)
    result = fit(flow, data, epochs=200, batch_size=500, lr=0.05, patience=20, seed=0)
    layer = flow.transforms[0]
    with torch.no_grad():
        a, b = layer.matrix().numpy(), layer.shift.numpy()
        samples, _ = flow.sample(3000, seed=1)
    print(result)
    print("fitted mean", b.round(3), "covariance", (a @ a.T).round(3).tolist())

    lims = ((-3.0, 5.0), (-4.0, 3.0))
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    scatter(axes[0], data, "target N(m, S)", lims)
    scatter(axes[1], samples.numpy(), "affine flow (LU): N(b, A A^T)", lims, color="C1")
    save(fig, "affine")


if __name__ == "__main__":
    main()
