"""PINN collocation benchmark: uniform vs residual-based resampling (RAD) vs flow (DAS).

Solves ``-Δu = f`` on ``[-1, 1]^d`` with Dirichlet data from the exact solution
``u = exp(-a ‖x - x0‖²)`` for two problems of the deep adaptive sampling paper:

* ``peak2d``: ``d = 2``, ``a = 1000``, ``x0 = (1/2, 1/2)`` (a peak of width ~0.02);
* ``exp10d``: ``d = 10``, ``a = 10``, ``x0 = 0``;
* ``mild2d``: ``d = 2``, ``a = 10``, ``x0 = (1/2, 1/2)``: a sanity check that the PINN code
  converges where the optimiser can.

Every method trains the same network (same initialisation) for the same number of Adam steps,
then the same number of L-BFGS iterations, on the same number of interior and boundary points,
in stages: stage 0 uses uniform points; before each later stage the interior points are
redrawn by

* ``uniform``: fresh uniform points;
* ``rad``: residual-based adaptive distribution (Wu et al. 2022): ``N`` points drawn without
  replacement from a uniform candidate pool of ``M`` points with probability
  ``∝ |r|^k / mean|r|^k + c_W``;
* ``das``: deep adaptive sampling (Tang, Wan, Yang 2021) with :class:`flowint.pde.
  AdaptiveCollocation`: the flow is trained toward ``|r|^k`` with ``M`` residual evaluations per
  stage (as many as RAD's pool), then ``N`` points are drawn from it;
* ``oracle``: points a sampler that knows the solution would pick (a Gaussian at the peak plus
  a uniform share): a reference for "points on the peak".

On the 2-D peak the network is a 3-layer tanh MLP on 32 random Fourier features of ``x``
(scale 5), trained for 6 stages of 500 Adam steps (cosine decay of the learning rate) and 100
L-BFGS iterations each, then 400 more L-BFGS iterations; the flow of ``das`` re-uses each batch
of 1500 residual evaluations for 16 gradient steps. A plain tanh MLP on ``x`` does not learn
the width-0.03 peak within a CPU budget of minutes, whatever its points (see the results
file). Half of every adaptive sampler's points are uniform (flow and oracle ``c = 0.5``, RAD
``c_W = 1``).

The Laplacian is computed by autograd. The error is the relative L2 error over the domain:
on a 400 × 400 grid in 2-D, and in 10-D by importance sampling a test set (half uniform, half
the Gaussian ``∝ u²``). Run ``python benchmarks/pinn.py`` (``--quick`` for a short run); it
writes ``benchmarks/results/pinn.md`` and ``benchmarks/results/pinn_points.png``.

References:
    DAS-PINNs (Tang, Wan, Yang, 2021), https://arxiv.org/abs/2112.14038.
    A comprehensive study of non-adaptive and residual-based adaptive sampling for
    physics-informed neural networks (Wu et al., 2022), https://arxiv.org/abs/2207.10289.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from flowint.pde import AdaptiveCollocation

RESULTS = Path(__file__).resolve().parent / "results"
PROBLEMS_DEFAULT = "peak2d,exp10d,mild2d"
METHODS_DEFAULT = "uniform,rad,das,oracle"
DTYPE = torch.float32


# ---------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """``-Δu = f`` on ``[-1, 1]^dim`` with ``u = exp(-a ‖x - x0‖²)``."""

    name: str
    dim: int
    a: float
    center: float

    def exact(self, x: Tensor) -> Tensor:
        return torch.exp(-self.a * ((x - self.center) ** 2).sum(-1))

    def source(self, x: Tensor) -> Tensor:
        """``f = -Δu = (2 a d - 4 a² ρ²) u``."""
        rho2 = ((x - self.center) ** 2).sum(-1)
        return (2 * self.a * self.dim - 4 * self.a**2 * rho2) * torch.exp(-self.a * rho2)

    @property
    def scale(self) -> float:
        """``|f|`` at the centre, ``2 a d``: the interior loss is ``mean (r / scale)²``."""
        return 2 * self.a * self.dim


PROBLEMS = {
    "peak2d": Problem("peak2d", 2, 1000.0, 0.5),
    "exp10d": Problem("exp10d", 10, 10.0, 0.0),
    "mild2d": Problem("mild2d", 2, 10.0, 0.5),  # a sanity check of the PINN code
}


@dataclass
class Config:
    """Sizes of one run (the same for every method)."""

    n_points: int = 2000       # interior collocation points
    n_boundary: int = 400      # boundary points
    stages: int = 6            # point sets (stage 0 is uniform)
    steps: int = 500           # Adam steps per stage
    width: int = 64            # hidden width (3 hidden layers)
    lr: float = 1e-3
    pool: int = 20_000         # RAD candidate pool = DAS residual evaluations per stage
    k: float = 2.0
    c: float = 0.0             # uniform share of the flow mixture
    c_rad: float = 0.0         # Wu et al.'s c for RAD
    boundary_weight: float = 1.0
    lbfgs: int = 0             # L-BFGS iterations per stage after the Adam steps
    first_scale: float = 1.0   # multiplies the first layer's initial weights
    weighted: bool = False     # DAS loss with importance weights (see resample)
    hard_bc: bool = False      # û = Π(1 - x_i²) N(x) (boundary data ≈ 0 for both problems)
    input_scale: float = 1.0   # see InputScale
    fourier: int = 0           # random Fourier features of the input (0: none), see Fourier
    fourier_scale: float = 5.0  # standard deviation of their frequencies
    lr_final: float = 0.1      # cosine decay of the learning rate to lr_final * lr
    polish: int = 0            # L-BFGS iterations after the last stage
    flow_options: dict = field(default_factory=lambda: {"hidden": 32, "bins": 16})
    flow_batch: int = 4096     # DAS: residual evaluations per flow-training iteration
    flow_steps: int = 4        # DAS: gradient steps of the flow per evaluated batch
    memory: float = 0.0        # DAS: share of the previous stage's flow kept (AdaptiveCollocation)


# ---------------------------------------------------------------------- network
class InputScale(nn.Module):
    """``x ↦ s x``: with the first layer's initial weights divided by ``s`` the network starts
    as the default one, but Adam moves the first layer ``s`` times faster in function space
    (sharp features form in hundreds of steps instead of tens of thousands)."""

    def __init__(self, s: float):
        super().__init__()
        self.s = float(s)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.s


class Fourier(nn.Module):
    """Random Fourier features ``x ↦ (sin 2πBx, cos 2πBx)``, ``B ~ N(0, s²)`` fixed (Tancik et
    al. 2020): a tanh MLP on them represents features of width ``~1/(2πs)`` from the start,
    where a plain MLP first has to grow its first-layer weights."""

    def __init__(self, dim: int, m: int, scale: float, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed + 1)
        self.register_buffer("B", scale * torch.randn(dim, m, generator=gen, dtype=DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        z = 2 * math.pi * x @ self.B
        return torch.cat([torch.sin(z), torch.cos(z)], -1)


class Envelope(nn.Module):
    """``û(x) = Π_i (1 - x_i²) · N(x)``: vanishes on the boundary of ``[-1, 1]^d``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return (1 - x * x).prod(-1, keepdim=True) * self.net(x)


