"""Markdown tables: our runs beside the published curve at the same budget, aggregates, every published row."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tools.results.catalog import BENCHMARKS, TITLES, Benchmark, benchmark_of
from tools.results.curves import curve_range, official_curves, seeds_at
from tools.results.metrics import crafter_score_from_counts, crafter_success_rates, crafter_score, \
    human_normalized, mean_and_median, mean_std
from tools.results.ours import Record
from tools.results.published import PUBLISHED, VERIFIED_LEGEND, Row, atari_references, \
    paper_rows, read_reference_table, task_key
from tools.results.report import warn

NO_RUNS = ("_No runs yet: `python -m tools.results --export RUN_DIR` writes a run's record into `results/runs/`, "
           "then `python -m tools.results` fills this in._")
HOW_TO_READ = ("How to read these tables: [results/README.md](../README.md). Budget = environment steps "
               "(`env_steps`) or Atari frames (`frames`, 4 per agent step); ± is the std over seeds; "
               "n = seeds (ours / authors').")


# ---- markdown helpers -------------------------------------------------------------------------------
def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def num(x: float | None, std: float | None = None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if std is None or math.isnan(std):
        return f"{x:.{digits}f}"
    return f"{x:.{digits}f} ± {std:.{digits}f}"


def budget_text(value: float, unit: str) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= size:
            return f"{value / size:.4g}{suffix} {unit}"
    return f"{value:g} {unit}"


# ---- our runs against the published curve ------------------------------------------------------------
@dataclass
class Comparison:
    bench: Benchmark
    task: str
    method: str
    preset: str
    records: list[Record]
    budget: float
    ours: tuple[float, float, int]
    published: tuple[float, float, int]   # curve at `budget`, over the authors' seeds (n = 0: none)
    published_note: str
    final: Row | None

    @property
    def mode(self) -> str:
        return "/".join(sorted({r.mode for r in self.records}))


def compare(paper: str, records: list[Record], published: Path = PUBLISHED) -> list[Comparison]:
    """One Comparison per (benchmark, task, method, preset) of the paper's records."""
    groups: dict[tuple, list[Record]] = {}
    for rec in records:
        bench = benchmark_of(paper, rec.task, rec.budget)  # known: build() drops records of unknown tasks
        if rec.budget_unit != bench.unit:
            warn(f"{rec.path}: budget unit {rec.budget_unit!r}, but {bench.name} counts {bench.unit!r}; skipped")
            continue
        groups.setdefault((bench.name, rec.task, rec.method, rec.preset), []).append(rec)
    rows = paper_rows(paper, published)
    out = []
    for (name, task, method, preset), group in sorted(groups.items()):
        bench = next(b for b in BENCHMARKS[paper] if b.name == name)
        budget = min(r.budget for r in group)  # the budget every seed reached
        ours = mean_std([r.score for r in group])
        published_vals, note = _published_at(bench, task, budget, published)
        out.append(Comparison(bench, task, method, preset, group, budget, ours, mean_std(published_vals), note,
                              _final_row(rows, bench, task)))
    return out


def _published_at(bench: Benchmark, task: str, budget: float, published: Path) -> tuple[list[float], str]:
    if bench.curve is None:
        return [], "no curve file"
    curves = official_curves(bench.curve, bench.curve_method, published)
    values = seeds_at(curves, bench.curve_task(task), budget)
    if values:
        return values, ""
    span = curve_range(curves, bench.curve_task(task))
    if span is None:
        return [], "task not in the authors' file"
    return [], f"curve covers {budget_text(span[0], bench.unit)}–{budget_text(span[1], bench.unit)}"


VERIFIED_RANK = {"yes": 0, "derived": 1, "partial": 2, "ocr-only": 2, "secondary": 3, "no": 4}


def _final_row(rows: list[Row], bench: Benchmark, task: str) -> Row | None:
    """The paper's own final number for ``task``: the best-verified matching row, file order within a rank."""
    if bench.csv is None:
        return None
    key = task_key(task)
    matches = [r for r in rows if r.file == bench.csv and r.benchmark.startswith(bench.csv_benchmark)
               and r.method == bench.csv_method and task_key(r.task) == key and r.mean is not None
               and not r.metric.startswith("score (std")]
    return min(matches, key=lambda r: VERIFIED_RANK.get(r.verified, 9), default=None)


def comparison_table(comparisons: list[Comparison]) -> str:
    headers = ["benchmark", "task", "method (preset)", "budget", "episodes", "ours", "n",
               "published curve at same budget", "n", "published final (budget)"]
    rows = []
    for c in comparisons:
        per_seed = sorted({r.episodes for r in c.records})
        episodes = f"last {'/'.join(map(str, per_seed))} {c.mode}"
        budgets = sorted({r.budget for r in c.records})
        budget = budget_text(c.budget, c.bench.unit) + ("" if len(budgets) == 1 else " (min over seeds)")
        pub = num(c.published[0], c.published[1]) if c.published[2] else c.published_note
        final = f"{c.final.value()} ({c.final.budget})" if c.final else "—"
        rows.append([c.bench.name, c.task, f"{c.method} ({c.preset})", budget, episodes, num(*c.ours[:2]),
                     c.ours[2], pub, c.published[2] or "—", final])
    return md_table(headers, rows)


