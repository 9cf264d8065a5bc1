"""The uniform random policy on the episode seeds a run trains on (the driver's k-th episode of run seed s resets
with seed s * 1000 + k), so a score can be read beside the random policy's on the same episodes. DMC vision tasks
are played through their proprioceptive twin (same physics, seeds and rewards, no rendering). ``constant`` replaces the
random actions by one fixed continuous action (e.g. 1.0: full force at the bound, where a collapsed actor sits)."""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from tools.envs import make_env


def random_policy_returns(config: DictConfig, first: int, episodes: int, constant: float | None = None
                          ) -> list[float]:
    """Returns of ``episodes`` random-policy episodes k = first ... first + episodes - 1 of run seed ``config.seed``."""
    task, suite = config.task, config.task.split("_", 1)[0]
    options = dict(config.env.get(suite, {}))
    if suite == "dmc":
        task = "dmcproprio_" + task.split("_", 1)[1]
    seed = int(config.seed)
    env = make_env(task, seed, **options)
    rng = np.random.default_rng(seed)
    returns = []
    for k in range(first, first + episodes):
        env.reset(seed=seed * 1000 + k)
        total, done = 0.0, False
        while not done:
            space = env.action_space
            discrete = hasattr(space, "n")
            if constant is not None and not discrete:
                action = np.full(space.shape, constant, np.float32)
            else:
                action = rng.integers(space.n) if discrete else rng.uniform(-1, 1, space.shape).astype(np.float32)
            _, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns
