"""No lost or invented data: replay positions committed with the checkpoint, damaged files named, one process
per run directory, stale temp files removed, and a kill-and-resume soak of a real DreamerV3 run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tools.replay import ReplayError, SequenceReplay
from tools.runs import Run, RunDirError, read_jsonl

ROOT = Path(__file__).resolve().parent.parent


def fill(replay: SequenceReplay, steps: int) -> None:
    for t in range(steps):
        replay.add({"reward": np.float32(t), "is_first": np.bool_(t == 0)})


# ---- replay --------------------------------------------------------------------------------------
def test_replay_truncates_to_the_checkpoint_positions(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=100, seed=0)
    fill(replay, 20)
    saved = replay.state_dict()  # the checkpoint knows 20 steps
    fill(replay, 10)  # written after the checkpoint, then killed
    replay.flush()
    reopened = SequenceReplay(tmp_path, capacity=100, seed=0)
    assert len(reopened) == 30
    reopened.load_state_dict(saved)
    assert len(reopened) == 20 and reopened.sample(64, 5)["reward"].max() < 20
    older = {**saved, "written": [40]}
    with pytest.raises(ReplayError, match="older than the checkpoint"):
        SequenceReplay(tmp_path, capacity=100).load_state_dict(older)


def test_orphan_steps_in_a_full_ring_are_never_read_as_old_data(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=10, seed=0)
    fill(replay, 15)
    saved = replay.state_dict()
    fill(replay, 3)  # overwrite slots of steps 5-7 with orphan steps 15-17
    replay.flush()
    reopened = SequenceReplay(tmp_path, capacity=10, seed=0)
    reopened.load_state_dict(saved)
    rewards = reopened.sample(200, 2)["reward"]
    assert rewards.min() >= 8 and rewards.max() <= 14  # steps 5-7 are gone, 15-17 not yet counted


def test_damaged_replay_files_are_named(tmp_path):
    replay = SequenceReplay(tmp_path, capacity=100)
    fill(replay, 10)
    replay.flush()
    path = tmp_path / "reward_0.npy"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ReplayError, match="reward_0.npy .*truncated"):
        SequenceReplay(tmp_path, capacity=100)
    (tmp_path / "state.json").write_text('{"written": ')
    with pytest.raises(ReplayError, match="malformed replay state file .*state.json"):
        SequenceReplay(tmp_path, capacity=100)


# ---- run directory -------------------------------------------------------------------------------
def test_second_process_on_a_run_directory_is_refused(tmp_path):
    Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, logdir=tmp_path)
    code = ("import sys; sys.path.insert(0, %r)\nfrom tools.runs import Run, RunDirError\n"
            "try:\n    Run.create('dreamer_v3', 'dmc_walker_walk', 'small', 0, logdir=%r)\n"
            "except RunDirError as error:\n    print(error)" % (str(ROOT), str(tmp_path)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "in use by another process" in out


def test_stale_temp_files_are_removed_and_a_file_logdir_is_one_line(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    stale = tmp_path / "run" / "checkpoints" / ".latest.pt.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, logdir=tmp_path / "run")
    assert not stale.exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="not a directory"):
        Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, logdir=tmp_path / "file")


# ---- kill-and-resume soak ------------------------------------------------------------------------
TINY = ["threads=1", "batch_size=4", "batch_length=16", "agent.units=32", "agent.depth=2", "agent.rssm.deter=64",
        "agent.rssm.hidden=32", "agent.rssm.stoch=4", "agent.imag_length=5", "agent.opt.warmup=0",
        "run.train_ratio=32", "run.log_every=40", "run.save_every=200", "replay.size=4000", "run.steps=2000",
        "env.dmcproprio.action_repeat=2"]  # sized at repeat 2 (the small_dmc_proprio block sets 8)


def launch(logdir: Path, kill_at: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "dreamer_v3", "train", "--task", "dmcproprio_cartpole_balance", "--preset",
            "small", "--logdir", str(logdir), *[f"--set={item}" for item in TINY]]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    if kill_at:
        env["WORLDMODELS_KILL_AT"] = kill_at
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_step(logdir: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    start = time.time()
    while time.time() - start < timeout and proc.poll() is None:
        rows = read_jsonl(logdir / "metrics.jsonl") if (logdir / "metrics.jsonl").exists() else []
        if rows and rows[-1]["step"] >= step:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_and_resume_soak_keeps_records_exact(tmp_path):
    """Kills at several phases (inside the first checkpoint window, mid-episode, after an episode end), then a
    run to the end: env steps equal the budget, the replay holds exactly the counted steps, no duplicate or missing
    rows or episodes."""
    logdir = tmp_path / "run"
    proc = launch(logdir, kill_at="checkpoint")  # dies inside its first checkpoint window
    assert proc.wait(timeout=180) == -signal.SIGKILL
    assert not (logdir / "checkpoints" / "latest.pt").exists()
    for step in (500, 1500):  # cuts the first episode; lets the second one finish
        proc = launch(logdir)
        wait_for_step(logdir, step, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    proc = launch(logdir)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    import torch
    state = torch.load(logdir / "checkpoints" / "latest.pt", weights_only=True)
    counters = state["counters"]
    assert counters["step"] == 2000
    replay = SequenceReplay(logdir / "replay", 4000)
    replay.load_state_dict(state["replay"])
    assert replay.written == [counters["policy_steps"] + sum(counters["resets"])]
    assert len(list((logdir / "replay").glob("*.npy"))) and not list(logdir.rglob(".*.tmp"))
    steps = [row["step"] for row in read_jsonl(logdir / "metrics.jsonl")]
    assert steps == sorted(set(steps)) and steps[-1] == 2000
    episodes = read_jsonl(logdir / "scores.jsonl")
    train = [row for row in episodes if row["mode"] == "train"]
    assert len({row["step"] for row in train}) == len(train)
    assert [(row["mode"], row["step"], row["length"]) for row in episodes] == [
        ("cut", 400, 400), ("train", 1400, 1000), ("cut", 2000, 600)]  # every env step in exactly one row
    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["finished"] and summary["budget"] == 2000
