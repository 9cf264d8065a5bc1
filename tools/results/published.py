"""Published numbers as data: the CSV tables and the authors' curve files under ``results/published/``.

``results/published/`` is a copy of the project's verified reference ``../shared/published/`` (refresh it with
``python -m tools.results --sync-published``); the code only ever reads the copy inside the repository.
"""
from __future__ import annotations

import csv
import functools
import gzip
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from tools.results.report import warn

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "results" / "published"
SHARED = ROOT.parent / "shared" / "published"

# paper folder -> the CSV files that hold its published numbers
PAPER_CSVS: dict[str, tuple[str, ...]] = {
    "ha2018": ("ha2018_carracing.csv", "ha2018_doom_temperature.csv"),
    "planet": ("planet_dmc.csv",),
    "dreamer_v1": ("dreamer_v1_dmc.csv",),
    "dreamer_v2": ("dreamer_v2_atari.csv",),
    "dreamer_v3": ("dreamer_v3_atari100k.csv", "dreamer_v3_dmc.csv", "dreamer_v3_other.csv"),
}
ATARI_REFERENCE_CSV = "atari_reference_scores.csv"

# verified flag -> mark shown next to the number (legend: VERIFIED_LEGEND)
MARKS = {"yes": "", "derived": "†", "partial": "‡", "ocr-only": "‡", "secondary": "§", "no": "⚠"}
VERIFIED_LEGEND = (
    "Marks after a published number give its `verified` flag: none = `yes` (read from the paper or an "
    "authors' file named in the source); † = `derived` (computed from the authors' curve files, not printed "
    "in a paper); ‡ = `partial` or `ocr-only` (a text-conversion value with an indirect check or none); "
    "§ = `secondary` (a third-party summary); **⚠ = `no` (recalled, not found in any file: treat with care)**."
)
TASK_ALIASES = {"cupcatch": "ballincupcatch"}  # Dreamer v1 files say cup_catch, v3 files ball_in_cup_catch
SUITE_PREFIXES = ("dmcproprio", "dmc", "atari", "crafter", "minecraft")
HA_TASKS = {"carracingv0": "carracing", "doomtakecoverv0": "doom_take_cover"}


@dataclass(frozen=True)
class Row:
    """One published number (one CSV row)."""
    file: str
    line: int
    paper: str
    benchmark: str
    task: str
    method: str
    budget: str
    metric: str
    mean: float | None
    std: float | None
    source: str
    verified: str
    notes: str
    temperature: float | None = None
    mean_text: str = ""  # the CSV cell as written (some are not numbers: "500+", "19/20")
    std_text: str = ""

    @property
    def mark(self) -> str:
        return MARKS.get(self.verified, "?")

    def value(self, digits: int | None = None) -> str:
        """``mean ± std`` followed by the verified mark; a cell that is not a number is shown as written."""
        if self.mean is None and self.mean_text:
            return self.mean_text + (f" ± {self.std_text}" if self.std_text else "") + self.mark
        return format_value(self.mean, self.std, digits) + self.mark


def task_key(name: str) -> str:
    """A suite-free key that matches one task across our names, curve files and CSVs:
    ``dmcproprio_cup_catch``, ``dmc_ball_in_cup_catch`` and ``ball_in_cup_catch`` -> ``ballincupcatch``;
    ``atari_james_bond`` and ``Jamesbond`` -> ``jamesbond``."""
    name = name.lower().replace("-", "_")
    for prefix in SUITE_PREFIXES:
        if name.startswith(prefix + "_") and name != "crafter_reward" and name != "crafter_noreward":
            name = name[len(prefix) + 1:]
            break
    key = re.sub(r"[^a-z0-9]", "", name)
    return TASK_ALIASES.get(key, key)


def format_value(mean: float | None, std: float | None = None, digits: int | None = None) -> str:
    if mean is None:
        return "—"
    text = _fmt(mean, digits)
    return f"{text} ± {_fmt(std, digits)}" if std is not None else text


def _fmt(x: float, digits: int | None) -> str:
    if digits is not None:
        return f"{x:.{digits}f}"
    if x == int(x) and abs(x) < 1e7:
        return str(int(x))
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"


def _number(text: str | None) -> float | None:
    """The cell as a number, None if empty or not a number (such cells are shown as written, never computed on)."""
    try:
        return float(text) if text and text.strip() else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=None)
