"""VizDoom TakeCover as in Ha & Schmidhuber (2018), task ``doom_take_cover``.

What the authors ran (``hardmaru/WorldModelsExperiments`` ``doomrnn/doomreal.py`` on top of
``ppaquette_gym_doom`` ``DoomTakeCover-v0``), and what this module does:

| item | authors | here |
| --- | --- | --- |
| scenario | ppaquette's ``take_cover.cfg`` + ``take_cover.wad`` | vizdoom's built-in ``take_cover.cfg`` + ``.wad`` |
| difficulty | ``set_doom_skill(5)`` in the 2016 doom_py | skill 4 (the cfg's own value), see below |
| screen | 640x480 RGB, status bar at rows ~403-480 (inferred from their crop) | 640x480, ``render_hud`` on |
| rendering | cfg: no weapon, crosshair, decals or particles | the same four switched off |
| episode start | cfg ``episode_start_time = 14`` (the agent acts from tic 14) | 14 (vizdoom's cfg says 1) |
| frame skip | none: one ``make_action`` (1 tic) per step | ``action_repeat=1`` (option) |
| frame processing | rows ``[0:400]`` (drops the status bar), resize to 64x64 | same crop, PIL bilinear resize |
| reward | living reward +1 per tic, no death penalty | same (return = steps survived) |
| episode | ends at death; data and scores cap at 2100 steps | death = ``terminated``; 2100 = ``truncated`` |

Difficulty: ppaquette passes skill 5 to the 2016 doom_py engine. With today's vizdoom, a uniform random policy
survives 75 +- 32 steps at skill 5 (20 episodes) but 219 +- 96 at skill 4 (100 episodes), against the paper's
random-policy baseline of 210 +- 108 (``shared/published/ha2018_doom_temperature.csv``), so skill 4 is the
default (option ``skill``).

Their ``_process_frame`` resized a float image with ``scipy.misc.imresize`` (which contrast-stretches it to
0..255) and then applied ``((1 - x) * 255).astype(uint8)`` to the already-uint8 result; the float-to-uint8 cast
wraps around on x86, which makes that ``x - 1`` (mod 256) of the stretched frame: the frame's values shifted by one,
except its darkest pixels (0 after the stretch), which became 255. We keep the plain resized frame, without the
stretch, the shift and the wrap (ha2018 README, Deviations).

Actions, ``Discrete(3)`` (their controller output ``a`` in [-1, 1] was thresholded at +-1/3;
``action_from_scalar`` reproduces that mapping):
    0: no-op (``|a| <= 1/3``),  1: MOVE_LEFT (``a < -1/3``),  2: MOVE_RIGHT (``a > 1/3``).

The observation returned with the terminal step repeats the last rendered frame (vizdoom renders none after
death). Runs headless (no window).

The game runs in a separate vizdoom engine process that outlives a SIGKILLed Python process (it is not told of
its parent's death). Each env starts a watchdog shell holding one end of a pipe from the Python process: when
the pipe closes (the env closed, or its process gone), the watchdog SIGKILLs the engine if it still runs and
removes its shared memory, so a killed run leaves no engine behind.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import vizdoom

from tools.envs.wrappers import UnknownTaskError, check_options, finish, resize_image

TASKS = ("doom_take_cover",)
DEFAULTS = {
    "action_repeat": 1,  # authors: one tic per step (ppaquette make_action default)
    "size": 64,  # paper: 64x64x3 frames
    "max_steps": 2100,  # paper: "maximum of 2100 time steps"; official extract.py MAX_FRAMES = 2100
    "skill": 4,  # vizdoom take_cover.cfg; matches the paper's random-policy survival (module docstring)
    "crop_rows": 400,  # official doomreal.py _process_frame: frame[0:400] of 480 rows
}
EPISODE_START_TIME = 14  # ppaquette_gym_doom/assets/take_cover.cfg (the authors' scenario)
THRESHOLD = 1.0 / 3.0  # official doomreal.py: threshold = 0.3333
BUTTONS = ("MOVE_LEFT", "MOVE_RIGHT")
ACTION_NAMES = ("noop", "left", "right")
# $1 = engine instance id, $2 = engine pid; the id check keeps a reused pid safe
ENGINE_WATCHDOG = ('read -r _; grep -qa -- "$1" "/proc/$2/cmdline" 2>/dev/null && kill -9 "$2"; '
                   'rm -f /dev/shm/ViZDoom*"$1"')


def action_from_scalar(value: float) -> int:
    """The authors' mapping of a continuous controller output in [-1, 1] to the discrete action."""
    if value < -THRESHOLD:
        return 1
    if value > THRESHOLD:
        return 2
    return 0


