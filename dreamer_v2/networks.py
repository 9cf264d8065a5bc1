"""DreamerV2 networks as released (danijar/dreamerv2@07d906e `common/nets.py`): ELU MLPs without normalisation,
a GRU cell with layer norm, the RSSM with 32 categorical latents of 32 classes (straight-through samples),
the strided-conv encoder (kernels 4, depth 48) and the transposed-conv decoder (kernels 5, 5, 6, 6).
Keras initialisation: Glorot-uniform weights, zero biases. Images are NHWC outside, NCHW inside the convs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamer_v2.dists import OneHotDist, TruncNormalDist


def glorot_(module: nn.Module) -> nn.Module:
    """Keras defaults: glorot_uniform kernel, zero bias (Dense, Conv2D, Conv2DTranspose)."""
    nn.init.xavier_uniform_(module.weight)
    nn.init.zeros_(module.bias)
    return module


def dense(inp: int, out: int) -> nn.Linear:
    return glorot_(nn.Linear(inp, out))


class DenseStack(nn.Sequential):
    """Dense -> ELU layers of the given widths (MLP trunks; the vector encoder and decoder, official `_mlp`)."""

    def __init__(self, inp: int, layers: list[int]) -> None:
        modules: list[nn.Module] = []
        for width in layers:
            modules += [dense(inp, width), nn.ELU()]
            inp = width
        super().__init__(*modules)
        self.out_dim = inp


class MLP(nn.Module):
    """``layers`` x (Dense ``units`` -> ELU), then a linear output of ``out`` units (official `common.MLP`)."""

    def __init__(self, inp: int, out: int, layers: int, units: int) -> None:
        super().__init__()
        self.trunk = DenseStack(inp, [units] * layers)
        self.out = dense(self.trunk.out_dim, out)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.trunk(x))


class ScalarHead(MLP):
    """Reward, discount and critic heads: an MLP with one output; (..., F) -> (...,)."""

    def __init__(self, inp: int, layers: int, units: int) -> None:
        super().__init__(inp, 1, layers, units)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).squeeze(-1)


class Actor(nn.Module):
    """Policy MLP: one-hot categorical for discrete actions; for continuous actions a normal truncated to [-1, 1]
    with mean tanh(m) and std 2 sigmoid(s / 2) + min_std (official `DistLayer('trunc_normal')`)."""

    def __init__(self, inp: int, act_dim: int, discrete: bool, layers: int, units: int, min_std: float) -> None:
        super().__init__()
        self.discrete, self.min_std = discrete, min_std
        self.mlp = MLP(inp, act_dim, layers, units)
        self.std = None if discrete else dense(units, act_dim)  # DistLayer's separate 'std' layer

    def forward(self, x: Tensor) -> OneHotDist | TruncNormalDist:
        hidden = self.mlp.trunk(x)
        out = self.mlp.out(hidden)
        if self.discrete:
            return OneHotDist(out)
        std = 2 * torch.sigmoid(self.std(hidden) / 2) + self.min_std
        return TruncNormalDist(torch.tanh(out), std, -1.0, 1.0)


class Encoder(nn.Module):
    """image / 255 - 0.5 -> 4 x [conv k4 s2 (depth 48, 96, 192, 384) -> ELU] -> flatten (64x64 -> 2x2x384 = 1536)."""

    def __init__(self, channels: int, depth: int, kernels: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = 64
        for i, kernel in enumerate(kernels):
            layers += [glorot_(nn.Conv2d(channels, 2 ** i * depth, kernel, 2)), nn.ELU()]
            channels, size = 2 ** i * depth, (size - kernel) // 2 + 1
        self.cnn = nn.Sequential(*layers)
        self.out_dim = channels * size * size

    def forward(self, image: Tensor) -> Tensor:  # (..., 64, 64, C) uint8 -> (..., out_dim)
        batch = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:]).permute(0, 3, 1, 2).float() / 255 - 0.5
        return self.cnn(x).permute(0, 2, 3, 1).reshape(*batch, -1)  # HWC flatten order as Keras


class Decoder(nn.Module):
    """feat -> Dense(32 depth) -> 1x1 -> 4 x [transposed conv s2, kernels 5, 5, 6, 6, depth 192, 96, 48, C]
    with ELU between (1 -> 5 -> 13 -> 30 -> 64). The output is the mean of a unit-variance normal over
    image / 255 - 0.5."""

    def __init__(self, feat_dim: int, channels: int, depth: int, kernels: list[int]) -> None:
        super().__init__()
        self.inp = dense(feat_dim, 32 * depth)
        layers: list[nn.Module] = []
        width = 32 * depth
        for i, kernel in enumerate(kernels):
            last = i == len(kernels) - 1
            out = channels if last else 2 ** (len(kernels) - i - 2) * depth
            layers.append(glorot_(nn.ConvTranspose2d(width, out, kernel, 2)))
            if not last:
                layers.append(nn.ELU())
            width = out
        self.cnn = nn.Sequential(*layers)

    def forward(self, feat: Tensor) -> Tensor:  # (..., F) -> (..., 64, 64, C)
        batch = feat.shape[:-1]
        x = self.inp(feat.reshape(-1, feat.shape[-1]))[:, :, None, None]
        x = self.cnn(x).permute(0, 2, 3, 1)
        return x.reshape(*batch, *x.shape[1:])


class GRUCell(nn.Module):
    """Official `GRUCell(norm=True)`: one Dense over [input, state] to 3 x size, LayerNorm (eps 1e-3, Keras),
    reset / candidate / update gates with update bias -1."""

    def __init__(self, inp: int, size: int) -> None:
        super().__init__()
        self.layer = dense(inp + size, 3 * size)
        self.norm = nn.LayerNorm(3 * size, eps=1e-3)

    def forward(self, x: Tensor, state: Tensor) -> Tensor:
        parts = self.norm(self.layer(torch.cat([x, state], -1)))
        reset, cand, update = parts.chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * state


class RSSM(nn.Module):
    """h_t = GRU(h_{t-1}, ELU(Dense([z_{t-1}, a_{t-1}]))); prior p(z_t | h_t) = MLP(h_t); posterior
    q(z_t | h_t, e_t) = MLP([h_t, e_t]); z_t: ``stoch`` one-hot categoricals of ``classes`` classes."""

    def __init__(self, embed_dim: int, act_dim: int, deter: int, hidden: int, stoch: int, classes: int) -> None:
        super().__init__()
        self.deter, self.stoch, self.classes = deter, stoch, classes
        self.img_in = dense(stoch * classes + act_dim, hidden)
        self.cell = GRUCell(hidden, deter)
        self.img_out = dense(deter, hidden)
        self.img_dist = dense(hidden, stoch * classes)
        self.obs_out = dense(deter + embed_dim, hidden)
        self.obs_dist = dense(hidden, stoch * classes)

    @property
    def feat_dim(self) -> int:
        return self.stoch * self.classes + self.deter

    def initial(self, batch: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        return {"deter": torch.zeros(batch, self.deter, device=device),
                "stoch": torch.zeros(batch, self.stoch, self.classes, device=device)}

    def _logits(self, x: Tensor) -> Tensor:  # (..., S*C) -> (..., S, C)
        return x.reshape(*x.shape[:-1], self.stoch, self.classes)

    def prior_logits(self, deter: Tensor) -> Tensor:
        return self._logits(self.img_dist(F.elu(self.img_out(deter))))

    def post_logits(self, deter: Tensor, embed: Tensor) -> Tensor:
        return self._logits(self.obs_dist(F.elu(self.obs_out(torch.cat([deter, embed], -1)))))

    def core(self, state: dict[str, Tensor], action: Tensor) -> Tensor:
        """h_t from {deter (N, D), stoch (N, S, C)} at t-1 and a_{t-1} (N, A)."""
        x = F.elu(self.img_in(torch.cat([state["stoch"].flatten(-2), action], -1)))
        return self.cell(x, state["deter"])

    def img_step(self, state: dict[str, Tensor], action: Tensor, sample: bool = True) -> dict[str, Tensor]:
        """Prior step: h_t, then z_t ~ p(z_t | h_t)."""
        deter = self.core(state, action)
        logits = self.prior_logits(deter)
        dist = OneHotDist(logits)
        return {"deter": deter, "stoch": dist.sample() if sample else dist.mode(), "logits": logits}

    def obs_step(self, state: dict[str, Tensor], action: Tensor, embed: Tensor, is_first: Tensor,
                 sample: bool = True) -> dict[str, Tensor]:
        """Posterior step; rows with ``is_first`` (N,) start from a zero state and a zero action."""
        keep = (~is_first.bool()).float()
        state = {"deter": state["deter"] * keep[:, None], "stoch": state["stoch"] * keep[:, None, None]}
        deter = self.core(state, action * keep[:, None])
        logits = self.post_logits(deter, embed)
        dist = OneHotDist(logits)
        return {"deter": deter, "stoch": dist.sample() if sample else dist.mode(), "logits": logits}

    def observe(self, embed: Tensor, action: Tensor, is_first: Tensor, state: dict[str, Tensor] | None = None
                ) -> tuple[dict[str, Tensor], Tensor]:
        """Posterior rollout: embed (B, T, E), action (B, T, A) = a_{t-1}, is_first (B, T). Returns the posterior
        {deter (B, T, D), stoch (B, T, S, C), logits (B, T, S, C)} and the prior logits (B, T, S, C)."""
        state = self.initial(embed.shape[0], embed.device) if state is None else state
        steps = []  # unbind, not x[:, t]: indexing in a loop makes backward zero-fill a (B, T, ...) tensor per step
        for e, a, first in zip(embed.unbind(1), action.unbind(1), is_first.unbind(1)):
            state = self.obs_step(state, a, e, first)
            steps.append(state)
        post = {k: torch.stack([s[k] for s in steps], 1) for k in steps[0]}
        return post, self.prior_logits(post["deter"])

    def feat(self, state: dict[str, Tensor]) -> Tensor:  # (..., S*C + D), stoch first as the official get_feat
        return torch.cat([state["stoch"].flatten(-2), state["deter"]], -1)
