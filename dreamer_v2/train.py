"""Training goes through the shared driver (`tools.loop.train_loop`): environments, replay, train schedule,
logging, evaluation, checkpoints and resume live there; this file only builds the agent."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from dreamer_v2.agent import DreamerV2
from tools.runs import Run


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    from tools.loop import train_loop  # the shared driver (imported here so the CLI's errors stay one line)
    return train_loop("dreamer_v2", config, preset, logdir=logdir,
                      make_agent=lambda spec, device: DreamerV2(spec, config.agent, torch.device(device)))