# ---- aggregates --------------------------------------------------------------------------------------
def aggregates(comparisons: list[Comparison], published: Path = PUBLISHED) -> list[str]:
    """Markdown paragraphs: human-normalised mean/median (Atari), task mean (DMC), Crafter score."""
    out = []
    by_group: dict[tuple, list[Comparison]] = {}
    for c in comparisons:
        by_group.setdefault((c.bench.name, c.method, c.preset), []).append(c)
    for (name, method, preset), group in by_group.items():
        bench = group[0].bench
        if bench.aggregate == "human":
            out.append(_human_aggregate(bench, method, preset, group, published))
        elif bench.aggregate == "task_mean":
            out.append(_task_mean(bench, method, preset, group))
        elif bench.aggregate == "crafter":
            out.append(_crafter_aggregate(method, preset, group))
    return [text for text in out if text]


def _human_aggregate(bench: Benchmark, method: str, preset: str, group: list[Comparison], published: Path) -> str:
    refs = atari_references(bench.references, published)
    ours, theirs, games = [], [], []
    for c in group:
        ref = refs.get(task_key(c.task))
        if ref is None:
            warn(f"no random/human reference for {c.task} ({', '.join(bench.references)}); left out of the "
                 "normalised mean")
            continue
        games.append(c.task)
        ours.append(human_normalized(c.ours[0], ref.random, ref.human))
        if c.published[2]:
            theirs.append(human_normalized(c.published[0], ref.random, ref.human))
    if not ours:
        return ""
    om, omed = mean_and_median(ours)
    line = (f"**{bench.name}, {method} ({preset})**: human-normalised score over {len(ours)} game(s) "
            f"(random/human: {', '.join(bench.references)}): mean {100 * om:.1f}%, median {100 * omed:.1f}%")
    if len(theirs) == len(ours):
        pm, pmed = mean_and_median(theirs)
        line += f"; authors' curves at the same budgets: mean {100 * pm:.1f}%, median {100 * pmed:.1f}%"
    return line + "."


def _task_mean(bench: Benchmark, method: str, preset: str, group: list[Comparison]) -> str:
    ours = [c.ours[0] for c in group]
    line = f"**{bench.name}, {method} ({preset})**: task mean over {len(ours)} task(s): {sum(ours) / len(ours):.1f}"
    theirs = [c.published[0] for c in group if c.published[2]]
    if theirs and len(theirs) == len(ours):
        line += f"; authors' curves at the same budgets: {sum(theirs) / len(theirs):.1f}"
    return line + "."


def _crafter_aggregate(method: str, preset: str, group: list[Comparison]) -> str:
    scores = []
    for c in group:
        for rec in c.records:
            counts = rec.extra.get("crafter")
            if not isinstance(counts, dict) or not counts.get("episodes"):
                warn(f"{rec.path}: no Crafter achievements recorded; left out of the Crafter score")
                continue
            scores.append(crafter_score_from_counts(counts["unlocked"], counts["episodes"]))
    if not scores:
        return ""
    mean, std, n = mean_std(scores)
    return (f"**Crafter, {method} ({preset})**: Crafter score {num(mean, std)}% over {n} seed(s) "
            f"(success rates over each run's training episodes).")


def crafter_reference_scores(published: Path = PUBLISHED) -> str:
    """The Crafter score recomputed from the authors' human and random episode files (mean ± std over seeds)."""
    rows = []
    for rel in ("crafter/crafter_reward-human.json", "crafter/crafter_noreward-random.json"):
        curves = official_curves(rel, None, published)
        scores = []
        for c in curves:
            names = [k for k in c.extra if k.startswith("achievement_")]
            episodes = [{k[len("achievement_"):]: c.extra[k][i] for k in names} for i in range(len(c.xs))]
            if episodes and len(names) == 22:
                scores.append(crafter_score(crafter_success_rates(episodes)))
        if scores:
            mean, std, n = mean_std(scores)
            rows.append([rel, curves[0].method, n, sum(len(c.xs) for c in curves), num(mean, std)])
    if not rows:
        return ""
    return md_table(["authors' file", "method", "seeds", "episodes", "Crafter score (%) †"], rows)


# ---- Ha2018 ------------------------------------------------------------------------------------------
CAR_TRIVIAL = (("random", "random policy"), ("noop", "always no-op"), ("gas", "always full gas, straight"),
               ("left_gas", "always full gas, steering left"), ("right_gas", "always full gas, steering right"))
