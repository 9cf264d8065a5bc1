"""The official optimiser wrapper (danijar/dreamerv2@07d906e `common/tfutils.py::Optimizer`): Adam with
epsilon 1e-5, the gradient clipped to a global norm of 100, and weight decay applied as w <- (1 - wd) w to every
variable before the Adam step (not scaled by the learning rate).

Keras Adam (`tf.optimizers.Adam`, TF's ``ResourceApplyAdam``) steps by lr sqrt(1 - b2^t) / (1 - b1^t) m /
(sqrt(v) + eps): eps is added to the uncorrected sqrt(v). PyTorch adds it to sqrt(v / (1 - b2^t)); the two agree
exactly when PyTorch's eps is eps / sqrt(1 - b2^t), which ``update`` sets before each step. It matters here: the
actor's per-parameter gradient RMS is ~1e-5 (the size of eps), and in the first hundreds of updates the Keras eps is
1.6x (t = 467) to 32x (t = 1) larger in PyTorch's terms."""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor, nn


class Optimizer(torch.optim.Adam):
    def __init__(self, params: Iterable[nn.Parameter], lr: float, eps: float, clip: float, wd: float) -> None:
        super().__init__(list(params), lr=lr, eps=eps)
        self.keras_eps, self.clip, self.wd = eps, clip, wd

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
        self._set_keras_eps()
        self.step()
        return {f"grad_norm/{name}": norm.item()}

    def _set_keras_eps(self) -> None:
        """PyTorch's eps for the coming step t (Adam's own per-parameter count + 1, so it survives resumes)."""
        t = 1 + max((int(self.state[p]["step"]) for p in self.params if "step" in self.state[p]), default=0)
        for group in self.param_groups:
            group["eps"] = self.keras_eps / math.sqrt(1 - group["betas"][1] ** t)


def _global_norm(params: list[nn.Parameter]) -> Tensor:
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
