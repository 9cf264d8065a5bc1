"""Crafter (Hafner 2021), tasks ``crafter_reward`` and ``crafter_noreward``.

``crafter.Env`` with 64x64 RGB observations, 10,000-step episodes, the 17 discrete actions, seeded, as in the
official ``danijar/dreamerv3`` ``embodied/envs/crafter.py`` (``crafter.Env(size, reward=task == 'reward',
seed)``; DreamerV2 configs ``crafter`` task ``crafter_reward``). Death is ``terminated`` (crafter's discount 0);
the 10,000-step limit is ``truncated``. ``info["achievements"]`` (name -> count this episode, all 22) comes
with every step and with ``reset()``, so the Crafter score (success rates over episodes) can be computed by
the results pipeline. ``crafter_noreward`` returns reward 0 (crafter's ``reward=False``).

Options: ``size`` (64), ``max_steps`` (10,000), ``action_repeat`` (1).
"""
from __future__ import annotations

import crafter
import gymnasium as gym
import numpy as np

from tools.envs.wrappers import UnknownTaskError, check_options, finish

TASKS = ("crafter_reward", "crafter_noreward")
DEFAULTS = {
    "size": 64,  # Crafter paper / DreamerV3 env.crafter size [64, 64]
    "max_steps": 10_000,  # crafter.Env length=10000 (Crafter paper)
    "action_repeat": 1,  # no action repeat in Crafter
}


class Crafter(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, reward: bool, seed: int, size: int, max_steps: int) -> None:
        self._env = crafter.Env(size=(size, size), reward=reward, length=max_steps, seed=seed)
        self.action_space = gym.spaces.Discrete(self._env.action_space.n)
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8)})
        self.action_names = list(self._env.action_names)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:  # crafter seeds episode k with hash((seed, k))
            self._env._seed, self._env._episode = seed, 0
        image = self._env.reset()
        return {"image": image}, {"achievements": dict(self._env._player.achievements)}

    def step(self, action):
        image, reward, done, info = self._env.step(int(action))
        terminated = done and info["discount"] == 0
        truncated = done and not terminated
        return {"image": image}, float(reward), terminated, truncated, {"achievements": info["achievements"]}


def make(task: str, seed: int, **options) -> gym.Env:
    if task not in TASKS:
        raise UnknownTaskError(f"unknown crafter task {task!r}; valid: {list(TASKS)}")
    opts = check_options("crafter", options, DEFAULTS)
    env = Crafter(task == "crafter_reward", seed, opts["size"], opts["max_steps"])
    return finish(env, seed, opts["action_repeat"])
