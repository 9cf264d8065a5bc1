"""tools.sweep: grids as data, cells as Ray tasks (local Ray, 2 CPUs) on a toy paper whose cells take a second:
a two-cell grid, a failing cell reported and retried, a rerun that skips finished cells and resumes the rest.
The shipped grids are checked against the environments' task lists."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tools.sweep.__main__ import main
from tools.sweep.grids import GridError, load_grid

TOY = textwrap.dedent('''
    """A toy paper: writes an ordinary finished run directory in a moment. --set fail=N: the first N attempts of
    the cell exit 3; --set crash_seed=S: every attempt of seed S exits 3."""
    import argparse, json, sys, time
    from pathlib import Path
    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    for flag in ("--task", "--preset", "--seed", "--logdir"):
        parser.add_argument(flag)
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args()
    sets = dict(s.split("=", 1) for s in args.set)
    run = Path(args.logdir)
    run.mkdir(parents=True, exist_ok=True)
    attempts = run / "attempts"
    attempt = int(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text(str(attempt))
    if attempt <= int(sets.get("fail", 0)) or sets.get("crash_seed") == args.seed:
        print("toy: boom", file=sys.stderr)
        sys.exit(3)
    steps = int(float(sets.get("run.steps", 100)))
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": steps, "time": 0.1}) + "\\n")
    with open(run / "scores.jsonl", "a") as f:
        f.write(json.dumps({"step": steps, "return": float(args.seed), "length": steps, "mode": "train"}) + "\\n")
    summary = {"paper": "toypaper", "task": args.task, "preset": args.preset, "seed": int(args.seed),
               "method": "toy", "budget": steps, "budget_unit": "env_steps", "finished": True,
               "score": float(args.seed), "score_std": 0.0, "episodes": 1, "mode": "train", "commit": "toy"}
    (run / "summary.json").write_text(json.dumps(summary))
''')
GRIDS = textwrap.dedent('''
    two: {tasks: [toy_task], seeds: [0, 1], preset: small, set: [run.steps=50]}
    flaky: {tasks: [toy_task], seeds: [0, 1], preset: small, set: [fail=1]}
    broken: {tasks: [toy_other], seeds: [0, 1], preset: small, set: [crash_seed=1]}
''')


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray of 2 CPUs for the module's sweeps (starting Ray takes ~10 s on this machine)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    (tmp_path / "toypaper").mkdir()
    (tmp_path / "toypaper" / "__init__.py").write_text("")
    (tmp_path / "toypaper" / "__main__.py").write_text(TOY)
    (tmp_path / "toypaper" / "grids.yaml").write_text(GRIDS)
    return tmp_path


def sweep(toy: Path, grid: str, *extra: str) -> int:
    return main(["toypaper", "--grid", grid, "--root", str(toy), "--runs", str(toy / "runs"), "--out",
                 str(toy / "records"), "--cpus", "2", *extra])


def attempts(toy: Path, seed: int, task: str = "toy_task") -> int:
    return int((toy / "runs" / "toypaper" / task / f"small_seed{seed}" / "attempts").read_text())


@pytest.mark.slow
def test_two_cells_failure_retry_and_rerun(ray_session, toy: Path, capsys) -> None:
    assert sweep(toy, "two") == 0
    records = sorted((toy / "records" / "toypaper" / "toy_task").glob("*.json"))
    assert [r.name for r in records] == ["toy_small_seed0.json", "toy_small_seed1.json"]
    assert json.loads(records[1].read_text())["budget"] == 50
    assert sweep(toy, "two") == 0  # finished cells are skipped: no new attempt
    assert attempts(toy, 0) == attempts(toy, 1) == 1
    assert "skipped 2" in capsys.readouterr().out

    assert sweep(toy, "two", "--set", "run.steps=80") == 0  # a larger budget: the finished cells run again
    assert attempts(toy, 0) == 2
    assert "holds the record of a different run (budget 50 -> 80)" in capsys.readouterr().err  # export's rule
    assert json.loads(records[1].read_text())["budget"] == 50

    assert sweep(toy, "broken", "--retries", "1") == 1  # seed 1 fails every time: reported, given up
    out = capsys.readouterr()
    log = toy / "runs" / "toypaper" / "toy_other" / "small_seed1" / "sweep.log"
    assert f"failed: toypaper/toy_other/small_seed1 (exit 3), attempt 1; log {log}; retrying" in out.err + out.out
    assert f"gave up: toypaper/toy_other/small_seed1 after 2 failures; log {log}" in out.out
    assert "toy: boom" in log.read_text() and "=== attempt 2" in log.read_text()
    assert attempts(toy, 1, "toy_other") == 2 and attempts(toy, 0, "toy_other") == 1
    assert (toy / "records" / "toypaper" / "toy_other" / "toy_small_seed0.json").exists()  # the others go on


@pytest.mark.slow
def test_flaky_cells_are_retried(ray_session, toy: Path) -> None:
    assert sweep(toy, "flaky", "--retries", "1") == 0
    assert attempts(toy, 0) == attempts(toy, 1) == 2
    assert len(list((toy / "records" / "toypaper" / "toy_task").glob("*.json"))) == 2


def test_grid_errors(toy: Path, capsys) -> None:
    assert sweep(toy, "nope") == 2
    assert "no grid 'nope'; valid: two, flaky, broken" in capsys.readouterr().err
    (toy / "toypaper" / "grids.yaml").write_text("bad: {tasks: [t], seeds: [0], sed: 1}\n")
    with pytest.raises(GridError, match="unknown key"):
        load_grid("toypaper", "bad", toy)
    assert main(["nopaper", "--grid", "small", "--root", str(toy)]) == 2


def test_list_shows_the_papers_commands(toy: Path, capsys) -> None:
    assert sweep(toy, "two", "--list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "not started" in lines[0]
    assert "python -m toypaper train --task toy_task --preset small --seed 0 --logdir" in lines[0]
    assert lines[0].endswith("--set run.steps=50")


@pytest.mark.slow  # imports dm_control and the ALE (~15 s here)
def test_shipped_grids_name_real_tasks() -> None:
    from tools.envs.atari import rom_id
    from tools.envs.dmc import parse_task
    papers = ("planet", "dreamer_v1", "dreamer_v2", "dreamer_v3", "ha2018")
    cells = [c for p in papers for g in ("small", "paper") for c in load_grid(p, g)]
    cells += load_grid("lineage", "small") + load_grid("lineage", "paper")
    for cell in cells:
        if cell.task.startswith("atari_"):
            rom_id(cell.task)
        elif cell.task.startswith("dmc"):
            parse_task(cell.task)
        else:
            assert cell.task in ("carracing", "doom_take_cover", "crafter_reward"), cell.task
    lineage = load_grid("lineage", "paper")
    assert {c.paper for c in lineage} == {"planet", "dreamer_v1", "dreamer_v2", "dreamer_v3"}
    assert {c.steps() for c in lineage} == {1e6} and {c.task for c in lineage} == {"dmc_cartpole_swingup"}
    assert len(load_grid("dreamer_v1", "paper")) == 20 * 5


@pytest.mark.slow
def test_ha2018_ray_backend_matches_the_pool(ray_session) -> None:
    """The same CarRacing candidates x rollouts (a tiny population: 3 x 2 episodes of 12 steps) give the same
    returns in-process, over 2 local worker processes and over 2 Ray actors."""
    import numpy as np

    from ha2018.__main__ import config_for
    from ha2018.models import build_mdnrnn, build_vae
    from ha2018.rollout import Pool, agent_job

    config = config_for("carracing", "small", [])
    vae, m = build_vae(config), build_mdnrnn(config, "carracing")
    n = 867  # CarRacing's controller
    rng = np.random.default_rng(0)
    jobs = [(rng.normal(0, 0.5, n).astype(np.float32), 100 + r, 12) for _ in range(3) for r in range(2)]
    returns = {}
    for backend, workers in (("pool", 1), ("pool", 2), ("ray", 2)):
        with Pool(workers, "carracing", config_for("carracing", "small", [f"backend={backend}"]), vae, m) as pool:
            returns[backend, workers] = list(pool.imap(agent_job, jobs))
    assert returns["pool", 1] == returns["pool", 2] == returns["ray", 2]
    assert len({ret for ret, _ in returns["ray", 2]}) > 1  # the candidates differ


def test_status_counts_a_submitted_cell_as_queued_until_its_process_starts(toy: Path) -> None:
    """One core, two cells: the progress line says 1 running and 1 queued, not 2 running; a log left by an
    earlier sweep does not count as a start."""
    from tools.sweep.runner import LOG_NAME, Status
    cells = load_grid("toypaper", "two", toy)
    status = Status(cells, toy / "runs", retries=0)
    for i, cell in enumerate(cells):
        log = cell.run_dir(status.runs) / LOG_NAME
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n=== attempt 1 on host at t: python ...\n")  # an earlier sweep's attempt
        status.running[i] = (cell, 1)
        status.logged[cell] = 1
    assert "running 0, queued 2" in status.line()
    with open(cells[0].run_dir(status.runs) / LOG_NAME, "a") as log:
        log.write("\n=== attempt 1 on host at t: python ...\n")  # this sweep's process of the first cell started
    assert "running 1, queued 1" in status.line()
