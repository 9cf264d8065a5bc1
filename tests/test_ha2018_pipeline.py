"""ha2018 pipeline on a handful of real rollouts: every stage, the run record, and skipping on resume."""
from __future__ import annotations

import json
import math

import pytest
import torch

from ha2018.__main__ import main
from ha2018.data import collect_lengths, load_series
from tools.checkpoint import load_checkpoint

TINY = ["workers=1", "checks.refuse_bad_dream=false", "controller.temperature=0.9", "collect.rollouts=3",
        "collect.min_length=0", "vae.epochs=1", "vae.batch_size=16", "iterate.rounds=1", "iterate.max_rounds=1",
        "mdnrnn.batch_size=2", "mdnrnn.seq_len=10", "mdnrnn.epochs=1", "controller.popsize=4",
        "controller.rollouts=1", "controller.generations=1", "controller.eval_rollouts=2", "evaluate.trials=2",
        "evaluate.dream_trials=4", "evaluate.video_steps=5"]


def run(task: str, logdir, extra: list[str], capsys) -> str:
    args = ["all", "--task", task, "--preset", "small", "--logdir", str(logdir)]
    assert main(args + [x for item in TINY + extra for x in ("--set", item)]) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_doom_pipeline_end_to_end_and_resume(tmp_path, capsys):
    extra = ["collect.max_frames=120", "controller.max_steps=40"]
    run("doom_take_cover", tmp_path, extra, capsys)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] and summary["episodes"] == 2 and summary["temperature"] == 0.9
    assert {"score", "score_std", "dream_score", "dream_score_std", "random_policy_score"} <= set(summary)
    assert 0 < summary["score"] <= 120 and 0 < summary["dream_score"] <= 40
    assert 0 < summary["random_policy_score"] <= 120  # the random policy on the same evaluation seeds
    for name in ("checkpoints/vae.pt", "checkpoints/mdnrnn.pt", "checkpoints/controller.pt", "data/series.npz",
                 "fitness.png", "videos/dream.gif"):
        assert (tmp_path / name).exists(), name
    assert len(list((tmp_path / "data" / "rollouts").glob("rollout_*.npz"))) == 3
    out = run("doom_take_cover", tmp_path, extra, capsys)  # everything is complete now
    assert out.count("complete, skipped") == 6
    out = run("doom_take_cover", tmp_path, extra + ["controller.generations=2"], capsys)  # a longer budget
    assert out.count("complete, skipped") == 4 and json.loads((tmp_path / "summary.json").read_text())[
        "generations"] == 2  # C trained on from its checkpoint and was evaluated again
    args = ["mdnrnn", "--task", "doom_take_cover", "--preset", "small", "--logdir", str(tmp_path)]
    assert main(args + [x for item in TINY + extra + ["mdnrnn.epochs=2"] for x in ("--set", item)]) == 2
    assert "M would train on after controller.pt was made from it" in capsys.readouterr().err


@pytest.mark.slow
def test_doom_iterative_procedure_runs_more_rounds_on_the_same_run(tmp_path, capsys):
    extra = ["collect.max_frames=120", "controller.max_steps=40", "iterate.rollouts=2", "iterate.mdnrnn_epochs=1"]
    run("doom_take_cover", tmp_path, extra, capsys)  # one round, as the published experiments
    rounds = ["iterate.rounds=2", "iterate.max_rounds=2"]
    out = run("doom_take_cover", tmp_path, extra + rounds, capsys)  # raised: round 2 runs on round 1's files
    assert "collect: running (round 2" in out and "vae: complete" in out and "controller: running (round 2" in out
    checkpoints = tmp_path / "checkpoints"
    round1, last = (load_checkpoint(checkpoints / name) for name in ("controller_round1.pt", "controller.pt"))
    assert round1["round"] == 1 and last["round"] == 2 and load_checkpoint(checkpoints / "mdnrnn.pt")["epoch"] == 2
    assert all((tmp_path / "data" / name).exists() for name in ("dream_check_round1.json", "dream_check.json"))
    assert len(list((tmp_path / "data" / "rollouts").glob("rollout_*.npz"))) == 5
    assert len(load_series(tmp_path / "data" / "series.npz")) == 5  # round 2's rollouts appended
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rounds"] == 2 and len(summary["earlier_rounds_dream_check"]) == 1
    assert summary["budget"] == sum(collect_lengths(tmp_path / "data"))  # the agent's rollouts count as budget
    assert run("doom_take_cover", tmp_path, extra + rounds, capsys).count("complete, skipped") == 10
    longer = ["all", "--task", "doom_take_cover", "--logdir", str(tmp_path)]
    more = TINY + extra + rounds + ["controller.generations=2"]
    assert main(longer + [x for item in more for x in ("--set", item)]) == 2  # round 1's C collected round 2's data
    assert "C would train on after rollout_00003.npz was made from it" in capsys.readouterr().err
    assert main(["all", "--task", "doom_take_cover", "--logdir", str(tmp_path)]
                + [x for item in TINY + extra for x in ("--set", item)]) == 2  # back to one round: refused
    assert "is the controller of round 2" in capsys.readouterr().err


@pytest.mark.slow
def test_temperature_sweep_trains_a_controller_per_temperature_on_one_model(tmp_path, capsys):
    extra = ["collect.max_frames=120", "controller.max_steps=40", "sweep.temperatures=[0.9,1.2]"]
    args = ["temperature-sweep", "--task", "doom_take_cover", "--preset", "small", "--logdir", str(tmp_path)]
    assert main(args + [x for item in TINY + extra for x in ("--set", item)]) == 0
    table = (tmp_path / "sweep" / "temperature_table.md").read_text()
    assert "| 0.90 |" in table and "| 1.20 |" in table
    assert (tmp_path / "sweep" / "tau_1.20" / "summary.json").exists()


@pytest.mark.slow
def test_carracing_pipeline_end_to_end(tmp_path, capsys):
    run("carracing", tmp_path, ["collect.max_frames=25", "controller.max_steps=8", "mdnrnn.seq_len=8"], capsys)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["finished"] and summary["episodes"] == 2 and "dream_score" not in summary
    assert summary["budget"] >= 3 * 25 + 4 * 8  # collection + controller training in the real game
    for policy in ("random", "noop", "gas", "left_gas", "right_gas"):  # trivial policies on the same tracks
        assert math.isfinite(summary[f"{policy}_policy_score"]), policy


@pytest.mark.slow
def test_same_command_and_seed_give_the_same_models_and_score(tmp_path, capsys):
    extra = ["collect.max_frames=120", "controller.max_steps=40", "controller.rollouts=2", "seed=3"]
    first, second = tmp_path / "first", tmp_path / "second"
    run("doom_take_cover", first, extra, capsys)
    run("doom_take_cover", second, extra, capsys)
    for name in ("vae.pt", "mdnrnn.pt", "controller.pt"):
        a, b = (load_checkpoint(d / "checkpoints" / name) for d in (first, second))
        weights = ("model",) if "model" in a else ("mean", "best_params")
        for key in weights:
            left, right = (x if isinstance(x, dict) else {"": x} for x in (a[key], b[key]))
            assert all(torch.equal(left[k], right[k]) for k in left), (name, key)
    one, two = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert [one[k] for k in ("score", "dream_score", "random_policy_score")] == \
        [two[k] for k in ("score", "dream_score", "random_policy_score")]
