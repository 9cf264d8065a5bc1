"""``python -m tools.results``: regenerate results/tables, results/figures and the README results sections
(and results/tables/lineage.md: one task across the RSSM papers, see tools/results/lineage.py).

    python -m tools.results                                # tables etc. from the committed results/runs/ only
    python -m tools.results --export RUN_DIR... [--replace]  # write these runs' records into results/runs/
    python -m tools.results --sync-published               # refresh results/published/ from ../shared/published/

Training commands never write records: a run reaches the tables only through ``--export``, which refuses to
overwrite the record of a different run (another budget, commit or config) unless ``--replace`` is given.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tools.results import report
from tools.results.catalog import PAPERS, TITLES, known_task
from tools.results.figures import plot_comparison
from tools.results.ha2018_figures import ha2018_figures
from tools.results.lineage import lineage_figures, lineage_table
from tools.results.ours import RECORDS, Record, RecordError, export_run, load_records, record_path
from tools.results.published import PUBLISHED, SHARED, VERIFIED_LEGEND, sync_published
from tools.results.readme import replace_between_markers
from tools.results.report import warn
from tools.results.tables import compare, md_table, paper_results, paper_table, reference_file

ROOT = Path(__file__).resolve().parents[2]


def build(root: Path = ROOT, figures: bool = True, published: Path | None = None) -> dict[str, int]:
    """Regenerate everything under ``root`` from the records in ``root/results/runs``."""
    published = published or root / "results" / "published"
    report.WARNINGS.clear()
    out_runs, tables_dir, figures_dir = (root / "results" / sub for sub in ("runs", "tables", "figures"))
    records = load_records(out_runs)
    by_paper = select(records)
    tables_dir.mkdir(parents=True, exist_ok=True)
    written_figures: list[Path] = []
    for paper in PAPERS:
        comparisons = compare(paper, by_paper[paper], published) if paper != "ha2018" else []
        paper_figures = _figures(paper, comparisons, figures_dir, published) if figures else []
        if figures and paper == "ha2018":  # CMA-ES by generation over the authors' logs; the temperature figure
            paper_figures += ha2018_figures(by_paper[paper], figures_dir, published)
        written_figures += paper_figures
        results = paper_results(paper, by_paper[paper], comparisons, published)
        (tables_dir / f"{paper}.md").write_text(paper_table(paper, results, paper_figures, published))
        body = (f"{results}\n\nFull table with every published number: "
                f"[results/tables/{paper}.md](../results/tables/{paper}.md). {VERIFIED_LEGEND}")
        replace_between_markers(root / paper / "README.md", body)
    (tables_dir / "atari_reference_scores.md").write_text(reference_file(published))
    lineage_figs = lineage_figures(by_paper, figures_dir, published) if figures else []
    (tables_dir / "lineage.md").write_text(lineage_table(by_paper, lineage_figs, published))
    if figures:
        for stale in set(figures_dir.glob("*.png")) - set(written_figures) - set(lineage_figs):
            stale.unlink()
    replace_between_markers(root / "README.md", overview(by_paper))
    return {"records": sum(map(len, by_paper.values())), "figures": len(written_figures),
            "warnings": len(report.WARNINGS)}


def select(records: list[Record]) -> dict[str, list[Record]]:
    """The records the tables use, by paper: unknown papers and tasks are reported and skipped, and of two
    records of the same run (paper, task, method, preset, seed, temperature) only one counts."""
    by_paper: dict[str, list[Record]] = {paper: [] for paper in PAPERS}
    seen: dict[tuple, Record] = {}
    for rec in records:
        if rec.paper not in by_paper:
            warn(f"{rec.path}: unknown paper {rec.paper!r} (expected one of {', '.join(PAPERS)}); skipped")
            continue
        if not known_task(rec.paper, rec.task, rec.budget):
            warn(f"{rec.path}: unknown task {rec.task!r} for paper {rec.paper}; skipped")
            continue
        key = (rec.paper, rec.task, rec.method, rec.preset, rec.seed, rec.extra.get("temperature"))
        first = seen.get(key)
        if first is None:
            seen[key] = rec
            by_paper[rec.paper].append(rec)
            continue
        kept, dropped = (rec, first) if _canonical(rec) and not _canonical(first) else (first, rec)
        warn(f"{dropped.path} and {kept.path}: two records of the same run ({', '.join(map(str, key[1:5]))}"
             f"{'' if key[5] is None else f', temperature {key[5]}'}); counted once, from {kept.path}")
        by_paper[rec.paper][by_paper[rec.paper].index(first)] = kept
        seen[key] = kept
    return by_paper


def _canonical(rec: Record) -> bool:
    """Whether the record sits where export_run would write it."""
    data = {"paper": rec.paper, "task": rec.task, "method": rec.method, "preset": rec.preset, "seed": rec.seed,
            "temperature": rec.extra.get("temperature")}
    return rec.path is not None and record_path(data, rec.path.parents[2]) == rec.path


def _figures(paper: str, comparisons, figures_dir: Path, published: Path) -> list[Path]:
    tasks = sorted({c.task for c in comparisons})
    return [plot_comparison(paper, task, [c for c in comparisons if c.task == task], figures_dir, published)
            for task in tasks]


def overview(by_paper: dict[str, list[Record]]) -> str:
    rows = []
    for paper in PAPERS:
        recs = by_paper[paper]
        tasks = sorted({r.task for r in recs})
        rows.append([TITLES[paper], len(recs), ", ".join(tasks) or "—",
                     f"[results/tables/{paper}.md](results/tables/{paper}.md)"])
    return (md_table(["paper", "our runs (seeds)", "tasks", "tables: ours vs published"], rows) +
            "\n\nGenerated by `python -m tools.results` from `results/runs/` and `results/published/`; "
            "how to read the tables: [results/README.md](results/README.md).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.results", description=__doc__.split("\n")[0])
    parser.add_argument("--export", nargs="+", metavar="RUN_DIR", help="write these runs' records and stop")
    parser.add_argument("--replace", action="store_true",
                        help="with --export: overwrite a record even if it came from a different run")
    parser.add_argument("--out", type=Path, default=RECORDS, help="record folder for --export")
    parser.add_argument("--sync-published", nargs="?", const=SHARED, type=Path, metavar="FROM",
                        help=f"refresh results/published/ from FROM (default {SHARED}) and stop")
    parser.add_argument("--no-figures", action="store_true")
    args = parser.parse_args(argv)
    if args.sync_published:
        try:
            written = sync_published(args.sync_published, PUBLISHED)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"synced {len(written)} files into {PUBLISHED}")
        return 0
    if args.export:
        failed = 0
        for run_dir in args.export:
            try:
                print(export_run(run_dir, args.out, replace=args.replace))
            except (RecordError, OSError) as error:
                print(f"error: {error}", file=sys.stderr)
                failed += 1
        return 2 if failed else 0
    start = time.time()
    counts = build(ROOT, not args.no_figures)
    print(f"results: {counts['records']} record(s), {len(PAPERS)} paper tables, {counts['figures']} figure(s), "
          f"{counts['warnings']} warning(s) in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
