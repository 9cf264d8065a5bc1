"""tools.envs: every suite is created, seeded, stepped; shapes, action repeat, time limits, errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tools.envs import UnknownTaskError, episode_flags, make_env
from tools.envs.wrappers import UnknownOptionError


def rollout(env, steps: int, seed: int = 0):
    """Reset with ``seed`` and take ``steps`` seeded random actions; returns (obs list, rewards, infos, ends)."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    frames, rewards, infos, ends = [obs], [], [], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        frames.append(obs)
        rewards.append(reward)
        infos.append(info)
        ends.append((terminated, truncated))
        if terminated or truncated:
            break
    return frames, rewards, infos, ends


def rollout_fixed(env, action, steps: int) -> list[float]:
    """Step a constant ``action`` from the current state; returns the rewards."""
    rewards = []
    for _ in range(steps):
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            break
    return rewards


def check_image(obs: dict, size: int = 64, channels: int = 3) -> None:
    assert obs["image"].dtype == np.uint8
    assert obs["image"].shape == (size, size, channels)


# ---------------------------------------------------------------------------------------------- registry


def test_unknown_task_lists_valid_ones():
    with pytest.raises(UnknownTaskError, match="dmc_<domain>_<task>"):
        make_env("pong", 0)
    with pytest.raises(UnknownTaskError, match="Valid tasks"):
        make_env("mujoco_walker", 0)


def test_episode_flags():
    assert episode_flags(True, False, False) == {"is_first": True, "is_last": False, "is_terminal": False}
    assert episode_flags(False, True, False) == {"is_first": False, "is_last": True, "is_terminal": True}
    assert episode_flags(False, False, True) == {"is_first": False, "is_last": True, "is_terminal": False}


# ---------------------------------------------------------------------------------------------- doom


def test_doom_take_cover():
    env = make_env("doom_take_cover", 0)
    assert env.action_space.n == 3 and env.action_repeat == 1
    frames, rewards, infos, ends = rollout(env, 30)
    check_image(frames[0])
    assert all(r == 1.0 for r in rewards)  # +1 per step survived
    assert all(info["env_steps"] == 1 for info in infos)
    again, *_ = rollout(make_env("doom_take_cover", 0), 5)
    np.testing.assert_array_equal(frames[5]["image"], again[5]["image"])


def test_doom_action_repeat_and_time_limit():
    env = make_env("doom_take_cover", 1, action_repeat=4, max_steps=10)
    _, rewards, infos, ends = rollout(env, 10, seed=1)
    assert rewards[0] == 4.0 and infos[0]["env_steps"] == 4
    assert len(rewards) == 3 and ends[-1] == (False, True)  # 10 tics: 4 + 4 + 2, truncated not terminal
    assert infos[-1]["env_steps"] == 2


def test_doom_dies_and_maps_scalar_actions():
    from tools.envs.doom import action_from_scalar

    assert [action_from_scalar(a) for a in (-1.0, -0.3, 0.0, 0.3, 1.0)] == [1, 0, 0, 0, 2]
    env = make_env("doom_take_cover", 2)
    _, rewards, _, ends = rollout(env, 2100, seed=2)
    assert ends[-1] == (True, False) and sum(rewards) == len(rewards) < 2100  # random play dies: terminal


