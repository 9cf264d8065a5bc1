"""DreamerV3 on the real benchmarks: a few training steps run through the full loop (env -> replay -> updates ->
records -> checkpoint), reduce the losses, and a second call resumes from the checkpoint with the replay
reopened from disk."""
import json

import pytest
import torch

from dreamer_v3.__main__ import build_config
from tools.replay import SequenceReplay
from dreamer_v3.train import train
from tools.runs import read_jsonl

TINY = ["threads=1", "batch_size=4", "batch_length=16", "agent.units=32", "agent.depth=2",
        "agent.rssm.deter=64", "agent.rssm.hidden=32", "agent.rssm.stoch=4", "agent.imag_length=5",
        "agent.opt.warmup=0", "agent.opt.lr=1e-3", "run.train_ratio=32", "run.log_every=40",
        "run.save_every=100000", "replay.size=2000",
        "env.dmcproprio.action_repeat=2"]  # the tests were sized at repeat 2 (small_dmc_proprio: 8)


def run_tiny(task: str, steps: int, logdir, extra=()):
    config = build_config(task, "small", 0, [*TINY, f"run.steps={steps}", *extra])
    return train(config, "small", logdir)


@pytest.mark.slow
@pytest.mark.parametrize("task, loss_key", [("dmc_cartpole_balance", "train/loss/image"),
                                            ("atari_pong", "train/loss/image"),
                                            ("crafter_reward", "train/loss/image"),
                                            ("dmcproprio_cartpole_balance", "train/loss/vector")])
def test_few_training_steps_reduce_losses(task, loss_key, tmp_path):
    threads = torch.get_num_threads()
    try:
        # the proprio run also goes through the replay context (the paper presets' setting)
        proprio = ["run.eval_every=1000", "run.eval_eps=1", "agent.replay_context=1"]
        extra = proprio if task.startswith("dmcproprio") else []
        steps = {"atari": 480, "dmcproprio": 600}.get(task.split("_")[0], 240)  # Atari counts frames (4 per step)
        run = run_tiny(task, steps, tmp_path, extra)
    finally:
        torch.set_num_threads(threads)
    rows = [row for row in read_jsonl(run.dir / "metrics.jsonl") if loss_key in row]
    assert len(rows) >= 3, rows
    assert rows[-1][loss_key] < 0.8 * rows[0][loss_key], (rows[0][loss_key], rows[-1][loss_key])
    assert rows[-1]["train/loss/rew"] < rows[0]["train/loss/rew"]
    summary = json.loads((run.dir / "summary.json").read_text())
    assert summary["finished"] and summary["budget_unit"] == ("frames" if task.startswith("atari") else "env_steps")
    assert run.checkpoint_path.exists()
    if loss_key == "train/loss/image":  # open-loop video: context + imagination + error
        assert list((run.dir / "videos").glob("openloop_image_*.gif"))
    if task.startswith("dmcproprio"):  # one evaluation round at the start and one at the end
        assert len(run.episodes("eval")) == 2 and run.episodes("eval")[0]["length"] == 1000
    if task.startswith("crafter"):
        assert "crafter_score" in summary or not run.episodes("train")


@pytest.mark.slow
def test_resume_continues_counters_and_reopens_replay(tmp_path):
    threads = torch.get_num_threads()
    try:
        run_tiny("dmcproprio_cartpole_balance", 120, tmp_path)
        first = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)["counters"]
        with open(tmp_path / "metrics.jsonl", "a") as handle:  # a row logged after the checkpoint, then killed
            handle.write(json.dumps({"step": 130, "time": 0.0}) + "\n")
        run = run_tiny("dmcproprio_cartpole_balance", 240, tmp_path)
        again = run_tiny("dmcproprio_cartpole_balance", 240, tmp_path)  # a finished run: nothing is added
    finally:
        torch.set_num_threads(threads)
    assert again.load_checkpoint()["counters"] == run.load_checkpoint()["counters"]
    counters = run.load_checkpoint()["counters"]
    assert first["step"] == 120 and counters["step"] == 240
    assert counters["updates"] > first["updates"]
    replay = SequenceReplay(tmp_path / "replay", 2000)
    # every policy step plus the first observation of each of the two sessions, nothing added twice
    assert replay.written[0] == counters["policy_steps"] + 2
    steps = [row["step"] for row in read_jsonl(run.dir / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 240 and 130 not in steps