def mlp(dim: int, width: int, seed: int, first_scale: float = 1.0,
        input_scale: float = 1.0, fourier: int = 0, fourier_scale: float = 5.0) -> nn.Module:
    """3 hidden tanh layers; the first layer's initial weights are multiplied by
    ``first_scale / input_scale`` and its input by ``input_scale``; with ``fourier > 0`` the
    input is first mapped to ``2 fourier`` random Fourier features."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = [InputScale(input_scale)]
    n_in = dim
    if fourier:
        layers = [Fourier(dim, fourier, fourier_scale, seed)]
        n_in = 2 * fourier
    for _ in range(3):
        layers += [nn.Linear(n_in, width), nn.Tanh()]
        n_in = width
    layers.append(nn.Linear(n_in, 1))
    with torch.no_grad():
        layers[1].weight.mul_(first_scale / input_scale)
        layers[1].bias.mul_(first_scale)
    return nn.Sequential(*layers).to(DTYPE)


def residual(net: nn.Module, prob: Problem, x: Tensor, create_graph: bool = True) -> Tensor:
    """``r = Δu_θ + f`` at ``x`` (autograd Laplacian)."""
    x = x.to(DTYPE).detach().requires_grad_(True)
    u = net(x).squeeze(-1)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = torch.zeros_like(u)
    for i in range(x.shape[1]):
        (gi,) = torch.autograd.grad(g[:, i].sum(), x, create_graph=create_graph,
                                    retain_graph=True)
        lap = lap + gi[:, i]
    return lap + prob.source(x.detach())


def residual_batched(net: nn.Module, prob: Problem, x: Tensor, chunk: int = 8192) -> Tensor:
    """Residual without a graph for the parameters (for sampling), in chunks, float64 out."""
    out = [residual(net, prob, xc, create_graph=False).detach() for xc in x.split(chunk)]
    return torch.cat(out).to(torch.float64)


def boundary_points(dim: int, n: int, gen: torch.Generator) -> Tensor:
    """Uniform points on the surface of ``[-1, 1]^dim``."""
    x = 2 * torch.rand(n, dim, generator=gen, dtype=torch.float64) - 1
    axis = torch.randint(0, dim, (n,), generator=gen)
    side = torch.randint(0, 2, (n,), generator=gen).to(torch.float64) * 2 - 1
    x[torch.arange(n), axis] = side
    return x


def uniform_points(dim: int, n: int, gen: torch.Generator) -> Tensor:
    return 2 * torch.rand(n, dim, generator=gen, dtype=torch.float64) - 1


# ---------------------------------------------------------------------- error
def test_set(prob: Problem, seed: int = 12345) -> tuple[Tensor, Tensor]:
    """Test points and their weights for ``∫ g ≈ Σ w g``."""
    gen = torch.Generator().manual_seed(seed)
    if prob.dim == 2:
        g = torch.linspace(-1, 1, 400, dtype=torch.float64)
        x = torch.cartesian_prod(g, g)
        return x, torch.full((x.shape[0],), 4.0 / x.shape[0], dtype=torch.float64)
    n, d = 20_000, prob.dim
    sigma = 1.0 / math.sqrt(4 * prob.a)  # u² ∝ N(x0, σ²)
    xu = uniform_points(d, n // 2, gen)
    xg = prob.center + sigma * torch.randn(n // 2, d, generator=gen, dtype=torch.float64)
    xg = xg.clamp(-1.0, 1.0)  # moves a fraction ~1e-9 of the points: negligible
    x = torch.cat([xu, xg])
    log_unif = -d * math.log(2.0)
    log_gauss = (-((x - prob.center) ** 2).sum(-1) / (2 * sigma**2)
                 - d * math.log(sigma * math.sqrt(2 * math.pi)))
    log_q = torch.logaddexp(log_gauss, torch.full_like(log_gauss, log_unif)) - math.log(2.0)
    return x, torch.exp(-log_q) / n


def rel_l2(net: nn.Module, prob: Problem, x: Tensor, w: Tensor) -> tuple[float, float]:
    """Relative L2 error over the domain, and over the peak region (``‖x - x0‖ < 3/√(2a)``)."""
    with torch.no_grad():
        u_hat = torch.cat([net(xc.to(DTYPE)).squeeze(-1) for xc in x.split(50_000)])
    u = prob.exact(x)
    e2 = w * (u_hat.to(torch.float64) - u) ** 2
    near = (x - prob.center).norm(dim=-1) < 3.0 / math.sqrt(2 * prob.a)
    whole = float(torch.sqrt(e2.sum() / (w * u**2).sum()))
    peak = float(torch.sqrt(e2[near].sum() / (w * u**2)[near].sum()))
    return whole, peak


# ---------------------------------------------------------------------- training
@dataclass
class Run:
    method: str
    errors: list[float]
    peak_errors: list[float]
    seconds: float
    points: Tensor
    residual_evals: int
    net: nn.Module | None = None
    shares: list[float] = field(default_factory=list)  # points near the peak, per stage


def train(prob: Problem, method: str, cfg: Config, seed: int) -> Run:
    """Train one PINN with one collocation method; errors after every stage."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    net = mlp(prob.dim, cfg.width, seed, cfg.first_scale, cfg.input_scale, cfg.fourier,
              cfg.fourier_scale)
    if cfg.hard_bc:
        net = Envelope(net)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    n_total = cfg.stages * cfg.steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (
            1 + math.cos(math.pi * min(s, n_total) / n_total)))
    xt, wt = test_set(prob)
    col = None
    if method == "das":
        col = AdaptiveCollocation(prob.dim, (-1.0, 1.0), k=cfg.k, c=cfg.c, mode="replace",
                                  loss="kl", flow_options=cfg.flow_options, seed=seed,
                                  batch_size=cfg.flow_batch, steps_per_batch=cfg.flow_steps,
                                  memory=cfg.memory)
    x_int = uniform_points(prob.dim, cfg.n_points, gen)
    w_int = torch.ones(cfg.n_points, dtype=DTYPE)  # relative weights, mean 1
    errors: list[float] = []
    peak_errors: list[float] = []
    shares: list[float] = []
    evals = 0
    for stage in range(cfg.stages):
        if stage > 0:
            x_int, w_int, n = resample(prob, method, net, cfg, gen, col)
            evals += n
        x_bd = boundary_points(prob.dim, cfg.n_boundary, gen)
        g_bd = prob.exact(x_bd).to(DTYPE)

        def objective(x_int: Tensor = x_int, w_int: Tensor = w_int, x_bd: Tensor = x_bd,
                      g_bd: Tensor = g_bd) -> Tensor:
            r = residual(net, prob, x_int)
            return (w_int * (r / prob.scale) ** 2).mean() + cfg.boundary_weight * (
                (net(x_bd.to(DTYPE)).squeeze(-1) - g_bd) ** 2).mean()

        for _ in range(cfg.steps):
            loss = objective()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if cfg.lbfgs:
            lbfgs(net, objective, cfg.lbfgs)
        if cfg.polish and stage == cfg.stages - 1:
            lbfgs(net, objective, cfg.polish)
        whole, peak = rel_l2(net, prob, xt, wt)
        errors.append(whole)
        shares.append(region_share(prob, x_int)[0])
        peak_errors.append(peak)
    return Run(method, errors, peak_errors, time.perf_counter() - t0, x_int, evals, net,
               shares)


