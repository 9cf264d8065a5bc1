"""LaProp with adaptive gradient clipping, as the official optimiser chain (danijar/dreamerv3@e3f0224
`dreamerv3/agent.py::_make_opt`, `embodied/jax/opt.py`): clip_by_agc -> scale_by_rms -> scale_by_momentum ->
learning rate with a linear warm-up. LaProp normalises the gradient by its RMS *before* the momentum, unlike Adam."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor


def agc_scale(grad: Tensor, param: Tensor, clip: float, pmin: float = 1e-3) -> Tensor:
    """Adaptive gradient clipping per parameter tensor: shrink the gradient so that
    ||g|| <= clip * max(pmin, ||w||). Returns the multiplier (a 0-d tensor)."""
    upper = clip * torch.clamp(param.detach().norm(), min=pmin)
    return 1.0 / torch.clamp(grad.norm() / upper, min=1.0)


class LaProp(torch.optim.Optimizer):
    def __init__(self, params: Iterable[Tensor], lr: float = 4e-5, agc: float = 0.3, eps: float = 1e-20,
                 beta1: float = 0.9, beta2: float = 0.999, warmup: int = 1000) -> None:
        defaults = dict(lr=lr, agc=agc, eps=eps, beta1=beta1, beta2=beta2, warmup=warmup)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: D102
        for group in self.param_groups:
            lr, agc, eps = group["lr"], group["agc"], group["eps"]
            beta1, beta2, warmup = group["beta1"], group["beta2"], group["warmup"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["nu"] = torch.zeros_like(param, dtype=torch.float32)
                    state["mu"] = torch.zeros_like(param, dtype=torch.float32)
                # the schedule counts the updates done before this one (optax: linear_schedule(0, lr, warmup))
                rate = lr * min(1.0, float(state["step"]) / warmup) if warmup else lr
                state["step"] += 1
                count = float(state["step"])
                grad = param.grad.float()
                if agc:
                    grad = grad * agc_scale(grad, param, agc)
                state["nu"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                nu_hat = state["nu"] / (1 - beta2 ** count)
                update = grad / (nu_hat.sqrt() + eps)
                state["mu"].mul_(beta1).add_(update, alpha=1 - beta1)
                mu_hat = state["mu"] / (1 - beta1 ** count)
                param.add_(mu_hat.to(param.dtype), alpha=-rate)
