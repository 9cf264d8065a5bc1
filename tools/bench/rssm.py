"""Benches of the online RSSM learners (PlaNet, Dreamer v1, DreamerV2, DreamerV3): one full update (world model,
behaviour and optimiser steps, the agent's own ``train_step``) on a fixed synthetic batch, and the acting path
(``policy`` for one environment, as the driver calls it). Agents are built from each paper's ``configs.yaml``
exactly as its ``train.py`` builds them; observation shapes come from the task's environment."""
from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from omegaconf import DictConfig

from tools.bench.measure import rate, timed_update
from tools.loop import env_factory, spec_of


@dataclass(frozen=True)
class Size:
    task: str | None  # None: the task the preset sets
    preset: str


def _dreamer_v3(spec, config: DictConfig, device: str):
    from dreamer_v3.agent import DreamerV3
    from dreamer_v3.train import compile_agent
    return compile_agent(DreamerV3(spec.obs_shapes, spec.act_dim, spec.discrete, config.agent, device), config)


def _dreamer_v2(spec, config: DictConfig, device: str):
    from dreamer_v2.agent import DreamerV2
    return DreamerV2(spec, config.agent, device)


def _dreamer_v1(spec, config: DictConfig, device: str):
    from dreamer_v1.train import make_agent
    return make_agent(spec, config, device)


def _planet(spec, config: DictConfig, device: str):
    from planet.agent import PlaNet
    return PlaNet(spec, config.agent, device)


# learner -> (agent factory, named sizes); `small` and `paper` are the presets, the others extra settings
LEARNERS: dict[str, tuple[Callable, dict[str, Size]]] = {
    "dreamer_v3": (_dreamer_v3, {
        "small": Size("dmcproprio_cartpole_balance", "small"),
        "paper": Size("dmcproprio_walker_walk", "paper"),            # DMC proprio: the 1M model, T = 64
        "12m": Size("dmcproprio_walker_walk", "paper,size12m"),     # the issue-15 comparison setting (vector)
        "12m_image": Size("dmc_walker_walk", "paper,size12m"),      # the same with 64x64 images
        "paper_image": Size("dmc_walker_walk", "paper"),            # DMC vision: the 200M model (slow on a CPU)
    }),
    "dreamer_v2": (_dreamer_v2, {"small": Size("dmcproprio_cartpole_swingup", "small"),
                                 "paper": Size("dmc_walker_walk", "paper")}),
    "dreamer_v1": (_dreamer_v1, {"small": Size("dmcproprio_cartpole_swingup", "small"),
                                 "paper": Size("dmc_walker_walk", "paper")}),
    "planet": (_planet, {"small": Size(None, "small"), "paper": Size("dmc_cheetah_run", "paper")}),
}


def build_config(learner: str, size: Size, device: str, variant: str) -> DictConfig:
    """The learner's config at this size. Where the learner has `bf16` / `compile` keys, the `fp32` variant turns
    both off (eager float32, whatever the preset's default) and the `bf16` / `compile` variants turn theirs on."""
    main = importlib.import_module(f"{learner}.__main__")
    config = main.build_config(size.task, size.preset, 0, [f"device={device}"])
    flags = {"fp32": {"bf16": "false", "compile": "false"}, "bf16": {"bf16": "true"}, "compile": {"compile": "true"}}
    overrides = [f"{key}={value}" for key, value in flags[variant].items() if key in config]
    if overrides:
        config = main.build_config(config.task, size.preset, 0, [f"device={device}", *overrides])
    return config


def synthetic_batch(spec, batch: int, length: int, context: dict[str, tuple] | None, seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """A fixed replay batch (B, T, ...) as `SequenceReplay` returns it: random pixels / vectors, random actions
    (one-hot for discrete ones), normal rewards, an episode start at t = 0; replay-context keys zero."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for key, shape in spec.obs_shapes.items():
        if len(shape) == 3:
            data[key] = rng.integers(0, 256, (batch, length, *shape), dtype=np.uint8)
        else:
            data[key] = rng.standard_normal((batch, length, *shape)).astype(np.float32)
    if spec.discrete:
        data["action"] = np.eye(spec.act_dim, dtype=np.float32)[rng.integers(0, spec.act_dim, (batch, length))]
    else:
        data["action"] = rng.uniform(-1, 1, (batch, length, spec.act_dim)).astype(np.float32)
    data["reward"] = rng.standard_normal((batch, length)).astype(np.float32)
    data["is_first"] = np.zeros((batch, length), bool)
    data["is_first"][:, 0] = True
    data["is_last"] = np.zeros((batch, length), bool)
    data["is_terminal"] = np.zeros((batch, length), bool)
    for key, (shape, dtype) in (context or {}).items():
        data[key] = np.zeros((batch, length, *shape), np.dtype(dtype))
    return data


def trained_params(agent: torch.nn.Module) -> int:
    return sum(p.numel() for p in agent.parameters() if p.requires_grad)


def bench_learner(learner: str, size_name: str, repeats: int, warmup: int, device: str, variant: str = "fp32",
                  act_target_s: float = 1.0, back_to_back: bool = False) -> dict[str, Any]:
    """One learner at one size: the update (median seconds, FLOPs) and the acting rate (policy steps/s)."""
    factory, sizes = LEARNERS[learner]
    size = sizes[size_name]
    config = build_config(learner, size, device, variant)
    env = env_factory(config)(0)
    spec = spec_of(env)
    env.close()
    torch.manual_seed(0)
    agent = factory(spec, config, device)
    autocast = variant == "bf16" and "bf16" not in config and torch.device(device).type == "cuda"
    amp = (lambda: torch.autocast("cuda", torch.bfloat16)) if autocast else contextlib.nullcontext
    context = agent.context_spec if getattr(agent, "replay_context", 0) else None
    extra = int(getattr(agent, "replay_context", 0) or 0)
    batch = synthetic_batch(spec, int(config.batch_size), int(config.batch_length) + extra, context)

    def update():
        with amp():
            return agent.train_step(batch)

    timing = timed_update(update, repeats, warmup, device, back_to_back)
    obs = {k: batch[k][:1, 0] for k in spec.obs_shapes}
    state = {"value": agent.initial_state(1)}

    @torch.no_grad()
    def act(first: bool = False):
        with amp():
            _, state["value"] = agent.policy({**obs, "is_first": np.array([first])}, state["value"], "train")

    act(first=True)
    acting = rate(act, repeats, act_target_s, device=device)
    record = {"learner": learner, "size": size_name, "task": config.task, "preset": size.preset, "variant": variant,
              "device": str(device), "params": trained_params(agent), "batch": [int(config.batch_size),
                                                                                 int(config.batch_length)],
              "update": timing,
              "act": {"unit": "policy steps/s (1 env)", "per_s": acting["per_s"], "calls": acting["calls"],
                      "times_s": acting["times_s"]}}
    planner = config.agent.get("planner") if "agent" in config else None
    if planner is not None:
        record["act"]["unit"] = (f"CEM actions/s ({planner.candidates} x {planner.horizon} x "
                                 f"{planner.iterations}, 1 env)")
    return record
