"""The official optimiser wrapper (danijar/dreamerv2@07d906e `common/tfutils.py::Optimizer`): Adam with
epsilon 1e-5, the gradient clipped to a global norm of 100, and weight decay applied as w <- (1 - wd) w to every
variable before the Adam step (not scaled by the learning rate)."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn


class Optimizer(torch.optim.Adam):
    def __init__(self, params: Iterable[nn.Parameter], lr: float, eps: float, clip: float, wd: float) -> None:
        super().__init__(list(params), lr=lr, eps=eps)
        self.clip, self.wd = clip, wd

    @property
    def params(self) -> list[nn.Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def update(self, loss: Tensor, name: str) -> dict[str, float]:
        """Backpropagate ``loss`` into this optimiser's parameters only, clip, decay, step. Returns metrics."""
        params = self.params
        self.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.clip) if self.clip else _global_norm(params)
        if self.wd:
            with torch.no_grad():
                for p in params:
                    p.mul_(1 - self.wd)
        self.step()
        return {f"grad_norm/{name}": norm.item()}


def _global_norm(params: list[nn.Parameter]) -> Tensor:
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