KILLED_WITH_AN_ENGINE = """
import os, pathlib, signal
from tools.envs import make_env
env = make_env("doom_take_cover", 0)
children = " ".join(p.read_text() for p in pathlib.Path("/proc/self/task").glob("*/children")).split()
print(*[pid for pid in children if b"vizdoom" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_doom_engine_dies_with_a_killed_process(tmp_path):
    """vizdoom's engine is a separate process; the env's watchdog ends it when the Python process is killed."""
    with open(tmp_path / "out", "w") as out:  # a file: an engine left behind would hold a pipe open
        subprocess.run([sys.executable, "-c", KILLED_WITH_AN_ENGINE], stdout=out, timeout=60,
                       cwd=Path(__file__).resolve().parents[1])
    engines = [int(pid) for pid in (tmp_path / "out").read_text().split()]
    assert engines, "no vizdoom engine found"
    deadline = time.time() + 10
    while any(map(_running, engines)) and time.time() < deadline:
        time.sleep(0.1)
    left = [pid for pid in engines if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "the vizdoom engine outlived its killed process"


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_doom_unknown_option():
    with pytest.raises(UnknownOptionError, match="frame_skip"):
        make_env("doom_take_cover", 0, frame_skip=4)


# ---------------------------------------------------------------------------------------------- carracing


def test_carracing_shapes_seed_and_time_limit():
    env = make_env("carracing", 3, max_steps=60)
    assert env.action_space.shape == (3,) and env.action_repeat == 1
    assert list(env.action_space.low) == [-1, 0, 0] and list(env.action_space.high) == [1, 1, 1]
    frames, rewards, infos, ends = rollout(env, 100, seed=3)
    check_image(frames[-1])
    assert len(rewards) == 60 and ends[-1] == (False, True) and ends[-2] == (False, False)
    again, *_ = rollout(make_env("carracing", 3), 59, seed=3)
    np.testing.assert_array_equal(frames[59]["image"], again[59]["image"])  # same seed: same track and frames
    other, *_ = rollout(make_env("carracing", 4), 59, seed=4)
    assert not np.array_equal(frames[59]["image"], other[59]["image"])


def test_carracing_action_repeat_sums_rewards():
    gas = np.array([0.0, 1.0, 0.0], np.float32)
    single = make_env("carracing", 5)
    single.reset(seed=5)
    rewards = [single.step(gas)[1] for _ in range(6)]
    repeated = make_env("carracing", 5, action_repeat=3)
    repeated.reset(seed=5)
    outs = [repeated.step(gas) for _ in range(2)]
    assert [o[4]["env_steps"] for o in outs] == [3, 3]
    np.testing.assert_allclose([o[1] for o in outs], [sum(rewards[:3]), sum(rewards[3:])], rtol=1e-6)


@pytest.mark.parametrize("task", ["carracing", "doom_take_cover", "dmcproprio_walker_walk", "atari_breakout"])
def test_first_reset_uses_make_seed(task):
    key = "vector" if task.startswith("dmcproprio") else "image"
    first, _ = make_env(task, 7).reset()
    seeded, _ = make_env(task, 0).reset(seed=7)
    np.testing.assert_array_equal(first[key], seeded[key])
    if task in ("carracing", "dmcproprio_walker_walk"):  # Doom's and Breakout's first frames are fixed
        other, _ = make_env(task, 8).reset()
        assert not np.array_equal(first[key], other[key])


def test_doom_seed_changes_the_fireballs():
    lengths = []
    for seed in (7, 7, 8):
        env = make_env("doom_take_cover", seed)
        env.reset()
        lengths.append(len(rollout_fixed(env, action=0, steps=2100)))
    assert lengths[0] == lengths[1] != lengths[2]



# ---------------------------------------------------------------------------------------------- dmc


def test_dmcproprio_episode_is_1000_simulator_steps():
    env = make_env("dmcproprio_cartpole_balance", 0)
    assert env.action_repeat == 2 and env.action_space.shape == (1,)
    frames, rewards, infos, ends = rollout(env, 1000)
    assert set(frames[0]) == {"vector"}
    assert frames[0]["vector"].dtype == np.float32 and frames[0]["vector"].shape == (5,)
    assert len(rewards) == 500 and sum(i["env_steps"] for i in infos) == 1000
    assert ends[-1] == (False, True) and not any(any(e) for e in ends[:-1])  # time limit: truncated, not terminal
    again, *_ = rollout(make_env("dmcproprio_cartpole_balance", 0), 3)
    np.testing.assert_array_equal(frames[3]["vector"], again[3]["vector"])
    other, _ = make_env("dmcproprio_cartpole_balance", 1).reset()
    assert not np.array_equal(frames[0]["vector"], other["vector"])
    _, _, infos, ends = rollout(make_env("dmcproprio_cartpole_balance", 0, action_repeat=3, max_steps=10), 10)
    assert [i["env_steps"] for i in infos] == [3, 3, 3, 1] and ends[-1] == (False, True)


def test_dmc_pixels_seed_and_reward_sum():
    env = make_env("dmc_walker_walk", 0, max_steps=8)
    frames, rewards, infos, ends = rollout(env, 10)
    check_image(frames[0])
    assert set(frames[0]) == {"image"} and len(rewards) == 4 and ends[-1] == (False, True)
    again, *_ = rollout(make_env("dmc_walker_walk", 0), 2)
    np.testing.assert_array_equal(frames[2]["image"], again[2]["image"])
    single = make_env("dmcproprio_walker_walk", 0, action_repeat=1)
    double = make_env("dmcproprio_walker_walk", 0, action_repeat=2)
    single.reset(), double.reset()
    action = np.full(6, 0.5, np.float32)
    expected = single.step(action)[1] + single.step(action)[1]
    assert double.step(action)[1] == pytest.approx(expected)


def test_dmc_parsing_options_and_cameras():
    from tools.envs.dmc import PLANET_ACTION_REPEAT, parse_task

    assert parse_task("dmc_ball_in_cup_catch") == ("dmc", "ball_in_cup", "catch")
    assert parse_task("dmcproprio_point_mass_easy") == ("dmcproprio", "point_mass", "easy")
    env = make_env("dmc_ball_in_cup_catch", 0, action_repeat="planet", obs_type="both", size=32)
    assert env.action_repeat == PLANET_ACTION_REPEAT["ball_in_cup"] == 4
    obs, _ = env.reset()
    check_image(obs, size=32)
    assert obs["vector"].shape == (8,)
    assert make_env("dmc_cartpole_swingup", 0, action_repeat="planet").action_repeat == 8
    quad = make_env("dmc_quadruped_walk", 0, size=16)
    assert quad.unwrapped._camera == 2 and make_env("dmc_walker_walk", 0).unwrapped._camera == 0
    with pytest.raises(UnknownTaskError, match="unknown DMC task 'dmc_walker_fly'"):
        make_env("dmc_walker_fly", 0)
    with pytest.raises(ValueError, match="obs_type"):
        make_env("dmc_walker_walk", 0, obs_type="pixels")
    with pytest.raises(UnknownOptionError, match="frame_skip"):
        make_env("dmc_walker_walk", 0, frame_skip=2)


# ---------------------------------------------------------------------------------------------- atari


def test_atari_protocols():
    from tools.envs.atari import PROTOCOLS

    assert set(PROTOCOLS) >= {"dreamerv2", "atari100k", "atari200m"}
    v2 = make_env("atari_pong", 0)
    check_image(v2.reset()[0], channels=1)
    assert v2.action_space.n == 18 and v2.action_repeat == 4
    k100 = make_env("atari_ms_pacman", 0, protocol="atari100k")
    check_image(k100.reset()[0], channels=3)
    assert k100.action_space.n == 9  # minimal action set of Ms. Pac-Man
    assert make_env("atari_pong", 0, protocol="atari100k", full_actions=True).action_space.n == 18
    with pytest.raises(ValueError, match="unknown protocol 'atari10k'"):
        make_env("atari_pong", 0, protocol="atari10k")
    with pytest.raises(UnknownTaskError, match="ms_pacman"):
        make_env("atari_mspacman", 0)
    with pytest.raises(UnknownOptionError, match="grayscale"):
        make_env("atari_pong", 0, grayscale=True)


def test_atari_seed_time_limit_and_lives():
    frames, _, infos, ends = rollout(make_env("atari_breakout", 0, max_steps=4000), 2000)
    again, *_ = rollout(make_env("atari_breakout", 0), 20)
    for step in (0, 20):
        np.testing.assert_array_equal(frames[step]["image"], again[step]["image"])
    assert sum(i["env_steps"] for i in infos) <= 4000 and all(i["env_steps"] == 4 for i in infos[:-1])
    losses = [k for k, info in enumerate(infos) if info["life_loss"]]
    assert losses and infos[losses[0]]["lives"] == 4  # breakout starts with 5 lives
    assert not any(ends[k][0] for k in losses[:-1])  # a life loss does not end the episode
    short = rollout(make_env("atari_pong", 0, max_steps=40), 100)
    assert len(short[1]) == 10 and short[3][-1] == (False, True)
    v3 = rollout(make_env("atari_pong", 0, protocol="atari100k", max_steps=40), 100)
    assert len(v3[1]) == 10 and v3[3][-1] == (True, False)  # official V3: is_terminal = is_last at the limit


def test_atari200m_is_the_official_dreamerv3_atari57_setting():
    env = make_env("atari_pong", 0, protocol="atari200m")
    check_image(env.reset()[0], size=96, channels=1)
    assert env.action_space.n == 18
    assert env.unwrapped._noops == 30 and env.unwrapped._ale.getFloat("repeat_action_probability") == 0.25


def test_atari_max_pools_the_last_two_frames():
    from tools.envs.wrappers import resize_image

    options = dict(sticky=False, noops=0, gray=False)
    single = make_env("atari_breakout", 0, repeat=1, **options)
    single.reset()
    screens = []
    for action in [1, 1, 1, 1, 3, 3, 3, 3]:  # FIRE then RIGHT, one frame each
        single.step(action)
        screens.append(single.unwrapped._ale.getScreenRGB())
    pooled = make_env("atari_breakout", 0, **options)
    pooled.reset()
    obs = [pooled.step(a)[0]["image"] for a in (1, 3)]
    np.testing.assert_array_equal(obs[1], resize_image(np.maximum(screens[6], screens[7]), 64))


class ScriptedALE:
    """Stands in for the ALE after a reset: screen values count the frames played, the game ends at ``end_at``."""

    def __init__(self, end_at: int) -> None:
        self.frame, self.end_at = 0, end_at

    def act(self, action: int) -> float:
        self.frame += 1
        return 0.0

    def game_over(self) -> bool:
        return self.frame >= self.end_at

    def getScreenRGB(self, out: np.ndarray) -> None:
        out[:] = self.frame

    def lives(self) -> int:
        return 5


@pytest.mark.parametrize("protocol,pooled", [
    ("dreamerv2", {8: 7, 6: 4, 9: 8}),  # gym AtariPreprocessing: a game over ends the repeat before its grab
    ("atari100k", {8: 8, 6: 4, 9: 8}),  # V3: the last two frames grabbed, then the game over checked
])
def test_atari_game_over_inside_a_repeat_keeps_the_officials_frames(protocol, pooled):
    for end_at, value in pooled.items():  # the game ends at frame 8 (last of step 2), 6 (second) or never
        env = make_env("atari_pong", 0, protocol=protocol, gray=False)
        env.reset()
        env.unwrapped._ale = ScriptedALE(end_at)
        env.step(0)  # frames 1-4: 3 and 4 grabbed
        obs, _, terminated, _, _ = env.step(0)  # frames 5-8
        image = obs["image"]
        assert terminated == (end_at <= 8) and (image == value).all(), (protocol, end_at, np.unique(image))


@pytest.mark.parametrize("protocol,low", [("dreamerv2", 1), ("atari100k", 0), ("atari200m", 0)])
def test_atari_noops_at_reset_follow_the_official_range(protocol, low):
    env = make_env("atari_pong", 0, protocol=protocol)
    env.reset()
    counts = []
    for _ in range(200):  # gym AtariPreprocessing (V2): 1-30; V3 embodied: 0-30
        ale, played = env.unwrapped._ale, []
        env.unwrapped._ale = type("Counting", (), {"__getattr__": lambda self, name: getattr(ale, name),
                                                   "act": lambda self, a: played.append(a) or ale.act(a)})()
        env.reset()
        env.unwrapped._ale = ale
        counts.append(len(played))
    assert min(counts) == low and max(counts) == 30


# ---------------------------------------------------------------------------------------------- crafter


@pytest.mark.slow  # four crafter world generations, ~1 s each
def test_crafter_reward_and_noreward():
    env = make_env("crafter_reward", 0, max_steps=50)
    assert env.action_space.n == 17 and env.action_repeat == 1
    frames, rewards, infos, ends = rollout(env, 100)
    check_image(frames[0])
    assert all(len(i["achievements"]) == 22 and i["env_steps"] == 1 for i in infos)
    assert len(rewards) == 50 and ends[-1] == (False, True)
    again, *_ = rollout(make_env("crafter_reward", 0), 10)
    np.testing.assert_array_equal(frames[10]["image"], again[10]["image"])
    other, _ = make_env("crafter_reward", 1).reset()
    assert not np.array_equal(frames[0]["image"], other["image"])
    _, silent, _, _ = rollout(make_env("crafter_noreward", 0), 100)
    assert set(silent) == {0.0} and len(silent) == 100


def test_crafter_death_is_terminal():
    env = make_env("crafter_reward", 0)
    _, rewards, infos, ends = rollout(env, 10_000)
    assert ends[-1] == (True, False) and len(rewards) < 10_000  # random play dies long before the limit
    unlocked = sum(count > 0 for count in infos[-1]["achievements"].values())
    assert sum(rewards) == pytest.approx(unlocked - 0.9)  # +1 per first unlock, +-0.1 per health point (9 -> 0)


# ---------------------------------------------------------------------------------------------- minecraft


def test_minecraft_without_minerl_names_what_is_missing():
    from tools.envs.minecraft import MinecraftUnavailableError

    try:
        import minerl  # noqa: F401
        pytest.skip("minerl is installed here")
    except ImportError:
        pass
    with pytest.raises(MinecraftUnavailableError, match=r"minerl==0\.4\.4.*Java 8.*gym==0\.19\.0"):
        make_env("minecraft_diamond", 0)
    with pytest.raises(UnknownOptionError, match="break_sped"):
        make_env("minecraft_diamond", 0, break_sped=100)


def test_minecraft_milestone_reward():
    from tools.envs.minecraft import MILESTONES, MilestoneReward, merge_logs

    assert len(MILESTONES) == 12 and MILESTONES[0] == "log" and MILESTONES[-1] == "diamond"
    reward = MilestoneReward(health_scale=0.01)
    reward.reset({"dirt": 3, "stick": 1}, health=1.0)  # items held at the start earn nothing
    assert reward({"dirt": 4, "stick": 1}, 1.0) == 0.0
    assert reward(merge_logs({"log2": 1}), 1.0) == 1.0  # acacia/dark-oak logs count as log
    assert reward({"log": 2}, 1.0) == 0.0  # only the first time
    assert reward({"log": 0, "planks": 4}, 1.0) == 1.0
    assert reward({"log": 1, "planks": 4}, 1.0) == 0.0  # losing and regaining an item: no second reward
    assert reward({"iron_pickaxe": 1, "diamond": 1}, 0.5) == pytest.approx(2.0 - 0.005)  # two at once, hurt
    assert reward.reached == ["stick", "log", "planks", "iron_pickaxe", "diamond"]
    reward.reset({}, 1.0)
    assert reward({"log": 1}, 1.0) == 1.0  # a new episode rewards again


def test_minecraft_action_mapping():
    from tools.envs.minecraft import ACTIONS, NOOP_ACTION, ActionMapper

    assert len(ACTIONS) == 25 and list(ACTIONS)[:2] == ["noop", "attack"]
    mapper = ActionMapper(sticky_attack=0, sticky_jump=10, pitch_limit=(-60, 60))
    names = mapper.names
    assert mapper(names.index("noop")) == NOOP_ACTION
    craft = mapper(names.index("craft_wooden_pickaxe"))
    assert craft["nearbyCraft"] == "wooden_pickaxe" and craft["attack"] == 0 and craft["camera"] == (0, 0)
    jump = mapper(names.index("jump"))
    assert jump["jump"] == 1 and jump["forward"] == 1
    follow = [mapper(names.index("noop")) for _ in range(10)]
    assert [a["jump"] for a in follow] == [1] * 9 + [0]  # sticky jump: 10 steps in all
    pitches = [mapper(names.index("turn_down"))["camera"][0] for _ in range(5)]
    assert pitches == [15, 15, 15, 15, 0]  # pitch stays within [-60, 60]
    assert [mapper(names.index("turn_up"))["camera"][0] for _ in range(2)] == [-15, -15]
    assert mapper(names.index("attack"))["attack"] == 1 and mapper(names.index("noop"))["attack"] == 0
    sticky = ActionMapper(sticky_attack=30)
    sticky(sticky.names.index("attack"))
    assert sticky(sticky.names.index("jump"))["attack"] == 1  # break speed 1: attack is held for 30 steps


def test_step_rate_counts_simulator_steps():
    from tools.envs import step_rate

    agent, simulator = step_rate("atari_pong", 20, max_steps=10_000)
    assert agent > 0 and simulator == pytest.approx(4 * agent)


def test_dmc_actions_are_normalised_onto_the_native_bounds():
    env = make_env("dmcproprio_quadruped_run", 0)
    assert (env.action_space.low == -1).all() and (env.action_space.high == 1).all()
    inner = env.unwrapped
    assert inner._high[1] == pytest.approx(1.1) and inner._low[2] == pytest.approx(-0.8)
