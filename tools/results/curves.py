"""The authors' learning-curve format ``[{task, method, seed, xs, ys}, ...]`` (json or json.gz).

Crafter's files store one record per seed with per-episode lists (``xs``, ``reward``, ``length``,
``achievement_<name>``); they load as a curve of ``reward`` with the achievement lists kept in ``extra``.
"""
from __future__ import annotations

import gzip
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.results.published import PUBLISHED, task_key
from tools.results.report import warn


@dataclass
class Curve:
    task: str
    method: str
    seed: str
    xs: np.ndarray  # (T,) budget, increasing
    ys: np.ndarray  # (T,) score in the bin ending at xs
    source: str = ""
    extra: dict[str, list] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return task_key(self.task)


def read_json(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as handle:
        return json.load(handle)


def parse_curve(record: dict, where: str) -> Curve:
    """One ``{task, method, seed, xs, ys}`` record. ValueError with the reason if it is malformed.
    Points whose y is missing or not finite (the authors' files write None for empty bins) are dropped."""
    if not isinstance(record, dict):
        raise ValueError(f"{where}: not an object")
    ykey = "ys" if "ys" in record else "reward" if "reward" in record else None
    missing = [k for k in ("task", "xs") if k not in record] + ([] if ykey else ["ys"])
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    xs, ys = record["xs"], record[ykey]
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise ValueError(f"{where}: xs and {ykey} differ in length ({_len(xs)} vs {_len(ys)})")
    try:
        x = np.array([math.nan if v is None else float(v) for v in xs])
        y = np.array([math.nan if v is None else float(v) for v in ys])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: non-numeric xs or {ykey}") from None
    keep = np.isfinite(x) & np.isfinite(y)
    if np.any(np.diff(x[keep]) < 0):
        raise ValueError(f"{where}: xs not increasing")
    extra = {k: v for k, v in record.items() if k.startswith("achievement_") or k == "length"}
    for name, values in extra.items():
        if not isinstance(values, list) or len(values) != len(xs):
            raise ValueError(f"{where}: {name} differs in length from xs")
    extra = {k: [v for v, ok in zip(values, keep) if ok] for k, values in extra.items()}
    return Curve(task=str(record["task"]).replace("-", "_"), method=str(record.get("method", "")),
                 seed=str(record.get("seed", "")), xs=x[keep], ys=y[keep], source=where.split(" ")[0], extra=extra)


def _len(value) -> str:
    return str(len(value)) if isinstance(value, list) else type(value).__name__


_CACHE: dict[Path, list[Curve]] = {}


def load_curve_file(path: str | Path) -> list[Curve]:
    """Every valid curve of one file; malformed records are reported on stderr (naming the file) and skipped."""
    path = Path(path)
    if path in _CACHE:
        return _CACHE[path]
    try:
        data = read_json(path)
    except (OSError, EOFError, ValueError) as error:
        warn(f"{path}: cannot read curve file ({error.__class__.__name__}: {error}); skipped")
        return []
    if not isinstance(data, list):
        warn(f"{path}: expected a list of {{task, method, seed, xs, ys}} records; skipped")
        return []
    curves = []
    for index, record in enumerate(data):
        try:
            curves.append(parse_curve(record, f"{path} record {index}"))
        except ValueError as error:
            warn(f"{error}; record skipped")
    _CACHE[path] = curves
    return curves


def official_curves(relpath: str, method: str | None = None, published: Path = PUBLISHED) -> list[Curve]:
    """Curves of one official file (``dreamerv3/dmc_proprio-dreamerv3.json.gz``), optionally one method.
    A file stored compressed is found under either name."""
    path = published / "official" / relpath
    if not path.exists() and (published / "official" / (relpath + ".gz")).exists():
        path = published / "official" / (relpath + ".gz")
    curves = load_curve_file(path) if path.exists() else []
    if not path.exists():
        warn(f"{path}: missing official curve file; published curve column left empty")
    return [c for c in curves if method is None or c.method == method]


def value_at(curve: Curve, x: float) -> float | None:
    """The curve at budget ``x``, linearly interpolated between the two neighbouring points. Past the last
    point, that point counts for up to one point spacing (a curve logged to 490K still answers at 500K);
    before the first point or further out, None (no extrapolation)."""
    xs, ys = curve.xs, curve.ys
    if len(xs) == 0:
        return None
    if len(xs) == 1:
        return float(ys[0]) if x == xs[0] else None
    if x < xs[0] or x > xs[-1] + (xs[-1] - xs[-2]):
        return None
    return float(np.interp(x, xs, ys))


def seeds_at(curves: list[Curve], task: str, x: float) -> list[float]:
    """One value per authors' seed of ``task`` at budget ``x`` (seeds whose curve does not reach ``x`` are left out)."""
    key = task_key(task)
    values = [value_at(c, x) for c in curves if c.key == key]
    return [v for v in values if v is not None]


def curve_range(curves: list[Curve], task: str) -> tuple[float, float] | None:
    key = task_key(task)
    spans = [(c.xs[0], c.xs[-1]) for c in curves if c.key == key and len(c.xs)]
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def band(curves: list[Curve], task: str, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and std over the authors' seeds on ``grid`` (NaN where fewer than one seed covers a point)."""
    key = task_key(task)
    rows = [[value_at(c, x) for x in grid] for c in curves if c.key == key]
    if not rows:
        return np.full(len(grid), np.nan), np.full(len(grid), np.nan), 0
    values = np.array([[np.nan if v is None else v for v in row] for row in rows])  # (seeds, grid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        return np.nanmean(values, 0), np.nanstd(values, 0), len(rows)
