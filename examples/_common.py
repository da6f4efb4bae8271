"""Shared pieces of the example scripts: 2-D targets and figure helpers (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import multivariate_normal  # noqa: E402

__all__ = ["FIGURES", "two_moons", "GaussianMixture", "scatter", "density_image", "save"]

FIGURES = Path(__file__).resolve().parent / "figures"


def two_moons(n: int, seed: int, noise: float = 0.08) -> np.ndarray:
    """Points on two interleaved half circles, with Gaussian noise (shape ``(n, 2)``)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, np.pi, n)
    upper = rng.integers(0, 2, n).astype(bool)
    x = np.where(upper, np.cos(angle), 1.0 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    return np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))


class GaussianMixture:
    """An equal-weight mixture of 2-D Gaussians with ``sample`` and ``logpdf``."""

    def __init__(self, means, covs):
        self.parts = [multivariate_normal(m, c) for m, c in zip(means, covs, strict=True)]

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        pick = rng.integers(0, len(self.parts), n)
        draws = np.stack([p.rvs(n, random_state=rng) for p in self.parts])
        return draws[pick, np.arange(n)]

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        logs = np.stack([p.logpdf(x) for p in self.parts])
        return np.logaddexp.reduce(logs, axis=0) - np.log(len(self.parts))


def scatter(ax, points: np.ndarray, title: str, lims=None, color: str = "C0",
            equal: bool = True) -> None:
    """A light scatter plot of 2-D points (on equal-aspect axes unless ``equal=False``)."""
    ax.scatter(points[:, 0], points[:, 1], s=1.5, alpha=0.4, color=color, rasterized=True)
    ax.set_title(title, fontsize=10)
    if lims is not None:
        ax.set_xlim(lims[0])
        ax.set_ylim(lims[1])
    if equal:
        ax.set_aspect("equal")
    ax.tick_params(labelsize=7)


def density_image(ax, log_density, lims, title: str, n: int = 150) -> None:
    """Show ``exp(log_density)`` (a function of an ``(m, 2)`` array) on a grid over ``lims``."""
    xs = np.linspace(*lims[0], n)
    ys = np.linspace(*lims[1], n)
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    dens = np.exp(log_density(grid)).reshape(n, n)
    ax.imshow(dens, origin="lower", extent=(*lims[0], *lims[1]), cmap="viridis", aspect="equal")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)


def save(fig, name: str) -> Path:
    """Write ``examples/figures/<name>.png`` (small: dpi 80) and close the figure."""
    FIGURES.mkdir(exist_ok=True)
    path = FIGURES / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"wrote {path.relative_to(FIGURES.parent.parent)}")
    return path
