"""Trivial policies on the very episodes a run faced, so every score can stand beside them: uniform random
actions, or one constant action (zero, or e.g. 1.0: full force at the bound, where a collapsed actor sits).
Training episodes k of run seed s reset with ``train_episode_seed``; the evaluation round at env step t with
``eval_episode_seed`` (the driver's own formulas). Pixel DMC tasks are played through their proprioceptive twin
(same physics, seeds and rewards, no rendering)."""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from tools.envs import make_env
from tools.loop.driver import eval_episode_seed, suite_of, train_episode_seed


def trivial_returns(config: DictConfig, policy: str | float, first: int = 0, episodes: int = 10,
                    eval_step: int | None = None) -> list[float]:
    """Returns of ``policy`` ("random", or a constant continuous action) on training episodes first ...
    first + episodes - 1 of run seed ``config.seed``, or on the evaluation round at ``eval_step``."""
    seed, task = int(config.seed), config.task
    options = dict(config.env.get(suite_of(task), {}))
    if suite_of(task) == "dmc":
        task = "dmcproprio_" + task.split("_", 1)[1]
    env = make_env(task, seed if eval_step is None else seed + 10_000, **options)
    space, rng = env.action_space, np.random.default_rng(seed)
    if policy != "random" and hasattr(space, "n"):
        raise ValueError(f"a constant action needs continuous actions; {config.task} has {space.n} discrete ones")
    returns = []
    for k in range(first, first + episodes):
        env.reset(seed=train_episode_seed(seed, k) if eval_step is None else eval_episode_seed(seed, eval_step, k))
        total, done = 0.0, False
        while not done:
            if policy == "random":
                action = rng.integers(space.n) if hasattr(space, "n") else rng.uniform(-1, 1, space.shape)
            else:
                action = np.full(space.shape, float(policy), np.float32)
            _, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns
