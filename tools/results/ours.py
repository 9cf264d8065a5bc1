"""Our scores: a run directory (tools/README.md) -> a small record in the authors' curve format.

``results/runs/<paper>/<task>/<method>_<preset>_seed<N>.json`` holds ``{task, method, seed, xs, ys}`` plus
metadata. ``xs``/``ys``: the run's episodes of one mode (eval if the run has eval episodes, else train),
binned like the authors' files: about 50 equal bins of a round width over the budget, each labelled by its
right edge, ``ys`` the mean return of the episodes that ended in it; empty bins are left out.

A record is written only when asked (``python -m tools.results --export RUN_DIR``), and never over the record
of a different run (budget, commit or config hash differ) unless ``replace`` is given.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.results.metrics import CRAFTER_ACHIEVEMENTS, mean_and_median, mean_std
from tools.results.report import warn
from tools.runs import read_jsonl

LAST_EPISODES = 10  # the final score is over the last 10 episodes of the mode, as Run.finish computes it
SUMMARY_ONLY = {"versions", "wall_time_s"}  # summary fields kept out of the record
RECORDS = Path(__file__).resolve().parents[2] / "results" / "runs"  # the committed records
SAME_RUN = ("budget", "commit", "config_hash")  # two records of one file name come from the same run iff these agree
UNITS = ("env_steps", "frames")


class RecordError(ValueError):
    """A run directory or record that cannot give a score."""


@dataclass
class Record:
    """One run of ours: the exported json, loaded."""
    paper: str
    task: str
    method: str
    preset: str
    seed: int
    budget: int
    budget_unit: str
    mode: str
    score: float
    score_std: float
    episodes: int
    xs: list[float]
    ys: list[float]
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def nice_width(span: float, bins: int = 50) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that splits ``span`` into at most ``bins`` bins."""
    raw = max(span, 1) / bins
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def bin_curve(steps: list[int], returns: list[float], bins: int = 50, width: float | None = None
              ) -> tuple[list[float], list[float]]:
    """(bin right edges, mean return per bin); ``width`` defaults to the run's own (``nice_width`` of its last
    step), a partial run gets its finished run's by passing it."""
    if not steps:
        return [], []
    width = width or nice_width(max(steps), bins)
    sums: dict[int, list[float]] = {}
    for step, ret in zip(steps, returns):
        sums.setdefault(max(1, math.ceil(step / width)), []).append(ret)
    edges = sorted(sums)
    return [e * width for e in edges], [sum(sums[e]) / len(sums[e]) for e in edges]


def _path_fields(run_dir: Path) -> dict[str, Any]:
    """paper, task, preset, seed read off the default layout runs/<paper>/<task>/<preset>_seed<N>/."""
    match = re.fullmatch(r"(.+)_seed(\d+)", run_dir.name)
    if not match or len(run_dir.parts) < 3:
        return {}
    return {"paper": run_dir.parent.parent.name, "task": run_dir.parent.name, "preset": match[1],
            "seed": int(match[2])}


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """The export record of a run directory; RecordError naming the file if it gives no score."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: no such run directory")
    summary_path, scores_path = run_dir / "summary.json", run_dir / "scores.jsonl"
    summary: dict[str, Any] = {}
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as error:
            raise RecordError(f"{summary_path}: not valid json ({error})") from None
        if not isinstance(summary, dict):
            raise RecordError(f"{summary_path}: not a json object")
    meta = {**_path_fields(run_dir), **{k: v for k, v in summary.items() if v is not None}}
    missing = [k for k in ("paper", "task", "preset", "seed") if k not in meta]
    if missing:
        raise RecordError(f"{run_dir}: no summary.json and not in runs/<paper>/<task>/<preset>_seed<N>/ layout "
                          f"(missing {', '.join(missing)})")
    try:
        episodes = read_jsonl(scores_path)
    except ValueError as error:
        raise RecordError(str(error)) from None
    bad = [i for i, ep in enumerate(episodes, 1) if not _valid_episode(ep)]
    if bad:
        warn(f"{scores_path}: skipping {len(bad)} episode line(s) without a numeric step/return (first: line {bad[0]})")
        episodes = [ep for ep in episodes if _valid_episode(ep)]
    mode = summary.get("mode") or ("eval" if any(ep.get("mode") == "eval" for ep in episodes) else "train")
    chosen = [ep for ep in episodes if ep.get("mode", "train") == mode]
    if not chosen and summary.get("score") is None:
        raise RecordError(f"{scores_path if scores_path.exists() else run_dir}: no {mode} episodes and no score "
                          "in summary.json")
    xs, ys = bin_curve([int(ep["step"]) for ep in chosen], [float(ep["return"]) for ep in chosen])
    if summary.get("score") is not None:
        score, score_std, counted = summary["score"], summary.get("score_std"), summary.get("episodes")
        if not _finite(score):
            raise RecordError(f"{summary_path}: score is {score!r}, not a finite number ({mode} episodes: "
                              f"{len(chosen)}); nothing exported")
    else:  # a run stopped before Run.finish
        score, score_std, counted = mean_std([float(ep["return"]) for ep in chosen][-LAST_EPISODES:])
    median = score_median(chosen, score, counted)
    budget = summary.get("budget", max((int(ep["step"]) for ep in episodes), default=0))
    if not _finite(budget):
        raise RecordError(f"{summary_path}: budget is {budget!r}, not a number; nothing exported")
    record = {k: v for k, v in meta.items() if k not in SUMMARY_ONLY}
    record.update(task=meta["task"], method=meta.get("method") or meta["paper"], seed=int(meta["seed"]),
                  xs=xs, ys=ys, budget=int(budget), budget_unit=meta.get("budget_unit", "env_steps"),
                  mode=mode, score=float(score), score_std=None if score_std is None else float(score_std),
                  episodes=counted, episodes_total=len(chosen), finished=bool(summary.get("finished", False)),
                  commit=summary.get("commit", "unknown"), config_hash=config_hash(run_dir))
    if median is not None:
        record["score_median"] = median
    crafter = _crafter_counts(episodes, scores_path)
    if crafter:
        record["crafter"] = crafter
    bad_numbers = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad_numbers:
        raise RecordError(f"{summary_path}: {', '.join(bad_numbers)} not a finite number; nothing exported")
    _check_scale(run_dir, record)
    return record


def score_median(chosen: list[dict[str, Any]], score: float, counted: Any) -> float | None:
    """The median return of the episodes behind ``score`` (the last ``counted`` of the mode), or None where
    those episodes are not in scores.jsonl (their mean is not the score)."""
    if not isinstance(counted, int) or not 0 < counted <= len(chosen):
        return None
    mean, median = mean_and_median([float(ep["return"]) for ep in chosen[-counted:]])
    return float(median) if math.isclose(mean, float(score), rel_tol=1e-9, abs_tol=1e-9) else None


def config_hash(run_dir: Path) -> str:
    """A short hash of the run's resolved config.yaml (key order and formatting do not matter)."""
    path = run_dir / "config.yaml"
    if not path.exists():
        return "none"
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RecordError(f"{path}: not valid yaml ({str(error).splitlines()[0]})") from None
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _valid_episode(ep: Any) -> bool:
    return isinstance(ep, dict) and _finite(ep.get("step")) and _finite(ep.get("return"))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _crafter_counts(episodes: list[dict], where: Path) -> dict[str, Any] | None:
    """Per achievement, how many training episodes unlocked it (the Crafter paper's success rates are over
    all training episodes within the budget); eval episodes if the run has no training episodes."""
    with_ach = [ep for ep in episodes if isinstance(ep.get("achievements"), dict)]
    if not with_ach:
        return None
    mode = "train" if any(ep.get("mode", "train") == "train" for ep in with_ach) else "eval"
    chosen = [ep["achievements"] for ep in with_ach if ep.get("mode", "train") == mode]
    unknown = sorted({k for ach in chosen for k in ach} - set(CRAFTER_ACHIEVEMENTS))
    if unknown:
        warn(f"{where}: unknown Crafter achievements ignored: {', '.join(unknown)}")
    return {"mode": mode, "episodes": len(chosen),
            "unlocked": {name: sum(1 for ach in chosen if ach.get(name, 0) >= 1) for name in CRAFTER_ACHIEVEMENTS}}


def record_path(record: dict[str, Any], out_root: Path) -> Path:
    name = f"{record['method']}_{record['preset']}_seed{record['seed']}"
    if record.get("temperature") is not None:  # Ha2018 Doom: one run per temperature
        name += f"_temp{record['temperature']}"
    return out_root / record["paper"] / record["task"] / f"{name}.json"


def export_run(run_dir: str | Path, out_root: str | Path = RECORDS, replace: bool = False) -> Path:
    """Write the run's record to ``<out_root>/<paper>/<task>/<method>_<preset>_seed<N>.json``; return its path.
    Raises RecordError (naming the file) for a run that gives no score, and for an existing record of a
    different run (another budget, commit or config) unless ``replace``. Exporting the same run again is
    harmless."""
    record = read_run(run_dir)
    path = record_path(record, Path(out_root))
    if path.exists() and not replace:
        _check_same_run(path, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(record, indent=1, default=str, allow_nan=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_same_run(path: Path, record: dict[str, Any]) -> None:
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        old = None
    if not isinstance(old, dict):
        raise RecordError(f"{path}: exists and is not a valid record; not replaced (pass --replace to overwrite it)")
    differ = [f"{key} {old.get(key, 'unrecorded')} -> {record[key]}" for key in SAME_RUN
              if old.get(key) != record[key]]
    if differ:
        raise RecordError(f"{path}: holds the record of a different run ({', '.join(differ)}); not replaced "
                          "(pass --replace to overwrite it, or --out DIR to write elsewhere)")


REQUIRED = {"paper": str, "task": str, "method": str, "preset": str, "seed": int, "budget": int,
            "budget_unit": str, "score": (int, float), "xs": list, "ys": list}


def load_record(path: Path) -> Record:
    """A record written by export_run; RecordError naming the file if it is malformed."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RecordError(f"{path}: not valid json ({error})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not a json object")
    wrong = [k for k, kind in REQUIRED.items() if not isinstance(data.get(k), kind) or isinstance(data.get(k), bool)]
    if wrong:
        raise RecordError(f"{path}: missing or mistyped field(s) {', '.join(wrong)}")
    if len(data["xs"]) != len(data["ys"]):
        raise RecordError(f"{path}: xs and ys differ in length ({len(data['xs'])} vs {len(data['ys'])})")
    if not _finite(data["score"]):
        raise RecordError(f"{path}: score is not a finite number")
    _check_scale(path, data)
    known = set(REQUIRED) | {"mode", "score_std", "episodes"}
    return Record(paper=data["paper"], task=data["task"], method=data["method"], preset=data["preset"],
                  seed=data["seed"], budget=data["budget"], budget_unit=data["budget_unit"],
                  mode=data.get("mode", "train"), score=float(data["score"]),
                  score_std=math.nan if data.get("score_std") is None else float(data["score_std"]),
                  episodes=data.get("episodes") or 0, xs=data["xs"], ys=data["ys"], path=path,
                  extra={k: v for k, v in data.items() if k not in known})


def _check_scale(path: Path, data: dict[str, Any]) -> None:
    """The curve holds finite numbers, the budget is a count in a known unit, and the curve ends within it."""
    for axis in ("xs", "ys"):
        bad = next((i for i, v in enumerate(data[axis]) if not _finite(v)), None)
        if bad is not None:
            raise RecordError(f"{path}: {axis}[{bad}] = {data[axis][bad]!r} in the curve, not a finite number")
    if data["budget"] < 0:
        raise RecordError(f"{path}: negative budget {data['budget']}")
    if data["budget_unit"] not in UNITS:
        raise RecordError(f"{path}: unknown budget unit {data['budget_unit']!r} (expected {' or '.join(UNITS)})")
    last = max(data["xs"], default=0)
    if last > data["budget"] + nice_width(last):  # a bin's right edge passes the last step by under one width
        raise RecordError(f"{path}: the curve reaches {last:g} {data['budget_unit']} but the budget is "
                          f"{data['budget']}: budget or curve in the wrong unit or scale")


def load_records(out_root: Path) -> list[Record]:
    records = []
    for path in sorted(Path(out_root).rglob("*.json")):
        try:
            records.append(load_record(path))
        except RecordError as error:
            warn(f"{error}; skipped")
    return records
