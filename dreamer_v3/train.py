"""Training: the shared driver (`tools.loop`) with the DreamerV3 agent. The driver acts in the environment,
stores steps in the on-disk replay (with the online queue and the replay context), trains at the configured
train ratio (replayed steps per policy step, official `elements.when.Ratio(train_ratio / (B * T))`), logs,
evaluates, checkpoints and resumes. Budgets are counted in the environment's own units (`info['env_steps']`)."""
from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig

from dreamer_v3.agent import DreamerV3
from dreamer_v3.networks import CompiledOrEager, RMSNorm, rms_norm
from tools.loop import EnvSpec, train_loop
from tools.runs import Run

PAPER = "dreamer_v3"


def compile_agent(agent: DreamerV3, config: DictConfig) -> DreamerV3:
    """``compile: true``: torch.compile every RMSNorm (six elementwise ops fused into one kernel) and the RSSM
    core step of imagination (the posterior rollout keeps the eager core: compiling it did not help at batch 16,
    and its weight gradients are formed once per sequence, seqgrad.py); each falls back to eager if compiling
    fails. Computes the same values."""
    if config.compile:
        compile_norms(agent)
        agent.rssm.img_core = CompiledOrEager(agent.rssm.core, dynamic=True)
    return agent


def compile_norms(agent: torch.nn.Module) -> None:
    """One compiled function (and cache) for every norm. Each width, layout and grad mode is a graph of its own
    (a norm's width is fixed by its scale); torch's default of 8 graphs per function silently left the rest
    eager (the 12M image agent, and the small test agent once it acts), so the limit is raised to fit them all."""
    limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
    norm = CompiledOrEager(rms_norm, dynamic=True)
    for module in agent.modules():
        if isinstance(module, RMSNorm):
            module.norm = norm


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    """Train (or resume) one run; returns the finished Run."""

    def make_agent(spec: EnvSpec, device: str) -> DreamerV3:
        return compile_agent(DreamerV3(spec.obs_shapes, spec.act_dim, spec.discrete, config.agent, device), config)

    return train_loop(PAPER, config, preset, make_agent, logdir)
