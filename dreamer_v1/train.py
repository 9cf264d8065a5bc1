"""Training: the shared driver (`tools.loop.train_loop`) runs environments, random prefill, replay, the
"100 updates every 1000 env steps" schedule, logging, evaluation, open-loop videos, checkpoints and resume."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dreamer_v1.agent import Dreamer
from tools.loop import EnvSpec, train_loop
from tools.runs import Run

PAPER = "dreamer_v1"


def make_agent(spec: EnvSpec, config: DictConfig, device: str) -> Dreamer:
    if spec.discrete:
        raise ValueError("Dreamer (v1) here learns continuous control (DMC); the task has discrete actions")
    return Dreamer(spec.obs_shapes, spec.act_dim, config.agent, device)


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    """Train (or resume) one run; returns the finished Run."""
    return train_loop(PAPER, config, preset, lambda spec, device: make_agent(spec, config, device), logdir=logdir,
                      method="Dreamer")
