"""DeepMind Control Suite, tasks ``dmc_<domain>_<task>`` (pixels) and ``dmcproprio_<domain>_<task>`` (state).

As in the Dreamer code (``danijar/dreamer`` ``wrappers.py`` ``DeepMindControl``; same in DreamerV2/V3):
64x64 RGB renders from camera 0, camera 2 for quadruped; episodes of 1000 simulator steps, so
``1000 / action_repeat`` agent steps, ended by ``truncated`` (a time limit, not terminal). DMC tasks have no
terminal states; a step whose DMC discount is 0 would be ``terminated``. The action repeat runs inside the
env (rewards summed, ``info["env_steps"]`` = control steps), so a frame is rendered once per agent step.

Options:
- ``action_repeat``: int, default 2 (Dreamer: "fixed action repeat of R=2 across tasks"; DreamerV3's
  2023 code ``dmc: repeat: 2``; its 2024 code uses 1), or ``"planet"`` for PlaNet's per-domain repeats in
  ``PLANET_ACTION_REPEAT``.
- ``obs_type``: ``image`` | ``vector`` | ``both``; default ``image`` for ``dmc_*`` and ``vector`` for
  ``dmcproprio_*``. ``vector`` is every DMC observation flattened and concatenated in the suite's key order,
  float32.
- ``size`` (64), ``camera`` (None: 0, or 2 for quadruped), ``max_steps`` (1000 simulator steps).

Domains with underscores parse (``dmc_ball_in_cup_catch``, ``dmc_point_mass_easy``). The seed fixes the
task's random state (initial states); ``reset(seed=...)`` re-seeds it.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from dm_control import suite

from tools.envs.wrappers import SeedFirstReset, UnknownTaskError, check_options

# PlaNet paper Sec. 5 / Appendix, and google-research/planet scripts/tasks.py (shared/published/hyperparameters.md)
PLANET_ACTION_REPEAT = {"cartpole": 8, "reacher": 4, "cheetah": 4, "finger": 2, "ball_in_cup": 4, "walker": 2}
CAMERAS = {"quadruped": 2}  # danijar/dreamer wrappers.py: dict(quadruped=2).get(domain, 0)
DEFAULTS = {
    "action_repeat": 2,  # Dreamer, DreamerV2 and the 2023 DreamerV3 configs: repeat 2
    "obs_type": None,  # image for dmc_*, vector for dmcproprio_*
    "size": 64,  # all Dreamer papers and PlaNet: 64x64 RGB
    "camera": None,  # CAMERAS, default 0
    "max_steps": 1000,  # DMC's 1000-step episodes (time_limit / control timestep)
}
OBS_TYPES = ("image", "vector", "both")


def parse_task(task: str) -> tuple[str, str, str]:
    """``dmc_ball_in_cup_catch`` -> ("dmc", "ball_in_cup", "catch"), checked against the suite's task list."""
    prefix, _, rest = task.partition("_")
    for domain, name in suite.ALL_TASKS:
        if rest == f"{domain}_{name}" and prefix in ("dmc", "dmcproprio"):
            return prefix, domain, name
    valid = ", ".join(f"{domain}_{name}" for domain, name in suite.ALL_TASKS)
    raise UnknownTaskError(f"unknown DMC task {task!r}; use dmc_<domain>_<task> or dmcproprio_<domain>_<task> with one "
                     f"of: {valid}")


class DeepMindControl(gym.Env):
    """One step = ``action_repeat`` DMC control steps (rendered once, at the end), rewards summed."""

    metadata = {"render_modes": []}

    def __init__(self, domain: str, task: str, seed: int, obs_type: str, size: int, camera: int,
                 max_steps: int, action_repeat: int) -> None:
        if action_repeat < 1:
            raise ValueError(f"dmc: action_repeat must be >= 1, got {action_repeat}")
        self.action_repeat = int(action_repeat)
        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        self._obs_type, self._size, self._camera, self._max_steps = obs_type, size, camera, max_steps
        # Actions in [-1, 1], mapped linearly onto the native bounds (the official Dreamer code's
        # NormalizeActions wrapper); the identity for every task whose native bounds are [-1, 1].
        spec = self._env.action_spec()
        self._low, self._high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, dtype=np.float32)
        spaces = {}
        if obs_type in ("image", "both"):
            spaces["image"] = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)
        if obs_type in ("vector", "both"):
            dim = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
            spaces["vector"] = gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)  # dm_control keeps the task RNG here
        self._steps = 0
        return self._observe(self._env.reset()), {}

    def step(self, action):
        action = self._low + (np.clip(np.asarray(action, np.float64), -1, 1) + 1) / 2 * (self._high - self._low)
        reward, terminated, truncated = 0.0, False, False
        for count in range(1, self.action_repeat + 1):
            time_step = self._env.step(action)
            self._steps += 1
            reward += time_step.reward or 0.0
            terminated = time_step.last() and time_step.discount == 0
            truncated = not terminated and (time_step.last() or self._steps >= self._max_steps)
            if terminated or truncated:
                break
        return self._observe(time_step), float(reward), terminated, truncated, {"env_steps": count}

    def _observe(self, time_step) -> dict[str, np.ndarray]:
        obs = {}
        if "image" in self.observation_space.spaces:
            obs["image"] = self._env.physics.render(self._size, self._size, camera_id=self._camera)
        if "vector" in self.observation_space.spaces:
            parts = [np.asarray(v, np.float32).reshape(-1) for v in time_step.observation.values()]
            obs["vector"] = np.concatenate(parts)
        return obs

    def close(self) -> None:
        self._env.close()


def make(task: str, seed: int, **options) -> gym.Env:
    prefix, domain, name = parse_task(task)
    opts = check_options("dmc", options, DEFAULTS)
    obs_type = opts["obs_type"] or ("vector" if prefix == "dmcproprio" else "image")
    if obs_type not in OBS_TYPES:
        raise ValueError(f"dmc: obs_type must be one of {OBS_TYPES}, got {obs_type!r}")
    repeat = opts["action_repeat"]
    if repeat == "planet":
        if domain not in PLANET_ACTION_REPEAT:
            raise ValueError(f"dmc: PlaNet has no action repeat for domain {domain!r}; "
                             f"known: {sorted(PLANET_ACTION_REPEAT)}")
        repeat = PLANET_ACTION_REPEAT[domain]
    camera = CAMERAS.get(domain, 0) if opts["camera"] is None else opts["camera"]
    env = DeepMindControl(domain, name, seed, obs_type, opts["size"], camera, opts["max_steps"], repeat)
    return SeedFirstReset(env, seed)
