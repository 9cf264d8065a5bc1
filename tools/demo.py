"""The project's main job (`make demo`): the World Models Doom pipeline on the `small` preset (V, M, a controller
evolved in M's dream, over 3-5 rounds of the paper's iterative procedure, evaluated over 100 real games; resumes and
skips finished stages), then the results
tables and README sections from the committed records, then this run's score beside the committed record's.

The demo never writes into results/runs/: a new score replaces the committed one only when asked,
``python -m tools.results --export RUN_DIR --replace``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tools.results.ours import RECORDS, SAME_RUN, RecordError, read_run, record_path
from tools.runs import default_logdir

TASK, PRESET = "doom_take_cover", "small"


def describe(record: dict[str, Any]) -> str:
    def pm(key: str) -> str:
        value, std = record.get(key), record.get(f"{key}_std")
        return "—" if value is None else f"{value:.0f}" + ("" if std is None else f" ± {std:.0f}")
    constants = ", ".join(f"always {name} {pm(f'{name}_policy_score')}" for name in ("noop", "left", "right")
                          if record.get(f"{name}_policy_score") is not None)
    return (f"real game {pm('score')} over {record.get('episodes')} trials, random policy {pm('random_policy_score')} "
            f"{'(' + constants + ') ' if constants else ''}on the same seeds, dream {pm('dream_score')}; "
            f"{record.get('budget', 0):,} {record.get('budget_unit')}, commit {record.get('commit')}")


def compare_with_committed(run_dir: Path, records: Path = RECORDS) -> str:
    """This run's score beside the committed record of the same task, preset, seed and temperature."""
    try:
        record = read_run(run_dir)
    except RecordError as error:
        return f"[demo] no score from this run: {error}"
    path = record_path(record, records)
    lines = [f"[demo] this run ({run_dir}): {describe(record)}"]
    try:
        committed = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        committed = None
    if not isinstance(committed, dict):
        lines.append(f"[demo] no committed record at {path}")
    else:
        same = all(committed.get(key) == record[key] for key in SAME_RUN)
        lines.append(f"[demo] committed record ({path}{', the same run' if same else ''}): {describe(committed)}")
    lines.append(f"[demo] results/runs/ is unchanged; to commit this run's record instead: "
                 f"python -m tools.results --export {run_dir} --replace")
    return "\n".join(lines)


def main(records: Path = RECORDS, seed: int = 0) -> None:
    from ha2018.__main__ import main as ha2018_main
    from tools.results.__main__ import main as results_main
    code = ha2018_main(["all", "--task", TASK, "--preset", PRESET, "--seed", str(seed)])
    if code:
        sys.exit(code)
    results_main([])
    print(compare_with_committed(default_logdir("ha2018", TASK, PRESET, seed), records))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description="make demo [SEED=N]")
    parser.add_argument("--seed", type=int, default=0)
    main(seed=parser.parse_args().seed)
