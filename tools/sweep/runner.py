"""Cells as Ray tasks: each runs the paper's command line in a process of its own (logged to ``sweep.log`` in
its run directory), so a crashing cell cannot take the sweep down; failures are retried a bounded number of
times (the paper's command resumes from the run's checkpoint) while the other cells go on."""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from tools.sweep.grids import Cell, is_finished, last_step

LOG_NAME = "sweep.log"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_cell(argv: list[str], run_dir: str, cwd: str, threads: int, attempt: int) -> int:
    """The Ray task: run ``python <argv>`` in ``cwd``, output appended to ``<run_dir>/sweep.log``; returns the
    exit status. The child dies with this worker (a cancelled or killed sweep leaves no cell running)."""
    log = Path(run_dir) / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join(filter(None, [cwd, os.environ.get("PYTHONPATH")])),
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}
    with open(log, "a") as handle:
        handle.write(f"\n=== attempt {attempt} on {os.uname().nodename} at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
                     f"python {' '.join(argv)}\n")
        handle.flush()
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        process = subprocess.Popen([sys.executable, *argv], cwd=cwd, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, preexec_fn=preexec)
        try:
            return process.wait()
        finally:
            if process.poll() is None:  # the task was cancelled
                process.kill()
                process.wait()


@dataclass
class Status:
    """Where every cell of the grid stands."""
    cells: list[Cell]
    runs: Path
    retries: int
    done: list[Cell] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    failed: dict[Cell, int] = field(default_factory=dict)  # cell -> failures so far
    given_up: list[Cell] = field(default_factory=list)
    running: dict[object, tuple[Cell, int]] = field(default_factory=dict)  # ray ref -> (cell, attempt)
    start_steps: dict[Cell, int] = field(default_factory=dict)
    logged: dict[Cell, int] = field(default_factory=dict)  # attempts in the cell's log when it was last submitted
    start_time: float = field(default_factory=time.time)

    def steps_per_second(self) -> float:
        """Env steps per second over the cells this sweep ran (their last metrics rows), since it started."""
        ran = [cell for cell, _ in self.running.values()] + [c for c in self.done if c not in self.skipped]
        moved = sum(max(0, last_step(c.run_dir(self.runs)) - self.start_steps.get(c, 0)) for c in ran)
        return moved / max(time.time() - self.start_time, 1e-9)

    def started(self) -> int:
        """Submitted cells whose process has started: their attempt line is in the log (the rest wait for a core)."""
        return sum(_attempts(cell.run_dir(self.runs)) > self.logged[cell] for cell, _ in self.running.values())

    def line(self) -> str:
        started = self.started()
        return (f"done {len(self.done)}/{len(self.cells)} (skipped {len(self.skipped)}), running {started}, "
                f"queued {len(self.running) - started}, failed {len(self.given_up)} (retrying {self.retrying()}), "
                f"{self.steps_per_second():.1f} env steps/s")

    def retrying(self) -> int:
        return sum(1 for c in self.failed if c not in self.given_up and c not in self.done)


def sweep(cells: list[Cell], runs: Path, cwd: Path, retries: int, poll_s: float = 5.0) -> Status:
    """Run the unfinished cells as Ray tasks (Ray already initialised); returns the final status."""
    import ray

    remote = ray.remote(run_cell)
    status = Status(cells, runs, retries)
    for cell in cells:
        run_dir = cell.run_dir(runs)
        if is_finished(cell, run_dir):
            status.done.append(cell)
            status.skipped.append(cell)
        else:
            status.start_steps[cell] = last_step(run_dir)
            _submit(remote, status, cell, 1, cwd)
    bar = tqdm(total=len(cells), initial=len(status.done), unit="cell", dynamic_ncols=True, desc="sweep")
    bar.set_postfix_str(status.line())
    while status.running:
        ready, _ = ray.wait(list(status.running), num_returns=1, timeout=poll_s)
        for ref in ready:
            cell, attempt = status.running.pop(ref)
            _finished(remote, status, cell, attempt, _result(ray, ref), cwd, bar)
        bar.set_postfix_str(status.line())
    bar.close()
    return status


def _attempts(run_dir: Path) -> int:
    """Attempts started in this run directory (over every sweep that ran it: the log is appended to)."""
    log = run_dir / LOG_NAME
    return log.read_text(errors="replace").count("\n=== attempt ") if log.exists() else 0


def _submit(remote, status: Status, cell: Cell, attempt: int, cwd: Path) -> None:
    run_dir = cell.run_dir(status.runs).resolve()
    ref = remote.options(num_cpus=cell.cpus, max_retries=0).remote(cell.argv(run_dir), str(run_dir), str(cwd),
                                                                   cell.cpus, attempt)
    status.running[ref] = (cell, attempt)
    status.logged[cell] = _attempts(run_dir)


def _result(ray, ref) -> int | str:
    try:
        return ray.get(ref)
    except Exception as error:  # the worker or its node died: a failure like any other, retried
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def _finished(remote, status: Status, cell: Cell, attempt: int, result: int | str, cwd: Path, bar: tqdm) -> None:
    run_dir = cell.run_dir(status.runs)
    if result == 0 and is_finished(cell, run_dir):
        status.done.append(cell)
        bar.update(1)
        return
    why = f"exit {result}" if isinstance(result, int) else result
    if result == 0:
        why = "exit 0 but summary.json does not say finished"
    status.failed[cell] = status.failed.get(cell, 0) + 1
    log = run_dir / LOG_NAME
    if attempt <= status.retries:
        bar.write(f"failed: {cell.name} ({why}), attempt {attempt}; log {log}; retrying")
        _submit(remote, status, cell, attempt + 1, cwd)
    else:
        bar.write(f"failed: {cell.name} ({why}), attempt {attempt}; log {log}; giving up")
        status.given_up.append(cell)