class DoomTakeCover(gym.Env):
    """One step = one Doom tic; counts its own time limit in tics."""

    metadata = {"render_modes": []}

    def __init__(self, seed: int, size: int, max_steps: int, skill: int, crop_rows: int) -> None:
        self._size, self._max_steps, self._crop_rows = size, max_steps, crop_rows
        self._seed = seed
        self.action_space = gym.spaces.Discrete(len(ACTION_NAMES))
        self.observation_space = gym.spaces.Dict(
            {"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8)})
        self._game = vizdoom.DoomGame()
        self._game.load_config(f"{vizdoom.scenarios_path}/take_cover.cfg")
        self._game.set_doom_scenario_path(f"{vizdoom.scenarios_path}/take_cover.wad")
        self._game.set_screen_resolution(vizdoom.ScreenResolution.RES_640X480)
        self._game.set_screen_format(vizdoom.ScreenFormat.RGB24)
        self._game.set_render_hud(True)  # the authors' crop [0:400] removes exactly Doom's status bar
        for switch in ("weapon", "crosshair", "decals", "particles"):  # off in ppaquette's take_cover.cfg
            getattr(self._game, f"set_render_{switch}")(False)
        self._game.set_episode_start_time(EPISODE_START_TIME)
        self._game.set_doom_skill(skill)
        self._game.set_window_visible(False)
        self._game.set_sound_enabled(False)
        self._game.set_mode(vizdoom.Mode.PLAYER)
        self._game.set_seed(seed % 2**31)
        before = _children()
        self._game.init()
        self._watchdog = _watch_engine(_children() - before)
        buttons = [b.name for b in self._game.get_available_buttons()]
        self._commands = [[0] * len(buttons)]  # no-op
        for name in BUTTONS:
            press = [0] * len(buttons)
            press[buttons.index(name)] = 1
            self._commands.append(press)
        self._steps = 0
        self._last = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._game.set_seed(seed % 2**31)
        self._game.new_episode()
        self._steps = 0
        return self._observe(), {}

    def step(self, action):
        reward = self._game.make_action(self._commands[int(action)])
        self._steps += 1
        terminated = self._game.is_episode_finished()
        truncated = not terminated and self._steps >= self._max_steps
        obs = {"image": self._last} if terminated else self._observe()
        return obs, float(reward), terminated, truncated, {}

    def _observe(self) -> dict[str, np.ndarray]:
        frame = self._game.get_state().screen_buffer  # (480, 640, 3) uint8
        self._last = resize_image(np.ascontiguousarray(frame[: self._crop_rows]), self._size)
        return {"image": self._last}

    def close(self) -> None:
        self._game.close()
        if self._watchdog is not None:
            self._watchdog.stdin.close()
            self._watchdog.wait()
            self._watchdog = None


def _children() -> set[int]:
    """Child processes of this process (Linux; empty elsewhere)."""
    pids = set()
    for path in Path("/proc/self/task").glob("*/children"):
        try:
            pids.update(int(pid) for pid in path.read_text().split())
        except OSError:
            pass
    return pids


def _watch_engine(new: set[int]) -> subprocess.Popen | None:
    """The watchdog of the engine among the ``new`` child processes (module docstring)."""
    for pid in new:
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"+viz_instance_id" in args:
            instance = args[args.index(b"+viz_instance_id") + 1].decode()
            return subprocess.Popen(["sh", "-c", ENGINE_WATCHDOG, "sh", instance, str(pid)], stdin=subprocess.PIPE,
                                    start_new_session=True)
    return None


def make(task: str, seed: int, **options) -> gym.Env:
    if task not in TASKS:
        raise UnknownTaskError(f"unknown doom task {task!r}; valid: {list(TASKS)}")
    opts = check_options("doom", options, DEFAULTS)
    env = DoomTakeCover(seed, opts["size"], opts["max_steps"], opts["skill"], opts["crop_rows"])
    return finish(env, seed, opts["action_repeat"])
