"""C: the linear controller, a = tanh(W [z, h] + b), evaluated for a whole population at once.

CarRacing (``carracing/model.py`` MODE_ZH): input [z, h] (32 + 256), 3 outputs with bias: 867 parameters; the
outputs are mapped to steer in [-1, 1], gas (a + 1) / 2 and brake clip(a, 0, 1). Doom (``doomrnn/model.py``):
input [z, c, h] (64 + 512 + 512), 1 output, no bias: 1,088 parameters; M sees the continuous output and the
game gets the authors' threshold at +-1/3 (``tools.envs.doom.action_from_scalar``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ha2018.mdnrnn import State

ACTION_SIZE = {"carracing": 3, "doom_take_cover": 1}  # what M sees as a_t


@dataclass(frozen=True)
class Controller:
    input_size: int
    output_size: int
    bias: bool

    @classmethod
    def for_task(cls, task: str, z_size: int, hidden: int, inputs: str, bias: bool) -> "Controller":
        if inputs not in ("zh", "zch"):
            raise ValueError(f"controller.inputs must be 'zh' or 'zch', got {inputs!r}")
        return cls(z_size + hidden * (2 if inputs == "zch" else 1), ACTION_SIZE[task], bias)

    @property
    def param_count(self) -> int:
        return self.input_size * self.output_size + (self.output_size if self.bias else 0)

    def act(self, params: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """params: (P, n), features: (P, R, input) -> tanh outputs (P, R, output). Layout as the authors':
        bias first (when present), then the (input, output) weight matrix row-major."""
        offset = self.output_size if self.bias else 0
        weight = params[:, offset:].reshape(-1, self.input_size, self.output_size)  # (P, in, out)
        out = torch.bmm(features, weight)
        if self.bias:
            out = out + params[:, None, :offset]
        return torch.tanh(out)


def features(z: torch.Tensor, state: State, inputs: str) -> torch.Tensor:
    """The controller's input: [z, h] or [z, c, h]. z: (..., Z), state (..., H)."""
    parts = [z, state.c, state.h] if inputs == "zch" else [z, state.h]
    return torch.cat(parts, dim=-1)


def model_action(task: str, raw: torch.Tensor) -> torch.Tensor:
    """Controller tanh outputs (..., A) -> the action M is fed (and CarRacing's env action)."""
    if task == "carracing":
        return torch.stack([raw[..., 0], (raw[..., 1] + 1) / 2, raw[..., 2].clamp(0, 1)], dim=-1)
    return raw


def env_action(task: str, action: np.ndarray):
    """M's action (A,) -> the action the real environment takes."""
    if task == "carracing":
        return action.astype(np.float32)
    from tools.envs.doom import action_from_scalar
    return action_from_scalar(float(action[0]))
