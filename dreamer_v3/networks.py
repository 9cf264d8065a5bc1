"""Networks as published: RMSNorm + SiLU layers, block-diagonal GRU, categorical RSSM, multi-key encoder and
decoder, MLP heads. Initialisation and layer layout follow the official code (danijar/dreamerv3@e3f0224,
`dreamerv3/rssm.py`, `embodied/jax/nets.py`, `embodied/jax/heads.py`). Images are NHWC uint8 outside and NCHW
inside the convolutions."""
from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamer_v3.robustness import symlog, twohot_bins, unimix_logits
from dreamer_v3.seqgrad import Stash, sequence_grads, step_matmul


# ---- layers -------------------------------------------------------------------------------------
def trunc_normal_(weight: Tensor, fan_in: int, outscale: float = 1.0) -> None:
    """Official `Initializer('trunc_normal', 'in')`: N(0, 1) truncated to [-2, 2], times 1.1368 / sqrt(fan_in)
    (1.1368 restores unit variance after truncation), times ``outscale`` (0 gives a zero-initialised layer)."""
    with torch.no_grad():
        if weight.is_meta:
            return
        nn.init.trunc_normal_(weight, 0.0, 1.0, -2.0, 2.0)
        weight.mul_(1.1368 * math.sqrt(1.0 / fan_in) * outscale)


class Linear(nn.Linear):
    """``stash`` is set inside ``sequence_grads`` (weight gradients formed once per sequence, seqgrad.py)."""
    block = False

    def __init__(self, inp: int, out: int, outscale: float = 1.0) -> None:
        super().__init__(inp, out)
        trunc_normal_(self.weight, inp, outscale)
        nn.init.zeros_(self.bias)
        self.stash: Stash | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.stash is None:
            return super().forward(x)
        y = step_matmul(x, self.weight, self.stash)
        return y + self.bias.to(y.dtype)  # the matmul's dtype (bf16 under autocast), as nn.Linear