def read_rows(name: str, published: Path = PUBLISHED) -> tuple[Row, ...]:
    """Every row of one score CSV (cached)."""
    path = published / name
    if not path.exists():
        warn(f"{path}: missing (run `python -m tools.results --sync-published`); skipped")
        return []
    rows = []
    with open(path, newline="") as handle:
        for line, raw in enumerate(csv.DictReader(handle), 2):
            rows.append(Row(file=name, line=line, paper=raw.get("paper") or "", benchmark=raw.get("benchmark") or "",
                            task=raw.get("task") or "", method=raw.get("method") or "", budget=raw.get("budget") or "",
                            metric=raw.get("metric") or "", mean=_number(raw.get("mean")), std=_number(raw.get("std")),
                            source=raw.get("source") or "", verified=(raw.get("verified") or "").strip(),
                            notes=raw.get("notes") or "", temperature=_number(raw.get("temperature")),
                            mean_text=(raw.get("mean") or "").strip(), std_text=(raw.get("std") or "").strip()))
            if rows[-1].verified not in MARKS:
                warn(f"{path}:{line}: unknown verified flag {rows[-1].verified!r}; shown with '?'")
    return tuple(rows)


def paper_rows(paper: str, published: Path = PUBLISHED) -> list[Row]:
    return [row for name in PAPER_CSVS[paper] for row in read_rows(name, published)]


@dataclass(frozen=True)
class Reference:
    """Random and human scores of one Atari game from one source (a row of atari_reference_scores.csv)."""
    game: str
    random: float
    human: float
    source: str
    verified: str
    notes: str


def atari_references(sources: tuple[str, ...], published: Path = PUBLISHED) -> dict[str, Reference]:
    """Random/human scores by game key from the rows whose source starts with one of ``sources`` (earlier
    sources win). A row flagged ``DATA ISSUE`` in its notes is left out, so a later source fills the game."""
    path = published / ATARI_REFERENCE_CSV
    refs: dict[str, Reference] = {}
    if not path.exists():
        warn(f"{path}: missing; no human-normalised scores")
        return refs
    with open(path, newline="") as handle:
        raw_rows = list(csv.DictReader(handle))
    for prefix in reversed(sources):
        for raw in raw_rows:
            if not raw["source"].startswith(prefix) or "DATA ISSUE" in (raw.get("notes") or ""):
                continue
            random, human = (_number(raw.get(k)) for k in ("random", "human"))
            if random is None or human is None or human == random:
                continue
            refs[task_key(raw["game"])] = Reference(raw["game"], random, human, raw["source"], raw["verified"],
                                                    raw.get("notes") or "")
    return refs


def read_reference_table(published: Path = PUBLISHED) -> list[dict[str, str]]:
    path = published / ATARI_REFERENCE_CSV
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


README = """# Published numbers (data)

Copied from the project's verified reference copy `../shared/published/` by
`python -m tools.results --sync-published` (do not edit by hand; fix the reference and sync again).

- `*.csv`: every published number we compare against, one row each, with its `source` (paper table or
  authors' file) and `verified` flag (`yes`, `derived`, `no` = recalled, `partial`, `ocr-only`,
  `secondary`; see `UPSTREAM_README.md`). Unchanged copies.
- `official/`: the authors' own learning-curve files `{task, method, seed, xs, ys}` (see
  `official/SOURCES.md` for repositories, commits and budget units: Atari files count frames, DMC files
  environment steps). Content unchanged; files that were plain `.json` upstream are stored gzip-compressed
  as `.json.gz` here to keep the repository small.
- `MISSING.md`, `hyperparameters.md`, `UPSTREAM_README.md`: the reference's notes, unchanged.

`tools/results` reads only this folder; `results/tables/` shows every row of the paper CSVs.

Known errors in the reference notes (our configs follow the official code; these copies stay unchanged):
`hyperparameters.md` line 100 counts DreamerV2's `train_every: 16` in environment frames, but the official
`step` counts agent steps (one per transition), so it is 16 policy steps = 64 frames at action repeat 4
(`dreamer_v2/configs.yaml`).
"""


def sync_published(source: Path = SHARED, target: Path = PUBLISHED) -> list[Path]:
    """Refresh ``target`` from the reference copy ``source``. Plain json curve files are gzip-compressed."""
    if not (source / "README.md").exists():
        raise FileNotFoundError(f"{source}: not a published-numbers folder (no README.md)")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(source.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(source)
        name = "UPSTREAM_README.md" if rel == Path("README.md") else rel.name
        dest = target / rel.parent / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel.parts[0] == "official" and path.suffix == ".json":
            dest = dest.with_name(dest.name + ".gz")
            with open(path, "rb") as src, gzip.GzipFile(dest, "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(path, dest)
        dest.chmod(0o644)
        written.append(dest)
    (target / "README.md").write_text(README)
    return written
