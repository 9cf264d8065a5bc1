"""DreamerV3's robustness techniques, each a small named function (paper Sec. 2-3; official `embodied/jax/outs.py`,
`embodied/jax/utils.py`, `dreamerv3/agent.py`, `dreamerv3/rssm.py` at danijar/dreamerv3@e3f0224)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


def twohot_bins(num: int = 255, low: float = -20.0, high: float = 20.0) -> Tensor:
    """``symexp(linspace(low, high, num))``, built from one half and mirrored so the middle bin is exactly 0 and
    the bins are exactly symmetric (official `Head.symexp_twohot`)."""
    if num % 2 == 1:
        half = symexp(torch.linspace(low, 0.0, (num - 1) // 2 + 1, dtype=torch.float64))
        bins = torch.cat([half, -half[:-1].flip(0)])
    else:
        half = symexp(torch.linspace(low, 0.0, num // 2, dtype=torch.float64))
        bins = torch.cat([half, -half.flip(0)])
    return bins.float()


def twohot_weights(target: Tensor, bins: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two bins around ``target`` (...,) and the weight on each, linear in the distance to the other
    (official `TwoHot` loss). Values outside the bin range go fully onto the edge bin (both indices equal,
    half the weight each). Returns (below, above, weight_below, weight_above). The bins are sorted, so the count of
    bins <= target is a binary search (`searchsorted`), not a (..., K) comparison summed (issue 15)."""
    count = len(bins)
    at_or_below = torch.searchsorted(bins, target.contiguous(), right=True)  # (...,) how many bins are <= target
    below, above = (at_or_below - 1).clamp(0, count - 1), at_or_below.clamp(0, count - 1)
    equal = below == above
    to_below = torch.where(equal, torch.ones_like(target), (bins[below] - target).abs())
    to_above = torch.where(equal, torch.ones_like(target), (bins[above] - target).abs())
    total = to_below + to_above
    return below, above, to_above / total, to_below / total


def twohot_loss(logits: Tensor, target: Tensor, bins: Tensor) -> Tensor:
    """Cross-entropy between the twohot encoding of ``target`` (...,) and ``logits`` (..., K) -> (...,). Reads the
    two log-probabilities the encoding weights instead of multiplying out the (..., K) encoding: the same sum, as
    its other terms are zero."""
    below, above, weight_below, weight_above = twohot_weights(target.detach().float(), bins)
    logp = F.log_softmax(logits.float(), -1)
    at = lambda index: logp.gather(-1, index[..., None]).squeeze(-1)  # noqa: E731
    return -(weight_below * at(below) + weight_above * at(above))


def twohot_mean(logits: Tensor, bins: Tensor) -> Tensor:
    """Expected value under softmax(logits) (..., K) -> (...,), summed symmetrically around the middle bin so
    uniform probabilities give exactly 0 at initialisation (official `TwoHot.pred`)."""
    probs = F.softmax(logits.float(), -1)
    weighted = probs * bins
    count = len(bins)
    if count % 2 == 1:
        middle = (count - 1) // 2
        return weighted[..., middle] + (weighted[..., :middle].flip(-1) + weighted[..., middle + 1:]).sum(-1)
    return (weighted[..., :count // 2].flip(-1) + weighted[..., count // 2:]).sum(-1)


def unimix_logits(logits: Tensor, unimix: float = 0.01) -> Tensor:
    """Mix ``unimix`` of a uniform distribution into softmax(logits); returns log-probabilities (paper: 1%)."""
    if not unimix:
        return logits.float()
    probs = F.softmax(logits.float(), -1)
    probs = (1 - unimix) * probs + unimix / probs.shape[-1]
    return torch.log(probs)


def categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) for (..., latents, classes) log-probabilities, summed over latents -> (...,)."""
    logp, logq = F.log_softmax(logits_p, -1), F.log_softmax(logits_q, -1)
    return (logp.exp() * (logp - logq)).sum((-2, -1))


def free_bits(kl: Tensor, free: float = 1.0) -> Tensor:
    """Clip a KL loss below ``free`` nats: below the threshold it is constant and has no gradient."""
    return torch.clamp(kl, min=free) if free else kl


def kl_losses(post_logits: Tensor, prior_logits: Tensor, free: float = 1.0) -> tuple[Tensor, Tensor]:
    """The two KL terms of the world model, routed by stop-gradients (paper eq. 5):
    dynamics loss trains the prior towards the (fixed) posterior; representation loss trains the posterior
    towards the (fixed) prior. Both use unimix log-probabilities and free bits."""
    dyn = categorical_kl(post_logits.detach(), prior_logits)
    rep = categorical_kl(post_logits, prior_logits.detach())
    return free_bits(dyn, free), free_bits(rep, free)


def lambda_return(last: Tensor, term: Tensor, rew: Tensor, boot: Tensor, disc: float, lam: float) -> Tensor:
    """TD(lambda) returns over (N, T) inputs -> (N, T - 1), bootstrapping from ``boot`` (official
    `lambda_return`): R_t = r_{t+1} + live_{t+1} ((1 - c_{t+1}) v_{t+1} + c_{t+1} R_{t+1})."""
    live = (1 - term.float())[:, 1:] * disc
    cont = (1 - last.float())[:, 1:] * lam
    interm = rew[:, 1:] + (1 - cont) * live * boot[:, 1:]
    rets = [boot[:, -1]]
    for t in reversed(range(live.shape[1])):
        rets.append(interm[:, t] + live[:, t] * cont[:, t] * rets[-1])
    return torch.stack(list(reversed(rets))[:-1], 1)


class ReturnNormalizer(torch.nn.Module):
    """Percentile return scale: EMA of the 5th and 95th percentiles, scale = max(limit, hi - lo)
    (paper Table 4: decay 0.99, limit 1; official `Normalize(impl='perc', rate=0.01, debias=False)`)."""

    def __init__(self, rate: float = 0.01, limit: float = 1.0, low: float = 5.0, high: float = 95.0) -> None:
        super().__init__()
        self.rate, self.limit, self.low, self.high = rate, limit, low / 100, high / 100
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))

    @torch.no_grad()
    def update(self, x: Tensor) -> None:
        x = x.detach().float().flatten()
        self.lo.mul_(1 - self.rate).add_(self.rate * torch.quantile(x, self.low))
        self.hi.mul_(1 - self.rate).add_(self.rate * torch.quantile(x, self.high))

    def stats(self) -> tuple[Tensor, Tensor]:
        """(offset, scale)."""
        return self.lo.clone(), torch.clamp(self.hi - self.lo, min=self.limit)
