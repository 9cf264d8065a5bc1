"""ha2018 under kills, bad input and concurrent writers: budgets from what is on disk, no duplicated evaluation
or generation rows, one-line errors, unique temp files, no worker outliving its parent, no record written unless asked."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ha2018.stages as stages
from ha2018.__main__ import main, open_context
from ha2018.data import collect_lengths, load_series, open_collect_log, remove_stale_temps, save_series
from ha2018.models import build_controller, build_mdnrnn, build_vae
from tools.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def save_rollout(path: Path, n: int) -> None:
    """A rollout file of n frames as collect writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, frames=np.zeros((n, 64, 64, 3), np.uint8), actions=np.zeros((n, 1), np.float32),
                        rewards=np.zeros(n, np.float32), dones=np.zeros(n, bool))


# ---- 10: counts and budgets are checked before anything runs ---------------------------------------------
@pytest.mark.parametrize("key, value", [
    ("controller.generations", 0), ("evaluate.trials", 0), ("collect.rollouts", -1), ("vae.batch_size", 0),
    ("vae.epochs", 0), ("mdnrnn.seq_len", 0), ("mdnrnn.epochs", -3), ("controller.popsize", 1),
    ("controller.eval_every", 0), ("controller.temperature", 0), ("evaluate.dream_trials", 0), ("workers", 0),
    ("vae.lr", -1e-4), ("collect.min_length", 2100), ("controller.train_in", "moon"), ("vae.max_batches", -1),
])
def test_nonsense_counts_are_rejected_up_front(tmp_path, capsys, key, value):
    logdir = tmp_path / "run"
    assert main(["evaluate", "--task", "doom_take_cover", "--logdir", str(logdir), "--set", f"{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {key} ") and " must be " in err and err.count("\n") == 1
    assert not logdir.exists()  # nothing ran


def test_resume_with_another_config_is_refused_naming_the_key(tmp_path, capsys):
    args = ["vae", "--task", "doom_take_cover", "--logdir", str(tmp_path)]
    assert main(args) == 2 and "run the 'collect' stage first" in capsys.readouterr().err  # config.yaml written
    assert main(args + ["--set", "vae.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another config (vae.lr: 0.001 -> 0.5)" in err
    assert main(args + ["--set", "controller.generations=60", "--set", "workers=1"]) == 2  # budgets may change
    assert "run the 'collect' stage first" in capsys.readouterr().err


# ---- 12: corrupt data is one line that says what to do ----------------------------------------------------
def test_truncated_rollout_and_series_are_one_line_errors(tmp_path, capsys):
    rollouts = tmp_path / "data" / "rollouts"
    save_rollout(rollouts / "rollout_00000.npz", 20)
    data = (rollouts / "rollout_00000.npz").read_bytes()
    (rollouts / "rollout_00000.npz").write_bytes(data[:len(data) // 2])
    assert main(["vae", "--task", "doom_take_cover", "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rollout_00000.npz" in err and "delete it and run the 'collect' stage again" in err
    series = tmp_path / "data" / "series.npz"
    save_series(series, [np.zeros((5, 2))], [np.zeros((5, 2))], [np.zeros((5, 1))], [np.zeros(5, bool)])
    series.write_bytes(series.read_bytes()[:100])
    assert main(["mdnrnn", "--task", "doom_take_cover", "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "series.npz" in err and "delete it and run the 'series' stage again" in err


# ---- 4: the budget after a kill in collect -----------------------------------------------------------------
def _fake_collect(lengths: list, min_length: int = 5):
    """A stand-in for collect_job: the next length from ``lengths``; "kill" raises KeyboardInterrupt (the
    run killed between two rollouts), ("kill", n) after writing a rollout of n frames (killed before the
    parent logged it)."""
    queue = list(lengths)

    def job(args):
        _, path, _ = args
        n = queue.pop(0)
        if n == "kill":
            raise KeyboardInterrupt
        if isinstance(n, tuple):
            save_rollout(Path(path), n[1])
            raise KeyboardInterrupt
        if n <= min_length:
            return n, False
        save_rollout(Path(path), n)
        return n, True
    return job


def test_budget_after_a_kill_in_collect_counts_every_frame_on_disk(tmp_path, monkeypatch):
    ctx = open_context("doom_take_cover", "small", ["workers=1", "collect.rollouts=4", "collect.min_length=5",
                                                    "iterate.rounds=1", "iterate.max_rounds=1"],
                       tmp_path)
    monkeypatch.setattr(stages, "collect_job", _fake_collect([30, 3, 40, "kill"]))
    with pytest.raises(KeyboardInterrupt):
        stages.collect(ctx)
    assert stages.collected_frames(ctx) == 30 + 3 + 40          # dropped rollouts are budget too
    monkeypatch.setattr(stages, "collect_job", _fake_collect([("kill", 25)]))
    with pytest.raises(KeyboardInterrupt):
        stages.collect(ctx)
    assert stages.collected_frames(ctx) == 30 + 3 + 40 + 25     # written, not yet logged: counted from the file
    with open((ctx.model_dir / "data" / "collect_log.jsonl"), "a") as log:
        log.write('{"rollout": 3, "len')                        # a line cut by a kill
    monkeypatch.setattr(stages, "collect_job", _fake_collect([4, 50]))
    stages.collect(ctx)
    assert stages.collect_complete(ctx)
    assert stages.collected_frames(ctx) == 30 + 3 + 40 + 25 + 4 + 50
    assert (ctx.model_dir / "data" / "collect_log.jsonl").read_text().endswith("\n")


def test_an_older_run_directory_keeps_its_collect_budget(tmp_path):
    data = tmp_path / "data"
    save_rollout(data / "rollouts" / "rollout_00000.npz", 30)
    save_rollout(data / "rollouts" / "rollout_00001.npz", 40)
    (data / "collect_stats.json").write_text(json.dumps({"frames": 73, "lengths": [30, 3, 40]}))
    assert sum(collect_lengths(data)) == 73
    open_collect_log(data)                                          # collect resumed by this version
    assert sum(collect_lengths(data)) == 73 and (data / "collect_log.jsonl").exists()


# ---- 6: evaluation trials are logged once, whatever the kill ----------------------------------------------
def _evaluation_ready(tmp_path, extra: tuple[str, ...] = ()) -> stages.Context:
    overrides = ["workers=1", "vae.z_size=2", "mdnrnn.hidden=4", "mdnrnn.mixtures=1", "evaluate.trials=5",
                 "evaluate.dream_trials=2", "controller.max_steps=5", "iterate.rounds=1", "iterate.max_rounds=1",
                 *extra]
    ctx = open_context("doom_take_cover", "small", overrides, tmp_path)
    config, task = ctx.config, ctx.task
    save_checkpoint(ctx.path("vae.pt", shared=True), {"model": build_vae(config).state_dict(), "finished": True})
    save_checkpoint(ctx.path("mdnrnn.pt", shared=True), {
        "model": build_mdnrnn(config, task).state_dict(), "initial_mu": torch.zeros(3, 2),
        "initial_logvar": torch.zeros(3, 2), "finished": True})
    n = build_controller(config, task).param_count
    save_checkpoint(ctx.path("controller.pt"), {"generation": 3, "mean": torch.zeros(n, dtype=torch.float64),
                                                "best_params": None, "real_steps": 0, "finished": True})
    save_rollout(ctx.rollouts_dir / "rollout_00000.npz", 30)
    return ctx


def test_evaluate_killed_and_rerun_logs_each_trial_once(tmp_path, monkeypatch):
    ctx = _evaluation_ready(tmp_path)
    played = []
    monkeypatch.setattr(stages, "agent_job", lambda job: played.append(job[1]) or (float(job[1] % 97), 7))
    monkeypatch.setattr("ha2018.verify.baseline_job", lambda job: (3.0, 3))
    monkeypatch.setattr("tools.results.export_run", lambda *a, **k: pytest.fail("exported without --export"))
    log_episode, calls = ctx.run.log_episode, []

    def killed_after_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        log_episode(*args, **kwargs)
    monkeypatch.setattr(ctx.run, "log_episode", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        stages.evaluate(ctx)                                        # killed while logging the trials
    monkeypatch.setattr(ctx.run, "log_episode", log_episode)
    video_calls = []

    def video_killed_once(*args):
        video_calls.append(1)
        if len(video_calls) == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(stages.media, "dream_video", video_killed_once)
    with pytest.raises(KeyboardInterrupt):
        stages.evaluate(ctx)                                        # killed after logging them all
    summary = stages.evaluate(ctx)
    rows = ctx.run.episodes("eval")
    assert [row["trial"] for row in rows] == [0, 1, 2, 3, 4]       # each trial once, in order
    assert len(played) == 5                                         # played once, then reused
    expected = [float((stages.EVAL_SEED + i) % 97) for i in range(5)]
    assert [row["return"] for row in rows] == expected
    assert summary["episodes"] == 5 and summary["score"] == pytest.approx(np.mean(expected))
    assert summary["rollouts_collected"] == 1 and summary["budget"] == 30


def test_a_generation_logged_but_not_checkpointed_is_logged_once(tmp_path, monkeypatch):
    ctx = _evaluation_ready(tmp_path, ("controller.generations=3", "controller.popsize=4", "controller.rollouts=1",
                                       "controller.eval_every=2", "controller.eval_rollouts=1"))
    ctx.path("controller.pt").unlink()
    saves = []

    def killed_at_the_second(path, state):  # killed after logging generation 2, before its checkpoint
        saves.append(1)
        if len(saves) == 2:
            raise KeyboardInterrupt
        save_checkpoint(path, state)
    monkeypatch.setattr(stages, "save_checkpoint", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        stages.train_controller(ctx)
    monkeypatch.setattr(stages, "save_checkpoint", save_checkpoint)
    stages.train_controller(ctx)
    rows = stages.read_jsonl(ctx.dir / "metrics.jsonl")
    assert [row["controller/generation"] for row in rows] == [1, 2, 3]  # generation 2 redone, its first row dropped


# ---- 7: two writers of one file never share a temp file ---------------------------------------------------
def test_a_second_writer_of_the_same_file_does_not_break_the_first(tmp_path, monkeypatch):
    path = tmp_path / "series.npz"
    arrays = ([np.zeros((5, 2))], [np.zeros((5, 2))], [np.zeros((5, 1))], [np.zeros(5, bool)])
    real, raced = np.savez_compressed, []

    def racing(file, **kwargs):  # another process writes the same file between this write and its rename
        real(file, **kwargs)
        if not raced:
            raced.append(file)
            save_series(path, *arrays)
    monkeypatch.setattr(np, "savez_compressed", racing)
    save_series(path, *arrays)
    assert raced and [p.name for p in tmp_path.iterdir()] == ["series.npz"]  # no temp file left behind
    assert len(load_series(path)) == 1


def test_temp_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".rollout_00003.{dead.stdout.strip()}-0a1b2c3d.tmp.npz"
    live = tmp_path / f".rollout_00004.{os.getpid()}-0a1b2c3d.tmp.npz"
    for path in (stale, live, tmp_path / "rollout_00000.npz"):
        path.write_bytes(b"x")
    remove_stale_temps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "rollout_00000.npz"])


# ---- 9: a killed parent takes its workers with it ---------------------------------------------------------
PARENT = """
import sys, time
sys.path[:0] = [{root!r}, {jobs!r}]
import jobs
from ha2018.__main__ import config_for
from ha2018.rollout import Pool
pool = Pool(2, "doom_take_cover", config_for("doom_take_cover", "small", []))
pool.pool.map_async(jobs.hold, [{marks!r}] * 2, chunksize=1)
time.sleep(600)
"""
JOBS = """
import os, time
def hold(marks):
    open(os.path.join(marks, str(os.getpid())), "w").close()
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_with_a_killed_parent(tmp_path):
    (tmp_path / "jobs.py").write_text(JOBS)
    marks = tmp_path / "marks"
    marks.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(root=str(ROOT), jobs=str(tmp_path),
                                                                   marks=str(marks))])
    try:
        deadline = time.time() + 120
        while len(list(marks.iterdir())) < 2 and time.time() < deadline and parent.poll() is None:
            time.sleep(0.2)
        workers = [int(p.name) for p in marks.iterdir()]
        assert len(workers) == 2, "the workers never started"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 10
        while any(map(_alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        survivors = [pid for pid in workers if _alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, "pool workers outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


# ---- 1: a run writes no record unless asked ----------------------------------------------------------------
def test_export_only_when_asked_and_only_a_finished_run(tmp_path, capsys, monkeypatch):
    written = []
    monkeypatch.setattr("ha2018.__main__.export_run", lambda run_dir: written.append(run_dir) or "record.json")
    monkeypatch.setattr("ha2018.__main__.run_stages", lambda steps: None)  # the stages are tested elsewhere
    assert main(["vae", "--task", "doom_take_cover", "--logdir", str(tmp_path), "--export"]) == 2
    assert "has not finished" in capsys.readouterr().err and not written
    (tmp_path / "summary.json").write_text(json.dumps({"finished": True, "score": 1.0}))
    args = ["evaluate", "--task", "doom_take_cover", "--logdir", str(tmp_path)]
    assert main(args) == 0 and not written                          # finished, but not asked
    assert main(args + ["--export"]) == 0 and written == [tmp_path]


CMA_RUN = """
import hashlib, numpy as np, cma
from ha2018.context import fixed_blas_threads
with fixed_blas_threads():
    es = cma.CMAEvolutionStrategy(np.zeros(544), 0.1, {"popsize": 32, "seed": 1, "verbose": -9})
    for _ in range(5):  # enough: unpinned, the means already differ
        x = np.asarray(es.ask())
        es.tell(list(x), list(((x - 0.3) ** 2).sum(1) + 0.1 * np.sin(7 * x).sum(1)))
print(hashlib.sha1(es.mean.tobytes()).hexdigest())
"""


def test_cma_es_gives_the_same_bits_whatever_the_shell_s_thread_count():
    """cma's eigendecomposition (OpenBLAS) differs in the last bits with 1 and 2 threads; the controller stage pins
    them, so the same command and seed evolve the same controller under any OMP_NUM_THREADS."""
    digests = {threads: subprocess.run([sys.executable, "-c", CMA_RUN], cwd=ROOT, capture_output=True, text=True,
                                       check=True, env={**os.environ, "OMP_NUM_THREADS": threads}).stdout
               for threads in ("1", "2")}
    assert digests["1"] == digests["2"]


def test_carracing_random_collection_policy_drives_as_the_authors_did():
    """The authors' V and M `set_model_params` divide the random Cauchy weights by 10,000, so z is noise and the
    random controller drives. Without that scale, V's logvar overflows and most rollouts stand still (measured:
    9 of 10 rollouts with every action 0)."""
    from ha2018.__main__ import config_for
    from ha2018.rollout import random_model_agent, run_episode
    from tools.envs import make_env
    config = config_for("carracing", "paper", [])
    env = make_env("carracing", seed=0)
    try:
        for seed in range(4):
            policy = random_model_agent(config, "carracing", np.random.default_rng(seed))
            actions = np.asarray(run_episode(env, policy, "carracing", seed, 30, record=True,
                                             full_episode=True)["actions"])
            assert np.isfinite(actions).all()
            assert (np.abs(actions).sum(-1) > 0).mean() > 0.9, seed
            assert actions[:, 1].mean() > 0.2, seed  # gas (tanh + 1) / 2 around 0.5
    finally:
        env.close()
