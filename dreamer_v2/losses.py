"""DreamerV2 losses (paper Sec. 2 and Appendix; official danijar/dreamerv2@07d906e `agent.py`, `common/nets.py`,
`common/other.py`). Imagined sequences are batch-first here: (N, H+1, ...) with index 0 the start state."""
from __future__ import annotations

import torch
from torch import Tensor

from dreamer_v2.dists import OneHotDist, TruncNormalDist, categorical_kl


def kl_balance(post_logits: Tensor, prior_logits: Tensor, balance: float, free: float, free_avg: bool = True
               ) -> tuple[Tensor, Tensor]:
    """KL balancing (paper Algorithm 2): alpha KL(sg(post) || prior) + (1 - alpha) KL(post || sg(prior)), the KL
    summed over the latents; free nats applied to the batch mean of each term (official ``free_avg``).
    Logits (..., S, C). Returns the scalar loss and the KL value (...)."""
    kl = lambda lhs, rhs: categorical_kl(lhs, rhs).sum(-1)  # noqa: E731  sum over the S latents
    value_post = value = kl(post_logits, prior_logits.detach())  # trains the posterior
    value_prior = kl(post_logits.detach(), prior_logits)  # trains the prior
    if free_avg:
        loss_post = torch.clamp(value_post.mean(), min=free)
        loss_prior = torch.clamp(value_prior.mean(), min=free)
    else:
        loss_post = torch.clamp(value_post, min=free).mean()
        loss_prior = torch.clamp(value_prior, min=free).mean()
    return (1 - balance) * loss_post + balance * loss_prior, value


def lambda_return(reward: Tensor, value: Tensor, pcont: Tensor, bootstrap: Tensor, lam: float) -> Tensor:
    """TD(lambda) targets over axis 1 (official `common.lambda_return`, axis=0 time-major there):
    R_t = r_t + pcont_t ((1 - lam) v_{t+1} + lam R_{t+1}), R_T = bootstrap. reward, value, pcont (N, T);
    bootstrap (N,). Returns (N, T)."""
    next_values = torch.cat([value[:, 1:], bootstrap[:, None]], 1)
    inputs = reward + pcont * next_values * (1 - lam)
    returns, last = [], bootstrap
    for t in reversed(range(reward.shape[1])):
        last = inputs[:, t] + pcont[:, t] * lam * last
        returns.append(last)
    return torch.stack(returns[::-1], 1)


def actor_loss(policy: OneHotDist | TruncNormalDist, actions: Tensor, target: Tensor, baseline: Tensor,
               weight: Tensor, rho: float, entropy_scale: float) -> tuple[Tensor, dict[str, float]]:
    """Paper Eq. 6: -rho ln pi(a|z) sg(V_lambda - v(z)) - (1 - rho) V_lambda - eta H[pi], weighted by the
    cumulative predicted discount. ``policy`` on states 0..H-2 (stop-gradient inputs), ``actions`` taken there
    (N, H-1, A), ``target`` the lambda return of the states they lead to, 1..H-1 (N, H-1), ``baseline`` the slow
    critic at 0..H-2, ``weight`` (N, H-1). rho 1: REINFORCE (Atari); rho 0: dynamics backpropagation (DMC)."""
    objective = torch.zeros_like(target)
    if rho > 0:
        advantage = (target - baseline).detach()
        objective = objective + rho * policy.log_prob(actions.detach()) * advantage
    if rho < 1:
        objective = objective + (1 - rho) * target
    entropy = policy.entropy()
    objective = objective + entropy_scale * entropy
    loss = -(weight.detach() * objective).mean()
    return loss, {"actor/entropy": entropy.mean().item()}


def critic_loss(value: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Paper Eq. 5 as released: -log N(sg(V_lambda); v(z), 1) weighted by the cumulative discount. (N, H)."""
    log_prob = torch.distributions.Normal(value, 1.0).log_prob(target.detach())
    return -(log_prob * weight.detach()).mean()


def slow_target_due(updates: int, every: int) -> bool:
    """The slow critic is copied at update 0, every, 2 every, ... (official update_slow_target, fraction 1)."""
    return updates % every == 0
