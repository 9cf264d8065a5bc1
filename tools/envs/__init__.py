"""Every benchmark the papers use, behind one function: ``make_env(task, seed, **options)``.

Task names follow the authors' score files so our runs join the published curves directly:
``dmc_walker_walk``, ``dmcproprio_cartpole_balance``, ``atari_pong``, ``crafter_reward``,
``minecraft_diamond``, ``carracing``, ``doom_take_cover``. The observation convention and the episode flags
are documented in ``tools/README.md``.
"""
from __future__ import annotations

import importlib
import os
import time

import gymnasium as gym

from tools.envs.wrappers import UnknownTaskError, episode_flags

os.environ.setdefault("MUJOCO_GL", "egl")  # DMC pixels on a machine without a display (osmesa fails here)

# suite prefix -> (module in tools.envs, description of valid names)
SUITES: dict[str, tuple[str, str]] = {
    "dmc": ("dmc", "dmc_<domain>_<task>, e.g. dmc_walker_walk (64x64 pixels)"),
    "dmcproprio": ("dmc", "dmcproprio_<domain>_<task>, e.g. dmcproprio_cartpole_balance (state vector)"),
    "atari": ("atari", "atari_<game>, e.g. atari_pong, atari_ms_pacman"),
    "crafter": ("crafter_env", "crafter_reward, crafter_noreward"),
    "minecraft": ("minecraft", "minecraft_diamond"),
    "carracing": ("carracing", "carracing"),
    "doom": ("doom", "doom_take_cover"),
}


def make_env(task: str, seed: int = 0, **options) -> gym.Env:
    """Create ``task`` seeded with ``seed``; ``options`` are the suite's protocol options (see each module)."""
    suite = _suite_of(task)
    module = importlib.import_module(f"tools.envs.{SUITES[suite][0]}")
    return module.make(task, seed, **options)


def step_rate(task: str, steps: int = 1000, **options) -> tuple[float, float]:
    """(agent steps/s, simulator steps/s) of ``task`` under uniform random actions, resets included."""
    env = make_env(task, 0, **options)
    env.reset()
    simulator_steps, start = 0, time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        simulator_steps += info["env_steps"]
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds, simulator_steps / seconds


def valid_tasks() -> str:
    return "; ".join(description for _, description in SUITES.values())


def _suite_of(task: str) -> str:
    prefix = task.split("_", 1)[0]
    if prefix in SUITES:  # each suite module checks the full name
        return prefix
    raise UnknownTaskError(f"unknown task {task!r}. Valid tasks: {valid_tasks()}")


__all__ = ["make_env", "episode_flags", "valid_tasks", "step_rate", "UnknownTaskError", "SUITES"]
