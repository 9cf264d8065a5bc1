import json

import pytest

from tools.runs import Run, default_logdir, iter_runs, read_jsonl


def test_run_directory_records_and_summary(tmp_path):
    run = Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, config={"lr": 1e-3}, logdir=tmp_path / "r")
    run.log_metrics(100, {"loss/model": 2.5, "fps": 30})
    for step, ret in [(500, 1.0), (1000, 3.0)]:
        run.log_episode(step, ret, 500, mode="train")
    run.log_episode(1000, 10.0, 500, mode="eval")
    summary = run.finish(1000)
    assert summary["score"] == 10.0 and summary["mode"] == "eval" and summary["episodes"] == 1
    assert summary["budget"] == 1000 and summary["finished"] and "torch" in summary["versions"]
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"config.yaml", "metrics.jsonl", "scores.jsonl", "summary.json", "tb", "checkpoints"} <= files
    assert read_jsonl(tmp_path / "r" / "metrics.jsonl")[0]["loss/model"] == 2.5
    assert list(iter_runs(tmp_path)) == [tmp_path / "r"]
    assert default_logdir("ha2018", "carracing", "paper", 3).as_posix() == "runs/ha2018/carracing/paper_seed3"


def test_resumed_run_keeps_its_records_and_checkpoint(tmp_path):
    run = Run.create("planet", "dmc_cartpole_swingup", "small", 1, logdir=tmp_path)
    assert run.load_checkpoint() is None
    run.log_episode(10, 1.0, 10)
    run.save_checkpoint({"step": 10})
    again = Run.create("planet", "dmc_cartpole_swingup", "small", 1, logdir=tmp_path)
    assert again.load_checkpoint()["step"] == 10
    assert len(again.episodes()) == 1
    assert json.loads((tmp_path / "summary.json").read_text())["finished"] is False


def test_truncated_last_line_is_skipped_but_corruption_elsewhere_is_named(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_text('{"step": 1, "return": 2}\n{"step": 2, "ret')
    assert read_jsonl(path) == [{"step": 1, "return": 2}]
    path.write_text('{"step": 1\n{"step": 2, "return": 2}\n')
    with pytest.raises(ValueError, match="scores.jsonl:1"):
        read_jsonl(path)


def test_episode_mode_is_checked(tmp_path):
    run = Run.create("planet", "dmc_cartpole_swingup", "small", 1, logdir=tmp_path)
    with pytest.raises(ValueError, match="'train' or 'eval'"):
        run.log_episode(1, 0.0, 1, mode="test")


def test_a_row_cut_by_a_kill_does_not_swallow_the_next_one(tmp_path):
    run = Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, logdir=tmp_path)
    run.log_episode(10, 1.0, 10)
    with open(tmp_path / "scores.jsonl", "a") as handle:
        handle.write('{"step": 20, "ret')  # killed mid-write
    run.log_episode(30, 3.0, 10)
    assert [row["step"] for row in run.episodes()] == [10, 30]