def lbfgs(net: nn.Module, objective, iterations: int) -> None:
    """``iterations`` L-BFGS iterations (strong Wolfe line search) on ``objective``."""
    opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=iterations, history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                            tolerance_change=1e-16)

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)


def resample(prob: Problem, method: str, net: nn.Module, cfg: Config, gen: torch.Generator,
             col: AdaptiveCollocation | None) -> tuple[Tensor, Tensor, int]:
    """New interior points for the next stage, their loss weights (mean 1) and the residual
    evaluations it cost. With ``cfg.weighted`` the DAS points carry their importance weights
    ``1/(n q)`` (the loss is then an unbiased estimate of ``mean_box r²``); otherwise every
    point weighs the same (DAS and RAD as published)."""
    ones = torch.ones(cfg.n_points, dtype=DTYPE)
    if method == "uniform":
        return uniform_points(prob.dim, cfg.n_points, gen), ones, 0
    if method == "oracle":
        n_unif = int(round(cfg.c * cfg.n_points))
        width = 1.5 / math.sqrt(2 * prob.a)
        peak = prob.center + width * torch.randn(cfg.n_points - n_unif, prob.dim,
                                                 generator=gen, dtype=torch.float64)
        x = torch.cat([peak.clamp(-1.0, 1.0), uniform_points(prob.dim, n_unif, gen)])
        return x, ones, 0
    if method == "rad":
        pool = uniform_points(prob.dim, cfg.pool, gen)
        rk = residual_batched(net, prob, pool).abs() ** cfg.k
        p = rk / rk.mean() + cfg.c_rad
        idx = torch.multinomial(p, cfg.n_points, replacement=False, generator=gen)
        return pool[idx], ones, cfg.pool
    assert col is not None
    col.fit(lambda x: residual_batched(net, prob, x), cfg.pool)
    x, w = col.sample(cfg.n_points, seed=gen)
    if cfg.weighted:
        return x, (w / w.mean()).to(DTYPE), cfg.pool
    return x, ones, cfg.pool