class BlockLinear(nn.Module):
    """A block-diagonal linear layer: ``blocks`` independent (inp/blocks -> out/blocks) maps.
    The official fan-in is the full input size (its `compute_fans` multiplies by the block count)."""
    block = True

    def __init__(self, inp: int, out: int, blocks: int, outscale: float = 1.0) -> None:
        super().__init__()
        assert inp % blocks == 0 and out % blocks == 0, (inp, out, blocks)
        self.blocks = blocks
        self.weight = nn.Parameter(torch.empty(blocks, inp // blocks, out // blocks))
        self.bias = nn.Parameter(torch.zeros(out))
        trunc_normal_(self.weight, inp, outscale)
        self.stash: Stash | None = None

    def forward(self, x: Tensor) -> Tensor:  # (..., inp) -> (..., out)
        x = x.reshape(*x.shape[:-1], self.blocks, -1)
        x = step_matmul(x, self.weight, self.stash, block=True)
        return x.reshape(*x.shape[:-2], -1) + self.bias.to(x.dtype)


class Conv2d(nn.Conv2d):
    def __init__(self, inp: int, out: int, kernel: int, outscale: float = 1.0) -> None:
        super().__init__(inp, out, kernel, padding="same")
        trunc_normal_(self.weight, kernel * kernel * inp, outscale)
        nn.init.zeros_(self.bias)


def rms_norm(x: Tensor, scale: Tensor, eps: float) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * scale over the last axis, computed in float32 (official `Norm('rms')`)."""
    y = x.float()
    y = y * torch.rsqrt(y.square().mean(-1, keepdim=True) + eps) * scale
    return y.to(x.dtype)


class CompiledOrEager:
    """``torch.compile(fn)`` that falls back to ``fn`` for good (with one warning) if compiling fails, e.g. where
    no C++ compiler is installed. A genuine error in ``fn`` is raised again by the eager call."""

    def __init__(self, fn, **options) -> None:
        self.fn, self.compiled, self.failed = fn, torch.compile(fn, **options), False

    def __call__(self, *args):
        if not self.failed:
            try:
                return self.compiled(*args)
            except Exception as error:  # noqa: BLE001 (any compiler failure)
                warnings.warn(f"torch.compile failed, running {getattr(self.fn, '__name__', self.fn)} eagerly: "
                              f"{type(error).__name__}: {error}".splitlines()[0])
                self.failed = True
        return self.fn(*args)


class RMSNorm(nn.Module):
    """Official `Norm('rms')` with a learned scale. ``compile_norms`` swaps ``norm`` for a compiled (fused) one."""

    def __init__(self, dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))
        self.norm = rms_norm

    def forward(self, x: Tensor) -> Tensor:  # (..., dim); as (rows, dim), so a compiled norm sees one rank
        return self.norm(x.reshape(-1, x.shape[-1]), self.scale, self.eps).reshape(x.shape)


class ChannelRMSNorm(RMSNorm):
    def forward(self, x: Tensor) -> Tensor:  # (N, C, H, W), normalised over C
        return self.norm(x.movedim(1, -1), self.scale, self.eps).movedim(-1, 1)


class Dense(nn.Sequential):
    """Linear -> RMSNorm -> SiLU."""

    def __init__(self, inp: int, out: int) -> None:
        super().__init__(Linear(inp, out), RMSNorm(out), nn.SiLU())


class MLP(nn.Sequential):
    def __init__(self, inp: int, layers: int, units: int) -> None:
        super().__init__(*[Dense(inp if i == 0 else units, units) for i in range(layers)])
        self.out_dim = units if layers else inp


# ---- heads --------------------------------------------------------------------------------------
class TwoHotHead(nn.Module):
    """MLP -> 255 logits over symexp-spaced bins; output layer zero-initialised (reward and critic)."""

    def __init__(self, inp: int, layers: int, units: int, bins: int = 255, outscale: float = 0.0) -> None:
        super().__init__()
        self.mlp = MLP(inp, layers, units)
        self.out = Linear(self.mlp.out_dim, bins, outscale)
        self.register_buffer("bins", twohot_bins(bins), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # (..., inp) -> (..., bins) logits
        return self.out(self.mlp(x)).float()


class BinaryHead(nn.Module):
    """MLP -> one Bernoulli logit (continue flag)."""

    def __init__(self, inp: int, layers: int, units: int, outscale: float = 1.0) -> None:
        super().__init__()
        self.mlp = MLP(inp, layers, units)
        self.out = Linear(self.mlp.out_dim, 1, outscale)

    def forward(self, x: Tensor) -> Tensor:  # (..., inp) -> (...,) logit
        return self.out(self.mlp(x)).float().squeeze(-1)


class Actor(nn.Module):
    """Policy: a plain categorical for discrete actions (official `policy_dist_disc: categorical`; the policy's
    `unimix` is read only by the `onehot` output, which the actor does not use); for continuous actions a normal
    with mean tanh(m) and std (max - min) sigmoid(s + 2) + min (official `bounded_normal`, minstd 0.1, maxstd 1)."""

    def __init__(self, inp: int, act_dim: int, discrete: bool, layers: int, units: int,
                 minstd: float, maxstd: float, outscale: float) -> None:
        super().__init__()
        self.discrete, self.minstd, self.maxstd = discrete, minstd, maxstd
        self.mlp = MLP(inp, layers, units)
        self.out = Linear(self.mlp.out_dim, act_dim if discrete else 2 * act_dim, outscale)

    def forward(self, x: Tensor) -> torch.distributions.Distribution:
        out = self.out(self.mlp(x)).float()
        if self.discrete:
            return torch.distributions.Categorical(logits=out)
        mean, std = out.chunk(2, -1)
        std = (self.maxstd - self.minstd) * torch.sigmoid(std + 2.0) + self.minstd
        return torch.distributions.Independent(torch.distributions.Normal(torch.tanh(mean), std), 1)


# ---- encoder / decoder ----------------------------------------------------------------------------
def split_keys(obs_shapes: dict[str, tuple[int, ...]]) -> tuple[list[str], list[str]]:
    """Image keys (3-d uint8 HWC) and vector keys (1-d), each sorted."""
    images = sorted(k for k, s in obs_shapes.items() if len(s) == 3)
    vectors = sorted(k for k, s in obs_shapes.items() if len(s) == 1)
    return images, vectors


class Encoder(nn.Module):
    """Vectors: symlog -> MLP. Images: /255 - 0.5 -> [conv5 -> maxpool2 -> RMSNorm -> SiLU] x 4 -> flatten.
    Returns the concatenated tokens."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], depth: int, mults: list[int], layers: int,
                 units: int, kernel: int, symlog_inputs: bool) -> None:
        super().__init__()
        self.images, self.vectors = split_keys(obs_shapes)
        self.symlog_inputs = symlog_inputs
        self.out_dim = 0
        if self.vectors:
            self.mlp = MLP(sum(obs_shapes[k][0] for k in self.vectors), layers, units)
            self.out_dim += units
        if self.images:
            height, width = obs_shapes[self.images[0]][:2]
            channels = sum(obs_shapes[k][2] for k in self.images)
            blocks = []
            for depth_out in [depth * m for m in mults]:
                blocks += [Conv2d(channels, depth_out, kernel), nn.MaxPool2d(2), ChannelRMSNorm(depth_out),
                           nn.SiLU()]
                channels, height, width = depth_out, height // 2, width // 2
            self.cnn = nn.Sequential(*blocks)
            self.out_dim += channels * height * width

    def forward(self, obs: dict[str, Tensor]) -> Tensor:  # values (..., *shape) -> (..., out_dim)
        outs = []
        if self.vectors:
            x = torch.cat([obs[k].float() for k in self.vectors], -1)
            outs.append(self.mlp(symlog(x) if self.symlog_inputs else x))
        if self.images:
            x = torch.cat([obs[k] for k in self.images], -1)
            batch = x.shape[:-3]
            x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float() / 255 - 0.5  # (N, C, H, W)
            x = self.cnn(x.to(self.cnn[0].weight.dtype))
            outs.append(x.permute(0, 2, 3, 1).reshape(*batch, -1))  # HWC flatten order as official
        return torch.cat(outs, -1)


class Decoder(nn.Module):
    """From (deter, stoch): vectors through an MLP to symlog predictions (symlog MSE loss); images through a
    block-linear projection of deter plus an MLP of stoch to 4x4, then [upsample2 -> conv5 -> RMSNorm -> SiLU] x 3,
    upsample2 -> conv5 -> sigmoid (MSE loss on pixels in [0, 1])."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], deter: int, stoch_dim: int, depth: int,
                 mults: list[int], layers: int, units: int, kernel: int, bspace: int, outscale: float) -> None:
        super().__init__()
        self.images, self.vectors = split_keys(obs_shapes)
        self.obs_shapes = obs_shapes
        if self.vectors:
            self.mlp = MLP(deter + stoch_dim, layers, units)
            self.vec_out = Linear(units, sum(obs_shapes[k][0] for k in self.vectors), outscale)
        if self.images:
            depths = [depth * m for m in mults]
            height, width = obs_shapes[self.images[0]][:2]
            factor = 2 ** len(depths)
            self.minres = (height // factor, width // factor)
            self.bspace = bspace
            flat = self.minres[0] * self.minres[1] * depths[-1]
            self.space0 = BlockLinear(deter, flat, bspace)
            self.space1 = Dense(stoch_dim, 2 * units)
            self.space2 = Linear(2 * units, flat)
            self.space_norm = RMSNorm(depths[-1])
            layers_ = []
            for inp, out in zip(reversed(depths[1:]), reversed(depths[:-1])):
                layers_ += [nn.Upsample(scale_factor=2), Conv2d(inp, out, kernel), ChannelRMSNorm(out), nn.SiLU()]
            channels = sum(obs_shapes[k][2] for k in self.images)
            layers_ += [nn.Upsample(scale_factor=2), Conv2d(depths[0], channels, kernel, outscale)]
            self.cnn = nn.Sequential(*layers_)
            self.depth_last = depths[-1]

    def forward(self, deter: Tensor, stoch: Tensor) -> dict[str, Tensor]:
        """deter (..., D), stoch (..., S*C) -> predictions: vectors in symlog space, images in [0, 1] (..., H, W, C)."""
        out = {}
        if self.vectors:
            x = self.vec_out(self.mlp(torch.cat([stoch, deter], -1))).float()
            out.update(zip(self.vectors, x.split([self.obs_shapes[k][0] for k in self.vectors], -1)))
        if self.images:
            batch = deter.shape[:-1]
            h, w, g = *self.minres, self.bspace
            x0 = self.space0(deter.reshape(-1, deter.shape[-1]))  # (N, g*h*w*c')
            x0 = x0.reshape(-1, g, h, w, self.depth_last // g).permute(0, 2, 3, 1, 4).reshape(-1, h, w, self.depth_last)
            x1 = self.space2(self.space1(stoch.reshape(-1, stoch.shape[-1]))).reshape(-1, h, w, self.depth_last)
            x = F.silu(self.space_norm(x0 + x1)).permute(0, 3, 1, 2)  # (N, C, h, w)
            x = torch.sigmoid(self.cnn(x).float()).permute(0, 2, 3, 1)  # (N, H, W, C)
            x = x.reshape(*batch, *x.shape[1:])
            out.update(zip(self.images, x.split([self.obs_shapes[k][2] for k in self.images], -1)))
        return out


# ---- RSSM -----------------------------------------------------------------------------------------
class RSSM(nn.Module):
    """Recurrent state-space model with a block GRU (``blocks`` blocks) and ``stoch`` categorical latents of
    ``classes`` classes each, straight-through sampled with 1% unimix."""

    def __init__(self, token_dim: int, act_dim: int, deter: int, hidden: int, stoch: int, classes: int,
                 blocks: int, unimix: float, imglayers: int, obslayers: int, dynlayers: int,
                 outscale: float = 1.0) -> None:
        super().__init__()
        assert deter % blocks == 0
        self.deter, self.stoch, self.classes, self.blocks, self.unimix = deter, stoch, classes, blocks, unimix
        self.dynin0 = Dense(deter, hidden)         # from h_{t-1}
        self.dynin1 = Dense(stoch * classes, hidden)  # from z_{t-1}
        self.dynin2 = Dense(act_dim, hidden)       # from a_{t-1}
        group_in = deter // blocks + 3 * hidden
        self.dynhid = nn.ModuleList([
            nn.Sequential(BlockLinear(blocks * group_in if i == 0 else deter, deter, blocks), RMSNorm(deter),
                          nn.SiLU()) for i in range(dynlayers)])
        self.dyngru = BlockLinear(deter, 3 * deter, blocks)
        self.obs_net = nn.Sequential(*[Dense(deter + token_dim if i == 0 else hidden, hidden)
                                       for i in range(obslayers)])
        self.obs_logit = Linear(hidden, stoch * classes, outscale)
        self.prior_net = nn.Sequential(*[Dense(deter if i == 0 else hidden, hidden) for i in range(imglayers)])
        self.prior_logit = Linear(hidden, stoch * classes, outscale)
        self.img_core = self.core  # the prior step's core; `compile: true` swaps in a compiled one (no gradients)

    @property
    def feat_dim(self) -> int:
        return self.deter + self.stoch * self.classes

    def initial(self, batch: int, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        return {"deter": torch.zeros(batch, self.deter, device=device),
                "stoch": torch.zeros(batch, self.stoch, self.classes, device=device)}

    def core(self, deter: Tensor, stoch: Tensor, action: Tensor) -> Tensor:
        """Block GRU step: h_t = f(h_{t-1}, z_{t-1}, a_{t-1}). deter (N, D), stoch (N, S, C), action (N, A)."""
        action = action / torch.clamp(action.abs(), min=1).detach()
        x = torch.cat([self.dynin0(deter), self.dynin1(stoch.flatten(-2)), self.dynin2(action)], -1)
        g = self.blocks
        x = x[:, None, :].expand(-1, g, -1)
        x = torch.cat([deter.reshape(-1, g, self.deter // g), x], -1).reshape(deter.shape[0], -1)
        for layer in self.dynhid:
            x = layer(x)
        gates = self.dyngru(x).reshape(-1, g, 3 * self.deter // g).chunk(3, -1)
        reset, cand, update = [gate.reshape(-1, self.deter) for gate in gates]
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * deter

    def prior_logits(self, deter: Tensor) -> Tensor:  # (..., D) -> (..., S, C) log-probs with unimix
        logits = self.prior_logit(self.prior_net(deter))
        return unimix_logits(logits.reshape(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    def post_logits(self, deter: Tensor, tokens: Tensor) -> Tensor:
        logits = self.obs_logit(self.obs_net(torch.cat([deter, tokens], -1)))
        return unimix_logits(logits.reshape(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    @staticmethod
    def sample(logits: Tensor) -> Tensor:
        """One-hot sample with straight-through gradients (..., S, C). Drawn by inverse CDF, one uniform per
        latent: the class is the first whose cumulative probability reaches u (the distribution of
        ``torch.multinomial``, at a fraction of its cost)."""
        probs = logits.softmax(-1)
        with torch.no_grad():
            u = torch.rand(*probs.shape[:-1], 1, device=probs.device, dtype=probs.dtype)
            index = (probs.cumsum(-1) < u).sum(-1).clamp_(max=probs.shape[-1] - 1)
        onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
        return onehot + probs - probs.detach()

    def obs_step(self, state: dict[str, Tensor], action: Tensor, tokens: Tensor, reset: Tensor
                 ) -> dict[str, Tensor]:
        """One posterior step; ``reset`` (N,) bool zeroes the previous state and action at episode starts."""
        keep = (~reset).float()
        deter = state["deter"] * keep[:, None]
        stoch = state["stoch"] * keep[:, None, None]
        action = action * keep[:, None]
        deter = self.core(deter, stoch, action)
        logits = self.post_logits(deter, tokens)
        return {"deter": deter, "stoch": self.sample(logits), "logits": logits}

    def observe(self, state: dict[str, Tensor], actions: Tensor, tokens: Tensor, reset: Tensor
                ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Posterior rollout over time: actions (B, T, A) are a_{t-1}, tokens (B, T, E), reset (B, T).
        Returns the last state and stacked {deter (B, T, D), stoch (B, T, S, C), logits (B, T, S, C)}."""
        steps = []  # unbind, not x[:, t]: indexing in a loop makes backward zero-fill a (B, T, ...) tensor per step
        with sequence_grads(self.step_layers()):
            for action, token, first in zip(actions.unbind(1), tokens.unbind(1), reset.unbind(1)):
                state = self.obs_step(state, action, token, first)
                steps.append(state)
        stacked = {k: torch.stack([s[k] for s in steps], 1) for k in steps[0]}
        return {k: state[k] for k in ("deter", "stoch")}, stacked

    def step_layers(self) -> list[nn.Module]:
        """The matmul layers of a posterior step, whose weight gradients `observe` forms once per sequence."""
        steps = (self.dynin0, self.dynin1, self.dynin2, self.dynhid, self.dyngru, self.obs_net, self.obs_logit)
        return [m for step in steps for m in step.modules() if isinstance(m, (Linear, BlockLinear))]

    def img_step(self, state: dict[str, Tensor], action: Tensor) -> dict[str, Tensor]:
        deter = self.img_core(state["deter"], state["stoch"], action)
        logits = self.prior_logits(deter)
        return {"deter": deter, "stoch": self.sample(logits), "logits": logits}

    def feat(self, state: dict[str, Tensor]) -> Tensor:  # (..., D + S*C)
        return torch.cat([state["deter"], state["stoch"].flatten(-2)], -1)
