"""The two distributions of the official code (danijar/dreamerv2@07d906e `common/dists.py`): a one-hot
categorical with straight-through samples, and a normal truncated to [low, high] with reparameterised samples
clipped 1e-6 inside the bounds (straight-through). Both reduce over the last axis (one categorical; the
action dimensions of the truncated normal, as ``tfd.Independent(..., 1)``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


class OneHotDist:
    """One-hot categorical over the last axis of ``logits`` (..., K)."""

    def __init__(self, logits: Tensor) -> None:
        self.logits = logits.float()
        self.log_probs = self.logits.log_softmax(-1)
        self.probs = self.log_probs.exp()

    def sample(self) -> Tensor:
        """One-hot sample plus probs - stop_grad(probs): the value is one-hot, the gradient that of probs."""
        index = torch.multinomial(self.probs.reshape(-1, self.probs.shape[-1]).detach(), 1)
        onehot = F.one_hot(index.reshape(self.probs.shape[:-1]), self.probs.shape[-1]).to(self.probs.dtype)
        return onehot + self.probs - self.probs.detach()

    def mode(self) -> Tensor:
        return F.one_hot(self.logits.argmax(-1), self.logits.shape[-1]).to(self.probs.dtype)

    def log_prob(self, onehot: Tensor) -> Tensor:  # (..., K) -> (...)
        return (onehot * self.log_probs).sum(-1)

    def entropy(self) -> Tensor:
        return -(self.probs * self.log_probs).sum(-1)


def categorical_kl(lhs_logits: Tensor, rhs_logits: Tensor) -> Tensor:
    """KL(lhs || rhs) of categoricals over the last axis: (..., K) -> (...)."""
    lhs = lhs_logits.float().log_softmax(-1)
    return (lhs.exp() * (lhs - rhs_logits.float().log_softmax(-1))).sum(-1)


class TruncNormalDist:
    """Normal(loc, scale) truncated to [low, high], independent over the last axis."""

    def __init__(self, loc: Tensor, scale: Tensor, low: float, high: float, clip: float = 1e-6) -> None:
        self.loc, self.scale, self.low, self.high, self.clip = loc.float(), scale.float(), low, high, clip
        self.alpha = (low - self.loc) / self.scale
        self.beta = (high - self.loc) / self.scale
        self.cdf_alpha = torch.special.ndtr(self.alpha)
        self.z = (torch.special.ndtr(self.beta) - self.cdf_alpha).clamp_min(1e-12)

    def sample(self) -> Tensor:
        """Inverse-CDF sample, differentiable in loc and scale; clipped to [low + 1e-6, high - 1e-6] with a
        straight-through gradient (official TruncNormalDist.sample)."""
        u = torch.rand_like(self.loc)
        p = (self.cdf_alpha + u * self.z).clamp(1e-7, 1 - 1e-7)
        event = self.loc + self.scale * torch.special.ndtri(p)
        clipped = event.clamp(self.low + self.clip, self.high - self.clip)
        return event + (clipped - event).detach()

    def mode(self) -> Tensor:
        return self.loc.clamp(self.low, self.high)

    def log_prob(self, x: Tensor) -> Tensor:  # (..., A) -> (...)
        normal = -0.5 * ((x - self.loc) / self.scale) ** 2 - torch.log(self.scale) - 0.5 * math.log(2 * math.pi)
        return (normal - torch.log(self.z)).sum(-1)

    def entropy(self) -> Tensor:
        """log(sqrt(2 pi e) scale Z) + (alpha phi(alpha) - beta phi(beta)) / (2 Z), summed over the last axis."""
        phi = lambda x: torch.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)  # noqa: E731
        ent = (0.5 * math.log(2 * math.pi * math.e) + torch.log(self.scale) + torch.log(self.z)
               + (self.alpha * phi(self.alpha) - self.beta * phi(self.beta)) / (2 * self.z))
        return ent.sum(-1)
