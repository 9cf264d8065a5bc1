"""M: the MDN-RNN. An LSTM over [z_t, a_t (, restart_t)] with a mixture-density head that gives, per latent
dimension, a 5-component Gaussian mixture over z_{t+1}; for Doom also the logit of done_{t+1}.

The LSTM follows the authors' TensorFlow cell (``LayerNormBasicLSTMCell`` without layer norm): one bias vector,
gate order (i, g, f, o), forget bias +1. That single bias is why the CarRacing model has exactly 422,368
parameters (PyTorch's ``nn.LSTM`` would add a second bias). The Doom model (``doomrnn.py``) feeds the restart
flag as an input, zeroes the state where it is 1, and predicts the next restart (= done): 1,678,785 parameters.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class State(NamedTuple):
    c: torch.Tensor  # (B, H)
    h: torch.Tensor  # (B, H)


class Mixture(NamedTuple):
    logmix: torch.Tensor  # (..., Z, K) log mixture weights, normalised over K
    mean: torch.Tensor    # (..., Z, K)
    logstd: torch.Tensor  # (..., Z, K)


class LSTMCell(nn.Module):
    """TensorFlow-layout LSTM cell: gates = W_x x + b + W_h h, split (i, g, f, o), forget bias 1."""

    def __init__(self, input_size: int, hidden: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        self.hidden, self.forget_bias = hidden, forget_bias
        self.input_gates = nn.Linear(input_size, 4 * hidden)           # carries the single bias
        self.recurrent_gates = nn.Linear(hidden, 4 * hidden, bias=False)

    def step(self, x_gates: torch.Tensor, state: State) -> State:
        """x_gates: (B, 4H) = input_gates(x), precomputed for a whole sequence."""
        i, g, f, o = (x_gates + self.recurrent_gates(state.h)).chunk(4, dim=-1)
        c = state.c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(g)
        return State(c, torch.sigmoid(o) * torch.tanh(c))


class MDNRNN(nn.Module):
    def __init__(self, z_size: int, action_size: int, hidden: int, mixtures: int, predict_done: bool,
                 logstd_min: float = -7.0, logstd_max: float = 2.0) -> None:
        super().__init__()
        self.z_size, self.action_size, self.hidden, self.mixtures = z_size, action_size, hidden, mixtures
        self.predict_done = predict_done
        self.logstd_bounds = (logstd_min, logstd_max)
        input_size = z_size + action_size + (1 if predict_done else 0)
        self.cell = LSTMCell(input_size, hidden)
        self.head = nn.Linear(hidden, z_size * mixtures * 3 + (1 if predict_done else 0))

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State:
        zeros = torch.zeros(batch, self.hidden, device=device)
        return State(zeros, zeros.clone())

    def forward(self, z: torch.Tensor, action: torch.Tensor, restart: torch.Tensor | None,
                state: State | None = None) -> tuple[Mixture, torch.Tensor | None, State]:
        """z: (B, T, Z), action: (B, T, A), restart: (B, T) or None -> mixture over z_{t+1} (B, T, Z, K),
        done logits (B, T) (None without a done head), final state."""
        batch, steps = z.shape[:2]
        state = state or self.initial_state(batch, z.device)
        x_gates = self.cell.input_gates(self._inputs(z, action, restart))  # (B, T, 4H)
        # unbind, not x_gates[:, t]: indexing in a loop makes backward zero-fill a (B, T, 4H) tensor per step
        restarts = restart.unbind(1) if restart is not None else [None] * steps
        outputs = []
        for x_t, restart_t in zip(x_gates.unbind(1), restarts):
            state = self.cell.step(x_t, self._reset_where(state, restart_t))
            outputs.append(state.h)
        mixture, done_logit = self.split_head(self.head(torch.stack(outputs, dim=1)))
        return mixture, done_logit, state

    def step(self, z: torch.Tensor, action: torch.Tensor, restart: torch.Tensor | None,
             state: State) -> tuple[Mixture, torch.Tensor | None, State]:
        """One time step for a batch: z (B, Z), action (B, A), restart (B,) -> outputs for z_{t+1}."""
        mixture, done_logit, state = self.forward(z[:, None], action[:, None],
                                                  restart[:, None] if restart is not None else None, state)
        squeeze = lambda x: x[:, 0] if x is not None else None  # noqa: E731
        return Mixture(*(squeeze(x) for x in mixture)), squeeze(done_logit), state

    def _inputs(self, z: torch.Tensor, action: torch.Tensor, restart: torch.Tensor | None) -> torch.Tensor:
        parts = [z, action]
        if self.predict_done:
            parts.append(restart[..., None].to(z.dtype))
        return torch.cat(parts, dim=-1)

    @staticmethod
    def _reset_where(state: State, restart: torch.Tensor | None) -> State:
        if restart is None:
            return state
        keep = (restart < 0.5).to(state.c.dtype)[:, None]  # (B, 1)
        return State(state.c * keep, state.h * keep)

    def split_head(self, out: torch.Tensor) -> tuple[Mixture, torch.Tensor | None]:
        """out: (..., Z*K*3 [+1]) -> Mixture of (..., Z, K), done logit (...) (the authors' order: done first)."""
        done_logit = None
        if self.predict_done:
            done_logit, out = out[..., 0], out[..., 1:]
        out = out.reshape(*out.shape[:-1], self.z_size, 3, self.mixtures)
        logmix = F.log_softmax(out[..., 0, :], dim=-1)
        logstd = out[..., 2, :].clamp(*self.logstd_bounds)
        return Mixture(logmix, out[..., 1, :], logstd), done_logit


def mixture_nll(mixture: Mixture, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of target (..., Z) per latent dimension, with log-sum-exp over components."""
    y = target[..., None]  # (..., Z, 1)
    log_normal = -0.5 * ((y - mixture.mean) / mixture.logstd.exp()).pow(2) - mixture.logstd - LOG_SQRT_2PI
    return -torch.logsumexp(mixture.logmix + log_normal, dim=-1).mean()


def done_loss(logit: torch.Tensor, target: torch.Tensor, done_weight: float) -> torch.Tensor:
    """The authors' weighted BCE: a done = 1 target counts done_weight times."""
    weight = 1.0 + target * (done_weight - 1.0)
    return (weight * F.binary_cross_entropy_with_logits(logit, target, reduction="none")).mean()


def done_probability(logit: torch.Tensor, done_weight: float) -> torch.Tensor:
    """P(done) undoing the loss weighting: a BCE that counts positives w times is minimised at
    p_w = w q / (1 + (w - 1) q), so q = p_w / (w - (w - 1) p_w)."""
    p = torch.sigmoid(logit)
    return p / (done_weight - (done_weight - 1.0) * p)


def adjust_temperature(mixture: Mixture, temperature: float) -> Mixture:
    """The paper's temperature: mixture weights softmax(logmix / tau), Gaussian std scaled by sqrt(tau)."""
    logmix = F.log_softmax(mixture.logmix / temperature, dim=-1)
    return Mixture(logmix, mixture.mean, mixture.logstd + 0.5 * math.log(temperature))


def sample_mixture(mixture: Mixture, temperature: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample z_{t+1} (..., Z): one component per dimension, then a Gaussian sample, at temperature tau."""
    mixture = adjust_temperature(mixture, temperature)
    cdf = mixture.logmix.exp().cumsum(dim=-1)  # (..., Z, K); inverse-CDF draw (faster than multinomial)
    u = torch.rand((*cdf.shape[:-1], 1), generator=generator, device=cdf.device, dtype=cdf.dtype)
    index = (cdf < u * cdf[..., -1:]).sum(dim=-1, keepdim=True).clamp(max=cdf.shape[-1] - 1)
    mean = mixture.mean.gather(-1, index)[..., 0]
    std = mixture.logstd.gather(-1, index)[..., 0].exp()
    noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * noise