def ha2018_sections(records: list[Record], published: Path = PUBLISHED) -> list[str]:
    rows = paper_rows("ha2018", published)
    car = [r for r in records if r.task == "carracing"]
    doom = [r for r in records if r.task == "doom_take_cover"]
    car_rows = [[r.method, "published", "", r.value(), r.budget, r.metric] for r in rows
                if r.file == "ha2018_carracing.csv"]
    car_rows += [[r.method, r.preset, r.seed, _trials(r), budget_text(r.budget, r.budget_unit),
                  f"ours: mean ± std over the last {r.episodes} {r.mode} episodes"] for r in car]
    for r in car:  # the trivial policies each run played on its own evaluation seeds
        for policy, label in CAR_TRIVIAL:
            if _is_number(r.extra.get(f"{policy}_policy_score")):
                score = num(r.extra[f"{policy}_policy_score"], r.extra.get(f"{policy}_policy_score_std"), 0)
                car_rows.append([f"{label} (ours only)", r.preset, r.seed, f"{score} ({r.episodes} trials)", "—",
                                 f"the same {r.episodes} tracks as {r.method}"])
    out = ["### CarRacing-v0 (Table 1)\n\n" + md_table(["method", "source", "seed", "score", "budget / evaluation",
                                                          "metric"], car_rows)]
    out.append("### DoomTakeCover-v0: virtual (dream) and actual score per temperature (Table 2)\n\n" +
               _doom_table(rows, doom))
    return out


def _trials(rec: Record) -> str:
    return f"{num(rec.score, rec.score_std, 0)} ({rec.episodes} trials)"


def _doom_table(rows: list[Row], doom: list[Record]) -> str:
    temps = sorted({r.temperature for r in rows if r.temperature is not None}
                   | {float(r.extra["temperature"]) for r in doom if _is_number(r.extra.get("temperature"))})
    table = []
    for tau in temps:
        pub = [r for r in rows if r.temperature == tau and r.file == "ha2018_doom_temperature.csv"
               and "training-time" not in r.method]
        virtual = next((r.value() for r in pub if "virtual" in r.metric), "—")
        actual = next((r.value() for r in pub if "actual" in r.metric), "—")
        ours = [r for r in doom if _is_number(r.extra.get("temperature")) and float(r.extra["temperature"]) == tau]
        groups: dict[tuple[str, str], list[Record]] = {}  # one row per method and preset: never pool presets
        for r in sorted(ours, key=lambda r: (r.method, r.preset)):
            groups.setdefault((r.method, r.preset), []).append(r)
        for recs in groups.values() or [[]]:
            table.append([f"{tau:g}", virtual, actual] + _doom_ours(recs))
    for r in rows:
        if r.temperature is None and r.file == "ha2018_doom_temperature.csv":
            ours = _doom_random(doom) if "random" in r.method.lower() else ["—", "—", "", ""]
            table.append([r.method, "—", r.value()] + ours)
    for name, label in (("noop", "always no-op"), ("left", "always left"), ("right", "always right")):
        if any(_is_number(r.extra.get(f"{name}_policy_score")) for r in doom):
            table.append([f"{label} (ours only)", "—", "—"] + _doom_random(doom, name, label))
    for r in doom:
        if r.extra.get("temperature") is None:
            table.append([f"{r.method} (ours)", "—", "—"] + _doom_ours([r]))
    return md_table(["temperature τ", "published virtual", "published actual", "ours virtual (dream)",
                     "ours actual", "n", "ours (method, preset)"], table)


def _doom_ours(recs: list[Record]) -> list[object]:
    if not recs:
        return ["—", "—", "", ""]
    if len(recs) == 1:
        r = recs[0]
        dream = num(r.extra.get("dream_score"), r.extra.get("dream_score_std"), 0) \
            if _is_number(r.extra.get("dream_score")) else "—"
        return [dream, _trials(r), "1", f"{r.method} ({r.preset}{_rounds(r)}, seed {r.seed})"]
    dreams = [float(r.extra["dream_score"]) for r in recs if _is_number(r.extra.get("dream_score"))]
    dm, ds, _ = mean_std(dreams)
    am, asd, n = mean_std([r.score for r in recs])
    methods = ", ".join(sorted({f"{r.method} ({r.preset}{_rounds(r)})" for r in recs}))
    seeds = ", ".join(str(r.seed) for r in sorted(recs, key=lambda r: r.seed))
    return [num(dm, ds, 0) if dreams else "—", num(am, asd, 0) + " (over seeds)", n, f"{methods}, seeds {seeds}"]


def _rounds(rec: Record) -> str:
    """The iterative procedure's rounds of a run, when it ran more than the published one."""
    rounds = rec.extra.get("rounds", 1)
    return f", {rounds} rounds" if _is_number(rounds) and rounds > 1 else ""


