"""Atari 2600 on the ALE, tasks ``atari_<game>`` (snake_case ROM id: ``atari_pong``, ``atari_ms_pacman``).

The DreamerV2/V3 protocol, implemented on ``ale_py.ALEInterface`` with frameskip 1 underneath (as the
official ``danijar/dreamerv3`` ``embodied/envs/atari.py`` does): each agent step repeats the action
``repeat`` = 4 frames, sums the rewards and max-pools the last two frames; the frame is resized to
``size`` x ``size`` with PIL bilinear (V3's ``resize: pillow``) and, if ``gray``, converted with the weights
(0.299, 0.587, 0.114). At reset, a uniform number in [``noop_min``, ``noops``] of NOOP frames is played (they
count neither towards ``env_steps`` nor the time limit, as in V3). A game over before the last two frames of a
repeat leaves the screens grabbed before it; the frame of a game over is grabbed (if among the last two) only with
``game_over_frame`` (V3 grabs the last two frames of a repeat before it checks for a game over; V2's gym
``AtariPreprocessing`` checks first). ``sticky`` sets ALE's
``repeat_action_probability`` to 0.25 (Machado et al. 2018). ``full_actions`` selects the 18-action legal set or
the game's minimal set. The episode ends with ``terminated`` at game over; after ``max_steps`` = 108,000 frames
(30 minutes) it ends with ``truncated`` (DreamerV2: a time limit is not terminal) or, with
``time_limit_terminal`` (the DreamerV3 protocols), with ``terminated``: the official V3 Atari env sets
``is_terminal = is_last``, so the value bootstrap is cut at the time limit too. ``info`` has ``env_steps`` (frames
this step), ``lives`` and ``life_loss`` (a life was lost this step; never ends the episode: "lives: unused" in
every protocol).

Protocols (``protocol=``), each option overridable:
- ``dreamerv2``: gray 64x64, sticky, full actions, noops 30 (``danijar/dreamerv2`` ``common/envs.py`` Atari
  defaults; configs ``time_limit: 27000`` agent steps = 108,000 frames). V2 used gym's ``AtariPreprocessing``
  (ALE grayscale, cv2 INTER_AREA resize): its 1-30 noops (``noop_min`` 1) and its game over ending the repeat
  before the frame is grabbed (``game_over_frame`` false) are kept; its image path is replaced by V3's
  RGB-resize-then-weights, a small pixel difference.
- ``atari200m``: DreamerV3 Atari-57, official ``configs.yaml`` (danijar/dreamerv3@e3f0224) ``env.atari``: gray
  96x96, sticky, full actions ("all"), noops 30, time limit terminal.
- ``atari100k``: DreamerV3 ``env.atari100k``: RGB 64x64, no sticky actions, minimal ("needed") actions,
  noops 30, time limit terminal.
"""
from __future__ import annotations

import ale_py
import gymnasium as gym
import numpy as np
from ale_py import roms

from tools.envs.wrappers import SeedFirstReset, UnknownTaskError, check_options, resize_image

PROTOCOLS: dict[str, dict] = {
    "dreamerv2": {"sticky": True, "noops": 30, "noop_min": 1, "gray": True, "full_actions": True, "size": 64,
                  "time_limit_terminal": False, "game_over_frame": False},
    "atari200m": {"sticky": True, "noops": 30, "noop_min": 0, "gray": True, "full_actions": True, "size": 96,
                  "time_limit_terminal": True, "game_over_frame": True},
    "atari100k": {"sticky": False, "noops": 30, "noop_min": 0, "gray": False, "full_actions": False, "size": 64,
                  "time_limit_terminal": True, "game_over_frame": True},
}
DEFAULTS = {
    "protocol": "dreamerv2",
    "sticky": None, "noops": None, "noop_min": None, "gray": None, "full_actions": None, "size": None,
    "time_limit_terminal": None, "game_over_frame": None,  # None: the protocol's
    "repeat": 4,  # all protocols: 4 frames per agent step
    "max_steps": 108_000,  # frames (30 minutes at 60 Hz); DreamerV2 time_limit 27000 agent steps x 4
}
GRAY_WEIGHTS = np.array([0.299, 0.587, 1 - (0.299 + 0.587)])  # official dreamerv3 atari.py WEIGHTS
NOOP = 0
ALIASES = {"james_bond": "jamesbond"}  # score files say james_bond; the ROM id is jamesbond


