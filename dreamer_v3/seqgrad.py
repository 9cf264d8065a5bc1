"""Weight gradients of a recurrent loop formed once per sequence (issue 15; computes the same gradients).

Autograd forms the gradient of a weight used at every step of the posterior rollout (`RSSM.observe`) step by
step: B x T steps of batch B = 16 each write a weight-sized gradient and add it to the running sum, which is
memory traffic, not arithmetic, on a CPU (at the 12M size ~20 MB of weights per step). Inside
``with sequence_grads(layers):`` each layer's matmul runs through ``_StepMatmul``: a step's backward returns the
input gradient and keeps its (input, output-gradient) pair, and the backward of whichever step comes last forms
the weight gradient of the whole sequence in one matmul over all B x T rows. It is the same sum of the same
products, in another order (float32 rounding differs by ~1e-7). Every step's output must reach the loss (as in
`world_model_loss`): a backward that reaches only some steps of a sequence stops with an error at its end
(``Stash.check_complete``) instead of leaving the weight without its gradient."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn


class Stash:
    """The steps of one sequence that multiplied by one weight, and the pairs their backward left so far."""

    def __init__(self, block: bool) -> None:
        self.block, self.calls, self.pairs = block, 0, []

    def weight_grad(self) -> Tensor:
        """Sum over steps of the products of inputs and output gradients: (O, K) for a linear layer's weight,
        (G, I, O) per block."""
        inputs = torch.cat([x.reshape(-1, *x.shape[-(1 + self.block):]) for x, _ in self.pairs])
        grads = torch.cat([g.reshape(-1, *g.shape[-(1 + self.block):]) for _, g in self.pairs])
        self.pairs.clear()
        if self.block:  # (M, G, I), (M, G, O) -> (G, I, O)
            return torch.bmm(inputs.transpose(0, 1).transpose(1, 2), grads.transpose(0, 1))
        return grads.T @ inputs

    def check_complete(self) -> None:
        """Run by autograd at the end of a backward pass that reached this sequence: every step must have run."""
        if self.pairs:
            reached = len(self.pairs)
            self.pairs.clear()
            raise RuntimeError(f"seqgrad: the backward reached {reached} of the {self.calls} steps of a sequence, "
                               "so the recurrent weights' gradient cannot be formed; every step's output must reach "
                               "the loss (or run the loop outside `sequence_grads`)")


class _StepMatmul(torch.autograd.Function):
    """A linear layer's x @ weight^T ((..., K) by (O, K)) or a block-linear one's per-block x @ weight
    ((..., G, I) by (G, I, O)); the weight's gradient is left to the sequence's last backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stash: Stash) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.stash = stash
        stash.calls += 1
        return _matmul(x, weight, stash.block)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        stash = ctx.stash
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.einsum("...ko,kio->...ki", grad, weight) if stash.block else grad @ weight
        grad_w = None
        if ctx.needs_input_grad[1]:
            stash.pairs.append((x.detach(), grad))
            if len(stash.pairs) == 1:  # this backward's first step of the sequence: check the rest ran, at its end
                torch.autograd.Variable._execution_engine.queue_callback(stash.check_complete)
            if len(stash.pairs) == stash.calls:  # the last step of the sequence to run backward (pairs cleared:
                grad_w = stash.weight_grad()     # a second backward over a retained graph forms it again)
        return grad_x, grad_w, None


def _matmul(x: Tensor, weight: Tensor, block: bool) -> Tensor:
    return torch.einsum("...ki,kio->...ko", x, weight) if block else torch.nn.functional.linear(x, weight)


def step_matmul(x: Tensor, weight: Tensor, stash: Stash | None, block: bool = False) -> Tensor:
    """The layer's matmul (no bias), through ``_StepMatmul`` when a sequence is being recorded with gradients
    (float32, no autocast: where the memory traffic is the cost)."""
    recording = stash is not None and torch.is_grad_enabled() and weight.requires_grad
    if not recording or torch.is_autocast_enabled(x.device.type):
        return _matmul(x, weight.to(x.dtype), block)
    return _StepMatmul.apply(x, weight, stash)


@contextlib.contextmanager
def sequence_grads(layers: list[nn.Module]) -> Iterator[None]:
    """Give each layer (with a ``stash`` attribute and a ``block`` flag) a fresh stash for one sequence."""
    for layer in layers:
        layer.stash = Stash(layer.block)
    try:
        yield
    finally:
        for layer in layers:
            layer.stash = None
