"""tools.loop: the four schedules on a toy agent through the real driver and a real (fast) DMC task, parallel
environment workers, resume, and the records a kill or a bad setting must not corrupt."""
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from tools.checkpoint import CheckpointError
from tools.config import ConfigError
from tools.loop import DivergenceError, Every, PerEpisode, Prefill, Ratio, train_loop
from tools.replay import SequenceReplay
from tools.runs import read_jsonl


class ToyAgent(nn.Module):
    """The smallest agent the driver accepts: a constant policy (0.5) and a counting train step."""

    def __init__(self, spec, width: int = 1, nan_at: int = 0) -> None:
        super().__init__()
        self.act_dim, self.nan_at = spec.act_dim, nan_at
        self.layer = nn.Linear(width, 1)
        self.optimizers = {"opt": torch.optim.Adam(self.parameters(), lr=1e-3)}
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self.batches = []

    def initial_state(self, batch: int):
        return torch.zeros(batch)

    def policy(self, obs, state, mode):
        assert obs["vector"].ndim == 2 and obs["is_first"].shape == (len(state),)
        return torch.full((len(state), self.act_dim), 0.5), state + 1

    def train_step(self, batch):
        self.updates += 1
        self.batches.append({k: v.copy() for k, v in batch.items()})
        loss = self.layer(torch.ones(1, self.layer.in_features)).square().mean()
        self.optimizers["opt"].zero_grad()
        loss.backward()
        self.optimizers["opt"].step()
        value = float("nan") if self.nan_at and int(self.updates) >= self.nan_at else loss.item()
        return {"loss/toy": value}


def toy_config(schedule: dict, steps: int = 400, **run) -> OmegaConf:
    return OmegaConf.create({
        "task": "dmcproprio_cartpole_balance", "seed": 0, "device": "cpu", "threads": 1, "batch_size": 2,
        "batch_length": 8, "env": {"dmcproprio": {"action_repeat": 2, "max_steps": 100}},
        "replay": {"size": 10_000, "online": False, "within_episode": True},
        "run": {"steps": steps, "envs": 1, "prefill": 0, "prefill_episodes": 0, "schedule": schedule,
                "log_every": 50, "save_every": 100, "eval_every": 0, "eval_eps": 1, "video_every": 0, **run}})


def train_toy(config, logdir, **agent_kwargs):
    agents = []

    def make_agent(spec, device):
        agents.append(ToyAgent(spec, **agent_kwargs))
        return agents[0]

    run = train_loop("toy", config, "small", make_agent, logdir)
    return run, agents[0]


def counters_of(run):
    return run.load_checkpoint()["counters"]


# ---- schedules -----------------------------------------------------------------------------------
def test_ratio_schedule_carries_the_fraction():
    ratio = Ratio(train_ratio=24, batch=2, length=8)  # 1.5 updates per policy step
    assert [ratio.after_step(0, 0) for _ in range(4)] == [1, 2, 1, 2]
    assert ratio.after_step(0, 0, count=4) == 6


def test_every_schedule_fires_first_then_each_period_in_its_unit():
    every = Every(updates=100, every=1000, unit="env_steps")
    assert every.after_step(5000, 2500) == 100  # the first call after prefill (official tools.Every)
    assert [every.after_step(s, 0) for s in (5998, 6000, 6002, 8100)] == [0, 100, 0, 200]
    per_policy = Every(updates=1, every=16, unit="policy_steps")
    assert sum(per_policy.after_step(4 * t, t) for t in range(1, 161)) == 10
    assert PerEpisode(100).after_episode() == 100 and PerEpisode(100).after_step(10, 5) == 0
    assert Prefill(steps=0, episodes=5).active(10_000, 4) and not Prefill(5000, 0).active(5000, 0)


def test_every_schedule_in_the_driver(tmp_path):
    """Dreamer v1's cadence: prefill 100 env steps at random, then 3 updates every 100 env steps."""
    config = toy_config({"kind": "every", "updates": 3, "every": 100, "unit": "env_steps"}, steps=1000, prefill=100)
    run, agent = train_toy(config, tmp_path)
    assert counters_of(run)["updates"] == 30 == int(agent.updates)  # at steps 100, 200, ..., 1000
    replay = SequenceReplay(tmp_path / "replay", 10_000)
    actions, first = replay.arrays["action"][0], replay.arrays["is_first"][0]
    assert not np.allclose(actions[1:51], 0.5)  # the first 100 env steps: uniform random
    assert np.allclose(actions[52:500][~first[52:500]], 0.5)  # then the policy (resets store a zero action)