def rom_id(task: str) -> str:
    game = ALIASES.get(task.removeprefix("atari_"), task.removeprefix("atari_"))
    if game not in roms.get_all_rom_ids():
        raise UnknownTaskError(f"unknown Atari game in {task!r}; valid: atari_<game> with <game> one of "
                               f"{', '.join(sorted(roms.get_all_rom_ids()))}")
    return game


class Atari(gym.Env):
    """One agent step = ``repeat`` ALE frames, max-pooled over the last two."""

    metadata = {"render_modes": []}

    def __init__(self, game: str, seed: int, sticky: bool, noops: int, noop_min: int, gray: bool,
                 full_actions: bool, repeat: int, size: int, max_steps: int, time_limit_terminal: bool,
                 game_over_frame: bool) -> None:
        self._game, self._noops, self._noop_min, self._gray, self._size = game, noops, noop_min, gray, size
        self._game_over_frame = game_over_frame
        self._max_steps, self._time_limit_terminal = max_steps, time_limit_terminal
        self.action_repeat = repeat
        self._ale = ale_py.ALEInterface()
        self._ale.setLoggerMode(ale_py.LoggerMode.Error)
        self._ale.setFloat("repeat_action_probability", 0.25 if sticky else 0.0)  # Machado et al. 2018
        self._load(seed)
        self._actions = self._ale.getLegalActionSet() if full_actions else self._ale.getMinimalActionSet()
        self.action_space = gym.spaces.Discrete(len(self._actions))
        self.observation_space = gym.spaces.Dict(
            {"image": gym.spaces.Box(0, 255, (size, size, 1 if gray else 3), np.uint8)})
        height, width = self._ale.getScreenDims()
        self._frames = [np.zeros((height, width, 3), np.uint8) for _ in range(2)]  # last two screens
        self._steps = 0
        self._lives = 0

    def _load(self, seed: int) -> None:
        """ALE reads its seed when a ROM is loaded, so (re)seeding reloads the ROM."""
        self._rng = np.random.default_rng(seed)
        self._ale.setInt("random_seed", int(self._rng.integers(0, 2**31)))
        self._ale.loadROM(roms.get_rom_path(self._game))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._load(seed)
        self._ale.reset_game()
        for _ in range(int(self._rng.integers(min(self._noop_min, self._noops), self._noops + 1))):
            self._ale.act(NOOP)
            if self._ale.game_over():
                self._ale.reset_game()
        self._grab()
        self._frames[1][:] = self._frames[0]
        self._steps = 0
        self._lives = self._ale.lives()
        return self._observe(), {"lives": self._lives, "life_loss": False}

    def step(self, action):
        action_id = self._actions[int(action)]
        reward, frames, terminated, truncated = 0.0, 0, False, False
        for frames in range(1, self.action_repeat + 1):
            reward += self._ale.act(action_id)
            self._steps += 1
            terminated = game_over = self._ale.game_over()
            truncated = not terminated and self._steps >= self._max_steps
            if truncated and self._time_limit_terminal:
                terminated, truncated = True, False
            if frames > self.action_repeat - 2 and (self._game_over_frame or not game_over):
                self._grab()  # the two frames max-pooled
            if terminated or truncated:
                break
        lives = self._ale.lives()
        info = {"env_steps": frames, "lives": lives, "life_loss": lives < self._lives}
        self._lives = lives
        return self._observe(), reward, terminated, truncated, info

    def _grab(self) -> None:
        self._frames.reverse()
        self._ale.getScreenRGB(self._frames[0])

    def _observe(self) -> dict[str, np.ndarray]:
        image = resize_image(np.maximum(self._frames[0], self._frames[1]), self._size)
        if self._gray:
            image = (image * GRAY_WEIGHTS).sum(-1).astype(np.uint8)[..., None]
        return {"image": image}


def make(task: str, seed: int, **options) -> gym.Env:
    game = rom_id(task)
    opts = check_options("atari", options, DEFAULTS)
    if opts["protocol"] not in PROTOCOLS:
        raise ValueError(f"atari: unknown protocol {opts['protocol']!r}; valid: {sorted(PROTOCOLS)}")
    protocol = {k: (PROTOCOLS[opts["protocol"]][k] if opts[k] is None else opts[k]) for k in PROTOCOLS["dreamerv2"]}
    env = Atari(game, seed, repeat=opts["repeat"], max_steps=opts["max_steps"], **protocol)
    return SeedFirstReset(env, seed)