# ---------------------------------------------------------------------- report
# peak2d: tanh MLP on 32 random Fourier features (scale 5), 6 stages of 500 Adam steps (cosine
# decay to 1 % of lr) and 100 L-BFGS iterations, and 400 L-BFGS iterations at the end; half of
# the points of the flow, of RAD (c_W = 1) and of the oracle are uniform. DAS's flow: batches of
# 1500 residual evaluations, 16 gradient steps on each (10 batches per stage). exp10d and the
# mild2d sanity check: plain tanh MLP on x (Fourier features of scale 5 slow the smooth a = 10
# peak down: error ~1).
PEAK = Config(n_points=1500, stages=6, steps=500, width=64, lr=2e-3, pool=15_000, c=0.5,
              c_rad=1.0, fourier=32, fourier_scale=5.0, lr_final=0.01, lbfgs=100, polish=400,
              flow_batch=1500, flow_steps=16)
CONFIGS = {
    "peak2d": PEAK,
    "exp10d": Config(n_points=800, stages=4, steps=300, width=32, lr=5e-3, pool=10_000, c=0.5,
                     c_rad=1.0),
    "mild2d": Config(n_points=1500, stages=5, steps=400, width=64, lr=5e-3, pool=15_000, c=0.2,
                     c_rad=0.25),
}
QUICK = {
    "peak2d": replace(PEAK, n_points=1000, stages=3, steps=300, pool=10_000, polish=100),
    "exp10d": Config(n_points=500, stages=3, steps=200, width=32, lr=5e-3, pool=5_000, c=0.5,
                     c_rad=1.0),
    "mild2d": Config(n_points=1000, stages=3, steps=250, width=64, lr=5e-3, pool=10_000, c=0.2,
                     c_rad=0.25),
}


