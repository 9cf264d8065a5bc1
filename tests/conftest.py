import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one thread is ~10x faster than two competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def random_cartpole_episode():
    """A function: ``steps`` uniform random actions on pixel cartpole swingup (seed 0) -> image (steps + 1, 64, 64,
    3) uint8, action (steps + 1, 1) and reward (steps + 1,) float32; the first step is the reset (zero action)."""
    def collect(steps: int, **env_options) -> dict[str, np.ndarray]:
        from tools.envs import make_env
        env = make_env("dmc_cartpole_swingup", 0, **env_options)
        obs, _ = env.reset(seed=0)
        rng = np.random.default_rng(0)
        episode = {"image": [obs["image"]], "action": [np.zeros(1, np.float32)], "reward": [0.0]}
        for _ in range(steps):
            action = rng.uniform(-1, 1, 1).astype(np.float32)
            obs, reward, *_ = env.step(action)
            episode["image"].append(obs["image"])
            episode["action"].append(action)
            episode["reward"].append(reward)
        env.close()
        return {k: np.stack(v).astype(np.uint8 if k == "image" else np.float32) for k, v in episode.items()}
    return collect
