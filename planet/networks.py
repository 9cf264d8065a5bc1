"""PlaNet's networks: the Ha & Schmidhuber conv encoder and deconv decoder, the recurrent state-space model
(`rssm`: deterministic GRU path, 30-d diagonal Gaussian `prior` and `posterior`) and the `reward` model.

Layer layout, activations, the GRU variant and initialisation follow the authors' code
(google-research/planet@c04226b: `networks/conv_ha.py`, `models/rssm.py`, `networks/basic.py`; TensorFlow 1
defaults: Glorot-uniform kernels, zero biases, GRUBlockCell gate bias 1). Images are NHWC outside and NCHW
inside the convolutions; B = batch, T = time, N = any flattened batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

State = dict[str, Tensor]  # mean, std, stoch (the sample), deter (the GRU belief): each (N, size)


def glorot_(module: nn.Module) -> nn.Module:
    """TF1 `tf.layers` defaults: Glorot-uniform weights, zero biases (every Linear / conv in ``module``)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


def mlp(inp: int, layers: int, units: int, out: int, heads: int = 1) -> nn.Sequential:
    """``layers`` dense ReLU layers of ``units``, then a linear output of size ``out``. With ``heads`` > 1 the
    output is that many separate TF dense layers side by side (each Glorot-initialised on its own fan-out)."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks += [nn.Linear(inp if i == 0 else units, units), nn.ReLU()]
    blocks.append(nn.Linear(units if layers else inp, out))
    net = glorot_(nn.Sequential(*blocks))
    with torch.no_grad():
        for part in net[-1].weight.chunk(heads, 0):
            part.copy_(nn.init.xavier_uniform_(torch.empty_like(part)))
    return net


class Encoder(nn.Module):
    """Ha & Schmidhuber (2018) conv net: 4 convs of kernel 4, stride 2, ReLU, 32-64-128-256 channels, flattened
    to 1024 features (official `conv_ha.encoder`). Input: the pre-processed image in [-0.5, 0.5]."""

    def __init__(self, channels: int = 3, depth: int = 32) -> None:
        super().__init__()
        self.out_dim = 32 * depth  # 256 channels x 2 x 2 at the paper's depth 32
        layers: list[nn.Module] = []
        for out in [depth, 2 * depth, 4 * depth, 8 * depth]:  # 64 -> 31 -> 14 -> 6 -> 2
            layers += [nn.Conv2d(channels, out, 4, stride=2), nn.ReLU()]
            channels = out
        self.net = glorot_(nn.Sequential(*layers))

    def forward(self, image: Tensor) -> Tensor:  # (..., 64, 64, C) float -> (..., 1024)
        batch = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:]).permute(0, 3, 1, 2)  # (N, C, 64, 64)
        x = self.net(x)  # (N, 256, 2, 2)
        x = x.permute(0, 2, 3, 1).reshape(*batch, -1)  # HWC flatten order, as TF's
        return x


class Decoder(nn.Module):
    """Ha & Schmidhuber (2018) deconv net: dense 1024 (linear) -> 1x1x1024 -> deconvs of kernel 5, 5, 6, 6,
    stride 2, ReLU, 128-64-32-C channels -> the mean of a unit-variance Gaussian over the 64x64 pixels
    (official `conv_ha.decoder`)."""

    def __init__(self, feat_dim: int, channels: int = 3, depth: int = 32) -> None:
        super().__init__()
        self.dense = glorot_(nn.Linear(feat_dim, 32 * depth))
        self.deconv = glorot_(nn.Sequential(
            nn.ConvTranspose2d(32 * depth, 4 * depth, 5, stride=2), nn.ReLU(),  # 1 -> 5
            nn.ConvTranspose2d(4 * depth, 2 * depth, 5, stride=2), nn.ReLU(),   # 5 -> 13
            nn.ConvTranspose2d(2 * depth, depth, 6, stride=2), nn.ReLU(),       # 13 -> 30
            nn.ConvTranspose2d(depth, channels, 6, stride=2)))                  # 30 -> 64

    def forward(self, feat: Tensor) -> Tensor:  # (..., F) -> (..., 64, 64, C) image mean
        batch = feat.shape[:-1]
        x = self.dense(feat).reshape(-1, self.dense.out_features, 1, 1)  # (N, 1024, 1, 1)
        x = self.deconv(x)  # (N, C, 64, 64)
        return x.permute(0, 2, 3, 1).reshape(*batch, *x.shape[2:], x.shape[1])


class GRUCell(nn.Module):
    """TF `GRUBlockCell` (Cho et al. 2014): reset gate applied to h before its matmul, h' = u h + (1 - u) c,
    reset/update biases initialised to 1 (the official RSSM's deterministic path)."""

    def __init__(self, inp: int, size: int) -> None:
        super().__init__()
        self.gates = glorot_(nn.Linear(inp + size, 2 * size))
        self.cand = glorot_(nn.Linear(inp + size, size))
        nn.init.ones_(self.gates.bias)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:  # (N, inp), (N, size) -> (N, size)
        r, u = torch.sigmoid(self.gates(torch.cat([x, h], -1))).chunk(2, -1)
        c = torch.tanh(self.cand(torch.cat([x, r * h], -1)))
        return u * h + (1 - u) * c


class RSSM(nn.Module):
    """Recurrent state-space model (official `models/rssm.py`, `model_layers` hidden layers of ``hidden`` ReLU
    units around the GRU).

    prior     p(s_t | h_t),        h_t = GRU(h_{t-1}, dense([s_{t-1}, a_{t-1}]))
    posterior q(s_t | h_t, e_t),   e_t = encoder(o_t)
    Both diagonal Gaussians: std = softplus(.) + min_std."""

    def __init__(self, act_dim: int, embed_dim: int, deter: int = 200, stoch: int = 30, hidden: int = 200,
                 layers: int = 1, min_std: float = 0.1) -> None:
        super().__init__()
        self.deter_dim, self.stoch_dim, self.min_std = deter, stoch, min_std
        self.feat_dim = deter + stoch
        self.pre_gru = mlp(stoch + act_dim, layers - 1, hidden, hidden)      # [s, a] -> hidden (then ReLU)
        self.gru = GRUCell(hidden, deter)
        self.prior = mlp(deter, layers, hidden, 2 * stoch, heads=2)                  # h -> (mean, std)
        self.posterior = mlp(deter + embed_dim, layers, hidden, 2 * stoch, heads=2)  # [h, e] -> (mean, std)

    def initial(self, batch: int, device: torch.device | str = "cpu") -> State:
        """The official zero state: all of mean, std, sample and belief are zeros."""
        zeros = lambda n: torch.zeros(batch, n, device=device)  # noqa: E731
        return {"mean": zeros(self.stoch_dim), "std": zeros(self.stoch_dim), "stoch": zeros(self.stoch_dim),
                "deter": zeros(self.deter_dim)}

    def _gaussian(self, out: Tensor, deter: Tensor) -> State:
        mean, std = out.chunk(2, -1)
        std = F.softplus(std) + self.min_std
        return {"mean": mean, "std": std, "stoch": mean + std * torch.randn_like(std), "deter": deter}

    def img_step(self, state: State, action: Tensor) -> State:
        """Prior step: (N, ...) state and (N, A) action -> prior state at the next step."""
        hidden = F.relu(self.pre_gru(torch.cat([state["stoch"], action], -1)))  # (N, hidden)
        deter = self.gru(hidden, state["deter"])  # (N, deter)
        return self._gaussian(self.prior(deter), deter)

    def obs_step(self, state: State, action: Tensor, embed: Tensor) -> tuple[State, State]:
        """(prior, posterior) at the next step given its embedded observation (N, E)."""
        prior = self.img_step(state, action)
        post = self._gaussian(self.posterior(torch.cat([prior["deter"], embed], -1)), prior["deter"])
        return prior, post

    def observe(self, embed: Tensor, action: Tensor, is_first: Tensor, state: State | None = None
                ) -> tuple[State, State]:
        """Filter a sequence: embed (B, T, E), action (B, T, A) (a_{t-1}, the action that led to o_t), is_first
        (B, T) resets the state to zeros. Returns priors and posteriors with values (B, T, size)."""
        B = embed.shape[0]
        state = self.initial(B, embed.device) if state is None else state
        priors, posts = [], []
        for e, a, first in zip(embed.unbind(1), action.unbind(1), is_first.unbind(1)):
            keep = (~first).float()[:, None]  # (B, 1)
            state = {k: v * keep for k, v in state.items()}
            prior, state = self.obs_step(state, a * keep, e)
            priors.append(prior)
            posts.append(state)
        stack = lambda states: {k: torch.stack([s[k] for s in states], 1) for k in states[0]}  # noqa: E731
        return stack(priors), stack(posts)

    @staticmethod
    def feat(state: State) -> Tensor:  # (..., stoch + deter): [sample, belief], as the official features
        return torch.cat([state["stoch"], state["deter"]], -1)


def kl_gaussian(post: State, prior: State) -> Tensor:
    """KL(post || prior) of diagonal Gaussians, summed over the latent: (...)."""
    var_ratio = (post["std"] / prior["std"]).square()
    mean_term = ((post["mean"] - prior["mean"]) / prior["std"]).square()
    return 0.5 * (var_ratio + mean_term - 1 - var_ratio.log()).sum(-1)
