"""The cross-entropy method over action sequences (paper Sec. 2 and Algorithm 2; official
`control/planning.py::cross_entropy_method`): start from N(0, I) over H x A, sample J candidates clipped to the
action bounds, evaluate all of them as one batched tensor, refit mean and std to the top K, repeat I times,
return the mean's first action. The belief is reset to N(0, I) at every agent step (MPC)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from planet.networks import RSSM, State

Objective = Callable[[Tensor], Tensor]  # candidate action sequences (N*J, H, A) -> returns (N*J,)


@torch.no_grad()
def cem(objective: Objective, batch: int, horizon: int, act_dim: int, iterations: int = 10,
        candidates: int = 1000, top_k: int = 100, device: torch.device | str = "cpu",
        low: float = -1.0, high: float = 1.0) -> Tensor:
    """Returns the first planned action (batch, A). Candidate j of environment n is row n * J + j."""
    mean = torch.zeros(batch, horizon, act_dim, device=device)  # (N, H, A)
    std = torch.ones(batch, horizon, act_dim, device=device)
    for _ in range(iterations):
        noise = torch.randn(batch, candidates, horizon, act_dim, device=device)
        actions = (mean[:, None] + std[:, None] * noise).clamp(low, high)  # (N, J, H, A)
        returns = objective(actions.reshape(batch * candidates, horizon, act_dim)).reshape(batch, candidates)
        best = returns.topk(top_k, dim=1).indices  # (N, K)
        elite = actions.gather(1, best[:, :, None, None].expand(-1, -1, horizon, act_dim))  # (N, K, H, A)
        mean = elite.mean(1)
        std = (elite.var(1, unbiased=False) + 1e-6).sqrt()  # official: sqrt(moments variance + 1e-6)
    return mean[:, 0]


def latent_return(rssm: RSSM, reward: torch.nn.Module, start: State, candidates: int) -> Objective:
    """Objective of the paper: one sampled prior trajectory per candidate from the current posterior state,
    summing the reward model's mean over the H predicted states s_{t+1..t+H} (official `objectives.reward`).
    ``start`` values (N, ...) are repeated J times (row n * J + j)."""
    tiled = {k: v.repeat_interleave(candidates, 0) for k, v in start.items()}  # (N*J, ...)

    def objective(actions: Tensor) -> Tensor:  # (N*J, H, A) -> (N*J,)
        state, feats = tiled, []
        for action in actions.unbind(1):
            state = rssm.img_step(state, action)
            feats.append(rssm.feat(state))
        return reward(torch.stack(feats, 1)).squeeze(-1).sum(1)  # reward model over (N*J, H, F) at once

    return objective
