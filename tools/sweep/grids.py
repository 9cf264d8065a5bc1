"""Reproduction grids as data: ``<paper>/grids.yaml`` (one paper) or ``tools/grids/<name>.yaml`` (across papers).

A file maps grid names to one block or a list of blocks; a block expands to cells task x seed::

    small:
      - tasks: [dmcproprio_cartpole_balance]
        seeds: [0, 1]
        preset: small
        set: [run.steps=50000]     # optional: --set overrides of every cell of the block
        cpus: 1                    # optional: cores a cell holds (the paper's worker processes, e.g. ha2018)
        command: train             # optional: the paper's command (ha2018: all)
        paper: planet              # required in tools/grids/ files, else the folder's paper

Each cell is one ordinary run directory ``<runs>/<paper>/<task>/<preset>_seed<N>/``, made by the paper's own
command line (``python -m <paper> <command> --task T --preset P --seed N --logdir D --set ...``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRIDS_DIR = Path(__file__).resolve().parents[1] / "grids"  # grids that span papers (tools/grids/<name>.yaml)
BLOCK_KEYS = {"tasks", "seeds", "preset", "set", "cpus", "command", "paper"}


class GridError(ValueError):
    """An unknown paper or grid, or a malformed grids.yaml (the message names the file and key)."""


@dataclass(frozen=True)
class Cell:
    paper: str
    task: str
    seed: int
    preset: str
    overrides: tuple[str, ...] = ()
    cpus: int = 1
    command: str = "train"

    @property
    def name(self) -> str:
        return f"{self.paper}/{self.task}/{self.preset}_seed{self.seed}"

    def run_dir(self, runs: Path) -> Path:
        return runs / self.paper / self.task / f"{self.preset.replace(',', '+')}_seed{self.seed}"

    def argv(self, run_dir: Path) -> list[str]:
        """The paper's own command line for this cell (without the interpreter)."""
        sets = [arg for override in self.overrides for arg in ("--set", override)]
        return ["-m", self.paper, self.command, "--task", self.task, "--preset", self.preset, "--seed",
                str(self.seed), "--logdir", str(run_dir), *sets]

    def steps(self) -> float | None:
        """The env-step budget this cell sets with ``run.steps=...``, the last one winning (None: the preset's)."""
        for override in reversed(self.overrides):
            key, _, value = override.partition("=")
            if key.strip() == "run.steps":
                return float(value)
        return None


def grid_file(target: str, root: Path = ROOT) -> Path:
    """``<root>/<target>/grids.yaml`` for a paper folder, else ``tools/grids/<target>.yaml``."""
    paper_file = root / target / "grids.yaml"
    if paper_file.exists():
        return paper_file
    shared = GRIDS_DIR / f"{target}.yaml"
    if shared.exists():
        return shared
    papers = sorted(p.parent.name for p in root.glob("*/grids.yaml"))
    others = sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))
    raise GridError(f"no grids for {target!r} (no {paper_file}); papers with grids: {', '.join(papers) or 'none'}; "
                    f"grids across papers: {', '.join(others) or 'none'}")


def load_grid(target: str, name: str, root: Path = ROOT) -> list[Cell]:
    """The cells of grid ``name`` of ``target`` (a paper folder, or a file in tools/grids/)."""
    path = grid_file(target, root)
    try:
        grids = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise GridError(f"{path}: not valid yaml ({str(error).splitlines()[0]})") from None
    if not isinstance(grids, dict) or name not in grids:
        valid = ", ".join(grids) if isinstance(grids, dict) else "none"
        raise GridError(f"{path}: no grid {name!r}; valid: {valid}")
    blocks = grids[name] if isinstance(grids[name], list) else [grids[name]]
    default_paper = target if path.parent.name == target else None
    cells: list[Cell] = []
    for index, block in enumerate(blocks):
        cells += _cells(block, f"{path} grid {name!r} block {index}", default_paper, root)
    names = [cell.name for cell in cells]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise GridError(f"{path} grid {name!r}: cells share a run directory: {', '.join(duplicates[:4])}")
    return cells


def _cells(block: object, where: str, default_paper: str | None, root: Path) -> list[Cell]:
    if not isinstance(block, dict):
        raise GridError(f"{where}: expected a mapping with tasks, seeds, preset")
    unknown = sorted(set(block) - BLOCK_KEYS)
    if unknown:
        raise GridError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(BLOCK_KEYS))}")
    missing = [key for key in ("tasks", "seeds") if not block.get(key)]
    paper = block.get("paper", default_paper)
    if paper is None:
        missing.append("paper")
    if missing:
        raise GridError(f"{where}: missing {', '.join(missing)}")
    if not (root / str(paper) / "__main__.py").exists():
        raise GridError(f"{where}: unknown paper {paper!r} (no {root / str(paper) / '__main__.py'})")
    overrides = block.get("set") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise GridError(f"{where}: set must be a list of 'key=value' strings")
    seeds, cpus = block["seeds"], block.get("cpus", 1)
    if not all(isinstance(s, int) and s >= 0 for s in seeds) or not (isinstance(cpus, int) and cpus >= 1):
        raise GridError(f"{where}: seeds must be non-negative integers and cpus a positive integer")
    return [Cell(str(paper), str(task), int(seed), str(block.get("preset", "paper")), tuple(overrides), cpus,
                 str(block.get("command", "train")))
            for task in block["tasks"] for seed in seeds]


def with_overrides(cells: list[Cell], overrides: list[str]) -> list[Cell]:
    """The sweep's own ``--set`` overrides, applied after every block's."""
    return [Cell(c.paper, c.task, c.seed, c.preset, (*c.overrides, *overrides), c.cpus, c.command) for c in cells]


def read_summary(run_dir: Path) -> dict:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def is_finished(cell: Cell, run_dir: Path) -> bool:
    """The run's summary says finished, at (at least) the budget the cell sets, if it sets one."""
    summary = read_summary(run_dir)
    if not summary.get("finished"):
        return False
    steps = cell.steps()
    return steps is None or float(summary.get("budget", 0)) >= steps


def last_step(run_dir: Path) -> int:
    """The env step of the run's last metrics row (0 before the first): progress for the display."""
    path = run_dir / "metrics.jsonl"
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, os.path.getsize(path) - 4096))
            lines = handle.read().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0
