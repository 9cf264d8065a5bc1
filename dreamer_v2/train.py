"""Training: the shared driver (`tools.loop`) with the DreamerV2 agent. The driver acts in the environment
(uniform random actions during prefill), stores steps in the on-disk replay (sequences cut within one episode),
trains ``train_steps`` updates every ``train_every`` policy steps, logs, evaluates, checkpoints and resumes."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from dreamer_v2.agent import DreamerV2
from tools.loop import EnvSpec, train_loop
from tools.runs import Run

PAPER = "dreamer_v2"


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    """Train (or resume) one run; returns the finished Run."""

    def make_agent(spec: EnvSpec, device: str) -> DreamerV2:
        return DreamerV2(spec, config.agent, device)

    return train_loop(PAPER, config, preset, make_agent, logdir)
