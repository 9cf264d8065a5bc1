"""Run records: one directory per run, one format for every paper (see tools/README.md).

    run = Run.create("dreamer_v3", "dmc_walker_walk", "small", seed=0, config=config)
    run.log_metrics(step, {"loss/model": 1.2, "fps": 340})
    run.log_episode(step, ret=512.0, length=500, mode="train")
    run.save_checkpoint({...}); state = run.load_checkpoint()   # None on a fresh run
    run.finish(step)
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from tools import checkpoint

ROOT = Path(__file__).resolve().parent.parent
VERSIONED_PACKAGES = ("torch", "numpy", "gymnasium", "ale-py", "dm-control", "mujoco", "vizdoom", "crafter",
                      "cma")
# keys a resumed run may change: budgets and bookkeeping, not the experiment (see Run.create)
SAFE_TO_CHANGE = ("run.steps", "run.log_every", "run.save_every", "run.eval_every", "run.eval_eps",
                  "run.video_every", "device", "threads", "compile")
MODES = ("train", "eval", "cut")
_LOCKS: dict[str, int] = {}  # run directory -> file descriptor holding its lock in this process


class RunDirError(ValueError):
    """A run directory that cannot be used: not a directory, not writable, locked by another process, or
    resumed with a different configuration."""


def default_logdir(paper: str, task: str, preset: str, seed: int) -> Path:
    return Path("runs") / paper / task / f"{preset}_seed{seed}"


class Run:
    """A run directory: resolved config, metrics, scores, TensorBoard, checkpoints, videos, summary."""

    def __init__(self, directory: str | Path, paper: str, task: str, preset: str, seed: int,
                 method: str | None = None, budget_unit: str = "env_steps") -> None:
        self.dir = Path(directory)
        self.paper, self.task, self.preset, self.seed = paper, task, preset, seed
        self.method = method or paper
        self.budget_unit = budget_unit
        self.start_time = time.time()
        self._writer = None
        try:
            for sub in ("checkpoints", "videos"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunDirError(f"logdir {self.dir} is not a directory (a file is in the way)") from None
        except PermissionError:
            raise RunDirError(f"logdir {self.dir} is not writable") from None
        if not os.access(self.dir, os.W_OK):
            raise RunDirError(f"logdir {self.dir} is not writable")
        self._lock()
        self._remove_stale_temp_files()
        self.previous_wall_time = self._read_summary().get("wall_time_s", 0.0)

    def _lock(self) -> None:
        """One process per run directory: a second one stops here instead of interleaving records."""
        key = str(self.dir.resolve())
        if key in _LOCKS:
            return
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"run directory {self.dir} is in use by another process (wait for it to finish, "
                              "or choose another --logdir)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _LOCKS[key] = fd

    def release(self) -> None:
        """Give up the directory lock (also released when the process exits)."""
        fd = _LOCKS.pop(str(self.dir.resolve()), None)
        if fd is not None:
            os.close(fd)

    def _remove_stale_temp_files(self) -> None:
        """Temp files of writes that a kill interrupted (checkpoints can be gigabytes at the paper sizes)."""
        for folder in (self.dir, self.dir / "checkpoints"):
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)

    @classmethod
    def create(cls, paper: str, task: str, preset: str, seed: int, config: DictConfig | dict | None = None,
               logdir: str | Path | None = None, strict: bool = False,
               safe_keys: tuple[str, ...] = SAFE_TO_CHANGE, added_keys: tuple[str, ...] = (),
               **kwargs: Any) -> "Run":
        """Open (or resume) the run directory and write the resolved config. Changed keys of a resumed run are
        recorded in ``config_changes.jsonl``; with ``strict``, a change outside ``safe_keys`` is refused
        (``RunDirError`` naming the keys) and ``config.yaml`` is left as it was. ``added_keys``, keys a later
        version of the code added, may appear in a run that was started without them (not change after)."""
        directory = Path(logdir) if logdir else default_logdir(paper, task, preset, seed)
        run = cls(directory, paper, task, preset, seed, **kwargs)
        if config is not None:
            container = OmegaConf.create(config) if isinstance(config, dict) else config
            run._check_config(OmegaConf.to_container(container, resolve=True), strict, safe_keys, added_keys)
            _atomic_write(run.dir / "config.yaml", OmegaConf.to_yaml(container, resolve=True))
        return run

    def _check_config(self, new: dict, strict: bool, safe_keys: tuple[str, ...], added_keys: tuple[str, ...]) -> None:
        path = self.dir / "config.yaml"
        if not path.exists():
            return
        old = _flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
        new = _flatten(new)
        changed = {key: (old.get(key), new.get(key)) for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
        if not changed:
            return
        unsafe = sorted(key for key in changed if key not in safe_keys and not (key in added_keys and key not in old))
        if strict and unsafe:
            self.release()
            details = ", ".join(f"{key}: {changed[key][0]!r} -> {changed[key][1]!r}" for key in unsafe[:6])
            raise RunDirError(f"{self.dir} was started with another config ({details}); resume with the same "
                              f"settings (only {', '.join(safe_keys)} may change) or choose another --logdir")
        for key, (before, after) in sorted(changed.items()):
            _append_jsonl(self.dir / "config_changes.jsonl", {"time": time.time(), "key": key, "old": before,
                                                              "new": after})

    # ---- logs ------------------------------------------------------------------------------------
    @property
    def writer(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.dir / "tb"))
        return self._writer

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), "time": round(time.time() - self.start_time + self.previous_wall_time, 3)}
        for name, value in metrics.items():
            value = float(value)
            record[name] = value
            self.writer.add_scalar(name, value, step)
        _append_jsonl(self.dir / "metrics.jsonl", record)

    def log_episode(self, step: int, ret: float, length: int, mode: str = "train", **extra: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"episode mode must be 'train' or 'eval' (or 'cut': an episode a kill interrupted), "
                             f"got {mode!r}")
        record = {"step": int(step), "return": float(ret), "length": int(length), "mode": mode,
                  "time": round(time.time() - self.start_time + self.previous_wall_time, 3), **extra}
        _append_jsonl(self.dir / "scores.jsonl", record)
        self.writer.add_scalar(f"episode/{mode}_return", float(ret), step)
        self.writer.add_scalar(f"episode/{mode}_length", int(length), step)

    def episodes(self, mode: str | None = None) -> list[dict[str, Any]]:
        return [row for row in read_jsonl(self.dir / "scores.jsonl") if mode is None or row.get("mode") == mode]

    # ---- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.dir / "checkpoints" / "latest.pt"

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        checkpoint.save_checkpoint(self.checkpoint_path, state)
        self._write_summary(step=state.get("step"), finished=False)

    def load_checkpoint(self, map_location: str = "cpu") -> dict[str, Any] | None:
        if not self.checkpoint_path.exists():
            return None
        return checkpoint.load_checkpoint(self.checkpoint_path, map_location)

    # ---- summary ---------------------------------------------------------------------------------
    def finish(self, budget: int, mode: str | None = None, last: int = 10, **extra: Any) -> dict[str, Any]:
        """Write the final summary: mean and std of the last ``last`` episodes of ``mode``
        (eval episodes if there are any, else train episodes)."""
        if mode is None:
            mode = "eval" if self.episodes("eval") else "train"
        returns = [row["return"] for row in self.episodes(mode)][-last:]
        summary = self._write_summary(step=budget, finished=True, mode=mode, returns=returns, **extra)
        self.close()
        return summary

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _read_summary(self) -> dict[str, Any]:
        path = self.dir / "summary.json"
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except json.JSONDecodeError:
            return {}

    def _write_summary(self, step: int | None, finished: bool, mode: str | None = None,
                       returns: list[float] | None = None, **extra: Any) -> dict[str, Any]:
        summary = self._read_summary()
        summary.update(paper=self.paper, task=self.task, preset=self.preset, seed=self.seed, method=self.method,
                       budget_unit=self.budget_unit, finished=finished,
                       wall_time_s=round(time.time() - self.start_time + self.previous_wall_time, 1),
                       versions=versions(), commit=git_commit())
        if step is not None:
            summary["budget"] = int(step)
        if returns is not None:
            mean = sum(returns) / len(returns) if returns else float("nan")
            std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns)) if returns else float("nan")
            summary.update(score=mean, score_std=std, episodes=len(returns), mode=mode)
        summary.update(extra)
        _atomic_write(self.dir / "summary.json", json.dumps(summary, indent=1, default=str))
        return summary


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a jsonl file, skipping a truncated last line (a run killed mid-write). Other bad lines raise."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                print(f"warning: {path}: skipping truncated last line {number}", file=sys.stderr)
                continue
            raise ValueError(f"{path}:{number}: not valid json") from None
    return rows


def iter_runs(root: str | Path = "runs") -> Iterator[Path]:
    """Every run directory (one holding a summary.json or scores.jsonl) under ``root``."""
    root = Path(root)
    seen = set()
    for marker in ("summary.json", "scores.jsonl"):
        for path in sorted(root.rglob(marker)):
            if path.parent not in seen:
                seen.add(path.parent)
                yield path.parent


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one row. A last line cut by a kill (no newline) was never written whole: it is removed first,
    so the new row does not fuse with it."""
    if path.exists() and path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.truncate(handle.seek(0) or path.read_bytes().rfind(b"\n") + 1)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
