"""Shared by every suite: action repeat with the ``env_steps`` count, seeding, option checks, resizing, flags."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
from PIL import Image


def episode_flags(first: bool, terminated: bool, truncated: bool) -> dict[str, bool]:
    """The Dreamer replay flags. A time limit ends the episode (``is_last``) but is not terminal."""
    return {"is_first": bool(first), "is_last": bool(terminated or truncated), "is_terminal": bool(terminated)}


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times, summing rewards; ``info['env_steps']`` counts the inner steps."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        super().__init__(env)
        if repeat < 1:
            raise ValueError(f"action repeat must be >= 1, got {repeat}")
        self.action_repeat = int(repeat)

    def step(self, action):
        total = 0.0
        for count in range(1, self.action_repeat + 1):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        info = dict(info)
        info["env_steps"] = count
        return obs, total, terminated, truncated, info


class SeedFirstReset(gym.Wrapper):
    """The first ``reset()`` without a seed uses the seed given to ``make_env``; later resets continue its RNG."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self.action_repeat = getattr(env.unwrapped, "action_repeat", 1)  # suites that repeat inside (Atari, DMC)
        self._seed: int | None = int(seed)
        self.action_space.seed(int(seed))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed, self._seed = self._seed, None
        else:
            self._seed = None
        return self.env.reset(seed=seed, options=options)


def finish(env: gym.Env, seed: int, repeat: int) -> ActionRepeat:
    """The outer wrappers of a suite whose env advances one simulator step per ``step()``: seeding, repeat.

    Suites that must see every frame of a repeat (Atari's max-pool) or render only the last one (DMC) repeat
    inside their env, set ``action_repeat`` on it and are wrapped in ``SeedFirstReset`` alone.
    """
    return ActionRepeat(SeedFirstReset(env, seed), repeat)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a uint8 HWC image to ``size x size`` with PIL (what scipy's ``imresize`` used)."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    squeeze = image.ndim == 3 and image.shape[2] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.array(pil.resize((size, size), Image.BILINEAR))  # a writable copy
    return out[..., None] if squeeze or out.ndim == 2 else out


class UnknownTaskError(ValueError):
    pass


class UnknownOptionError(ValueError):
    pass


def check_options(suite: str, options: dict, allowed: dict) -> dict:
    """Merge ``options`` over the defaults ``allowed``; an unknown option is a one-line error naming it."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UnknownOptionError(f"{suite}: unknown option(s) {unknown}; valid options: {sorted(allowed)}")
    return {**allowed, **options}
