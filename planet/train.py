"""Training entry point: the shared driver (`tools.loop`) runs PlaNet's schedule (5 random seed episodes, then
C = 100 updates after every collected episode), replay, evaluation, records and resume."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from planet.agent import PlaNet
from tools.runs import Run


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    from tools.loop import train_loop

    return train_loop("planet", config, preset, lambda spec, device: PlaNet(spec, config.agent, device),
                      logdir=logdir)
