"""On-disk data of a run: recorded rollouts (one compressed .npz each) and the encoded series.

Every file is written through ``atomic_target``: a temporary name unique to the writer (pid + random), renamed
over the target when complete, so a killed writer leaves no half file and two writers never share a temp file.
"""
from __future__ import annotations

import json
import os
import uuid
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tools.runs import read_jsonl

ROLLOUT_KEYS = ("frames", "actions", "rewards", "dones")
SERIES_KEYS = ("mu", "logvar", "actions", "dones", "lengths")
NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A unique temporary path beside ``path`` (same suffix, for writers that pick the format from it), renamed
    over ``path`` when the block ends, removed if it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temps(directory: Path) -> None:
    """Delete temp files of ``atomic_target`` whose writer process is gone (killed mid-write)."""
    for tmp in directory.glob(".*.tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[0].rsplit(".", 1)[-1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_json(path: Path, value: Any) -> None:
    with atomic_target(path) as tmp:
        tmp.write_text(json.dumps(value))


def drop_rows_after(path: Path, key: str, last: int) -> None:
    """Remove the jsonl rows whose ``key`` is above ``last``: a stage killed between logging an epoch (or a
    generation) and checkpointing it logs that epoch again when it resumes from the checkpoint."""
    rows = read_jsonl(path)
    kept = [row for row in rows if row.get(key, last) <= last]
    if len(kept) < len(rows):
        with atomic_target(path) as tmp:
            tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))


def rollout_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("rollout_*[0-9].npz"))


def _load_npz(path: Path, keys: tuple[str, ...], stage: str, only: tuple[str, ...] | None = None) -> dict:
    """The arrays ``only`` (default: all ``keys``) of an .npz that must hold ``keys``; a ValueError naming the
    file and the stage that writes it again if it is truncated or incomplete."""
    try:
        with np.load(path) as data:
            missing = [key for key in keys if key not in data.files]
            if missing:
                raise KeyError(f"no {', '.join(missing)}")
            return {key: data[key] for key in only or keys}
    except NPZ_ERRORS as error:
        detail = str(error).strip("'")
        raise ValueError(f"corrupt file {path}: {type(error).__name__}: {detail} "
                         f"(delete it and run the '{stage}' stage again)") from None


def save_rollout(path: Path, episode: dict[str, np.ndarray]) -> None:
    with atomic_target(path) as tmp:
        np.savez_compressed(tmp, **{key: episode[key] for key in ROLLOUT_KEYS})


def load_rollout(path: Path) -> dict[str, np.ndarray]:
    return _load_npz(path, ROLLOUT_KEYS, "collect")


def rollout_length(path: Path) -> int:
    return len(_load_npz(path, ROLLOUT_KEYS, "collect", only=("dones",))["dones"])


def collect_lengths(data_dir: Path) -> list[int]:
    """The length of every rollout collected so far, kept or dropped, from what is on disk: the collect log
    (one line per finished rollout), plus any rollout file the log misses (a kill between the worker's write
    and the log line). A run directory of an older version has only collect_stats.json (written at the end)."""
    log_path, legacy = data_dir / "collect_log.jsonl", data_dir / "collect_stats.json"
    if not log_path.exists() and legacy.exists():
        return [int(n) for n in json.loads(legacy.read_text())["lengths"]]
    log = read_jsonl(log_path)
    logged = {row["rollout"] for row in log if row["kept"]}
    return [int(row["length"]) for row in log] + [rollout_length(path) for path in rollout_paths(data_dir / "rollouts")
                                                  if rollout_index(path) not in logged]


def open_collect_log(data_dir: Path) -> Path:
    """The collect log, ready to append to: a line cut by a kill is dropped (a kept rollout's file still
    counts), and an older version's collect_stats.json is carried over once (its dropped frames as one row)."""
    log_path, legacy = data_dir / "collect_log.jsonl", data_dir / "collect_stats.json"
    if log_path.exists():
        text = log_path.read_text()
        if text and not text.endswith("\n"):
            with atomic_target(log_path) as tmp:
                tmp.write_text(text[:text.rfind("\n") + 1])
    elif legacy.exists():
        rows = [{"rollout": rollout_index(path), "length": rollout_length(path), "kept": True}
                for path in rollout_paths(data_dir / "rollouts")]
        dropped = sum(collect_lengths(data_dir)) - sum(row["length"] for row in rows)
        rows.append({"rollout": -1, "length": dropped, "kept": False})
        with atomic_target(log_path) as tmp:
            tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return log_path


def rollout_index(rollout: Path) -> int:
    return int(rollout.stem.split("_")[1])


def frame_batches(paths: list[Path], batch_size: int, rng: np.random.Generator,
                  files_per_chunk: int = 64) -> Iterator[np.ndarray]:
    """Shuffled uint8 frame batches (B, 64, 64, 3): files in random order, frames shuffled within chunks of
    ``files_per_chunk`` rollouts (all frames of 10k rollouts do not fit in memory at once)."""
    order = rng.permutation(len(paths))
    for start in range(0, len(order), files_per_chunk):
        frames = np.concatenate([load_rollout(paths[i])["frames"] for i in order[start:start + files_per_chunk]])
        frames = frames[rng.permutation(len(frames))]
        for begin in range(0, len(frames) - batch_size + 1, batch_size):
            yield frames[begin:begin + batch_size]


def save_series(path: Path, mus: list[np.ndarray], logvars: list[np.ndarray], actions: list[np.ndarray],
                dones: list[np.ndarray]) -> None:
    """Every rollout's (mu, logvar) as float16 (as the authors' series.npz), concatenated, with lengths."""
    with atomic_target(path) as tmp:
        np.savez_compressed(tmp, mu=np.concatenate(mus).astype(np.float16),
                            logvar=np.concatenate(logvars).astype(np.float16),
                            actions=np.concatenate(actions).astype(np.float32), dones=np.concatenate(dones),
                            lengths=np.array([len(m) for m in mus]))


def series_count(path: Path) -> int:
    """How many rollouts a series holds."""
    return len(_load_npz(path, SERIES_KEYS, "series", only=("lengths",))["lengths"])


def load_series(path: Path) -> list[dict[str, np.ndarray]]:
    """The series as a list of episodes {mu, logvar, actions, dones} (float32)."""
    arrays = _load_npz(path, SERIES_KEYS, "series")
    bounds = np.concatenate([[0], np.cumsum(arrays.pop("lengths"))])
    if bounds[-1] != len(arrays["mu"]):
        raise ValueError(f"corrupt file {path}: lengths add up to {bounds[-1]} frames, mu has {len(arrays['mu'])} "
                         "(delete it and run the 'series' stage again)")
    return [{key: value[a:b].astype(np.float32) if key != "dones" else value[a:b]
             for key, value in arrays.items()} for a, b in zip(bounds[:-1], bounds[1:])]
