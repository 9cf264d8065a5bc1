"""CarRacing as in Ha & Schmidhuber (2018), task ``carracing``, on gymnasium's current ``CarRacing-v3``.

Frames as the authors processed them (``hardmaru/WorldModelsExperiments`` ``carracing/env.py``
``_process_frame``): keep rows ``[0:84]`` of the 96x96 state (dropping the 12-row dashboard at the bottom),
resize to 64x64 (PIL bilinear here). Their ``((1 - x) * 255).astype(uint8)`` on scipy's already-uint8 (and
contrast-stretched) output wraps around (on x86) to ``x - 1`` mod 256: the values shifted by one, except the
darkest pixels (0 after the stretch), which became 255. We keep the plain frame (no stretch, shift or wrap;
ha2018 README, Deviations).
Actions: continuous ``Box([-1, 0, 0], [1, 1, 1])`` = (steer, gas, brake), native bounds, no frame skip;
episodes up to 1000 steps (official ``model.py``: ``max_episode_length = 1000``), the limit is ``truncated``.

Differences from the paper's ``CarRacing-v0`` (gym 2017, pyglet/OpenGL renderer), from gymnasium's version
history: v1 changed the track-completion logic (a lap now ends once ``lap_complete_percent`` = 95% of the
tiles are visited and the car crosses the start line; v0 needed every tile) and added the optional domain
randomisation (off here); v2 made finishing a lap a termination (not a truncation); v3 is the current id.
Rendering moved from pyglet/OpenGL to pygame, so pixel colours and anti-aliasing differ slightly. Rewards
(-0.1 per frame, +1000/N per new tile, -100 and termination off the playfield) are unchanged.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from tools.envs.wrappers import UnknownTaskError, check_options, finish, resize_image

TASKS = ("carracing",)
DEFAULTS = {
    "action_repeat": 1,  # official env.py: one simulator step per agent step
    "size": 64,  # paper: 64x64x3 frames
    "max_steps": 1000,  # official model.py max_episode_length = 1000; CarRacing-v3 registration: 1000
    "crop_rows": 84,  # official env.py _process_frame: frame[0:84]
    "lap_complete_percent": 0.95,  # gymnasium default (v0 had no such parameter: all tiles)
}


class ImageDict(gym.ObservationWrapper):
    """(96, 96, 3) state -> {"image": (size, size, 3) uint8}, cropped to the top ``crop_rows`` rows."""

    def __init__(self, env: gym.Env, size: int, crop_rows: int) -> None:
        super().__init__(env)
        self._size, self._crop_rows = size, crop_rows
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8)})

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": resize_image(np.ascontiguousarray(observation[: self._crop_rows]), self._size)}


def make(task: str, seed: int, **options) -> gym.Env:
    if task not in TASKS:
        raise UnknownTaskError(f"unknown carracing task {task!r}; valid: {list(TASKS)}")
    opts = check_options("carracing", options, DEFAULTS)
    env = gym.make("CarRacing-v3", continuous=True, domain_randomize=False,
                   lap_complete_percent=opts["lap_complete_percent"], max_episode_steps=opts["max_steps"])
    return finish(ImageDict(env, opts["size"], opts["crop_rows"]), seed, opts["action_repeat"])
