"""Dreamer (v1) networks, layer for layer as the authors' code (`danijar/dreamer@56d4d44` `models.py`):
RSSM with a Gaussian stochastic state, conv encoder / transposed-conv decoder (ReLU), dense heads (ELU) and
the tanh-transformed Gaussian actor. Weights are initialised as Keras does (Glorot-uniform kernels, zero biases,
orthogonal GRU recurrent kernel), the framework defaults of the official TF2 code."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Independent, Normal

State = dict[str, Tensor]  # mean, std, stoch (..., S); deter (..., D)


def keras_init(module: nn.Module) -> None:
    """Keras defaults: glorot_uniform kernels, zeros biases, orthogonal GRU recurrent kernel."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GRUCell):
            nn.init.xavier_uniform_(m.weight_ih)
            nn.init.orthogonal_(m.weight_hh)
            nn.init.zeros_(m.bias_ih)
            nn.init.zeros_(m.bias_hh)


def mlp(inp: int, layers: int, units: int, out: int) -> nn.Sequential:
    """``layers`` dense ELU layers of ``units``, then a linear output (official `DenseDecoder` / `ActionDecoder`)."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(inp, units), nn.ELU()]
        inp = units
    mods.append(nn.Linear(inp, out))
    return nn.Sequential(*mods)


class RSSM(nn.Module):
    """Recurrent state-space model: deterministic GRU state h (deter) and Gaussian stochastic state s (stoch);
    std = softplus(.) + 0.1 (official `RSSM`, hidden size = deter size)."""

    def __init__(self, embed: int, act_dim: int, stoch: int = 30, deter: int = 200, hidden: int = 200,
                 min_std: float = 0.1) -> None:
        super().__init__()
        self.stoch_size, self.deter_size, self.min_std = stoch, deter, min_std
        self.img1 = nn.Linear(stoch + act_dim, hidden)
        self.cell = nn.GRUCell(hidden, deter)  # Keras GRUCell (reset_after=True) has the same algebra
        self.img2 = nn.Linear(deter, hidden)
        self.img3 = nn.Linear(hidden, 2 * stoch)
        self.obs1 = nn.Linear(deter + embed, hidden)
        self.obs2 = nn.Linear(hidden, 2 * stoch)

    @property
    def feat_dim(self) -> int:
        return self.stoch_size + self.deter_size

    def initial(self, batch: int, device: torch.device | str) -> State:
        zeros = lambda n: torch.zeros(batch, n, device=device)  # noqa: E731
        s = self.stoch_size
        return {"mean": zeros(s), "std": zeros(s), "stoch": zeros(s), "deter": zeros(self.deter_size)}

    def _gaussian(self, x: Tensor, deter: Tensor) -> State:
        mean, std = x.chunk(2, -1)
        std = F.softplus(std) + self.min_std
        stoch = mean + std * torch.randn_like(std)  # reparameterised sample
        return {"mean": mean, "std": std, "stoch": stoch, "deter": deter}

    def img_step(self, prev: State, prev_action: Tensor) -> State:
        """Prior p(s_t | h_t), h_t = f(h_{t-1}, s_{t-1}, a_{t-1}). (N, ...) -> (N, ...)."""
        x = F.elu(self.img1(torch.cat([prev["stoch"], prev_action], -1)))
        deter = self.cell(x, prev["deter"])
        x = F.elu(self.img2(deter))
        return self._gaussian(self.img3(x), deter)

    def obs_step(self, prev: State, prev_action: Tensor, embed: Tensor) -> tuple[State, State]:
        """Posterior q(s_t | h_t, e_t) and prior; (N, ...)."""
        prior = self.img_step(prev, prev_action)
        x = F.elu(self.obs1(torch.cat([prior["deter"], embed], -1)))
        return self._gaussian(self.obs2(x), prior["deter"]), prior

    def observe(self, embed: Tensor, action: Tensor, state: State | None = None) -> tuple[State, State]:
        """embed (B, T, E), action (B, T, A) (the action that led to step t) -> posts, priors (B, T, ...)."""
        state = state if state is not None else self.initial(embed.shape[0], embed.device)
        posts, priors = [], []
        for e, a in zip(embed.unbind(1), action.unbind(1)):
            state, prior = self.obs_step(state, a, e)
            posts.append(state)
            priors.append(prior)
        stack = lambda states: {k: torch.stack([s[k] for s in states], 1) for k in states[0]}  # noqa: E731
        return stack(posts), stack(priors)

    def feat(self, state: State) -> Tensor:
        return torch.cat([state["stoch"], state["deter"]], -1)

    @staticmethod
    def dist(state: State) -> Independent:
        return Independent(Normal(state["mean"], state["std"]), 1)


class Encoder(nn.Module):
    """4 convs, kernel 4, stride 2, depth 32/64/128/256, ReLU: (..., 64, 64, 3) in [-0.5, 0.5] -> (..., 1024)."""

    def __init__(self, depth: int = 32, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for mult in (1, 2, 4, 8):
            layers += [nn.Conv2d(channels, mult * depth, 4, 2), nn.ReLU()]
            channels = mult * depth
        self.net = nn.Sequential(*layers)
        self.out_dim = 32 * depth  # 2 x 2 x 8 depth

    def forward(self, image: Tensor) -> Tensor:
        batch = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:]).permute(0, 3, 1, 2)
        # Keras flattens HWC; the order does not matter for a learned linear map downstream.
        return self.net(x).permute(0, 2, 3, 1).reshape(*batch, self.out_dim)


class Decoder(nn.Module):
    """Dense to 32 depth, 1x1 -> transposed convs (kernels 5, 5, 6, 6, stride 2, ReLU) -> mean image
    (..., 64, 64, C) of a unit-variance Gaussian (official `ConvDecoder`)."""

    def __init__(self, feat: int, depth: int = 32, channels: int = 3) -> None:
        super().__init__()
        self.depth = depth
        self.linear = nn.Linear(feat, 32 * depth)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(32 * depth, 4 * depth, 5, 2), nn.ReLU(),  # 1 -> 5
            nn.ConvTranspose2d(4 * depth, 2 * depth, 5, 2), nn.ReLU(),   # 5 -> 13
            nn.ConvTranspose2d(2 * depth, 1 * depth, 6, 2), nn.ReLU(),   # 13 -> 30
            nn.ConvTranspose2d(1 * depth, channels, 6, 2))               # 30 -> 64

    def forward(self, feat: Tensor) -> Tensor:
        batch = feat.shape[:-1]
        x = self.linear(feat).reshape(-1, 32 * self.depth, 1, 1)
        x = self.net(x).permute(0, 2, 3, 1)
        return x.reshape(*batch, *x.shape[1:])


class ObsEncoder(nn.Module):
    """Embedding of an observation dict: the conv encoder for ``image``; a ``vector`` (proprioceptive state,
    small preset only) is passed through unchanged, the posterior's dense layer being its first layer.
    Keys in sorted order, concatenated: (..., E)."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], depth: int) -> None:
        super().__init__()
        self.keys = sorted(obs_shapes)
        self.conv = Encoder(depth, obs_shapes["image"][-1]) if "image" in obs_shapes else None
        self.out_dim = (self.conv.out_dim if self.conv else 0) + sum(
            obs_shapes[k][0] for k in self.keys if k != "image")

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        return torch.cat([self.conv(obs[k]) if k == "image" else obs[k] for k in self.keys], -1)


