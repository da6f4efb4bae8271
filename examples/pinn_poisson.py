"""A physics-informed network for a 2-D Poisson problem with flow-adaptive collocation points.

Solves ``-Δu = f`` on ``[-1, 1]²`` with ``u = exp(-a ‖x - (½, ½)‖²)`` and Dirichlet data from
``u``. The network is a tanh MLP, on ``x`` itself by default or on ``--fourier`` random Fourier
features of ``x``, which let it represent narrow features from the start. The default
``a = 10`` converges in under a minute on one CPU core (error ~2 %);
``--a 1000 --fourier 32 --lr 2e-3 --stages 6 --steps 500 --polish 400`` is the peak problem of
the deep adaptive sampling paper with the settings of ``benchmarks/pinn.py`` (a few minutes;
results in ``benchmarks/results/pinn.md``).

Training runs in stages: the network is trained on the current points, then
:class:`flowint.pde.AdaptiveCollocation` trains its flow toward ``|r|²`` (``r`` the residual)
and draws the next stage's points from it, mixed with a uniform share ``c = 0.5``; the last
stage ends with ``--polish`` L-BFGS iterations.

Run ``python examples/pinn_poisson.py [--a 10] [--stages 4] [--steps 300] [--polish 100]``.

References:
    DAS-PINNs (Tang, Wan, Yang, 2021), https://arxiv.org/abs/2112.14038.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import Tensor, nn

from flowint.pde import AdaptiveCollocation


def make_problem(a: float):
    center = 0.5

    def exact(x: Tensor) -> Tensor:
        return torch.exp(-a * ((x - center) ** 2).sum(-1))

    def source(x: Tensor) -> Tensor:  # f = -Δu
        rho2 = ((x - center) ** 2).sum(-1)
        return (4 * a - 4 * a**2 * rho2) * torch.exp(-a * rho2)

    return exact, source


class Fourier(nn.Module):
    """Fixed random Fourier features ``(sin 2πBx, cos 2πBx)``, ``B ~ N(0, scale²)``."""

    def __init__(self, m: int, scale: float):
        super().__init__()
        self.register_buffer("B", scale * torch.randn(2, m))

    def forward(self, x: Tensor) -> Tensor:
        z = 2 * math.pi * x @ self.B
        return torch.cat([torch.sin(z), torch.cos(z)], -1)


def residual(net: nn.Module, source, x: Tensor, keep_graph: bool = True) -> Tensor:
    """The residual ``r = Δu_θ + f`` at ``x`` (Laplacian by autograd)."""
    x = x.float().detach().requires_grad_(True)
    u = net(x).squeeze(-1)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = sum(torch.autograd.grad(g[:, i].sum(), x, create_graph=keep_graph,
                                  retain_graph=True)[0][:, i] for i in range(x.shape[1]))
    return lap + source(x.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", type=float, default=10.0)
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--fourier", type=int, default=0, help="Fourier features (0: none)")
    ap.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    ap.add_argument("--scale", type=float, default=5.0, help="their frequency scale")
    ap.add_argument("--polish", type=int, default=100, help="L-BFGS iterations at the end")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    exact, source = make_problem(args.a)
    scale = 4 * args.a  # |f| at the peak: the interior loss is mean (r / scale)²
    features = [Fourier(args.fourier, args.scale)] if args.fourier else []
    net = nn.Sequential(*features, nn.Linear(2 * args.fourier or 2, 64), nn.Tanh(),
                        nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                        nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    n_steps = args.stages * args.steps
    sched = torch.optim.lr_scheduler.LambdaLR(  # cosine decay to 1 % of the learning rate
        opt, lambda s: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(s, n_steps) / n_steps)))
    col = AdaptiveCollocation(2, (-1.0, 1.0), k=2, c=0.5, seed=args.seed,
                              flow_options={"hidden": 32})
    gen = torch.Generator().manual_seed(args.seed)
    x = 2 * torch.rand(args.points, 2, generator=gen, dtype=torch.float64) - 1
    grid = torch.cartesian_prod(*(2 * [torch.linspace(-1, 1, 300, dtype=torch.float64)]))
    for stage in range(args.stages):
        if stage > 0:  # train the flow on |r|², draw the next points
            col.fit(lambda p: residual(net, source, p, keep_graph=False).detach(), 10_000)
            x, _ = col.sample(args.points)
        xb = 2 * torch.rand(400, 2, generator=gen, dtype=torch.float64) - 1
        side = torch.randint(0, 2, (400,), generator=gen)
        xb[torch.arange(400), side] = torch.sign(xb[torch.arange(400), side])
        def objective(x: Tensor = x, xb: Tensor = xb) -> Tensor:
            r = residual(net, source, x) / scale
            return (r**2).mean() + ((net(xb.float()).squeeze(-1) - exact(xb).float()) ** 2).mean()

        for _ in range(args.steps):
            loss = objective()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if stage == args.stages - 1 and args.polish:
            lbfgs = torch.optim.LBFGS(net.parameters(), max_iter=args.polish, history_size=50,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                                      tolerance_change=1e-16)

            def closure() -> Tensor:
                net.zero_grad()
                value = objective()
                value.backward()
                return value

            lbfgs.step(closure)
            loss = objective()
        with torch.no_grad():
            err = (net(grid.float()).squeeze(-1).double() - exact(grid)).norm() / exact(grid).norm()
        near = ((x - 0.5).norm(dim=-1) < 3 / math.sqrt(2 * args.a)).double().mean()
        print(f"stage {stage}: loss {loss.item():.3g}  relative L2 error {err.item():.3g}  "
              f"share of points near the peak {near.item():.2f}")


if __name__ == "__main__":
    main()