def _doom_random(recs: list[Record], policy: str = "random", label: str = "random") -> list[object]:
    """Our random-policy row (or a constant action's: no-op, left, right): each Doom run scores these trivial
    policies on its own evaluation seeds."""
    key = f"{policy}_policy_score"
    runs = [r for r in recs if _is_number(r.extra.get(key))]
    # runs that play the same evaluation seeds (a temperature sweep, other training seeds or presets) measure the
    # trivial policy identically: one measurement, not n
    unique = list({(r.extra[key], r.extra.get(f"{policy}_policy_score_std")): r for r in runs}.values())
    if not unique:
        return ["—", "—", "", ""]
    if len(unique) == 1:
        r = unique[0]
        where = f"{r.preset}, seed {r.seed}" if len(runs) == 1 else f"the same in {len(runs)} runs"
        return ["—", f"{num(r.extra[key], r.extra.get(f'{policy}_policy_score_std'), 0)} "
                     f"({r.episodes} trials, same seeds)", "1", f"{label} ({where})"]
    runs = unique
    mean, std, n = mean_std([float(r.extra[key]) for r in runs])
    return ["—", num(mean, std, 0) + " (over runs)", n, label]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---- every published row -----------------------------------------------------------------------------
def published_section(paper: str, published: Path = PUBLISHED) -> str:
    """Every row of the paper's CSVs, grouped by file and benchmark, sources as numbered footnotes."""
    rows = paper_rows(paper, published)
    sources: dict[str, int] = {}
    parts = []
    for file in dict.fromkeys(r.file for r in rows):
        for benchmark in dict.fromkeys(r.benchmark for r in rows if r.file == file):
            group = [r for r in rows if r.file == file and r.benchmark == benchmark]
            body = [[r.task, r.method, r.budget, r.metric, r.value(), r.verified,
                     f"S{sources.setdefault(r.source, len(sources) + 1)}", r.notes] for r in group]
            parts.append(f"#### {benchmark} (`{file}`, {len(group)} rows)\n\n" +
                         md_table(["task", "method", "budget", "metric", "value", "verified", "source", "notes"],
                                  body))
    papers = sorted({r.paper for r in rows})
    legend = "\n".join(f"- S{i}: {cell(source)}" for source, i in sources.items())
    return "\n\n".join(parts) + "\n\nPaper versions: " + "; ".join(papers) + "\n\nSources:\n\n" + legend


def reference_table(published: Path = PUBLISHED) -> str:
    rows = read_reference_table(published)
    body = [[r["game"], r["random"], r["human"], r["human_record"], r["in_atari100k"], r["verified"], r["source"],
             r["notes"]] for r in rows]
    return md_table(["game", "random", "human", "human record", "in Atari100k", "verified", "source", "notes"], body)


# ---- one file per paper ------------------------------------------------------------------------------
def paper_results(paper: str, records: list[Record], comparisons: list[Comparison],
                  published: Path = PUBLISHED) -> str:
    """The part shared by results/tables/<paper>.md and the paper README: our runs and aggregates."""
    if paper == "ha2018":
        return "\n\n".join(ha2018_sections(records, published))
    if not comparisons:
        return NO_RUNS
    return "\n\n".join([comparison_table(comparisons)] + aggregates(comparisons, published))


def paper_table(paper: str, results: str, figures: list[Path], published: Path = PUBLISHED) -> str:
    parts = [f"# {TITLES[paper]}: results", "_Generated by `python -m tools.results`; do not edit._", HOW_TO_READ,
             VERIFIED_LEGEND, "## Our runs", results]
    if figures:
        parts.append("Figures: " + ", ".join(f"[{f.stem}](../figures/{f.name})" for f in figures))
    if paper == "dreamer_v3":
        crafter = crafter_reference_scores(published)
        if crafter:
            parts += ["## Crafter score recomputed from the authors' episode files", crafter]
    if paper in ("dreamer_v2", "dreamer_v3"):
        parts.append("Atari random/human references: [atari_reference_scores.md](atari_reference_scores.md).")
    parts += ["## Published numbers (every row of the paper's CSVs)", published_section(paper, published)]
    return "\n\n".join(parts) + "\n"


def reference_file(published: Path = PUBLISHED) -> str:
    return ("# Atari random and human reference scores\n\n_Generated by `python -m tools.results`; do not edit._\n\n"
            "Human-normalised score = (score - random) / (human - random). DreamerV2 and Atari57 aggregates use the "
            "`danijar/dreamerv2` rows (James Bond, whose stored human score is flagged as a data issue, uses the "
            "DreamerV2 Table K.1 row); Atari100k uses the `eloialonso/iris` rows.\n\n" + reference_table(published) + "\n")

