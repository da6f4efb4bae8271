"""Adam without ``torch.optim``: the update of ``torch.optim.Adam(foreach=True)``, op for op.

The first ``torch.optim`` optimizer a process builds imports ``torch._dynamo`` (its step
function is wrapped to be skipped by the compiler), which takes 2–4 s of wall time on the
CPUs here: more than a whole small integration, and paid by every fresh process before its
first run, whether it trains or not. :class:`Adam` performs the same multi-tensor update with
the same ``torch._foreach_*`` operations in the same order, so a run gives the same numbers
as with ``torch.optim.Adam(params, lr, foreach=True)`` (tested bit for bit), and reads and
writes the same ``state_dict`` (checkpoints written with either load into the other).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["Adam"]


class Adam:
    """Adam (Kingma & Ba) on a list of parameters: no weight decay, no AMSGrad.

    Arguments:
        params: the parameters (tensors with ``requires_grad``).
        lr: learning rate (``param_groups[0]["lr"]`` may be changed between steps).
        betas: decay rates of the first and second moment averages.
        eps: added to the root of the second moment.
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        params = list(params)
        if not params:
            raise ValueError("Adam got an empty parameter list")
        self.param_groups: list[dict[str, Any]] = [
            {"params": params, "lr": float(lr), "betas": tuple(betas), "eps": float(eps)}]
        self.state: dict[Tensor, dict[str, Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient."""
        for p in self.param_groups[0]["params"]:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of the parameters that have a gradient."""
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        for p in params:
            if p not in self.state:
                self.state[p] = {"step": torch.tensor(0.0),
                                 "exp_avg": torch.zeros_like(p),
                                 "exp_avg_sq": torch.zeros_like(p)}
        grads = [p.grad for p in params]
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        exp_avgs = [s["exp_avg"] for s in states]
        exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        torch._foreach_add_(steps, torch.tensor(1.0), alpha=1.0)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        counts = [float(s.item()) for s in steps]
        step_size = [(lr / (1 - beta1**t)) * -1 for t in counts]
        root2 = [(1 - beta2**t) ** 0.5 for t in counts]
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, root2)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_size)

    def state_dict(self) -> dict[str, Any]:
        """The state in ``torch.optim.Adam``'s format (parameters by index)."""
        group = self.param_groups[0]
        index = {id(p): i for i, p in enumerate(group["params"])}
        state = {index[id(p)]: {k: v.clone() for k, v in s.items()}
                 for p, s in self.state.items()}
        groups = [{"lr": group["lr"], "betas": group["betas"], "eps": group["eps"],
                   "weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": True,
                   "capturable": False, "differentiable": False, "fused": None,
                   "decoupled_weight_decay": False,
                   "params": list(range(len(group["params"])))}]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict` or by ``torch.optim.Adam``."""
        groups = data["param_groups"]
        params = self.param_groups[0]["params"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(params):
            raise ValueError("the optimizer state does not match the parameters")
        saved = groups[0]
        if saved.get("amsgrad") or saved.get("weight_decay", 0) or saved.get("maximize"):
            raise ValueError("the optimizer state uses Adam options this Adam does not have")
        self.param_groups[0].update(lr=float(saved["lr"]), betas=tuple(saved["betas"]),
                                    eps=float(saved["eps"]))
        position = {k: i for i, k in enumerate(saved["params"])}
        self.state = {}
        for key, s in data["state"].items():
            p = params[position[key]]
            self.state[p] = {
                "step": _step(s["step"]),
                "exp_avg": s["exp_avg"].detach().to(p).clone(),
                "exp_avg_sq": s["exp_avg_sq"].detach().to(p).clone()}


def _step(value: Any) -> Tensor:
    """A saved step count as the CPU scalar tensor ``torch.optim.Adam`` keeps."""
    step = torch.as_tensor(value).detach().clone().cpu()
    return step if step.is_floating_point() else step.to(torch.get_default_dtype())