def region_share(prob: Problem, x: Tensor) -> tuple[float, float]:
    """Share of points within ``3/√(2a)`` of the peak (three widths of u), and that share for
    uniform points (the volume fraction)."""
    radius = 3.0 / math.sqrt(2 * prob.a)
    share = float(((x - prob.center).norm(dim=-1) < radius).double().mean())
    d = prob.dim
    ball = math.pi ** (d / 2) / math.gamma(d / 2 + 1) * radius**d
    return share, ball / 2.0**d


def main(argv: list[str] | None = None) -> dict[str, dict[str, Run]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (about 2 minutes)")
    ap.add_argument("--problems", default=PROBLEMS_DEFAULT)
    ap.add_argument("--methods", default=METHODS_DEFAULT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--out", type=Path, default=RESULTS,
                    help="folder for pinn.md and pinn_points.png (default benchmarks/results)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a Config field for every problem, e.g. --set first_scale=4 "
                         "(the variants listed under 'What was tried')")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # CPU-sized and comparable timings: one thread
    configs = {k: replace(v, **_overrides(args.set))
               for k, v in (QUICK if args.quick else CONFIGS).items()
               if k in args.problems.split(",")}
    t0 = time.perf_counter()
    runs: dict[str, dict[str, Run]] = {}
    for name in args.problems.split(","):
        prob, cfg = PROBLEMS[name], configs[name]
        runs[name] = {}
        for method in args.methods.split(","):
            run = train(prob, method, cfg, args.seed)
            runs[name][method] = run
            print(f"{name:7s} {method:8s} err by stage "
                  + " ".join(f"{e:.3g}" for e in run.errors)
                  + f"  near peak {run.peak_errors[-1]:.3g}  ({run.seconds:.0f} s)", flush=True)
    if args.no_write:
        return runs
    args.out.mkdir(parents=True, exist_ok=True)
    if "peak2d" in runs:
        plot_points(PROBLEMS["peak2d"], runs["peak2d"], args.out)
    text = report(runs, configs, args, time.perf_counter() - t0)
    (args.out / "pinn.md").write_text(text)
    print(text)
    return runs


def _relative(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it."""
    try:
        return str(path.resolve().relative_to(RESULTS.parent.parent))
    except ValueError:
        return str(path)


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value)
    return out


def report(runs: dict[str, dict[str, Run]], configs: dict[str, Config], args,
           seconds: float) -> str:
    lines = [
        "# PINN collocation: uniform vs RAD vs flow-adaptive (DAS)",
        "",
        "Generated by `python benchmarks/pinn.py" + (" --quick" if args.quick else "")
        + "".join(f" --set {x}" for x in args.set)
        + (f" --problems {args.problems}" if args.problems != PROBLEMS_DEFAULT else "")
        + (f" --methods {args.methods}" if args.methods != METHODS_DEFAULT else "")
        + (f" --out {_relative(args.out)}" if args.out.resolve() != RESULTS else "")
        + f" --seed {args.seed}` in {seconds:.0f} s on {platform.machine()} "
        f"({platform.processor() or 'cpu'}), 1 torch thread, shared machine; Python "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}. "
        f"Seed {args.seed} for the network initialisation, the points and the flow.",
        "",
        "`-Δu = f` on `[-1,1]^d`, `u = exp(-a‖x - x0‖²)`, Dirichlet data from u (soft boundary "
        "loss). Same network (3 hidden tanh layers; for `peak2d` on 32 random Fourier "
        "features of x), same initialisation, same Adam steps, L-BFGS iterations and "
        "point counts for every method; Laplacian by autograd; loss "
        "`mean((r / 2ad)²) + mean((u_θ - g)²)`. Relative L2 error over the domain (2-D: "
        "400×400 grid; 10-D: importance-sampled test set); *near the peak*: the same restricted "
        "to `‖x - x0‖ < 3/√(2a)` (three widths of u). *oracle*: the points a sampler that "
        "knows the solution would choose (a share `1 - c` from a Gaussian of 1.5 widths of u "
        "at the peak, `c` uniform): a reference that puts points where the solution lives, "
        "not where the residual is.",
        "",
        "| problem | method | rel. L2 error by stage | final error | final error near the "
        "peak | points near the peak (uniform share) | residual evals for sampling | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by_method in runs.items():
        prob = PROBLEMS[name]
        for method, run in by_method.items():
            share, vol = region_share(prob, run.points)
            lines.append(
                f"| {name} | {method} | " + " → ".join(f"{e:.3g}" for e in run.errors)
                + f" | **{run.errors[-1]:.3g}** | {run.peak_errors[-1]:.3g} | {share:.3f} "
                f"({vol:.2g}) | "
                f"{run.residual_evals} | {run.seconds:.0f} s |")
    lines += ["", "Settings (per problem):", ""]
    for name, cfg in configs.items():
        if name in runs:
            lines.append(f"- `{name}`: `{asdict(cfg)}`")
    lines += ["", "![sampled points over the residual](pinn_points.png)", ""]
    if "peak2d" in runs:
        lines += ["Share of each stage's interior points within three widths of the peak "
                  "(`peak2d`; the uniform share is "
                  f"{region_share(PROBLEMS['peak2d'], torch.zeros(1, 2))[1]:.2g}):", "",
                  "| method | " + " | ".join(f"stage {i}" for i in range(
                      configs["peak2d"].stages)) + " |",
                  "|---|" + "---|" * configs["peak2d"].stages]
        for method, run in runs["peak2d"].items():
            lines.append(f"| {method} | " + " | ".join(f"{s:.3f}" for s in run.shares) + " |")
        lines.append("")
    lines += verdict(runs, args.seed)
    lines += TRIED
    return "\n".join(lines) + "\n"


TRIED = [
    "",
    "## Setup, and what was tried (reproduce with `--set KEY=VALUE`)",
    "",
    "The earlier setup (plain tanh MLP on x, 5 × 400 Adam steps, uniform share 0.2) ended at "
    "relative error ≈ 1 on the 2-D peak for every sampler, the oracle included: a smooth "
    "network does not grow first-layer weights of ~30 (a feature of width 0.03) in a few "
    "thousand Adam steps, so it stayed on `u ≈ 0`. What changed (`peak2d` only; the same "
    "for every sampler):",
    "",
    "- **random Fourier features** of the input (`fourier=32`, `fourier_scale=5`: "
    "`sin/cos(2π Bx)`, `B ~ N(0, 5²)`, fixed by the seed) in front of the same 3-layer tanh "
    "MLP: with points on the peak the network learns it within a few hundred steps. Scale 3 "
    "learned the peak too slowly, scale 8–10 left more high-frequency noise in the far field;",
    "- **more steps with a decaying learning rate**: 6 stages × 500 Adam steps at lr 2e-3 with "
    "a cosine decay to 1 % (`lr_final=0.01`), **100 L-BFGS iterations after every stage's "
    "Adam steps** (`lbfgs=100`), and **400 more L-BFGS iterations** on the last "
    "stage's points (`polish=400`), which cut the remaining far-field error further;",
    "- **a uniform half** in every adaptive sampler (`c=0.5` for the flow and the oracle, "
    "`c_rad=1` for RAD, i.e. the same share 1/2): the relative L2 error over the box is "
    "dominated by small far-field errors (‖u‖ ≈ 0.04), which only points in the far field "
    "control.",
    "",
    "Tried and not kept: a faster first layer (`input_scale` 20) or a larger first-layer "
    "initialisation (`first_scale`) without Fourier features (no peak learned, or a far-field "
    "error from an unbalanced core and ring of `f`); a near-zero initial output layer; a "
    "boundary weight of 10; the hard boundary constraint `hard_bc` with Fourier features "
    "(a smooth far-field bump whose Laplacian the scaled loss barely sees); the residual "
    "normalised pointwise by `|f| + f0` (the network then never leaves `u ≈ 0`). The remaining "
    "error of the flow and the oracle is mostly a far-field ripple left by the Fourier "
    "features (compare *final error* with *near the peak*).",
    "",
    "**Why the flow missed the target with seed 1 before (das 0.28 against uniform 0.99).** "
    "Each stage's flow was trained with 15 000 residual evaluations in batches of 4096, 4 "
    "gradient steps per batch: 16 steps per stage. The flow was then little more than its "
    "VEGAS-adapted per-axis grid (relative spread of `|r|²/q` 3–8 per sample), put only 11 % "
    "of its points on the peak in stage 1 and drifted slowly afterwards; with seed 1 the "
    "share near the peak fell to 2 % in stage 3 and the network partly forgot the peak (error "
    "near the peak 0.36 → 0.53), ending at 0.28 (seed 0 happened to end at 0.074). With "
    "`flow_batch=1500, flow_steps=16` (160 steps per stage, the same residual evaluations) "
    "the flow follows `|r|²` (spread 1.4–2): the stages alternate between the peak (14–48 % "
    "of the points there, the residual then sits on the peak) and the far-field ripple (under "
    "1 %, once the peak is learned its residual is under 1 % of the total), and the last "
    "adaptive stage is a peak stage. Without L-BFGS between stages this alone gave 0.19, 0.10 "
    "and 0.064 (seeds 0, 1, 2; `--set lbfgs=0`). With `lbfgs=100` (every method) each "
    "stage ends nearer a minimum of its loss, so the residual the flow follows is less "
    "optimiser noise. It changes the other samplers too: RAD went from 0.33/0.31 to "
    "0.25/0.23 (seeds 0/1), the oracle from 0.19/0.31 to 0.18/0.44, uniform (which never "
    "learns the peak) from 0.92/0.99 to 1.09/1.00 — so seed 0 meets the tenth of uniform "
    "partly because uniform's error rose above 1, the error of `u ≡ 0`.",
    "",
    "Tried for the flow and not kept (all with `lbfgs=0`): `memory=0.5` and `0.7` (each "
    "stage's sample keeps that share of the previous stage's flow mixture, "
    "`AdaptiveCollocation(memory=...)`): no alternation, the peak share decays smoothly "
    "(47 % → 5 % or 11 %), but the error near the peak stayed at 0.1–0.2: 0.13–0.21 for "
    "seeds 0–2 with `memory=0.5`, 0.20/0.10/0.087 with `0.7`; 1000 instead of 400 final "
    "L-BFGS iterations (no gain on seed 1). The outcome of one run is chaotic: a mathematically "
    "equivalent change elsewhere (a rewritten softmax in the spline code) moved seed 1's "
    "default run from 0.282 to 0.286 and the stage-wise errors by a few per cent, so a seed "
    "close to a threshold can fall on either side of it.",
    "",
    "With the same Fourier features (scale 5) the smooth sanity case `mild2d` (a = 10) stayed "
    "at error ≈ 1 for every sampler (the high-frequency features slow down a broad feature), so "
    "`mild2d` keeps the plain tanh MLP and settings of the earlier setup, where the PINN code "
    "converges. The 10-D problem keeps the plain tanh MLP and short run of the earlier setup; its "
    "relative L2 error over `[-1,1]^10` is dominated by the far field (‖u‖ ≈ 0.01 over a "
    "volume of 1024) and is not converged at this budget for any sampler.",
]


def verdict(runs: dict[str, dict[str, Run]], seed: int) -> list[str]:
    """The targets, checked against this run's numbers (one seed)."""
    out = ["## Targets", ""]
    if "peak2d" in runs and {"uniform", "rad", "das"} <= set(runs["peak2d"]):
        e = {m: r.errors[-1] for m, r in runs["peak2d"].items()}
        ok1 = e["das"] <= 0.1 * e["uniform"]
        ok2 = e["das"] < e["rad"]
        out.append(f"- 2-D peak, seed {seed}, flow error ≤ 1/10 of uniform: "
                   f"**{'met' if ok1 else 'missed'}** "
                   f"(das {e['das']:.3g} vs uniform {e['uniform']:.3g}).")
        out.append(f"- 2-D peak, seed {seed}, flow error below RAD: "
                   f"**{'met' if ok2 else 'missed'}** "
                   f"(das {e['das']:.3g} vs rad {e['rad']:.3g}).")
        if "oracle" in e:
            out.append(f"- With the oracle's points the same PINN reaches {e['oracle']:.3g}: "
                       "at this CPU budget the optimiser, not the collocation, limits the "
                       "accuracy." if e["oracle"] > 0.5 else
                       f"- With the oracle's points the same PINN reaches {e['oracle']:.3g}.")
    return out


def plot_points(prob: Problem, runs: dict[str, Run],
                out: Path = RESULTS) -> None:  # pragma: no cover - plotting
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ("uniform", "rad", "das") if m in runs]
    g = torch.linspace(-1, 1, 201, dtype=torch.float64)
    grid = torch.cartesian_prod(g, g)
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.0),
                             squeeze=False)
    for ax, m in zip(axes[0], methods, strict=True):
        run = runs[m]
        r = residual_batched(run.net, prob, grid).abs().reshape(201, 201)
        im = ax.imshow(torch.log10(r.T + 1e-3).numpy(), origin="lower", extent=(-1, 1, -1, 1),
                       cmap="viridis")
        x = run.points.numpy()
        ax.scatter(x[:, 0], x[:, 1], s=2, c="white", edgecolors="none", alpha=0.7)
        ax.set_title(f"{m}: final points, error {run.errors[-1]:.2g}", fontsize=9)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        fig.colorbar(im, ax=ax, fraction=0.046, label="log10 |residual|")
    fig.suptitle("2-D peak: last-stage collocation points over the final |residual|",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "pinn_points.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
