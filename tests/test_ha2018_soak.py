"""Kill-and-resume soak of a real (tiny) ha2018 Doom run: SIGKILLed during collect, inside the V checkpoint
window, during M training, between controller generations, inside the controller's checkpoint window and during
evaluation, each time rerun with the same command; the finished run's records must be exactly what ran, and no
process of a killed run (the vizdoom engine included) may outlive it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from tools.runs import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
MARK = "WORLDMODELS_SOAK_RUN"
GENERATIONS = 4
TINY = ["workers=1", "checks.refuse_bad_dream=false", "controller.temperature=0.9", "collect.rollouts=3", "collect.min_length=0",
        "collect.max_frames=120", "vae.epochs=2", "vae.batch_size=16", "vae.max_batches=3", "mdnrnn.batch_size=2",
        "mdnrnn.seq_len=10", "mdnrnn.epochs=2", "controller.popsize=4", "controller.rollouts=1",
        f"controller.generations={GENERATIONS}", "controller.eval_every=2", "controller.eval_rollouts=2",
        "controller.max_steps=40", "evaluate.trials=2", "evaluate.dream_trials=4", "evaluate.video_steps=5",
        "iterate.rounds=1", "iterate.max_rounds=1"]


def launch(logdir: Path, kill_at: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "ha2018", "all", "--task", "doom_take_cover", "--preset", "small",
            "--logdir", str(logdir), *[f"--set={item}" for item in TINY]]
    env = {key: value for key, value in os.environ.items() if key != "WORLDMODELS_KILL_AT"}
    env[MARK] = str(logdir)  # inherited by every process the run starts
    if kill_at:
        env["WORLDMODELS_KILL_AT"] = kill_at  # tools.checkpoint.fault_point: dies before its first rename
    with open(logdir.parent / "stderr.log", "a") as log:  # a file, not a pipe: tqdm output must never block a run
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    """SIGKILL the run as soon as ``ready()``; it must still be running then (else the phase was missed)."""
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended (code {proc.returncode}) before the phase to kill it in"
        assert time.time() < deadline, "the phase to kill the run in never came"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def metric_rows(logdir: Path, key: str) -> list[dict]:
    return [row for row in read_jsonl(logdir / "metrics.jsonl") if key in row]


def saved_generation(checkpoints: Path) -> int:
    path = checkpoints / "controller.pt"
    return torch.load(path, weights_only=True)["generation"] if path.exists() else 0


def survivors(logdir: Path, grace: float = 10) -> list[int]:
    """Live processes started by the runs on ``logdir`` (found by the variable they inherit), after a grace period
    for watchdogs to act."""
    mark = f"{MARK}={logdir}".encode()
    deadline = time.time() + grace
    while True:
        alive = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if mark in (proc / "environ").read_bytes().split(b"\0") and \
                        (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX":
                    alive.append(int(proc.name))
            except OSError:
                continue
        if not alive or time.time() > deadline:
            return alive
        time.sleep(0.2)


def temps(folder: Path) -> list[Path]:
    return list(folder.glob(".*.tmp*"))


@pytest.mark.slow
def test_ha2018_kill_and_resume_soak_keeps_records_exact(tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    rollouts, checkpoints = logdir / "data" / "rollouts", logdir / "checkpoints"
    kill_when(launch(logdir), lambda: len(list(rollouts.glob("rollout_*.npz"))) >= 1)  # collect
    proc = launch(logdir, kill_at="checkpoint")  # finishes collect, dies in V's first checkpoint window
    assert proc.wait(timeout=180) == -signal.SIGKILL
    assert not (checkpoints / "vae.pt").exists() and temps(checkpoints) and metric_rows(logdir, "vae/epoch")
    kill_when(launch(logdir), lambda: bool(metric_rows(logdir, "mdnrnn/epoch")))  # M training
    kill_when(launch(logdir), lambda: bool(metric_rows(logdir, "controller/generation")))  # between generations
    generation = saved_generation(checkpoints)
    proc = launch(logdir, kill_at="checkpoint")  # dies in the controller's next checkpoint window
    assert proc.wait(timeout=180) == -signal.SIGKILL
    logged = [row["controller/generation"] for row in metric_rows(logdir, "controller/generation")]
    assert temps(checkpoints) and saved_generation(checkpoints) == generation and max(logged) == generation + 1
    kill_when(launch(logdir), lambda: (logdir / "data" / "evaluation.json").exists())  # evaluate, trials played
    proc = launch(logdir)
    assert proc.wait(timeout=180) == 0, (tmp_path / "stderr.log").read_text()[-2000:]

    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["finished"] and summary["generations"] == GENERATIONS and summary["rollouts_collected"] == 3
    frames = [len(np.load(path)["dones"]) for path in sorted(rollouts.glob("rollout_*.npz"))]
    assert len(frames) == 3 and summary["budget"] == sum(frames)  # env steps = the frames on disk (no dropped ones)
    assert sum(row["length"] for row in read_jsonl(logdir / "data" / "collect_log.jsonl")) == sum(frames)
    collect = metric_rows(logdir, "collect/rollouts")
    assert [(row["step"], row["collect/rollouts"]) for row in collect] == [(sum(frames), 3)]  # reported once
    assert [row["vae/epoch"] for row in metric_rows(logdir, "vae/epoch")] == [1, 2]
    assert [row["mdnrnn/epoch"] for row in metric_rows(logdir, "mdnrnn/epoch")] == [1, 2]
    expected = list(range(1, GENERATIONS + 1))
    assert [row["controller/generation"] for row in metric_rows(logdir, "controller/generation")] == expected
    history = torch.load(checkpoints / "controller.pt", weights_only=True)["history"]
    assert [record["generation"] for record in history] == expected
    metrics = read_jsonl(logdir / "metrics.jsonl")
    assert len(metrics) == 1 + 2 + 2 + GENERATIONS  # no row of another kind either
    assert {row["step"] for row in metrics} == {sum(frames)}  # C trains in the dream: no real steps after collect
    episodes = read_jsonl(logdir / "scores.jsonl")
    assert [(row["mode"], row["trial"], row["generation"], row["step"]) for row in episodes] == [
        ("eval", 0, GENERATIONS, sum(frames)), ("eval", 1, GENERATIONS, sum(frames))]  # each trial logged once
    assert summary["episodes"] == 2 and summary["score"] == pytest.approx(np.mean([r["return"] for r in episodes]))
    assert not list(logdir.rglob("*.tmp*"))
    left = survivors(logdir)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "processes of killed runs outlived them"
