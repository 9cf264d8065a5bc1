"""The committed `small` records still come from their commands. Each case reruns a record's command in a fresh
directory until the first curve points after learning began, and those points must equal the record's bit for bit:
a change to what a learner computes, float rounding included, fails here (the DreamerV3 records of 2026-11-22 had
drifted this way unnoticed). Then rerun the paper's records (its README's command) or revert the change.

Bitwise equality holds on the machine the records were made on (2 cores of an AMD EPYC with AVX-512, one torch
thread); on another CPU the kernels round differently, so these tests skip there."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tools.results.ours import bin_curve, nice_width

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "results" / "runs"
TASK = "dmcproprio_cartpole_swingup"
CASES = [  # (paper, record file, curve points compared: the first ones after updates began)
    ("dreamer_v3", "dreamer_v3_small_seed0.json", 6),  # training episodes 1-6, updates from episode 5
    ("dreamer_v2", "dreamer_v2_small_seed0.json", 2),  # evaluations at 0 and 5K env steps
    ("dreamer_v1", "Dreamer_small_seed0.json", 2),     # evaluations at 0 and 5K env steps (updates from 5K)
]  # PlaNet's record has points at 1K, 15K and 30K only: its first learned one is half the run away


def records_machine() -> bool:
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "AMD EPYC" in cpu and torch.backends.cpu.get_cpu_capability() == "AVX512"


def curve_points(scores: Path, record: dict) -> list[float]:
    """The record's curve so far (`ys`), binned as the exporter bins the finished run (`tools.results`), up to
    the last bin that is complete (an episode ended after its right edge)."""
    rows = [json.loads(line) for line in scores.read_text().splitlines()] if scores.exists() else []
    chosen = [row for row in rows if row["mode"] == record["mode"]]
    xs, ys = bin_curve([row["step"] for row in chosen], [row["return"] for row in chosen],
                       width=nice_width(record["budget"]))
    last = max((row["step"] for row in rows), default=0)
    return [y for x, y in zip(xs, ys) if x < last]


def rerun_until(paper: str, record: dict, points: int, logdir: Path, timeout: float = 400) -> list[float]:
    cmd = [sys.executable, "-m", paper, "train", "--task", record["task"], "--preset", record["preset"],
           "--seed", str(record["seed"]), "--logdir", str(logdir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    start, got = time.time(), []
    try:
        while len(got) < points and proc.poll() is None and time.time() - start < timeout:
            time.sleep(0.5)
            got = curve_points(logdir / "scores.jsonl", record)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert len(got) >= points, f"{paper}: {len(got)} of {points} curve points in {timeout} s\n{err[-2000:]}"
    return got[:points]


@pytest.mark.slow
@pytest.mark.skipif(not records_machine(), reason="bitwise reproduction holds only on the records' machine")
@pytest.mark.parametrize("paper,name,points", CASES)
def test_small_record_reproduces_its_first_learned_points(paper, name, points, tmp_path):
    record = json.loads((RECORDS / paper / TASK / name).read_text())
    got = rerun_until(paper, record, points, tmp_path / "run")
    assert got == record["ys"][:points], (f"{paper} {name}: the command no longer reproduces the record "
                                          f"(got {got}, record {record['ys'][:points]}): rerun the records or revert")