class ObsDecoder(nn.Module):
    """Means of unit Gaussians over every observation key: the transposed-conv decoder for ``image``, a dense
    ELU decoder (official `DenseDecoder` with a vector shape) for ``vector``."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], feat: int, depth: int, layers: int,
                 units: int) -> None:
        super().__init__()
        self.shapes = {k: tuple(v) for k, v in obs_shapes.items()}
        self.heads = nn.ModuleDict({k: Decoder(feat, depth, shape[-1]) if k == "image" else
                                    mlp(feat, layers, units, shape[0]) for k, shape in self.shapes.items()})

    def forward(self, feat: Tensor) -> dict[str, Tensor]:
        return {k: head(feat) for k, head in self.heads.items()}


class TanhNormal:
    """Independent Normal(mean, std) squashed by tanh (official `TanhBijector` + `SampleDist`): reparameterised
    samples; mode and entropy estimated from 100 samples as the official `SampleDist`."""

    def __init__(self, mean: Tensor, std: Tensor, samples: int = 100) -> None:
        self.base = Normal(mean, std)
        self.samples = samples

    def sample(self) -> Tensor:
        return torch.tanh(self.base.rsample())

    def log_prob(self, action: Tensor) -> Tensor:
        """Sum over the action dims; the inverse clips |y| to 0.99999997 as the official bijector."""
        x = torch.atanh(action.clamp(-0.99999997, 0.99999997))
        log_det = 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))
        return (self.base.log_prob(x) - log_det).sum(-1)

    def mode(self) -> Tensor:
        """The most likely of 100 samples, per row (the official code picks one index for the whole batch,
        identical for its single environment)."""
        sample = torch.tanh(self.base.sample((self.samples,)))  # (K, ..., A)
        best = self.log_prob(sample).argmax(0)  # (...)
        return torch.gather(sample, 0, best[None, ..., None].expand(1, *sample.shape[1:]))[0]

    def entropy(self) -> Tensor:
        return -self.log_prob(torch.tanh(self.base.sample((self.samples,)))).mean(0)


class Actor(nn.Module):
    """4 ELU layers of 400 -> mean, std; mean = 5 tanh(mean / 5), std = softplus(std + softplus^-1(5)) + 1e-4
    (official `ActionDecoder`, dist tanh_normal)."""

    def __init__(self, feat: int, act_dim: int, layers: int = 4, units: int = 400, init_std: float = 5.0,
                 mean_scale: float = 5.0, min_std: float = 1e-4) -> None:
        super().__init__()
        self.net = mlp(feat, layers, units, 2 * act_dim)
        self.raw_init_std = math.log(math.exp(init_std) - 1)
        self.mean_scale, self.min_std = mean_scale, min_std

    def forward(self, feat: Tensor) -> TanhNormal:
        mean, std = self.net(feat).chunk(2, -1)
        mean = self.mean_scale * torch.tanh(mean / self.mean_scale)
        std = F.softplus(std + self.raw_init_std) + self.min_std
        return TanhNormal(mean, std)


class DenseHead(nn.Module):
    """Reward (2 layers) and value (3 layers) models: ELU layers of 400 -> the mean of a unit Gaussian."""

    def __init__(self, feat: int, layers: int, units: int = 400) -> None:
        super().__init__()
        self.net = mlp(feat, layers, units, 1)

    def forward(self, feat: Tensor) -> Tensor:
        return self.net(feat).squeeze(-1)
