"""What the driver writes: metric rows, evaluation episodes, open-loop videos, and the clean-up that keeps the
records exactly what ran (rows after the checkpoint dropped on resume, nothing non-finite written silently)."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools.runs import Run, read_jsonl

RECORD_FILES = ("metrics.jsonl", "scores.jsonl")


class DivergenceError(ValueError):
    """A non-finite loss, gradient norm or metric: the run stops before it can checkpoint NaN weights."""


def check_finite(metrics: dict[str, float], step: int, update: int) -> None:
    bad = sorted(name for name, value in metrics.items() if not math.isfinite(value))
    if bad:
        values = ", ".join(f"{name}={metrics[name]}" for name in bad[:4])
        raise DivergenceError(f"training diverged at env step {step} (update {update}): {values}; the last "
                              "checkpoint is from before this and is kept (lower the learning rate or check the data)")


def drop_records_after(run_dir: Path, step: int, cut_at: int | None = None) -> None:
    """A run killed after its last checkpoint logged steps it will now redo: keep rows with ``step <= step``
    (``step < 0``: keep none, for a run killed before its first checkpoint). ``cut_at``: also drop the "cut"
    episode rows of an earlier resume from that same checkpoint (they are logged again)."""
    for name in RECORD_FILES:
        path = run_dir / name
        rows = read_jsonl(path)
        kept = [row for row in rows if row["step"] <= step and not (row.get("mode") == "cut" and row["step"] == cut_at)]
        if len(kept) < len(rows):
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
            os.replace(tmp, path)


class MetricLog:
    """Means of the train metrics since the last row, plus rates; non-finite values are kept (as NaN/inf)."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}
        self.since = (time.time(), 0, 0)

    def add(self, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.values.setdefault(key, []).append(float(value))

    def write(self, run: Run, step: int, updates: int, extra: dict[str, Any]) -> None:
        start, step0, updates0 = self.since
        elapsed = max(time.time() - start, 1e-6)
        row = {f"train/{k}": float(np.mean(v)) for k, v in self.values.items() if v}
        row.update({"fps/env": (step - step0) / elapsed, "fps/updates": (updates - updates0) / elapsed,
                    "train/updates": updates, **extra})
        run.log_metrics(step, row)
        self.values.clear()
        self.since = (time.time(), step, updates)

    def reset_clock(self, step: int, updates: int) -> None:
        self.since = (time.time(), step, updates)


def write_video(agent, replay, run: Run, step: int, batch: int = 4, length: int = 50, context: int = 5) -> None:
    """Open-loop prediction video (``context`` observed steps as the papers' figures, then imagination): rows
    [truth | prediction | error], one panel per sequence; saved as a gif and in TensorBoard."""
    if not hasattr(agent, "open_loop") or len(replay) < length:
        return
    try:
        data = replay.sample(batch, length)
    except ValueError:  # no sequence of that length yet (e.g. episodes shorter than it)
        return
    data["is_first"][:, 0] = True
    import imageio.v2 as imageio
    for key, video in agent.open_loop(data, context=context).items():
        frames = np.concatenate(list(video), 2)  # (T, H, B*3W, C) per-sequence panels side by side
        if frames.shape[-1] == 1:
            frames = frames.repeat(3, -1)
        imageio.mimsave(run.dir / "videos" / f"openloop_{key}_{step}.gif", list(frames), duration=0.1)
        run.writer.add_images(f"openloop/{key}", frames[::5], step, dataformats="NHWC")  # every 5th frame


def crafter_score(episodes: list[dict]) -> float | None:
    """Crafter score (Hafner 2021): geometric mean over achievements of the success rates in percent,
    exp(mean(log(1 + rate))) - 1, a success being an achievement unlocked at least once in an episode."""
    achievements = [row["achievements"] for row in episodes if "achievements" in row]
    if not achievements:
        return None
    names = sorted(achievements[0])
    rates = np.array([100 * np.mean([a.get(name, 0) > 0 for a in achievements]) for name in names])
    return float(np.exp(np.mean(np.log(1 + rates))) - 1)
