"""``python -m tools.sweep <paper> --grid <name>``: a reproduction grid as Ray tasks, then records and tables.

    python -m tools.sweep dreamer_v3 --grid small                  # Ray on this machine, one cell per core
    python -m tools.sweep dreamer_v3 --grid paper --address auto   # on a running cluster (ray start --head)
    python -m tools.sweep lineage --grid small                     # tools/grids/lineage.yaml: across papers
    python -m tools.sweep dreamer_v3 --grid small --list           # the cells and where they stand

Finished cells are skipped; unfinished ones resume (the paper's command continues from its checkpoint); a
failing cell is reported with its log and retried up to ``--retries`` times while the others go on. At the end
the finished cells' records are exported (``python -m tools.results --export``: never over the record of a
different run without ``--replace``) and the tables regenerated (``python -m tools.results``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tools.sweep.grids import GRIDS_DIR, ROOT, Cell, GridError, is_finished, last_step, load_grid, with_overrides
from tools.ray_init import init_ray
from tools.sweep.runner import LOG_NAME, Status, sweep


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.sweep", description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="a paper folder with grids.yaml, or a grid file of tools/grids/ (lineage)")
    parser.add_argument("--grid", required=True, help="grid name in the file, e.g. small, paper")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override for every cell, after the grid's own (e.g. run.steps=2000 for a check)")
    parser.add_argument("--address", default=None, help="Ray cluster address ('auto' after `ray start --head`); "
                        "default: start Ray on this machine")
    parser.add_argument("--cpus", type=int, default=None, help="cores Ray may use here (default: all)")
    parser.add_argument("--retries", type=int, default=2, help="reruns of a failing cell before giving up")
    parser.add_argument("--runs", type=Path, default=None,
                        help="root of the run directories (default runs/, or runs/<target>/ for tools/grids)")
    parser.add_argument("--out", type=Path, default=None, help="record folder (default results/runs/; another "
                        "folder skips the tables)")
    parser.add_argument("--replace", action="store_true", help="export over records of different runs")
    parser.add_argument("--no-tables", action="store_true", help="export the records but leave the tables")
    parser.add_argument("--list", action="store_true", help="print the cells and their state, run nothing")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests: a repo of toy papers
    return parser.parse_args(argv)


def runs_root(args: argparse.Namespace) -> Path:
    if args.runs is not None:
        return args.runs.resolve()
    shared = not (args.root / args.target / "grids.yaml").exists() and (GRIDS_DIR / f"{args.target}.yaml").exists()
    return (Path("runs") / args.target if shared else Path("runs")).resolve()


def list_cells(cells: list[Cell], runs: Path) -> None:
    for cell in cells:
        run_dir = cell.run_dir(runs)
        state = ("finished" if is_finished(cell, run_dir) else f"at step {last_step(run_dir)}"
                 if run_dir.exists() else "not started")
        print(f"{cell.name:60s} {state:18s} python {' '.join(cell.argv(run_dir))}")


def start_ray(args: argparse.Namespace) -> bool:
    """Connect to (or start) Ray; False when this process already had a session (kept open at the end)."""
    import ray
    started = init_ray(args.address, args.cpus)
    print(f"ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs")
    return started


def export(status: Status, args: argparse.Namespace) -> int:
    """Records of every finished cell; returns how many were written."""
    from tools.results.ours import RECORDS, RecordError, export_run
    written = 0
    for cell in status.done:
        try:
            print(f"exported: {export_run(cell.run_dir(status.runs), args.out or RECORDS, replace=args.replace)}")
            written += 1
        except (RecordError, OSError) as error:
            print(f"not exported: {cell.name}: {error}", file=sys.stderr)
    return written


def report(status: Status) -> int:
    print(status.line())
    for cell in status.given_up:
        print(f"gave up: {cell.name} after {status.failed[cell]} failures; log {cell.run_dir(status.runs) / LOG_NAME}")
    return 1 if status.given_up else 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.retries < 0 or (args.cpus is not None and args.cpus < 1):
            raise GridError("--retries must be >= 0 and --cpus >= 1")
        cells = with_overrides(load_grid(args.target, args.grid, args.root.resolve()), args.set)
    except GridError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs = runs_root(args)
    if args.list:
        list_cells(cells, runs)
        return 0
    print(f"grid {args.target}/{args.grid}: {len(cells)} cells, run directories under {runs}")
    try:
        started = start_ray(args)
    except Exception as error:  # Ray raises a bare Exception on a startup timeout, ConnectionError without a cluster
        print(f"error: Ray did not start: {str(error).splitlines()[0] if str(error) else type(error).__name__}",
              file=sys.stderr)
        return 2
    try:
        status = sweep(cells, runs, args.root.resolve(), args.retries)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume (finished cells are skipped)", file=sys.stderr)
        return 130
    finally:
        if started:
            import ray
            ray.shutdown()
    export(status, args)
    if args.out is None and not args.no_tables:
        subprocess.run([sys.executable, "-m", "tools.results"], cwd=ROOT, check=False)
    return report(status)


if __name__ == "__main__":
    sys.exit(main())