def test_episode_schedule_in_the_driver(tmp_path):
    """PlaNet's cadence: 2 random seed episodes, then 5 updates after every episode (episodes of 50 steps)."""
    config = toy_config({"kind": "episode", "updates": 5}, steps=500, prefill_episodes=2)
    run, agent = train_toy(config, tmp_path)
    assert int(agent.updates) == 20  # after episodes 2, 3, 4 and 5
    train = run.episodes("train")
    assert len(train) == 5 and [row["length"] for row in train] == [100] * 5  # the last episode is logged too
    assert all(not batch["is_first"][:, 1:].any() for batch in agent.batches)  # within one episode


def test_ratio_schedule_waits_for_a_full_batch(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 32}, steps=200)
    run, agent = train_toy(config, tmp_path)
    assert int(agent.updates) == 2 * (100 - 15)  # 2 per policy step once 16 steps are stored


# ---- parallel environments and records -----------------------------------------------------------
@pytest.mark.slow
def test_parallel_workers_fill_one_stream_each(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=400, envs=2)
    run, _ = train_toy(config, tmp_path)
    counters = counters_of(run)
    replay = SequenceReplay(tmp_path / "replay", 10_000, num_streams=2)
    assert counters["step"] == 400 and replay.written[0] == replay.written[1]
    assert sum(replay.written) == counters["policy_steps"] + sum(counters["resets"])
    assert len(run.episodes("train")) == 4
    assert sum(row["length"] for row in run.episodes()) == 400


def test_resume_logs_the_cut_episode_and_drops_rows_after_the_checkpoint(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=150)
    run, _ = train_toy(config, tmp_path)
    assert [row["mode"] for row in run.episodes()] == ["train", "cut"]  # 100 + 50 of the second episode
    with open(tmp_path / "metrics.jsonl", "a") as handle:  # a row logged after the checkpoint, then killed
        handle.write(json.dumps({"step": 170, "time": 0.0}) + "\n")
    config.run.steps = 300  # a safe change: the budget
    run, _ = train_toy(config, tmp_path)
    rows = run.episodes()
    assert sum(row["length"] for row in rows) == 300
    assert [row["mode"] for row in rows] == ["train", "cut", "train", "cut"]
    steps = [row["step"] for row in read_jsonl(tmp_path / "metrics.jsonl")]
    assert 170 not in steps and steps == sorted(set(steps))
    assert (tmp_path / "config_changes.jsonl").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_clean(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=100)
    run, _ = train_toy(config, tmp_path)
    (tmp_path / "checkpoints" / "latest.pt").unlink()  # as if killed before the first checkpoint
    run, _ = train_toy(config, tmp_path)
    assert len(run.episodes("train")) == 1
    assert SequenceReplay(tmp_path / "replay", 10_000).written == [counters_of(run)["policy_steps"] + 1]


# ---- bad settings, divergence, damaged files -----------------------------------------------------
@pytest.mark.parametrize("key, value", [("run.steps", 0), ("batch_size", 0), ("run.envs", 0),
                                        ("run.schedule.updates", -1), ("run.prefill", -5)])
def test_non_positive_settings_are_refused(tmp_path, key, value):
    config = toy_config({"kind": "every", "updates": 1, "every": 10, "unit": "env_steps"})
    OmegaConf.update(config, key, value)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        train_toy(config, tmp_path)


def test_divergence_stops_before_a_nan_checkpoint(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=400)
    with pytest.raises(DivergenceError, match=r"update 40\): loss/toy=nan"):
        train_toy(config, tmp_path, nan_at=40)
    saved = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert saved["counters"]["updates"] < 40


def test_changed_config_and_wrong_model_are_one_line_errors(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=100)
    train_toy(config, tmp_path)
    before = (tmp_path / "config.yaml").read_text()
    changed = toy_config({"kind": "ratio", "train_ratio": 32}, steps=100)
    with pytest.raises(ValueError, match=r"run\.schedule\.train_ratio: 16 -> 32"):
        train_toy(changed, tmp_path)
    assert (tmp_path / "config.yaml").read_text() == before
    config.run.steps = 200
    with pytest.raises(CheckpointError, match="does not fit"):
        train_toy(config, tmp_path, width=3)


def test_a_budget_on_an_evaluation_step_evaluates_once_there(tmp_path):
    config = toy_config({"kind": "ratio", "train_ratio": 16}, steps=200, eval_every=100, eval_eps=1)
    run, _ = train_toy(config, tmp_path)
    assert [row["step"] for row in run.episodes("eval")] == [2, 100, 200]  # first step, periodic, end: once each
